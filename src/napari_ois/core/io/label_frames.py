"""Keyframe labels read one frame at a time, so a long keyframe stack is never loaded whole.

Same ids as :func:`~napari_ois.core.io.read_labels` gives for the whole stack: bool
becomes 0/1, whole-number floats become integers, and an 8-bit stack whose only
non-zero value is 255 (a black/white mask) gives id 1 - decided over the whole
stack by a first, streaming pass, as ``read_labels`` decides it over the array.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from .frame_files import list_frame_files
from .labels import as_labels, label_image_file, read_labels
from .suffixes import TIFF_SUFFIXES, ZARR_SUFFIX
from .zarr_arrays import is_zarr_dir, open_zarr_array


class LabelFrames:
    """(T, Y, X) label ids of a TIFF stack, zarr array or folder of label images, read per frame.

    Parameters
    ----------
    path : str or Path
        As accepted by :func:`~napari_ois.core.io.read_labels`. Uncompressed TIFFs are
        memory-mapped, compressed ones read page by page, zarr chunk by chunk, folders
        file by file; anything else (RGB-stored TIFFs, single PNGs) is read whole.

    Attributes
    ----------
    shape : tuple of int
        (T, Y, X), or (Y, X) for a single image.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path).expanduser()
        if not self.path.exists():
            raise InputError(f"labels not found: {self.path}")
        self._files: list[Path] | None = None
        self._pages = None
        self._tif = None
        self._data: Any = None
        if self.path.suffix.lower() == ZARR_SUFFIX or (self.path.is_dir() and is_zarr_dir(self.path)):
            self._data = open_zarr_array(self.path)
        elif self.path.is_dir():
            self._files = list_frame_files(self.path, suffixes=(".png",) + TIFF_SUFFIXES)
            if not self._files:
                raise InputError(f"folder {self.path} holds no label images (.png or .tif)")
        elif self.path.suffix.lower() in TIFF_SUFFIXES:
            self._data = self._open_tiff()
        if self._data is None and self._files is None and self._pages is None:
            self._data = read_labels(self.path)  # small or unusual layouts: the whole file
        self.shape = self._shape()
        if len(self.shape) not in (2, 3):
            raise InputError(f"labels {self.path} have shape {self.shape}; expected (T, Y, X) or (Y, X)")
        self.dtype = np.dtype(self._raw(0).dtype)
        self._white_is_one = self.dtype == np.uint8 and self._only_zero_and_255()

    def _open_tiff(self):
        import tifffile

        try:
            with tifffile.TiffFile(self.path) as tif:
                series = tif.series[0]
                axes, shape = series.axes, tuple(series.shape)
                pages = len(series.pages)
        except Exception as exc:
            raise InputError(f"cannot read labels {self.path}: {exc}") from None
        if axes.endswith("S") or len(shape) not in (2, 3):
            return None  # colour-stored or unusual: read whole (read_labels checks it)
        try:
            data = tifffile.memmap(self.path, mode="r")
            if tuple(data.shape) == shape:
                return data
        except Exception:  # compressed: pages one by one instead
            pass
        if len(shape) == 3 and pages == shape[0]:
            self._pages = shape
            # Kept open: parsing a long stack's page headers again for every frame costs O(N).
            self._tif = tifffile.TiffFile(self.path)
        return None

    def _shape(self) -> tuple[int, ...]:
        if self._files is not None:
            first = label_image_file(self._files[0])
            return (len(self._files),) + tuple(first.shape)
        if self._pages is not None:
            return tuple(self._pages)
        return tuple(int(s) for s in self._data.shape)

    def __len__(self) -> int:
        return self.shape[0] if len(self.shape) == 3 else 1

    def _raw(self, t: int) -> np.ndarray:
        if self._files is not None:
            frame = label_image_file(self._files[t])
            if frame.shape != tuple(self.shape[1:]):
                raise InputError(f"label image {self._files[t].name} has shape {frame.shape}, "
                                 f"but the first one has {self.shape[1:]}; all frames must have the same size")
            return frame
        if self._pages is not None:
            return self._tif.series[0].pages[t].asarray()
        if len(self._data.shape) == 2:
            return np.asarray(self._data[...])
        return np.asarray(self._data[t])

    def _only_zero_and_255(self) -> bool:
        seen: set[int] = set()
        for t in range(len(self)):
            seen |= set(np.unique(self._raw(t)).tolist())
            if not seen <= {0, 255}:
                return False
        return 255 in seen

    def close(self) -> None:
        """Close the TIFF kept open for page reads (reading again is an error then)."""
        if self._tif is not None:
            self._tif.close()
            self._tif = None

    def max_id_bound(self) -> int:
        """An upper bound of the ids: the dtype's top for 8/16-bit data, else the scanned maximum."""
        if self._white_is_one:
            return 1
        if self.dtype.kind in "bu" and self.dtype.itemsize <= 2:
            return int(np.iinfo(self.dtype).max) if self.dtype.kind == "u" else 1
        return max((int(self[t].max()) for t in range(len(self))), default=0)

    def __getitem__(self, t: int) -> np.ndarray:
        """Frame ``t`` as (Y, X) non-negative integer ids (a 2-D file has only frame 0)."""
        raw = self._raw(int(t))
        if self._white_is_one:
            return (raw > 0).astype(np.uint8)
        if raw.dtype == np.uint8:
            return raw  # as_labels' 0/255 rule is decided over the stack, above
        return as_labels(raw, self.path)
