"""Labels writers (TIFF, zarr, PNG sequence or file, Cell Tracking Challenge layout).

They stream frame by frame and write atomically (see :mod:`.atomic_target`).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from ..errors import InputError
from .atomic_target import atomic_write_target, remove_path
from .suffixes import TIFF_SUFFIXES, ZARR_SUFFIX
from .zarr_arrays import is_zarr_dir


class _NeedsWiderType(Exception):
    """Internal: a frame holds ids >= 65536, restart the write as uint32."""


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
    if len(shape) == 2:
        data = next(frames)
    elif shape[-1] == 1:
        # tifffile mistakes the trailing 1 of a streamed (T, Y, 1) stack for a samples axis
        # and fails; frames one pixel wide are small, so it gets the whole stack instead.
        data = np.stack(list(frames))
    else:
        data = frames
    with tifffile.TiffWriter(tmp, bigtiff=nbytes > 2**31) as tw:
        tw.write(data, shape=shape, dtype=out_dtype,
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


def is_png_labels_dir(path: Path) -> bool:
    return all(re.fullmatch(r"\d+\.png", p.name) or p.name.startswith(".") for p in path.iterdir())


#: Name ending of a Cell Tracking Challenge result folder (``01_RES``, ``02_RES``...).
CTC_FOLDER_SUFFIX = "_RES"


def is_ctc_dir(path: Path) -> bool:
    """Whether a folder holds only a CTC result (``maskNNN.tif``, ``res_track.txt``): safe to replace."""
    return all(re.fullmatch(r"mask\d+\.tif|res_track\.txt", c.name) for c in path.iterdir())


def labels_format(raw: str, fmt: str | None) -> str:
    """The format ``write_labels`` writes: ``fmt`` if given, else read off the path ``raw``."""
    if fmt is not None:
        fmt = fmt.lower().lstrip(".")
        fmt = {"tif": "tiff"}.get(fmt, fmt)
        if fmt not in ("tiff", "zarr", "png", "ctc"):
            raise InputError(f"unknown labels format {fmt!r}; use tiff, png, zarr or ctc")
        return fmt
    path = Path(raw).expanduser()
    suffix = path.suffix.lower()
    # Checked before the PNG-folder rule: CTC tools expect their results in <sequence>_RES,
    # so that name alone is taken as asking for the CTC layout.
    if suffix == "" and path.name.endswith(CTC_FOLDER_SUFFIX):
        return "ctc"
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
        f"a folder path (PNG sequence) or a folder named *{CTC_FOLDER_SUFFIX} (Cell Tracking Challenge)"
    )


def write_labels(path: str | Path, labels: Any, format: str | None = None) -> Path:
    """Write labels atomically, one frame at a time.

    Parameters
    ----------
    path : str or Path
        Target. ``.tif``/``.tiff``: one zlib-compressed TIFF (pages = frames).
        ``.zarr``: a zarr array chunked one frame per chunk. No suffix, a trailing
        ``/`` or ``format="png"``: a folder of 16-bit PNGs ``00000.png``, ``00001.png``...
        ``.png`` with 2-D labels (or one frame): one 16-bit PNG.
        A folder whose name ends in ``_RES`` (e.g. ``01_RES``) or ``format="ctc"``:
        the Cell Tracking Challenge result layout, see :func:`write_ctc`.
    labels : array-like
        (T, Y, X) or (Y, X) non-negative integer ids (numpy, dask or zarr; bool and
        whole-number floats are accepted); (T, Y, X) only for CTC. Never converted
        whole to numpy.
    format : {"tiff", "png", "zarr", "ctc"}, optional
        Overrides the choice by suffix.

    Returns
    -------
    Path
        The written path.

    Notes
    -----
    Output dtype: uint16 if every id is < 65536, else uint32 (TIFF, zarr; PNG and CTC
    refuse). The output is built in a temporary sibling that replaces ``path`` only when
    complete, so an error leaves an existing output untouched. An existing folder is
    replaced only if it looks like a labels output (PNG sequence, zarr, CTC folder).

    Raises
    ------
    InputError
        Wrong dimensions, non-integer/negative/NaN values, unknown suffix, or a
        folder in the way that is not a labels output.
    """
    fmt = labels_format(str(path), format)
    path = Path(path).expanduser()
    shape, _ = _check_label_array(labels)
    if fmt == "png-file" and len(shape) != 2 and shape[0] != 1:
        raise InputError(
            f"{path.name} can hold one frame but the labels have {shape[0]}; give a folder path "
            "(no suffix) for a PNG sequence"
        )
    if fmt == "ctc":
        return write_ctc(path, labels)
    if fmt == "png":
        with atomic_write_target(path, is_png_labels_dir) as tmp:
            _write_png_folder(tmp, labels, shape)
        return path
    if fmt == "png-file":
        with atomic_write_target(path) as tmp:
            _write_png_file(tmp, labels)
        return path
    writer = _write_tiff if fmt == "tiff" else _write_zarr
    with atomic_write_target(path, is_zarr_dir if fmt == "zarr" else None) as tmp:
        try:
            writer(tmp, labels, shape, np.dtype(np.uint16))
        except _NeedsWiderType:  # rare: restart the whole write as uint32
            remove_path(tmp)
            writer(tmp, labels, shape, np.dtype(np.uint32))
    return path


def write_ctc(folder: str | Path, labels: Any) -> Path:
    """Write labels in the Cell Tracking Challenge result layout.

    Parameters
    ----------
    folder : str or Path
        Output folder (e.g. ``01_RES``); gets one uint16 TIFF per frame, ``mask000.tif``,
        ``mask001.tif``... (four digits when there are more than 1000 frames), and
        ``res_track.txt``.
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

    with atomic_write_target(folder, is_ctc_dir) as tmp:
        tmp.mkdir()
        for t, frame in enumerate(_label_frames(labels)):
            try:
                frame = _checked_frame(frame, t, np.dtype(np.uint16))
            except _NeedsWiderType:
                raise InputError("CTC masks are 16-bit: at most 65535 objects") from None
            tifffile.imwrite(tmp / f"mask{t:0{digits}d}.tif", frame, compression="zlib")
            ids = np.unique(frame)
            for obj in ids[ids > 0]:  # not ids[1:]: a frame may have no background pixel
                span.setdefault(int(obj), [t, t])[1] = t
        lines = [f"{obj} {a} {b} 0" for obj, (a, b) in sorted(span.items())]
        (tmp / "res_track.txt").write_text("\n".join(lines) + ("\n" if lines else ""))
    return folder
