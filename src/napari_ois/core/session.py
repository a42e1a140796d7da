"""Annotation session: clicks, keyframes, labels and undo/redo over one frame stack.

The napari widget, the CLI and the evaluation's click simulator all drive this one
class, so what is benchmarked is what users run.

Label writing policy ("preserve other objects"): writing object ``k`` on a frame only
changes pixels that are background or already ``k``; labels of other objects are never
overwritten, so no work is lost.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import Any, Callable, Iterator

import numpy as np

from .boxes import BoxPrompt, validate_box
from .clicks import Click, PromptStore, validate_click
from .config import AnnotationConfig
from .embedding_store import DiskEmbeddingStore
from .errors import InputError
from .frames import FrameStack
from .multi_run import MultiObjectRuns
from .packed_prob import PackedProb, pack_prob
from .propagation import FrameResult, propagate
from .segmenter import EmbeddingCache, Prediction, Reference, Segmenter
from .backends import backend_names, get_segmenter
from .history import Action, pack_mask, unpack_mask
from .track_quality import TrackQuality


class AnnotationSession(MultiObjectRuns, TrackQuality):
    """State of annotating one frame stack.

    Parameters
    ----------
    frames : FrameStack
        The image frames (lazy), walked along their axis.
    labels : array-like, optional
        Integer array with the shape of the image without channels, e.g. (T, Y, X),
        written in place (numpy or zarr; the napari Labels layer's data). A new uint32
        numpy array of zeros when None.
    segmenter : Segmenter, optional
        Backend; built from ``config.backend`` when None.
    config : AnnotationConfig, optional
        Settings; defaults when None.
    cache : EmbeddingCache, optional
        Embedding cache to share; a new one bounded by ``config.cache_mb`` when None.
    """

    def __init__(
        self,
        frames: FrameStack,
        labels: Any = None,
        segmenter: Segmenter | None = None,
        config: AnnotationConfig | None = None,
        cache: EmbeddingCache | None = None,
    ):
        self.config = (config or AnnotationConfig()).validate()
        self.frames = frames
        label_shape = tuple(frames.data.shape[:-1] if frames.rgb else frames.data.shape)
        if labels is None:
            labels = np.zeros(label_shape, dtype=np.uint32)
        elif tuple(labels.shape) != label_shape:
            raise InputError(
                f"labels have shape {tuple(labels.shape)} but the image needs {label_shape}"
            )
        self.labels = labels
        self.segmenter = segmenter or get_segmenter(
            self.config.backend, self.config.device, self.config.checkpoint
        )
        name = getattr(segmenter, "name", None)
        if segmenter is not None and name in backend_names() and name != self.config.backend:
            # The config is what autosave records and replay rebuilds: it must name the
            # backend that actually runs, not the default one.
            self.config = replace(self.config, backend=name)
        # A cache can be shared by sessions over the same frames (e.g. the evaluation
        # segments many objects of one image): the image is then encoded once.
        if cache is None:
            disk = None
            if self.config.disk_cache_dir:
                disk = DiskEmbeddingStore(self.config.disk_cache_dir, self.config.disk_cache_mb * 2**20)
            cache = EmbeddingCache(self.segmenter, frames.__getitem__, self.config.cache_mb * 2**20, disk)
        self.cache = cache
        self.prompts = PromptStore()
        self.keyframes: dict[int, set[int]] = {}
        self.scores: dict[int, dict[int, float]] = {}
        # Probability of the last interaction per (object, frame): fed back as prev_prob
        # so the next click refines rather than restarts (the evaluation protocol too).
        # Packed (8-bit, zlib): the state and the undo history stay small however many clicks.
        self._probs: dict[tuple[int, int], PackedProb] = {}
        self.undo_stack: list[Action] = []
        self.redo_stack: list[Action] = []
        self._action_bytes: dict[int, int] = {}  # id(action) -> Action.nbytes, counted once at push
        self.forgotten_steps = 0  # oldest undo steps dropped to keep within config.undo_mb
        # The keyframe set each object's last action left, shared by the next actions while
        # it does not change: a frozenset per click would grow with the keyframes.
        self._frozen_keyframes: dict[int, frozenset] = {}
        self._known_ids = self._ids_in_labels()
        # Guards label writes and the cache when a worker thread propagates while the
        # main thread reads.
        self.lock = threading.RLock()
        # Called as observer(event, session, **payload) after each change, e.g. by the
        # autosave (core/autosave): "push", "undo", "redo" (action=), "run_begin"
        # (run=, direction=, start=), "frame" (run=, frame=).
        self.observers: list[Callable[..., None]] = []

    # ------------------------------------------------------------------ labels
    def _ids_in_labels(self) -> set[int]:
        # Scanning a huge on-disk array at start-up would defeat laziness; ids of
        # such arrays are learnt as objects are annotated instead.
        if isinstance(self.labels, np.ndarray) and self.labels.size <= 2**28:
            return {int(i) for i in np.unique(self.labels) if i}
        return set()

    def object_mask(self, object_id: int, frame: int) -> np.ndarray:
        """(Y, X) bool mask of ``object_id`` on ``frame``."""
        return np.asarray(self.labels[self.frames.index(frame)]) == object_id

    def write_object_mask(self, object_id: int, frame: int, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Make ``mask`` the object's pixels on ``frame`` without touching other objects.

        Returns the object's (Y, X) bool mask before and after, from the one read of the
        frame (labels may live on disk: no second read on the propagation hot path).
        """
        idx = self.frames.index(frame)
        current = np.asarray(self.labels[idx])
        before = current == object_id
        updated = current.copy()
        updated[before] = 0
        updated[mask & (updated == 0)] = object_id
        self.labels[idx] = updated
        return before, updated == object_id

    def _set_mask(self, action: Action, frame: int, mask: np.ndarray) -> np.ndarray:
        """Write a mask and record before/after in ``action`` (first 'before' wins); returns
        the object's (Y, X) bool mask as written."""
        before, after = self.write_object_mask(action.object_id, frame, mask)
        first_before = action.masks[frame][0] if frame in action.masks else pack_mask(before)
        action.masks[frame] = (first_before, pack_mask(after))
        return after

    # ----------------------------------------------------------------- objects
    def objects(self) -> list[int]:
        """Ids of the objects annotated in this session or found in the labels."""
        return sorted(self._known_ids | set(self.keyframes) | set(self.prompts.objects()))

    def note_object_id(self, object_id: int) -> None:
        """Count ``object_id`` as used (e.g. painted by hand into labels that are not scanned)."""
        if int(object_id) > 0:
            self._known_ids.add(int(object_id))

    def new_object_id(self) -> int:
        """An id not used yet."""
        return max(self.objects(), default=0) + 1

    def keyframes_of(self, object_id: int) -> list[int]:
        """Sorted frames the user annotated for ``object_id``."""
        return sorted(self.keyframes.get(object_id, ()))

    def correction_start(self, object_id: int, frame: int) -> int | None:
        """The frame a propagation should restart from when the user propagates on ``frame``.

        A correction: ``frame`` is a keyframe of an object that was propagated before (it
        has scored frames that are not keyframes), so only the frames that change need
        recomputing, from ``frame`` (see :meth:`propagation`'s ``start``). None: a full run.
        """
        keys = self.keyframes.get(object_id, set())
        propagated = any(f not in keys for f in self.scores.get(object_id, {}))
        return frame if frame in keys and propagated else None

    # ------------------------------------------------------------------ clicks
    def _check_frame(self, frame: int) -> None:
        if not 0 <= frame < self.frames.n_frames:
            raise InputError(f"frame {frame} is outside the stack (0..{self.frames.n_frames - 1})")

    def _check_object_id(self, object_id: int) -> None:
        """Refuse ids the labels array cannot hold (numpy would raise OverflowError mid-write)."""
        dtype = np.dtype(self.labels.dtype)
        top = np.iinfo(dtype).max if dtype.kind in "iu" else 2**32 - 1
        if not 1 <= object_id <= top:
            raise InputError(f"object id must be between 1 and {top} for {dtype} labels, got {object_id}")

    def check_click(self, click: Click) -> None:
        """Raise :class:`InputError` if ``click`` cannot be applied (outside the image or the
        stack, or a bad object id); cheap, so a caller can refuse a click before encoding."""
        height, width = self.frames.shape
        validate_click(click, self.frames.n_frames, height, width)
        self._check_object_id(click.object_id)

    def add_click(self, click: Click) -> Prediction:
        """Add a click and update that object's mask on that frame at once.

        Raises
        ------
        InputError
            The click is outside the image or the stack; nothing changes then.
        """
        self.check_click(click)
        obj, frame = click.object_id, click.frame
        with self.lock:
            clicks_before = self.prompts.clicks(obj, frame)
            packed_before = self._probs.get((obj, frame))
            prev_prob = None if packed_before is None else np.asarray(packed_before)
            if prev_prob is None:
                # First click on a frame that already holds a mask (propagated or
                # loaded): correct that mask rather than start from nothing.
                existing = self.object_mask(obj, frame)
                prev_prob = existing.astype(np.float32) if existing.any() else None
            box = self.prompts.box(obj, frame)
            # Backends without box prompts never receive the keyword.
            extra = {} if box is None else {"box": box}
            prediction = self.segmenter.predict(
                self.cache.get(frame), clicks_before + [click], prev_prob=prev_prob, **extra
            )
            action = Action("click", obj)
            action.clicks[frame] = (clicks_before, clicks_before + [click])
            action.probs[frame] = (packed_before, pack_prob(prediction.prob))
            action.keyframes = self._keyframe_change(obj, add=frame)
            action.scores[frame] = (self.scores.get(obj, {}).get(frame), prediction.score)
            self._set_mask(action, frame, prediction.mask(self.config.threshold))
            self.apply_action_state(action, after=True)
            self.push_action(action)
        return prediction

    def check_box(self, object_id: int, frame: int, box: BoxPrompt) -> None:
        """Raise :class:`InputError` if ``box`` cannot be applied (bad corners, outside the
        image, a frame outside the stack, a bad object id); nothing is encoded."""
        self._check_frame(frame)
        self._check_object_id(object_id)
        height, width = self.frames.shape
        validate_box(box, height, width)

    def add_box(self, object_id: int, frame: int, box: BoxPrompt) -> Prediction:
        """Segment the object on ``frame`` from a box; later clicks there refine it.

        A box starts the object afresh on that frame: its clicks there are dropped (one
        undo step brings them back), the box replaces any earlier one, and the frame
        becomes a keyframe.

        Raises
        ------
        InputError
            As :meth:`check_box`; nothing changes then.
        """
        self.check_box(object_id, frame, box)
        with self.lock:
            prediction = self.segmenter.predict(self.cache.get(frame), [], None, box=box)
            action = Action("box", object_id)
            action.clicks[frame] = (self.prompts.clicks(object_id, frame), [])
            action.boxes[frame] = (self.prompts.box(object_id, frame), box)
            action.probs[frame] = (self._probs.get((object_id, frame)), pack_prob(prediction.prob))
            action.keyframes = self._keyframe_change(object_id, add=frame)
            action.scores[frame] = (self.scores.get(object_id, {}).get(frame), prediction.score)
            self._set_mask(action, frame, prediction.mask(self.config.threshold))
            self.apply_action_state(action, after=True)
            self.push_action(action)
        return prediction

    def set_keyframes_from_labels(self, plane_of_frame: Callable[[int], np.ndarray]) -> int:
        """Every frame whose labels plane holds non-zero ids becomes a keyframe of each id in it.

        Parameters
        ----------
        plane_of_frame : callable
            ``plane_of_frame(frame)`` -> (Y, X) integer labels of that frame (a keyframes
            file read frame by frame, another Labels layer, ...).

        Returns the number of (object, frame) keyframes set, one undo step each.
        """
        count = 0
        for frame in range(self.frames.n_frames):
            plane = np.asarray(plane_of_frame(frame))
            for object_id in np.unique(plane[plane > 0]):
                self.set_keyframe_mask(int(object_id), frame, plane == object_id)
                count += 1
        return count

    def set_keyframe_mask(self, object_id: int, frame: int, mask: np.ndarray) -> None:
        """Make a given (Y, X) bool mask the object's annotation on ``frame`` (e.g. from a file)."""
        self._check_frame(frame)
        self._check_object_id(object_id)
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != self.frames.shape:
            raise InputError(f"mask shape {mask.shape} differs from the frame shape {self.frames.shape}")
        with self.lock:
            action = Action("mask", object_id)
            action.keyframes = self._keyframe_change(object_id, add=frame)
            action.probs[frame] = (self._probs.get((object_id, frame)), pack_prob(mask))
            self._set_mask(action, frame, mask)
            self.apply_action_state(action, after=True)
            self.push_action(action)

    def clear_object(self, object_id: int) -> int:
        """Remove an object's pixels, clicks and keyframes everywhere; returns frames changed."""
        with self.lock:
            action = Action("clear", object_id)
            empty = np.zeros(self.frames.shape, dtype=bool)
            for frame in range(self.frames.n_frames):
                if self.object_mask(object_id, frame).any():
                    self._set_mask(action, frame, empty)
            for frame in self.prompts.frames(object_id):
                action.clicks[frame] = (self.prompts.clicks(object_id, frame), [])
            for o, frame, box in self.prompts.boxes():
                if o == object_id:
                    action.boxes[frame] = (box, None)
            action.keyframes = (frozenset(self.keyframes.get(object_id, ())), frozenset())
            for (o, f), prob in self._probs.items():
                if o == object_id:
                    action.probs[f] = (prob, None)
            for f, s in self.scores.get(object_id, {}).items():
                action.scores[f] = (s, None)
            self.apply_action_state(action, after=True)
            self._known_ids.discard(object_id)
            self.push_action(action)
        return len(action.masks)

    # ------------------------------------------------------------- propagation
    def _predict_from_reference(self, object_id: int, frame: int, ref_frame: int, ref_mask: np.ndarray) -> Prediction:
        with self.lock:
            embedding = self.cache.get(frame)
            reference = Reference(self.cache.get(ref_frame), ref_mask)
        return self.segmenter.predict(
            embedding, [], prev_prob=ref_mask.astype(np.float32), reference=reference
        )

    def propagation(
        self, object_id: int, direction: str = "both", start: int | None = None
    ) -> Iterator[FrameResult]:
        """Compute a propagation run for one object, one frame at a time; writes nothing.

        Apply each result with :meth:`apply_result` inside a run from :meth:`begin_run`
        (see :meth:`run_propagation` for the whole loop). ``start`` re-propagates from a
        corrected keyframe only, stopping once the result agrees with the labels again.
        """
        keys = self.keyframes_of(object_id)
        if not keys:
            raise InputError(f"object {object_id} has no annotated frame to propagate from")
        if start is not None and start not in keys:
            raise InputError(f"frame {start} holds no annotation of object {object_id}")
        return propagate(
            lambda f, r, m: self._predict_from_reference(object_id, f, r, m),
            n_frames=self.frames.n_frames,
            keyframes=keys,
            keyframe_mask=lambda f: self.object_mask(object_id, f),
            direction=direction,
            start=start,
            previous_mask=lambda f: self.object_mask(object_id, f),
            threshold=self.config.threshold,
            agree_iou=self.config.agree_iou,
            agree_frames=self.config.agree_frames,
            min_score=self.config.min_score,
        )

    def begin_run(self, object_id: int, direction: str | None = None, start: int | None = None) -> Action:
        """Start recording a propagation run (one undo step); ``direction``/``start`` as given
        to :meth:`propagation` are passed on to observers (the autosave replays them)."""
        run = Action("propagate", object_id)
        self._forget_exemplars()
        self._notify("run_begin", run=run, direction=direction, start=start)
        return run

    def apply_result(self, run: Action, result: FrameResult) -> None:
        """Write one propagated frame into the labels (a frame is written whole or not at all)."""
        with self.lock:
            if result.frame in self.keyframes.get(run.object_id, ()):
                return  # user annotations win, even if they appeared mid-run
            before_score = self.scores.get(run.object_id, {}).get(result.frame)
            written = self._set_mask(run, result.frame, result.mask)  # no second labels read
            obj = run.object_id
            score = self._written_scores(result.frame, {obj: written}, {obj: result.score})[obj]
            if result.frame not in run.scores:
                run.scores[result.frame] = (before_score, score)
            else:
                run.scores[result.frame] = (run.scores[result.frame][0], score)
            self.scores.setdefault(run.object_id, {})[result.frame] = score
            self._notify("frame", run=run, frame=result.frame)

    def end_run(self, run: Action) -> None:
        """Finish a run (complete or cancelled): it becomes one undo step if it changed anything."""
        if run.record and run.frames:
            with self.lock:
                self.push_action(run)

    def run_propagation(
        self,
        object_id: int,
        direction: str = "both",
        start: int | None = None,
        on_frame: Callable[[FrameResult], None] | None = None,
    ) -> Action:
        """Propagate and apply in one go (headless use); returns the recorded run.

        ``on_frame(result)`` is called after each frame is written (progress reports).
        """
        run = self.begin_run(object_id, direction, start)
        try:
            for result in self.propagation(object_id, direction, start):
                self.apply_result(run, result)
                if on_frame is not None:
                    on_frame(result)
        finally:
            self.end_run(run)  # also after an interrupt: finished frames stay undoable
        return run

    def worst_frame(self, object_id: int) -> int | None:
        """The propagated (not user-annotated) frame with the lowest quality score, or None."""
        keys = self.keyframes.get(object_id, set())
        scores = {f: s for f, s in self.scores.get(object_id, {}).items() if f not in keys}
        return min(scores, key=scores.get) if scores else None

    # --------------------------------------------------------------- undo/redo
    def _keyframe_change(self, object_id: int, add: int) -> tuple[frozenset, frozenset]:
        current = self.keyframes.get(object_id, set())
        before = self._frozen_keyframes.get(object_id)
        if before is None or before != current:
            before = frozenset(current)
        return before, (before if add in before else before | {add})

    def apply_action_state(self, action: Action, after: bool) -> None:
        """Set clicks, keyframes, probabilities and scores to the action's before/after state."""
        side = 1 if after else 0
        obj = action.object_id
        for frame, states in action.clicks.items():
            self.prompts.set_clicks(obj, frame, states[side])
        for frame, states in action.boxes.items():
            self.prompts.set_box(obj, frame, states[side])
        if action.keyframes is not None:
            keys = set(action.keyframes[side])
            if keys:
                self.keyframes[obj] = keys
                self._frozen_keyframes[obj] = action.keyframes[side]
            else:
                self.keyframes.pop(obj, None)
                self._frozen_keyframes.pop(obj, None)
        for frame, states in action.probs.items():
            if states[side] is None:
                self._probs.pop((obj, frame), None)
            else:
                self._probs[(obj, frame)] = states[side]
        for frame, states in action.scores.items():
            if states[side] is None:
                self.scores.get(obj, {}).pop(frame, None)
            else:
                self.scores.setdefault(obj, {})[frame] = states[side]
        self._known_ids.add(obj)

    def push_action(self, action: Action) -> None:
        self.undo_stack.append(action)
        self.redo_stack.clear()
        self._trim_history()
        self._notify("push", action=action)

    def _trim_history(self) -> None:
        """Forget the oldest undo steps while the history holds more than ``config.undo_mb``."""
        live = {id(a) for a in self.undo_stack}
        sizes = {key: self._action_bytes.get(key) for key in live}
        for action in self.undo_stack:
            if sizes[id(action)] is None:
                sizes[id(action)] = action.nbytes
        self._action_bytes = sizes  # drops the redo steps just cleared
        total, budget = sum(sizes.values()), self.config.undo_mb * 2**20
        dropped = 0
        while total > budget and len(self.undo_stack) - dropped > 1:
            total -= sizes.pop(id(self.undo_stack[dropped]))
            dropped += 1
        if dropped:
            del self.undo_stack[:dropped]
            self.forgotten_steps += dropped

    def _notify(self, event: str, **payload: Any) -> None:
        for observer in list(self.observers):
            observer(event, self, **payload)

    def _restore(self, action: Action, after: bool) -> None:
        if action.parts:  # a multi-object run (see MultiObjectRuns)
            self._restore_group(action, after)
            return
        side = 1 if after else 0
        for frame, states in action.masks.items():
            self.write_object_mask(action.object_id, frame, unpack_mask(states[side], self.frames.shape))
        self.apply_action_state(action, after)

    def undo(self) -> Action | None:
        """Revert the last click, mask, clear or whole propagation run; None if nothing to undo."""
        with self.lock:
            if not self.undo_stack:
                return None
            action = self.undo_stack.pop()
            self._restore(action, after=False)
            self.redo_stack.append(action)
            self._notify("undo", action=action)
            return action

    def redo(self) -> Action | None:
        """Re-apply the last undone step; None if nothing to redo."""
        with self.lock:
            if not self.redo_stack:
                return None
            action = self.redo_stack.pop()
            self._restore(action, after=True)
            self.undo_stack.append(action)
            self._notify("redo", action=action)
            return action

    @property
    def can_undo(self) -> bool:
        return bool(self.undo_stack)

    @property
    def can_redo(self) -> bool:
        return bool(self.redo_stack)
