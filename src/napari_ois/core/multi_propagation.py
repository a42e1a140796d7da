"""Several objects propagated in one pass over the frames, overlaps resolved by order.

The single-object walker (:mod:`.propagation`) runs one object at a time, so a stack
with N objects is walked N times and, once the embedding cache is full, every frame
is encoded N times. Here all objects advance together: the frames are swept once
forward (all forward fronts) and once backward (all backward fronts); on each frame
the encoder runs once, every object whose front reaches the frame is predicted from
its own reference (its mask on the neighbouring frame), and where the predicted
masks overlap each pixel goes to one object:

1. if the backend gives a depth map for the frame (``frame_depth``, larger = closer),
   the object whose mask is closer on average wins (the order cue of OIS);
2. otherwise, or when the objects are at about the same depth, the higher
   probability wins (ties: the object listed first).

As in the single-object walker, keyframes are never predicted, fronts stop at the
next keyframe, at the stack ends or when the object is lost, and between two
keyframes (direction ``both``) the forward front takes the first half of the gap
and the backward front the rest (more if the forward front was lost early).

The generator yields one :class:`MultiFrameResult` per frame and writes nothing; the
caller applies each result whole (see :class:`~napari_ois.core.multi_run.MultiObjectRuns`),
so a cancelled run leaves every frame either as it was or fully updated.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import numpy as np

from .config import DIRECTIONS
from .errors import InputError
from .propagation import FrameResult, plan_fronts
from .segmenter import Prediction, Reference

#: Objects whose mean depths differ by less than this fraction of the frame's depth
#: range count as equally near: the probability decides between them.
DEPTH_TOLERANCE = 0.01


@dataclass
class MultiFrameResult:
    """One frame of a multi-object run.

    Attributes
    ----------
    frame : int
        Index along the propagation axis.
    masks : dict[int, np.ndarray]
        Object id -> (Y, X) bool mask after overlap resolution; the masks are pairwise
        disjoint. An object may be present with an empty mask (hidden by another one).
    scores : dict[int, float]
        Object id -> quality estimate in [0, 1] of its prediction.
    sources : dict[int, int]
        Object id -> the neighbouring frame it was propagated from.
    """

    frame: int
    masks: dict[int, np.ndarray] = field(default_factory=dict)
    scores: dict[int, float] = field(default_factory=dict)
    sources: dict[int, int] = field(default_factory=dict)

    def object_results(self) -> list[tuple[int, FrameResult]]:
        """The frame as (object id, :class:`FrameResult`) pairs (for per-object progress)."""
        return [
            (obj, FrameResult(self.frame, mask, self.scores[obj], self.sources[obj]))
            for obj, mask in self.masks.items()
        ]


class OverlapResolver:
    """Assigns every pixel to at most one object, folding objects in one at a time.

    Only one probability map is held at a time, so memory does not grow with the
    number of objects beyond one (Y, X) owner map.

    Parameters
    ----------
    shape : tuple of int
        (Y, X) frame size.
    threshold : float
        Probability above which a pixel is claimed by an object.
    depth : np.ndarray, optional
        (Y, X) float depth of the frame, larger = closer; None: probability only.
    depth_tolerance : float
        Fraction of the depth map's range within which two objects count as equally near.
    """

    def __init__(
        self,
        shape: tuple[int, int],
        threshold: float = 0.5,
        depth: np.ndarray | None = None,
        depth_tolerance: float = DEPTH_TOLERANCE,
    ):
        self.shape = tuple(shape)
        self.threshold = float(threshold)
        self.depth = None
        if depth is not None:
            depth = np.asarray(depth, dtype=np.float32)
            if depth.shape != self.shape:
                raise ValueError(f"depth map has shape {depth.shape}, the frame {self.shape}")
            finite = depth[np.isfinite(depth)]
            if finite.size:
                self.depth = depth
                self.tolerance = depth_tolerance * float(finite.max() - finite.min())
        self.ids: list[int] = []
        self._owner = np.zeros(self.shape, np.int32)  # index into self.ids, plus one; 0 = nobody
        self._best_prob = np.full(self.shape, -1.0, np.float32)
        self._best_depth = np.full(self.shape, np.nan, np.float32) if self.depth is not None else None

    def add(self, object_id: int, prob: np.ndarray) -> None:
        """Fold in one object's (Y, X) float probability (a bool mask counts as 0/1)."""
        prob = np.asarray(prob, dtype=np.float32)
        if prob.shape != self.shape:
            raise ValueError(f"object {object_id}: probability has shape {prob.shape}, the frame {self.shape}")
        claim = prob > self.threshold
        self.ids.append(int(object_id))
        if not claim.any():
            return
        better = prob > self._best_prob  # strict: on a tie the object folded in first keeps the pixel
        if self.depth is not None:
            values = self.depth[claim]
            values = values[np.isfinite(values)]
            mean_depth = np.float32(values.mean()) if values.size else np.float32(np.nan)
            # Compare with each pixel's current owner; NaN (no owner, or no depth) is undecided.
            with np.errstate(invalid="ignore"):
                difference = mean_depth - self._best_depth
                closer = difference > self.tolerance
                farther = difference < -self.tolerance
            take = claim & (closer | (~farther & better))
            self._best_depth[take] = mean_depth
        else:
            take = claim & better
        self._owner[take] = len(self.ids)
        self._best_prob[take] = prob[take]

    def masks(self) -> dict[int, np.ndarray]:
        """Object id -> (Y, X) bool mask of the pixels it won (pairwise disjoint)."""
        return {obj: self._owner == i + 1 for i, obj in enumerate(self.ids)}


def resolve_overlaps(
    probs: Sequence[tuple[int, np.ndarray]],
    threshold: float = 0.5,
    depth: np.ndarray | None = None,
    depth_tolerance: float = DEPTH_TOLERANCE,
) -> dict[int, np.ndarray]:
    """Turn overlapping object probabilities into disjoint masks.

    Parameters
    ----------
    probs : sequence of (int, np.ndarray)
        (object id, (Y, X) float probability) pairs; on exact ties the earlier pair wins.
    threshold : float
        Probability above which a pixel belongs to an object.
    depth : np.ndarray, optional
        (Y, X) depth of the frame, larger = closer. Where masks overlap, the object
        whose whole mask has the larger mean depth (is in front) wins; objects whose
        mean depths differ by at most ``depth_tolerance`` x the depth range, or all
        objects without a depth map, are decided by the higher probability.

    Returns
    -------
    dict[int, np.ndarray]
        Object id -> (Y, X) bool mask.
    """
    if not probs:
        return {}
    resolver = OverlapResolver(np.shape(probs[0][1]), threshold, depth, depth_tolerance)
    for object_id, prob in probs:
        resolver.add(object_id, prob)
    return resolver.masks()


@dataclass
class _Front:
    """One object's front moving by ``step`` from ``ref_frame`` up to ``limit`` (exclusive)."""

    object_id: int
    source: int  # the keyframe it started from
    ref_frame: int
    ref_mask: np.ndarray
    step: int
    limit: int
    active: bool = True

    @property
    def next_frame(self) -> int:
        return self.ref_frame + self.step


def _fronts(
    keyframes: Mapping[int, list[int]],
    keyframe_mask: Callable[[int, int], np.ndarray],
    n_frames: int,
    direction: str,
    step: int,
    forward_end: Mapping[tuple[int, int], int] | None = None,
) -> list[_Front]:
    """Every object's fronts of one sweep direction, as :func:`~napari_ois.core.propagation.plan_fronts`
    plans them. The forward sweep runs before the backward one, so a forward front stops at
    its share of a shared gap; a backward front goes on to where the forward front of its
    gap ended (``forward_end``: (object, keyframe) -> last frame that front reached)."""
    fronts = []
    for obj, keys in keyframes.items():
        for plan in plan_fronts(keys, n_frames, direction):
            if plan.step != step:
                continue
            limit = plan.share_limit if step > 0 else plan.limit
            if step < 0 and forward_end and plan.limit >= 0:
                limit = forward_end.get((obj, plan.limit), plan.limit)  # plan.limit: the earlier keyframe
            fronts.append(_Front(obj, plan.source, plan.source, keyframe_mask(obj, plan.source), step, limit))
    return fronts


def _pack(mask: np.ndarray) -> np.ndarray:
    return np.packbits(mask, axis=None)


def _unpack(bits: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    return np.unpackbits(bits, count=shape[0] * shape[1]).reshape(shape).astype(bool)


def propagate_objects(
    encode: Callable[[int], Any],
    predict: Callable[[int, Any, Reference], Prediction],
    n_frames: int,
    keyframes: Mapping[int, Iterable[int]],
    keyframe_mask: Callable[[int, int], np.ndarray],
    direction: str = "both",
    frame_depth: Callable[[Any], np.ndarray | None] | None = None,
    threshold: float = 0.5,
    min_score: float = 0.0,
    depth_tolerance: float = DEPTH_TOLERANCE,
) -> Iterator[MultiFrameResult]:
    """Propagate several objects' keyframe masks in one pass along the frame axis.

    Parameters
    ----------
    encode : callable
        ``encode(frame) -> embedding``; called once per frame of a sweep (e.g. the
        session's embedding cache ``get``, so the other sweep may reuse it).
    predict : callable
        ``predict(object_id, embedding, reference) -> Prediction`` for the frame whose
        ``embedding`` is given; ``reference`` holds the neighbouring frame's embedding
        and the object's (Y, X) bool mask there.
    n_frames : int
        Length of the axis.
    keyframes : mapping
        Object id -> frames the user annotated for it (never overwritten; fronts stop there).
    keyframe_mask : callable
        ``keyframe_mask(object_id, frame) -> (Y, X) bool`` mask of an object on its keyframe.
    direction : {"forward", "backward", "both"}
    frame_depth : callable, optional
        ``frame_depth(embedding) -> (Y, X) depth or None`` (larger = closer), called once
        per frame with more than one object; None: overlaps go by probability.
    threshold : float
        Probability threshold that turns a prediction into a mask.
    min_score : float
        A front stops after a frame scored below this (0 disables).
    depth_tolerance : float
        See :func:`resolve_overlaps`.

    Returns
    -------
    Iterator[MultiFrameResult]
        One result per frame reached by at least one front: the forward sweep first
        (frames in increasing order), then the backward sweep (decreasing order). The
        arguments are checked at once (:class:`InputError`); the work starts on the
        first ``next()``, e.g. in a worker thread.

    Notes
    -----
    A frame that one object reaches in the forward sweep and another in the backward
    sweep (keyframes on different frames, direction ``both``) is resolved in the
    backward sweep: the forward object's mask takes part with probability 1, so
    without depth it keeps its pixels.
    """
    if direction not in DIRECTIONS:
        raise InputError(f"direction must be one of {', '.join(DIRECTIONS)}, got {direction!r}")
    keys = {int(obj): sorted({int(k) for k in frames}) for obj, frames in keyframes.items()}
    for obj, frames in keys.items():
        if not frames:
            raise InputError(f"object {obj} has no annotated frame to propagate from")
        if any(not 0 <= k < n_frames for k in frames):
            raise InputError(f"keyframes {frames} of object {obj} fall outside the stack (0..{n_frames - 1})")
    if not keys:
        raise InputError("no object to propagate")
    keys = dict(sorted(keys.items()))  # folding order = object id order (ties go to the lower id)

    walk = _OnePassWalk(encode, predict, n_frames, keys, keyframe_mask, direction, frame_depth,
                        threshold, min_score, depth_tolerance)
    return walk.results()  # validated now; the walk itself starts on the first next()


class _OnePassWalk:
    """State of one run of :func:`propagate_objects` (arguments as there, already checked)."""

    def __init__(self, encode, predict, n_frames, keys, keyframe_mask, direction, frame_depth,
                 threshold, min_score, depth_tolerance):
        self.encode, self.predict, self.frame_depth = encode, predict, frame_depth
        self.n_frames, self.keys, self.keyframe_mask, self.direction = n_frames, keys, keyframe_mask, direction
        self.threshold, self.min_score, self.depth_tolerance = threshold, min_score, depth_tolerance
        # Frames a backward front may reach: forward results there are kept (packed) as
        # incumbents for the overlap resolution of the backward sweep.
        self.backward_span = np.zeros(n_frames, bool)
        if direction == "both":
            for frames in keys.values():
                for i, k in enumerate(frames):
                    self.backward_span[(frames[i - 1] + 1 if i else 0) : k] = True
        self.incumbents: dict[int, dict[int, tuple[np.ndarray, float, int]]] = {}
        # (object, keyframe) -> last frame its forward front reached: the backward front
        # of the same gap stops there.
        self.forward_end: dict[tuple[int, int], int] = {}

    def results(self) -> Iterator[MultiFrameResult]:
        if self.direction in ("forward", "both"):
            fronts = _fronts(self.keys, self.keyframe_mask, self.n_frames, self.direction, +1)
            yield from self._sweep(fronts, +1)
        if self.direction in ("backward", "both"):
            fronts = _fronts(self.keys, self.keyframe_mask, self.n_frames, self.direction, -1, self.forward_end)
            yield from self._sweep(fronts, -1)

    def _sweep(self, fronts: list[_Front], step: int) -> Iterator[MultiFrameResult]:
        """Advance all fronts of one direction frame by frame, each frame encoded once."""
        held: tuple[int, Any] | None = None  # the last encoded frame: the next frame's reference
        while True:
            for f in fronts:
                # Stop at the limit (a keyframe, the gap's share or the stack end).
                if f.active and (f.next_frame == f.limit or not 0 <= f.next_frame < self.n_frames):
                    f.active = False
            live = [f for f in fronts if f.active]
            if not live:
                return
            frame = min(f.next_frame for f in live) if step > 0 else max(f.next_frame for f in live)
            here = sorted((f for f in live if f.next_frame == frame), key=lambda f: f.object_id)
            ref_frame = frame - step
            ref_embedding = held[1] if held is not None and held[0] == ref_frame else self.encode(ref_frame)
            embedding = self.encode(frame)
            held = (frame, embedding)
            result = self._step(frame, here, embedding, ref_embedding, self.incumbents.pop(frame, {}))
            if step > 0 and self.backward_span[frame]:
                self.incumbents[frame] = {
                    o: (_pack(m), result.scores[o], result.sources[o]) for o, m in result.masks.items()
                }
            yield result

    def _step(self, frame: int, here: list[_Front], embedding: Any, ref_embedding: Any,
              old: dict[int, tuple[np.ndarray, float, int]]) -> MultiFrameResult:
        """Predict every front on ``frame``, resolve the overlaps, move the fronts on."""
        result = MultiFrameResult(frame)
        shape = here[0].ref_mask.shape
        depth = None
        if self.frame_depth is not None and len(here) + len(old) > 1:
            depth = self.frame_depth(embedding)
        resolver = OverlapResolver(shape, self.threshold, depth, self.depth_tolerance)
        for obj, (bits, score, source) in old.items():  # earlier sweep's objects first: ties are theirs
            resolver.add(obj, _unpack(bits, shape))
            result.scores[obj], result.sources[obj] = score, source
        raw: dict[int, np.ndarray] = {}
        for front in here:
            prediction = self.predict(front.object_id, embedding, Reference(ref_embedding, front.ref_mask))
            resolver.add(front.object_id, prediction.prob)
            raw[front.object_id] = _pack(prediction.prob > self.threshold)
            result.scores[front.object_id] = float(prediction.score)
            result.sources[front.object_id] = front.ref_frame
        result.masks = resolver.masks()
        for front in here:
            mask = result.masks[front.object_id]
            raw_mask = _unpack(raw[front.object_id], shape)
            front.ref_frame = frame
            # The visible part is the next reference; an object hidden entirely behind
            # another goes on from its own prediction, so it can reappear.
            front.ref_mask = mask if mask.any() else raw_mask
            if front.step > 0:
                self.forward_end[(front.object_id, front.source)] = frame
            if not raw_mask.any() or result.scores[front.object_id] < self.min_score:
                # The object is lost (left the field or faded): this front ends here.
                front.active = False
        return result
