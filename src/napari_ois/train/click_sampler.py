"""Training-time clicks: the initial multi-point sample and the iterative error clicks.

Initial clicks follow SegNext/RITM's multi-point sampler (model.md section 4): 1+k
positives with P(k) proportional to 0.8^k, uniform inside the (usually eroded) object;
k negatives with the same law, each drawn from the plain background (p 0.1), from other
objects (p 0.4) or from a ring around the object (p 0.5), at most 24 of each. The
iterative clicks are the evaluation protocol's next click made random: uniform among
the pixels deeper than half the maximum distance inside the larger error region, with
the protocol's own distance maps (:func:`napari_ois.core.click_simulator.error_distances`).

Clicks are (N, 3) int arrays of rows (y, x, positive) with positive in {0, 1}.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from ..core.click_simulator import error_distances
from .samples import TrainingSample

MAX_POINTS = 24
NEG_SOURCES = ("background", "others", "border")
NEG_SOURCE_PROBS = (0.1, 0.4, 0.5)


def _count(rng: np.random.Generator, low: int, high: int, gamma: float) -> int:
    """k in [low, high] with P(k) proportional to gamma ** (k - low)."""
    p = gamma ** np.arange(high - low + 1)
    return low + int(rng.choice(len(p), p=p / p.sum()))


def _pick(rng: np.random.Generator, region: np.ndarray, n: int) -> np.ndarray:
    """Up to ``n`` distinct (y, x) pixels of ``region``, uniformly; (m, 2) int."""
    flat = np.flatnonzero(region)
    if n <= 0 or not len(flat):
        return np.zeros((0, 2), np.int64)
    chosen = rng.choice(flat, size=min(n, len(flat)), replace=False)
    return np.stack(np.unravel_index(chosen, region.shape), -1)


def sample_clicks(
    mask: np.ndarray,
    rng: np.random.Generator,
    others: np.ndarray | None = None,
    ignore: np.ndarray | None = None,
    max_points: int = MAX_POINTS,
    gamma: float = 0.8,
    erode_prob: float = 0.9,
) -> np.ndarray:
    """Initial positive and negative clicks for one target.

    Parameters
    ----------
    mask : np.ndarray
        (H, W) bool target.
    rng : numpy.random.Generator
    others : np.ndarray, optional
        (H, W) bool pixels of other objects (one negative source).
    ignore : np.ndarray, optional
        (H, W) bool pixels never clicked (padding, unlabelled borders).
    max_points : int
        Most clicks of each polarity.
    gamma : float
        Decay of the count distribution.
    erode_prob : float
        Probability to draw positives from the mask eroded by 3 px (3x3, 3 iterations;
        skipped when that leaves <= 10 px), which keeps them off the uncertain boundary.

    Returns
    -------
    np.ndarray
        (N, 3) int64 rows (y, x, positive): positives first, then negatives. Empty
        when the mask is empty.
    """
    valid = ~ignore if ignore is not None else np.ones(mask.shape, bool)
    inside = mask & valid
    if not inside.any():
        return np.zeros((0, 3), np.int64)
    n_pos = _count(rng, 1, max_points, gamma)
    n_neg = _count(rng, 0, max_points, gamma)
    region = inside
    if rng.random() < erode_prob:
        eroded = ndimage.binary_erosion(inside, iterations=3, border_value=1) & inside
        if eroded.sum() > 10:
            region = eroded
    pos = _pick(rng, region, n_pos)
    # The ring is ceil(0.1 sqrt(area)) wide: proportional to the object's scale.
    width = np.ceil(0.1 * np.sqrt(inside.sum()))
    ring = (ndimage.distance_transform_edt(~mask) <= width) & ~mask & valid
    other = (others & ~mask & valid) if others is not None else np.zeros_like(mask)
    sources = {"background": ~mask & valid & ~ring & ~other, "others": other, "border": ring}
    probs = np.array([p if sources[k].any() else 0.0 for k, p in zip(NEG_SOURCES, NEG_SOURCE_PROBS)])
    negs = []
    if n_neg and probs.sum() > 0:
        per_source = rng.multinomial(n_neg, probs / probs.sum())
        taken = np.zeros_like(mask)
        for name, k in zip(NEG_SOURCES, per_source):
            pts = _pick(rng, sources[name] & ~taken, int(k))
            taken[pts[:, 0], pts[:, 1]] = True
            negs.append(pts)
    neg = np.concatenate(negs) if negs else np.zeros((0, 2), np.int64)
    return np.concatenate([np.c_[pos, np.ones(len(pos), np.int64)], np.c_[neg, np.zeros(len(neg), np.int64)]])


def sample_initial_clicks(
    sample: TrainingSample,
    rng: np.random.Generator,
    zero_click_prob: float = 0.25,
    **kwargs,
) -> np.ndarray:
    """Initial clicks for a training sample, with the zero-click mode of propagation.

    A sample with a reference mask gets no clicks with probability ``zero_click_prob``
    (the model must then segment from the reference alone, as when propagating to the
    next frame); otherwise :func:`sample_clicks` (``kwargs`` passed on).

    Returns
    -------
    np.ndarray
        (N, 3) int64 rows (y, x, positive); N = 0 in zero-click mode.
    """
    zero = rng.random() < zero_click_prob  # drawn always, so the rng stream is stable
    if zero and sample.ref_mask is not None:
        return np.zeros((0, 3), np.int64)
    return sample_clicks(sample.mask, rng, sample.others, sample.ignore, **kwargs)


def clicked_map(clicks: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """(H, W) bool map of the clicked pixels of (N, 3) clicks."""
    out = np.zeros(shape, bool)
    out[clicks[:, 0], clicks[:, 1]] = True
    return out


def iterative_click(
    truth: np.ndarray,
    prob: np.ndarray,
    clicked: np.ndarray | None,
    rng: np.random.Generator,
    ignore: np.ndarray | None = None,
    threshold: float = 0.49,
) -> tuple[int, int, int] | None:
    """One corrective click from the model's current prediction.

    Parameters
    ----------
    truth : np.ndarray
        (H, W) bool target.
    prob : np.ndarray
        (H, W) float predicted probability (thresholded at ``threshold``, as in eval).
    clicked : np.ndarray or None
        (H, W) bool pixels clicked before (never clicked again).
    rng : numpy.random.Generator
    ignore : np.ndarray, optional
        (H, W) bool pixels that are never errors.

    Returns
    -------
    tuple or None
        (y, x, positive) -- positive=1 in the false-negative region when its maximum
        distance is strictly larger (the protocol's rule), else 0 in the false-positive
        region; None when there is no error left.
    """
    dist_fn, dist_fp = error_distances(truth, prob > threshold, ignore, clicked)
    max_fn, max_fp = dist_fn.max(), dist_fp.max()
    if max_fn == 0 and max_fp == 0:
        return None
    positive = bool(max_fn > max_fp)
    dist, top = (dist_fn, max_fn) if positive else (dist_fp, max_fp)
    # Uniform over the deep part rather than the single argmax: the model sees varied
    # correction clicks, all of which a user could plausibly make.
    y, x = _pick(rng, dist > top / 2, 1)[0]
    return int(y), int(x), int(positive)


def pack_clicks(clicks: list[np.ndarray], max_points: int = MAX_POINTS) -> np.ndarray:
    """Batch click lists in the RITM layout.

    Parameters
    ----------
    clicks : list of np.ndarray
        Per sample (N_b, 3) rows (y, x, positive) in click order.
    max_points : int
        K, slots per polarity; when a polarity has more clicks, the most recent K are
        kept (the corrective clicks are the informative ones).

    Returns
    -------
    np.ndarray
        (B, 2K, 3) int64: rows 0..K-1 positives, K..2K-1 negatives, each (y, x, order)
        where order is the click's index in its list; empty slots are (-1, -1, -1).
    """
    out = np.full((len(clicks), 2 * max_points, 3), -1, np.int64)
    for b, c in enumerate(clicks):
        order = np.arange(len(c))
        for slot, pol in ((0, 1), (max_points, 0)):
            sel = np.flatnonzero(c[:, 2] == pol)[-max_points:] if len(c) else np.zeros(0, int)
            out[b, slot : slot + len(sel)] = np.c_[c[sel, :2], order[sel]]
    return out
