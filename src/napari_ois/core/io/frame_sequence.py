"""Base of the lazily indexed frame sequences (a video, a folder of files)."""

from __future__ import annotations

from typing import Any

import numpy as np


class FrameSequence:
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
