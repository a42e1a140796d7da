"""PNG plots written by the eval commands: mIoU vs clicks, per-frame J."""

from __future__ import annotations

import sys
from pathlib import Path


def load_pyplot():
    """(pyplot, MaxNLocator) with a file-only backend, or None (plots are optional: the ``eval`` extra)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import MaxNLocator
    except ImportError:
        print("napari-ois: matplotlib is not installed; no plot written (pip install napari-ois[eval])",
              file=sys.stderr)
        return None
    return plt, MaxNLocator


def _line_plot(
    curves: dict[str, list[float]], path: str | Path, title: str, xlabel: str, ylabel: str,
    size: tuple[float, float], markers: bool,
) -> bool:
    """One line per curve over x = 1..len; y in [0, 1]. Returns whether a file was written."""
    loaded = load_pyplot()
    if loaded is None or not curves:
        return False
    plt, MaxNLocator = loaded
    fig, ax = plt.subplots(figsize=size, dpi=120)
    for label, values in curves.items():
        style = {"marker": "o", "markersize": 3} if markers else {}
        ax.plot(range(1, len(values) + 1), values, label=label, **style)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title, ylim=(0, 1))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # clicks and frames are counts
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def plot_miou_curves(curves: dict[str, list[float]], path: str | Path, title: str) -> bool:
    """mIoU after 1..N clicks, one line per backend/run."""
    return _line_plot(curves, path, title, "number of clicks", "mIoU", (6, 4), markers=True)


def plot_frame_j(per_sequence: dict[str, list[float]], path: str | Path, title: str) -> bool:
    """J (IoU) per propagated frame, one line per sequence (mean over its objects)."""
    return _line_plot(per_sequence, path, title, "frames after the initialised frame", "J (IoU)",
                      (7, 4), markers=False)
