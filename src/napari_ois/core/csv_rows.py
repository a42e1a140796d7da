"""The CSV files of the prompt contracts (prompts, boxes): a required header, rows with line numbers."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Sequence

from .errors import InputError


def read_csv_rows(path: str | Path, header: Sequence[str], kind: str) -> list[tuple[int, dict[str, str]]]:
    """``(line number, row)`` of a CSV whose header must hold the columns ``header``.

    Line numbers count from 1 at the header, as a text editor or spreadsheet shows them;
    cells are stripped of blanks. ``kind`` names the file in errors ("prompts", "boxes").

    Raises
    ------
    InputError
        The file is missing, empty, not a text CSV or unreadable as CSV, or lacks a
        column of ``header``.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{kind} file not found: {path}")
    rows = []
    try:
        # utf-8-sig: spreadsheet programs start their CSVs with a byte-order mark
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            if reader.fieldnames is None:
                raise InputError(f"{kind} file is empty: {path}")
            names = [n.strip() for n in reader.fieldnames]
            missing = [c for c in header if c not in names]
            if missing:
                raise InputError(
                    f"{kind} file {path} lacks column(s) {', '.join(missing)}; "
                    f"the header must be {','.join(header)}"
                )
            for row in reader:
                # reader.line_num, not a running count: blank lines are skipped
                rows.append((reader.line_num,
                             {k.strip(): (v or "").strip() for k, v in row.items() if k is not None}))
    except UnicodeDecodeError:
        raise InputError(f"{kind} file is not a text CSV: {path}") from None
    except csv.Error as exc:  # e.g. a field over the csv module's size limit, a NUL byte
        raise InputError(f"{kind} file {path} is not a readable CSV: {exc}") from None
    return rows
