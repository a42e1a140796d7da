"""The objects layer on a zarr array on disk, and the embedding disk cache, in the widget.

A real napari viewer under Xvfb; ``labels_on_disk_mb=0`` forces the on-disk labels on
the small test stacks (the threshold itself is checked on shapes). Every assertion on
the labels reads the zarr from disk again, not through the layer.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import tifffile
import zarr
from conftest import add_point, moving_squares, open_in_napari
from napari.utils._proxies import ReadOnlyWrapper
from napari.utils.interactions import mouse_move_callbacks, mouse_press_callbacks, mouse_release_callbacks

from napari_ois.core.io.scratch_labels import FOLDER_KEY, ScratchLabels, goes_on_disk
from napari_ois.core.autosave import read_autosave
from napari_ois.core.embedding_store import DiskEmbeddingStore

pytestmark = pytest.mark.gui

TIMEOUT_MS = 10_000


def on_disk(layer) -> np.ndarray:
    """The layer's labels as stored on disk (opened afresh from its folder)."""
    folder = Path(layer.metadata[FOLDER_KEY])
    return zarr.open_array(str(folder / "labels.zarr"), mode="r")[...]


def propagate(qtbot, widget, direction="forward"):
    with qtbot.waitSignal(widget.propagation_finished, timeout=TIMEOUT_MS):
        widget.propagate(direction)


@dataclass
class MouseEvent:
    """The fields of a vispy mouse event that napari's Labels brush reads."""

    type: str
    position: tuple
    is_dragging: bool = False
    button: int = 1
    modifiers: list = field(default_factory=list)
    pos: np.ndarray = field(default_factory=lambda: np.zeros(2))
    view_direction: list | None = None
    up_direction: list | None = None
    dims_displayed: list = field(default_factory=lambda: [1, 2])


def brush_stroke(layer, frame, points):
    """Press, drag through ``points`` (y, x) and release with napari's paint brush on ``frame``."""
    kinds = [("mouse_press", mouse_press_callbacks)] + [("mouse_move", mouse_move_callbacks)] * (len(points) - 1)
    kinds.append(("mouse_release", mouse_release_callbacks))
    for i, (kind, callbacks) in enumerate(kinds):
        y, x = points[min(i, len(points) - 1)]
        event = MouseEvent(kind, (float(frame), float(y), float(x)), is_dragging=kind == "mouse_move")
        callbacks(layer, ReadOnlyWrapper(event, exceptions=("handled",)))


def journal_ops(folder):
    return [json.loads(line)["op"] for line in (folder / "journal.jsonl").read_text().splitlines()]


def test_threshold_decides_by_the_size_of_uint32_labels():
    long_video = (1000, 480, 854)  # 1.6 GB of uint32 labels
    assert goes_on_disk(long_video, 512) and not goes_on_disk(long_video, 2048)
    assert goes_on_disk((10, 40, 40), 0) and not goes_on_disk((10, 40, 40), 512)
    assert not goes_on_disk(long_video, None)
    scratch = ScratchLabels((3, 4, 40, 50))  # (T, Z, Y, X): one chunk per (Y, X) plane
    assert scratch.array.chunks == (1, 1, 40, 50) and scratch.array.dtype == np.uint32
    assert scratch.array.compressors  # compressed
    scratch.close()
    assert not scratch.folder.exists()


def test_small_labels_stay_in_memory_by_default(make_napari_viewer, squares):
    viewer, widget = open_in_napari(make_napari_viewer, data=squares[0])
    assert isinstance(widget.labels_layer.data, np.ndarray)
    assert FOLDER_KEY not in widget.labels_layer.metadata
    assert widget.labels_disk_spin.value() == 512 and "in memory" in widget.labels_storage_label.text()


def test_propagation_and_undo_write_the_labels_on_disk(make_napari_viewer, qtbot, squares):
    video, truth = squares
    viewer, widget = open_in_napari(make_napari_viewer, data=video, labels_on_disk_mb=0)
    layer = widget.labels_layer
    assert isinstance(layer.data, zarr.Array)
    folder = Path(layer.metadata[FOLDER_KEY])
    assert (folder / "labels.zarr" / "zarr.json").is_file()
    assert "on disk" in widget.labels_storage_label.text()

    viewer.dims.set_point(0, 4)  # frame 4 is on screen while the run writes it
    add_point(widget, np.array([0, 8, 5], dtype=float))  # object 1, frame 0
    assert np.array_equal(on_disk(layer)[0] == 1, truth[0] == 1)
    propagate(qtbot, widget)
    assert np.array_equal(on_disk(layer) == 1, truth == 1)
    # napari shows the written frame: its displayed slice was read again from the zarr.
    assert np.array_equal(np.asarray(layer._slice.image.raw) == 1, truth[4] == 1)

    widget.undo()  # the whole run
    labels = on_disk(layer)
    assert np.array_equal(labels[0] == 1, truth[0] == 1) and not (labels[1:] == 1).any()
    widget.redo()
    assert np.array_equal(on_disk(layer) == 1, truth == 1)

    # The folder goes with the layer.
    viewer.layers.remove(layer)
    assert not folder.exists() and widget.labels_layer is None


def test_disk_labels_paint_autosave_restore_and_start_fresh(make_napari_viewer, qtbot, tmp_path, notifications):
    video, truth = moving_squares()
    path = tmp_path / "squares.tif"
    tifffile.imwrite(path, video)
    autosave = tmp_path / "squares.tif.ois"
    viewer, widget = open_in_napari(make_napari_viewer, path, labels_on_disk_mb=0)
    assert isinstance(widget.labels_layer.data, zarr.Array) and widget.autosave.folder == autosave

    add_point(widget, np.array([0, 8, 5], dtype=float))
    propagate(qtbot, widget)
    # napari's brush (a mouse stroke in paint mode) on the zarr-backed layer: on disk and journalled.
    layer = widget.labels_layer
    viewer.dims.set_point(0, 6)
    viewer.layers.selection.active = layer
    layer.mode = "paint"
    layer.brush_size = 3
    layer.selected_label = 7
    brush_stroke(layer, 6, [(36, 30), (36, 33), (36, 36)])
    qtbot.waitUntil(lambda: "paint" in journal_ops(autosave), timeout=TIMEOUT_MS)
    expected = on_disk(widget.labels_layer)
    assert (expected[6, 35:38, 30:37] == 7).all() and (expected == 7).sum() <= 3 * 9
    assert np.array_equal(expected == 1, truth == 1)
    assert np.array_equal(read_autosave(autosave).read_labels(), expected)
    widget.new_object()  # the on-disk labels are not scanned: the brush's id is remembered
    assert widget.object_spin.value() == 8

    # Reopened in a new viewer (as after a crash): the restore goes into a zarr-backed layer.
    viewer2, widget2 = open_in_napari(make_napari_viewer, path, labels_on_disk_mb=0)
    assert isinstance(widget2.labels_layer.data, zarr.Array)
    assert widget2.labels_layer.metadata[FOLDER_KEY] != widget.labels_layer.metadata[FOLDER_KEY]
    assert np.array_equal(on_disk(widget2.labels_layer), expected)
    assert widget2.session.keyframes == {1: {0}, 7: {6}}  # the stroke made a keyframe of id 7
    assert any("Restored the autosave" in str(n.message) for n in notifications)
    widget2.undo()  # that keyframe (its pixels stay: the stroke is napari's own edit)
    assert widget2.session.keyframes == {1: {0}}
    widget2.undo()  # the restored run, not the manual edit
    labels = on_disk(widget2.labels_layer)
    assert not (labels[1:] == 1).any() and (labels[6] == 7).any()

    layer2 = widget2.labels_layer
    widget2.start_fresh()
    assert widget2.labels_layer is layer2  # the rebuild reuses the on-disk layer
    assert [x.name for x in viewer2.layers].count("objects") == 1
    assert not on_disk(layer2).any()
    assert (tmp_path / "squares.tif.ois.previous" / "journal.jsonl").is_file()
    assert journal_ops(autosave) == ["open", "session"]


def test_export_of_disk_labels_matches_the_numpy_path(make_napari_viewer, qtbot, tmp_path, squares):
    video, truth = squares
    exported = {}
    for name, threshold in (("memory", None), ("disk", 0)):
        viewer, widget = open_in_napari(make_napari_viewer, data=video, labels_on_disk_mb=threshold)
        assert isinstance(widget.labels_layer.data, zarr.Array) == (name == "disk")
        add_point(widget, np.array([0, 8, 5], dtype=float))  # object 1
        widget.object_spin.setValue(2)
        add_point(widget, np.array([0, 28, 8], dtype=float))  # object 2
        widget.all_objects_check.setChecked(True)
        propagate(qtbot, widget)
        files = widget.save(tmp_path / f"{name}.tif")
        widget.save(tmp_path / f"{name}.zarr")
        exported[name] = (tifffile.imread(files[0]), zarr.open_array(str(tmp_path / f"{name}.zarr"))[...])
    assert np.array_equal(exported["disk"][0], truth)
    assert np.array_equal(exported["disk"][0], exported["memory"][0])
    assert np.array_equal(exported["disk"][1], exported["memory"][1])
    assert np.array_equal(exported["disk"][0], exported["disk"][1])


def test_disk_cache_checkbox_gives_the_session_a_disk_tier(make_napari_viewer, qtbot, tmp_path):
    video, truth = moving_squares()
    path = tmp_path / "squares.tif"
    tifffile.imwrite(path, video)
    autosave = tmp_path / "squares.tif.ois"
    viewer, widget = open_in_napari(make_napari_viewer, path)
    session = widget.session
    assert session.cache.disk is None and session.config.disk_cache_dir is None

    widget.disk_cache_spin.setValue(64)
    widget.disk_cache_check.setChecked(True)
    disk = session.cache.disk
    assert isinstance(disk, DiskEmbeddingStore) and disk.max_bytes == 64 * 2**20
    assert disk.folder.parent == autosave  # on the data's disk, next to the autosave
    # With a memory budget of one frame, propagation pushes frames to disk and reads them back.
    session.cache.max_bytes = 1
    add_point(widget, np.array([0, 8, 5], dtype=float))
    propagate(qtbot, widget, "forward")
    propagate(qtbot, widget, "forward")  # the same frames again: read back, not re-encoded
    assert disk.writes > 0 and disk.reads > 0

    # Start fresh sets the autosave aside without the embedding files; new sessions get a tier.
    widget.start_fresh()
    assert not disk.folder.exists()
    assert not list((tmp_path / "squares.tif.ois.previous").glob("napari-ois-embeddings-*"))
    fresh = widget.session
    assert isinstance(fresh.cache.disk, DiskEmbeddingStore) and fresh.cache.disk.folder.parent == autosave
    assert fresh.config.disk_cache_dir == str(autosave) and fresh.config.disk_cache_mb == 64

    widget.disk_cache_check.setChecked(False)
    assert fresh.cache.disk is None and not list(autosave.glob("napari-ois-embeddings-*"))


def test_disk_cache_without_autosave_uses_a_temporary_folder(make_napari_viewer, squares):
    viewer, widget = open_in_napari(make_napari_viewer, data=squares[0])
    assert widget.autosave is None
    widget.disk_cache_check.setChecked(True)
    disk = widget.session.cache.disk
    assert isinstance(disk, DiskEmbeddingStore) and disk.folder.is_dir()
    import tempfile

    assert disk.folder.parent == Path(tempfile.gettempdir())


def test_a_fast_run_over_a_long_stack_does_not_nest_frame_handlers(make_napari_viewer, qtbot):
    # napari's progress bar processes Qt events on every update; frames that queue up
    # while one is applied used to be handled inside that update, one level deeper each
    # (RecursionError on long videos with a fast backend).
    video, truth = moving_squares(n_frames=600, size=40, step=0)
    viewer, widget = open_in_napari(make_napari_viewer, data=video, labels_on_disk_mb=0)
    add_point(widget, np.array([0, 8, 5], dtype=float))
    with qtbot.waitSignal(widget.propagation_finished, timeout=60_000):
        widget.propagate("forward")
    assert np.array_equal(on_disk(widget.labels_layer) == 1, truth == 1)
    assert "Propagated object 1: 599 frame(s) updated" in widget.status.text()


def test_four_d_stacks_write_one_plane_of_the_disk_labels(make_napari_viewer, qtbot, squares):
    video, truth = squares
    tzyx = np.stack([video[:4]] * 3)  # (T=3, Z=4, Y, X): Z holds the moving squares
    viewer, widget = open_in_napari(make_napari_viewer, data=tzyx, labels_on_disk_mb=0)
    assert widget.labels_layer.data.chunks == (1, 1, 40, 40)
    viewer.dims.set_point(1, 2)  # hold Z = 2, walk T
    add_point(widget, np.array([1, 2, 8, 9], dtype=float))
    propagate(qtbot, widget, "forward")
    labels = on_disk(widget.labels_layer)
    assert np.array_equal(labels[1, 2] == 1, truth[2] == 1) and np.array_equal(labels[2, 2] == 1, truth[2] == 1)
    assert not labels[0].any() and not labels[:, [0, 1, 3]].any()
