"""Sessions: the prompts CSV (the contract) plus a settings JSON, enough to replay annotation."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable

from ..clicks import CSV_HEADER, Click, read_prompts, write_prompts
from ..config import AnnotationConfig
from ..errors import InputError
from .atomic_target import atomic_write_target


SESSION_VERSION = 1
SESSION_STEM = "session"  # file stem used when a session is written into a folder


@dataclass
class SavedSession:
    """What a session export holds, enough to replay it headlessly.

    Attributes
    ----------
    clicks : list of Click
        In file order (per object and frame, the order they were made).
    config : AnnotationConfig
    keyframes : dict[int, list[int]]
        Object id -> sorted frames the user annotated (masks there are the user's).
    image_path : str or None
        The annotated input.
    extra : dict
        Other keys of the settings JSON, kept for forward compatibility.
    """

    clicks: list[Click]
    config: AnnotationConfig = field(default_factory=AnnotationConfig)
    keyframes: dict[int, list[int]] = field(default_factory=dict)
    image_path: str | None = None
    extra: dict = field(default_factory=dict)


def session_paths(folder_or_stem: str | Path) -> tuple[Path, Path]:
    """(prompts CSV, settings JSON) paths of a session.

    A folder gives ``folder/session_prompts.csv`` + ``folder/session_settings.json``; a
    stem ``a/b`` gives ``a/b_prompts.csv`` + ``a/b_settings.json``; a CSV ``a/b.csv`` (or
    ``a/b_prompts.csv``) and a JSON ``a/b_settings.json`` point at their partner.
    """
    raw = str(folder_or_stem)
    path = Path(raw).expanduser()
    if path.is_dir() or raw.endswith(("/", os.sep)):
        path = path / SESSION_STEM
    suffix = path.suffix.lower()
    if suffix == ".csv":
        stem = path.stem[: -len("_prompts")] if path.stem.endswith("_prompts") else path.stem
        return path, path.with_name(f"{stem}_settings.json")
    if suffix == ".json":
        stem = path.stem[: -len("_settings")] if path.stem.endswith("_settings") else path.stem
        return path.with_name(f"{stem}_prompts.csv"), path
    return path.with_name(f"{path.name}_prompts.csv"), path.with_name(f"{path.name}_settings.json")


def _package_version() -> str:
    try:
        from importlib.metadata import version

        return version("napari-ois")
    except Exception:
        return "unknown"


def write_session(
    folder_or_stem: str | Path,
    clicks: Iterable[Click],
    config: AnnotationConfig | dict | None,
    *,
    image_path: str | Path | None = None,
    keyframes: dict[int, Iterable[int]] | None = None,
    extra: dict | None = None,
) -> tuple[Path, ...]:
    """Export a session: prompts CSV (the contract) + settings JSON, both written atomically.

    Parameters
    ----------
    folder_or_stem : str or Path
        See :func:`session_paths` for the file names.
    clicks : iterable of Click
        Written in the given order; none gives a header-only CSV.
    config : AnnotationConfig, dict or None
        None writes the CSV only.
    image_path : str or Path, optional
    keyframes : dict[int, iterable of int], optional
        Object id -> annotated frames; default: the frames that hold clicks, per object.
    extra : dict, optional
        More keys for the settings JSON.

    Returns
    -------
    tuple of Path
        (csv,) or (csv, json).
    """
    clicks = list(clicks)
    csv_path, json_path = session_paths(folder_or_stem)
    if keyframes is None:
        keyframes = {}
        for c in clicks:
            keyframes.setdefault(c.object_id, set()).add(c.frame)
    with atomic_write_target(csv_path) as tmp:
        write_prompts(tmp, clicks)
    if config is None:
        return (csv_path,)
    if isinstance(config, dict):
        config = AnnotationConfig.from_json(json.dumps(config))
    settings = json.loads(config.to_json())
    settings.update(extra or {})
    settings.update({
        "format": "napari-ois-session",
        "version": SESSION_VERSION,
        "napari_ois_version": _package_version(),
        "image_path": None if image_path is None else str(image_path),
        "prompts": csv_path.name,
        "keyframes": {str(o): sorted(int(f) for f in fr) for o, fr in sorted(keyframes.items())},
    })
    with atomic_write_target(json_path) as tmp:
        tmp.write_text(json.dumps(settings, indent=2) + "\n")
    return csv_path, json_path


def _read_prompts_allow_empty(path: Path) -> list[Click]:
    """Like :func:`read_prompts`, but a header-only file (a session without clicks) is []."""
    if path.is_file():
        try:
            lines = [ln.strip() for ln in path.read_text().splitlines() if ln.strip()]
        except UnicodeDecodeError:
            lines = None
        if lines is not None and len(lines) == 1:
            names = [n.strip() for n in lines[0].split(",")]
            if all(c in names for c in CSV_HEADER):
                return []
    return read_prompts(path)


def read_session(path: str | Path) -> SavedSession:
    """Load a session written by :func:`write_session` (or the prompts writer of the plugin).

    Parameters
    ----------
    path : str or Path
        The folder, the stem, the prompts CSV or the settings JSON.

    Returns
    -------
    SavedSession
        Missing settings JSON: the default config, no keyframes beyond the clicks'.

    Raises
    ------
    InputError
        No prompts file, a malformed prompts file or settings.
    """
    csv_path, json_path = session_paths(path)
    if not csv_path.is_file():
        raise InputError(f"session prompts file not found: {csv_path}")
    clicks = _read_prompts_allow_empty(csv_path)
    config, keyframes, image_path, extra = AnnotationConfig(), {}, None, {}
    if json_path.is_file():
        config = AnnotationConfig.from_json(json_path)
        raw = json.loads(json_path.read_text())
        known = {f for f in asdict(config)} | {"keyframes", "image_path"}
        try:
            keyframes = {int(o): sorted(int(f) for f in fr) for o, fr in raw.get("keyframes", {}).items()}
        except (TypeError, ValueError, AttributeError):
            raise InputError(f"settings {json_path}: keyframes must map object ids to frame lists") from None
        image_path = raw.get("image_path")
        extra = {k: v for k, v in raw.items() if k not in known}
    else:
        for c in clicks:
            keyframes.setdefault(c.object_id, [])
            if c.frame not in keyframes[c.object_id]:
                keyframes[c.object_id].append(c.frame)
        keyframes = {o: sorted(f) for o, f in keyframes.items()}
    return SavedSession(clicks, config, keyframes, image_path, extra)
