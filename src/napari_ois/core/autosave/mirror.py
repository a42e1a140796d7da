"""The autosaved labels: a zarr array written one (Y, X) plane at a time, and the
array-like that routes a session's label writes to it.

Each plane is one zarr chunk, and zarr (>= 3.1.3) writes a chunk to a temporary file
that is renamed into place: a plane on disk is always some complete state of that
plane, never half of one, even when the process is killed mid-write.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from ..errors import InputError

PlaneKey = tuple[int, ...]


class LabelsZarr:
    """Labels of the annotated image on disk, chunked one (Y, X) plane per chunk.

    Parameters
    ----------
    path : str or Path
        The ``.zarr`` folder.
    shape, dtype : optional
        Create a new array of zeros with this shape (leading axes..., Y, X) and dtype;
        when None, open the existing one.
    """

    def __init__(self, path: str | Path, shape: tuple[int, ...] | None = None, dtype: Any = None):
        import zarr

        self.path = Path(path)
        if shape is not None:
            shape = tuple(int(s) for s in shape)
            chunks = (1,) * (len(shape) - 2) + shape[-2:]
            self.array = zarr.create_array(store=str(self.path), shape=shape, chunks=chunks,
                                           dtype=np.dtype(dtype), fill_value=0, overwrite=True)
        else:
            try:
                self.array = zarr.open_array(str(self.path), mode="r+")
            except Exception as exc:  # zarr raises several types for a missing/damaged array
                raise InputError(f"cannot open the autosaved labels {self.path}: {exc}") from None

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(int(s) for s in self.array.shape)

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.array.dtype)

    @property
    def leading_shape(self) -> tuple[int, ...]:
        """Shape of the non-spatial axes (time, depth): one plane per index."""
        return self.shape[:-2]

    def write_plane(self, key: PlaneKey, plane: np.ndarray) -> None:
        """Write one (Y, X) plane at the leading-axes index ``key`` (``()`` for 2-D labels)."""
        self.array[key if key else ...] = plane

    def read_plane(self, key: PlaneKey) -> np.ndarray:
        """The (Y, X) plane at ``key``."""
        return np.asarray(self.array[key if key else ...])

    def read_all(self) -> np.ndarray:
        """All labels as one numpy array, read plane by plane."""
        out = np.zeros(self.shape, dtype=self.dtype)
        for key in itertools.product(*(range(n) for n in self.leading_shape)):
            out[key] = self.read_plane(key)
        return out

    def copy_from(self, labels: Any) -> bool:
        """Write every non-empty plane of ``labels`` (same shape); True if any was non-empty."""
        any_content = False
        for key in itertools.product(*(range(n) for n in self.leading_shape)):
            plane = np.asarray(labels[key])
            if plane.any():
                self.write_plane(key, plane)
                any_content = True
        return any_content


def planes_touched(key: Any, leading_shape: tuple[int, ...]) -> Iterator[PlaneKey]:
    """The leading-axes indices of the planes that ``array[key] = value`` can change.

    Parameters
    ----------
    key : index
        Any numpy index into an array with leading axes ``leading_shape`` then (Y, X).
    leading_shape : tuple of int
    """
    if not isinstance(key, tuple):
        key = (key,)
    ellipsis = [i for i, k in enumerate(key) if k is Ellipsis]
    if ellipsis:  # the axes an ellipsis stands for are spanned whole
        key = key[: ellipsis[0]]
    ranges = []
    for axis, size in enumerate(leading_shape):
        k = key[axis] if axis < len(key) else slice(None)
        if isinstance(k, (int, np.integer)):
            ranges.append([int(k) % size])
        elif isinstance(k, slice):
            ranges.append(list(range(*k.indices(size))))
        else:  # an index array: the distinct indices it names
            ranges.append(sorted({int(i) % size for i in np.asarray(k).ravel()}))
    return itertools.product(*ranges)


class MirroredLabels:
    """A session's labels array whose writes are also reported per plane.

    Reads go to ``primary`` (numpy, or napari's layer data); after each write the
    planes it touched are passed to ``on_write(key)``, which the autosave uses to copy
    them to disk. The session keeps working on ``primary``: nothing else changes.

    Parameters
    ----------
    primary : array-like
        (leading axes..., Y, X) integer labels, written in place.
    on_write : callable
        ``on_write(key)`` with the leading-axes index of each written plane.
    """

    def __init__(self, primary: Any, on_write: Callable[[PlaneKey], None]):
        self.primary = primary
        self.on_write = on_write

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.primary.shape)

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.primary.dtype)

    @property
    def ndim(self) -> int:
        return len(self.primary.shape)

    def __len__(self) -> int:
        return len(self.primary)

    def __getitem__(self, key: Any) -> Any:
        return self.primary[key]

    def __setitem__(self, key: Any, value: Any) -> None:
        self.primary[key] = value
        for plane_key in planes_touched(key, self.shape[:-2]):
            self.on_write(plane_key)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return np.asarray(self.primary, dtype=dtype)
