"""PNG plots written by the eval commands: mIoU vs clicks, per-frame J."""

from __future__ import annotations

import sys
from pathlib import Path


def _pyplot():
    """matplotlib with a file-only backend, or None (plots are optional: the ``eval`` extra)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("napari-ois: matplotlib is not installed; no plot written (pip install napari-ois[eval])",
              file=sys.stderr)
        return None
    return plt


def plot_miou_curves(curves: dict[str, list[float]], path: str | Path, title: str) -> bool:
    """mIoU after 1..N clicks, one line per backend/run. Returns whether a file was written."""
    plt = _pyplot()
    if plt is None:
        return False
    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    for label, values in curves.items():
        ax.plot(range(1, len(values) + 1), values, marker="o", markersize=3, label=label)
    ax.set(xlabel="number of clicks", ylabel="mIoU", title=title, ylim=(0, 1))
    ax.set_xticks(range(1, max(len(v) for v in curves.values()) + 1, 2))
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def plot_frame_j(per_sequence: dict[str, list[float]], path: str | Path, title: str) -> bool:
    """J (IoU) per propagated frame, one line per sequence (mean over its objects)."""
    plt = _pyplot()
    if plt is None:
        return False
    fig, ax = plt.subplots(figsize=(7, 4), dpi=120)
    for name, values in per_sequence.items():
        ax.plot(range(1, len(values) + 1), values, label=name)
    ax.set(xlabel="frames after the initialised frame", ylabel="J (IoU)", title=title, ylim=(0, 1))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True
