"""Clicks as data, the per-object/per-frame prompt store and the prompts CSV contract.

The CSV contract (architecture.md) is ``object_id,frame,y,x,positive`` with a header:
``frame`` is the index along the annotated axis (0 for a single image), ``y``/``x`` are
pixel rows/columns of the full-resolution frame, ``positive`` is 1 or 0.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

from .boxes import BoxPrompt
from .csv_rows import read_csv_rows
from .errors import InputError

CSV_HEADER = ("object_id", "frame", "y", "x", "positive")


@dataclass(frozen=True)
class Click:
    """One click of the user (or of the click simulator).

    Attributes
    ----------
    object_id : int
        Label id of the object the click belongs to (>= 1).
    frame : int
        Index along the annotated axis (time or depth); 0 for a single image.
    y, x : float
        Pixel row and column in the full-resolution frame.
    positive : bool
        True for "this is the object", False for "leave this out".
    """

    object_id: int
    frame: int
    y: float
    x: float
    positive: bool = True

    def inside(self, height: int, width: int) -> bool:
        """Whether the click falls on a pixel of a ``height`` x ``width`` frame."""
        return 0 <= self.y < height and 0 <= self.x < width


def validate_click(click: Click, n_frames: int, height: int, width: int) -> None:
    """Raise :class:`InputError` with a readable message if ``click`` is out of range."""
    if click.object_id < 1:
        raise InputError(f"object id must be >= 1, got {click.object_id}")
    if not 0 <= click.frame < n_frames:
        raise InputError(
            f"click on frame {click.frame} but the stack has {n_frames} frame(s) (0..{n_frames - 1})"
        )
    if not click.inside(height, width):
        raise InputError(
            f"click at (y={click.y:.1f}, x={click.x:.1f}) is outside the {height}x{width} image"
        )


class PromptStore:
    """Clicks grouped by object and frame, in the order they were made, and at most one
    box per object and frame (the box comes first, the clicks refine it).

    Order matters: interactive segmenters weight the latest click, and undo
    removes the most recent one.
    """

    def __init__(self, clicks: Iterable[Click] = ()):
        self._by_key: dict[tuple[int, int], list[Click]] = defaultdict(list)
        self._boxes: dict[tuple[int, int], BoxPrompt] = {}
        for click in clicks:
            self.add(click)

    def box(self, object_id: int, frame: int) -> BoxPrompt | None:
        """The box prompt of (object, frame), or None."""
        return self._boxes.get((object_id, frame))

    def set_box(self, object_id: int, frame: int, box: BoxPrompt | None) -> None:
        """Set (or with None remove) the box prompt of (object, frame)."""
        if box is None:
            self._boxes.pop((object_id, frame), None)
        else:
            self._boxes[(object_id, frame)] = box

    def boxes(self) -> list[tuple[int, int, BoxPrompt]]:
        """Every box as ``(object_id, frame, box)``, sorted by object and frame."""
        return [(o, f, b) for (o, f), b in sorted(self._boxes.items())]

    def add(self, click: Click) -> None:
        """Append ``click`` to its (object, frame) list."""
        self._by_key[(click.object_id, click.frame)].append(click)

    def remove_last(self, object_id: int, frame: int) -> Click | None:
        """Remove and return the latest click of (object, frame), or None if there is none."""
        clicks = self._by_key.get((object_id, frame))
        if not clicks:
            return None
        click = clicks.pop()
        if not clicks:
            del self._by_key[(object_id, frame)]
        return click

    def set_clicks(self, object_id: int, frame: int, clicks: list[Click]) -> None:
        """Replace the clicks of (object, frame) (used by undo/redo)."""
        if clicks:
            self._by_key[(object_id, frame)] = list(clicks)
        else:
            self._by_key.pop((object_id, frame), None)

    def clicks(self, object_id: int, frame: int) -> list[Click]:
        """The clicks of one object on one frame, oldest first (a copy)."""
        return list(self._by_key.get((object_id, frame), ()))

    def frames(self, object_id: int) -> list[int]:
        """Sorted frames on which ``object_id`` has clicks."""
        return sorted(f for (o, f), c in self._by_key.items() if o == object_id and c)

    def objects(self) -> list[int]:
        """Sorted ids of objects that have at least one click."""
        return sorted({o for (o, _), c in self._by_key.items() if c})

    def clear_object(self, object_id: int) -> None:
        """Forget every click and box of ``object_id``."""
        for key in [k for k in self._by_key if k[0] == object_id]:
            del self._by_key[key]
        for key in [k for k in self._boxes if k[0] == object_id]:
            del self._boxes[key]

    def __iter__(self) -> Iterator[Click]:
        for key in sorted(self._by_key):
            yield from self._by_key[key]

    def __len__(self) -> int:
        return sum(len(c) for c in self._by_key.values())


def write_prompts(path: str | Path, clicks: Iterable[Click]) -> None:
    """Write clicks to a prompts CSV (header ``object_id,frame,y,x,positive``)."""
    path = Path(path)
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(CSV_HEADER)
        for c in clicks:
            writer.writerow([c.object_id, c.frame, f"{c.y:g}", f"{c.x:g}", int(bool(c.positive))])


def read_prompts(path: str | Path) -> list[Click]:
    """Read a prompts CSV; the clicks in file order.

    Raises
    ------
    InputError
        As :func:`read_prompt_lines`.
    """
    return [click for _, click in read_prompt_lines(path)]


def read_prompt_lines(path: str | Path) -> list[tuple[int, Click]]:
    """Read a prompts CSV as ``(line number, click)`` pairs, so later errors can name the row.

    Line numbers count from 1 at the header, as a text editor or spreadsheet shows them.

    Raises
    ------
    InputError
        If the file is missing, has no header, misses a column, has a malformed
        row, or holds no click at all.
    """
    clicks = []
    for line_no, row in read_csv_rows(path, CSV_HEADER, "prompts"):
        try:
            positive = row["positive"].lower()
            if positive not in ("0", "1", "true", "false"):
                raise ValueError(f"positive must be 1 or 0, got {row['positive']!r}")
            click = Click(
                object_id=int(row["object_id"]),
                frame=int(row["frame"]),
                y=float(row["y"]),
                x=float(row["x"]),
                positive=positive in ("1", "true"),
            )
        except (ValueError, TypeError) as exc:
            raise InputError(f"{path}, line {line_no}: {exc}") from None
        if not all(map(_finite, (click.y, click.x))):
            raise InputError(f"{path}, line {line_no}: y and x must be finite numbers")
        clicks.append((line_no, click))
    if not clicks:
        raise InputError(f"prompts file holds no click: {path}")
    return clicks


def _finite(value: float) -> bool:
    return value == value and value not in (float("inf"), float("-inf"))
