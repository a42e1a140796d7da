"""Readers, writers and sessions of napari_ois.core.io and the npe2 reader/writer contributions.

All data is generated in tmp_path: a 12-frame 64x48 video whose bright square moves 4 px
right per frame (so a frame's identity can be read off its pixels), small TIFFs, PNGs and
zarr arrays.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from napari_ois.core.clicks import Click
from napari_ois.core.config import AnnotationConfig
from napari_ois.core.errors import InputError
from napari_ois.core.io import (
    VideoReader,
    open_image_data,
    read_image_file,
    read_labels,
    read_session,
    session_paths,
    write_ctc,
    write_labels,
    write_session,
)

N_FRAMES, H, W = 12, 48, 64


def _frame(i: int) -> np.ndarray:
    """Frame ``i``: dark background, a bright 16x16 square whose left edge is at x = 4 i."""
    f = np.full((H, W, 3), 30, np.uint8)
    f[16:32, 4 * i : 4 * i + 16] = 230
    return f


def _square_x(frame: np.ndarray) -> int:
    """Left edge of the bright square, robust to codec noise."""
    cols = np.nonzero(frame[16:32, :, 1].mean(axis=0) > 130)[0]
    return int(cols[0])


def _write_video(path: Path) -> Path:
    import imageio_ffmpeg

    gen = imageio_ffmpeg.write_frames(str(path), (W, H), fps=10, macro_block_size=16,
                                      ffmpeg_log_level="error")
    gen.send(None)
    for i in range(N_FRAMES):
        gen.send(_frame(i))
    gen.close()
    return path


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    return _write_video(tmp_path_factory.mktemp("video") / "clip.mp4")


@pytest.fixture(scope="module")
def sequential(video) -> list[np.ndarray]:
    """Reference decode: every frame, in order, in one ffmpeg pass."""
    import imageio_ffmpeg

    gen = imageio_ffmpeg.read_frames(str(video))
    next(gen)
    return [np.frombuffer(b, np.uint8).reshape(H, W, 3).copy() for b in gen]


# ---------------------------------------------------------------------------- video


def test_video_opens_lazily_as_dask(video):
    import dask.array as da

    data, meta = open_image_data(video)
    assert isinstance(data, da.Array)
    assert data.shape == (N_FRAMES, H, W, 3) and data.dtype == np.uint8
    assert data.chunks[0] == (1,) * N_FRAMES  # one frame per chunk
    assert meta == {"kind": "video", "rgb": True, "fps": pytest.approx(10.0), "path": str(video)}
    assert _square_x(data[5].compute()) == 20


@pytest.mark.parametrize("seek", [True, False])
def test_video_random_access_gives_the_right_frames(video, sequential, seek):
    assert len(sequential) == N_FRAMES
    # max_skip=1 forces a restart (seek, or skip from 0) for every jump
    reader = VideoReader(video, max_skip=1, cache_frames=2, seek=seek)
    for i in (9, 2, 3, 11, 0, 7):
        frame = reader.read(i)
        assert _square_x(frame) == 4 * i
        assert np.abs(frame.astype(int) - sequential[i]).mean() < 2.0
    reader.close()
    assert _square_x(reader[4]) == 16  # reopens after close
    assert reader[2:5].shape == (3, H, W, 3)


def test_inexact_seeking_falls_back_to_skipping(video, monkeypatch):
    from napari_ois.core.io import video as video_module  # VideoReader looks the prober up there

    real_probe = video_module.probe_video

    def probe_with_wrong_times(path):  # a container whose timestamps mislead -ss by 3 frames
        probe = real_probe(path)
        probe.seek_times = probe.seek_times[3:] + [probe.seek_times[-1]] * 3
        return probe

    monkeypatch.setattr(video_module, "probe_video", probe_with_wrong_times)
    with pytest.warns(UserWarning, match="not frame-accurate"):
        reader = VideoReader(video, max_skip=1)
    assert [_square_x(reader.read(i)) for i in (9, 2, 3)] == [36, 8, 12]


def test_video_reader_pickles_and_reads_again(video):
    import pickle

    reader = pickle.loads(pickle.dumps(VideoReader(video)))
    assert _square_x(reader.read(6)) == 24


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_truncated_video_raises_input_error(tmp_path, suffix):
    full = _write_video(tmp_path / f"full{suffix}")
    cut = tmp_path / f"cut{suffix}"
    data = full.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="truncated|damaged"):
        open_image_data(cut)


def test_not_a_video_raises_input_error(tmp_path):
    fake = tmp_path / "notes.mp4"
    fake.write_text("this is not a video\n")
    with pytest.raises(InputError, match="cannot read video"):
        open_image_data(fake)


# ---------------------------------------------------------------------------- other inputs


def test_tiff_inputs_round_trip(tmp_path):
    import tifffile

    rng = np.random.default_rng(0)
    stack = rng.integers(0, 4000, (5, 20, 30), dtype=np.uint16)
    tifffile.imwrite(tmp_path / "s3.tif", stack)
    data, meta = open_image_data(tmp_path / "s3.tif")
    assert isinstance(data, np.memmap) and meta["kind"] == "tiff" and not meta["rgb"]
    np.testing.assert_array_equal(data, stack)

    hyper = rng.integers(0, 255, (2, 3, 20, 30), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "s4.tif", hyper, metadata={"axes": "TZYX"})
    np.testing.assert_array_equal(np.asarray(open_image_data(tmp_path / "s4.tif")[0]), hyper)

    tifffile.imwrite(tmp_path / "lzw.tif", stack, compression="lzw")
    data, _ = open_image_data(tmp_path / "lzw.tif")
    assert not isinstance(data, np.ndarray)  # compressed: decoded per chunk, lazily
    np.testing.assert_array_equal(np.asarray(data[3]), stack[3])

    rgb = rng.integers(0, 255, (4, 20, 30, 3), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "rgb.tif", rgb, photometric="rgb")
    data, meta = open_image_data(tmp_path / "rgb.tif")
    assert meta["rgb"] and data.shape == rgb.shape

    tifffile.imwrite(tmp_path / "one.tif", stack[0])
    assert open_image_data(tmp_path / "one.tif")[0].shape == (20, 30)


def test_folder_of_frames_is_lazy_and_naturally_sorted(tmp_path):
    import dask.array as da
    import imageio.v3 as iio

    folder = tmp_path / "frames"
    folder.mkdir()
    for i in (0, 1, 2, 10):  # natural order: 2 before 10
        iio.imwrite(folder / f"f{i}.png", np.full((8, 12, 3), i, np.uint8))
    (folder / "readme.txt").write_text("ignored")
    data, meta = open_image_data(folder)
    assert isinstance(data, da.Array) and data.shape == (4, 8, 12, 3)
    assert meta["kind"] == "folder" and meta["rgb"]
    assert [int(data[k, 0, 0, 0].compute()) for k in range(4)] == [0, 1, 2, 10]

    iio.imwrite(folder / "f11.png", np.zeros((9, 12, 3), np.uint8))
    with pytest.raises(InputError, match="f11.png"):
        open_image_data(folder)


def test_single_image_zarr_and_bad_paths(tmp_path):
    import imageio.v3 as iio
    import zarr

    img = np.arange(8 * 12, dtype=np.uint8).reshape(8, 12)
    iio.imwrite(tmp_path / "gray.png", img)
    data, meta = open_image_data(tmp_path / "gray.png")
    assert meta["kind"] == "image" and not meta["rgb"]
    np.testing.assert_array_equal(data, img)

    z = zarr.create_array(store=str(tmp_path / "s.zarr"), shape=(3, 8, 12), chunks=(1, 8, 12), dtype="u2")
    z[:] = 7
    data, meta = open_image_data(tmp_path / "s.zarr")
    assert meta["kind"] == "zarr" and data.shape == (3, 8, 12) and int(data.sum()) == 7 * 3 * 96

    (tmp_path / "empty").mkdir()
    (tmp_path / "a.xyz").write_text("?")
    for bad, pattern in [("missing.mp4", "not found"), ("a.xyz", "unknown file type"),
                         ("empty", "no image frames")]:
        with pytest.raises(InputError, match=pattern):
            open_image_data(tmp_path / bad)


# ---------------------------------------------------------------------------- labels


@pytest.mark.parametrize("target", ["lab.tif", "lab.zarr", "lab_png", "lab_png/"])
def test_labels_round_trip(tmp_path, target):
    labels = np.zeros((3, 10, 14), np.int64)
    labels[0, 2:5, 3:7] = 1
    labels[2, 5:9, 1:4] = 300
    out = write_labels(tmp_path / target if not target.endswith("/") else str(tmp_path / target), labels)
    back = read_labels(out)
    assert back.dtype == np.uint16 and back.shape == labels.shape
    np.testing.assert_array_equal(back, labels)
    if "png" in target:
        assert sorted(p.name for p in Path(out).iterdir()) == ["00000.png", "00001.png", "00002.png"]


@pytest.mark.parametrize("target", ["big.tif", "big.zarr"])
def test_labels_above_65535_are_uint32(tmp_path, target):
    labels = np.zeros((2, 6, 6), np.uint32)
    labels[1, 1:3, 1:3] = 70000
    back = read_labels(write_labels(tmp_path / target, labels))
    assert back.dtype == np.uint32
    np.testing.assert_array_equal(back, labels)


def test_png_labels_refuse_ids_above_65535(tmp_path):
    with pytest.raises(InputError, match="65535"):
        write_labels(tmp_path / "pngs", np.full((1, 4, 4), 70000, np.uint32))
    assert not (tmp_path / "pngs").exists()


def test_labels_are_written_frame_by_frame(tmp_path):
    class FrameOnly:
        """Array-like that only serves single frames (a whole-array read would fail)."""

        shape, dtype = (4, 6, 6), np.dtype(np.uint16)

        def __getitem__(self, t):
            assert isinstance(t, int)
            return np.full((6, 6), t, np.uint16)

    back = read_labels(write_labels(tmp_path / "lazy.tif", FrameOnly()))
    assert back[:, 0, 0].tolist() == [0, 1, 2, 3]


def test_single_frame_png_and_ctc(tmp_path):
    frame = np.zeros((6, 8), np.uint16)
    frame[1:3, 2:5] = 4
    for name in ("one.png", "one.tif", "one.zarr"):
        np.testing.assert_array_equal(read_labels(write_labels(tmp_path / name, frame)), frame)
    with pytest.raises(InputError, match="folder"):
        write_labels(tmp_path / "two.png", np.stack([frame, frame]))

    stack = np.stack([frame, np.zeros_like(frame), frame])
    out = write_ctc(tmp_path / "01_RES", stack)
    names = sorted(p.name for p in out.iterdir())
    assert names == ["mask000.tif", "mask001.tif", "mask002.tif", "res_track.txt"]
    assert (out / "res_track.txt").read_text() == "4 0 2 0\n"


def _tracks() -> np.ndarray:
    """(7, 12, 16) labels: 1 on every frame, 2 on frames 2-4 only, 3 on the last frame
    only, and 5 covering the whole of frame 5 (a frame with no background pixel)."""
    labels = np.zeros((7, 12, 16), np.int32)
    labels[:, 1:4, 1:5] = 1
    labels[2:5, 6:10, 8:12] = 2
    labels[6, 9:11, 0:3] = 3
    labels[5] = 5
    return labels


def _track_lines(folder: Path) -> list[str]:
    return (folder / "res_track.txt").read_text().splitlines()


@pytest.mark.parametrize("how", ["name", "format"])
def test_ctc_round_trip_through_write_labels(tmp_path, how):
    labels = _tracks()
    if how == "name":  # a folder named *_RES is the CTC layout, no option needed
        out = write_labels(tmp_path / "01_RES", labels)
    else:
        out = write_labels(tmp_path / "results", labels, format="ctc")
    names = sorted(p.name for p in out.iterdir())
    assert names == [f"mask{t:03d}.tif" for t in range(7)] + ["res_track.txt"]
    back = read_labels(out)  # reads the folder's TIFFs in order, skips res_track.txt
    assert back.dtype == np.uint16
    np.testing.assert_array_equal(back, labels)
    # One line per id: id, first frame, last frame, parent (0 = none).
    assert _track_lines(out) == ["1 0 6 0", "2 2 4 0", "3 6 6 0", "5 5 5 0"]


def test_ctc_names_masks_with_four_digits_past_1000_frames(tmp_path):
    labels = np.zeros((1001, 2, 2), np.uint8)
    labels[1000, 0, 0] = 7
    out = write_labels(tmp_path / "02_RES", labels)
    assert (out / "mask0000.tif").is_file() and (out / "mask1000.tif").is_file()
    assert not (out / "mask000.tif").exists()
    np.testing.assert_array_equal(read_labels(out), labels)
    assert _track_lines(out) == ["7 1000 1000 0"]


def test_ctc_refuses_bad_input_and_keeps_what_is_there(tmp_path):
    with pytest.raises(InputError, match=r"\(T, Y, X\)"):
        write_labels(tmp_path / "01_RES", np.ones((4, 4), np.uint16))
    with pytest.raises(InputError, match="65535"):
        write_labels(tmp_path / "01_RES", np.full((1, 2, 2), 70000, np.uint32))
    assert not (tmp_path / "01_RES").exists()
    with pytest.raises(InputError, match="ctc"):
        write_labels(tmp_path / "x", _tracks(), format="cellprofiler")
    # A folder named *_RES that is not a CTC output is never replaced.
    mine = tmp_path / "03_RES"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="refusing"):
        write_labels(mine, _tracks())
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]
    # An earlier CTC output is replaced whole: no mask of the longer old run is left.
    old = write_labels(tmp_path / "04_RES", np.ones((9, 2, 2), np.uint8))
    write_labels(old, _tracks()[:, :2, :2])
    assert len(list(old.glob("mask*.tif"))) == 7


def test_read_labels_conversions(tmp_path):
    from PIL import Image

    pal = Image.fromarray(np.array([[0, 1, 2, 2]], np.uint8), mode="P")
    pal.putpalette([0, 0, 0, 200, 0, 0, 0, 200, 0])
    pal.save(tmp_path / "davis.png")
    assert read_labels(tmp_path / "davis.png").tolist() == [[0, 1, 2, 2]]  # indices, not colours
    assert read_image_file(tmp_path / "davis.png", labels=True).tolist() == [[0, 1, 2, 2]]
    assert read_image_file(tmp_path / "davis.png").shape[:2] == (1, 4)  # as an image: colours

    Image.fromarray(np.array([[0, 255, 255]], np.uint8)).save(tmp_path / "binary.png")
    assert read_labels(tmp_path / "binary.png").tolist() == [[0, 1, 1]]  # 0/255 mask -> object 1

    colour = np.zeros((2, 3, 3), np.uint8)
    colour[0, 0] = (255, 0, 0)
    Image.fromarray(colour).save(tmp_path / "colour.png")
    with pytest.raises(InputError, match="colour"):
        read_labels(tmp_path / "colour.png")


def test_failed_write_leaves_existing_output_untouched(tmp_path):
    good = np.ones((2, 5, 5), np.uint16)
    target = write_labels(tmp_path / "out.tif", good)
    before = target.read_bytes()
    nan = np.full((2, 5, 5), np.nan, np.float32)
    with pytest.raises(InputError, match="non-integer"):
        write_labels(target, nan)
    with pytest.raises(InputError, match="shape"):
        write_labels(target, np.ones((2, 2, 5, 5), np.uint16))
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["out.tif"]  # no temporary left behind

    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "precious.jpg").write_bytes(b"x")
    with pytest.raises(InputError, match="refusing"):
        write_labels(folder, good)
    assert (folder / "precious.jpg").exists()


# ---------------------------------------------------------------------------- sessions


def test_session_round_trip(tmp_path):
    clicks = [Click(2, 5, 10.5, 3.0, True), Click(2, 5, 11.0, 4.0, False), Click(1, 0, 1.0, 2.0)]
    config = AnnotationConfig(threshold=0.4, axis=0, agree_frames=5)
    written = write_session(tmp_path / "run1", clicks, config, image_path="clip.mp4",
                            keyframes={2: [5, 9]})
    assert [p.name for p in written] == ["run1_prompts.csv", "run1_settings.json"]
    settings = json.loads(written[1].read_text())
    assert settings["version"] == 1 and settings["keyframes"] == {"2": [5, 9]}

    for handle in (tmp_path / "run1", written[0], written[1]):
        saved = read_session(handle)
        assert saved.clicks == clicks and saved.config == config
        assert saved.keyframes == {2: [5, 9]} and saved.image_path == "clip.mp4"

    write_session(tmp_path, [], config)  # into a folder, with no click
    assert session_paths(tmp_path)[0].name == "session_prompts.csv"
    assert read_session(tmp_path).clicks == []


# ---------------------------------------------------------------------------- npe2 contributions


def test_reader_contribution(video, tmp_path):
    from napari_ois._reader import get_reader

    reader = get_reader(str(video))
    assert callable(reader)
    [(data, kwargs, layer_type)] = reader(str(video))
    assert layer_type == "image" and kwargs["rgb"] and kwargs["name"] == "clip"
    assert kwargs["axis_labels"] == ("t", "y", "x")  # napari names the slider t, not -3
    assert data.shape == (N_FRAMES, H, W, 3) and data.chunks[0][0] == 1
    assert get_reader(str(tmp_path / "notes.txt")) is None
    assert get_reader([str(video), str(video)]) is None


def test_writer_contributions(tmp_path):
    from napari_ois._writer import write_labels_png, write_labels_tiff, write_prompts_csv

    labels = np.zeros((2, 6, 6), np.int32)
    labels[1, 2:4, 2:4] = 3
    [tif] = write_labels_tiff(str(tmp_path / "l.tif"), labels, {})
    [pngs] = write_labels_png(str(tmp_path / "l.png"), labels, {})
    assert Path(pngs).name == "l" and read_labels(pngs).max() == 3
    np.testing.assert_array_equal(read_labels(tif), labels)

    points = np.array([[3, 10.0, 4.0], [3, 12.0, 5.0], [7, 1.0, 1.0]])
    meta = {
        "features": {"object_id": [1, 1, 2], "frame": [3, 3, 7], "positive": [True, False, True]},
        "metadata": {"napari_ois_config": {"threshold": 0.3, "backend": "classical"}},
    }
    paths = write_prompts_csv(str(tmp_path / "p.csv"), points, meta)
    assert [Path(p).name for p in paths] == ["p.csv", "p_settings.json"]
    saved = read_session(paths[0])
    assert saved.clicks == [
        Click(1, 3, 10.0, 4.0, True), Click(1, 3, 12.0, 5.0, False), Click(2, 7, 1.0, 1.0, True)
    ]
    assert saved.config.threshold == 0.3

    [empty] = write_prompts_csv(str(tmp_path / "e.csv"), np.zeros((0, 3)), {"features": {}})
    assert Path(empty).read_text().strip() == "object_id,frame,y,x,positive"
