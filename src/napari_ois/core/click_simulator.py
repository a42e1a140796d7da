"""The standard click simulator of interactive-segmentation evaluation (RITM / SimpleClick /
SegNext / OIS protocol), shared by the eval commands and training-time click sampling.

Next click: the pixel farthest from the boundary of the larger error region. False
negatives (object pixels missed) give a positive click, false positives a negative one.
The image border counts as a boundary (the error masks are padded by one pixel), a pixel
is never clicked twice, and ties go to the first maximum in row-major order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage


@dataclass(frozen=True)
class SimulatedClick:
    """Where the simulated user clicks: pixel (y, x) and polarity."""

    y: int
    x: int
    positive: bool


def _inner_distance(region: np.ndarray) -> np.ndarray:
    """(Y, X) float distance of every region pixel to the nearest non-region pixel or border."""
    padded = np.pad(region, 1)
    return ndimage.distance_transform_edt(padded)[1:-1, 1:-1]


def error_distances(
    truth: np.ndarray,
    predicted: np.ndarray,
    ignore: np.ndarray | None = None,
    clicked: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Distance maps of the two error regions, as the protocol measures them.

    Shared with training-time click sampling (``napari_ois.train.click_sampler``), so
    training and evaluation agree on what "far inside an error" means.

    Parameters
    ----------
    truth, predicted : np.ndarray
        (Y, X) bool ground truth and current prediction.
    ignore : np.ndarray, optional
        (Y, X) bool pixels that are never errors.
    clicked : np.ndarray, optional
        (Y, X) bool pixels clicked before; their distance is set to 0.

    Returns
    -------
    dist_fn, dist_fp : np.ndarray
        (Y, X) float distances inside the false-negative and false-positive regions to
        their boundary (the image border counts as boundary); 0 outside the regions.
    """
    valid = ~ignore if ignore is not None else np.ones(truth.shape, bool)
    dist_fn = _inner_distance(truth & ~predicted & valid)
    dist_fp = _inner_distance(~truth & predicted & valid)
    if clicked is not None:
        dist_fn[clicked] = 0
        dist_fp[clicked] = 0
    return dist_fn, dist_fp


def next_click(
    truth: np.ndarray,
    predicted: np.ndarray,
    ignore: np.ndarray | None = None,
    clicked: np.ndarray | None = None,
) -> SimulatedClick | None:
    """The protocol's next click, or None if nothing is left to correct.

    Parameters
    ----------
    truth : np.ndarray
        (Y, X) bool ground-truth object mask.
    predicted : np.ndarray
        (Y, X) bool current prediction (all False before the first click, so the first
        click lands on the ground-truth pixel farthest from the object boundary).
    ignore : np.ndarray, optional
        (Y, X) bool pixels excluded from evaluation (e.g. GrabCut's boundary band).
    clicked : np.ndarray, optional
        (Y, X) bool pixels clicked before; they are never chosen again.
    """
    dist_fn, dist_fp = error_distances(truth, predicted, ignore, clicked)
    max_fn, max_fp = dist_fn.max(), dist_fp.max()
    if max_fn == 0 and max_fp == 0:
        return None
    # Strictly larger false-negative distance gives a positive click (as in RITM).
    positive = bool(max_fn > max_fp)
    dist = dist_fn if positive else dist_fp
    y, x = np.unravel_index(int(np.argmax(dist)), dist.shape)
    return SimulatedClick(int(y), int(x), positive)


def iou(truth: np.ndarray, predicted: np.ndarray, ignore: np.ndarray | None = None) -> float:
    """IoU of (Y, X) bool masks over the non-ignored pixels; 1.0 when both are empty."""
    if ignore is not None:
        truth, predicted = truth & ~ignore, predicted & ~ignore
    union = np.count_nonzero(truth | predicted)
    return 1.0 if union == 0 else np.count_nonzero(truth & predicted) / union
