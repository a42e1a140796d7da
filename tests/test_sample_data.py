"""The shipped sample data: files, shapes, ground truth, prompts and npe2 sample functions."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

tifffile = pytest.importorskip("tifffile")
pytest.importorskip("imageio_ffmpeg")

from napari_ois import _sample_data as sd  # noqa: E402
from napari_ois.core.clicks import read_prompts  # noqa: E402

FILES = [
    "video.mp4",
    "video_labels.tif",
    "video_prompts.csv",
    "cells.tif",
    "cells_labels.tif",
    "cells_prompts.csv",
    "nuclei3d.tif",
    "nuclei3d_labels.tif",
    "nuclei3d_prompts.csv",
    "README.md",
]


@pytest.fixture(scope="module")
def video_layer():
    return sd.make_sample_video()


@pytest.fixture(scope="module")
def video_labels():
    return tifffile.imread(sd.sample_path("video_labels.tif"))


@pytest.fixture(scope="module")
def cells_labels():
    return tifffile.imread(sd.sample_path("cells_labels.tif"))


def _assert_layer_data(layers, name, ndim, dtype):
    assert isinstance(layers, list) and len(layers) == 1
    data, meta, layer_type = layers[0]
    assert layer_type == "image"
    assert isinstance(meta, dict) and meta["name"] == name
    assert isinstance(data, np.ndarray) and data.ndim == ndim and data.dtype == dtype
    return data, meta


def test_files_exist_and_are_small():
    directory = sd.sample_data_dir()
    sizes = {name: (directory / name).stat().st_size for name in FILES}
    assert all(size > 0 for size in sizes.values()), sizes
    # The samples ship in the wheel: keep them small.
    assert sum(sizes.values()) < 3 * 1024**2, sizes


def test_sample_path_missing_file_is_helpful():
    with pytest.raises(FileNotFoundError, match="video.mp4"):
        sd.sample_path("no_such_sample.tif")


def test_video_layer_and_labels(video_layer, video_labels):
    frames, meta = _assert_layer_data(video_layer, "sample video", 4, np.uint8)
    assert meta["rgb"] is True
    assert frames.shape == (48, 240, 320, 3)
    assert video_labels.shape == frames.shape[:3] and video_labels.dtype == np.uint16
    assert set(np.unique(video_labels)) == {0, 1, 2, 3, 4}
    for obj in (1, 2, 3, 4):
        present = (video_labels == obj).any(axis=(1, 2))
        assert present.mean() >= 0.9, f"object {obj} is missing on too many frames"


def test_video_ids_are_consistent(video_layer, video_labels):
    """An id keeps its look over time: its mean colour must not jump (no id swaps)."""
    frames = video_layer[0][0].astype(float)
    for obj in (1, 2, 3, 4):
        means = np.array([frames[t][video_labels[t] == obj].mean(axis=0) for t in range(len(frames))])
        assert np.abs(means - means[0]).max() < 30, f"object {obj} changes colour: ids swapped?"
    # The occlusion: the striped ellipse (2) loses part of its area behind the arrow (3)
    # but never disappears.
    area2 = (video_labels == 2).sum(axis=(1, 2))
    assert area2.min() < 0.8 * area2.max() and area2.min() > 0.3 * area2.max()


def test_cells_layer_and_labels(cells_labels):
    image, _ = _assert_layer_data(sd.make_sample_cells(), "sample cells", 3, np.uint16)
    assert image.shape == (20, 256, 256) == cells_labels.shape
    assert cells_labels.dtype == np.uint16
    assert 50 < image.min() and image.max() < 8000
    ids = np.unique(cells_labels)[1:]
    assert len(ids) >= 10
    for obj in ids:
        mask = cells_labels == obj
        assert mask.any(axis=(1, 2)).all(), f"cell {obj} missing on some frame"
        # Slow motion: a centroid moving more than a few pixels per frame means an id swap.
        cents = np.array([np.argwhere(m).mean(axis=0) for m in mask])
        assert np.linalg.norm(np.diff(cents, axis=0), axis=1).max() < 4
    # Nuclei are brighter than their surroundings (the sample is meaningful to segment).
    assert image[cells_labels > 0].mean() > 3 * image[cells_labels == 0].mean()


def test_nuclei3d_layer_and_labels():
    image, _ = _assert_layer_data(sd.make_sample_nuclei3d(), "sample nuclei 3D", 3, np.uint16)
    labels = tifffile.imread(sd.sample_path("nuclei3d_labels.tif"))
    assert image.shape == labels.shape == (24, 128, 128)
    assert len(np.unique(labels)) - 1 >= 5


@pytest.mark.parametrize(
    "prompts, labels_name",
    [
        ("video_prompts.csv", "video_labels.tif"),
        ("cells_prompts.csv", "cells_labels.tif"),
        ("nuclei3d_prompts.csv", "nuclei3d_labels.tif"),
    ],
)
def test_prompts_lie_on_their_objects(prompts, labels_name):
    clicks = read_prompts(sd.sample_path(prompts))
    labels = tifffile.imread(sd.sample_path(labels_name))
    assert len({c.object_id for c in clicks}) >= 2
    assert any(c.positive for c in clicks)
    for c in clicks:
        assert 0 <= c.frame < labels.shape[0]
        assert c.inside(*labels.shape[1:])
        value = labels[c.frame, int(round(c.y)), int(round(c.x))]
        if c.positive:
            assert value == c.object_id, c
        else:
            assert value != c.object_id, c
    if prompts == "video_prompts.csv":
        assert {c.object_id for c in clicks} == {1, 2, 3}


def test_layers_name_their_axes(video_layer):
    """napari labels the sliders from ``axis_labels`` (t or z instead of its default -3)."""
    for layers, expected in (
        (video_layer, ("t", "y", "x")),
        (sd.make_sample_cells(), ("t", "y", "x")),
        (sd.make_sample_nuclei3d(), ("z", "y", "x")),
    ):
        data, meta, _ = layers[0]
        assert tuple(meta["axis_labels"]) == expected
        # One name per layer axis: an RGB layer's channel axis is not a layer axis.
        assert len(expected) == data.ndim - (1 if meta.get("rgb") else 0)


def test_module_does_not_import_napari():
    code = "import sys, napari_ois._sample_data; assert 'napari' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
