"""Zoom-in on or off, on the held-out *training* objects (never dev): mIoU@1/5, NoC@85.

Usage: python scripts/experiments/zoom_check.py CHECKPOINT|default N_OBJECTS [FOLDER]

FOLDER: img/ + gt/ instance masks from the training data (e.g. one CTC training frame).
"""

import sys
import time

import torch

from napari_ois.evaluate.click_eval import evaluate_clicks, summarize
from napari_ois.datasets.loaders import load_click_items
from napari_ois.model.checkpoint import load_model
from napari_ois.model.segmenter import OISSegmenter
from napari_ois.model.zoom import ZoomSettings
from napari_ois.train.trainer import TrainConfig, validation_items

torch.set_num_threads(1)
checkpoint = None if len(sys.argv) < 2 or sys.argv[1] == "default" else sys.argv[1]
n_items = int(sys.argv[2]) if len(sys.argv) > 2 else 30
if len(sys.argv) > 3:
    items = load_click_items(sys.argv[3], "folder")[:n_items]
else:
    items = validation_items(TrainConfig(validation_items=n_items))
model = load_model(checkpoint, "cpu")
for name, zoom in (("whole frame", ZoomSettings(enabled=False)), ("zoom-in", ZoomSettings())):
    start = time.perf_counter()
    summary = summarize(evaluate_clicks(OISSegmenter(model, "cpu", zoom), items, 10), 10)
    print(f"{name}: mIoU@1 {summary['miou_at'][0]:.3f} mIoU@5 {summary['miou_at'][4]:.3f} "
          f"NoC@85 {summary['noc']['85']:.2f} n {summary['n']} ({time.perf_counter() - start:.0f} s)", flush=True)
