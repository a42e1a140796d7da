"""The ``objects`` Labels layer on a zarr array on disk, for data too long to label in memory.

A (T, Y, X) uint32 numpy array of 1,000 frames of 480x854 is 1.6 GB; on disk, one
zstd-compressed chunk per (Y, X) plane, it is small (0.5 MB measured with one object on
every frame; zarr stores no chunk for an empty plane), and napari reads only the plane
on screen. The session, the autosave,
napari's brush and the export all index the labels one plane at a time, so they work
on either array.

Where: a private folder ``napari-ois-objects-XXXX`` in the system temp folder (or a
folder the caller names), removed when the layer leaves the viewer or when Python
exits. It is a working copy, not the saved labels: those are the autosave's own
``labels.zarr`` in ``<data>.ois/``. The working copy cannot live in that folder, because
*Start fresh* renames the folder (``.previous``) and a new autosave needs it empty.
"""

from __future__ import annotations

import shutil
import tempfile
import weakref
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError

#: Labels larger than this (uint32 bytes) go on disk unless the widget says otherwise.
DEFAULT_LABELS_ON_DISK_MB = 512
LABELS_DTYPE = np.dtype(np.uint32)
#: ``layer.metadata`` key holding the folder of a layer whose labels this module made.
FOLDER_KEY = "napari_ois_labels_folder"
_ARRAY_NAME = "labels.zarr"

# Folder -> its ScratchLabels, so the folder lives as long as the layer does (not the widget).
_open: dict[str, "ScratchLabels"] = {}


def labels_nbytes(shape: tuple[int, ...]) -> int:
    """Bytes of uint32 labels of ``shape`` held in memory."""
    return int(np.prod(shape, dtype=np.int64)) * LABELS_DTYPE.itemsize


def goes_on_disk(shape: tuple[int, ...], on_disk_above_mb: float | None) -> bool:
    """Whether labels of ``shape`` are put on disk: above ``on_disk_above_mb`` MiB (0 = always, None = never)."""
    if on_disk_above_mb is None:
        return False
    return labels_nbytes(shape) > float(on_disk_above_mb) * 2**20


class ScratchLabels:
    """A zeroed uint32 zarr array of ``shape`` in a private temporary folder.

    Parameters
    ----------
    shape : tuple of int
        (leading axes..., Y, X), e.g. (T, Y, X) or (T, Z, Y, X); chunked (1, ..., 1, Y, X).
    parent : str or Path, optional
        Where the private folder is made; the system temp folder when None.

    Raises
    ------
    InputError
        The folder or the array cannot be created (read-only or missing parent).
    """

    def __init__(self, shape: tuple[int, ...], parent: str | Path | None = None):
        import zarr

        shape = tuple(int(s) for s in shape)
        if len(shape) < 2:
            raise InputError(f"labels need at least (Y, X), got shape {shape}")
        try:
            if parent is not None:
                Path(parent).expanduser().mkdir(parents=True, exist_ok=True)
            self.folder = Path(tempfile.mkdtemp(prefix="napari-ois-objects-",
                                                dir=None if parent is None else Path(parent).expanduser()))
        except OSError as exc:
            raise InputError(f"cannot keep the labels on disk in {parent or tempfile.gettempdir()}: "
                             f"{exc.strerror or exc}") from None
        # Removed with this object, or at exit at the latest (weakref.finalize runs atexit).
        self._finalizer = weakref.finalize(self, shutil.rmtree, str(self.folder), True)
        try:
            # One chunk per plane: napari reads, and the session writes, one frame at a time.
            # zarr's default codec (zstd) compresses; all-zero planes are not stored at all.
            self.array = zarr.create_array(
                store=str(self.folder / _ARRAY_NAME), shape=shape, chunks=(1,) * (len(shape) - 2) + shape[-2:],
                dtype=LABELS_DTYPE, fill_value=0,
            )
        except Exception as exc:  # zarr raises several types for an unwritable store
            self.close()
            raise InputError(f"cannot create the on-disk labels in {self.folder}: {exc}") from None
        _open[str(self.folder)] = self

    @property
    def closed(self) -> bool:
        return not self._finalizer.alive

    def close(self) -> None:
        """Delete the folder and the array in it (idempotent)."""
        _open.pop(str(self.folder), None)
        self._finalizer()


def scratch_of(layer: Any) -> ScratchLabels | None:
    """The :class:`ScratchLabels` behind a Labels layer made by :func:`add_disk_labels_layer`, else None."""
    folder = getattr(layer, "metadata", {}).get(FOLDER_KEY)
    scratch = _open.get(folder) if folder else None
    return scratch if scratch is not None and layer.data is scratch.array else None


def add_disk_labels_layer(viewer: Any, shape: tuple[int, ...], parent: str | Path | None = None,
                          **layer_kwargs: Any):
    """Add a Labels layer of zeros backed by a new :class:`ScratchLabels`.

    The folder is deleted when the layer is removed from ``viewer`` (and at exit).

    Parameters
    ----------
    viewer : napari.Viewer
    shape : tuple of int
        (leading axes..., Y, X).
    parent : str or Path, optional
        Parent of the private folder (system temp when None).
    **layer_kwargs
        Passed to ``viewer.add_labels`` (name, scale, colormap, ...).
    """
    scratch = ScratchLabels(shape, parent)
    metadata = {**layer_kwargs.pop("metadata", {}), FOLDER_KEY: str(scratch.folder)}
    layer = viewer.add_labels(scratch.array, metadata=metadata, **layer_kwargs)
    layer_ref = weakref.ref(layer)

    def on_removed(event) -> None:
        if event.value is layer_ref():
            viewer.layers.events.removed.disconnect(on_removed)
            scratch.close()

    viewer.layers.events.removed.connect(on_removed)
    return layer
