"""Shared fixtures: a deterministic fake segmenter and small synthetic stacks."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest
from scipy import ndimage

from napari_ois.core.segmenter import Prediction


@dataclass
class _GrayEmbedding:
    gray: np.ndarray

    @property
    def nbytes(self) -> int:
        return self.gray.nbytes


class BrightComponentSegmenter:
    """Test double with an obvious right answer: bright connected components.

    With clicks: the bright components under positive clicks, minus those under
    negative clicks. With a reference: the bright components touching the reference
    mask. With a box: the bright pixels inside it. Counts encode/predict calls so tests
    can check the caching contract.
    """

    name = "bright-components"

    def __init__(self):
        self.encode_calls = 0
        self.predict_calls = 0

    def encode(self, image):
        self.encode_calls += 1
        return _GrayEmbedding(image.mean(axis=-1))

    def predict(self, embedding, clicks, prev_prob=None, reference=None, box=None):
        self.predict_calls += 1
        labels, _ = ndimage.label(embedding.gray > 0.5)
        mask = np.zeros(labels.shape, bool)
        if box is not None and prev_prob is None:
            mask |= box.mask(labels.shape) & (labels > 0)
        if reference is not None:
            ids = np.unique(labels[reference.mask & (labels > 0)])
            mask |= np.isin(labels, ids[ids > 0])
        elif prev_prob is not None:
            mask |= prev_prob > 0.5
        for c in clicks:
            lab = labels[int(c.y), int(c.x)]
            region = labels == lab if lab else np.zeros_like(mask)
            if c.positive:
                mask |= region
            else:
                mask &= ~region
        return Prediction(mask.astype(np.float32), 1.0 if mask.any() else 0.0)


def moving_squares(n_frames: int = 10, size: int = 40, step: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """A (T, Y, X) uint8 video of two bright squares moving right, and its (T, Y, X) labels.

    Object 1 starts at column 2, object 2 at column 22 in rows 24..32; 8x8 squares.
    """
    video = np.zeros((n_frames, size, size), np.uint8)
    truth = np.zeros((n_frames, size, size), np.uint16)
    for t in range(n_frames):
        x = 2 + step * t
        video[t, 4:12, x : x + 8] = 255
        truth[t, 4:12, x : x + 8] = 1
        video[t, 24:32, x + 4 : x + 12] = 200
        truth[t, 24:32, x + 4 : x + 12] = 2
    return video, truth


@pytest.fixture
def fake_segmenter():
    return BrightComponentSegmenter()


@pytest.fixture
def squares():
    return moving_squares()


@pytest.fixture
def torch_one_thread():
    """One intra-op torch thread for tiny models: on 2 shared cores a second thread mostly waits."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def notifications():
    """The napari notifications shown while the test runs (napari imported only by GUI tests)."""
    from napari.utils.notifications import notification_manager

    received = []
    notification_manager.notification_ready.connect(received.append)
    yield received
    notification_manager.notification_ready.disconnect(received.append)


def open_in_napari(make_napari_viewer, path=None, data=None, **widget_kwargs):
    """A viewer with the image (from ``path``, so it has a source path, or from ``data``) and the widget.

    The widget runs :class:`BrightComponentSegmenter` whatever backend is chosen;
    ``widget_kwargs`` go to ``AnnotateObjectsWidget`` (e.g. ``labels_on_disk_mb=0``).
    """
    from napari_ois._widgets import AnnotateObjectsWidget  # GUI tests only: keeps Qt out of the others

    viewer = make_napari_viewer()
    if path is not None:
        viewer.open(str(path))
    else:
        viewer.add_image(data, name="squares")
    segmenter = BrightComponentSegmenter()
    widget = AnnotateObjectsWidget(viewer, segmenter_factory=lambda backend, device: segmenter, **widget_kwargs)
    viewer.window.add_dock_widget(widget, name="Annotate objects")
    return viewer, widget


def settle_clicks(widget, timeout: float = 20.0) -> None:
    """Process Qt events until the widget has applied every queued click (their frames are
    encoded by workers, see napari_ois._widgets._clicks)."""
    import time

    from qtpy.QtWidgets import QApplication

    deadline = time.monotonic() + timeout
    while widget.clicks_pending or widget._encode_worker is not None:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{widget.clicks_pending} click(s) still waiting for an encode")
        QApplication.processEvents()
        time.sleep(0.005)


def add_point(widget, coords) -> None:
    """napari's own add on the prompts layer (as a click delivers it), then wait for the mask."""
    widget.points_layer.add(coords)
    settle_clicks(widget)


@dataclass
class MouseEvent:
    """The fields of a vispy mouse event that napari's layer callbacks read (GUI tests)."""

    type: str
    position: tuple
    modifiers: list = field(default_factory=list)
    pos: np.ndarray = field(default_factory=lambda: np.zeros(2))
    is_dragging: bool = False
    view_direction: list | None = None
    up_direction: list | None = None
    dims_displayed: list = field(default_factory=lambda: [1, 2])
    handled: bool = False
