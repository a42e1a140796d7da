"""Box prompts as data, their checks, and the boxes CSV contract.

A box is the fastest prompt for a compact object (a cell, a car): two corners. The
CSV contract (architecture.md, beside the prompts CSV) is
``object_id,frame,y0,x0,y1,x1`` with a header: ``frame`` as in the prompts CSV, the
corners in pixel coordinates of the full-resolution frame, ``(y0, x0)`` the top-left
and ``(y1, x1)`` the bottom-right corner. The box covers rows ``y0 <= y < y1`` and
columns ``x0 <= x < x1``.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from .csv_rows import read_csv_rows
from .errors import InputError

BOX_CSV_HEADER = ("object_id", "frame", "y0", "x0", "y1", "x1")


@dataclass(frozen=True)
class BoxPrompt:
    """An axis-aligned box around one object on one frame.

    Attributes
    ----------
    y0, x0 : float
        Top-left corner (row, column) in full-resolution frame pixels.
    y1, x1 : float
        Bottom-right corner; the box covers ``y0 <= y < y1``, ``x0 <= x < x1``.
    """

    y0: float
    x0: float
    y1: float
    x1: float

    @property
    def height(self) -> float:
        return self.y1 - self.y0

    @property
    def width(self) -> float:
        return self.x1 - self.x0

    def pixel_bounds(self, shape: tuple[int, int]) -> tuple[int, int, int, int]:
        """(y0, y1, x0, x1) integer slice bounds of the pixels the box covers, clipped to ``shape``.

        A pixel counts when its centre lies in the box; a box thinner than a pixel
        still covers the pixel it lies on.
        """
        h, w = shape
        y0 = int(np.clip(math.floor(self.y0 + 0.5), 0, h - 1))
        x0 = int(np.clip(math.floor(self.x0 + 0.5), 0, w - 1))
        y1 = int(np.clip(math.ceil(self.y1 - 0.5), y0 + 1, h))
        x1 = int(np.clip(math.ceil(self.x1 - 0.5), x0 + 1, w))
        return y0, y1, x0, x1

    def mask(self, shape: tuple[int, int]) -> np.ndarray:
        """(Y, X) bool map of the pixels inside the box."""
        y0, y1, x0, x1 = self.pixel_bounds(shape)
        out = np.zeros(shape, bool)
        out[y0:y1, x0:x1] = True
        return out

    def scaled(self, sy: float, sx: float | None = None) -> "BoxPrompt":
        """The same box on a frame resized by ``sy`` (rows) and ``sx`` (columns, default ``sy``)."""
        sx = sy if sx is None else sx
        return BoxPrompt(self.y0 * sy, self.x0 * sx, self.y1 * sy, self.x1 * sx)

    def shifted(self, dy: float, dx: float) -> "BoxPrompt":
        """The same box with its origin moved by (``dy``, ``dx``), e.g. into a crop."""
        return BoxPrompt(self.y0 + dy, self.x0 + dx, self.y1 + dy, self.x1 + dx)

    def grown(self, fraction: float, shape: tuple[int, int], min_px: float = 2.0) -> "BoxPrompt":
        """The box grown on each side by ``fraction`` of its height/width (at least ``min_px``),
        clipped to a frame of ``shape``."""
        dy, dx = max(min_px, fraction * self.height), max(min_px, fraction * self.width)
        return clip_box(BoxPrompt(self.y0 - dy, self.x0 - dx, self.y1 + dy, self.x1 + dx), *shape)

    def in_view(self, origin: tuple[int, int], shape: tuple[int, int]) -> "BoxPrompt | None":
        """The part of the box on a view of ``shape`` (e.g. a crop) whose top-left pixel is
        the frame's ``origin`` (y, x), in the view's pixels; None when they do not meet."""
        view = clip_box(self.shifted(-origin[0], -origin[1]), *shape)
        return view if view.height > 0 and view.width > 0 else None


def validate_box(box: BoxPrompt, height: int, width: int) -> None:
    """Raise :class:`InputError` with a readable message if ``box`` is not a usable prompt.

    Refused: corners that are not finite numbers, inverted corners (bottom-right above
    or left of top-left), a box of zero height or width, and corners outside the
    ``height`` x ``width`` frame (``0 <= y <= height``, ``0 <= x <= width``).
    """
    corners = (box.y0, box.x0, box.y1, box.x1)
    if not all(math.isfinite(v) for v in corners):
        raise InputError(f"box corners must be finite numbers, got {corners}")
    if box.y1 < box.y0 or box.x1 < box.x0:
        raise InputError(
            f"box corners are inverted: (y0={box.y0:g}, x0={box.x0:g}) must be the top-left and "
            f"(y1={box.y1:g}, x1={box.x1:g}) the bottom-right corner"
        )
    if box.y1 == box.y0 or box.x1 == box.x0:
        raise InputError(f"box has zero area ({box.height:g} x {box.width:g} px); drag a rectangle around the object")
    if box.y0 < 0 or box.x0 < 0 or box.y1 > height or box.x1 > width:
        raise InputError(
            f"box (y0={box.y0:g}, x0={box.x0:g}, y1={box.y1:g}, x1={box.x1:g}) is outside the "
            f"{height}x{width} image"
        )


def clip_box(box: BoxPrompt, height: int, width: int) -> BoxPrompt:
    """The part of a drawn box that lies on the frame.

    A rectangle dragged in the viewer easily overshoots the frame's edge by a few
    pixels; the widget clips it. A box wholly off the frame clips to zero area, which
    :func:`validate_box` then refuses.
    """
    ys = sorted((box.y0, box.y1))
    xs = sorted((box.x0, box.x1))
    y0, y1 = (float(np.clip(v, 0, height)) for v in ys)
    x0, x1 = (float(np.clip(v, 0, width)) for v in xs)
    return BoxPrompt(y0, x0, y1, x1)


def box_of_mask(mask: np.ndarray) -> BoxPrompt | None:
    """The tight box of a (Y, X) bool mask (what a user drags around the object), or None if empty."""
    rows = np.flatnonzero(np.asarray(mask).any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(np.asarray(mask).any(axis=0))
    return BoxPrompt(float(rows[0]), float(cols[0]), float(rows[-1] + 1), float(cols[-1] + 1))


def write_boxes(path: str | Path, boxes: Iterable[tuple[int, int, BoxPrompt]]) -> None:
    """Write ``(object_id, frame, box)`` rows to a boxes CSV (header ``object_id,frame,y0,x0,y1,x1``)."""
    with Path(path).open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(BOX_CSV_HEADER)
        for obj, frame, b in boxes:
            writer.writerow([obj, frame, f"{b.y0:g}", f"{b.x0:g}", f"{b.y1:g}", f"{b.x1:g}"])


def read_boxes(path: str | Path) -> list[tuple[int, int, int, BoxPrompt]]:
    """Read a boxes CSV as ``(line number, object_id, frame, box)`` rows, in file order.

    Line numbers count from 1 at the header, as a spreadsheet shows them. Corners are
    checked against the frame later (:func:`validate_box`), where its size is known.

    Raises
    ------
    InputError
        If the file is missing or not a text CSV, lacks a column of the header, has a
        malformed row, or holds no box.
    """
    boxes = []
    for line_no, row in read_csv_rows(path, BOX_CSV_HEADER, "boxes"):
        try:
            obj, frame = int(row["object_id"]), int(row["frame"])
            box = BoxPrompt(*(float(row[k]) for k in ("y0", "x0", "y1", "x1")))
        except (ValueError, TypeError) as exc:
            raise InputError(f"{path}, line {line_no}: {exc}") from None
        if obj < 1:
            raise InputError(f"{path}, line {line_no}: object id must be >= 1, got {obj}")
        boxes.append((line_no, obj, frame, box))
    if not boxes:
        raise InputError(f"boxes file holds no box: {path}")
    return boxes
