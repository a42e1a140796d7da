"""Score of a segmentation: boundary decisiveness."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi


def classical_quality(x: np.ndarray) -> float:
    """Mean decisiveness |2x - 1| in the band around the predicted boundary (0 for no object)."""
    mask = x > 0.5
    if not mask.any():
        return 0.0
    band = ndi.binary_dilation(mask, iterations=3) & ~ndi.binary_erosion(mask, iterations=3)
    if not band.any():
        band = np.ones_like(mask)
    return float(np.clip(np.mean(np.abs(2 * x[band] - 1)), 0.0, 1.0))
