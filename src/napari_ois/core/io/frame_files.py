"""Listing the image files of a folder of frames in frame order."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

from .suffixes import FRAME_SUFFIXES


def _natural_key(path: Path) -> list:
    """Sort key that orders ``frame2`` before ``frame10`` (zero-padded names sort alike)."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", path.name)]


def list_frame_files(folder: str | Path, suffixes: Sequence[str] = FRAME_SUFFIXES) -> list[Path]:
    """Image files of ``folder`` in frame order (natural sort by name; hidden files skipped)."""
    folder = Path(folder)
    files = [p for p in folder.iterdir()
             if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in suffixes]
    return sorted(files, key=_natural_key)
