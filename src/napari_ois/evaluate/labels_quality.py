"""Compare a labels stack with ground truth, per object (region similarity J)."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import numpy as np

from ..core.io import read_labels
from ..core.click_simulator import iou as mask_iou


def per_frame_iou(predicted: np.ndarray, truth: np.ndarray, object_id: int) -> np.ndarray:
    """IoU of one object on every frame.

    Parameters
    ----------
    predicted, truth : np.ndarray
        (T, Y, X) integer labels with the same ids for the same object.
    object_id : int

    Returns
    -------
    np.ndarray
        (T,) float IoU per frame; frames where the object is absent from both count as 1.
    """
    return np.array([mask_iou(p == object_id, t == object_id) for p, t in zip(predicted, truth)])


def score_against_ground_truth(
    predicted: str | Path | np.ndarray, truth: str | Path | np.ndarray, object_ids: Iterable[int]
) -> dict[int, float]:
    """Mean IoU over frames (J mean) for each object id."""
    pred = read_labels(predicted) if isinstance(predicted, (str, Path)) else np.asarray(predicted)
    gt = read_labels(truth) if isinstance(truth, (str, Path)) else np.asarray(truth)
    if pred.shape != gt.shape:
        raise ValueError(f"predicted labels {pred.shape} and ground truth {gt.shape} differ in shape")
    if pred.ndim == 2:
        pred, gt = pred[None], gt[None]
    return {int(o): float(per_frame_iou(pred, gt, int(o)).mean()) for o in object_ids}
