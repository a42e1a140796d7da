"""Labels that live on disk while a headless run writes them, frame by frame.

A propagation run finishes frames out of order (both directions, several
keyframes), so its labels go into a zarr array on disk, one chunk per frame; the
memory used does not grow with the number of frames. For a ``.zarr`` output that
array *is* the output (in a temporary sibling renamed into place at the end); for
TIFF and PNG outputs it is a scratch array next to the output, streamed into the
output frame by frame once the run is complete. Either way the output appears
atomically: an error or an interrupt leaves an existing output untouched.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from ..errors import InputError
from .atomic_target import atomic_write_target, remove_path, tmp_sibling
from .label_writers import is_ctc_dir, is_png_labels_dir, labels_format, write_labels
from .zarr_arrays import is_zarr_dir


class FrameAxisLabels:
    """The labels array a session expects, backed by an (N, Y, X) store of the walked frames.

    A session indexes labels like its image without channels, e.g. ``labels[t, z]``
    for a (T, Z, Y, X) image walked along Z at a held time point; only the walked
    frames are ever touched, so only they are stored.

    Parameters
    ----------
    store : array-like
        (N, Y, X) integer array (zarr on disk, or numpy), N = frames along the axis.
    label_shape : tuple of int
        Shape of the image without channels, e.g. (T, Z, Y, X); its last two are (Y, X).
    axis : int
        The walked axis among the leading (non-spatial) axes.
    """

    def __init__(self, store: Any, label_shape: tuple[int, ...], axis: int):
        self.store = store
        self.shape = tuple(int(s) for s in label_shape)
        self.dtype = np.dtype(store.dtype)
        self.ndim = len(self.shape)
        self._axis = axis
        self._leading = self.ndim - 2

    def _frame(self, key: Any) -> int:
        key = key if isinstance(key, tuple) else (key,)
        if self._leading == 0:
            if key not in ((), (Ellipsis,)):
                raise IndexError(f"a single image's labels take no frame index, got {key}")
            return 0
        if len(key) != self._leading or not all(isinstance(k, (int, np.integer)) for k in key):
            raise IndexError(f"labels are indexed by one frame (an int per leading axis), got {key}")
        return int(key[self._axis])

    def __getitem__(self, key: Any) -> np.ndarray:
        return np.asarray(self.store[self._frame(key)])

    def __setitem__(self, key: Any, value: np.ndarray) -> None:
        self.store[self._frame(key)] = value


def label_dtype(max_id: int) -> np.dtype:
    """uint16 when every id fits (what the writers produce), else uint32."""
    if max_id >= 2**32:
        raise InputError(f"object id {max_id} is above 2**32 - 1")
    return np.dtype(np.uint16 if max_id < 2**16 else np.uint32)


def _create_zarr(path: Path, shape: tuple[int, ...], dtype: np.dtype):
    import zarr

    return zarr.create_array(store=str(path), shape=shape, chunks=(1,) + shape[1:], dtype=dtype,
                             fill_value=0, overwrite=True)


@contextmanager
def streamed_labels(
    path: str | Path, n_frames: int, frame_shape: tuple[int, int], max_id: int, format: str | None = None
) -> Iterator[Any]:
    """Yield an on-disk (N, Y, X) zarr array to fill; on success it becomes the output ``path``.

    Parameters
    ----------
    path : str or Path
        Labels output as for :func:`~napari_ois.core.io.write_labels`: ``.tif``,
        ``.zarr``, a folder (PNG sequence) or ``.png`` (one frame).
    n_frames : int
        N, frames along the walked axis.
    frame_shape : tuple of int
        (Y, X).
    max_id : int
        Largest object id that will be written (chooses uint16 or uint32).
    format : {"tiff", "png", "zarr", "ctc"}, optional
        Overrides the choice by name (a suffix-less folder named ``*_RES`` is ``ctc``:
        ``maskNNN.tif`` + ``res_track.txt``).

    Raises
    ------
    InputError
        Unknown suffix, a folder in the way that is no labels output, a missing
        parent folder, or ids a PNG cannot hold: all checked before anything runs.
    """
    fmt = labels_format(str(path), format)
    path = Path(path).expanduser()
    shape = (int(n_frames), int(frame_shape[0]), int(frame_shape[1]))
    dtype = label_dtype(max_id)
    if fmt == "png-file" and n_frames != 1:
        raise InputError(f"{path.name} can hold one frame but the input has {n_frames}; give a folder "
                         "path (no suffix) for a PNG sequence")
    if fmt in ("png", "png-file", "ctc") and dtype != np.uint16:
        what = "PNG labels" if fmt != "ctc" else "Cell Tracking Challenge masks (uint16)"
        raise InputError(f"{what} hold at most 65535 objects; write a TIFF or zarr instead")
    if fmt == "zarr":
        with atomic_write_target(path, is_zarr_dir) as tmp:
            yield _create_zarr(tmp, shape, dtype)
        return
    if not path.parent.exists():
        raise InputError(f"output folder {path.parent} does not exist")
    if path.is_dir() and not ((fmt == "png" and is_png_labels_dir(path)) or (fmt == "ctc" and is_ctc_dir(path))):
        # Checked now, not after a long run (write_labels would refuse it then).
        raise InputError(f"refusing to replace folder {path}: it holds files that are not a labels output")
    # Scratch next to the output: long data stays on the output's disk, not in /tmp.
    scratch = tmp_sibling(path, "frames")
    scratch = scratch.with_name(scratch.name + ".zarr")
    try:
        store = _create_zarr(scratch, shape, dtype)
        yield store
        labels = store if fmt != "png-file" else store[0]
        write_labels(path, labels, format={"png-file": None}.get(fmt, fmt))
    finally:
        remove_path(scratch)
