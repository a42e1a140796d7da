"""Mask propagation along one axis (time or depth) as a generator of per-frame results.

The previous frame's mask (and its cached embedding) is the reference prompt for the
next frame. Propagation starts from the frames the user annotated (keyframes) and
never overwrites them. Between two keyframes it runs from both ends and meets in the
middle. After a correction it restarts from the corrected frame and stops as soon as
the new masks agree again with the earlier ones for a few frames, so only the frames
that change are recomputed.

The generator yields one :class:`FrameResult` at a time and writes nothing: the caller
(the session, the CLI, or a napari worker) applies each result, so a cancelled run
leaves every frame either untouched or fully updated.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

import numpy as np

from .click_simulator import iou as mask_iou
from .config import DIRECTIONS
from .errors import InputError
from .segmenter import Prediction


@dataclass
class FrameResult:
    """One propagated frame.

    Attributes
    ----------
    frame : int
        Index along the propagation axis.
    mask : np.ndarray
        (Y, X) bool mask of the object.
    score : float
        Quality estimate in [0, 1].
    source : int
        The neighbouring frame it was propagated from.
    """

    frame: int
    mask: np.ndarray
    score: float
    source: int


@dataclass
class _Walker:
    """One propagation front moving by ``step`` from ``ref_frame`` up to ``limit`` (exclusive)."""

    ref_frame: int
    ref_mask: np.ndarray
    step: int
    limit: int
    agreeing: int = 0
    active: bool = True

    @property
    def next_frame(self) -> int:
        return self.ref_frame + self.step


@dataclass(frozen=True)
class FrontPlan:
    """Where one propagation front runs.

    Attributes
    ----------
    source : int
        The keyframe it leaves from.
    step : int
        +1 (forward) or -1 (backward).
    limit : int
        The frame it must not reach: the neighbouring keyframe (or -1 / the stack length).
    share_limit : int
        With a partner front in the same gap (direction ``both``): where its share of the
        gap ends, ceil(gap / 2) frames for the forward front; else ``limit``. A runner that
        alternates the fronts frame by frame gets this split by itself (and lets a front go
        on where its partner stopped early); one that sweeps all forward fronts first uses
        it as the forward limit.
    """

    source: int
    step: int
    limit: int
    share_limit: int


def plan_fronts(keyframes: Iterable[int], n_frames: int, direction: str, start: int | None = None) -> list[FrontPlan]:
    """The propagation schedule of one object: the one rule both propagation paths follow.

    A runner stops a front at ``limit``, at a frame another front of the same object
    already reached (two fronts in one gap meet there), where the object is lost, or
    where its score falls below ``min_score``.

    Parameters
    ----------
    keyframes : iterable of int
        The object's annotated frames (never overwritten: fronts stop before them).
    n_frames : int
        Length of the axis.
    direction : {"forward", "backward", "both"}
    start : int, optional
        A corrected keyframe: fronts leave from it alone, each up to the neighbouring
        keyframe (or the stack end), with no partner.

    Returns
    -------
    list of FrontPlan
        Per source keyframe in increasing order: its forward front, then its backward one
        (the order in which alternating fronts give the forward one the first frame of a gap).
    """
    keys = sorted({int(k) for k in keyframes})
    plans = []
    for k in keys if start is None else [int(start)]:
        later = next((f for f in keys if f > k), None)
        earlier = next((f for f in reversed(keys) if f < k), None)
        if direction in ("forward", "both"):
            limit = n_frames if later is None else later
            share = limit
            if direction == "both" and start is None and later is not None:
                share = k + (later - k) // 2 + 1  # ceil(gap / 2) frames of the gap later - k - 1
            plans.append(FrontPlan(k, +1, limit, share))
        if direction in ("backward", "both"):
            limit = -1 if earlier is None else earlier
            share = limit
            if direction == "both" and start is None and earlier is not None:
                share = earlier + (k - earlier) // 2  # the rest of the gap: floor(gap / 2) frames
            plans.append(FrontPlan(k, -1, limit, share))
    return plans


def _make_walkers(
    keyframes: list[int],
    keyframe_mask: Callable[[int], np.ndarray],
    n_frames: int,
    direction: str,
    start: int | None,
) -> list[_Walker]:
    """Fronts for a run: from every keyframe (full run) or from ``start`` (correction)."""
    return [_Walker(plan.source, keyframe_mask(plan.source), plan.step, plan.limit)
            for plan in plan_fronts(keyframes, n_frames, direction, start)]


def propagate(
    predict_frame: Callable[[int, int, np.ndarray], Prediction],
    n_frames: int,
    keyframes: Iterable[int],
    keyframe_mask: Callable[[int], np.ndarray],
    direction: str = "both",
    start: int | None = None,
    previous_mask: Callable[[int], np.ndarray | None] | None = None,
    threshold: float = 0.5,
    agree_iou: float = 0.95,
    agree_frames: int = 3,
    min_score: float = 0.0,
) -> Iterator[FrameResult]:
    """Propagate one object's keyframe masks along the frame axis.

    Parameters
    ----------
    predict_frame : callable
        ``predict_frame(frame, ref_frame, ref_mask) -> Prediction``: segment the object on
        ``frame`` given the (Y, X) bool mask on the neighbouring ``ref_frame``.
    n_frames : int
        Length of the axis.
    keyframes : iterable of int
        Frames the user annotated for this object; never overwritten, and a front
        stops when it reaches one.
    keyframe_mask : callable
        ``keyframe_mask(frame) -> (Y, X) bool`` mask of the object on a keyframe.
    direction : {"forward", "backward", "both"}
        Which way(s) to go from each source frame.
    start : int, optional
        Re-propagate only from this (corrected) keyframe instead of from all keyframes.
        With ``previous_mask`` the fronts stop once they agree with the earlier result.
    previous_mask : callable, optional
        ``previous_mask(frame) -> (Y, X) bool or None``: the object's mask before this
        run; enables the agreement stop (only used when ``start`` is given).
    threshold : float
        Probability threshold that turns a prediction into a mask.
    agree_iou, agree_frames : float, int
        A correction front stops after ``agree_frames`` consecutive frames whose new
        mask has IoU >= ``agree_iou`` with the previous one.
    min_score : float
        A front stops after yielding a frame scored below this (0 disables).

    Yields
    ------
    FrameResult
        One per computed frame, interleaving the fronts so that two fronts in the
        same gap meet in the middle and every direction makes progress.
    """
    if direction not in DIRECTIONS:
        raise InputError(f"direction must be one of {', '.join(DIRECTIONS)}, got {direction!r}")
    keys = sorted({int(k) for k in keyframes})
    if not keys:
        raise InputError("nothing to propagate from: the object has no annotated frame")
    if any(not 0 <= k < n_frames for k in keys):
        raise InputError(f"keyframes {keys} fall outside the stack (0..{n_frames - 1})")
    if start is not None and start not in keys:
        raise InputError(f"frame {start} is not an annotated frame of this object")
    converge = start is not None and previous_mask is not None
    walkers = _make_walkers(keys, keyframe_mask, n_frames, direction, start)
    claimed = set(keys)

    while any(w.active for w in walkers):
        for walker in walkers:
            if not walker.active:
                continue
            frame = walker.next_frame
            # Stop at the bounds, at a keyframe, or where another front already went
            # (that is where two fronts in one gap meet).
            if frame == walker.limit or frame in claimed or not 0 <= frame < n_frames:
                walker.active = False
                continue
            claimed.add(frame)
            prediction = predict_frame(frame, walker.ref_frame, walker.ref_mask)
            mask = prediction.prob > threshold
            # Read the earlier result *before* yielding: a caller that writes the frame
            # as soon as it gets it would otherwise compare the new mask with itself.
            before = previous_mask(frame) if converge else None
            yield FrameResult(frame, mask, float(prediction.score), walker.ref_frame)
            walker.ref_frame, walker.ref_mask = frame, mask
            if not mask.any() or prediction.score < min_score:
                # The object is lost (left the field or faded): going on would only
                # propagate nothing, so this front ends here.
                walker.active = False
            elif converge:
                agrees = before is not None and mask_iou(mask, before) >= agree_iou
                walker.agreeing = walker.agreeing + 1 if agrees else 0
                if walker.agreeing >= agree_frames:
                    walker.active = False
