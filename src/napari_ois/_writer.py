"""npe2 writer contributions (thin over :mod:`napari_ois.core.io`).

Each writer has napari's single-layer signature ``(path, data, meta) -> list[str]`` and
returns the paths it wrote. Errors are :class:`~napari_ois.core.errors.InputError` with a
message napari shows as is; outputs are written atomically (nothing changes on error).
"""

from __future__ import annotations

from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .core.clicks import Click
from .core.config import AnnotationConfig
from .core.errors import InputError
from .core.io import write_labels, write_session

CONFIG_METADATA_KEY = "napari_ois_config"  # Points layer metadata key holding the settings


def _level0(data: Any) -> Any:
    """A multiscale Labels layer gives a list of levels: write the full resolution."""
    if isinstance(data, (list, tuple)):
        if not data:
            raise InputError("the labels layer is empty")
        return data[0]
    return data


def write_labels_tiff(path: str, data: Any, meta: dict) -> list[str]:
    """Labels layer (T, Y, X) or (Y, X) -> one uint16/uint32 zlib TIFF."""
    return [str(write_labels(path, _level0(data), format="tiff"))]


def write_labels_png(path: str, data: Any, meta: dict) -> list[str]:
    """Labels layer -> a folder of 16-bit PNGs ``00000.png``... ((Y, X) with ``.png``: one file).

    A ``.png`` suffix on a stack is dropped from the folder name (``labels.png`` ->
    folder ``labels``) because a folder is written.
    """
    data = _level0(data)
    target = Path(path)
    if target.suffix.lower() == ".png":
        if len(data.shape) == 2:
            return [str(write_labels(target, data))]
        target = target.with_suffix("")
    return [str(write_labels(target, data, format="png"))]


def write_labels_zarr(path: str, data: Any, meta: dict) -> list[str]:
    """Labels layer -> a zarr array, one frame per chunk."""
    return [str(write_labels(path, _level0(data), format="zarr"))]


def _column(features: Any, name: str, n: int) -> np.ndarray | None:
    """Column ``name`` of a DataFrame or dict of columns; None when there is no such column."""
    try:
        values = features[name] if features is not None else None
    except (KeyError, IndexError, TypeError):
        return None
    if values is None:
        return None
    values = np.asarray(values)
    if len(values) != n:
        raise InputError(f"prompts layer: feature {name!r} has {len(values)} values for {n} points")
    return values


def _config_from_metadata(metadata: Any) -> AnnotationConfig | None:
    raw = (metadata or {}).get(CONFIG_METADATA_KEY)
    if raw is None:
        return None
    if isinstance(raw, AnnotationConfig):
        return raw
    if is_dataclass(raw):
        raw = asdict(raw)
    if not isinstance(raw, dict):
        raise InputError(f"layer metadata {CONFIG_METADATA_KEY!r} must be a dict of settings")
    known = set(asdict(AnnotationConfig()))
    return AnnotationConfig(**{k: v for k, v in raw.items() if k in known}).validate()


def points_to_clicks(data: Any, features: Any) -> list[Click]:
    """Convert a prompts Points layer to clicks.

    Parameters
    ----------
    data : array-like, (N, D) float
        Point coordinates; the last two columns are y, x (pixels of the full frame).
    features : pandas.DataFrame or dict of columns, optional
        ``object_id`` (int, default 1), ``frame`` (int; default the third-last
        coordinate when D >= 3, else 0), ``positive`` (bool, default True).

    Returns
    -------
    list of Click
        In layer order.
    """
    coords = np.asarray(data, dtype=float)
    if coords.size == 0:
        return []
    if coords.ndim != 2 or coords.shape[1] < 2:
        raise InputError(f"prompts layer data must be (N, D>=2) coordinates, got shape {coords.shape}")
    n = coords.shape[0]
    frames = _column(features, "frame", n)
    if frames is None:  # the frame is the slider position the point was added at
        frames = np.rint(coords[:, -3]) if coords.shape[1] >= 3 else np.zeros(n)
    objects = _column(features, "object_id", n)
    objects = np.ones(n) if objects is None else objects
    positive = _column(features, "positive", n)
    positive = np.ones(n, bool) if positive is None else positive.astype(bool)
    try:
        frames, objects = frames.astype(int), objects.astype(int)
    except (TypeError, ValueError):
        raise InputError("prompts layer: features 'frame' and 'object_id' must be integers") from None
    return [
        Click(int(o), int(f), float(y), float(x), bool(p))
        for o, f, y, x, p in zip(objects, frames, coords[:, -2], coords[:, -1], positive)
    ]


def write_prompts_csv(path: str, data: Any, meta: dict) -> list[str]:
    """Prompts Points layer -> prompts CSV (``object_id,frame,y,x,positive``) [+ settings JSON].

    The settings JSON (``<stem>_settings.json`` next to the CSV, see
    :func:`napari_ois.core.io.session_paths`) is written when
    ``meta["metadata"]["napari_ois_config"]`` holds the session's AnnotationConfig.
    An empty layer writes a header-only CSV: ``read_session`` reads it back as no
    clicks, while the CLI (``read_prompts``) rejects it as holding no click.
    """
    target = Path(path)
    if target.suffix.lower() != ".csv":
        target = target.with_name(target.name + ".csv")
    clicks = points_to_clicks(data, meta.get("features"))
    config = _config_from_metadata(meta.get("metadata"))
    return [str(p) for p in write_session(target, clicks, config)]
