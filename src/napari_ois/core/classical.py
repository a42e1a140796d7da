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
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy import ndimage as ndi
from scipy import sparse
from scipy.signal import fftconvolve
from scipy.sparse.linalg import cg
from skimage.color import rgb2lab
from skimage.graph import MCP_Geometric
from skimage.transform import resize

from .clicks import Click
from .segmenter import Prediction, Reference

# Colour histogram grid over CIE Lab: fixed (not per image) so that models fitted on a
# reference frame apply to the next frame.
_L_BINS, _AB_BINS = 16, 16
_L_RANGE, _AB_RANGE = (0.0, 100.0), (-64.0, 64.0)
_HARD = 1e4  # unary weight that makes a pixel a (practically) hard seed


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
    """

    shape: tuple[int, int]
    scale: float
    lab: np.ndarray
    weights_h: np.ndarray
    weights_v: np.ndarray
    coarse_cost: np.ndarray
    coarse_factor: int
    bins: np.ndarray

    @property
    def work_shape(self) -> tuple[int, int]:
        """(y, x) size of the working grid."""
        return self.bins.shape

    @property
    def nbytes(self) -> int:
        """Bytes held (for the embedding cache)."""
        return sum(a.nbytes for a in (self.lab, self.weights_h, self.weights_v, self.coarse_cost, self.bins))


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
        # Tuning of the priors (see _segment); fractions are of the working grid's longest side.
        self.geo_gain = 6.0  # log-odds of a pixel reached only from one side
        self.col_clip = 4.0
        self.alpha = 0.5  # weight of the colour log-likelihood ratio
        self.gamma = 0.2  # strength of the prior pull relative to edge weights (<= 1)
        self.border_free = 0.15
        self.rounds = 2
        self.prev_strength = 0.05

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
        bins = _colour_bins(lab)
        lab /= 100.0
        weights_h, weights_v, cost = _edge_weights(lab, self.contrast)
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
    ) -> Prediction:
        """Segment one object; see :meth:`napari_ois.core.segmenter.Segmenter.predict`.

        Returns
        -------
        Prediction
            ``prob`` (Y, X) float32 in [0, 1] at full resolution, ``score`` in [0, 1].
        """
        emb = embedding
        shape = emb.work_shape
        seeds = _click_seeds(emb, clicks)
        ref_mask = None
        if reference is not None:
            cover = _to_work(np.asarray(reference.mask, dtype=np.float32), shape)
            # A reference object smaller than a working pixel still marks where it is.
            ref_mask = (cover > 0.5) | ((cover >= cover.max()) & (cover.max() > 0))
            if not ref_mask.any():
                ref_mask = None
        prev = None
        if prev_prob is not None:
            prev = np.clip(_to_work(np.asarray(prev_prob, dtype=np.float32), shape), 0.0, 1.0)
        has_pos = any(s[2] for s in seeds)
        if not has_pos and ref_mask is None and (prev is None or not (prev > 0.5).any()):
            # Nothing says where the object is: an empty mask, and no confidence in it.
            return Prediction(np.zeros(emb.shape, np.float32), 0.0)

        ev = _Evidence.empty(shape)
        _add_clicks(emb, seeds, ev)
        if ref_mask is not None:
            _add_reference(emb, reference, ref_mask, ev)
        if prev is not None:
            _add_prev(emb, seeds, prev, ev, self.prev_strength)
        x = _segment(emb, ev, use_border=ref_mask is None, params=self)
        score = _quality(x)
        if ev.ref_here is not None:
            # Propagation: a sudden change of shape against the (moved) reference is a
            # likely failure, so it lowers the score shown to the user.
            score *= 0.5 + 0.5 * _iou(x > 0.5, ev.ref_here)
        return Prediction(_to_full(x, emb.shape), float(score))


# ---------------------------------------------------------------------- encode helpers
def _colour_bins(lab: np.ndarray) -> np.ndarray:
    """(y, x) int16 index into the fixed Lab histogram grid, for (y, x, 3) Lab in natural units."""
    li = np.clip((lab[..., 0] - _L_RANGE[0]) / (_L_RANGE[1] - _L_RANGE[0]) * _L_BINS, 0, _L_BINS - 1).astype(np.int16)
    span = _AB_RANGE[1] - _AB_RANGE[0]
    ai = np.clip((lab[..., 1] - _AB_RANGE[0]) / span * _AB_BINS, 0, _AB_BINS - 1).astype(np.int16)
    bi = np.clip((lab[..., 2] - _AB_RANGE[0]) / span * _AB_BINS, 0, _AB_BINS - 1).astype(np.int16)
    return (li * _AB_BINS + ai) * _AB_BINS + bi


def _edge_weights(lab: np.ndarray, contrast: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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


# ---------------------------------------------------------------------- evidence
@dataclass
class _Evidence:
    """What is known about one object on the working grid before segmenting.

    ``hard_*`` are click disks (never overruled); ``soft_*`` are seeds from the previous
    mask or the reference mask: starting points of geodesic distances and a moderate
    pull of weight ``soft_lam`` (a map) towards their label; ``fg_hist``/``bg_hist`` are
    colour models from elsewhere (the reference frame), or None; ``shape_p`` the target of
    the ``soft_lam`` pull; ``ref_here`` the reference mask moved onto this frame.
    """

    hard_fg: np.ndarray
    hard_bg: np.ndarray
    soft_fg: np.ndarray
    soft_bg: np.ndarray
    soft_lam: np.ndarray
    shape_p: np.ndarray | None = None
    ref_here: np.ndarray | None = None
    fg_hist: np.ndarray | None = None
    bg_hist: np.ndarray | None = None

    @classmethod
    def empty(cls, shape: tuple[int, int]) -> "_Evidence":
        z = np.zeros(shape, bool)
        return cls(z, z.copy(), z.copy(), z.copy(), np.zeros(shape, np.float32))


def _click_seeds(emb: ClassicalEmbedding, clicks: Sequence[Click]) -> list[tuple[int, int, bool]]:
    """Clicks mapped onto the working grid as (row, col, positive), clipped inside it."""
    h, w = emb.work_shape
    seeds = []
    for c in clicks:
        r = int(np.clip(np.floor(c.y * emb.scale), 0, h - 1))
        col = int(np.clip(np.floor(c.x * emb.scale), 0, w - 1))
        seeds.append((r, col, bool(c.positive)))
    return seeds


def _disk_mask(shape: tuple[int, int], points: list[tuple[int, int]], radius: float) -> np.ndarray:
    """(y, x) bool union of disks of ``radius`` around ``points``."""
    out = np.zeros(shape, bool)
    yy, xx = np.ogrid[: shape[0], : shape[1]]
    for r, c in points:
        out |= (yy - r) ** 2 + (xx - c) ** 2 <= radius**2
    return out


def _add_clicks(emb: ClassicalEmbedding, seeds, ev: _Evidence) -> None:
    """Click disks as hard seeds; where disks of opposite clicks overlap the later click wins."""
    radius = max(1.0, 0.01 * max(emb.work_shape))
    for r, c, positive in seeds:
        disk = _disk_mask(emb.work_shape, [(r, c)], radius)
        (ev.hard_fg if positive else ev.hard_bg)[disk] = True
        (ev.hard_bg if positive else ev.hard_fg)[disk] = False
        (ev.hard_fg if positive else ev.hard_bg)[r, c] = True


def _add_prev(emb: ClassicalEmbedding, seeds, prev: np.ndarray, ev: _Evidence, strength: float) -> None:
    """Pull towards the previous result, except where a correcting click reaches cheaply.

    The clicks themselves (all of them are given again) carry the segmentation; the
    previous result only steadies it where the new click does not reach.
    """
    relax = np.ones(prev.shape, np.float32)
    size = max(prev.shape)
    for r, c, positive in seeds:
        if (prev[r, c] > 0.5) != positive:
            d = _geodesic(emb, _disk_mask(prev.shape, [(r, c)], 1.0))
            relax = np.minimum(relax, 1.0 - np.exp(-((d / (0.1 * size)) ** 2)))
    ev.soft_lam = np.maximum(ev.soft_lam, strength * np.abs(2 * prev - 1) * relax)
    ev.shape_p = prev if ev.shape_p is None else 0.5 * (ev.shape_p + prev)


def _add_reference(emb: ClassicalEmbedding, reference: Reference, ref_mask: np.ndarray, ev: _Evidence) -> None:
    """Seeds from the neighbouring frame's mask (moved along with the object) and its colour models."""
    ref_emb = reference.embedding
    same_grid = isinstance(ref_emb, ClassicalEmbedding) and ref_emb.work_shape == emb.work_shape
    if same_grid:
        dy, dx = _estimate_shift(ref_emb.lab, emb.lab, ref_mask)
        moved = _shift_mask(ref_mask, dy, dx)
        if moved.any():
            ref_mask_here = moved
        else:
            ref_mask_here = ref_mask
    else:
        ref_mask_here = ref_mask
    band = float(np.clip(0.1 * np.sqrt(ref_mask_here.sum()), 1.5, 0.03 * max(emb.work_shape) + 1))
    inside = ndi.distance_transform_edt(ref_mask_here)
    outside = ndi.distance_transform_edt(~ref_mask_here)
    core = inside > band
    if not core.any():  # thin or tiny object: keep its most interior pixels
        core = inside >= inside.max()
    far = outside > band
    ev.soft_fg |= core & ~ev.hard_bg
    ev.soft_bg |= far & ~ev.hard_fg
    # Strong where the old mask is sure (core, far outside), weak in the band in between,
    # where the new boundary is placed by edges and colour.
    ev.soft_lam = np.maximum(ev.soft_lam, np.where(core | far, 0.3, 0.03).astype(np.float32))
    ev.shape_p = ref_mask_here.astype(np.float32)
    ev.ref_here = ref_mask_here

    if isinstance(ref_emb, ClassicalEmbedding):
        rmask = ref_mask if ref_emb.work_shape == emb.work_shape else (
            _to_work(ref_mask.astype(np.float32), ref_emb.work_shape) > 0.5)
        rbins = ref_emb.bins
    else:
        rmask, rbins = ref_mask, emb.bins
    # Background near the object matters most: it is what the boundary is cut against.
    ring = np.exp(-ndi.distance_transform_edt(~rmask) / (3 * band + 1)) * ~rmask
    ev.fg_hist = _histogram(rbins, rmask.astype(np.float32))
    ev.bg_hist = _histogram(rbins, 0.2 * ~rmask + ring)


def _estimate_shift(ref_lab: np.ndarray, lab: np.ndarray, mask: np.ndarray, max_frac: float = 0.05) -> tuple[int, int]:
    """Integer (dy, dx) moving the masked object of the reference frame onto this frame.

    Masked sum of squared Lab differences over all shifts up to ``max_frac`` of the
    frame size, by FFT correlation; a small penalty on the shift length prefers "no
    motion" when the match is ambiguous (flat objects).
    """
    h, w = mask.shape
    s = max(2, int(round(max_frac * max(h, w))))
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


def _shift_mask(mask: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """(y, x) bool mask moved by (dy, dx) pixels, filling with False."""
    out = np.zeros_like(mask)
    h, w = mask.shape
    out[max(0, dy) : h + min(0, dy), max(0, dx) : w + min(0, dx)] = mask[
        max(0, -dy) : h + min(0, -dy), max(0, -dx) : w + min(0, -dx)
    ]
    return out


# ---------------------------------------------------------------------- segmentation
def _segment(emb: ClassicalEmbedding, ev: _Evidence, use_border: bool, params: "ClassicalSegmenter") -> np.ndarray:
    """Geodesic + colour priors, smoothed by the random walker; (y, x) float32 in [0, 1]."""
    shape = emb.work_shape
    size = max(shape)
    fg_src = ev.hard_fg | ev.soft_fg
    bg_src = ev.hard_bg | ev.soft_bg
    d_fg = _geodesic(emb, fg_src) if fg_src.any() else np.full(shape, np.inf, np.float32)
    if use_border:
        # Frame border as background, except where the object (cheaply reached from a
        # positive click) touches it.
        border = np.zeros(shape, bool)
        border[[0, -1], :] = border[:, [0, -1]] = True
        bg_src = bg_src | (border & (d_fg > params.border_free * size) & ~ev.hard_fg)
    d_bg = _geodesic(emb, bg_src) if bg_src.any() else np.full(shape, np.inf, np.float32)
    # Relative geodesic advantage in [-1, 1]: scale-free, and undecided far from all seeds.
    big = 1e6
    d_fg, d_bg = np.minimum(d_fg, big), np.minimum(d_bg, big)
    l_geo = params.geo_gain * (d_bg - d_fg) / (d_bg + d_fg + 1.0)

    p_geo = _sigmoid(l_geo)
    fg_h = _histogram(emb.bins, p_geo * np.exp(-np.minimum(d_fg, big) / (0.2 * size)))
    bg_h = _histogram(emb.bins, 1.0 - p_geo)
    if ev.fg_hist is not None:
        fg_h, bg_h = 0.5 * fg_h + ev.fg_hist, 0.5 * bg_h + ev.bg_hist
    x = None
    for _ in range(params.rounds):
        l_col = np.clip(_log_ratio(emb.bins, fg_h, bg_h), -params.col_clip, params.col_clip)
        logit = l_geo + params.alpha * l_col
        p = _sigmoid(logit)
        lam = params.gamma * np.abs(2 * p - 1)
        lam_p = lam * p
        if ev.shape_p is not None:
            lam = lam + ev.soft_lam
            lam_p = lam_p + ev.soft_lam * ev.shape_p
        lam = lam + _HARD * (ev.hard_fg | ev.hard_bg)
        lam_p = lam_p + _HARD * ev.hard_fg
        x = _solve(emb, lam, lam_p, x0=x)
        # GrabCut-style: refit the colour models on this result for the next round.
        fg_h = 0.5 * fg_h + _histogram(emb.bins, x * (x > 0.5))
        bg_h = 0.5 * bg_h + _histogram(emb.bins, (1 - x) * (x <= 0.5))
    return x


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def _geodesic(emb: ClassicalEmbedding, sources: np.ndarray) -> np.ndarray:
    """(y, x) geodesic distance (in working pixels) from a (y, x) bool source map.

    Computed on the coarse cost grid (the paths are a prior; the random walker places
    the exact boundary), starting only from the sources' boundary pixels (inner source
    pixels cannot shorten a path and would slow the search).
    """
    f = emb.coarse_factor
    ch, cw = emb.coarse_cost.shape
    src = sources[: ch * f, : cw * f].reshape(ch, f, cw, f).any(axis=(1, 3)) if f > 1 else sources
    if not src.any():  # sources only in the cropped-off last row/column
        src = np.zeros((ch, cw), bool)
        ys, xs = np.nonzero(sources)
        src[np.minimum(ys // f, ch - 1), np.minimum(xs // f, cw - 1)] = True
    edge = src & ~ndi.binary_erosion(src, border_value=1)
    starts = np.argwhere(edge if edge.any() else src)
    dist, _ = MCP_Geometric(emb.coarse_cost, fully_connected=True).find_costs(starts)
    dist[src] = 0.0
    dist = np.asarray(dist, np.float32) * f
    if f > 1:
        dist = resize(dist, ((ch * f), (cw * f)), order=1, preserve_range=True)
        dist = np.pad(dist, ((0, sources.shape[0] - ch * f), (0, sources.shape[1] - cw * f)), mode="edge")
    return dist.astype(np.float32)


def _histogram(bins: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Smoothed colour histogram (L, a, b bins), normalised to sum 1 (zeros if no weight)."""
    hist = np.bincount(bins.ravel(), weights=np.asarray(weights, np.float64).ravel(), minlength=_L_BINS * _AB_BINS**2)
    hist = ndi.gaussian_filter(hist.reshape(_L_BINS, _AB_BINS, _AB_BINS), 1.0)
    total = hist.sum()
    return hist / total if total > 0 else hist


def _log_ratio(bins: np.ndarray, fg_h: np.ndarray, bg_h: np.ndarray) -> np.ndarray:
    """(y, x) log-likelihood ratio log p(colour | fg) / p(colour | bg)."""
    eps = 1e-5
    return np.log(fg_h.ravel()[bins] + eps) - np.log(bg_h.ravel()[bins] + eps)


# ---------------------------------------------------------------------- solver
def _solve(emb: ClassicalEmbedding, lam: np.ndarray, lam_p: np.ndarray, x0: np.ndarray | None = None) -> np.ndarray:
    """Minimise the random-walker energy with priors; returns (y, x) float32 in [0, 1].

    ``lam`` (y, x) are the unary weights and ``lam_p`` (y, x) the weights times targets.
    """
    h, w = emb.work_shape
    n = h * w
    # A tiny pull everywhere keeps the system well conditioned even far from any prior
    # (conjugate gradients then converge in tens of iterations).
    lam = lam + 1e-3
    idx = np.arange(n).reshape(h, w)
    rows = np.concatenate([idx[:, :-1].ravel(), idx[:-1, :].ravel()])
    cols = np.concatenate([idx[:, 1:].ravel(), idx[1:, :].ravel()])
    vals = np.concatenate([emb.weights_h.ravel(), emb.weights_v.ravel()]).astype(np.float64)
    deg = np.bincount(rows, vals, n) + np.bincount(cols, vals, n)
    diag = deg + lam.ravel()
    a = sparse.coo_matrix(
        (np.concatenate([-vals, -vals, diag]), (np.concatenate([rows, cols, idx.ravel()]), np.concatenate([cols, rows, idx.ravel()]))),
        shape=(n, n),
    ).tocsr()
    b = lam_p.ravel()
    start = (lam_p / lam).ravel() if x0 is None else x0.ravel().astype(np.float64)
    precond = sparse.diags(1.0 / diag)
    x, _ = cg(a, b, x0=start, rtol=1e-4, maxiter=300, M=precond)
    return np.clip(x.reshape(h, w), 0.0, 1.0).astype(np.float32)


# ---------------------------------------------------------------------- resampling, score
def _to_work(array: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Resample a (Y, X) float map onto the working grid (area-averaging when shrinking)."""
    if array.shape == tuple(shape):
        return array.astype(np.float32)
    return resize(array, shape, order=1, anti_aliasing=True, preserve_range=True).astype(np.float32)


def _to_full(x: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Upsample a working-grid probability to the (Y, X) frame, float32 in [0, 1]."""
    if x.shape == tuple(shape):
        return x.astype(np.float32)
    out = resize(x, shape, order=1, anti_aliasing=False, preserve_range=True)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def _quality(x: np.ndarray) -> float:
    """Mean decisiveness |2x - 1| in the band around the predicted boundary (0 for no object)."""
    mask = x > 0.5
    if not mask.any():
        return 0.0
    band = ndi.binary_dilation(mask, iterations=3) & ~ndi.binary_erosion(mask, iterations=3)
    if not band.any():
        band = np.ones_like(mask)
    return float(np.clip(np.mean(np.abs(2 * x[band] - 1)), 0.0, 1.0))
