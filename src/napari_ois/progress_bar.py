"""Progress of long headless work on stderr (the CLI's bars), built on tqdm.

On a terminal this is tqdm's live bar (done / total, rate, ETA). When stderr is not a
terminal (a log file, CI, a pipe), a live bar would write a carriage-return soup, so a
plain line is printed each time another ~10 % is done, with the same numbers. ``--quiet``
(:func:`set_quiet`) silences every bar; results and errors are printed as before.

The napari widget does not use this module: it has its own bar and napari's activity dock.
"""

from __future__ import annotations

import os
import sys
import time
from typing import TextIO

from tqdm import tqdm

#: Set by :func:`set_quiet`, so child processes (training workers) stay quiet too.
QUIET_ENV = "NAPARI_OIS_QUIET"
_quiet = os.environ.get(QUIET_ENV) == "1"

#: Share of the total between two plain progress lines when stderr is not a terminal.
LINE_STEP = 0.1


def set_quiet(quiet: bool) -> None:
    """Silence (or restore) every progress bar of this process."""
    global _quiet
    _quiet = bool(quiet)
    if _quiet:
        os.environ[QUIET_ENV] = "1"
    else:
        os.environ.pop(QUIET_ENV, None)


def is_quiet() -> bool:
    """Whether progress bars are silenced (``--quiet``)."""
    return _quiet


class ProgressBar:
    """Items done out of a known total, reported on ``stream`` (stderr by default).

    Parameters
    ----------
    total : int
        Items expected; a run may end early (an object lost, a cancelled run), and
        :meth:`close` then reports what was done.
    desc : str
        What is counted, e.g. ``"propagate"``.
    unit : str
        Name of one item (``"frame"``, ``"object"``, ``"step"``).
    stream : file, optional
        Where to write; stderr by default.
    quiet : bool
        Silence this bar (every bar is silent after ``set_quiet(True)``).
    initial : int
        Items already done before this call (a resumed run); rate and ETA count only the
        items done from here.
    """

    def __init__(self, total: int, desc: str, unit: str = "item", stream: TextIO | None = None,
                 quiet: bool = False, initial: int = 0):
        self.total = max(int(total), 0)
        self.desc = desc
        self.unit = unit
        self.n = self.initial = max(int(initial), 0)
        self._stream = stream if stream is not None else sys.stderr
        self._start = time.perf_counter()
        self._next_line = LINE_STEP * (1 + int(self.n / self.total / LINE_STEP + 1e-9)) if self.total else LINE_STEP
        self._closed = False
        self._bar = None
        if quiet or _quiet:
            self._mode = "quiet"
        elif _is_terminal(self._stream):
            self._mode = "live"
            self._bar = tqdm(total=self.total or None, desc=desc, unit=unit, file=self._stream,
                             dynamic_ncols=True, leave=True, initial=self.n)
        else:
            self._mode = "lines"

    def update(self, n: int = 1) -> None:
        """Count ``n`` more items done."""
        if self._closed or n <= 0:
            return
        self.n += n
        if self._bar is not None:
            self._bar.update(n)
        elif self._mode == "lines" and self.total and self.n / self.total >= self._next_line - 1e-9:
            self._print_line()
            while self._next_line <= self.n / self.total + 1e-9:
                self._next_line += LINE_STEP

    def write(self, line: str) -> None:
        """Print a detail line (e.g. one item's result) above the bar; nothing when quiet."""
        if self._mode == "quiet":
            return
        if self._bar is not None:
            self._bar.write(line, file=self._stream)
        else:
            print(line, file=self._stream, flush=True)

    def close(self, failed: bool = False) -> None:
        """End the bar; in line mode a last line if the final one was not printed.

        ``failed``: the work stopped on an error, which is reported instead (no last line).
        """
        if self._closed:
            return
        self._closed = True
        if self._bar is not None:
            self._bar.close()
        elif self._mode == "lines" and not failed and self.n > self.initial and (not self.total or self.n < self.total):
            self._print_line()  # ended early: say how far it got (nothing done: nothing to say)

    def _print_line(self) -> None:
        elapsed = time.perf_counter() - self._start
        meter = tqdm.format_meter(self.n, self.total or None, elapsed, ncols=0, prefix=self.desc, unit=self.unit,
                                  initial=self.initial)
        print(meter, file=self._stream, flush=True)

    def __enter__(self) -> "ProgressBar":
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        self.close(failed=exc_type is not None)


def message(line: str, stream: TextIO | None = None) -> None:
    """Print a status line on stderr without breaking a live bar; nothing when quiet."""
    if not _quiet:
        tqdm.write(line, file=stream if stream is not None else sys.stderr)


def output(line: str) -> None:
    """Print a result line on stdout without breaking a live bar on stderr (never silenced)."""
    tqdm.write(line, file=sys.stdout)


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
