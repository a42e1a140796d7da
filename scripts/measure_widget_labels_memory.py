"""Measure the napari process's memory with the objects layer in memory vs on disk.

A long video, 1,000 frames of 480x854 uint8 by default, is built lazily (a dask array:
each frame is drawn when napari or the session reads it), so what grows with the
number of frames is the labels. For each storage, a fresh Python process opens a
viewer (hidden), docks the widget, clicks once on frame 0 and propagates forward
through the whole video, and prints its resident memory (RSS) at each step and its
peak. A thresholding stand-in segmenter keeps the model out of the figures.

Run under a display, e.g.::

    xvfb-run -a -s "-screen 0 1600x1000x24" python scripts/measure_widget_labels_memory.py

Figures are measured, not asserted; they depend on the machine and library versions.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time


def _child(storage: str, n_frames: int, height: int, width: int) -> dict:
    """One measurement in this process: ``storage`` is "memory" or "disk"."""
    import resource

    import dask.array as da
    import numpy as np
    import psutil

    process = psutil.Process()
    figures: dict = {"storage": storage}

    def rss(step: str) -> None:
        figures[step] = round(process.memory_info().rss / 2**20)

    import napari
    from qtpy.QtWidgets import QApplication

    from napari_ois._widgets import AnnotateObjectsWidget
    from napari_ois.core.segmenter import Prediction

    class ThresholdSegmenter:
        """The bright pixels of the frame: enough to propagate, no model in memory."""

        name = "threshold"

        def encode(self, image):
            gray = image.mean(axis=-1).astype(np.float32)
            return _Embedding(gray)

        def predict(self, embedding, clicks, prev_prob=None, reference=None):
            mask = embedding.gray > 0.5
            return Prediction(mask.astype(np.float32), 1.0 if mask.any() else 0.0)

    class _Embedding:
        def __init__(self, gray):
            self.gray = gray

        @property
        def nbytes(self):
            return self.gray.nbytes

    def draw(block, block_info=None):
        t = block_info[None]["chunk-location"][0]
        frame = np.zeros(block.shape, np.uint8)
        x = 20 + (t * 3) % (width - 120)
        frame[:, 100:180, x : x + 80] = 220  # a bright square moving right
        return frame

    app = QApplication.instance() or QApplication([])
    rss("start")
    viewer = napari.Viewer(show=False)
    video = da.zeros((n_frames, height, width), dtype=np.uint8, chunks=(1, height, width)).map_blocks(
        draw, dtype=np.uint8
    )
    viewer.add_image(video, name="long video", contrast_limits=(0, 255))
    app.processEvents()
    rss("viewer_and_video")
    segmenter = ThresholdSegmenter()
    # The memory run raises the threshold above any size; the disk run lowers it to 0.
    widget = AnnotateObjectsWidget(
        viewer,
        segmenter_factory=lambda backend, device: segmenter,
        labels_on_disk_mb=2**20 if storage == "memory" else 0,
    )
    viewer.window.add_dock_widget(widget)
    app.processEvents()
    figures["labels_type"] = type(widget.labels_layer.data).__module__ + "." + type(widget.labels_layer.data).__name__
    rss("widget_with_objects_layer")
    widget.points_layer.add(np.array([0, 140, 60], dtype=float))
    app.processEvents()
    rss("after_click")
    started = time.perf_counter()
    worker = widget.propagate("forward")
    assert worker is not None, widget.status.text()
    while widget.worker is not None:
        app.processEvents()
        time.sleep(0.002)
    figures["propagation_s"] = round(time.perf_counter() - started, 1)
    figures["frames_labelled"] = int(sum(bool((np.asarray(widget.labels_layer.data[t]) == 1).any())
                                         for t in range(n_frames)))
    rss("after_propagating_all_frames")
    # What else the run keeps in memory, in both storages: the embedding cache (bounded by
    # config.cache_mb) and the undo history (packed masks).
    session = widget.session
    figures["embedding_cache_mb"] = round(session.cache.nbytes / 2**20)
    figures["undo_history_mb"] = round(sum(a.nbytes for a in session.undo_stack) / 2**20, 1)
    folder = widget.labels_layer.metadata.get("napari_ois_labels_folder")
    if folder:  # what the labels take on disk (compressed, empty planes not stored)
        from pathlib import Path

        files = [f for f in Path(folder).rglob("*") if f.is_file()]
        figures["labels_on_disk_mb"] = round(sum(f.stat().st_size for f in files) / 2**20, 1)
    figures["peak"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10)
    viewer.close()
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=1000)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--width", type=int, default=854)
    parser.add_argument("--child", choices=("memory", "disk"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(_child(args.child, args.frames, args.height, args.width)))
        return 0
    labels_mb = args.frames * args.height * args.width * 4 / 2**20
    print(f"{args.frames} frames of {args.height}x{args.width}: uint32 labels are {labels_mb:.0f} MB in memory")
    print("RSS in MiB, one fresh process per storage:")
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    for storage in ("memory", "disk"):
        out = subprocess.run(
            [sys.executable, __file__, "--child", storage, "--frames", str(args.frames),
             "--height", str(args.height), "--width", str(args.width)],
            capture_output=True, text=True, env=env,
        )
        lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
        if out.returncode != 0 or not lines:
            print(f"{storage}: failed\n{out.stderr[-2000:]}", file=sys.stderr)
            return 1
        print(json.dumps(json.loads(lines[-1])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
