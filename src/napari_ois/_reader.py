"""npe2 reader contribution: videos opened lazily (thin over :mod:`napari_ois.core.io`).

napari's builtin reader also claims video suffixes but decodes through imageio; this one
gives a dask array of shape (T, Y, X, 3) uint8 with one frame per chunk, decoded by
ffmpeg only when napari (or a propagation worker) looks at a frame, with frame-accurate
seeking. Folders, TIFFs and zarr are left to napari's builtin reader.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from .core.io import VIDEO_SUFFIXES, open_image_data

LayerData = tuple[Any, dict, str]


def _single_path(path: str | list[str] | tuple[str, ...]) -> str | None:
    """napari passes one path or a list; this reader takes exactly one video."""
    if isinstance(path, (list, tuple)):
        return str(path[0]) if len(path) == 1 else None
    return str(path)


def get_reader(path: str | list[str]) -> Callable[[Any], list[LayerData]] | None:
    """Return :func:`read_video` when ``path`` is one video file, else None (napari tries others)."""
    single = _single_path(path)
    if single is None or Path(single).suffix.lower() not in VIDEO_SUFFIXES:
        return None
    return read_video


def read_video(path: str | list[str]) -> list[LayerData]:
    """Open a video as one lazy RGB image layer.

    Returns
    -------
    list of (data, kwargs, "image")
        ``data`` is a dask array (T, Y, X, 3) uint8, one frame per chunk; ``kwargs`` has
        ``name`` (the file stem), ``rgb=True``, ``axis_labels=("t", "y", "x")``, fixed
        ``contrast_limits`` (so napari does not scan frames to guess them) and
        ``metadata["napari_ois"]`` = the
        :func:`~napari_ois.core.io.open_image_data` metadata (kind, fps, path).

    Raises
    ------
    napari_ois.core.errors.InputError
        Unreadable, truncated or damaged video (napari shows the message).
    """
    single = _single_path(path)
    if single is None:
        raise ValueError("read_video takes a single video path")
    data, meta = open_image_data(single)
    kwargs = {
        "name": Path(single).stem,
        "rgb": True,
        "axis_labels": ("t", "y", "x"),  # a video's first axis is always time
        "contrast_limits": [0, 255],
        "metadata": {"napari_ois": meta},
    }
    return [(data, kwargs, "image")]
