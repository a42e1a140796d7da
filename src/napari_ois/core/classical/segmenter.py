"""The training-free backend: :class:`ClassicalSegmenter` (encode a frame, predict one object)."""

from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy import ndimage as ndi
from skimage.color import rgb2lab
from skimage.transform import resize

from ..boxes import BoxPrompt
from ..click_simulator import iou as _iou
from ..clicks import Click
from ..segmenter import Prediction, Reference
from .colour_histogram import colour_bins
from .embedding import ClassicalEmbedding, edge_weights
from .evidence import add_box, add_clicks, add_prev, add_reference, click_seeds, Evidence
from .quality import classical_quality
from .random_walker import walker_segment
from .resampling import to_full, to_work


class ClassicalSegmenter:
    """Training-free backend: random walker with colour, click, previous-mask and reference priors.

    Parameters
    ----------
    work_size : int
        Longest side of the working grid; larger frames are downscaled.
    contrast : float
        Edge sharpness: edge weight ``exp(-contrast * d^2 / mean(d^2))`` for a colour
        difference ``d`` between neighbours.
    """

    name = "classical"

    def __init__(self, work_size: int = 320, contrast: float = 4.0):
        self.work_size = int(work_size)
        self.contrast = float(contrast)
        # Tuning of the priors (see walker_segment); fractions are of the working grid's longest side.
        self.geo_gain = 6.0  # log-odds of a pixel reached only from one side
        self.col_clip = 4.0
        self.alpha = 0.5  # weight of the colour log-likelihood ratio
        self.gamma = 0.2  # strength of the prior pull relative to edge weights (<= 1)
        self.border_free = 0.15
        self.rounds = 2
        self.prev_strength = 0.05
        # A box's ellipse core is a guess of where the object is: a negative click drops the
        # part of it within this fraction of the grid's side (geodesically). Kept whole, a
        # core covering background held it against every negative click (held-out training
        # objects through ois, box first: NoC@85 / @90 4.77 / 8.20 -> 3.50 / 6.67 at 0.2,
        # 3.30 / 6.80 at 0.4).
        self.box_core_release = 0.2
        # A box's core is chosen by colour within the box's ellipse, not the ellipse's middle,
        # on frames with colour (see add_box): on 115 training objects through ois, box first,
        # mIoU@1 0.753 -> 0.776 and NoC@90 7.69 -> 7.37; through this backend alone (colour
        # core on every frame) 0.751 -> 0.784 and 10.32 -> 8.77.
        self.box_core_by_colour = True

    # ------------------------------------------------------------------ encode
    def encode(self, image: np.ndarray) -> ClassicalEmbedding:
        """Downscale, convert to Lab and precompute edge weights, geodesic costs, colour bins.

        Parameters
        ----------
        image : np.ndarray
            (Y, X, 3) float32 RGB in [0, 1] (gray data repeated on 3 channels).
        """
        image = np.asarray(image, dtype=np.float32)
        if image.ndim == 2:
            image = np.repeat(image[..., None], 3, axis=-1)
        shape = (int(image.shape[0]), int(image.shape[1]))
        scale = min(1.0, self.work_size / max(shape))
        work = (max(1, round(shape[0] * scale)), max(1, round(shape[1] * scale)))
        if work != shape:
            image = resize(image, work + (3,), order=1, anti_aliasing=True, preserve_range=True)
        image = np.clip(np.nan_to_num(image[..., :3]), 0.0, 1.0)
        lab = rgb2lab(image).astype(np.float32)
        # A light blur: JPEG blocks and sensor noise should not count as edges.
        lab = ndi.gaussian_filter(lab, sigma=(0.7, 0.7, 0))
        bins = colour_bins(lab)
        lab /= 100.0
        weights_h, weights_v, cost = edge_weights(lab, self.contrast)
        factor = 2 if min(work) >= 32 else 1
        if factor > 1:
            # Max-pooling keeps one-pixel edges visible on the coarse grid.
            ch, cw = work[0] // factor, work[1] // factor
            cost = cost[: ch * factor, : cw * factor].reshape(ch, factor, cw, factor).max(axis=(1, 3))
        return ClassicalEmbedding(shape, scale, lab, weights_h, weights_v, np.ascontiguousarray(cost), factor, bins)

    # ----------------------------------------------------------------- predict
    def predict(
        self,
        embedding: ClassicalEmbedding,
        clicks: Sequence[Click],
        prev_prob: np.ndarray | None = None,
        reference: Reference | None = None,
        box: BoxPrompt | None = None,
    ) -> Prediction:
        """Segment one object; see :meth:`napari_ois.core.segmenter.Segmenter.predict`.

        Returns
        -------
        Prediction
            ``prob`` (Y, X) float32 in [0, 1] at full resolution, ``score`` in [0, 1].
        """
        emb = embedding
        shape = emb.work_shape
        seeds = click_seeds(emb, clicks)
        ref_mask = None
        if reference is not None:
            cover = to_work(np.asarray(reference.mask, dtype=np.float32), shape)
            # A reference object smaller than a working pixel still marks where it is.
            ref_mask = (cover > 0.5) | ((cover >= cover.max()) & (cover.max() > 0))
            if not ref_mask.any():
                ref_mask = None
        prev = None
        if prev_prob is not None:
            prev = np.clip(to_work(np.asarray(prev_prob, dtype=np.float32), shape), 0.0, 1.0)
        has_pos = any(s[2] for s in seeds)
        if box is None and not has_pos and ref_mask is None and (prev is None or not (prev > 0.5).any()):
            # Nothing says where the object is: an empty mask, and no confidence in it.
            return Prediction(np.zeros(emb.shape, np.float32), 0.0)

        ev = Evidence.empty(shape)
        if box is not None:
            negatives = [(r, c) for r, c, positive in seeds if not positive]
            previous = prev > 0.5 if prev is not None and not has_pos else None
            add_box(emb, box, ev, guess_shape=not seeds, negatives=negatives, release=self.box_core_release,
                    previous=previous, core_by_colour=self.box_core_by_colour)
        add_clicks(emb, seeds, ev)
        if ref_mask is not None:
            add_reference(emb, reference, ref_mask, ev)
        if prev is not None:
            add_prev(emb, seeds, prev, ev, self.prev_strength)
        # The frame's border is background only when nothing else marks it. A box does, and
        # an object filling its box up to the frame's edge kept losing its rim there (30
        # held-out training objects through ois, box first: NoC@85 5.47 -> 4.77, NoC@90
        # 8.97 -> 8.20).
        x = walker_segment(emb, ev, use_border=ref_mask is None and box is None, params=self)
        score = classical_quality(x)
        if ev.ref_here is not None:
            # Propagation: a sudden change of shape against the (moved) reference is a
            # likely failure, so it lowers the score shown to the user.
            score *= 0.5 + 0.5 * _iou(x > 0.5, ev.ref_here)
        return Prediction(to_full(x, emb.shape), float(score))

    def frame_depth(self, embedding: ClassicalEmbedding) -> None:
        """No depth cue here: overlaps between objects go by probability (see Segmenter)."""
        return None
