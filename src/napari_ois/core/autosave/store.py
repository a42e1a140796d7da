"""The autosave folder of an annotated image and the observer that keeps it current.

Layout of ``<data path>.ois/`` (or a folder the caller names, for data without a path)::

    journal.jsonl    one JSON record per line, fsync'd per record (see journal.py)
    labels.zarr      the labels, one (Y, X) plane per chunk, written as planes change
    baseline.zarr    the labels the session started from, when they were not empty

The labels are mirrored plane by plane at the moment the session writes them (a
propagated frame is on disk before the run reports it), and the journal records each
operation right after it is applied: clicks, keyframe masks, clears, undo/redo, each
propagated frame (with the masks before/after, so the run stays undoable), manual label
edits, settings. The zarr is never behind the journal; after a kill it can be at most
one operation ahead (that operation's pixels are kept, its record is missing).

Journal records (``op``, plus ``s`` = the session they belong to, ``t`` = unix time)::

    open       header: format, version, image_path, labels_shape, labels_dtype, baseline
    session    a session starts: config, axis, held (other leading axes), rgb, normalizer
    resume     a session restored from this journal goes on (its state is the journal's)
    reset      the sessions so far end (the widget started afresh; labels are kept)
    action     an undo step (click, mask, clear, ...): see records.action_to_record
    run        a propagation run starts: run id, object, direction, start
    frame      one propagated frame of a run: per object the masks and scores before/after
    run_end    the run became one undo step
    undo, redo
    normalizer the intensity mapping changed (napari contrast limits)
    paint      a manual edit of the labels: the whole plane after it
"""

from __future__ import annotations

import os
import threading
import time
import zlib
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..errors import InputError
from ..history import Action
from ..session import AnnotationSession
from .journal import Journal, read_journal
from .mirror import LabelsZarr, MirroredLabels, PlaneKey
from .records import action_to_record, encode_bytes, encode_plane, request_of, score_pair

FORMAT = "napari-ois-autosave"
VERSION = 1
SUFFIX = ".ois"
JOURNAL_NAME = "journal.jsonl"
LABELS_NAME = "labels.zarr"
BASELINE_NAME = "baseline.zarr"
PREVIOUS_SUFFIX = ".previous"


def autosave_folder(data_path: str | Path) -> Path:
    """The autosave folder next to the data: ``video.mp4`` -> ``video.mp4.ois``."""
    raw = str(data_path).rstrip("/\\")
    return Path(raw + SUFFIX)


def has_autosave(folder: str | Path) -> bool:
    """Whether ``folder`` holds an autosave journal."""
    return (Path(folder) / JOURNAL_NAME).is_file()


def set_aside(folder: str | Path) -> Path | None:
    """Rename an autosave folder to ``<folder>.previous`` (``.previous.2``, ... when taken); returns it.

    Nothing is deleted: an autosave set aside stays until the user removes it.
    """
    folder = Path(folder)
    if not folder.exists():
        return None
    previous = folder.with_name(folder.name + PREVIOUS_SUFFIX)
    number = 1
    while previous.exists():
        number += 1
        previous = folder.with_name(f"{folder.name}{PREVIOUS_SUFFIX}.{number}")
    os.rename(folder, previous)
    return previous


def plane_checksum(plane: np.ndarray) -> int:
    """CRC-32 of a label plane's bytes (to notice that it changed)."""
    return zlib.crc32(np.ascontiguousarray(plane).tobytes())


def _package_version() -> str:
    try:
        from importlib.metadata import version

        return version("napari-ois")
    except Exception:
        return "unknown"


def session_record(session: AnnotationSession) -> dict[str, Any]:
    """What a replay needs to rebuild a session over the same image."""
    frames = session.frames
    normalizer = getattr(frames, "normalizer", None)
    return {
        "config": asdict(session.config),
        "axis": int(frames.axis),
        "held": sorted([int(a), int(i)] for a, i in frames.fixed.items()),
        "rgb": bool(frames.rgb),
        "normalizer": None if normalizer is None else [float(normalizer.low), float(normalizer.high)],
        "n_frames": int(frames.n_frames),
        "frame_shape": [int(s) for s in frames.shape],
    }


class AutosaveStore:
    """Keeps an autosave folder current while sessions are annotated.

    Make one with :meth:`create` (a new autosave) or :meth:`resume` (append to one that
    was restored), then :meth:`attach` each session. Writing never raises into the
    annotation: the first failure (disk full, folder removed) stops the autosave and is
    reported through ``on_error(message)`` and :attr:`error`.

    Parameters
    ----------
    folder : Path
    journal : Journal
    labels : LabelsZarr
    next_session, next_run : int
        First unused session and run numbers.
    """

    def __init__(self, folder: Path, journal: Journal, labels: LabelsZarr, next_session: int = 1,
                 next_run: int = 1):
        self.folder = Path(folder)
        self.journal = journal
        self.labels = labels
        self.error: str | None = None
        self.on_error: Callable[[str], None] | None = None
        self._next_session = next_session
        self._next_run = next_run
        self._lock = threading.RLock()
        # id(session) -> (session, number, primary labels); id(run) -> (run, number, frames journaled)
        self._sessions: dict[int, tuple[AnnotationSession, int, Any]] = {}
        self._runs: dict[int, tuple[Action, int, set[int]]] = {}
        # CRC-32 of each plane as last written, so a caller can tell whether labels in
        # memory changed behind the store's back (napari's own undo of a manual edit).
        self._checksums: dict[PlaneKey, int] = {}

    # ------------------------------------------------------------ opening
    @classmethod
    def create(cls, folder: str | Path, labels: Any, image_path: str | Path | None = None,
               replace: bool = False) -> "AutosaveStore":
        """Start a new autosave in ``folder`` from the current ``labels``.

        Parameters
        ----------
        folder : str or Path
            Created if missing; its parent must exist.
        labels : array-like
            (leading axes..., Y, X) integer labels the sessions write (their start is
            kept as ``baseline.zarr`` when not empty, so a replay starts from it).
        image_path : str or Path, optional
            The annotated image (recorded for the replay).
        replace : bool
            An existing autosave in ``folder`` is set aside (see :func:`set_aside`);
            otherwise it is an error.

        Raises
        ------
        InputError
            ``folder`` holds an autosave (and not ``replace``) or other files, or it
            cannot be written.
        """
        folder = Path(folder).expanduser()
        if has_autosave(folder) or (folder / LABELS_NAME).exists():
            if not replace:
                raise InputError(f"{folder} already holds an autosave; restore it or start fresh")
            try:
                set_aside(folder)
            except OSError as exc:
                raise InputError(f"cannot set the old autosave {folder} aside: {exc}") from None
        elif folder.is_dir() and any(folder.iterdir()):
            raise InputError(f"refusing to autosave into {folder}: it holds files that are not an autosave")
        shape = tuple(int(s) for s in labels.shape)
        if len(shape) < 2:
            raise InputError(f"labels must have at least 2 dimensions, got shape {shape}")
        try:
            folder.mkdir(exist_ok=True)
            zarr_labels = LabelsZarr(folder / LABELS_NAME, shape, labels.dtype)
            baseline = zarr_labels.copy_from(labels)
            if baseline:
                LabelsZarr(folder / BASELINE_NAME, shape, labels.dtype).copy_from(labels)
            journal = Journal(folder / JOURNAL_NAME)
            # The header goes last: a journal with a header has a complete baseline.
            journal.append({
                "op": "open", "format": FORMAT, "version": VERSION, "t": round(time.time(), 3),
                "napari_ois_version": _package_version(),
                "image_path": None if image_path is None else str(Path(image_path).expanduser().resolve()),
                "labels_shape": list(shape), "labels_dtype": np.dtype(labels.dtype).str, "baseline": baseline,
            })
        except OSError as exc:
            raise InputError(f"cannot autosave into {folder}: {exc}") from None
        return cls(folder, journal, zarr_labels)

    @classmethod
    def resume(cls, folder: str | Path) -> "AutosaveStore":
        """Append to an existing autosave (after restoring from it).

        Raises
        ------
        InputError
            No autosave in ``folder`` or an unreadable one.
        """
        folder = Path(folder).expanduser()
        if not has_autosave(folder):
            raise InputError(f"no autosave in {folder}")
        records = read_journal(folder / JOURNAL_NAME).records
        next_session = 1 + max((int(r.get("s", 0)) for r in records), default=0)
        next_run = 1 + max((int(r.get("run", 0) or 0) for r in records), default=0)
        labels = LabelsZarr(folder / LABELS_NAME)
        for partial in (folder / LABELS_NAME).rglob("*.partial"):  # chunk writes cut by a kill
            partial.unlink(missing_ok=True)
        try:
            journal = Journal(folder / JOURNAL_NAME)
        except OSError as exc:
            raise InputError(f"cannot append to the autosave in {folder}: {exc}") from None
        return cls(folder, journal, labels, next_session, next_run)

    # ------------------------------------------------------------ sessions
    def attach(self, session: AnnotationSession, resume: int | None = None) -> int:
        """Autosave ``session`` from now on; returns its session number in the journal.

        Its label writes go through a :class:`MirroredLabels` (``session.labels`` is
        swapped for it; :meth:`detach` swaps it back). ``resume`` continues the session
        with that number (one restored from this journal) instead of starting a new one.
        """
        if tuple(session.labels.shape) != self.labels.shape:
            raise InputError(
                f"the session's labels {tuple(session.labels.shape)} do not match the autosave {self.labels.shape}"
            )
        with self._lock:
            if id(session) in self._sessions:
                return self._sessions[id(session)][1]
            if resume is None:
                number = self._next_session
                self._next_session += 1
                self._append({"op": "session", "s": number, **session_record(session)})
            else:
                number = int(resume)
                self._next_session = max(self._next_session, number + 1)
                self._append({"op": "resume", "s": number})
            primary = session.labels
            session.labels = MirroredLabels(primary, self._mirror_from(primary))
            session.observers.append(self._observe)
            self._sessions[id(session)] = (session, number, primary)
            return number

    def detach(self, session: AnnotationSession) -> None:
        """Stop autosaving ``session`` (its labels array is given back)."""
        with self._lock:
            entry = self._sessions.pop(id(session), None)
            if entry is None:
                return
            if self._observe in session.observers:
                session.observers.remove(self._observe)
            if isinstance(session.labels, MirroredLabels):
                session.labels = entry[2]

    def reset(self) -> None:
        """The current sessions end (the widget starts afresh over the same labels)."""
        with self._lock:
            for session, _, _ in list(self._sessions.values()):
                self.detach(session)
            self._runs.clear()
            self._append({"op": "reset"})

    def session_number(self, session: AnnotationSession) -> int | None:
        """The journal number of an attached session, else None."""
        entry = self._sessions.get(id(session))
        return None if entry is None else entry[1]

    def close(self) -> None:
        """Detach every session and close the journal (idempotent)."""
        with self._lock:
            for session, _, _ in list(self._sessions.values()):
                self.detach(session)
            self.journal.close()

    @property
    def active(self) -> bool:
        """Whether records are still being written (not closed, no failure)."""
        return self.error is None and not self.journal.closed

    # ---------------------------------------------------------- recording
    def record_paint(self, key: PlaneKey, plane: np.ndarray) -> None:
        """A manual edit of the labels: write the (Y, X) plane at ``key`` and journal it."""
        with self._lock:
            if not self.active:
                return
            try:
                self._write_plane(tuple(key), np.asarray(plane))
            except Exception as exc:
                self._fail(exc)
                return
            self._append({"op": "paint", "index": [int(k) for k in key], "plane": encode_plane(plane)})

    def record_normalizer(self, session: AnnotationSession) -> None:
        """The session's intensity mapping changed (e.g. napari contrast limits)."""
        entry = self._sessions.get(id(session))
        normalizer = session.frames.normalizer
        if entry is not None:
            self._append({"op": "normalizer", "s": entry[1],
                          "normalizer": [float(normalizer.low), float(normalizer.high)]})

    def _mirror_from(self, primary: Any) -> Callable[[PlaneKey], None]:
        def write(key: PlaneKey) -> None:
            with self._lock:
                if not self.active:
                    return
                try:
                    self._write_plane(key, np.asarray(primary[key if key else ...]))
                except Exception as exc:  # never break the annotation over the autosave
                    self._fail(exc)

        return write

    def _write_plane(self, key: PlaneKey, plane: np.ndarray) -> None:
        self.labels.write_plane(key, plane)
        self._checksums[key] = plane_checksum(plane)

    def labels_on_disk_match(self, key: PlaneKey, checksum: int) -> bool:
        """Whether the plane at ``key`` was last written with this :func:`plane_checksum`."""
        key = tuple(key)
        if key not in self._checksums:
            self._checksums[key] = plane_checksum(self.labels.read_plane(key))
        return self._checksums[key] == checksum

    def _observe(self, event: str, session: AnnotationSession, **payload: Any) -> None:
        entry = self._sessions.get(id(session))
        if entry is None:
            return
        s = entry[1]
        with self._lock:
            if event == "push":
                self._on_push(s, payload["action"])
            elif event in ("undo", "redo"):
                self._append({"op": event, "s": s})
            elif event in ("run_begin", "multi_run_begin"):  # one object / several in one pass
                self._on_run_begin(s, payload["run"], payload.get("direction"), payload.get("start"),
                                   payload.get("objects"))
            elif event in ("frame", "multi_frame"):
                self._on_frame(s, payload["run"], int(payload["frame"]))

    def _on_run_begin(self, s: int, run: Action, direction: str | None, start: int | None,
                      objects: Any) -> None:
        number = self._next_run
        self._next_run += 1
        self._runs[id(run)] = (run, number, set())
        record = {"op": "run", "s": s, "run": number, "object": int(run.object_id),
                  "direction": direction, "start": None if start is None else int(start)}
        if objects is not None:
            record["objects"] = [int(o) for o in objects]
        self._append(record)

    def _on_frame(self, s: int, run: Action, frame: int) -> None:
        entry = self._runs.get(id(run))
        if entry is None:
            return
        objects = {}
        for part in getattr(run, "parts", None) or [run]:
            if frame in part.masks:
                before, after = part.masks[frame]
                objects[str(int(part.object_id))] = {
                    "mask": [encode_bytes(before), encode_bytes(after)],
                    "score": score_pair(part.scores.get(frame, (None, None))),
                }
        if objects:
            entry[2].add(frame)
            self._append({"op": "frame", "s": s, "run": entry[1], "frame": frame, "objects": objects})

    def _on_push(self, s: int, action: Action) -> None:
        run = self._runs.pop(id(action), None)
        if run is not None and set(action.frames) <= run[2]:
            self._append({"op": "run_end", "s": s, "run": run[1]})
            return
        record = {"op": "action", "s": s, "action": action_to_record(action), "request": request_of(action)}
        if run is not None:  # frames were changed without a frame record: journal the whole run
            record["run"] = run[1]
        self._append(record)

    def _append(self, record: dict[str, Any]) -> None:
        if not self.active:
            return
        record.setdefault("t", round(time.time(), 3))
        try:
            self.journal.append(record)
        except Exception as exc:
            self._fail(exc)

    def _fail(self, exc: BaseException) -> None:
        if self.error is not None:
            return
        self.error = f"autosave to {self.folder} stopped: {exc}"
        if self.on_error is not None:
            self.on_error(self.error)
