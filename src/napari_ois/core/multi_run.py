"""Multi-object propagation runs of :class:`~napari_ois.core.session.AnnotationSession`.

A mixin, so the session module stays small: it computes a run with
:func:`~napari_ois.core.multi_propagation.propagate_objects`, writes each frame for
all of its objects in one labels write, and records the run as one undo step (a
group :class:`~napari_ois.core.history.Action` with one part per object).

Write policy, as for single objects: only pixels that are background or belong to an
object written on that frame change; objects outside the run, and objects whose
keyframe this frame is, are never overwritten.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Iterator

import numpy as np

from .errors import InputError
from .history import Action, pack_mask, unpack_mask
from .multi_propagation import MultiFrameResult, propagate_objects
from .segmenter import Prediction, Reference, frame_depth


class MultiObjectRuns:
    """Propagate several objects in one pass (mixed into ``AnnotationSession``)."""

    def objects_to_propagate(self, object_ids: Iterable[int] | None = None) -> list[int]:
        """The objects of a run: the given ids (each needs a keyframe), or every object with one."""
        if object_ids is None:
            ids = sorted(obj for obj, keys in self.keyframes.items() if keys)
            if not ids:
                raise InputError("no object has an annotated frame to propagate from")
            return ids
        ids = sorted({int(o) for o in object_ids})
        if not ids:
            raise InputError("no object to propagate")
        missing = [o for o in ids if not self.keyframes.get(o)]
        if missing:
            raise InputError(f"object(s) {missing} have no annotated frame to propagate from")
        return ids

    def _predict_for_object(self, object_id: int, embedding: Any, reference: Reference) -> Prediction:
        return self.segmenter.predict(
            embedding, [], prev_prob=reference.mask.astype(np.float32), reference=reference
        )

    def _encode_frame(self, frame: int) -> Any:
        with self.lock:
            return self.cache.get(frame)

    def multi_propagation(
        self, object_ids: Iterable[int] | None = None, direction: str = "both"
    ) -> Iterator[MultiFrameResult]:
        """Compute a one-pass run for several objects, one frame at a time; writes nothing.

        Parameters
        ----------
        object_ids : iterable of int, optional
            Objects to propagate together; None = every object with a keyframe.
        direction : {"forward", "backward", "both"}

        Apply each result with :meth:`apply_multi_result` inside a run from
        :meth:`begin_multi_run` (:meth:`run_multi_propagation` does the whole loop).
        """
        ids = self.objects_to_propagate(object_ids)
        return propagate_objects(
            self._encode_frame,
            self._predict_for_object,
            n_frames=self.frames.n_frames,
            keyframes={o: self.keyframes_of(o) for o in ids},
            keyframe_mask=self.object_mask,
            direction=direction,
            frame_depth=lambda embedding: frame_depth(self.segmenter, embedding),
            threshold=self.config.threshold,
            min_score=self.config.min_score,
        )

    def begin_multi_run(
        self, object_ids: Iterable[int], record: bool = True, direction: str | None = None
    ) -> Action:
        """Start recording a multi-object run: one undo step for all its objects.

        ``record=False`` keeps no before/after masks (headless runs over long data,
        where the undo history would grow with the frames); such a run is not undoable.
        ``direction`` (as given to :meth:`multi_propagation`) is passed on to observers.
        """
        ids = sorted({int(o) for o in object_ids})
        run = Action("propagate", ids[0] if len(ids) == 1 else 0, record=record)
        run.parts = [Action("propagate", o) for o in ids]
        self._forget_exemplars()
        self._tell("multi_run_begin", run=run, objects=ids, direction=direction)
        return run

    def _tell(self, event: str, **payload: Any) -> None:
        # Observers (e.g. the autosave) get their own event names for group runs:
        # a group's object_id is no single object.
        notify = getattr(self, "_notify", None)
        if notify is not None:
            notify(event, **payload)

    def apply_multi_result(self, run: Action, result: MultiFrameResult) -> list[int]:
        """Write one frame for all its objects in one labels write; returns the objects written.

        A frame is written whole or not at all, so a stopped run leaves it complete or untouched.
        """
        parts = {p.object_id: p for p in run.parts}
        with self.lock:
            frame = result.frame
            written = {
                obj: mask for obj, mask in result.masks.items()
                if obj in parts and frame not in self.keyframes.get(obj, ())  # user annotations win
            }
            if not written:
                return []
            index = self.frames.index(frame)
            current = np.asarray(self.labels[index])
            before = {obj: current == obj for obj in written}
            updated = current.copy()
            for obj in written:
                updated[before[obj]] = 0
            for obj, mask in written.items():  # disjoint masks: the order does not matter
                updated[mask & (updated == 0)] = obj
            self.labels[index] = updated
            scores = self._written_scores(frame, {obj: updated == obj for obj in written},
                                          {obj: result.scores[obj] for obj in written})
            for obj in written:
                score = scores[obj]
                if run.record:
                    part = parts[obj]
                    old_score = self.scores.get(obj, {}).get(frame)
                    part.scores[frame] = (part.scores[frame][0] if frame in part.scores else old_score, score)
                    first_before = part.masks[frame][0] if frame in part.masks else pack_mask(before[obj])
                    part.masks[frame] = (first_before, pack_mask(updated == obj))
                self.scores.setdefault(obj, {})[frame] = score
            self._tell("multi_frame", run=run, frame=frame, objects=sorted(written))
        return sorted(written)

    def run_multi_propagation(
        self,
        object_ids: Iterable[int] | None = None,
        direction: str = "both",
        on_frame: Callable[[MultiFrameResult], None] | None = None,
        record: bool = True,
    ) -> Action:
        """Propagate several objects in one pass and apply each frame (headless use).

        ``on_frame(result)`` is called after each frame is written. Returns the run
        (one undo step when ``record``; an interrupt keeps the finished frames).
        """
        results = self.multi_propagation(object_ids, direction)
        run = self.begin_multi_run(self.objects_to_propagate(object_ids), record=record, direction=direction)
        try:
            for result in results:
                self.apply_multi_result(run, result)
                if on_frame is not None:
                    on_frame(result)
        finally:
            self.end_run(run)
        return run

    def _restore_group(self, action: Action, after: bool) -> None:
        """Undo/redo a multi-object run frame by frame.

        On each frame all its objects are cleared first and then redrawn: restoring
        them one by one would let an object's new pixels block another's old ones.
        """
        side = 1 if after else 0
        for frame in action.frames:
            parts = [p for p in action.parts if frame in p.masks]
            index = self.frames.index(frame)
            labels = np.asarray(self.labels[index]).copy()
            for part in parts:
                labels[labels == part.object_id] = 0
            for part in parts:
                mask = unpack_mask(part.masks[frame][side], self.frames.shape)
                labels[mask & (labels == 0)] = part.object_id
            self.labels[index] = labels
        for part in action.parts:
            self.apply_action_state(part, after)
