"""Box and label prompts in the widget, in a real napari viewer (run under Xvfb).

A rectangle is dragged in the ``boxes`` layer through napari's own mouse callbacks
(press, moves, release), as the canvas delivers them; the fake segmenter of
tests/conftest.py makes the expected masks exact.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import BrightComponentSegmenter, MouseEvent, settle_clicks
from napari.utils._proxies import ReadOnlyWrapper
from napari.utils.interactions import mouse_move_callbacks, mouse_press_callbacks, mouse_release_callbacks
from qtpy.QtWidgets import QApplication

from napari_ois._widgets import AnnotateObjectsWidget
from napari_ois.core.boxes import BoxPrompt, read_boxes

pytestmark = pytest.mark.gui

TIMEOUT_MS = 10_000


@pytest.fixture
def annotate(make_napari_viewer, squares):
    video, truth = squares
    viewer = make_napari_viewer()
    viewer.add_image(video, name="squares")
    segmenter = BrightComponentSegmenter()
    widget = AnnotateObjectsWidget(viewer, segmenter_factory=lambda backend, device: segmenter)
    viewer.window.add_dock_widget(widget, name="Annotate objects")
    return viewer, widget, truth


def settle(widget) -> None:
    """Wait for queued prompts, then let the widget mirror the session in its layers."""
    settle_clicks(widget)


def corners(box: BoxPrompt) -> tuple[float, float, float, float]:
    return box.y0, box.x0, box.y1, box.x1


def drag_rectangle(viewer, layer, frame: int, start: tuple, end: tuple, steps: int = 4) -> None:
    """Press at ``start`` (y, x), drag to ``end``, release: napari's rectangle tool as a user drives it."""
    viewer.dims.set_point(0, frame)
    viewer.layers.selection.active = layer
    layer.mode = "add_rectangle"
    press = ReadOnlyWrapper(MouseEvent("mouse_press", (float(frame), *map(float, start))), exceptions=("handled",))
    mouse_press_callbacks(layer, press)
    for k in range(1, steps + 1):
        y = start[0] + (end[0] - start[0]) * k / steps
        x = start[1] + (end[1] - start[1]) * k / steps
        move = MouseEvent("mouse_move", (float(frame), y, x), is_dragging=True)
        mouse_move_callbacks(layer, ReadOnlyWrapper(move, exceptions=("handled",)))
    release = MouseEvent("mouse_release", (float(frame), *map(float, end)))
    mouse_release_callbacks(layer, ReadOnlyWrapper(release, exceptions=("handled",)))
    QApplication.processEvents()


def test_a_drawn_rectangle_segments_the_object_and_clicks_refine_it(annotate, tmp_path):
    viewer, widget, truth = annotate
    assert widget.boxes_layer.name == "boxes" and widget.boxes_layer.ndim == 3
    # Frame 3: object 1 covers rows 4-11, columns 8-15; the box leaves object 2 (rows 24-31) out.
    drag_rectangle(viewer, widget.boxes_layer, 3, (2.6, 6.6), (13.4, 17.4))
    settle(widget)
    labels = widget.labels_layer.data
    assert np.array_equal(labels[3] == 1, truth[3] == 1) and labels[3].max() == 1
    assert labels[[0, 1, 2, 4, 5, 6, 7, 8, 9]].max() == 0
    session = widget.session
    assert corners(session.prompts.box(1, 3)) == pytest.approx((3.1, 7.1, 13.9, 17.9), abs=1e-4)
    assert 3 in session.keyframes_of(1)
    # The boxes layer mirrors the session: one rectangle, on frame 3.
    assert len(widget.boxes_layer.data) == 1 and np.allclose(widget.boxes_layer.data[0][:, 0], 3)
    # A click refines the box's mask; Undo twice removes the click, then the box.
    widget.points_layer.add((3, 27, 12))  # positive click on object 2's square: joins the mask
    settle(widget)
    assert (widget.labels_layer.data[3] == 1).sum() == (truth[3] > 0).sum()
    widget.undo_button.click()
    widget.undo_button.click()
    assert widget.labels_layer.data[3].max() == 0 and session.prompts.box(1, 3) is None
    assert len(widget.boxes_layer.data) == 0
    widget.redo_button.click()
    assert np.array_equal(widget.labels_layer.data[3] == 1, truth[3] == 1)
    assert len(widget.boxes_layer.data) == 1
    # Export writes the boxes CSV beside the labels and the prompts CSV.
    files = widget.save(tmp_path / "objects.tif")
    assert tmp_path / "objects_boxes.csv" in files
    ((_, obj, frame, box),) = read_boxes(tmp_path / "objects_boxes.csv")
    assert (obj, frame) == (1, 3) and corners(box) == pytest.approx((3.1, 7.1, 13.9, 17.9), abs=1e-4)


def test_a_rectangle_off_the_frame_is_refused_and_changes_nothing(annotate, notifications):
    viewer, widget, truth = annotate
    drag_rectangle(viewer, widget.boxes_layer, 2, (2.6, 6.6), (13.4, 17.4))
    settle(widget)
    before = widget.labels_layer.data.copy()
    history = len(widget.session.undo_stack)
    drag_rectangle(viewer, widget.boxes_layer, 2, (-30, -30), (-10, -12))  # wholly above-left of the frame
    settle(widget)
    assert np.array_equal(widget.labels_layer.data, before)
    assert len(widget.session.undo_stack) == history
    assert corners(widget.session.prompts.box(1, 2)) == pytest.approx((3.1, 7.1, 13.9, 17.9), abs=1e-4)
    assert len(widget.boxes_layer.data) == 1  # the refused rectangle is not kept
    assert any("zero area" in str(n.message) for n in notifications)
    # A rectangle overshooting the frame's edge is clipped to it, not refused.
    widget.object_spin.setValue(2)
    drag_rectangle(viewer, widget.boxes_layer, 2, (20.6, 4.6), (60, 33.4))
    settle(widget)
    assert np.array_equal(widget.labels_layer.data[2] == 2, truth[2] == 2)
    assert corners(widget.session.prompts.box(2, 2)) == pytest.approx((21.1, 5.1, 40, 33.9), abs=1e-4)


def test_keyframes_imported_from_another_labels_layer_propagate(annotate, qtbot):
    viewer, widget, truth = annotate
    other = np.zeros_like(truth)
    other[5] = truth[5]  # both objects annotated by another tool on frame 5 only
    viewer.add_labels(other, name="from another tool")
    assert widget.keyframes_combo.findText("from another tool") >= 0 and widget.import_button.isEnabled()
    widget.keyframes_combo.setCurrentText("from another tool")
    widget.import_button.click()
    session = widget.session
    assert session.keyframes_of(1) == [5] and session.keyframes_of(2) == [5]
    assert np.array_equal(widget.labels_layer.data[5], truth[5])
    widget.all_objects_check.setChecked(True)
    with qtbot.waitSignal(widget.propagation_finished, timeout=TIMEOUT_MS):
        widget.both_button.click()
    assert np.array_equal(widget.labels_layer.data, truth)


def test_import_refuses_a_layer_of_another_shape(annotate, notifications):
    viewer, widget, truth = annotate
    viewer.add_labels(np.ones((3, 8, 8), np.uint8), name="small")
    assert widget.import_keyframes("small") == 0
    assert any("shape" in str(n.message) for n in notifications)
    assert widget.labels_layer.data.max() == 0


def test_painted_labels_and_use_labels_make_keyframes(annotate, qtbot):
    viewer, widget, truth = annotate
    # Labels written by hand on frame 6 (as a brush would), then "Use labels on this frame".
    widget.labels_layer.data[6][truth[6] == 1] = 1
    widget.labels_layer.refresh()
    viewer.dims.set_point(0, 6)
    widget.use_labels_button.click()
    assert widget.session.keyframes_of(1) == [6]
    with qtbot.waitSignal(widget.propagation_finished, timeout=TIMEOUT_MS):
        widget.both_button.click()
    assert np.array_equal(widget.labels_layer.data == 1, truth == 1)
    # A brush stroke of id 2 on frame 1 makes frame 1 a keyframe of object 2.
    viewer.dims.set_point(0, 1)
    widget.labels_layer.selected_label = 2
    widget.labels_layer.brush_size = 3
    widget.labels_layer.paint((1, 28, 10), 2)
    qtbot.waitUntil(lambda: widget.session.keyframes_of(2) == [1], timeout=TIMEOUT_MS)
    # Nothing to use: an object without labels on the frame is a warning, not a keyframe.
    widget.object_spin.setValue(3)
    assert widget.use_labels_on_frame() is False
    assert widget.session.keyframes_of(3) == []
