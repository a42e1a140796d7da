"""Training-free segmenter: colour models + geodesic priors + a random walker with priors.

The fallback when no model checkpoint is installed, and the baseline of the benchmarks.
Everything runs on a downscaled "working" grid (longest side ``work_size`` pixels); the
probability is upsampled back to the full frame.

The segmentation of one frame minimises the random-walker energy with unary priors
(Grady 2005)::

    E(x) = sum_edges w_ij (x_i - x_j)^2 + sum_i lam_i (x_i - p_i)^2

over the foreground probability ``x``: ``w_ij`` are colour-contrast edge weights
(precomputed by :meth:`ClassicalSegmenter.encode`), and each evidence source (clicks,
colour models, the previous mask, the reference mask of a neighbouring frame) adds a
quadratic pull ``lam_k (x - p_k)^2``. Sums of such pulls are again one pull with
``lam = sum lam_k`` and ``p = sum lam_k p_k / lam``, so sources combine exactly. The
minimiser solves the sparse, symmetric positive definite system ``(L + diag(lam)) x = lam p``.

Modules
-------
segmenter
    :class:`ClassicalSegmenter` (encode, predict).
embedding
    :class:`ClassicalEmbedding` and its edge weights / geodesic costs.
colour_histogram, geodesic, evidence
    Colour models; geodesic distances; the priors of one object (clicks, previous and
    reference masks).
random_walker
    The priors combined and solved as above.
resampling, quality
    Working grid <-> full frame; the score of a result.
"""

from __future__ import annotations

from .embedding import ClassicalEmbedding
from .segmenter import ClassicalSegmenter

__all__ = ["ClassicalEmbedding", "ClassicalSegmenter"]
