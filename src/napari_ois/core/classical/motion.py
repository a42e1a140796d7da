"""Where an object of the previous frame went: one integer shift, found by masked matching."""

from __future__ import annotations

import numpy as np
from scipy.signal import fftconvolve

from .embedding import ClassicalEmbedding
from .resampling import to_work


def estimate_shift(ref_lab: np.ndarray, lab: np.ndarray, mask: np.ndarray, search: int) -> tuple[int, int]:
    """Integer (dy, dx) moving the masked object of the reference frame onto this frame.

    Masked sum of squared Lab differences over all shifts of at most ``search`` grid
    pixels per axis (see :attr:`ClassicalEmbedding.motion_range`), by FFT correlation;
    a small penalty on the shift length prefers "no motion" when the match is
    ambiguous (flat objects).

    Parameters
    ----------
    ref_lab, lab : np.ndarray
        (y, x, 3) Lab images of the reference frame and this frame, same grid.
    mask : np.ndarray
        (y, x) bool object mask on the reference frame; must not be empty.
    search : int
        Largest shift per axis, in grid pixels.
    """
    s = max(1, int(search))
    ys, xs = np.nonzero(mask)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    m = mask[y0:y1, x0:x1].astype(np.float64)
    pad = ((s, s), (s, s), (0, 0))
    window = np.pad(lab, pad, mode="edge")[y0 : y1 + 2 * s, x0 : x1 + 2 * s].astype(np.float64)
    tmpl = ref_lab[y0:y1, x0:x1].astype(np.float64)
    # sum_p m (T - I)^2 = sum m T^2 - 2 sum (m T) * I + sum m * I^2, for every shift.
    cross = sum(fftconvolve(window[..., c], (m * tmpl[..., c])[::-1, ::-1], mode="valid") for c in range(3))
    energy = fftconvolve((window**2).sum(-1), m[::-1, ::-1], mode="valid")
    ssd = energy - 2 * cross + (m[..., None] * tmpl**2).sum()
    ssd /= max(m.sum(), 1.0)
    yy, xx = np.mgrid[-s : s + 1, -s : s + 1]
    ssd = ssd + 1e-4 * np.mean(tmpl.var(axis=(0, 1))) * (yy**2 + xx**2)
    iy, ix = np.unravel_index(int(np.argmin(ssd)), ssd.shape)
    return int(iy - s), int(ix - s)


def shift_map(array: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """(Y, X) array moved by (dy, dx) pixels; what enters from the border is zero / False."""
    out = np.zeros_like(array)
    h, w = array.shape
    out[max(0, dy) : h + min(0, dy), max(0, dx) : w + min(0, dx)] = array[
        max(0, -dy) : h + min(0, -dy), max(0, -dx) : w + min(0, -dx)
    ]
    return out


def estimate_motion(ref_emb: ClassicalEmbedding, emb: ClassicalEmbedding, ref_mask: np.ndarray) -> tuple[int, int]:
    """Shift (dy, dx) in frame pixels that moves ``ref_mask``'s object onto ``emb``'s frame.

    Searched on the classical working grid over the embedding's motion range (5 % of
    the frame's longest side), the same search the classical backend makes for its
    reference prompt, so both agree on the object's motion.

    Parameters
    ----------
    ref_emb, emb : ClassicalEmbedding
        The previous frame and this frame, encoded on the same working grid.
    ref_mask : np.ndarray
        (Y, X) mask of the object on the previous frame at full resolution (> 0.5 is inside).

    Returns
    -------
    tuple of int
        (dy, dx); (0, 0) when the grids differ or the mask vanishes on the grid.
    """
    if ref_emb.work_shape != emb.work_shape or np.shape(ref_mask) != tuple(emb.shape):
        return 0, 0
    grid_mask = to_work(np.asarray(ref_mask, np.float32), emb.work_shape) > 0.5
    if not grid_mask.any():
        return 0, 0
    dy, dx = estimate_shift(ref_emb.lab, emb.lab, grid_mask, emb.motion_range)
    return int(round(dy / emb.scale)), int(round(dx / emb.scale))


__all__ = ["estimate_shift", "shift_map", "estimate_motion"]
