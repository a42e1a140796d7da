"""Box and label prompts of the widget: the ``boxes`` Shapes layer, labels as keyframes.

- A rectangle drawn in the ``boxes`` layer (rectangle mode) segments the current object
  on that frame; clicks in the prompts layer then refine it. The rectangle is clipped to
  the frame (a drag easily overshoots the edge); a box with no area on the frame is
  refused with a notification and changes nothing. Boxes queue behind clicks while their
  frame is encoded, as clicks do (``_clicks.py``).
- Labels as prompts: a stroke of the brush in ``objects`` makes that frame a keyframe of
  the painted id, *Use labels on this frame* does the same for the current object's
  labels there, and *Import keyframes* takes every non-zero frame of another Labels
  layer as keyframes, one object per id. Propagation starts from those keyframes.
"""

from __future__ import annotations

import numpy as np
from napari.layers import Labels
from napari.layers.base import ActionType
from qtpy.QtCore import QTimer

from napari_ois.core.boxes import BoxPrompt, clip_box
from napari_ois.core.errors import InputError, OISError

from . import _layers


class BoxMixin:
    """Boxes, and labels as keyframes, for :class:`AnnotateObjectsWidget`."""

    # ------------------------------------------------------------- boxes
    def _on_boxes_data(self, event) -> None:
        if self._syncing:
            return
        if event.action == ActionType.REMOVED:
            self._set_status("Boxes are removed with Undo (Ctrl+Z); the boxes layer mirrors the session.")
            QTimer.singleShot(0, self._sync_points)
            return
        if event.action not in (ActionType.ADDED, ActionType.CHANGED):
            return
        # A drawn rectangle (ADDED), or one moved/resized (CHANGED): either is a new box.
        for index in event.data_indices:
            self._box_at(self.boxes_layer.data[index])
        QTimer.singleShot(0, self._sync_points)

    def _box_at(self, vertices, wait: bool = False) -> bool:
        """Segment the current object from a rectangle of the boxes layer ((4, D) data corners).

        Errors become notifications; returns whether the box was accepted (applied or queued).
        """
        try:
            self._apply_contrast()
            n_leading = _layers.leading_axes(self.image_layer) if self.image_layer is not None else 0
            frame, fixed, drawn = _layers.box_from_shape(vertices, self.axis, n_leading)
            session = self._session_for(fixed)
            height, width = session.frames.shape
            box = clip_box(drawn, height, width)
            object_id = self.object_spin.value()
            session.check_box(object_id, frame, box)  # refused now, not after an encode
        except Exception as exc:  # noqa: BLE001 (reported, see _click_failed)
            return self._click_failed(exc)
        request = _BoxRequest(object_id, frame, box)
        if not wait and (self._queued or not session.cache.is_ready(frame)):
            self._queue_prompt(request, session)
            return True
        return self._apply_box(request, session)

    def _apply_box(self, request: "_BoxRequest", session) -> bool:
        """Run the prompt path for a box (its frame is encoded) and show the mask."""
        try:
            prediction = session.add_box(request.object_id, request.frame, request.box)
        except Exception as exc:  # noqa: BLE001 (reported, see _click_failed)
            return self._click_failed(exc)
        self._refresh_labels()
        area = int(np.count_nonzero(np.asarray(prediction.prob) > session.config.threshold))
        b = request.box
        self._set_status(
            f"Object {request.object_id}, frame {request.frame}: box (y {b.y0:g}-{b.y1:g}, x {b.x0:g}-{b.x1:g}); "
            f"mask {area:,} px. Click to refine it."
        )
        return True

    def add_box(self, box: BoxPrompt, frame: int | None = None) -> bool:
        """Segment the current object from ``box`` (core pixel coordinates) on ``frame``
        (default: the frame shown), as a drawn rectangle does; returns whether it was applied."""
        if self.image_layer is None:
            self._error("Choose an image layer first.")
            return False
        n_leading = _layers.leading_axes(self.image_layer)
        frame = self.current_frame() if frame is None else int(frame)
        vertices = _layers.shape_from_box(box, frame, self.axis, n_leading, self._current_fixed())
        done = self._box_at(vertices, wait=True)
        self._sync_points()
        return done

    def _sync_boxes(self) -> None:
        """Make the boxes layer show exactly the boxes of the sessions."""
        if self.boxes_layer is None or self.image_layer is None:
            return
        boxes = [(obj, frame, box, fixed) for fixed, s in self._sessions.items()
                 for obj, frame, box in s.prompts.boxes()]
        self._syncing = True
        try:
            _layers.show_boxes(self.boxes_layer, boxes, self.axis, _layers.leading_axes(self.image_layer))
        finally:
            self._syncing = False

    # ------------------------------------------------- labels as prompts
    def use_labels_on_frame(self) -> bool:
        """Make the current object's labels on the shown frame its keyframe (propagation
        starts from them); returns whether there were labels to use."""
        if self._busy() or self.labels_layer is None:
            return False
        try:
            session = self.session
            frame, object_id = self.current_frame(), self.object_spin.value()
            mask = session.object_mask(object_id, frame)
            if not mask.any():
                raise InputError(f"object {object_id} has no labels on frame {frame}: paint it, or pick its id")
            session.set_keyframe_mask(object_id, frame, mask)
        except OISError as exc:
            self._error(str(exc), warning=True)
            return False
        self._set_status(f"Frame {frame} is now a keyframe of object {object_id} ({int(mask.sum()):,} px): "
                         "propagate from it.")
        return True

    def _keyframe_painted(self, label: int, frame_keys) -> None:
        """After a brush stroke: the painted frames (of the session shown) become keyframes of ``label``."""
        if label <= 0 or self.worker is not None or self.image_layer is None:
            return
        try:
            fixed = self._current_fixed()
            session = self._session_for(fixed)
        except OISError:
            return
        for key in frame_keys:
            frame = self._frame_of_plane(key, fixed)
            if frame is None:
                continue
            mask = session.object_mask(label, frame)
            if mask.any():
                # Also on a keyframe: later clicks there then refine the painted mask.
                session.set_keyframe_mask(label, frame, mask)

    def _frame_of_plane(self, key: tuple, fixed) -> int | None:
        """The session frame of a labels plane index (leading-axis indices), if it is one of its frames."""
        if not key:
            return 0
        held = dict(fixed)
        if any(key[a] != i for a, i in held.items()):
            return None
        return int(key[self.axis])

    def import_keyframes(self, layer_name: str | None = None) -> int:
        """Every frame of another Labels layer holding non-zero labels becomes a keyframe of
        each id in it (one undo step per object and frame); returns the keyframes made."""
        if self._busy() or self.image_layer is None:
            return 0
        name = layer_name or self.keyframes_combo.currentText()
        layer = self.viewer.layers[name] if name in self.viewer.layers else None
        if not isinstance(layer, Labels) or layer is self.labels_layer:
            self._error("Choose another Labels layer to import keyframes from.", warning=True)
            return 0
        try:
            session = self.session
            expected = _layers.labels_shape(self.image_layer)
            if tuple(layer.data.shape) != expected:
                raise InputError(f"layer {name!r} has shape {tuple(layer.data.shape)} but the image's labels "
                                 f"have {expected}")
            count = session.set_keyframes_from_labels(lambda frame: layer.data[session.frames.index(frame)])
        except OISError as exc:
            self._error(str(exc), warning=True)
            return 0
        self._refresh_labels()
        if count == 0:
            self._error(f"layer {name!r} holds no non-zero label", warning=True)
        else:
            self._set_status(f"Imported {count} keyframe(s) from {name!r}: propagate to fill the other frames.")
        return count

    def _refresh_keyframe_choices(self, event=None) -> None:
        """List the Labels layers other than ``objects`` in the import picker."""
        names = [layer.name for layer in self.viewer.layers
                 if isinstance(layer, Labels) and layer is not self.labels_layer]
        if names == [self.keyframes_combo.itemText(i) for i in range(self.keyframes_combo.count())]:
            return
        current = self.keyframes_combo.currentText()
        self.keyframes_combo.clear()
        self.keyframes_combo.addItems(names)
        if current in names:
            self.keyframes_combo.setCurrentIndex(names.index(current))
        self.import_button.setEnabled(bool(names))


class _BoxRequest:
    """A box waiting for its frame's encode (it queues with the clicks)."""

    def __init__(self, object_id: int, frame: int, box: BoxPrompt):
        self.object_id, self.frame, self.box = object_id, frame, box
