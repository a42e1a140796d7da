"""Autosave of the widget: next to the image file, restored when the image is opened again.

A shell over :mod:`napari_ois.core.autosave`: the store mirrors every label write of
the sessions (clicks, propagated frames as they stream in, undo/redo) and journals each
operation; this mixin adds the napari side: where the folder is, restoring it into the
layers with a notification, manual edits of the ``objects`` layer, and *Start fresh*.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from napari.utils.notifications import show_info, show_warning
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QFileDialog

from napari_ois.core.autosave import (
    AutosaveStore,
    autosave_folder,
    has_autosave,
    read_autosave,
    restore_history,
    set_aside,
)
from napari_ois.core.autosave.mirror import LabelsZarr, planes_touched
from napari_ois.core.autosave.store import LABELS_NAME, plane_checksum
from napari_ois.core.errors import OISError
from napari_ois.core.session import AnnotationSession

from . import _layers
from ._storage import remove_stale_embeddings


def image_source_path(layer) -> str | None:
    """The file an image layer was opened from (napari's ``layer.source.path``), or None."""
    return getattr(getattr(layer, "source", None), "path", None) if layer is not None else None


def painted_labels(atoms) -> set[int]:
    """The label ids a napari ``paint`` event wrote (0, the eraser, left out).

    Each atom is a masked edit with a ``new_value``, or an (indices, old values, new
    value(s)) tuple.
    """
    found: set[int] = set()
    for atom in atoms or []:
        value = getattr(atom, "new_value", None)
        if value is None and isinstance(atom, tuple) and len(atom) == 3:
            value = atom[2]
        if value is None:
            continue
        found.update(int(v) for v in np.unique(np.asarray(value)) if int(v) > 0)
    return found


class AutosaveMixin:
    """Autosave / restore / Start fresh of :class:`AnnotateObjectsWidget`."""

    _autosave: AutosaveStore | None = None
    _autosave_override: Path | None = None  # folder chosen for data without a path
    _autosave_image = None  # the image layer the override belongs to
    _restoring = False
    _painted: set = frozenset()  # planes edited by hand (a set once a store is open)

    # ------------------------------------------------------------ folder
    def autosave_folder(self) -> Path | None:
        """Where the current image is autosaved (None: no path and no folder chosen)."""
        if self.image_layer is None:
            return None
        if self._autosave_override is not None and self._autosave_image is self.image_layer:
            return self._autosave_override
        source = image_source_path(self.image_layer)
        return autosave_folder(source) if source else None

    def set_autosave_folder(self, folder: str | Path | None) -> None:
        """Autosave the current image into ``folder`` (for data without a file path).

        An autosave already in ``folder`` is restored, as when opening a file; otherwise a
        new one starts from the current labels and clicks go on. None goes back to the
        folder next to the image file.
        """
        if self._busy():
            return
        self._autosave_override = None if folder is None else Path(folder).expanduser()
        self._autosave_image = self.image_layer
        self._close_autosave()
        folder = self.autosave_folder()
        if folder is not None and has_autosave(folder) and self.autosave_check.isChecked():
            self._rebuild()  # restores it
        else:
            self._on_autosave_toggled(self.autosave_check.isChecked())

    def choose_autosave_folder(self) -> None:
        """Ask for a folder; the autosave goes into ``<folder>/<layer name>.ois`` (Cancel changes nothing)."""
        if self.image_layer is None:
            return
        parent = QFileDialog.getExistingDirectory(self, "Folder for the autosave")
        if parent:
            name = "".join(c if c.isalnum() or c in "-_." else "_" for c in self.image_layer.name)
            self.set_autosave_folder(Path(parent) / f"{name}.ois")

    @property
    def autosave(self) -> AutosaveStore | None:
        """The store writing the autosave now, or None when autosave is off."""
        return self._autosave

    # -------------------------------------------------------- open/close
    def _open_autosave(self) -> None:
        """Called by ``_rebuild`` once the layers exist and before sessions are built.

        Same folder as the open store: the sessions start afresh (``reset``). Otherwise
        an autosave in the folder is restored, or a new one is started.
        """
        folder = self.autosave_folder() if self.autosave_check.isChecked() else None
        if self._autosave is not None and folder is not None and self._autosave.folder == folder:
            self._autosave.reset()
            self._show_autosave_state()
            return
        self._close_autosave()
        if folder is None or self.labels_layer is None:
            self._show_autosave_state()
            return
        if has_autosave(folder):
            self._restore_autosave(folder)
        else:
            self._start_autosave(folder)
        self._show_autosave_state()

    def _start_autosave(self, folder: Path, replace: bool = False) -> None:
        try:
            store = AutosaveStore.create(folder, self.labels_layer.data, image_source_path(self.image_layer),
                                         replace=replace)
        except OISError as exc:
            self._error(f"autosave is off: {exc}", warning=True)
            return
        self._use_store(store)

    def _use_store(self, store: AutosaveStore) -> None:
        store.on_error = lambda message: QTimer.singleShot(0, lambda: self._error(message, warning=True))
        self._autosave = store
        self._painted: set[tuple[int, ...]] = set()

    def _close_autosave(self) -> None:
        if self._autosave is not None:
            self._autosave.close()
            self._autosave = None

    def _autosave_session(self, session: AnnotationSession) -> None:
        """A new session of the widget: autosave it (restored ones are attached by the restore)."""
        if self._autosave is not None and not self._restoring:
            self._autosave.attach(session)

    def _show_autosave_state(self) -> None:
        store = self._autosave
        if store is not None:
            text, tip = f"→ {store.folder.name}", str(store.folder)
        elif self.image_layer is not None and self.autosave_folder() is None:
            text, tip = "(no file: choose a folder with …)", "The image has no file path"
        else:
            text, tip = "off", "Autosave is off"
        self.autosave_label.setText(text)
        self.autosave_label.setToolTip(tip)
        self.fresh_button.setEnabled(store is not None and self.worker is None)

    # ------------------------------------------------------------ restore
    def _restore_autosave(self, folder: Path) -> None:
        """Bring back an autosave: labels, sessions (clicks, keyframes, scores, undo), settings."""
        store = None
        try:
            contents = read_autosave(folder)
            if contents.labels_shape != tuple(self.labels_layer.data.shape):
                raise OISError(f"it holds labels of shape {contents.labels_shape}, the image needs "
                               f"{tuple(self.labels_layer.data.shape)}")
            saved = LabelsZarr(folder / LABELS_NAME)
            store = AutosaveStore.resume(folder)
            # Plane by plane into the layer (numpy or zarr): long labels are never held twice.
            self._fill_labels(saved.read_plane)
        except Exception as exc:  # OISError, or a damaged chunk of the saved labels
            # Planes copied before a damaged one hold the autosave's labels; they become the
            # start of the new autosave, and the damaged one is kept whole as .previous.
            if store is not None:
                store.close()  # its journal is set aside below
            self._error(f"the autosave in {folder} could not be restored ({exc}); it is set aside "
                        f"as {folder.name}.previous and a new one starts", warning=True)
            self._start_autosave(folder, replace=True)
            return
        live = [contents.sessions[n] for n in contents.live]
        if live:
            self._apply_recorded_settings(live[-1].config)
        remove_stale_embeddings(folder)
        self._use_store(store)
        self._restoring = True
        try:
            for history in live:
                if history.axis != self.axis:
                    continue  # the widget walks one axis at a time: the last one used
                session = self._session_for(history.held_key)
                restore_history(session, history)
                store.attach(session, resume=history.number)
                if history.normalizer != (session.frames.normalizer.low, session.frames.normalizer.high):
                    store.record_normalizer(session)
        except Exception as exc:  # a damaged journal must not keep the image from opening
            self._error(f"the autosaved labels are back, but not the clicks: {exc}", warning=True)
        finally:
            self._restoring = False
        self._refresh_labels()
        self._sync_points()
        for warning in contents.warnings:
            show_warning(f"autosave: {warning}")
        show_info(f"Restored the autosave of {self.image_layer.name} ({contents.summary()}) from {folder}. "
                  "'Start fresh' sets it aside and clears the labels.")

    def _apply_recorded_settings(self, config) -> None:
        """Backend, device, checkpoint and axis as they were (without rebuilding)."""
        widgets = (self.backend_combo, self.device_combo, self.axis_spin)
        for w in widgets:
            w.blockSignals(True)
        try:
            if self.backend_combo.findText(config.backend) >= 0:
                self.backend_combo.setCurrentText(config.backend)
            if self.device_combo.findText(config.device) >= 0:
                self.device_combo.setCurrentText(config.device)
            if 0 <= config.axis <= self.axis_spin.maximum():
                self.axis_spin.setValue(config.axis)
        finally:
            for w in widgets:
                w.blockSignals(False)
        if config.checkpoint != self._checkpoint:
            self._checkpoint = config.checkpoint
            self.checkpoint_edit.setText(config.checkpoint or "")
        self._segmenter = None  # built again for the recorded backend
        self._update_checkpoint_row()

    def start_fresh(self) -> None:
        """Set the autosave aside (kept as ``<folder>.previous``), clear labels and clicks, start anew."""
        if self._busy() or self._autosave is None:
            return
        folder = self._autosave.folder
        self._close_autosave()
        self._close_disk_caches()  # their files may be in the folder set aside: not kept with it
        try:
            previous = set_aside(folder)
        except OSError as exc:
            self._error(f"could not set the autosave aside: {exc}")
            return
        self._fill_labels(None)
        self._sessions.clear()
        self._rebuild()
        self._set_status(f"Started fresh; the previous autosave is kept as {previous}.")

    def _on_autosave_toggled(self, checked: bool) -> None:
        if self._busy():
            return
        if not checked:
            self._close_autosave()
        else:
            folder = self.autosave_folder()
            if folder is not None and self.labels_layer is not None:
                # The embedding files may sit in the folder about to be set aside: move them.
                self._close_disk_caches()
                # The labels may have changed while autosave was off: start from them.
                self._start_autosave(folder, replace=True)
                for session in self._sessions.values():
                    self._autosave_session(session)
                self._open_disk_caches()
        self._show_autosave_state()

    # ----------------------------------------------------- manual edits
    def _on_paint(self, event) -> None:
        """A manual edit of the objects layer: journal the planes it touched (on the next tick,
        since napari emits ``paint`` before it writes the data)."""
        if self.labels_layer is None:
            return
        # On-disk labels are never scanned for ids: remember the one the brush uses,
        # so that "New object" cannot hand it out again.
        label = int(self.labels_layer.selected_label)
        for session in self._sessions.values():
            session.note_object_id(label)
        leading = tuple(self.labels_layer.data.shape[:-2])
        keys = set()
        for atom in getattr(event, "value", None) or []:
            index = getattr(atom, "slice_key", None)
            if index is None and isinstance(atom, tuple) and atom:
                index = atom[0]
            try:
                keys.update(planes_touched(index, leading))
            except (TypeError, ValueError, IndexError):
                pass
        if not keys:  # an edit napari describes differently: the plane on screen
            point = _layers.current_data_point(self.viewer, self.labels_layer)
            keys.add(tuple(_layers.pixel_index(point[a]) for a in range(len(leading))))
        if self._autosave is not None:
            self._painted |= keys
            QTimer.singleShot(0, lambda: self._journal_planes(keys))
        # Then the painted frames become keyframes of the painted ids (see _boxes.py): after
        # the stroke is journaled, so a replay paints first. The stroke's atoms name the id
        # painted, which is not always the layer's selected label (a script, another tool).
        painted = painted_labels(getattr(event, "value", None)) or {label}
        QTimer.singleShot(0, lambda: [self._keyframe_painted(i, keys) for i in sorted(painted)])

    def _on_labels_set_data(self, event=None) -> None:
        """napari's own undo/redo of a manual edit changes data without a ``paint`` event."""
        if self._autosave is not None and self._painted:
            self._journal_planes(self._painted)

    def _journal_planes(self, keys) -> None:
        store = self._autosave
        if store is None or self.labels_layer is None:
            return
        for key in sorted(keys):
            plane = np.asarray(self.labels_layer.data[key if key else ...])
            if not store.labels_on_disk_match(key, plane_checksum(plane)):
                store.record_paint(key, plane)
