"""The "Annotate objects" widget in a real napari viewer (run under Xvfb).

A deterministic fake segmenter (tests/conftest.py) is injected through the widget's
``segmenter_factory``, so the expected masks are exact and the tests are fast.
"""

from __future__ import annotations

import json
import threading
import time

import numpy as np
import pytest
import tifffile
from conftest import BrightComponentSegmenter, MouseEvent, add_point, moving_squares, settle_clicks
from napari.utils._proxies import ReadOnlyWrapper
from napari.utils.interactions import mouse_press_callbacks, mouse_release_callbacks
from napari.utils.key_bindings import coerce_keybinding

from napari_ois._widgets import AnnotateObjectsWidget
from napari_ois.core.clicks import read_prompts
from napari_ois.core.backends import get_segmenter

# (The triton/Mesa LLVM clash that a late model import used to cause inside napari is
# handled by napari_ois._widgets and tested in test_widget_ois_import.py.)
from napari_ois.model.checkpoint import make_random_checkpoint
from napari_ois.model.segmenter import OISSegmenter

pytestmark = pytest.mark.gui

TIMEOUT_MS = 10_000


class GatedSegmenter(BrightComponentSegmenter):
    """Propagation frames wait for a permit, so a test controls how far a run gets."""

    def __init__(self):
        super().__init__()
        self.gate = threading.Semaphore(0)

    def predict(self, embedding, clicks, prev_prob=None, reference=None):
        if reference is not None:
            assert self.gate.acquire(timeout=10), "test never released the gate"
        return super().predict(embedding, clicks, prev_prob, reference)


@pytest.fixture
def annotate(make_napari_viewer, squares):
    """Viewer with the moving squares, the widget docked with the fake segmenter."""

    def make(segmenter=None):
        video, truth = squares
        viewer = make_napari_viewer()
        viewer.add_image(video, name="squares")
        seg = segmenter or BrightComponentSegmenter()
        widget = AnnotateObjectsWidget(viewer, segmenter_factory=lambda backend, device: seg)
        viewer.window.add_dock_widget(widget, name="Annotate objects")
        return viewer, widget, truth

    return make


def click(widget, frame, y, x, shift=False):
    """A mouse click (press + release, no move) in the prompts layer, as napari delivers it."""
    layer = widget.points_layer
    modifiers = ["Shift"] if shift else []
    for kind, callbacks in (("mouse_press", mouse_press_callbacks), ("mouse_release", mouse_release_callbacks)):
        event = MouseEvent(kind, (float(frame), float(y), float(x)), modifiers)
        callbacks(layer, ReadOnlyWrapper(event, exceptions=("handled",)))
    settle_clicks(widget)  # a frame not yet encoded is encoded by a worker first


def test_layers_are_created_for_the_image(annotate):
    viewer, widget, truth = annotate()
    assert widget.labels_layer.name == "objects"
    assert widget.labels_layer.data.shape == truth.shape
    assert widget.points_layer.name == "prompts" and widget.points_layer.ndim == 3
    assert viewer.layers.selection.active is widget.points_layer
    assert widget.points_layer.mode == "add"


def test_click_segments_that_frame_only(annotate, qtbot):
    viewer, widget, truth = annotate()
    add_point(widget, np.array([3, 8, 2 + 2 * 3 + 3], dtype=float))  # napari's add, directly
    labels = widget.labels_layer.data
    assert np.array_equal(labels[3] == 1, truth[3] == 1)
    assert labels[[0, 1, 2, 4, 5, 6, 7, 8, 9]].max() == 0
    qtbot.waitUntil(lambda: widget.points_layer.features["frame"].tolist() == [3], timeout=TIMEOUT_MS)
    assert widget.points_layer.features["object_id"].tolist() == [1]
    assert widget.points_layer.features["positive"].tolist() == [True]
    # A second object keeps the first one's pixels.
    widget.new_object()
    assert widget.object_spin.value() == 2
    click(widget, 3, 28, 2 + 2 * 3 + 8)
    assert np.array_equal(labels[3], truth[3])


def test_negative_click_removes(annotate, qtbot):
    viewer, widget, truth = annotate()
    click(widget, 0, 8, 4)
    click(widget, 0, 28, 9)  # positive on object 2's square: both squares are object 1 now
    assert (widget.labels_layer.data[0] == 1).sum() == (truth[0] > 0).sum()
    # Shift+click: one click of the opposite polarity.
    click(widget, 0, 28, 9, shift=True)
    assert np.array_equal(widget.labels_layer.data[0] == 1, truth[0] == 1)
    # 'T' toggles negative clicks (bound on the viewer while the widget lives).
    viewer.keymap[coerce_keybinding("T")](viewer)
    assert widget.negative_check.isChecked()
    click(widget, 0, 8, 4)
    assert not widget.labels_layer.data[0].any()
    expected = [True, True, False, False]
    qtbot.waitUntil(lambda: widget.points_layer.features["positive"].tolist() == expected, timeout=TIMEOUT_MS)
    assert np.allclose(widget.points_layer.face_color[2:, :3], [0.95, 0.15, 0.15])
    assert np.allclose(widget.points_layer.face_color[:2, :3], [0.2, 0.9, 0.25])


def test_click_outside_image_notifies_and_changes_nothing(annotate, qtbot, notifications):
    viewer, widget, truth = annotate()
    click(widget, 0, 8, 4)
    before = widget.labels_layer.data.copy()
    click(widget, 0, 8, 45)
    assert np.array_equal(widget.labels_layer.data, before)
    assert any("outside" in str(n.message) for n in notifications)
    assert "outside" in widget.status.text()
    qtbot.waitUntil(lambda: len(widget.points_layer.data) == 1, timeout=TIMEOUT_MS)
    assert len(widget.session.prompts) == 1


def test_propagate_both_fills_every_frame(annotate, qtbot):
    viewer, widget, truth = annotate()
    click(widget, 4, 8, 2 + 8 + 3)
    with qtbot.waitSignal(widget.propagation_finished, timeout=TIMEOUT_MS):
        widget.both_button.click()
        assert not widget.both_button.isEnabled() and widget.stop_button.isEnabled()
    assert widget.worker is None and widget.both_button.isEnabled()
    assert np.array_equal(widget.labels_layer.data == 1, truth == 1)
    assert widget.progress.value() == 9
    # Undo reverts the whole run, redo brings it back.
    widget.undo_button.click()
    assert np.array_equal(widget.labels_layer.data[4] == 1, truth[4] == 1)
    assert widget.labels_layer.data[[0, 1, 2, 3, 5, 6, 7, 8, 9]].max() == 0
    widget.redo_button.click()
    assert np.array_equal(widget.labels_layer.data == 1, truth == 1)
    assert widget.jump_to_worst_frame() is not None


def test_stop_leaves_frames_untouched_or_complete(annotate, qtbot):
    segmenter = GatedSegmenter()
    viewer, widget, truth = annotate(segmenter)
    click(widget, 0, 8, 4)
    applied = []
    widget.propagate("forward").yielded.connect(lambda r: applied.append(r.frame))
    segmenter.gate.release(3)
    qtbot.waitUntil(lambda: len(applied) >= 3, timeout=TIMEOUT_MS)
    with qtbot.waitSignal(widget.propagation_finished, timeout=TIMEOUT_MS):
        widget.stop_button.click()
        segmenter.gate.release(100)  # let the frame in progress finish
    labels = widget.labels_layer.data
    complete = [t for t in range(10) if np.array_equal(labels[t] == 1, truth[t] == 1)]
    untouched = [t for t in range(10) if not labels[t].any()]
    assert sorted(complete + untouched) == list(range(10))
    assert 4 <= len(complete) <= 5 and untouched  # keyframe + 3 or 4 frames, then it stopped
    assert "Stopped" in widget.status.text()
    # The partial run is one undo step.
    widget.undo()
    assert labels[1:].max() == 0 and np.array_equal(labels[0] == 1, truth[0] == 1)


def test_undo_redo_keys_and_clicks_stay_in_sync(annotate, qtbot):
    viewer, widget, truth = annotate()
    click(widget, 2, 8, 8)
    click(widget, 5, 8, 14)
    qtbot.waitUntil(lambda: widget.points_layer.features["frame"].tolist() == [2, 5], timeout=TIMEOUT_MS)
    viewer.keymap[coerce_keybinding("Control-Z")](viewer)
    assert not widget.labels_layer.data[5].any() and widget.labels_layer.data[2].any()
    assert widget.points_layer.features["frame"].tolist() == [2]
    viewer.keymap[coerce_keybinding("Control-Shift-Z")](viewer)
    assert widget.labels_layer.data[5].any()
    assert sorted(widget.points_layer.features["frame"].tolist()) == [2, 5]


def test_export_writes_labels_prompts_and_settings(annotate, qtbot, tmp_path):
    viewer, widget, truth = annotate()
    click(widget, 0, 8, 4)
    click(widget, 0, 28, 9)
    files = widget.save(tmp_path / "out.tif")
    names = sorted(p.name for p in files)
    assert names == ["out.tif", "out_prompts.csv", "out_settings.json"]
    assert np.array_equal(tifffile.imread(tmp_path / "out.tif"), widget.labels_layer.data)
    clicks = read_prompts(tmp_path / "out_prompts.csv")
    assert [(c.object_id, c.frame, c.y, c.x, c.positive) for c in clicks] == [
        (1, 0, 8.0, 4.0, True),
        (1, 0, 28.0, 9.0, True),
    ]


def test_progress_bar_shows_the_frame_count_before_any_run(annotate, qtbot):
    viewer, widget, truth = annotate()
    assert widget.progress.text() == f"0 / {len(truth)} frames"  # not Qt's default "0 / 100"
    click(widget, 4, 8, 2 + 8 + 3)
    with qtbot.waitSignal(widget.propagation_finished, timeout=TIMEOUT_MS):
        widget.both_button.click()
    assert widget.progress.text() == "9 / 9 frames"  # the run's own count: every frame but the keyframe
    # Another image resets the bar to its length.
    viewer.add_image(np.zeros((4, 40, 40), np.uint8), name="short")
    widget.image_combo.setCurrentText("short")
    assert widget.progress.text() == "0 / 4 frames"


def test_threads_setting_sets_torch_threads_and_locks_during_runs(annotate, qtbot):
    import torch

    viewer, widget, truth = annotate()
    before = torch.get_num_threads()
    try:
        widget.threads_spin.setValue(1)
        assert torch.get_num_threads() == 1 and "1 CPU thread" in widget.status.text()
        widget.threads_spin.setValue(0)  # auto: torch's own default again
        from napari_ois import threads

        assert torch.get_num_threads() == min(threads._torch_default, threads.usable_cores())
        click(widget, 4, 8, 2 + 8 + 3)
        with qtbot.waitSignal(widget.propagation_finished, timeout=TIMEOUT_MS):
            widget.both_button.click()
            assert not widget.threads_spin.isEnabled()
        assert widget.threads_spin.isEnabled()
    finally:
        torch.set_num_threads(before)


def test_labels_show_contours_with_a_filled_toggle(annotate, tmp_path):
    viewer, widget, truth = annotate()
    layer = widget.labels_layer
    assert layer.contour == 2 and not widget.filled_check.isChecked()  # outlines by default
    assert layer.opacity == 1.0  # thin outlines are drawn opaque
    widget.filled_check.setChecked(True)
    assert layer.contour == 0 and layer.opacity == 0.6  # the image shows through filled masks
    click(widget, 0, 8, 4)
    settings = json.loads(next(p for p in widget.save(tmp_path / "out.tif") if p.suffix == ".json").read_text())
    assert settings["labels_view"] == "filled"
    layer.opacity = 0.3  # a user's opacity is kept by the toggle
    widget.filled_check.setChecked(False)
    assert layer.contour == 2 and layer.opacity == 0.3
    # The layer's own controls change the view too: the box follows.
    layer.contour = 0
    assert widget.filled_check.isChecked()
    layer.contour = 3
    assert not widget.filled_check.isChecked() and layer.contour == 3
    # Choosing the image again keeps the labels and shows them as the box says.
    widget.filled_check.setChecked(True)
    widget._rebuild()
    assert widget.labels_layer is layer and layer.contour == 0 and layer.data[0].any()


def test_export_as_cell_tracking_challenge(annotate, qtbot, tmp_path, monkeypatch):
    from napari_ois._widgets import _edits
    from napari_ois.core.io import read_labels

    viewer, widget, truth = annotate()
    click(widget, 4, 8, 2 + 8 + 3)
    widget.new_object()
    click(widget, 4, 28, 2 + 8 + 8)
    with qtbot.waitSignal(widget.propagation_finished, timeout=TIMEOUT_MS):
        widget.all_objects_check.setChecked(True)
        widget.propagate("forward")  # frames 0-3 stay empty: the tracks start at frame 4
    labels = np.asarray(widget.labels_layer.data)
    files = widget.save(tmp_path / "01_RES")  # a *_RES folder is the CTC layout
    assert [p.name for p in files] == ["01_RES", "01_RES_prompts.csv", "01_RES_settings.json"]
    np.testing.assert_array_equal(read_labels(tmp_path / "01_RES"), labels)
    assert (tmp_path / "01_RES" / "res_track.txt").read_text().splitlines() == ["1 4 9 0", "2 4 9 0"]
    # Export's file dialog: the CTC filter writes the layout whatever the folder's name.
    chosen = (str(tmp_path / "seq"), "Cell Tracking Challenge folder (*_RES)")
    monkeypatch.setattr(_edits.QFileDialog, "getSaveFileName", lambda *a, **k: chosen)
    widget.export_button.click()
    assert sorted(p.name for p in (tmp_path / "seq").iterdir())[-2:] == ["mask009.tif", "res_track.txt"]
    np.testing.assert_array_equal(read_labels(tmp_path / "seq"), labels)


def test_closing_the_widget_removes_its_keybindings(make_napari_viewer, squares):
    video, _ = squares
    viewer = make_napari_viewer()
    viewer.add_image(video)
    before = dict(viewer.keymap)
    widget = AnnotateObjectsWidget(viewer, segmenter_factory=lambda b, d: BrightComponentSegmenter())
    viewer.window.add_dock_widget(widget)
    assert coerce_keybinding("Control-Z") in viewer.keymap
    n_callbacks = len(widget.points_layer.mouse_drag_callbacks)
    viewer.window.remove_dock_widget(widget)
    assert dict(viewer.keymap) == before
    assert len(widget.points_layer.mouse_drag_callbacks) == n_callbacks - 1
    widget.close()
    widget.deleteLater()


def test_4d_data_walks_the_chosen_axis(make_napari_viewer, qtbot):
    video, truth = moving_squares(n_frames=6)
    stack = np.stack([video, video[::-1]])  # (T=2, Z=6, Y, X)
    viewer = make_napari_viewer()
    viewer.add_image(stack, name="tz")
    widget = AnnotateObjectsWidget(viewer, segmenter_factory=lambda b, d: BrightComponentSegmenter())
    viewer.window.add_dock_widget(widget)
    assert widget.axis_spin.isEnabled() and widget.axis_spin.maximum() == 1
    assert widget.progress.text() == "0 / 2 frames"  # axis 0 (t) has 2 frames
    widget.axis_spin.setValue(1)
    assert widget.progress.text() == "0 / 6 frames"  # the walked axis changed: 6 frames
    viewer.dims.set_point(0, 1)  # hold t = 1
    add_point(widget, np.array([1, 0, 8, 2 + 2 * 5 + 3], dtype=float))
    with qtbot.waitSignal(widget.propagation_finished, timeout=TIMEOUT_MS):
        widget.propagate("forward")
    labels = widget.labels_layer.data
    assert np.array_equal(labels[1] == 1, truth[::-1] == 1)
    assert not labels[0].any()


def test_single_rgb_image_and_removed_layers(make_napari_viewer, qtbot):
    video, truth = moving_squares(n_frames=1)
    rgb = np.repeat(video[0][..., None], 3, axis=-1)
    viewer = make_napari_viewer()
    viewer.add_image(rgb, rgb=True, name="photo")
    widget = AnnotateObjectsWidget(viewer, segmenter_factory=lambda b, d: BrightComponentSegmenter())
    viewer.window.add_dock_widget(widget)
    assert widget.labels_layer.data.shape == truth.shape[1:] and widget.points_layer.ndim == 2
    add_point(widget, np.array([8.0, 4.0]))
    assert np.array_equal(widget.labels_layer.data == 1, truth[0] == 1)
    # Removing the prompts layer is survivable: a click-less action says what to do.
    viewer.layers.remove(widget.points_layer)
    assert widget.points_layer is None
    widget.undo()
    assert "image" in widget.status.text()
    widget._reactivate(0)
    assert widget.points_layer is not None and widget.labels_layer.data.any()


def test_manifest_docks_the_widget(make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.add_image(np.zeros((3, 20, 20), np.uint8))
    _, widget = viewer.window.add_plugin_dock_widget("napari-ois", "Annotate objects")
    assert isinstance(widget, AnnotateObjectsWidget)
    assert widget.session.segmenter.name  # the default backend was built


def test_demo_opens_the_sample_with_its_clicks(make_napari_viewer):
    from napari_ois._widgets.launch import open_demo

    from napari_ois._sample_data import sample_path

    clicks = read_prompts(sample_path("video_prompts.csv"))
    viewer = make_napari_viewer()
    _, widget = open_demo("video", viewer=viewer)
    assert len(widget.points_layer.data) == len(widget.session.prompts) == len(clicks)
    objects = sorted({c.object_id for c in clicks})
    assert widget.session.objects() == objects
    frames = sorted({c.frame for c in clicks})
    assert set(np.unique(widget.labels_layer.data[frames])) <= {0, *objects}
    assert widget.labels_layer.data[frames].any()
    assert viewer.dims.axis_labels == ("t", "y", "x")
    assert widget.labels_layer.axis_labels == widget.points_layer.axis_labels == ("t", "y", "x")


@pytest.mark.parametrize("key, expected", [("video", ("t", "y", "x")), ("cells", ("t", "y", "x")),
                                           ("nuclei3d", ("z", "y", "x"))])
def test_open_sample_names_the_axes(make_napari_viewer, key, expected):
    """File > Open Sample: the slider reads t or z, not napari's default -3."""
    viewer = make_napari_viewer()
    viewer.open_sample("napari-ois", key)
    assert viewer.dims.axis_labels == expected
    widget = AnnotateObjectsWidget(viewer, segmenter_factory=lambda b, d: BrightComponentSegmenter())
    viewer.window.add_dock_widget(widget)
    # The layers the widget adds keep the names (and the viewer's).
    assert widget.labels_layer.axis_labels == widget.points_layer.axis_labels == expected
    assert viewer.dims.axis_labels == expected


def test_removing_the_widget_mid_run_stops_cleanly(annotate, qtbot):
    segmenter = GatedSegmenter()
    viewer, widget, truth = annotate(segmenter)
    click(widget, 0, 8, 4)
    keymap_with_widget = dict(viewer.keymap)
    applied = []
    widget.propagate("forward").yielded.connect(lambda r: applied.append(r.frame))
    segmenter.gate.release(2)
    qtbot.waitUntil(lambda: len(applied) >= 2, timeout=TIMEOUT_MS)
    viewer.window.remove_dock_widget(widget)
    segmenter.gate.release(100)
    qtbot.waitUntil(lambda: widget.worker is None, timeout=TIMEOUT_MS)
    assert dict(viewer.keymap) != keymap_with_widget
    assert coerce_keybinding("Shift-S") not in viewer.keymap
    labels = widget.labels_layer.data
    assert all(np.array_equal(labels[t] == 1, truth[t] == 1) or not labels[t].any() for t in range(10))
    assert not labels[-1].any()  # it did stop
    widget.close()
    widget.deleteLater()


def test_ois_backend_with_a_chosen_checkpoint(make_napari_viewer, squares, tmp_path):
    video, truth = squares
    path = make_random_checkpoint(tmp_path / "random.pt", preset="test")
    viewer = make_napari_viewer()
    viewer.add_image(video, name="squares")
    widget = AnnotateObjectsWidget(viewer)  # the real factory: get_segmenter(backend, device, checkpoint)
    viewer.window.add_dock_widget(widget)
    assert widget.backend_combo.currentText() == "ois"  # the default backend
    assert widget.checkpoint_row.isEnabled()
    assert widget.checkpoint_edit.placeholderText() == "packaged default"
    widget.backend_combo.setCurrentText("classical")
    assert not widget.checkpoint_row.isEnabled()  # classical reads no checkpoint
    widget.device_combo.setCurrentText("cpu")
    widget.backend_combo.setCurrentText("ois")
    assert widget.checkpoint_row.isEnabled()
    widget.set_checkpoint(str(path))
    assert widget.checkpoint_edit.text() == str(path)
    click(widget, 0, 8, 4)
    assert isinstance(widget.session.segmenter, OISSegmenter)
    assert widget.status.text().startswith("Object 1, frame 0")  # the click ran, no error
    # A random model's mask is arbitrary: only the layer's geometry is checked.
    assert widget.labels_layer.data.shape == truth.shape
    files = widget.save(tmp_path / "out.tif")
    settings = json.loads(next(p for p in files if p.suffix == ".json").read_text())
    assert settings["backend"] == "ois" and settings["checkpoint"] == str(path)


def test_unreadable_checkpoint_notifies_and_keeps_labels(make_napari_viewer, squares, tmp_path, notifications):
    video, truth = squares
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint at all")
    fake = BrightComponentSegmenter()
    seen = []

    def factory(backend, device, checkpoint=None):
        seen.append((backend, checkpoint))
        return fake if backend == "classical" else get_segmenter(backend, device, checkpoint)

    viewer = make_napari_viewer()
    viewer.add_image(video, name="squares")
    widget = AnnotateObjectsWidget(viewer, segmenter_factory=factory)
    viewer.window.add_dock_widget(widget)
    widget.backend_combo.setCurrentText("classical")
    click(widget, 0, 8, 4)
    before = widget.labels_layer.data.copy()
    assert np.array_equal(before[0] == 1, truth[0] == 1)
    widget.backend_combo.setCurrentText("ois")
    widget.set_checkpoint(str(garbage))
    assert seen[-1] == ("ois", str(garbage))  # a checkpoint-aware factory gets the path
    assert any("garbage.pt" in str(n.message) for n in notifications)
    assert "garbage.pt" in widget.status.text()
    assert np.array_equal(widget.labels_layer.data, before)
    # Clicking while the backend cannot load reports again and changes nothing.
    click(widget, 1, 8, 6)
    assert "garbage.pt" in widget.status.text()
    assert np.array_equal(widget.labels_layer.data, before)
    # Back to a working backend: the labels are still there and clicks work again.
    widget.backend_combo.setCurrentText("classical")
    click(widget, 1, 8, 6)
    assert np.array_equal(widget.labels_layer.data[0], before[0]) and widget.labels_layer.data[1].any()


class _SlowEncoder(BrightComponentSegmenter):
    """The bright-component double whose encode takes ``delay`` seconds (a big model on a CPU)."""

    def __init__(self, delay: float):
        super().__init__()
        self.delay, self.encoded = delay, threading.Event()
        self.encode_threads = []

    def encode(self, image):
        self.encode_threads.append(threading.current_thread())
        time.sleep(self.delay)
        embedding = super().encode(image)
        self.encoded.set()
        return embedding


def _slow_widget(make_napari_viewer, delay: float):
    """(widget, slow segmenter, truth) on the moving squares."""
    video, truth = moving_squares()
    viewer = make_napari_viewer()
    viewer.add_image(video, name="squares")
    segmenter = _SlowEncoder(delay)
    widget = AnnotateObjectsWidget(viewer, segmenter_factory=lambda backend, device: segmenter)
    viewer.window.add_dock_widget(widget, name="Annotate objects")
    return widget, segmenter, truth


def test_a_click_on_an_unencoded_frame_returns_at_once_and_its_mask_comes_later(make_napari_viewer, qtbot):
    widget, segmenter, truth = _slow_widget(make_napari_viewer, delay=1.5)
    widget.points_layer.add(np.array([3, 8, 9], dtype=float))  # positive on object 1's square
    widget.negative_check.setChecked(True)
    widget.points_layer.add(np.array([3, 8, 9], dtype=float))  # then a negative one on it
    # Control is back in the event loop while the frame is still being encoded.
    assert not segmenter.encoded.is_set()
    assert widget.clicks_pending == 2 and "Encoding frame 3" in widget.status.text()
    assert not widget.labels_layer.data.any()
    qtbot.waitUntil(lambda: widget.clicks_pending == 0, timeout=TIMEOUT_MS)
    assert segmenter.encode_threads and all(t is not threading.main_thread() for t in segmenter.encode_threads)
    # Applied in the order clicked: positive then negative leaves nothing (the other order, the square).
    assert [c.positive for c in widget.session.prompts.clicks(1, 3)] == [True, False]
    assert not widget.labels_layer.data.any()
    widget.negative_check.setChecked(False)
    widget.points_layer.add(np.array([3, 28, 2 + 2 * 3 + 8], dtype=float))  # frame 3 is cached now: at once
    assert widget.clicks_pending == 0 and (widget.labels_layer.data[3] == 1).sum() == (truth[3] == 2).sum()


def test_the_frame_under_a_resting_slider_is_encoded_in_the_background(make_napari_viewer, qtbot):
    widget, segmenter, _ = _slow_widget(make_napari_viewer, delay=0.2)
    widget.viewer.dims.set_current_step(0, 6)
    qtbot.waitUntil(lambda: widget.session.cache.is_ready(6), timeout=TIMEOUT_MS)
    assert all(t is not threading.main_thread() for t in segmenter.encode_threads)
    before = segmenter.encode_calls
    widget.points_layer.add(np.array([6, 8, 2 + 2 * 6 + 3], dtype=float))
    assert widget.clicks_pending == 0 and widget.labels_layer.data[6].any()  # applied at once
    assert segmenter.encode_calls == before
