"""Per-frame precomputation of the classical backend and the edge weights / geodesic costs in it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi


@dataclass
class ClassicalEmbedding:
    """Per-frame precomputation of :class:`ClassicalSegmenter`.

    Attributes
    ----------
    shape : tuple of int
        (Y, X) size of the full-resolution frame.
    scale : float
        Working-grid size / full size (<= 1).
    lab : np.ndarray
        (y, x, 3) float32 smoothed CIE Lab of the working grid, scaled by 1/100.
    weights_h, weights_v : np.ndarray
        (y, x - 1) and (y - 1, x) float32 edge weights in (0, 1] between horizontal and
        vertical neighbours: high inside uniform regions, low across colour edges.
    coarse_cost : np.ndarray
        (y // f, x // f) float32 local cost of geodesic paths (>= 1, high on edges), on a
        grid ``coarse_factor`` times coarser than the working grid.
    coarse_factor : int
        f, 1 or 2.
    bins : np.ndarray
        (y, x) int16 colour-histogram bin of each working pixel.
    context_side : int or None
        Longest side, in full-resolution pixels, of the whole frame this embedding was
        cut from; None when it is the whole frame. Motion between frames is searched
        over a fraction of the whole frame: an embedding of a zoom-in crop must not
        shrink that range with the crop, or a fast object outruns it.
    """

    shape: tuple[int, int]
    scale: float
    lab: np.ndarray
    weights_h: np.ndarray
    weights_v: np.ndarray
    coarse_cost: np.ndarray
    coarse_factor: int
    bins: np.ndarray
    context_side: int | None = None

    @property
    def work_shape(self) -> tuple[int, int]:
        """(y, x) size of the working grid."""
        return self.bins.shape

    @property
    def motion_range(self) -> int:
        """Largest object motion between frames searched for, in working-grid pixels.

        5 % of the whole frame's longest side: fast enough for a walking person or a
        crawling cell at video rates, small enough that the match stays unambiguous.
        """
        side = self.context_side if self.context_side is not None else max(self.shape)
        return max(2, int(round(0.05 * side * self.scale)))

    @property
    def nbytes(self) -> int:
        """Bytes held (for the embedding cache)."""
        return sum(a.nbytes for a in (self.lab, self.weights_h, self.weights_v, self.coarse_cost, self.bins))


def edge_weights(lab: np.ndarray, contrast: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random-walker edge weights and geodesic costs from (y, x, 3) Lab / 100.

    The contrast scale is normalised by the image's mean squared neighbour difference
    (as in GrabCut) so that low-contrast microscopy and vivid photos behave alike.
    """
    dh = np.sum(np.diff(lab, axis=1) ** 2, axis=-1)
    dv = np.sum(np.diff(lab, axis=0) ** 2, axis=-1)
    mean = (dh.sum() + dv.sum()) / max(1, dh.size + dv.size)
    mean = max(float(mean), 1e-8)
    weights_h = np.exp(-contrast * dh / mean).astype(np.float32) + 1e-4
    weights_v = np.exp(-contrast * dv / mean).astype(np.float32) + 1e-4
    # Geodesic cost per pixel: ~1 in flat or finely textured areas, much higher on
    # edges. Computed at a coarser scale than the weights so noise and fine texture
    # (fur, foliage) do not wall off the object's own interior.
    grad = np.sqrt(sum(ndi.gaussian_gradient_magnitude(lab[..., c], 1.5) ** 2 for c in range(3)))
    cost = (1.0 + (grad / max(float(grad.mean()), 1e-6)) ** 2).astype(np.float32)
    return weights_h, weights_v, cost
