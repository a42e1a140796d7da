"""Zoom-in: run the prompt path on a crop around the object, not on the whole frame.

The model sees a fixed S x S input. On a 576 x 720 cell frame at S = 256 a cell of
25 px becomes 9 model pixels, and a nucleus 4: smaller than what the network was
trained on (object-centred views with 1.3-3.5x context) and far too coarse for its
boundary. RITM's zoom-in (design/model.md 4.7) fixes that at test time: crop the
frame around the object, encode the crop, predict there, paste the result back.

Here the object's extent comes from what is known before the network runs: the
positive clicks, the previous mask (the reference mask when propagating) and the
classical prior's mask. A crop is encoded once and reused while the object stays
well inside it, so most clicks still only rerun the prompt path.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Sequence

import numpy as np

Box = tuple[int, int, int, int]
"""(y0, y1, x0, x1), half-open, in frame pixels."""


@dataclass(frozen=True)
class ZoomSettings:
    """How the crop around the object is chosen.

    Attributes
    ----------
    enabled : bool
        False runs every prediction on the whole frame.
    without_clicks : bool
        Also zoom for pure propagation steps (no click on the frame). Off: on the
        CTC and COCO *training* data zoom-in helped clicking (held-out COCO objects
        NoC@85 7.53 -> 7.30, CTC cells mIoU@5 0.33 -> 0.36) but made propagated cell
        masks shrink faster (J over 5 steps 0.33 -> 0.21 to 0.29).
    expand : float
        Crop side / object box side, per axis (training views had 1.3-3.5x context).
    min_side : int
        Smallest crop side in frame pixels, so a tiny object is not blown up past
        what the network saw in training.
    max_fraction : float
        A crop covering more than this fraction of the frame's area gains nothing:
        the whole frame is used instead.
    keep_iou : float
        A cached crop is reused while it contains the object and overlaps the ideal
        crop by at least this IoU (RITM recomputes below 0.5).
    keep_crops : int
        Crop encodings kept per frame (the newest ones); several objects propagated
        in one pass each need their own.
    crop_prior : bool
        Recompute the classical prior on the crop when the whole frame's prior ran on
        a downscaled grid (frames larger than the prior's working size). On training-side
        checks it lifted CTC cells clicked (mIoU@5 0.40 -> 0.68) and propagated
        (J 0.39 -> 0.83), and held-out COCO objects NoC@85 6.60 -> 6.27.
    crop_only_steps : bool
        With the crop prior, predict a click-free (propagation) step on the crop alone,
        placed by the previous and reference masks: no whole-frame prior or residual.
        Same J on the training-side checks (moving COCO 0.863 / 0.859) and on dev (CTC
        0.677 / 0.677, DAVIS 0.491 / 0.490), at 2-6x the frames per second.
    """

    enabled: bool = True
    without_clicks: bool = False
    expand: float = 2.0
    min_side: int = 64
    max_fraction: float = 0.5
    keep_iou: float = 0.5
    keep_crops: int = 8
    crop_prior: bool = True
    crop_only_steps: bool = True


def zoom_from_metadata(metadata: dict) -> ZoomSettings:
    """The zoom settings a checkpoint carries (``metadata["zoom"]``), unknown keys ignored."""
    stored = metadata.get("zoom") or {}
    known = {f.name for f in fields(ZoomSettings)}
    return ZoomSettings(**{k: v for k, v in stored.items() if k in known})


def object_box(masks: Sequence[np.ndarray | None], points: Sequence[tuple[float, float]]) -> Box | None:
    """Bounding box of the union of ``masks`` (each (Y, X), > 0.5 is inside) and ``points``.

    Returns None when nothing marks the object.
    """
    ys: list[int] = []
    xs: list[int] = []
    for mask in masks:
        if mask is None:
            continue
        rows = np.flatnonzero(np.any(np.asarray(mask) > 0.5, axis=1))
        if rows.size:
            cols = np.flatnonzero(np.any(np.asarray(mask) > 0.5, axis=0))
            ys += [int(rows[0]), int(rows[-1])]
            xs += [int(cols[0]), int(cols[-1])]
    for y, x in points:
        ys.append(int(np.floor(y)))
        xs.append(int(np.floor(x)))
    if not ys:
        return None
    return min(ys), max(ys) + 1, min(xs), max(xs) + 1


def _expand_axis(lo: int, hi: int, length: int, expand: float, min_side: int) -> tuple[int, int]:
    """[lo, hi) grown about its centre to max(expand * side, min_side), shifted inside [0, length)."""
    side = int(np.ceil(max((hi - lo) * expand, min_side)))
    side = min(side, length)
    start = int(round((lo + hi) / 2 - side / 2))
    start = min(max(start, 0), length - side)
    return start, start + side


def zoom_box(box: Box | None, frame_hw: tuple[int, int], settings: ZoomSettings) -> Box | None:
    """The crop for an object ``box`` in a (Y, X) frame, or None to use the whole frame."""
    if box is None or not settings.enabled:
        return None
    height, width = frame_hw
    y0, y1 = _expand_axis(box[0], box[1], height, settings.expand, settings.min_side)
    x0, x1 = _expand_axis(box[2], box[3], width, settings.expand, settings.min_side)
    if (y1 - y0) * (x1 - x0) > settings.max_fraction * height * width:
        return None
    return y0, y1, x0, x1


def with_motion(box: Box, dy: int, dx: int, frame_hw: tuple[int, int]) -> Box:
    """``box`` grown to also cover its copy moved by (dy, dx), clipped to the (Y, X) frame.

    A propagation step places its crop by the previous frame's mask; an object that
    moved more than half its size would leave a crop twice its size. Covering both
    the old and the moved box keeps it inside whichever of the two is right.
    """
    height, width = frame_hw
    y0, y1, x0, x1 = box
    return (max(0, min(y0, y0 + dy)), min(height, max(y1, y1 + dy)),
            max(0, min(x0, x0 + dx)), min(width, max(x1, x1 + dx)))


def union_box(a: Box | None, b: Box) -> Box:
    """Smallest box holding ``b`` and, unless None, ``a``."""
    if a is None:
        return b
    return min(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), max(a[3], b[3])


def box_iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes."""
    iy = max(0, min(a[1], b[1]) - max(a[0], b[0]))
    ix = max(0, min(a[3], b[3]) - max(a[2], b[2]))
    inter = iy * ix
    union = (a[1] - a[0]) * (a[3] - a[2]) + (b[1] - b[0]) * (b[3] - b[2]) - inter
    return inter / union if union else 0.0


def contains(outer: Box, inner: Box) -> bool:
    """Whether ``inner`` lies inside ``outer``."""
    return outer[0] <= inner[0] and inner[1] <= outer[1] and outer[2] <= inner[2] and inner[3] <= outer[3]


def reusable_crop(cached: Sequence[Box], needed: Box, ideal: Box, settings: ZoomSettings) -> Box | None:
    """A cached crop that still fits: it contains the object and is close to the ideal crop."""
    for box in reversed(list(cached)):  # newest first
        if contains(box, needed) and box_iou(box, ideal) >= settings.keep_iou:
            return box
    return None


__all__ = ["Box", "ZoomSettings", "zoom_from_metadata", "object_box", "zoom_box", "with_motion", "union_box", "box_iou", "contains", "reusable_crop"]
