"""Colour histograms over a fixed CIE Lab grid: bin indices, smoothed histograms, likelihood ratios."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi


# Colour histogram grid over CIE Lab: fixed (not per image) so that models fitted on a
# reference frame apply to the next frame.
_L_BINS, _AB_BINS = 16, 16
_L_RANGE, _AB_RANGE = (0.0, 100.0), (-64.0, 64.0)


def colour_bins(lab: np.ndarray) -> np.ndarray:
    """(y, x) int16 index into the fixed Lab histogram grid, for (y, x, 3) Lab in natural units."""
    li = np.clip((lab[..., 0] - _L_RANGE[0]) / (_L_RANGE[1] - _L_RANGE[0]) * _L_BINS, 0, _L_BINS - 1).astype(np.int16)
    span = _AB_RANGE[1] - _AB_RANGE[0]
    ai = np.clip((lab[..., 1] - _AB_RANGE[0]) / span * _AB_BINS, 0, _AB_BINS - 1).astype(np.int16)
    bi = np.clip((lab[..., 2] - _AB_RANGE[0]) / span * _AB_BINS, 0, _AB_BINS - 1).astype(np.int16)
    return (li * _AB_BINS + ai) * _AB_BINS + bi


def joint_histogram(bins: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Smoothed colour histogram (L, a, b bins), normalised to sum 1 (zeros if no weight)."""
    hist = np.bincount(bins.ravel(), weights=np.asarray(weights, np.float64).ravel(), minlength=_L_BINS * _AB_BINS**2)
    hist = ndi.gaussian_filter(hist.reshape(_L_BINS, _AB_BINS, _AB_BINS), 1.0)
    total = hist.sum()
    return hist / total if total > 0 else hist


def log_ratio(bins: np.ndarray, fg_h: np.ndarray, bg_h: np.ndarray) -> np.ndarray:
    """(y, x) log-likelihood ratio log p(colour | fg) / p(colour | bg)."""
    eps = 1e-5
    return np.log(fg_h.ravel()[bins] + eps) - np.log(bg_h.ravel()[bins] + eps)
