"""Segmentation of one object: geodesic + colour priors smoothed by a random walker with priors.

The random-walker energy and its linear system are described in :mod:`napari_ois.core.classical`.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
from scipy import sparse
from scipy.sparse.linalg import cg

from .colour_histogram import joint_histogram, log_ratio
from .embedding import ClassicalEmbedding
from .evidence import Evidence
from .geodesic import geodesic_distance



class WalkerParams(Protocol):
    """The tuning the walker reads (``ClassicalSegmenter`` provides it)."""

    border_free: float  # frame border is background beyond this geodesic fraction of the side
    geo_gain: float  # gain of the geodesic prior's logit
    rounds: int  # colour-model refinement rounds
    col_clip: float  # clip of the colour log-ratio
    alpha: float  # weight of the colour logit
    gamma: float  # strength of the prior pull relative to the edge weights (<= 1)

_HARD = 1e4  # unary weight that makes a pixel a (practically) hard seed


def walker_segment(emb: ClassicalEmbedding, ev: Evidence, use_border: bool, params: WalkerParams) -> np.ndarray:
    """Geodesic + colour priors, smoothed by the random walker; (y, x) float32 in [0, 1]."""
    shape = emb.work_shape
    size = max(shape)
    fg_src = ev.hard_fg | ev.soft_fg
    bg_src = ev.hard_bg | ev.soft_bg
    d_fg = geodesic_distance(emb, fg_src) if fg_src.any() else np.full(shape, np.inf, np.float32)
    if use_border:
        # Frame border as background, except where the object (cheaply reached from a
        # positive click) touches it.
        border = np.zeros(shape, bool)
        border[[0, -1], :] = border[:, [0, -1]] = True
        bg_src = bg_src | (border & (d_fg > params.border_free * size) & ~ev.hard_fg)
    d_bg = geodesic_distance(emb, bg_src) if bg_src.any() else np.full(shape, np.inf, np.float32)
    # Relative geodesic advantage in [-1, 1]: scale-free, and undecided far from all seeds.
    big = 1e6
    d_fg, d_bg = np.minimum(d_fg, big), np.minimum(d_bg, big)
    l_geo = params.geo_gain * (d_bg - d_fg) / (d_bg + d_fg + 1.0)

    p_geo = _sigmoid(l_geo)
    fg_h = joint_histogram(emb.bins, p_geo * np.exp(-np.minimum(d_fg, big) / (0.2 * size)))
    bg_h = joint_histogram(emb.bins, 1.0 - p_geo)
    if ev.fg_hist is not None:
        fg_h, bg_h = 0.5 * fg_h + ev.fg_hist, 0.5 * bg_h + ev.bg_hist
    x = None
    for _ in range(params.rounds):
        l_col = np.clip(log_ratio(emb.bins, fg_h, bg_h), -params.col_clip, params.col_clip)
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
        fg_h = 0.5 * fg_h + joint_histogram(emb.bins, x * (x > 0.5))
        bg_h = 0.5 * bg_h + joint_histogram(emb.bins, (1 - x) * (x <= 0.5))
    return x


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


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
