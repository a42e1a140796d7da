"""The widget's "All objects in one pass" propagation in a real napari viewer (run under Xvfb)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import BrightComponentSegmenter, moving_squares

from napari_ois._widgets import AnnotateObjectsWidget

pytestmark = pytest.mark.gui

TIMEOUT_MS = 10_000


def test_all_objects_checkbox_propagates_every_object_as_one_undo_step(make_napari_viewer, qtbot):
    video, truth = moving_squares()
    viewer = make_napari_viewer()
    viewer.add_image(video, name="squares")
    segmenter = BrightComponentSegmenter()
    widget = AnnotateObjectsWidget(viewer, segmenter_factory=lambda backend, device: segmenter)
    viewer.window.add_dock_widget(widget, name="Annotate objects")
    session = widget.session
    session.set_keyframe_mask(1, 4, truth[4] == 1)
    session.set_keyframe_mask(2, 4, truth[4] == 2)
    encodes_before = segmenter.encode_calls
    widget.all_objects_check.setChecked(True)
    with qtbot.waitSignal(widget.propagation_finished, timeout=TIMEOUT_MS):
        widget.both_button.click()
    labels = widget.labels_layer.data
    assert np.array_equal(labels, truth)
    assert segmenter.encode_calls - encodes_before <= 10  # one pass: each frame once at most
    assert widget.progress.value() == 18  # 9 frames x 2 objects
    assert "2 object(s)" in widget.status.text()
    widget.undo_button.click()  # the whole two-object run is one step
    assert labels[[0, 1, 2, 3, 5, 6, 7, 8, 9]].max() == 0
    assert np.array_equal(labels[4], truth[4])
    assert "objects 1, 2" in widget.status.text()
