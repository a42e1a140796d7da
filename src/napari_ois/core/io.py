"""Lazy readers for videos, TIFFs, frame folders, images and zarr; atomic labels writers; sessions.

Everything here is numpy / dask / imageio(-ffmpeg) / tifffile / zarr: no napari, no Qt.

Readers never load a whole stack: a video is decoded frame by frame by ffmpeg
(:class:`VideoReader`, wrapped in a dask array with one frame per chunk), a TIFF is
memory-mapped (or read through tifffile's zarr store when compressed), a folder of
frames is a dask array that reads one file per frame.

Writers stream frame by frame and write to a temporary sibling that replaces the target
only once it is complete, so an error never leaves a half-written or clobbered output.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import threading
import uuid
import warnings
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import numpy as np

from .clicks import CSV_HEADER, Click, read_prompts, write_prompts
from .config import AnnotationConfig
from .errors import InputError

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")
TIFF_SUFFIXES = (".tif", ".tiff")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp") + TIFF_SUFFIXES
FRAME_SUFFIXES = IMAGE_SUFFIXES  # files taken from a folder of frames
ZARR_SUFFIX = ".zarr"

SESSION_VERSION = 1
SESSION_STEM = "session"  # file stem used when a session is written into a folder


# --------------------------------------------------------------------------------------
# lazily indexed frame sequences (video, folder of files)
# --------------------------------------------------------------------------------------


class _FrameSequence:
    """Array-like over frames read one at a time by :meth:`read` (shape (T, Y, X[, C])).

    Exposes ``shape``, ``dtype``, ``ndim`` and numpy-style ``__getitem__`` so that
    ``dask.array.from_array`` can wrap it, one frame per chunk.
    """

    shape: tuple[int, ...]
    dtype: np.dtype

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __len__(self) -> int:
        return self.shape[0]

    def read(self, index: int) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def __getitem__(self, key: Any) -> np.ndarray:
        key = key if isinstance(key, tuple) else (key,)
        first, rest = (key[0], key[1:]) if key else (slice(None), ())
        if isinstance(first, (int, np.integer)):
            index = int(first) + (len(self) if first < 0 else 0)
            if not 0 <= index < len(self):
                raise IndexError(f"frame {first} is outside 0..{len(self) - 1}")
            return self.read(index)[rest]
        if isinstance(first, slice):
            indices = range(*first.indices(len(self)))
            if len(indices) == 0:
                return np.zeros((0,) + self.shape[1:], self.dtype)[(slice(None),) + rest]
            return np.stack([self.read(i) for i in indices])[(slice(None),) + rest]
        raise TypeError(f"frames can be indexed by an int or a slice, not {type(first).__name__}")

    def to_dask(self, name: str):
        """A dask array of shape ``self.shape`` with one frame per chunk."""
        import dask.array as da

        chunks = (1,) + self.shape[1:]
        return da.from_array(
            self, chunks=chunks, name=name, asarray=False, fancy=False, lock=False,
            meta=np.zeros((0,) * self.ndim, self.dtype),
        )


@dataclass
class _VideoProbe:
    n_frames: int
    fps: float | None
    seek_times: list[float] | None  # per frame, a time (s) between its pts and the previous one's
    stream_end: float | None  # end of the last video packet (s)
    declared_duration: float | None  # what the header claims for the video (s)


_DURATION_RE = re.compile(r"Duration:\s*(\d+):(\d+):(\d+(?:\.\d+)?)")
_TAG_DURATION_RE = re.compile(r"^\s*DURATION\s*:\s*(\d+):(\d+):(\d+(?:\.\d+)?)", re.M)
_FPS_RE = re.compile(r"(\d+(?:\.\d+)?)(k?)\s+(fps|tbr)")
_TB_RE = re.compile(r"^#tb 0:\s*(\d+)/(\d+)", re.M)


def _hms(match: re.Match) -> float:
    h, m, s = match.groups()
    return int(h) * 3600 + int(m) * 60 + float(s)


def _ffmpeg_exe() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


class _RotationNoticeFilter(logging.Filter):
    """Drop imageio-ffmpeg's notice that a rotated video's frames differ in size from the
    stored ones: expected (frames come out upright) and otherwise repeated at every seek."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("The frame size for reading")


logging.getLogger("imageio_ffmpeg").addFilter(_RotationNoticeFilter())


# demuxer complaints that mean packets are missing or cut: the file is truncated/damaged
_CUT_MARKERS = ("packet corrupt", "ended prematurely", "truncating packet", "partial file")
_DAMAGE_MARKERS = _CUT_MARKERS + ("moov atom not found", "invalid data found")
_LOG_PREFIX_RE = re.compile(r"^\[[^\]]*\]\s*")


def _ffmpeg_reason(stderr: str) -> str:
    """The most telling line of an ffmpeg log: the first damage report, else the last line."""
    lines = [_LOG_PREFIX_RE.sub("", ln.strip()) for ln in stderr.splitlines()]
    lines = [ln for ln in lines if ln and not ln.startswith("frame=")]
    for ln in lines:
        if any(m in ln.lower() for m in _DAMAGE_MARKERS):
            return ln
    return lines[-1] if lines else "no output from ffmpeg"


def _probe_video(path: str) -> _VideoProbe:
    """Demux (not decode) the first video stream to count its packets and get their times.

    ``-c copy -f framecrc`` reads the container only, so it is fast even for long
    videos, and it lists every packet's presentation time: exact frame times make
    seeking frame-accurate also for variable frame rates, and the packet count stops
    where a truncated file stops.
    """
    cmd = [_ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", path,
           "-map", "0:V:0", "-c", "copy", "-f", "framecrc", "-"]
    proc = subprocess.run(cmd, capture_output=True)
    out = proc.stdout.decode(errors="replace")
    err = proc.stderr.decode(errors="replace")
    if proc.returncode != 0:
        raise InputError(f"cannot read video {path} ({_ffmpeg_reason(err)}); "
                         "the file may be truncated, damaged or not a video")
    if any(m in err.lower() for m in _CUT_MARKERS):
        raise InputError(f"video {path} is truncated or damaged ({_ffmpeg_reason(err)})")
    n_frames, seek_times, stream_end = _parse_packets(out)
    if n_frames == 0:
        raise InputError(f"video {path} holds no readable frame (the file may be truncated or damaged)")
    fps, declared = _parse_video_header(err.split("Stream mapping:")[0])
    return _VideoProbe(n_frames, fps, seek_times, stream_end, declared)


def _parse_packets(framecrc: str) -> tuple[int, list[float] | None, float | None]:
    """Packet count, per-frame seek times and stream end (s) from ``framecrc`` output.

    Lines are ``stream, dts, pts, duration, size, checksum[, ...]`` in the stream time
    base (``#tb 0: num/den``). Seek times are None when presentation times are missing
    or repeated, since then they cannot name a frame.
    """
    tb = _TB_RE.search(framecrc)
    packets = []
    for line in framecrc.splitlines():
        if line.startswith("0,"):
            fields = [f.strip() for f in line.split(",")]
            packets.append((int(fields[2]), int(fields[3])))  # (pts, duration)
    no_pts = -(2**63)
    if not packets or tb is None or any(p == no_pts for p, _ in packets):
        return len(packets), None, None
    unit = int(tb.group(1)) / int(tb.group(2))
    order = sorted(p for p, _ in packets)
    if len(set(order)) != len(order):
        return len(packets), None, None
    # frame i is the first frame at or after a time between its pts and the previous one's
    seek_times = [0.0] + [(a + b) / 2 * unit for a, b in zip(order[:-1], order[1:])]
    last_pts, last_duration = max(packets)
    return len(packets), seek_times, (last_pts + max(last_duration, 0)) * unit


def _parse_video_header(in_header: str) -> tuple[float | None, float | None]:
    """(fps, declared duration in s) of the first real video stream in ffmpeg's input listing.

    The stream's own ``DURATION`` tag (mkv/webm) is preferred; the container duration
    spans every stream (audio may be longer), so it is used only for a one-stream file.
    Cover art ("attached pic") streams are skipped.
    """
    blocks = re.split(r"(?m)^(?=\s*Stream #)", in_header)
    video = next((b for b in blocks[1:] if "Video:" in b.splitlines()[0]
                  and "attached pic" not in b.splitlines()[0]), None)
    if video is None:
        return None, None
    fps = None
    for m in _FPS_RE.finditer(video.splitlines()[0]):  # "..., 25 fps, 25 tbr, 90k tbn"
        fps = float(m.group(1)) * (1000 if m.group(2) else 1)
        if fps > 0:
            break
    declared = None
    tag = _TAG_DURATION_RE.search(video)
    container = _DURATION_RE.search(blocks[0])
    if tag:
        declared = _hms(tag)
    elif container and len(blocks) == 2:
        declared = _hms(container)
    return (fps or None), declared


class VideoReader(_FrameSequence):
    """Random access to the frames of a video file, decoded on demand by ffmpeg.

    Frames come out as (Y, X, 3) uint8 RGB; the reader behaves as a read-only array of
    shape (T, Y, X, 3). Reading forward reuses one open ffmpeg stream; a jump backwards
    or far ahead restarts ffmpeg with an accurate seek (``-ss`` before the input, at a
    time between the wanted frame's presentation time and the previous one's), so
    scrubbing a long video does not decode it from the start. A small LRU keeps the
    latest decoded frames. All reads hold a lock: napari and a worker thread may read
    concurrently.

    Parameters
    ----------
    path : str or Path
        The video file.
    cache_frames : int
        How many decoded frames the LRU keeps.
    max_skip : int
        Read forward through at most this many frames rather than restart ffmpeg:
        decoding a few frames is cheaper than a restart plus a seek.
    seek : bool
        Use ``-ss`` seeking; False restarts from frame 0 and skips (slow, but exact
        whatever the container does with timestamps).

    Raises
    ------
    InputError
        The file is missing, not a video, truncated or damaged.
    """

    def __init__(self, path: str | Path, cache_frames: int = 8, max_skip: int = 24, seek: bool = True):
        self.path = str(path)
        if not os.path.isfile(self.path):
            raise InputError(f"video file not found: {self.path}")
        self.cache_frames = max(1, int(cache_frames))
        self.max_skip = max(0, int(max_skip))
        probe = _probe_video(self.path)
        self.fps = probe.fps
        self._seek_times = probe.seek_times if seek else None
        self.dtype = np.dtype(np.uint8)
        self._init_state()
        self._n_frames = probe.n_frames
        self.shape = (probe.n_frames, 0, 0, 3)  # frame size comes with the first decode
        self._check_truncation(probe)
        with self._lock:
            self._open(0)
            if self._seek_times is not None and not self._seek_is_exact():
                # some containers (e.g. MPEG-TS) land elsewhere: restart and skip instead
                warnings.warn(f"seeking in {self.path} is not frame-accurate; frames will be "
                              "decoded from the start (slower random access)", stacklevel=2)
                self._seek_times = None
        # decoding the last frame finds a damaged tail now rather than mid-propagation
        # (only when seeking is possible: otherwise it would decode the whole video)
        if probe.n_frames > 1 and self._seek_times is not None:
            self.read(probe.n_frames - 1)

    def _init_state(self) -> None:
        self._lock = threading.RLock()
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self._gen = None
        self._pos = 0  # index of the frame the open stream yields next

    def _check_truncation(self, probe: _VideoProbe) -> None:
        if probe.declared_duration is None or probe.stream_end is None or not probe.fps:
            return
        missing = probe.declared_duration - probe.stream_end
        if missing > max(2.5 / probe.fps, 0.02 * probe.declared_duration):
            raise InputError(
                f"video {self.path} looks truncated: its header announces "
                f"{probe.declared_duration:.2f} s but frames stop at {probe.stream_end:.2f} s "
                f"({probe.n_frames} frames readable)"
            )

    # -- ffmpeg stream handling (callers hold the lock) --------------------------------

    def _seek_is_exact(self, probe_frame: int = 8) -> bool:
        """Compare a frame reached by seeking with the same frame decoded from the start.

        Cheap (a few frames near the start) and run once per file, so a container whose
        timestamps mislead ``-ss`` falls back to exact, slower skipping.
        """
        k = min(self._n_frames - 1, probe_frame)
        if k < 1:
            return True
        if self._gen is None or self._pos != 0:
            self._open(0)
        for i in range(k + 1):
            reference = self._next_frame()
            self._remember(i, reference)
        self._open(k)
        sought = self._next_frame()
        self._close_stream()  # its position is only known if the seek was exact
        return float(np.abs(sought.astype(np.int16) - reference).mean()) < 1.0

    def _open(self, index: int) -> None:
        """(Re)start ffmpeg so that the next frame it yields is ``index``."""
        import imageio_ffmpeg

        self._close_stream()
        input_params = ["-nostdin"]
        start = 0
        if index > 0 and self._seek_times is not None:
            input_params += ["-ss", f"{self._seek_times[index]:.6f}"]
            start = index
        # passthrough: one output frame per decoded frame, never duplicated or dropped
        # to fit a constant frame rate, so frame indices match the probed packets
        gen = imageio_ffmpeg.read_frames(
            self.path, input_params=input_params,
            output_params=["-map", "0:V:0", "-fps_mode", "passthrough"],
        )
        try:
            meta = next(gen)
        except (RuntimeError, OSError, StopIteration) as exc:
            gen.close()
            raise InputError(f"cannot decode video {self.path}: {str(exc).splitlines()[0]}") from None
        if self.shape[1] == 0:
            width, height = meta["size"]
            self.shape = (self._n_frames, int(height), int(width), 3)
        self._gen, self._pos = gen, start

    def _close_stream(self) -> None:
        if self._gen is not None:
            self._gen.close()  # imageio-ffmpeg terminates the ffmpeg process
            self._gen = None

    def _next_frame(self) -> np.ndarray:
        _, height, width, _ = self.shape
        try:
            raw = next(self._gen)
        except StopIteration:
            raw = None
        except (RuntimeError, OSError) as exc:
            raise InputError(f"video {self.path} cannot be decoded at frame {self._pos}: "
                             f"{str(exc).splitlines()[0]}") from None
        if raw is None or len(raw) != height * width * 3:
            self._close_stream()
            raise InputError(
                f"video {self.path} ends at frame {self._pos} although {self._n_frames} frames "
                "were announced: the file may be truncated or damaged"
            )
        frame = np.frombuffer(raw, np.uint8).reshape(height, width, 3)
        self._pos += 1
        return frame

    def _decode(self, index: int) -> np.ndarray:
        behind = self._gen is None or index < self._pos
        far_ahead = index > self._pos + self.max_skip and self._seek_times is not None
        if behind or far_ahead:
            self._open(index)  # without seeking this restarts at 0 and we skip forward
        while self._pos < index:
            self._remember(self._pos, self._next_frame())
        frame = self._next_frame()
        if self._pos - 1 != index:  # pragma: no cover - defensive
            raise InputError(f"video {self.path}: lost track of frame {index}")
        return frame

    def _remember(self, index: int, frame: np.ndarray) -> None:
        self._cache[index] = frame
        self._cache.move_to_end(index)
        while len(self._cache) > self.cache_frames:
            self._cache.popitem(last=False)

    # -- public ------------------------------------------------------------------------

    def read(self, index: int) -> np.ndarray:
        """Frame ``index`` as a new (Y, X, 3) uint8 RGB array."""
        if not 0 <= index < self._n_frames:
            raise IndexError(f"frame {index} is outside 0..{self._n_frames - 1}")
        with self._lock:
            frame = self._cache.get(index)
            if frame is None:
                frame = self._decode(index)
                self._remember(index, frame)
            else:
                self._cache.move_to_end(index)
            # a copy: callers may write into it, the cached frame must stay intact
            return frame.copy()

    def close(self) -> None:
        """Stop the ffmpeg process (the reader reopens it on the next read)."""
        with self._lock:
            self._close_stream()
            self._cache.clear()

    def __enter__(self) -> "VideoReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):  # ffmpeg must not outlive the reader
        try:
            self._close_stream()
        except Exception:
            pass

    # a reader can travel to another process (dask, multiprocessing): the stream cannot
    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        for key in ("_lock", "_cache", "_gen", "_pos"):
            state.pop(key, None)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._init_state()


class ImageSequence(_FrameSequence):
    """A folder's image files as one (T, Y, X[, C]) array, read one file per frame.

    Parameters
    ----------
    files : sequence of Path
        Frame files in frame order; every one must have the shape and dtype of the first.

    Raises
    ------
    InputError
        A file is unreadable or its shape/dtype differs from the first file's.
    """

    def __init__(self, files: Sequence[Path]):
        self.files = [Path(f) for f in files]
        if not self.files:
            raise InputError("no image frames given")
        first = _read_frame_file(self.files[0])
        self.shape = (len(self.files),) + first.shape
        self.dtype = first.dtype
        for f in self.files[1:]:  # headers only: cheap even for thousands of files
            shape, dtype = _image_file_props(f)
            if shape != first.shape or dtype != first.dtype:
                raise InputError(
                    f"frame file {f.name} has shape {shape} ({dtype}) but the first frame "
                    f"{self.files[0].name} has shape {first.shape} ({first.dtype}); "
                    "all frames of a folder must have the same size and type"
                )

    def read(self, index: int) -> np.ndarray:
        frame = _read_frame_file(self.files[index])
        if frame.shape != self.shape[1:]:
            raise InputError(f"frame file {self.files[index].name} changed shape since it was opened")
        return frame


# --------------------------------------------------------------------------------------
# single image files
# --------------------------------------------------------------------------------------


def read_image_file(path: str | Path, labels: bool = False) -> np.ndarray:
    """Read one image file (png/jpg/bmp/tif) into memory.

    Parameters
    ----------
    path : str or Path
    labels : bool
        False (images): palette PNGs are expanded to their colours. True (masks): the
        file is read as label ids exactly as :func:`read_labels` reads it (palette PNGs
        give their indices, grey stored as RGB gives one channel, colour images are
        refused, a 0/255 mask gives 0/1).

    Returns
    -------
    numpy.ndarray
        (Y, X) or (Y, X, C) in the file's dtype; a grey + alpha image gives (Y, X).
        A multi-page TIFF gives its whole first series, e.g. (N, Y, X).

    Raises
    ------
    InputError
        Missing or unreadable file.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"image not found: {path}")
    if labels:
        return read_labels(path)
    try:
        if path.suffix.lower() in TIFF_SUFFIXES:
            import tifffile

            data = tifffile.imread(path)
        else:
            import imageio.v3 as iio

            data = iio.imread(path)
    except Exception as exc:  # imageio/tifffile raise many types for bad files
        raise InputError(f"cannot read image {path}: {exc}") from None
    if data.ndim == 3 and data.shape[-1] == 2:  # grey + alpha: the alpha is no image
        data = data[..., 0]
    return data


def _read_frame_file(path: Path) -> np.ndarray:
    """One frame of a folder or a single image: (Y, X) or (Y, X, C)."""
    data = read_image_file(path)
    if data.ndim not in (2, 3):
        raise InputError(f"image {path} has shape {data.shape}; expected (Y, X) or (Y, X, C)")
    return data


def _image_file_props(path: Path) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of what :func:`_read_frame_file` returns, from the header if possible."""
    try:
        if path.suffix.lower() in TIFF_SUFFIXES:
            import tifffile

            with tifffile.TiffFile(path) as tif:
                series = tif.series[0]
                shape, dtype = tuple(series.shape), np.dtype(series.dtype)
        else:
            import imageio.v3 as iio

            props = iio.improps(path)
            shape, dtype = tuple(props.shape), np.dtype(props.dtype)
    except Exception as exc:
        raise InputError(f"cannot read image {path}: {exc}") from None
    if len(shape) == 3 and shape[-1] == 2:
        shape = shape[:2]
    return shape, dtype


def _natural_key(path: Path) -> list:
    """Sort key that orders ``frame2`` before ``frame10`` (zero-padded names sort alike)."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", path.name)]


def list_frame_files(folder: str | Path, suffixes: Sequence[str] = FRAME_SUFFIXES) -> list[Path]:
    """Image files of ``folder`` in frame order (natural sort by name; hidden files skipped)."""
    folder = Path(folder)
    files = [p for p in folder.iterdir()
             if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in suffixes]
    return sorted(files, key=_natural_key)


# --------------------------------------------------------------------------------------
# open_image_data
# --------------------------------------------------------------------------------------


def _dask_name(kind: str, path: Path) -> str:
    """A dask key that changes when the file changes (so napari caches stay valid)."""
    from dask.base import tokenize

    st = path.stat()
    return f"napari-ois-{kind}-{tokenize(str(path.resolve()), st.st_mtime_ns, st.st_size)}"


def _looks_rgb(shape: tuple[int, ...]) -> bool:
    return len(shape) >= 3 and shape[-1] in (3, 4)


def _open_video(path: Path):
    reader = VideoReader(path)
    return reader.to_dask(_dask_name("video", path)), {"rgb": True, "fps": reader.fps}


def _open_tiff(path: Path):
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            axes, shape = series.axes, tuple(series.shape)
    except Exception as exc:
        raise InputError(f"cannot read TIFF {path}: {exc}") from None
    if len(shape) < 2 or 0 in shape:
        raise InputError(f"TIFF {path} holds no image (shape {shape})")
    rgb = axes.endswith("S") and shape[-1] in (3, 4)
    try:  # uncompressed, contiguous data: let the OS page it in
        data = tifffile.memmap(path, mode="r")
        if tuple(data.shape) != shape:
            raise ValueError("memory map does not match the first series")
    except Exception:  # compressed / tiled / fragmented: decode per chunk on access
        import dask.array as da
        import zarr

        try:
            with tifffile.TiffFile(path) as tif:
                store = tif.aszarr(series=0, level=0, lock=threading.RLock())
            data = da.from_zarr(zarr.open(store, mode="r"), name=_dask_name("tiff", path))
        except Exception as exc:
            raise InputError(f"cannot read TIFF {path}: {exc}") from None
    return data, {"rgb": rgb, "fps": None}


def _open_folder(path: Path):
    files = list_frame_files(path)
    if not files:
        raise InputError(
            f"folder {path} holds no image frames (looked for {', '.join(FRAME_SUFFIXES)})"
        )
    seq = ImageSequence(files)
    rgb = seq.ndim == 4 and _looks_rgb(seq.shape[1:])
    return seq.to_dask(_dask_name("folder", path)), {"rgb": rgb, "fps": None}


def _open_zarr_array(path: Path):
    """The array of a zarr path: an array, an OME-Zarr multiscale (level 0) or a one-array group."""
    import zarr

    try:
        node = zarr.open(str(path), mode="r")
    except Exception as exc:
        raise InputError(f"cannot read zarr {path}: {exc}") from None
    if isinstance(node, zarr.Group):
        attrs = dict(node.attrs)
        multiscales = attrs.get("multiscales") or attrs.get("ome", {}).get("multiscales")
        if multiscales:
            node = node[multiscales[0]["datasets"][0]["path"]]
        else:
            arrays = [name for name, _ in node.arrays()]
            if len(arrays) != 1:
                raise InputError(
                    f"zarr group {path} holds {len(arrays)} arrays ({', '.join(arrays) or 'none'}); "
                    "give the path of one array"
                )
            node = node[arrays[0]]
    return node


def _open_zarr(path: Path):
    import dask.array as da

    arr = _open_zarr_array(path)
    rgb = bool(arr.attrs.get("rgb", _looks_rgb(arr.shape) and np.dtype(arr.dtype) == np.uint8))
    return da.from_zarr(arr), {"rgb": rgb, "fps": None}


def _open_single_image(path: Path):
    data = _read_frame_file(path)
    return data, {"rgb": _looks_rgb(data.shape) and data.ndim == 3, "fps": None}


def open_image_data(path: str | Path) -> tuple[Any, dict]:
    """Open an image source lazily.

    Parameters
    ----------
    path : str or Path
        A video (``.mp4 .avi .mov .mkv .webm .m4v .mpg .mpeg``), a TIFF (2-D, 3-D or 4-D,
        optionally RGB), a folder of image frames (png/jpg/bmp/tif, natural sort by name),
        a single image (png/jpg/bmp) or a zarr array/group (``.zarr``).

    Returns
    -------
    data : array-like
        Video: dask array (T, Y, X, 3) uint8, one frame per chunk, decoded on access.
        TIFF: ``numpy.memmap`` or dask array in the file's dtype and axis order
        ((Y, X), (N, Y, X), (T, Z, Y, X), ... with a trailing C axis when RGB).
        Folder: dask array (T, Y, X[, C]) reading one file per frame.
        Image: numpy array (Y, X[, C]). Zarr: dask array over the stored array.
    meta : dict
        ``{"kind": "video"|"tiff"|"folder"|"image"|"zarr", "rgb": bool,
        "fps": float|None, "path": str}``.

    Raises
    ------
    InputError
        Missing path, unknown file type, unreadable/truncated file, empty folder,
        frames of different sizes.
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise InputError(f"input not found: {path}")
    suffix = path.suffix.lower()
    if suffix == ZARR_SUFFIX or (path.is_dir() and _is_zarr_dir(path)):
        kind, opener = "zarr", _open_zarr
    elif path.is_dir():
        kind, opener = "folder", _open_folder
    elif suffix in VIDEO_SUFFIXES:
        kind, opener = "video", _open_video
    elif suffix in TIFF_SUFFIXES:
        kind, opener = "tiff", _open_tiff
    elif suffix in IMAGE_SUFFIXES:
        kind, opener = "image", _open_single_image
    else:
        raise InputError(
            f"cannot open {path}: unknown file type {suffix or '(no suffix)'}; expected a video "
            f"({' '.join(VIDEO_SUFFIXES)}), a TIFF, an image ({' '.join(IMAGE_SUFFIXES[:4])}), "
            "a folder of frames or a .zarr"
        )
    data, meta = opener(path)
    return data, {"kind": kind, "rgb": bool(meta["rgb"]), "fps": meta["fps"], "path": str(path)}


def _is_zarr_dir(path: Path) -> bool:
    return any((path / name).exists() for name in ("zarr.json", ".zarray", ".zgroup"))


# --------------------------------------------------------------------------------------
# labels: reading
# --------------------------------------------------------------------------------------


def _label_image_file(path: Path) -> np.ndarray:
    """One label image as (Y, X) integers; palette PNGs give their indices, not colours."""
    suffix = path.suffix.lower()
    try:
        if suffix in TIFF_SUFFIXES:
            import tifffile

            with tifffile.TiffFile(path) as tif:
                series = tif.series[0]
                data = series.asarray()
                if series.axes.endswith("S"):
                    data = _grey_from_rgb(data, path)
        else:
            from PIL import Image

            with Image.open(path) as img:
                mode = img.mode
                data = np.array(img)  # mode "P" -> palette indices = object ids
            if mode in ("RGB", "RGBA", "LA"):
                data = _grey_from_rgb(data, path)
    except InputError:
        raise
    except Exception as exc:
        raise InputError(f"cannot read labels {path}: {exc}") from None
    return data


def _grey_from_rgb(data: np.ndarray, path: Path) -> np.ndarray:
    """An RGB(A) label image whose colour channels are equal (grey saved as RGB) -> (.., Y, X)."""
    colour = data[..., :3] if data.shape[-1] >= 3 else data[..., :1]
    if not (colour == colour[..., :1]).all():
        raise InputError(
            f"labels {path} are a colour image; save labels as integer ids "
            "(grey or palette PNG, 16-bit PNG, TIFF or zarr)"
        )
    return colour[..., 0]


def _as_labels(data: np.ndarray, source: Path) -> np.ndarray:
    """Check/convert a label array to non-negative integers.

    bool -> uint8; float holding only whole non-negative numbers -> uint32; an 8-bit
    mask whose only non-zero value is 255 (a black/white binary mask) -> ids 0/1.
    """
    data = np.asarray(data)
    if data.dtype == np.bool_:
        return data.astype(np.uint8)
    if data.dtype.kind == "f":
        if not np.isfinite(data).all() or (data != np.round(data)).any() or (data < 0).any():
            raise InputError(f"labels {source} are not integer ids (floating-point values found)")
        if data.size and data.max() >= 2**32:
            raise InputError(f"labels {source} hold ids above 2**32 - 1")
        return data.astype(np.uint32)
    if data.dtype.kind not in "iu":
        raise InputError(f"labels {source} must hold integer ids, got dtype {data.dtype}")
    if data.dtype.kind == "i" and data.size and data.min() < 0:
        raise InputError(f"labels {source} hold negative ids")
    if data.dtype == np.uint8:
        values = np.unique(data)
        if values.size and values[-1] == 255 and set(values.tolist()) <= {0, 255}:
            return (data > 0).astype(np.uint8)
    return data


def read_labels(path: str | Path) -> np.ndarray:
    """Read labels / keyframe masks into memory.

    Parameters
    ----------
    path : str or Path
        A TIFF (one frame or a stack), a folder of label images (PNG/TIFF, one per
        frame, natural sort by name), a single PNG/TIFF, or a zarr array/group.

    Returns
    -------
    numpy.ndarray
        Integer ids, (T, Y, X) for a stack or a folder, (Y, X) for a single image; 0 is
        background. The stored integer dtype is kept.

    Notes
    -----
    Palette ("P" mode) PNGs, as in DAVIS, give their palette indices. RGB images whose
    channels are equal are read as grey; other colour images are refused. An 8-bit mask
    whose only non-zero value is 255 (a typical black/white binary mask) is read as one
    object with id 1. Floating-point images holding whole numbers are accepted.

    Raises
    ------
    InputError
        Missing path, colour or non-integer labels, frames of different sizes.
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise InputError(f"labels not found: {path}")
    if path.suffix.lower() == ZARR_SUFFIX or (path.is_dir() and _is_zarr_dir(path)):
        data = np.asarray(_open_zarr_array(path)[...])
    elif path.is_dir():
        files = list_frame_files(path, suffixes=(".png",) + TIFF_SUFFIXES)
        if not files:
            raise InputError(f"folder {path} holds no label images (.png or .tif)")
        frames = []
        for f in files:
            frame = _label_image_file(f)
            if frame.ndim != 2:
                raise InputError(f"label image {f.name} has shape {frame.shape}; expected (Y, X)")
            if frames and frame.shape != frames[0].shape:
                raise InputError(
                    f"label image {f.name} has shape {frame.shape} but {files[0].name} has "
                    f"{frames[0].shape}; all frames must have the same size"
                )
            frames.append(frame)
        data = np.stack(frames)
    elif path.suffix.lower() in (".png",) + TIFF_SUFFIXES:
        data = _label_image_file(path)
    else:
        raise InputError(f"cannot read labels from {path}: expected a TIFF, PNG(s) or .zarr")
    if data.ndim not in (2, 3):
        raise InputError(f"labels {path} have shape {data.shape}; expected (T, Y, X) or (Y, X)")
    return _as_labels(data, path)


# --------------------------------------------------------------------------------------
# labels: writing (atomic, streamed)
# --------------------------------------------------------------------------------------


class _NeedsWiderType(Exception):
    """Internal: a frame holds ids >= 65536, restart the write as uint32."""


def _tmp_sibling(path: Path, tag: str) -> Path:
    return path.with_name(f".{path.name}.{tag}-{os.getpid()}-{uuid.uuid4().hex[:8]}")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink()


@contextmanager
def _atomic_target(path: Path, replaceable=None) -> Iterator[Path]:
    """Yield a temporary sibling path; on success it replaces ``path``, on error it vanishes.

    A file is swapped with ``os.replace`` (atomic). A folder cannot be swapped in one
    step: the old one is renamed aside, the new one renamed in, then the old one deleted
    (restored if the second rename fails). ``replaceable(path)`` must accept an existing
    folder before it is replaced, so a wrong ``--out`` cannot wipe unrelated data.
    """
    path = Path(path)
    if path.is_dir() and (replaceable is None or not replaceable(path)):
        raise InputError(
            f"refusing to replace folder {path}: it holds files that are not a labels output"
        )
    if not path.parent.exists():
        raise InputError(f"output folder {path.parent} does not exist")
    tmp = _tmp_sibling(path, "tmp")
    try:
        yield tmp
        if tmp.is_dir() or path.is_dir():
            old = _tmp_sibling(path, "old")
            if path.exists():
                os.rename(path, old)
            try:
                os.rename(tmp, path)
            except BaseException:
                if old.exists():
                    os.rename(old, path)
                raise
            if old.exists():
                _remove(old)
        else:
            os.replace(tmp, path)
    except BaseException:
        if tmp.exists():
            _remove(tmp)
        raise


def _check_label_array(labels: Any) -> tuple[tuple[int, ...], np.dtype]:
    shape = tuple(int(s) for s in labels.shape)
    dtype = np.dtype(labels.dtype)
    if len(shape) not in (2, 3):
        raise InputError(f"labels must be (T, Y, X) or (Y, X), got shape {shape}")
    if 0 in shape:
        raise InputError(f"labels are empty (shape {shape})")
    if dtype.kind not in "biuf":
        raise InputError(f"labels must hold integer ids, got dtype {dtype}")
    return shape, dtype


def _label_frames(labels: Any) -> Iterator[np.ndarray]:
    """(Y, X) frames of a (T, Y, X) or (Y, X) array-like, read one at a time."""
    if len(labels.shape) == 2:
        yield np.asarray(labels[...] if not isinstance(labels, np.ndarray) else labels)
    else:
        for t in range(labels.shape[0]):
            yield np.asarray(labels[t])


def _checked_frame(frame: np.ndarray, t: int, out_dtype: np.dtype) -> np.ndarray:
    """Validate one frame's ids and cast it to ``out_dtype`` (raises before anything is lost)."""
    if frame.dtype.kind == "f":
        if not np.isfinite(frame).all() or (frame != np.round(frame)).any():
            raise InputError(f"labels frame {t} holds non-integer values (NaN, inf or fractions)")
    if frame.dtype.kind in "if" and frame.size and frame.min() < 0:
        raise InputError(f"labels frame {t} holds negative ids")
    top = int(frame.max()) if frame.size else 0
    if top >= 2**32:
        raise InputError(f"labels frame {t} holds id {top}; at most 2**32 - 1 is supported")
    if top > np.iinfo(out_dtype).max:
        raise _NeedsWiderType
    return frame.astype(out_dtype, copy=False)


def _write_tiff(tmp: Path, labels: Any, shape: tuple[int, ...], out_dtype: np.dtype) -> None:
    import tifffile

    nbytes = int(np.prod(shape)) * out_dtype.itemsize
    frames = (_checked_frame(f, t, out_dtype) for t, f in enumerate(_label_frames(labels)))
    with tifffile.TiffWriter(tmp, bigtiff=nbytes > 2**31) as tw:
        tw.write(frames if len(shape) == 3 else next(frames), shape=shape, dtype=out_dtype,
                 compression="zlib", photometric="minisblack",
                 metadata={"axes": "TYX" if len(shape) == 3 else "YX"})


def _write_zarr(tmp: Path, labels: Any, shape: tuple[int, ...], out_dtype: np.dtype) -> None:
    import zarr

    chunks = (1,) + shape[1:] if len(shape) == 3 else shape
    z = zarr.create_array(store=str(tmp), shape=shape, chunks=chunks, dtype=out_dtype,
                          fill_value=0, overwrite=True)
    for t, frame in enumerate(_label_frames(labels)):
        frame = _checked_frame(frame, t, out_dtype)
        if len(shape) == 3:
            z[t] = frame
        else:
            z[...] = frame


def _png_name(t: int, n: int) -> str:
    return f"{t:0{max(5, len(str(n - 1)))}d}.png"


def _write_png_folder(tmp: Path, labels: Any, shape: tuple[int, ...]) -> None:
    import imageio.v3 as iio

    tmp.mkdir()
    n = shape[0] if len(shape) == 3 else 1
    for t, frame in enumerate(_label_frames(labels)):
        try:
            frame = _checked_frame(frame, t, np.dtype(np.uint16))
        except _NeedsWiderType:
            raise InputError("PNG labels hold at most 65535 objects; write a TIFF or zarr instead") from None
        iio.imwrite(tmp / _png_name(t, n), frame, extension=".png")


def _write_png_file(tmp: Path, labels: Any) -> None:
    import imageio.v3 as iio

    try:
        frame = _checked_frame(next(_label_frames(labels)), 0, np.dtype(np.uint16))
    except _NeedsWiderType:
        raise InputError("PNG labels hold at most 65535 objects; write a TIFF or zarr instead") from None
    iio.imwrite(tmp, frame, extension=".png")


def _is_png_labels_dir(path: Path) -> bool:
    return all(re.fullmatch(r"\d+\.png", p.name) or p.name.startswith(".") for p in path.iterdir())


def _labels_format(raw: str, fmt: str | None) -> str:
    if fmt is not None:
        fmt = fmt.lower().lstrip(".")
        fmt = {"tif": "tiff"}.get(fmt, fmt)
        if fmt not in ("tiff", "zarr", "png"):
            raise InputError(f"unknown labels format {fmt!r}; use tiff, png or zarr")
        return fmt
    path = Path(raw).expanduser()
    suffix = path.suffix.lower()
    if raw.endswith(("/", os.sep)) or suffix == "" or (path.is_dir() and suffix != ZARR_SUFFIX):
        return "png"
    if suffix in TIFF_SUFFIXES:
        return "tiff"
    if suffix == ZARR_SUFFIX:
        return "zarr"
    if suffix == ".png":
        return "png-file"
    raise InputError(
        f"cannot write labels to {path}: unknown suffix {suffix}; use .tif, .zarr, "
        "or a folder path (PNG sequence)"
    )


def write_labels(path: str | Path, labels: Any, format: str | None = None) -> Path:
    """Write labels atomically, one frame at a time.

    Parameters
    ----------
    path : str or Path
        Target. ``.tif``/``.tiff``: one zlib-compressed TIFF (pages = frames).
        ``.zarr``: a zarr array chunked one frame per chunk. No suffix, a trailing
        ``/`` or ``format="png"``: a folder of 16-bit PNGs ``00000.png``, ``00001.png``...
        ``.png`` with 2-D labels: one 16-bit PNG.
    labels : array-like
        (T, Y, X) or (Y, X) non-negative integer ids (numpy, dask or zarr; bool and
        whole-number floats are accepted). Never converted whole to numpy.
    format : {"tiff", "png", "zarr"}, optional
        Overrides the choice by suffix.

    Returns
    -------
    Path
        The written path.

    Notes
    -----
    Output dtype: uint16 if every id is < 65536, else uint32 (TIFF, zarr; PNG refuses).
    The output is built in a temporary sibling that replaces ``path`` only when
    complete, so an error leaves an existing output untouched. An existing folder is
    replaced only if it looks like a labels output (PNG sequence, zarr).

    Raises
    ------
    InputError
        Wrong dimensions, non-integer/negative/NaN values, unknown suffix, or a
        folder in the way that is not a labels output.
    """
    fmt = _labels_format(str(path), format)
    path = Path(path).expanduser()
    shape, _ = _check_label_array(labels)
    if fmt == "png-file" and len(shape) != 2:
        raise InputError(
            f"{path.name} can hold one frame but the labels have {shape[0]}; give a folder path "
            "(no suffix) for a PNG sequence"
        )
    if fmt == "png":
        with _atomic_target(path, _is_png_labels_dir) as tmp:
            _write_png_folder(tmp, labels, shape)
        return path
    if fmt == "png-file":
        with _atomic_target(path) as tmp:
            _write_png_file(tmp, labels)
        return path
    writer = _write_tiff if fmt == "tiff" else _write_zarr
    with _atomic_target(path, _is_zarr_dir if fmt == "zarr" else None) as tmp:
        try:
            writer(tmp, labels, shape, np.dtype(np.uint16))
        except _NeedsWiderType:  # rare: restart the whole write as uint32
            _remove(tmp)
            writer(tmp, labels, shape, np.dtype(np.uint32))
    return path


def write_ctc(folder: str | Path, labels: Any) -> Path:
    """Write labels in the Cell Tracking Challenge result layout.

    Parameters
    ----------
    folder : str or Path
        Output folder (e.g. ``01_RES``); gets ``mask000.tif``... (``mask0000.tif`` when
        there are 1000 frames or more), uint16, and ``res_track.txt``.
    labels : array-like
        (T, Y, X) integer ids; one id is one track.

    Notes
    -----
    ``res_track.txt`` lists ``id first_frame last_frame 0`` per id (no parents); an id
    that disappears and comes back is not split into two tracks.
    """
    import tifffile

    folder = Path(folder).expanduser()
    shape, _ = _check_label_array(labels)
    if len(shape) != 3:
        raise InputError(f"CTC output needs (T, Y, X) labels, got shape {shape}")
    digits = 3 if shape[0] <= 1000 else 4
    span: dict[int, list[int]] = {}

    def is_ctc(p: Path) -> bool:
        return all(re.fullmatch(r"mask\d+\.tif|res_track\.txt", c.name) for c in p.iterdir())

    with _atomic_target(folder, is_ctc) as tmp:
        tmp.mkdir()
        for t, frame in enumerate(_label_frames(labels)):
            try:
                frame = _checked_frame(frame, t, np.dtype(np.uint16))
            except _NeedsWiderType:
                raise InputError("CTC masks are 16-bit: at most 65535 objects") from None
            tifffile.imwrite(tmp / f"mask{t:0{digits}d}.tif", frame, compression="zlib")
            for obj in np.unique(frame)[1:] if frame.size else ():
                span.setdefault(int(obj), [t, t])[1] = t
        lines = [f"{obj} {a} {b} 0" for obj, (a, b) in sorted(span.items())]
        (tmp / "res_track.txt").write_text("\n".join(lines) + ("\n" if lines else ""))
    return folder


# --------------------------------------------------------------------------------------
# sessions: prompts CSV + settings JSON
# --------------------------------------------------------------------------------------


@dataclass
class SavedSession:
    """What a session export holds, enough to replay it headlessly.

    Attributes
    ----------
    clicks : list of Click
        In file order (per object and frame, the order they were made).
    config : AnnotationConfig
    keyframes : dict[int, list[int]]
        Object id -> sorted frames the user annotated (masks there are the user's).
    image_path : str or None
        The annotated input.
    extra : dict
        Other keys of the settings JSON, kept for forward compatibility.
    """

    clicks: list[Click]
    config: AnnotationConfig = field(default_factory=AnnotationConfig)
    keyframes: dict[int, list[int]] = field(default_factory=dict)
    image_path: str | None = None
    extra: dict = field(default_factory=dict)


def session_paths(folder_or_stem: str | Path) -> tuple[Path, Path]:
    """(prompts CSV, settings JSON) paths of a session.

    A folder gives ``folder/session_prompts.csv`` + ``folder/session_settings.json``; a
    stem ``a/b`` gives ``a/b_prompts.csv`` + ``a/b_settings.json``; a CSV ``a/b.csv`` (or
    ``a/b_prompts.csv``) and a JSON ``a/b_settings.json`` point at their partner.
    """
    raw = str(folder_or_stem)
    path = Path(raw).expanduser()
    if path.is_dir() or raw.endswith(("/", os.sep)):
        path = path / SESSION_STEM
    suffix = path.suffix.lower()
    if suffix == ".csv":
        stem = path.stem[: -len("_prompts")] if path.stem.endswith("_prompts") else path.stem
        return path, path.with_name(f"{stem}_settings.json")
    if suffix == ".json":
        stem = path.stem[: -len("_settings")] if path.stem.endswith("_settings") else path.stem
        return path.with_name(f"{stem}_prompts.csv"), path
    return path.with_name(f"{path.name}_prompts.csv"), path.with_name(f"{path.name}_settings.json")


def _package_version() -> str:
    try:
        from importlib.metadata import version

        return version("napari-ois")
    except Exception:
        return "unknown"


def write_session(
    folder_or_stem: str | Path,
    clicks: Iterable[Click],
    config: AnnotationConfig | dict | None,
    *,
    image_path: str | Path | None = None,
    keyframes: dict[int, Iterable[int]] | None = None,
    extra: dict | None = None,
) -> tuple[Path, ...]:
    """Export a session: prompts CSV (the contract) + settings JSON, both written atomically.

    Parameters
    ----------
    folder_or_stem : str or Path
        See :func:`session_paths` for the file names.
    clicks : iterable of Click
        Written in the given order; none gives a header-only CSV.
    config : AnnotationConfig, dict or None
        None writes the CSV only.
    image_path : str or Path, optional
    keyframes : dict[int, iterable of int], optional
        Object id -> annotated frames; default: the frames that hold clicks, per object.
    extra : dict, optional
        More keys for the settings JSON.

    Returns
    -------
    tuple of Path
        (csv,) or (csv, json).
    """
    clicks = list(clicks)
    csv_path, json_path = session_paths(folder_or_stem)
    if keyframes is None:
        keyframes = {}
        for c in clicks:
            keyframes.setdefault(c.object_id, set()).add(c.frame)
    with _atomic_target(csv_path) as tmp:
        write_prompts(tmp, clicks)
    if config is None:
        return (csv_path,)
    if isinstance(config, dict):
        config = AnnotationConfig.from_json(json.dumps(config))
    settings = json.loads(config.to_json())
    settings.update(extra or {})
    settings.update({
        "format": "napari-ois-session",
        "version": SESSION_VERSION,
        "napari_ois_version": _package_version(),
        "image_path": None if image_path is None else str(image_path),
        "prompts": csv_path.name,
        "keyframes": {str(o): sorted(int(f) for f in fr) for o, fr in sorted(keyframes.items())},
    })
    with _atomic_target(json_path) as tmp:
        tmp.write_text(json.dumps(settings, indent=2) + "\n")
    return csv_path, json_path


def _read_prompts_allow_empty(path: Path) -> list[Click]:
    """Like :func:`read_prompts`, but a header-only file (a session without clicks) is []."""
    if path.is_file():
        try:
            lines = [ln.strip() for ln in path.read_text().splitlines() if ln.strip()]
        except UnicodeDecodeError:
            lines = None
        if lines is not None and len(lines) == 1:
            names = [n.strip() for n in lines[0].split(",")]
            if all(c in names for c in CSV_HEADER):
                return []
    return read_prompts(path)


def read_session(path: str | Path) -> SavedSession:
    """Load a session written by :func:`write_session` (or the prompts writer of the plugin).

    Parameters
    ----------
    path : str or Path
        The folder, the stem, the prompts CSV or the settings JSON.

    Returns
    -------
    SavedSession
        Missing settings JSON: the default config, no keyframes beyond the clicks'.

    Raises
    ------
    InputError
        No prompts file, a malformed prompts file or settings.
    """
    csv_path, json_path = session_paths(path)
    if not csv_path.is_file():
        raise InputError(f"session prompts file not found: {csv_path}")
    clicks = _read_prompts_allow_empty(csv_path)
    config, keyframes, image_path, extra = AnnotationConfig(), {}, None, {}
    if json_path.is_file():
        config = AnnotationConfig.from_json(json_path)
        raw = json.loads(json_path.read_text())
        known = {f for f in asdict(config)} | {"keyframes", "image_path"}
        try:
            keyframes = {int(o): sorted(int(f) for f in fr) for o, fr in raw.get("keyframes", {}).items()}
        except (TypeError, ValueError, AttributeError):
            raise InputError(f"settings {json_path}: keyframes must map object ids to frame lists") from None
        image_path = raw.get("image_path")
        extra = {k: v for k, v in raw.items() if k not in known}
    else:
        for c in clicks:
            keyframes.setdefault(c.object_id, [])
            if c.frame not in keyframes[c.object_id]:
                keyframes[c.object_id].append(c.frame)
        keyframes = {o: sorted(f) for o, f in keyframes.items()}
    return SavedSession(clicks, config, keyframes, image_path, extra)
