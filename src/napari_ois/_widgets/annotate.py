"""The "Annotate objects" dock widget: a shell over :class:`AnnotationSession`.

Each handler reads the controls, calls one core function (or starts one worker) and
writes layers; no numerics live here. Long work (propagation) runs in a napari
``thread_worker`` over the core generator (see ``_runs.py``): every yielded frame is
applied on the main thread, so a stopped run leaves each frame untouched or complete.

Modules: ``_panel`` (controls), ``_clicks`` (clicks; encodes off the GUI thread),
``_boxes`` (boxes, labels as keyframes), ``_runs`` (propagation), ``_edits`` (objects, undo/redo,
export), ``_layers`` (layers and coordinates), ``_hooks`` (what is attached to the viewer),
``_storage`` (labels on disk for long data via core/io/scratch_labels.py, embedding disk cache).
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Callable, Iterable

from napari.layers import Image
from napari.layers.base import ActionType
from napari.utils.notifications import show_error, show_warning
from qtpy.QtCore import QEvent, QTimer, Signal
from qtpy.QtWidgets import QFileDialog, QSpinBox, QWidget

from napari_ois.core.clicks import Click, read_prompts
from napari_ois.core.config import AnnotationConfig
from napari_ois.core.errors import InputError, OISError
from napari_ois.core.frames import FrameStack, StackNormalizer
from napari_ois.core.segmenter import Segmenter
from napari_ois.core.backends import backend_info, get_segmenter
from napari_ois.core.session import AnnotationSession
from napari_ois.threads import configure_threads

from . import _layers
from ._autosave import AutosaveMixin
from ._boxes import BoxMixin
from ._clicks import ClickMixin
from ._edits import EditMixin
from ._hooks import Hooks
from ._panel import build_panel
from ._runs import PropagationMixin
from ._storage import StorageMixin

#: ``factory(backend, device)`` or ``factory(backend, device, checkpoint=...)``.
SegmenterFactory = Callable[..., Segmenter]

__all__ = ["AnnotateObjectsWidget", "SegmenterFactory"]


class AnnotateObjectsWidget(ClickMixin, BoxMixin, PropagationMixin, EditMixin, AutosaveMixin, StorageMixin, QWidget):
    """Click-based object segmentation and mask propagation for the chosen image layer.

    Parameters
    ----------
    napari_viewer : napari.Viewer
        The viewer (injected by napari).
    segmenter_factory : callable, optional
        ``factory(backend, device) -> Segmenter``; default
        :func:`napari_ois.core.segmenter.get_segmenter`. Tests inject a fake here. A
        factory that accepts a ``checkpoint`` keyword also gets the chosen checkpoint
        (a path, or None for the packaged default); two-argument factories do not.
    labels_on_disk_mb : float, optional
        Initial value of *Labels on disk above*: an objects layer whose uint32 labels
        would take more MiB than this is a zarr array on disk; 0 = always (default 512).
    scratch_dir : str or Path, optional
        Parent folder of those on-disk labels; the system temp folder when None.
    """

    #: Emitted on the main thread when a propagation run has ended (done, stopped or failed).
    propagation_finished = Signal()

    def __init__(self, napari_viewer, segmenter_factory: SegmenterFactory | None = None, parent=None,
                 labels_on_disk_mb: float | None = None, scratch_dir: str | Path | None = None):
        super().__init__(parent)
        self.viewer = napari_viewer
        self._factory: SegmenterFactory = segmenter_factory or get_segmenter
        self._checkpoint: str | None = None  # None = the packaged default
        self._segmenter: Segmenter | None = None
        self._sessions: dict[tuple, AnnotationSession] = {}
        self.image_layer: Image | None = None
        self.labels_layer = None
        self.points_layer = None
        self.boxes_layer = None
        self.worker = None
        self._run = None  # (session, Action) of the running propagation
        self._napari_progress = None  # napari.utils.progress of the running propagation
        self._flip_next = False  # Shift held on the last press in the prompts layer
        self._contrast_stale = False
        self._syncing = False
        self._hooks = Hooks(napari_viewer)
        self._init_clicks()
        self.scratch_dir = scratch_dir
        self._build_ui()
        if labels_on_disk_mb is not None:
            self.labels_disk_spin.setValue(int(labels_on_disk_mb))
        self._attach()
        self.destroyed.connect(self._hooks.remove_all)
        self._refresh_image_choices()

    # ------------------------------------------------------------------ UI
    def _build_ui(self) -> None:
        build_panel(self)

        self.image_combo.currentIndexChanged.connect(lambda _: self._rebuild())
        self.image_combo.activated.connect(self._reactivate)
        self.axis_spin.valueChanged.connect(lambda _: self._rebuild())
        self.backend_combo.currentIndexChanged.connect(lambda _: self._rebuild(new_segmenter=True))
        self.device_combo.currentIndexChanged.connect(lambda _: self._rebuild(new_segmenter=True))
        self.threads_spin.valueChanged.connect(self._on_threads_changed)
        self.backend_combo.currentIndexChanged.connect(lambda _: self._update_checkpoint_row())
        self.checkpoint_button.clicked.connect(self.choose_checkpoint)
        self._update_checkpoint_row()
        self.object_spin.valueChanged.connect(self._on_object_changed)
        self.negative_check.toggled.connect(lambda _: self._on_object_changed(self.object_spin.value()))
        self.filled_check.toggled.connect(self._on_filled_toggled)
        self.new_button.clicked.connect(self.new_object)
        self.backward_button.clicked.connect(lambda: self.propagate("backward"))
        self.both_button.clicked.connect(lambda: self.propagate("both"))
        self.forward_button.clicked.connect(lambda: self.propagate("forward"))
        self.stop_button.clicked.connect(self.stop)
        self.undo_button.clicked.connect(self.undo)
        self.redo_button.clicked.connect(self.redo)
        self.clear_button.clicked.connect(self.clear_object)
        self.use_labels_button.clicked.connect(self.use_labels_on_frame)
        self.import_button.clicked.connect(lambda: self.import_keyframes())
        self.worst_button.clicked.connect(self.jump_to_worst_frame)
        self.export_button.clicked.connect(self.export)
        self.autosave_check.toggled.connect(self._on_autosave_toggled)
        self.autosave_folder_button.clicked.connect(self.choose_autosave_folder)
        self.fresh_button.clicked.connect(self.start_fresh)
        self.disk_cache_check.toggled.connect(self._on_disk_cache_toggled)
        self.disk_cache_spin.valueChanged.connect(self._on_disk_cache_mb_changed)

    def _on_threads_changed(self, value: int) -> None:
        """Threads of one model call: 0 = automatic ($NAPARI_OIS_THREADS, else torch's default)."""
        count = configure_threads(value or None)
        self._set_status(f"Model calls use {count} CPU thread(s).")

    def _set_status(self, text: str) -> None:
        self.status.setText(text)

    def _error(self, message: str, warning: bool = False) -> None:
        self._set_status(message)
        (show_warning if warning else show_error)(message)

    def _set_busy(self, busy: bool) -> None:
        # Threads too: torch's thread count is global, not to be changed under a running model.
        for w in (self.image_combo, self.axis_spin, self.backend_combo, self.device_combo, self.threads_spin,
                  self.new_button,
                  self.backward_button, self.both_button, self.forward_button, self.undo_button,
                  self.redo_button, self.clear_button, self.worst_button, self.export_button):
            w.setEnabled(not busy)
        self.stop_button.setEnabled(busy)
        self.autosave_check.setEnabled(not busy)
        self.autosave_folder_button.setEnabled(not busy)
        self.fresh_button.setEnabled(not busy and self.autosave is not None)
        if not busy:
            self.axis_spin.setEnabled(self.axis_spin.maximum() > 0)
        self._update_checkpoint_row()

    def _update_checkpoint_row(self) -> None:
        # Only the 'ois' backend reads a checkpoint; a running propagation keeps its model.
        self.checkpoint_row.setEnabled(self._backend_takes_checkpoint(self.backend_combo.currentText()) and self.worker is None)

    # ---------------------------------------------------------- checkpoint
    @property
    def checkpoint(self) -> str | None:
        """Checkpoint path of the ``ois`` backend (None = the packaged default)."""
        return self._checkpoint

    def set_checkpoint(self, path: str | Path | None) -> None:
        """Use the checkpoint at ``path`` (None = the packaged default) for the ``ois`` backend.

        The segmenter is rebuilt like after a backend change (labels are kept); a missing
        or unreadable file is notified and shown in the status line.

        Parameters
        ----------
        path : str or Path or None
            A ``.pt`` file written by napari-ois, or None.
        """
        if self._busy():
            return  # the running propagation holds the current model
        self._checkpoint = None if path is None or str(path) == "" else str(path)
        self.checkpoint_edit.setText(self._checkpoint or "")
        self.checkpoint_edit.setToolTip(self._checkpoint or "The checkpoint shipped with napari-ois")
        self._rebuild(new_segmenter=True)

    def choose_checkpoint(self) -> None:
        """Ask for a checkpoint file and :meth:`set_checkpoint` it (Cancel changes nothing)."""
        start = str(Path(self._checkpoint).parent) if self._checkpoint else ""
        path, _ = QFileDialog.getOpenFileName(
            self, "Choose an 'ois' checkpoint", start, "Checkpoints (*.pt);;All files (*)"
        )
        if path:
            self.set_checkpoint(path)

    def _make_segmenter(self, config: AnnotationConfig) -> Segmenter:
        """Call the factory, passing the checkpoint only to factories that take one."""
        if _takes_checkpoint(self._factory):
            return self._factory(config.backend, config.device, checkpoint=config.checkpoint)
        return self._factory(config.backend, config.device)

    # -------------------------------------------------------- viewer hooks
    def _attach(self) -> None:
        """Connect to the viewer and bind the keys (undone by :meth:`_detach`)."""
        if self._hooks.attached:
            return
        layers = self.viewer.layers
        self._hooks.connect(layers.events.inserted, self._refresh_image_choices)
        self._hooks.connect(layers.events.removed, self._on_layer_removed)
        self._hooks.connect(self.viewer.dims.events.current_step, self._on_slider_moved)
        bind = self._hooks.bind_key
        bind("Control-Z", lambda v: self.undo())
        bind("Control-Shift-Z", lambda v: self.redo())
        bind("T", lambda v: self.negative_check.toggle())
        bind("M", lambda v: self.new_object())
        bind("Shift-S", lambda v: self.propagate("both"))
        self._hooks.attached = True
        self._hook_layers()

    def _detach(self) -> None:
        """Remove keybindings and callbacks; stop a running propagation."""
        if self.worker is not None:
            self.worker.quit()
        self._hooks.remove_all()
        # The autosave stays attached: frames of a run still in flight are saved as they land,
        # and every record is already on disk, so nothing needs closing.

    def closeEvent(self, event) -> None:  # noqa: N802 (Qt API)
        self._detach()
        super().closeEvent(event)

    def event(self, event) -> bool:
        # napari's remove_dock_widget un-parents the widget without closing it.
        if event.type() == QEvent.Type.ParentChange:
            if self.parent() is None:
                self._detach()
            elif not self._hooks.attached:
                self._attach()
        return super().event(event)

    def _hook_layers(self) -> None:
        """(Re)connect to the current image/prompts layers."""
        self._hooks.disconnect_group("layers")
        if not self._hooks.attached:
            return
        if self.image_layer is not None:
            self._hooks.connect(self.image_layer.events.contrast_limits, self._on_contrast, group="layers")
        if self.labels_layer is not None:  # manual edits of the objects layer are autosaved too
            self._hooks.connect(self.labels_layer.events.paint, self._on_paint, group="layers")
            self._hooks.connect(self.labels_layer.events.set_data, self._on_labels_set_data, group="layers")
            # The layer's own controls can change the outline width too: keep the box in step.
            self._hooks.connect(self.labels_layer.events.contour, self._on_contour_changed, group="layers")
        if self.points_layer is not None:
            self._hooks.connect(self.points_layer.events.data, self._on_points_data, group="layers")
            self._hooks.add_mouse_callback(self.points_layer, self._on_press, group="layers")
        if self.boxes_layer is not None:
            self._hooks.connect(self.boxes_layer.events.data, self._on_boxes_data, group="layers")

    def _on_contrast(self, event=None) -> None:
        self._contrast_stale = True

    def _on_filled_toggled(self, filled: bool) -> None:
        if self.labels_layer is not None:
            _layers.show_filled(self.labels_layer, filled)

    def _on_contour_changed(self, event=None) -> None:
        if self.labels_layer is None:
            return
        self.filled_check.blockSignals(True)  # reflect the layer's state, do not write it back
        self.filled_check.setChecked(self.labels_layer.contour == 0)
        self.filled_check.blockSignals(False)

    def _on_press(self, layer, event) -> None:
        self._flip_next = "Shift" in event.modifiers

    # -------------------------------------------------------- image choice
    def _on_layer_removed(self, event=None) -> None:
        layers = self.viewer.layers
        if self.boxes_layer is not None and self.boxes_layer not in layers:
            self.boxes_layer = None  # boxes stay in the sessions; choosing the image again shows them
            self._hook_layers()
        if any(x is not None and x not in layers for x in (self.labels_layer, self.points_layer)):
            # Not recreated here: the viewer may be closing. Picking the image again does it.
            if self.worker is not None:
                self.worker.quit()  # its frames have nowhere to go (_on_yielded skips them)
            self.labels_layer = self.points_layer = None
            self._close_disk_caches()
            self._sessions.clear()
            self._close_autosave()
            self._hook_layers()
            self._show_storage_state()
            self._set_status("The objects or prompts layer was removed: pick the image again to start afresh.")
        self._refresh_image_choices()

    def _refresh_image_choices(self, event=None) -> None:
        self._refresh_keyframe_choices()
        names = [layer.name for layer in self.viewer.layers if isinstance(layer, Image)]
        current = self.image_combo.currentText()
        if names == [self.image_combo.itemText(i) for i in range(self.image_combo.count())]:
            return
        self.image_combo.blockSignals(True)
        self.image_combo.clear()
        self.image_combo.addItems(names)
        if current in names:
            self.image_combo.setCurrentIndex(names.index(current))
        self.image_combo.blockSignals(False)
        if self.image_combo.currentText() != current or self.image_layer is None:
            self._rebuild()

    def _reactivate(self, index: int) -> None:
        # Choosing the same image again recreates removed objects/prompts/boxes layers.
        if self.labels_layer is None or self.points_layer is None or self.boxes_layer is None:
            self._rebuild()

    def _rebuild(self, new_segmenter: bool = False) -> None:
        """Start afresh for the chosen layer/axis/backend; the labels layer is kept."""
        if self.worker is not None:
            return
        self._close_disk_caches()  # the sessions dropped here take their embedding files along
        self._sessions.clear()
        if new_segmenter:
            self._segmenter = None
        name = self.image_combo.currentText()
        layer = self.viewer.layers[name] if name in self.viewer.layers else None
        self.image_layer = layer if isinstance(layer, Image) else None
        if self.image_layer is None:
            self._hook_layers()
            self._set_status("Choose an image layer.")
            return
        n_leading = _layers.leading_axes(self.image_layer)
        self.axis_spin.blockSignals(True)
        self.axis_spin.setRange(0, max(n_leading - 1, 0))
        self.axis_spin.setEnabled(n_leading > 1)
        self.axis_spin.blockSignals(False)
        self._show_frame_count()
        try:
            self.labels_layer = self._ensure_objects_layer()
        except OISError as exc:  # e.g. no room for the on-disk labels
            self.labels_layer = None
            self._hook_layers()
            self._error(str(exc))
            return
        self._show_storage_state()
        _layers.show_filled(self.labels_layer, self.filled_check.isChecked())
        self.boxes_layer = _layers.ensure_boxes_layer(self.viewer, self.image_layer)
        self.points_layer = _layers.ensure_prompts_layer(self.viewer, self.image_layer)
        self._hook_layers()
        self._refresh_keyframe_choices()
        self._open_autosave()  # restores an autosave of this image, if there is one
        try:
            session = self.session
        except OISError as exc:
            message = str(exc)
            if self._backend_takes_checkpoint(self.backend_combo.currentText()) and self._checkpoint is None:
                # The core message names the CLI option; in the widget the '…' button does it.
                message += " (in the widget: choose a .pt file with the Checkpoint '…' button)"
            self._error(message)
            return
        except Exception as exc:  # e.g. a torch backend failing to load: report, don't crash
            self._error(f"could not start the {self.backend_combo.currentText()!r} backend: {exc!r}")
            return
        self._sync_points()
        self._on_object_changed(self.object_spin.value())
        self.viewer.layers.selection.active = self.points_layer
        self.points_layer.mode = "add"
        frames = session.frames
        self._set_status(
            f"{self.image_layer.name}: {frames.n_frames} frame(s) of {frames.shape[0]}x{frames.shape[1]}, "
            f"backend {session.segmenter.name}. Click on an object (labels already made are kept)."
        )

    # ------------------------------------------------------------- session
    @property
    def axis(self) -> int:
        return self.axis_spin.value()

    @staticmethod
    def _backend_takes_checkpoint(backend: str) -> bool:
        """Whether the backend reads a checkpoint (from the registry; unknown names do not)."""
        try:
            return backend_info(backend).takes_checkpoint
        except OISError:
            return False

    def _config(self) -> AnnotationConfig:
        backend = self.backend_combo.currentText()
        # Recorded only where it is used, so exported settings say which model made the masks.
        checkpoint = self._checkpoint if self._backend_takes_checkpoint(backend) else None
        return AnnotationConfig(
            backend=backend, device=self.device_combo.currentText(), checkpoint=checkpoint, axis=self.axis,
            **self._disk_cache_settings(),
        )

    def set_segmenter_factory(self, factory: SegmenterFactory) -> None:
        """Use ``factory(backend, device[, checkpoint=...]) -> Segmenter`` from now on (rebuilds)."""
        self._factory = factory
        self._rebuild(new_segmenter=True)

    def _session_for(self, fixed: tuple[tuple[int, int], ...]) -> AnnotationSession:
        """The session for the held indices ``fixed`` (4-D data); built on first use."""
        if self.image_layer is None or self.labels_layer is None or self.points_layer is None:
            raise InputError("choose an image layer first (in the widget's Image box)")
        if fixed in self._sessions:
            return self._sessions[fixed]
        config = self._config()
        if self._segmenter is None:
            self._segmenter = self._make_segmenter(config)
        layer = self.image_layer
        frames = FrameStack(
            _layers.image_data(layer),
            axis=self.axis,
            rgb=layer.rgb,
            fixed=dict(fixed),
            normalizer=StackNormalizer.from_contrast_limits(layer.contrast_limits),
        )
        session = AnnotationSession(frames, labels=self.labels_layer.data, segmenter=self._segmenter, config=config)
        self._sessions[fixed] = session
        self._autosave_session(session)
        return session

    def _current_fixed(self) -> tuple[tuple[int, int], ...]:
        point = _layers.current_data_point(self.viewer, self.image_layer)
        n_leading = _layers.leading_axes(self.image_layer)
        return tuple((a, _layers.pixel_index(point[a])) for a in range(n_leading) if a != self.axis)

    @property
    def session(self) -> AnnotationSession:
        """The session at the viewer's current position (raises InputError without an image)."""
        if self.image_layer is None:
            raise InputError("choose an image layer first")
        return self._session_for(self._current_fixed())

    def current_frame(self) -> int:
        """Index of the displayed frame along the frame axis."""
        if _layers.leading_axes(self.image_layer) == 0:
            return 0
        return _layers.pixel_index(_layers.current_data_point(self.viewer, self.image_layer)[self.axis])

    def _apply_contrast(self) -> None:
        # Embeddings depend on the intensity mapping: new contrast limits = fresh cache.
        if self._contrast_stale and self.image_layer is not None:
            normalizer = StackNormalizer.from_contrast_limits(self.image_layer.contrast_limits)
            for session in self._sessions.values():
                with session.lock:
                    session.frames.normalizer = normalizer
                    session.cache.clear()
                if self.autosave is not None:
                    self.autosave.record_normalizer(session)
            self._contrast_stale = False

    def _refresh_labels(self) -> None:
        if self.labels_layer is not None:
            self.labels_layer.refresh()

    def _sync_points(self) -> None:
        """Make the prompts layer show exactly the clicks of the sessions."""
        if self.points_layer is None or self.image_layer is None:
            return
        clicks = [(c, fixed) for fixed, s in self._sessions.items() for c in s.prompts]
        # Queued clicks (their frame is being encoded) stay visible until they are applied.
        held = {id(s): fixed for fixed, s in self._sessions.items()}
        clicks += [(c, held[id(s)]) for c, s in self.pending_clicks() if id(s) in held]
        self._syncing = True
        try:
            _layers.show_clicks(self.points_layer, clicks, self.axis, _layers.leading_axes(self.image_layer))
        finally:
            self._syncing = False
        self._sync_boxes()

    # ------------------------------------------------------------- clicks
    def _on_points_data(self, event) -> None:
        if self._syncing:
            return
        if event.action == ActionType.REMOVED:
            self._set_status("Clicks are removed with Undo (Ctrl+Z); the prompts layer mirrors the session.")
            QTimer.singleShot(0, self._sync_points)
            return
        if event.action != ActionType.ADDED:
            return
        flip, self._flip_next = self._flip_next, False
        positive = (not self.negative_check.isChecked()) ^ flip
        for point in self.points_layer.data[list(event.data_indices)]:
            self._click_at(point, positive)
        # napari still touches the new point after this event: rebuild on the next tick.
        QTimer.singleShot(0, self._sync_points)

    def add_clicks(self, clicks: Iterable[Click]) -> int:
        """Apply clicks (e.g. read from a prompts CSV) at the current held position.

        Scripted clicks wait for their frames' encodes (see :class:`~._clicks.ClickMixin`
        for interactive clicks, which do not). Returns the number of clicks accepted; the
        others are reported.
        """
        done = 0
        for click in clicks:
            n_leading = _layers.leading_axes(self.image_layer) if self.image_layer is not None else 0
            fixed = self._current_fixed() if self.image_layer is not None else ()
            point = _layers.point_from_click(click, self.axis, n_leading, fixed)
            with _spin_value(self.object_spin, click.object_id):
                done += self._click_at(point, click.positive, wait=True)
        self._sync_points()
        return done

    def load_prompts(self, path: str | Path) -> int:
        """Read a prompts CSV and apply its clicks; returns how many were accepted."""
        try:
            clicks = read_prompts(path)
        except OISError as exc:
            self._error(str(exc))
            return 0
        return self.add_clicks(clicks)


def _takes_checkpoint(factory: Callable) -> bool:
    """Whether ``factory`` accepts a ``checkpoint`` keyword (older factories take two arguments)."""
    try:
        params = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):  # builtins without a signature: call them the old way
        return False
    return any(p.name == "checkpoint" or p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


class _spin_value:
    """Temporarily set a spin box (the object id) while applying stored clicks."""

    def __init__(self, spin: QSpinBox, value: int):
        self.spin, self.value = spin, value

    def __enter__(self):
        self.old = self.spin.value()
        self.spin.blockSignals(True)
        self.spin.setValue(self.value)

    def __exit__(self, *exc):
        self.spin.setValue(self.old)
        self.spin.blockSignals(False)
