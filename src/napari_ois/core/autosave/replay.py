"""Replaying an autosave: re-execute its journal headlessly and compare with the saved labels.

Clicks are clicked again, keyframe masks set again, clears, undo and redo done again,
and every propagation run is recomputed with the recorded backend and parameters, up
to the frames the recorded run finished (a stopped or killed run stops at the same
frame). Manual label edits are written as recorded. With a deterministic backend the
result equals the autosaved labels bit for bit; :func:`compare_labels` says how close
it is per object otherwise.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from ...progress_bar import ProgressBar
from ..boxes import BoxPrompt
from ..clicks import Click
from ..config import AnnotationConfig
from ..errors import InputError
from ..propagation import FrameResult
from ..segmenter import Segmenter
from ..backends import get_segmenter
from ..history import Action, unpack_mask
from ..session import AnnotationSession
from .mirror import planes_touched
from .records import action_from_record, decode_mask, decode_plane
from .recovery import AutosaveContents, run_action, add_frame_record, frames_for, image_data_for, read_autosave


def compare_labels(replayed: Any, saved: Any) -> dict[int, float]:
    """IoU per object id between two label arrays of one shape, plane by plane.

    Returns
    -------
    dict[int, float]
        Object id -> |A and B| / |A or B| over the whole array, for every id in either
        array (1.0 when both agree everywhere).
    """
    if tuple(replayed.shape) != tuple(saved.shape):
        raise InputError(f"labels of shape {tuple(replayed.shape)} and {tuple(saved.shape)} cannot be compared")
    inter: dict[int, int] = {}
    union: dict[int, int] = {}
    for key in planes_touched((), tuple(replayed.shape[:-2])):
        a, b = np.asarray(replayed[key]), np.asarray(saved[key])
        for obj in set(np.unique(a).tolist()) | set(np.unique(b).tolist()):
            if obj == 0:
                continue
            in_a, in_b = a == obj, b == obj
            inter[obj] = inter.get(obj, 0) + int(np.count_nonzero(in_a & in_b))
            union[obj] = union.get(obj, 0) + int(np.count_nonzero(in_a | in_b))
    return {int(o): inter[o] / union[o] for o in sorted(union)}


@dataclass
class ReplayResult:
    """What :func:`replay_autosave` did.

    Attributes
    ----------
    labels : np.ndarray
        The replayed labels (leading axes..., Y, X).
    iou : dict[int, float]
        Per object: IoU between the replayed and the autosaved labels.
    identical : bool
        Whether both are equal pixel for pixel.
    records : int
        Journal records replayed.
    frames_propagated : int
    seconds : float
    warnings : list of str
        Skipped journal lines, and where the replay could not follow the record.
    """

    labels: np.ndarray
    iou: dict[int, float]
    identical: bool
    records: int
    frames_propagated: int
    seconds: float
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"identical": self.identical, "iou": {str(k): v for k, v in self.iou.items()},
                "records": self.records, "frames_propagated": self.frames_propagated,
                "seconds": round(self.seconds, 3), "warnings": self.warnings}


@dataclass
class _ReplayRun:
    session: AnnotationSession
    run: Action
    results: Iterator | None  # None: the run is re-applied from its recorded masks
    diverged: bool = False  # the recomputation ended before the recorded run did


class _Replayer:
    """Executes journal records against sessions over one shared labels array."""

    def __init__(self, contents: AutosaveContents, data: Any,
                 segmenter_factory: Callable[[AnnotationConfig], Segmenter] | None):
        self.contents = contents
        self.data = data
        self.labels = contents.read_baseline()
        self.factory = segmenter_factory
        self.segmenters: dict[tuple, Segmenter] = {}
        self.sessions: dict[int, AnnotationSession] = {}
        self.runs: dict[int, _ReplayRun] = {}
        self.warnings: list[str] = []
        self.frames_propagated = 0

    def segmenter(self, config: AnnotationConfig) -> Segmenter:
        key = (config.backend, config.device, config.checkpoint)
        if key not in self.segmenters:
            self.segmenters[key] = (self.factory(config) if self.factory is not None
                                    else get_segmenter(config.backend, config.device, config.checkpoint))
        return self.segmenters[key]

    # ------------------------------------------------------------ records
    def play(self, record: dict) -> None:
        op = record["op"]
        if op == "paint":
            key = tuple(int(k) for k in record["index"])
            self.labels[key if key else ...] = decode_plane(record["plane"])
            return
        if op == "session":
            history = self.contents.sessions[int(record["s"])]
            self.sessions[history.number] = AnnotationSession(
                frames_for(history, self.data), labels=self.labels, segmenter=self.segmenter(history.config),
                config=history.config)
            return
        session = self.sessions.get(int(record.get("s", -1)))
        if session is None:
            return
        handler = getattr(self, f"_on_{op}", None)
        if handler is not None:
            handler(session, record)

    def _on_action(self, session: AnnotationSession, record: dict) -> None:
        action = record["action"]
        request = record.get("request") or {}
        obj = int(action["object"])
        if action["kind"] == "click" and "click" in request:
            frame, y, x, positive = request["click"]
            session.add_click(Click(obj, int(frame), float(y), float(x), bool(positive)))
        elif action["kind"] == "box" and "box" in request:
            session.add_box(obj, int(request["frame"]), BoxPrompt(*(float(v) for v in request["box"])))
        elif action["kind"] == "mask" and "mask" in request:
            mask = decode_mask(request["mask"], session.frames.shape)
            session.set_keyframe_mask(obj, int(request["frame"]), mask)
        elif action["kind"] == "clear":
            session.clear_object(obj)
        else:  # a kind this replay cannot redo: apply its recorded result
            self._apply_recorded(session, action_from_record(action))
            self.runs.pop(record.get("run"), None)

    def _apply_recorded(self, session: AnnotationSession, action: Action) -> None:
        with session.lock:
            for part in getattr(action, "parts", None) or [action]:
                for frame, (_, after) in part.masks.items():
                    session.write_object_mask(part.object_id, frame, unpack_mask(after, session.frames.shape))
                session.apply_action_state(part, after=True)
            session.push_action(action)

    def _on_run(self, session: AnnotationSession, record: dict) -> None:
        direction, start = record.get("direction"), record.get("start")
        objects = record.get("objects")
        run, results = run_action(record), None
        if direction is not None and (not objects or hasattr(session, "multi_propagation")):
            try:
                if objects:
                    results = iter(session.multi_propagation(objects, direction))
                    run = session.begin_multi_run(objects, direction=direction)
                else:
                    results = iter(session.propagation(int(record["object"]), direction, start))
                    run = session.begin_run(int(record["object"]), direction, start)
            except InputError as exc:  # e.g. its keyframe was not recreated: use the recorded masks
                self.warnings.append(f"run {record['run']}: {exc}")
        self.runs[int(record["run"])] = _ReplayRun(session, run, results)

    def _on_frame(self, session: AnnotationSession, record: dict) -> None:
        entry = self.runs.get(int(record["run"]))
        if entry is None:
            return
        target = int(record["frame"])
        if entry.results is not None:
            for result in entry.results:  # recompute up to the recorded frame
                self._apply_result(session, entry.run, result)
                self.frames_propagated += 1
                if result.frame == target:
                    return
            # Not patched with the recorded masks: the comparison must show the difference.
            if not entry.diverged:
                entry.diverged = True
                self.warnings.append(f"run {record['run']}: the recomputed run ended before frame {target}, "
                                     "which the recorded run reached")
            return
        # A run recorded without its parameters cannot be recomputed: its recorded masks.
        add_frame_record(session, entry.run, record)
        with session.lock:
            for key, item in record["objects"].items():
                session.write_object_mask(int(key), target, decode_mask(item["mask"][1], session.frames.shape))
        self.frames_propagated += 1

    @staticmethod
    def _apply_result(session: AnnotationSession, run: Action, result: Any) -> None:
        if isinstance(result, FrameResult):
            session.apply_result(run, result)
        else:
            session.apply_multi_result(run, result)

    def _on_run_end(self, session: AnnotationSession, record: dict) -> None:
        entry = self.runs.pop(int(record["run"]), None)
        if entry is not None:
            session.end_run(entry.run)

    def _on_undo(self, session: AnnotationSession, record: dict) -> None:
        session.undo()

    def _on_redo(self, session: AnnotationSession, record: dict) -> None:
        session.redo()

    def _on_normalizer(self, session: AnnotationSession, record: dict) -> None:
        from ..frames import StackNormalizer

        with session.lock:
            session.frames.normalizer = StackNormalizer(*record["normalizer"])
            session.cache.clear()

    def finish(self) -> None:
        """Runs left open (the recording was killed mid-run) end with the frames they reached."""
        for number in sorted(self.runs):
            entry = self.runs[number]
            entry.session.end_run(entry.run)
        self.runs.clear()


def replay_autosave(
    folder: str | Path,
    image: str | Path | None = None,
    segmenter_factory: Callable[[AnnotationConfig], Segmenter] | None = None,
    show_progress: bool = False,
) -> ReplayResult:
    """Re-execute an autosave's journal headlessly and compare with its saved labels.

    Parameters
    ----------
    folder : str or Path
        The autosave folder (``<data>.ois``).
    image : str or Path, optional
        The annotated image when it moved (default: the recorded path).
    segmenter_factory : callable, optional
        ``factory(config) -> Segmenter``; default: the recorded backend of each session.
    show_progress : bool
        A progress bar of the journal records on stderr (:mod:`napari_ois.progress_bar`).

    Raises
    ------
    InputError
        No autosave, no image, or a backend that cannot be built.
    """
    start = time.perf_counter()
    contents = read_autosave(folder)
    data = image_data_for(contents, image) if contents.sessions else None
    replayer = _Replayer(contents, data, segmenter_factory)
    with ProgressBar(len(contents.records) - 1, "replay", unit="record", quiet=not show_progress) as bar:
        for number, record in enumerate(contents.records[1:], start=2):
            try:
                replayer.play(record)
            except (KeyError, TypeError, ValueError, IndexError) as exc:
                raise InputError(
                    f"journal line {number} ({record.get('op')!r}) cannot be replayed: {exc!r}"
                ) from None
            bar.update()
    replayer.finish()
    saved = contents.read_labels()
    iou = compare_labels(replayer.labels, saved)
    return ReplayResult(
        labels=replayer.labels,
        iou=iou,
        identical=bool(np.array_equal(replayer.labels, saved)),
        records=len(contents.records) - 1,
        frames_propagated=replayer.frames_propagated,
        seconds=time.perf_counter() - start,
        warnings=list(contents.warnings) + replayer.warnings,
    )
