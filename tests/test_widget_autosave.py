"""Autosave in the "Annotate objects" widget (real napari viewer under Xvfb).

An image opened from a file is autosaved next to it; opening it again (in a new viewer,
as after a crash) restores labels, clicks and manual edits with a notification, and
*Start fresh* sets the autosave aside. The kill test SIGKILLs a napari process in the
middle of a propagation and reopens the image.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile
from conftest import BrightComponentSegmenter, add_point, moving_squares, open_in_napari

from napari_ois.core.autosave import read_autosave, replay_autosave

pytestmark = pytest.mark.gui

TIMEOUT_MS = 10_000


def journal_ops(folder):
    lines = (folder / "journal.jsonl").read_text().splitlines()
    return [json.loads(line)["op"] for line in lines]


def test_reopening_the_image_restores_labels_clicks_and_edits(make_napari_viewer, qtbot, tmp_path, notifications):
    video, truth = moving_squares()
    path = tmp_path / "squares.tif"
    tifffile.imwrite(path, video)
    folder = tmp_path / "squares.tif.ois"
    viewer, widget = open_in_napari(make_napari_viewer, path)
    assert widget.autosave is not None and widget.autosave.folder == folder
    assert widget.autosave_label.text().endswith("squares.tif.ois") and widget.fresh_button.isEnabled()

    add_point(widget, np.array([0, 8, 5], dtype=float))  # a click on object 1, frame 0
    with qtbot.waitSignal(widget.propagation_finished, timeout=TIMEOUT_MS):
        widget.forward_button.click()
    assert np.array_equal(widget.labels_layer.data == 1, truth == 1)
    # Every propagated frame is on disk as it streamed in.
    assert journal_ops(folder).count("frame") == 9
    assert np.array_equal(read_autosave(folder).read_labels(), widget.labels_layer.data)
    # A manual edit in the objects layer (napari's brush) is autosaved too.
    widget.labels_layer.brush_size = 3
    widget.labels_layer.paint((6, 36, 36), 7)
    qtbot.waitUntil(lambda: "paint" in journal_ops(folder), timeout=TIMEOUT_MS)
    expected = widget.labels_layer.data.copy()
    assert (expected[6] == 7).any()
    clicks = list(widget.session.prompts)
    # What the widget journaled replays headlessly to the same labels.
    replayed = replay_autosave(folder, segmenter_factory=lambda config: BrightComponentSegmenter())
    assert replayed.identical and replayed.iou == {1: 1.0, 7: 1.0}

    # The process dies here (nothing is closed); the image is opened again in a new viewer.
    viewer2, widget2 = open_in_napari(make_napari_viewer, path)
    assert np.array_equal(widget2.labels_layer.data, expected)
    assert list(widget2.session.prompts) == clicks
    assert widget2.points_layer.features["frame"].tolist() == [0]
    # The brush stroke made frame 6 a keyframe of the painted id 7 (labels as prompts, issue #21).
    assert widget2.session.keyframes == {1: {0}, 7: {6}}
    assert any("Restored the autosave" in str(n.message) and "1 click(s)" in str(n.message) for n in notifications)
    # The restored history: the first undo takes back that keyframe (the painted pixels stay:
    # the stroke is napari's own edit), the second the whole propagation run.
    widget2.undo()
    assert widget2.session.keyframes == {1: {0}} and (widget2.labels_layer.data[6] == 7).any()
    widget2.undo()
    labels = widget2.labels_layer.data
    assert np.array_equal(labels[0] == 1, truth[0] == 1) and not (labels[1:] == 1).any()
    assert (labels[6] == 7).any()
    assert journal_ops(folder)[-1] == "undo"

    widget2.start_fresh()
    assert not widget2.labels_layer.data.any() and len(widget2.points_layer.data) == 0
    assert (tmp_path / "squares.tif.ois.previous" / "journal.jsonl").is_file()
    assert journal_ops(folder) == ["open", "session"]
    assert "Started fresh" in widget2.status.text()


def test_a_damaged_autosave_is_set_aside_and_the_image_still_opens(make_napari_viewer, tmp_path, notifications):
    video, _ = moving_squares()
    path = tmp_path / "squares.tif"
    tifffile.imwrite(path, video)
    folder = tmp_path / "squares.tif.ois"
    folder.mkdir()
    (folder / "journal.jsonl").write_text("this is not a journal\n")
    viewer, widget = open_in_napari(make_napari_viewer, path)
    assert widget.session is not None and widget.autosave is not None
    assert journal_ops(folder) == ["open", "session"]
    assert (tmp_path / "squares.tif.ois.previous" / "journal.jsonl").read_text() == "this is not a journal\n"
    assert any("could not be restored" in str(n.message) for n in notifications)


def test_data_without_a_path_autosaves_into_a_chosen_folder(make_napari_viewer, qtbot, tmp_path):
    video, truth = moving_squares()
    viewer, widget = open_in_napari(make_napari_viewer, data=video)
    assert widget.autosave is None and "no file" in widget.autosave_label.text()
    folder = tmp_path / "mine.ois"
    widget.set_autosave_folder(folder)
    assert widget.autosave is not None and widget.autosave.folder == folder
    add_point(widget, np.array([3, 8, 2 + 2 * 3 + 3], dtype=float))
    assert journal_ops(folder)[-1] == "action"
    assert np.array_equal(read_autosave(folder).read_labels() == 1, widget.labels_layer.data == 1)
    # Turning autosave off stops writing; on again starts a new autosave from the current labels.
    widget.autosave_check.setChecked(False)
    assert widget.autosave is None and widget.autosave_label.text() == "off"
    widget.autosave_check.setChecked(True)
    assert widget.autosave is not None and read_autosave(folder).header["baseline"] is True


CHILD = """
import sys, time
sys.path.insert(0, sys.argv[2])
import napari
from qtpy.QtWidgets import QApplication
from conftest import BrightComponentSegmenter, add_point
from napari_ois._widgets import AnnotateObjectsWidget
import numpy as np

class Slow(BrightComponentSegmenter):
    def predict(self, embedding, clicks, prev_prob=None, reference=None):
        if reference is not None:
            time.sleep(0.1)
        return super().predict(embedding, clicks, prev_prob, reference)

viewer = napari.Viewer(show=False)
viewer.open(sys.argv[1])
segmenter = Slow()
widget = AnnotateObjectsWidget(viewer, segmenter_factory=lambda backend, device: segmenter)
viewer.window.add_dock_widget(widget)
add_point(widget, np.array([0, 8, 5], dtype=float))  # waits for the frame's encode
# Connected after the widget's own handler: printed once the frame is applied and autosaved.
widget.propagate("forward").yielded.connect(lambda r: print("done", r.frame, flush=True))
app = QApplication.instance()
while True:
    app.processEvents()
    time.sleep(0.005)
"""


def test_killing_napari_mid_propagation_loses_no_completed_frame(make_napari_viewer, tmp_path):
    video, truth = moving_squares(n_frames=30, size=80)
    path = tmp_path / "squares.tif"
    tifffile.imwrite(path, video)
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    child = subprocess.Popen([sys.executable, str(script), str(path), str(Path(__file__).parent)],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                             env={**os.environ, "OMP_NUM_THREADS": "1"})
    reported = []
    for line in child.stdout:
        if line.startswith("done"):
            reported.append(int(line.split()[1]))
            if len(reported) == 6:
                os.kill(child.pid, signal.SIGKILL)
                break
    reported += [int(ln.split()[1]) for ln in child.stdout.read().splitlines() if ln.startswith("done")]
    child.wait()
    assert child.returncode == -signal.SIGKILL and len(reported) >= 6

    viewer, widget = open_in_napari(make_napari_viewer, path)
    labels = widget.labels_layer.data
    for frame in reported:  # every frame reported done is back, bit-exact
        assert np.array_equal(labels[frame] == 1, truth[frame] == 1), frame
    done = [f for f in range(30) if (labels[f] == 1).any()]
    for frame in done:  # and nothing is half-written
        assert np.array_equal(labels[frame] == 1, truth[frame] == 1), frame
    assert len(set(done) - set(reported) - {0}) <= 1
    assert widget.session.keyframes == {1: {0}}
