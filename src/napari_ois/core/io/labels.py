"""Reading labels / keyframe masks: TIFFs, folders of label images, single images, zarr."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import InputError
from .frame_files import list_frame_files
from .suffixes import TIFF_SUFFIXES, ZARR_SUFFIX
from .zarr_arrays import is_zarr_dir, open_zarr_array


def label_image_file(path: Path) -> np.ndarray:
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


def as_labels(data: np.ndarray, source: Path) -> np.ndarray:
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
    if path.suffix.lower() == ZARR_SUFFIX or (path.is_dir() and is_zarr_dir(path)):
        data = np.asarray(open_zarr_array(path)[...])
    elif path.is_dir():
        files = list_frame_files(path, suffixes=(".png",) + TIFF_SUFFIXES)
        if not files:
            raise InputError(f"folder {path} holds no label images (.png or .tif)")
        frames = []
        for f in files:
            frame = label_image_file(f)
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
        data = label_image_file(path)
    else:
        raise InputError(f"cannot read labels from {path}: expected a TIFF, PNG(s) or .zarr")
    if data.ndim not in (2, 3):
        raise InputError(f"labels {path} have shape {data.shape}; expected (T, Y, X) or (Y, X)")
    return as_labels(data, path)
