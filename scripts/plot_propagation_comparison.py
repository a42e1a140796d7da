"""Render docs/ctc_propagation.png: the last frame of the dev CTC sequence after propagating every
cell from frame 0's masks, once per backend, next to the ground truth.

Usage: python scripts/plot_propagation_comparison.py [--data ../shared/data/dev/ctc_psc]
       [--backends classical,ois] [--out docs/ctc_propagation.png]

Each panel outlines the masks on the same crop of the frame and gives the J mean of that frame
(the evaluation protocol of ``napari-ois eval propagation --format ctc``: one pass, no click).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from skimage.segmentation import find_boundaries  # noqa: E402

from napari_ois.core.config import AnnotationConfig  # noqa: E402
from napari_ois.core.frames import FrameStack  # noqa: E402
from napari_ois.core.backends import get_segmenter  # noqa: E402
from napari_ois.core.session import AnnotationSession  # noqa: E402
from napari_ois.datasets.loaders import load_sequences  # noqa: E402
from napari_ois.evaluate.propagation_eval import _FileStack, _initialise, _truth  # noqa: E402


def propagate(backend: str, seq) -> tuple[np.ndarray, np.ndarray]:
    """(Y, X) image and (Y, X) labels of the sequence's last frame after one forward pass."""
    frames = FrameStack(_FileStack(seq.frames))
    session = AnnotationSession(frames, segmenter=get_segmenter(backend, "cpu"), config=AnnotationConfig())
    _initialise(session, _truth(seq, 0), "mask")
    session.run_multi_propagation(direction="forward", record=False)
    last = frames.n_frames - 1
    return np.asarray(frames[last]), np.asarray(session.labels[last])


def frame_j(truth: np.ndarray, labels: np.ndarray) -> float:
    """Mean IoU over the cells of frame 0 still present in this frame."""
    scores = []
    for cell in np.unique(truth[truth > 0]):
        gt, pred = truth == cell, labels == cell
        scores.append((gt & pred).sum() / max((gt | pred).sum(), 1))
    return float(np.mean(scores)) if scores else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared/data/dev/ctc_psc"))
    parser.add_argument("--backends", default="classical,ois")
    parser.add_argument("--out", default="docs/ctc_propagation.png")
    args = parser.parse_args()
    seq = load_sequences(args.data, "ctc")[0]
    first = _truth(seq, 0)
    truth = _truth(seq, len(seq.frames) - 1)
    truth = np.where(np.isin(truth, np.unique(first[first > 0])), truth, 0)  # the tracked cells only
    panels = [("ground truth", None, truth)]
    image = None
    for backend in args.backends.split(","):
        image, labels = propagate(backend, seq)
        panels.append((backend, frame_j(truth, labels), labels))
    gray = image if image.ndim == 2 else image[..., :3].mean(-1)
    # The busiest quarter of the frame: enough cells to see, large enough to see them.
    h, w = truth.shape
    ys, xs = np.nonzero(truth)
    cy, cx = int(np.median(ys)), int(np.median(xs))
    y0, x0 = min(max(cy - h // 4, 0), h - h // 2), min(max(cx - w // 4, 0), w - w // 2)
    crop = (slice(y0, y0 + h // 2), slice(x0, x0 + w // 2))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.6))
    for ax, (name, j, labels) in zip(axes, panels):
        ax.imshow(gray[crop], cmap="gray")
        edges = np.ma.masked_where(~find_boundaries(labels[crop]), np.ones(labels[crop].shape))
        ax.imshow(edges, cmap="autumn", interpolation="nearest", alpha=1.0)
        title = name if j is None else f"{name}: J {j:.2f} on this frame"
        ax.set_title(title, fontsize=10)
        ax.axis("off")
    fig.suptitle(f"CTC {seq.name}, frame {len(seq.frames) - 1}: every cell propagated from frame 0, no click",
                 fontsize=10)
    fig.tight_layout()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}: " + ", ".join(f"{n} J {j:.3f}" for n, j, _ in panels[1:]))


if __name__ == "__main__":
    main()
