"""An append-only journal of JSON records, one per line, each on disk before the call returns.

Every record is written with one ``os.write`` of ``json + "\\n"`` and ``os.fsync``'d, so
after a crash (or a kill) the file holds every record that was appended, plus at most
one torn last line. Reading tolerates that torn line with a warning; opening the
journal for appending cuts it off first, so the next record starts on a line of its own.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError


@dataclass
class JournalContents:
    """What :func:`read_journal` found.

    Attributes
    ----------
    records : list of dict
        The complete records, in the order they were appended.
    warnings : list of str
        Human-readable notes about what was skipped (a torn last line, a damaged line).
    valid_bytes : int
        Length of the file up to the end of the last complete line: where the next
        record goes when appending (anything after it is a torn record).
    """

    records: list[dict]
    warnings: list[str] = field(default_factory=list)
    valid_bytes: int = 0


def read_journal(path: str | Path) -> JournalContents:
    """Read a journal written by :class:`Journal`.

    A last line without its newline, or one that is not valid JSON, is a record that
    was being written when the process died: it is skipped with a warning. A damaged
    line in the middle (not expected from :class:`Journal`) is skipped with a warning too.

    Raises
    ------
    InputError
        The file is missing or unreadable.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read the autosave journal {path}: {exc}") from None
    lines = raw.split(b"\n")
    tail = lines.pop()  # after the last newline: b"" when the file ends cleanly
    contents = JournalContents(records=[])
    offset = 0
    for number, line in enumerate(lines, start=1):
        offset += len(line) + 1
        if not line.strip():
            contents.valid_bytes = offset
            continue
        try:
            record = json.loads(line)
            if not isinstance(record, dict):
                raise ValueError("not a JSON object")
        except (ValueError, UnicodeDecodeError):
            contents.warnings.append(f"{path.name}, line {number}: damaged record skipped")
            contents.valid_bytes = offset
            continue
        contents.records.append(record)
        contents.valid_bytes = offset
    if tail:
        contents.warnings.append(
            f"{path.name} ends with a torn record ({len(tail)} bytes, the process stopped while "
            "writing it); it was ignored"
        )
    return contents


class Journal:
    """Append records to a journal file, each flushed and fsync'd before returning.

    Parameters
    ----------
    path : str or Path
        The file; created when missing. An existing file is first cut back to its last
        complete line (see :func:`read_journal`), so a torn record never glues onto the
        next one.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if self.path.exists():
            valid = read_journal(self.path).valid_bytes
            if valid != self.path.stat().st_size:
                os.truncate(self.path, valid)
        self._fd: int | None = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._lock = threading.Lock()

    @property
    def closed(self) -> bool:
        return self._fd is None

    def append(self, record: dict[str, Any]) -> None:
        """Write one record as a line and fsync it.

        Raises
        ------
        OSError
            The disk refused the write (full, removed); the caller decides what to do.
        ValueError
            The journal is closed.
        """
        line = (json.dumps(record, separators=(",", ":")) + "\n").encode()
        with self._lock:
            if self._fd is None:
                raise ValueError(f"journal {self.path} is closed")
            # One write call per record: a kill leaves it whole or as the torn last line.
            written = os.write(self._fd, line)
            while written < len(line):  # short writes are rare but allowed by POSIX
                written += os.write(self._fd, line[written:])
            os.fsync(self._fd)

    def close(self) -> None:
        """Close the file (idempotent)."""
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
