"""Image inputs: single image files, folders of frames, TIFFs, zarr, and :func:`open_image_data`.

A TIFF is memory-mapped (or read through tifffile's zarr store when compressed), a
folder of frames is a dask array that reads one file per frame, a video is a dask
array over a :class:`~napari_ois.core.io.video.VideoReader`.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import InputError
from .frame_files import list_frame_files
from .frame_sequence import FrameSequence
from .labels import read_labels
from .suffixes import FRAME_SUFFIXES, IMAGE_SUFFIXES, TIFF_SUFFIXES, VIDEO_SUFFIXES, ZARR_SUFFIX
from .video import VideoReader
from .zarr_arrays import is_zarr_dir, open_zarr_array


class ImageSequence(FrameSequence):
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


def _open_zarr(path: Path):
    import dask.array as da

    arr = open_zarr_array(path)
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
    if suffix == ZARR_SUFFIX or (path.is_dir() and is_zarr_dir(path)):
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
