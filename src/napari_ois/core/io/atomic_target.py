"""Atomic writing: outputs are built in a temporary sibling that replaces the target when complete.

An error therefore never leaves a half-written or clobbered output.
"""

from __future__ import annotations

import os
import shutil
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from ..errors import InputError


def tmp_sibling(path: Path, tag: str) -> Path:
    return path.with_name(f".{path.name}.{tag}-{os.getpid()}-{uuid.uuid4().hex[:8]}")


def remove_path(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink()


@contextmanager
def atomic_write_target(path: Path, replaceable=None) -> Iterator[Path]:
    """Yield a temporary sibling path; on success it replaces ``path``, on error it vanishes.

    A file is swapped with ``os.replace`` (atomic). A folder cannot be swapped in one
    step: the old one is renamed aside, the new one renamed in, then the old one deleted
    (restored if the second rename fails). ``replaceable(path)`` must accept an existing
    folder before it is replaced, so a wrong ``--out`` cannot wipe unrelated data.
    """
    path = Path(path)
    if path.is_dir() and (replaceable is None or not replaceable(path)):
        raise InputError(
            f"refusing to replace folder {path}: it holds files that are not a labels output"
        )
    if not path.parent.exists():
        raise InputError(f"output folder {path.parent} does not exist")
    tmp = tmp_sibling(path, "tmp")
    try:
        yield tmp
        if tmp.is_dir() or path.is_dir():
            old = tmp_sibling(path, "old")
            if path.exists():
                os.rename(path, old)
            try:
                os.rename(tmp, path)
            except BaseException:
                if old.exists():
                    os.rename(old, path)
                raise
            if old.exists():
                remove_path(old)
        else:
            os.replace(tmp, path)
    except BaseException:
        if tmp.exists():
            remove_path(tmp)
        raise
