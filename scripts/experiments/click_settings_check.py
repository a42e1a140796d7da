"""Inference settings for clicking, on the held-out *training* objects (never dev).

Usage: python scripts/experiments/click_settings_check.py N_OBJECTS SETTING [SETTING ...]

Each SETTING is ``name`` or comma-separated ``key=value`` pairs applied to the
packaged checkpoint's settings: ZoomSettings fields (``expand=2.5``,
``max_fraction=0.8``, ``min_side=96``) and ``prior_work_size=448`` (the classical
prior's working grid). ``base`` runs the checkpoint as it ships. Prints mIoU@1/5/10
and NoC@85/90 over 10 clicks per setting.
"""

import dataclasses
import sys
import time

import torch

from napari_ois.evaluate.click_eval import evaluate_clicks, summarize
from napari_ois.model.checkpoint import load_model
from napari_ois.model.prior import ClassicalPrior
from napari_ois.model.segmenter import OISSegmenter
from napari_ois.train.trainer import TrainConfig, validation_items

torch.set_num_threads(1)
n_items = int(sys.argv[1])
items = validation_items(TrainConfig(validation_items=n_items))
model = load_model(None, "cpu")
for setting in sys.argv[2:]:
    segmenter = OISSegmenter(model, "cpu")
    pairs = [] if setting == "base" else [kv.split("=") for kv in setting.split(",")]
    zoom_changes = {}
    for key, value in pairs:
        if key == "prior_work_size":
            segmenter.prior = ClassicalPrior(int(value))
        else:
            field_type = type(getattr(segmenter.zoom, key))
            zoom_changes[key] = field_type(value) if field_type is not bool else value == "1"
    segmenter.zoom = dataclasses.replace(segmenter.zoom, **zoom_changes)
    start = time.perf_counter()
    summary = summarize(evaluate_clicks(segmenter, items, 10), 10)
    print(f"{setting}: mIoU@1/5/10 {summary['miou_at'][0]:.3f} {summary['miou_at'][4]:.3f} "
          f"{summary['miou_at'][9]:.3f} NoC@85/90 {summary['noc']['85']:.2f} {summary['noc']['90']:.2f} "
          f"n {summary['n']} ({time.perf_counter() - start:.0f} s)", flush=True)
