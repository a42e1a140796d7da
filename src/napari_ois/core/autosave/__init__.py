"""Autosave, crash recovery and replay of annotation sessions.

While a session is annotated, :class:`AutosaveStore` keeps ``<data path>.ois/`` current:
the labels in a zarr array written plane by plane as they change (a propagated frame
is on disk before the run reports it done), and an append-only journal of every
operation (fsync'd per record). After a crash or a kill,
:func:`restore_sessions` (headless) or the widget rebuild the sessions with their
clicks, keyframes, scores and undo history and the labels up to the last complete
frame; :func:`replay_autosave` re-executes the journal and compares the result.

>>> store = AutosaveStore.create(autosave_folder("video.mp4"), session.labels, "video.mp4")
>>> store.attach(session)            # from now on every change is saved
>>> restored = restore_sessions("video.mp4.ois")      # after a crash
>>> replay_autosave("video.mp4.ois").iou               # {object id: IoU vs the saved labels}

Modules: ``journal`` (JSON lines), ``records`` (JSON encodings), ``mirror`` (labels
zarr), ``store`` (folder + observer), ``recovery`` (restore), ``replay``.
"""

from __future__ import annotations

from .journal import Journal, JournalContents, read_journal
from .recovery import AutosaveContents, Restored, SessionHistory, read_autosave, restore_history, restore_sessions
from .replay import ReplayResult, compare_labels, replay_autosave
from .store import AutosaveStore, autosave_folder, has_autosave, set_aside

__all__ = [
    "AutosaveContents",
    "AutosaveStore",
    "Journal",
    "JournalContents",
    "ReplayResult",
    "Restored",
    "SessionHistory",
    "autosave_folder",
    "compare_labels",
    "has_autosave",
    "read_autosave",
    "read_journal",
    "replay_autosave",
    "restore_history",
    "restore_sessions",
    "set_aside",
]
