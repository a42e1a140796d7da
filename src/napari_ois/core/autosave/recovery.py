"""Reading an autosave back: the labels from the zarr, the sessions' state from the journal.

Restoring does not run the segmenter: the labels on disk are the labels, and the
journal gives each session its clicks, keyframes, quality scores and undo/redo
history as they were after the last complete record. A run cut short by a crash
becomes one undo step holding the frames it finished, as when Stop is pressed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..config import AnnotationConfig
from ..errors import InputError
from ..frames import FrameStack, StackNormalizer
from ..segmenter import Segmenter
from ..backends import get_segmenter
from ..history import Action
from ..session import AnnotationSession
from .journal import read_journal
from .mirror import LabelsZarr
from .records import action_from_record, decode_bytes
from .store import BASELINE_NAME, FORMAT, JOURNAL_NAME, LABELS_NAME, VERSION, AutosaveStore, has_autosave


@dataclass
class SessionHistory:
    """One session of the journal: how to rebuild it and the records that belong to it.

    Attributes
    ----------
    number : int
        Its ``s`` in the journal.
    config : AnnotationConfig
    axis : int
        Walked axis of the image.
    held : dict[int, int]
        Index held on each other leading axis (4-D data).
    rgb : bool
    normalizer : tuple of float or None
        (low, high) of the intensity mapping it started with.
    records : list of dict
        Its records, in journal order.
    """

    number: int
    config: AnnotationConfig
    axis: int
    held: dict[int, int]
    rgb: bool
    normalizer: tuple[float, float] | None
    records: list[dict] = field(default_factory=list)

    @property
    def held_key(self) -> tuple[tuple[int, int], ...]:
        """``held`` as sorted (axis, index) pairs (the widget's session key)."""
        return tuple(sorted(self.held.items()))

    def counts(self) -> dict[str, int]:
        """How many actions, runs, frames and undo/redo records it holds."""
        ops = [r["op"] for r in self.records]
        return {op: ops.count(op) for op in ("action", "run", "frame", "undo", "redo")}


@dataclass
class AutosaveContents:
    """An autosave folder as read by :func:`read_autosave`.

    Attributes
    ----------
    folder : Path
    header : dict
        The journal's first record (image path, labels shape and dtype, ...).
    records : list of dict
        Every complete record.
    sessions : dict[int, SessionHistory]
    live : list of int
        Sessions open after the last ``reset``: the state to restore.
    warnings : list of str
        Skipped records (a torn last line after a kill, ...).
    """

    folder: Path
    header: dict
    records: list[dict]
    sessions: dict[int, SessionHistory]
    live: list[int]
    warnings: list[str] = field(default_factory=list)

    @property
    def image_path(self) -> str | None:
        return self.header.get("image_path")

    @property
    def labels_shape(self) -> tuple[int, ...]:
        return tuple(int(s) for s in self.header["labels_shape"])

    def read_labels(self) -> np.ndarray:
        """The autosaved labels, (leading axes..., Y, X), as a numpy array."""
        return LabelsZarr(self.folder / LABELS_NAME).read_all()

    def read_baseline(self) -> np.ndarray:
        """The labels the autosave started from (zeros when it started empty)."""
        if self.header.get("baseline") and (self.folder / BASELINE_NAME).exists():
            return LabelsZarr(self.folder / BASELINE_NAME).read_all()
        return np.zeros(self.labels_shape, dtype=np.dtype(self.header["labels_dtype"]))

    def summary(self) -> str:
        """One line: what a restore brings back."""
        counts = {"click": 0, "mask": 0, "frame": 0, "paint": 0}
        for record in self.records:
            if record["op"] == "action" and record["action"]["kind"] in counts:
                counts[record["action"]["kind"]] += 1
            elif record["op"] in ("frame", "paint"):
                counts[record["op"]] += 1
        return (f"{counts['click']} click(s), {counts['mask']} keyframe mask(s), {counts['frame']} propagated "
                f"frame(s), {counts['paint']} manual edit(s)")


def _session_history(record: dict) -> SessionHistory:
    try:
        config = AnnotationConfig(**{k: v for k, v in record["config"].items()
                                     if k in AnnotationConfig.__dataclass_fields__})
        normalizer = record.get("normalizer")
        return SessionHistory(
            number=int(record["s"]),
            config=config,
            axis=int(record["axis"]),
            held={int(a): int(i) for a, i in record.get("held", [])},
            rgb=bool(record.get("rgb", False)),
            normalizer=None if normalizer is None else (float(normalizer[0]), float(normalizer[1])),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"malformed session record in the autosave journal: {exc!r}") from None


def read_autosave(folder: str | Path) -> AutosaveContents:
    """Read the journal of an autosave folder (the labels stay on disk until asked for).

    Raises
    ------
    InputError
        No autosave there, or its journal has no valid header.
    """
    folder = Path(folder).expanduser()
    if not has_autosave(folder):
        raise InputError(f"no autosave in {folder} (expected {folder / JOURNAL_NAME})")
    journal = read_journal(folder / JOURNAL_NAME)
    records = journal.records
    if not records or records[0].get("op") != "open" or records[0].get("format") != FORMAT:
        raise InputError(f"{folder / JOURNAL_NAME} is not a napari-ois autosave journal")
    header = records[0]
    if int(header.get("version", 0)) > VERSION:
        raise InputError(f"{folder} was written by a newer napari-ois (autosave version {header['version']})")
    sessions: dict[int, SessionHistory] = {}
    live: list[int] = []
    for record in records[1:]:
        op = record.get("op")
        if op == "session":
            history = _session_history(record)
            sessions[history.number] = history
            live.append(history.number)
        elif op == "reset":
            live = []
        elif "s" in record and int(record["s"]) in sessions:
            sessions[int(record["s"])].records.append(record)
            if op == "resume" and int(record["s"]) not in live:
                live.append(int(record["s"]))
    return AutosaveContents(folder, header, records, sessions, live, list(journal.warnings))


# ------------------------------------------------------------------- history
def apply_state(session: AnnotationSession, action: Action, after: bool) -> None:
    """Set clicks/keyframes/scores to an action's before or after state (labels untouched)."""
    for part in getattr(action, "parts", None) or [action]:
        session.apply_action_state(part, after)


def run_action(record: dict) -> Action:
    """An empty run like the recorded one: one object, or a group (several in one pass)."""
    objects = record.get("objects")
    if objects:
        ids = sorted(int(o) for o in objects)
        run = Action("propagate", ids[0] if len(ids) == 1 else 0)
        run.parts = [Action("propagate", o) for o in ids]
        return run
    return Action("propagate", int(record["object"]))


def add_frame_record(session: AnnotationSession, run: Action, record: dict) -> None:
    """Put one journaled propagated frame into ``run`` (undo data) and the session's scores."""
    frame = int(record["frame"])
    parts = {p.object_id: p for p in getattr(run, "parts", None) or []}
    for key, item in record["objects"].items():
        obj = int(key)
        target = parts.get(obj)
        if target is None:
            if parts or run.object_id != obj:
                target = Action("propagate", obj)
                run.parts = [*getattr(run, "parts", []), target]
            else:
                target = run
        before, after = (decode_bytes(b) for b in item["mask"])
        score_before, score = item["score"]
        first_before = target.masks[frame][0] if frame in target.masks else before
        target.masks[frame] = (first_before, after)
        first_score = target.scores[frame][0] if frame in target.scores else score_before
        target.scores[frame] = (first_score, score)
        if score is not None:
            session.scores.setdefault(obj, {})[frame] = score


def _restore_record(session: AnnotationSession, record: dict, runs: dict[int, Action]) -> None:
    """Apply one journal record to the session's state (see :func:`restore_history`)."""
    undo, redo = session.undo_stack, session.redo_stack
    op = record["op"]
    if op == "action":
        action = action_from_record(record["action"])
        runs.pop(record.get("run"), None)
        apply_state(session, action, after=True)
        undo.append(action)
        redo.clear()
    elif op == "run":
        runs[int(record["run"])] = run_action(record)
    elif op == "frame":
        run = runs.setdefault(int(record["run"]), Action("propagate", 0))
        add_frame_record(session, run, record)
    elif op == "run_end":
        run = runs.pop(int(record["run"]), None)
        if run is not None and run.frames:
            undo.append(run)
            redo.clear()
    elif op == "undo" and undo:
        action = undo.pop()
        apply_state(session, action, after=False)
        redo.append(action)
    elif op == "redo" and redo:
        action = redo.pop()
        apply_state(session, action, after=True)
        undo.append(action)


def restore_history(session: AnnotationSession, history: SessionHistory) -> dict[str, int]:
    """Give a fresh session the state recorded in ``history`` (not its labels).

    Clicks, keyframes, scores, click probabilities and the undo/redo stacks become what
    they were after the last complete record.

    Returns
    -------
    dict
        Counts of the records applied per kind.

    Raises
    ------
    InputError
        A record is malformed (the journal was edited or damaged).
    """
    runs: dict[int, Action] = {}
    undo, redo = session.undo_stack, session.redo_stack
    with session.lock:
        for record in history.records:
            try:
                _restore_record(session, record, runs)
            except (KeyError, TypeError, ValueError, IndexError) as exc:
                raise InputError(f"malformed {record.get('op')!r} record in the autosave journal: {exc!r}") from None
        for number in sorted(runs):  # cut short by the crash: the finished frames stay undoable
            if runs[number].frames:
                undo.append(runs[number])
                redo.clear()
    return history.counts()


# ------------------------------------------------------------------ sessions
def frames_for(history: SessionHistory, data: Any) -> FrameStack:
    """A :class:`FrameStack` over ``data`` walked and held as the session was."""
    normalizer = None if history.normalizer is None else StackNormalizer(*history.normalizer)
    return FrameStack(data, axis=history.axis, rgb=history.rgb, fixed=history.held, normalizer=normalizer)


def image_data_for(contents: AutosaveContents, image: str | Path | None = None) -> Any:
    """Open the annotated image lazily: ``image`` or the path recorded in the autosave.

    Raises
    ------
    InputError
        No path recorded and none given, or the image is not there any more.
    """
    from ..io import open_image_data

    path = image if image is not None else contents.image_path
    if path is None:
        raise InputError(f"the autosave {contents.folder} records no image path; give the image")
    if not Path(path).exists():
        raise InputError(f"the annotated image {path} is not there any more; give its new path")
    data, _ = open_image_data(path)
    return data


@dataclass
class Restored:
    """Sessions rebuilt from an autosave (see :func:`restore_sessions`).

    Attributes
    ----------
    labels : np.ndarray
        The restored labels, shared by every session.
    sessions : dict[int, AnnotationSession]
        Journal session number -> session, for the live sessions.
    contents : AutosaveContents
    """

    labels: np.ndarray
    sessions: dict[int, AnnotationSession]
    contents: AutosaveContents

    def resume_autosave(self) -> AutosaveStore:
        """Go on autosaving these sessions into the same folder."""
        store = AutosaveStore.resume(self.contents.folder)
        for number, session in self.sessions.items():
            store.attach(session, resume=number)
        return store


def restore_sessions(
    folder: str | Path,
    image: str | Path | None = None,
    segmenter_factory: Callable[[AnnotationConfig], Segmenter] | None = None,
) -> Restored:
    """Rebuild the live sessions of an autosave headlessly, labels up to the last complete frame.

    Parameters
    ----------
    folder : str or Path
        The autosave folder (``<data>.ois``).
    image : str or Path, optional
        The annotated image when it moved (default: the recorded path).
    segmenter_factory : callable, optional
        ``factory(config) -> Segmenter``; default: the recorded backend.
    """
    contents = read_autosave(folder)
    labels = contents.read_labels()
    data = image_data_for(contents, image) if contents.live else None
    segmenters: dict[tuple, Segmenter] = {}
    sessions = {}
    for number in contents.live:
        history = contents.sessions[number]
        config = history.config
        key = (config.backend, config.device, config.checkpoint)
        if key not in segmenters:
            segmenters[key] = (segmenter_factory(config) if segmenter_factory is not None
                               else get_segmenter(config.backend, config.device, config.checkpoint))
        session = AnnotationSession(frames_for(history, data), labels=labels, segmenter=segmenters[key],
                                    config=config)
        restore_history(session, history)
        sessions[number] = session
    return Restored(labels, sessions, contents)
