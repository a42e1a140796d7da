"""Resampling between the full frame and the working grid."""

from __future__ import annotations

import numpy as np
from skimage.transform import resize


def to_work(array: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Resample a (Y, X) float map onto the working grid (area-averaging when shrinking)."""
    if array.shape == tuple(shape):
        return array.astype(np.float32)
    return resize(array, shape, order=1, anti_aliasing=True, preserve_range=True).astype(np.float32)


def to_full(x: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Upsample a working-grid probability to the (Y, X) frame, float32 in [0, 1]."""
    if x.shape == tuple(shape):
        return x.astype(np.float32)
    out = resize(x, shape, order=1, anti_aliasing=False, preserve_range=True)
    return np.clip(out, 0.0, 1.0).astype(np.float32)
