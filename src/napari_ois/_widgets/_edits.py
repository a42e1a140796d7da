"""Edits of the widget: objects, undo/redo, clearing and export."""

from __future__ import annotations

from pathlib import Path

from qtpy.QtWidgets import QFileDialog

from napari_ois.core import io as core_io
from napari_ois.core.boxes import write_boxes
from napari_ois.core.errors import OISError

from . import _layers

#: File-dialog filters of Export and the labels format each one asks for (None: by suffix).
EXPORT_FILTERS = {
    "TIFF (*.tif *.tiff)": None,
    "zarr (*.zarr)": None,
    "PNG folder (*)": None,
    # CTC tools look for <sequence>_RES folders; any name works once this filter is chosen.
    "Cell Tracking Challenge folder (*_RES)": "ctc",
}


class EditMixin:
    """New object / Clear / Undo / Redo / Export of :class:`AnnotateObjectsWidget`."""

    # ------------------------------------------------------------- objects
    def _on_object_changed(self, object_id: int) -> None:
        if self.labels_layer is not None:
            self.labels_layer.selected_label = int(object_id)  # manual painting uses the same id
        if self.points_layer is not None:
            # What napari gives a new point before the click is processed.
            positive = not self.negative_check.isChecked()
            self.points_layer.feature_defaults = {
                **_layers.FEATURE_DEFAULTS, "object_id": int(object_id), "positive": positive
            }
            self.points_layer.current_face_color = _layers.hex_color(positive)

    def new_object(self) -> None:
        """Switch to an id no object uses yet."""
        ids = [s.new_object_id() for s in self._sessions.values()] or [1]
        self.object_spin.setValue(max(ids))
        self._set_status(f"New object {self.object_spin.value()}: click on it.")

    def clear_object(self) -> None:
        """Remove the current object's masks and clicks (undoable)."""
        if self._busy():
            return
        try:
            n = self.session.clear_object(self.object_spin.value())
        except OISError as exc:
            self._error(str(exc))
            return
        self._refresh_labels()
        self._sync_points()
        self._set_status(f"Cleared object {self.object_spin.value()} on {n} frame(s) (Undo restores it).")

    def _busy(self) -> bool:
        if self.worker is not None:
            self._set_status("A propagation is running: Stop it first.")
            return True
        return False

    def undo(self) -> None:
        """Revert the last click, clear or whole propagation run."""
        self._undo_redo("undo")

    def redo(self) -> None:
        """Re-apply the last undone step."""
        self._undo_redo("redo")

    def _undo_redo(self, which: str) -> None:
        if self._busy():
            return
        try:
            action = getattr(self.session, which)()
        except OISError as exc:
            self._error(str(exc))
            return
        if action is None:
            self._set_status(f"Nothing to {which}.")
            return
        self._refresh_labels()
        self._sync_points()
        verb = "Undone" if which == "undo" else "Redone"
        what = f"objects {', '.join(str(p.object_id) for p in action.parts)}" if action.parts else (
            f"object {action.object_id}")
        self._set_status(f"{verb}: {action.kind} of {what} ({len(action.frames)} frame(s)).")

    # -------------------------------------------------------------- export
    def save(self, path: str | Path, format: str | None = None) -> tuple[Path, ...]:
        """Write the labels to ``path`` and the session next to it: ``<stem>_prompts.csv``,
        ``<stem>_settings.json`` and, when boxes were drawn, ``<stem>_boxes.csv``.

        Parameters
        ----------
        path : str or Path
            ``.tif``/``.tiff``, ``.zarr``, a folder of PNGs, or a Cell Tracking Challenge
            folder (``mask000.tif``... + ``res_track.txt``) when its name ends in ``_RES``.
        format : {"tiff", "png", "zarr", "ctc"}, optional
            Overrides the choice by name (see :func:`napari_ois.core.io.write_labels`).

        Returns the written paths; errors are notified and re-raised as OISError.
        """
        try:
            session = self.session
            path = Path(path)
            written = core_io.write_labels(path, self.labels_layer.data, format=format)
            stem = path.name[: -len(path.suffix)] if path.suffix else path.name
            source = getattr(getattr(self.image_layer, "source", None), "path", None)
            extra = {
                "image_layer": self.image_layer.name,
                "held_indices": {str(a): i for a, i in self._current_fixed()},
                "labels_view": "filled" if self.filled_check.isChecked() else "contour",
            }
            session_files = core_io.write_session(
                path.with_name(f"{stem}_prompts.csv"),
                list(session.prompts),
                session.config,
                image_path=source,
                keyframes={k: sorted(v) for k, v in session.keyframes.items()},
                extra=extra,
            )
            boxes = session.prompts.boxes()
            if boxes:  # the boxes CSV contract: napari-ois segment/propagate --boxes read it back
                boxes_path = path.with_name(f"{stem}_boxes.csv")
                write_boxes(boxes_path, boxes)
                session_files = (*session_files, boxes_path)
        except OISError as exc:
            self._error(str(exc))
            raise
        files = (Path(written), *session_files)
        self._set_status("Exported " + ", ".join(p.name for p in files) + f" to {path.parent}.")
        return files

    def export(self) -> None:
        """Ask for a labels path and :meth:`save` there."""
        path, chosen = QFileDialog.getSaveFileName(self, "Export labels", "objects.tif", ";;".join(EXPORT_FILTERS))
        if path:
            try:
                self.save(path, format=EXPORT_FILTERS.get(chosen))
            except OISError:
                pass  # already notified


