"""Local corrections (FocalClick's progressive merge), on the held-out *training* objects (never dev).

Usage: python scripts/experiments/progressive_merge_check.py N_OBJECTS BACKEND FROM_CLICK [FROM_CLICK ...]

A corrective click should fix the error it was placed in, not redraw the object elsewhere. From
click FROM_CLICK on (0 = off), the new prediction is kept only in the connected region of change
(new mask XOR previous mask) that holds the new click; elsewhere the previous probability stays.
If the click's own pixel did not change, the whole new prediction is kept. Prints mIoU@1/5/10 and
NoC@85/90 over 10 clicks for each FROM_CLICK, for BACKEND (``ois`` or ``classical``).
"""

import sys
import time

import numpy as np
import torch
from scipy import ndimage

from napari_ois.core.segmenter import Prediction

from napari_ois.core.backends import get_segmenter
from napari_ois.evaluate.click_eval import EVAL_THRESHOLD, evaluate_clicks, summarize
from napari_ois.train.trainer import TrainConfig, validation_items


class LocalCorrections:
    """Wraps a segmenter; clicks from ``from_click`` on change only the region around the click."""

    def __init__(self, inner, from_click: int):
        self.inner, self.from_click = inner, from_click

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def predict(self, embedding, clicks, prev_prob=None, reference=None):
        prediction = self.inner.predict(embedding, clicks, prev_prob=prev_prob, reference=reference)
        if not self.from_click or prev_prob is None or len(clicks) < self.from_click:
            return prediction
        prev = np.asarray(prev_prob, np.float32)
        changed = (prediction.prob > EVAL_THRESHOLD) != (prev > EVAL_THRESHOLD)
        regions, _ = ndimage.label(changed)
        click = clicks[-1]
        region = regions[click.y, click.x]
        if region == 0:
            return prediction
        merged = prev.copy()
        keep = regions == region
        merged[keep] = prediction.prob[keep]
        return Prediction(merged, prediction.score)


torch.set_num_threads(1)
n_items, backend = int(sys.argv[1]), sys.argv[2]
items = validation_items(TrainConfig(validation_items=n_items))
for from_click in map(int, sys.argv[3:]):
    segmenter = LocalCorrections(get_segmenter(backend, "cpu"), from_click)
    start = time.perf_counter()
    summary = summarize(evaluate_clicks(segmenter, items, 10), 10)
    print(f"{backend} from click {from_click}: mIoU@1/5/10 {summary['miou_at'][0]:.3f} {summary['miou_at'][4]:.3f} "
          f"{summary['miou_at'][9]:.3f} NoC@85/90 {summary['noc']['85']:.2f} {summary['noc']['90']:.2f} "
          f"n {summary['n']} ({time.perf_counter() - start:.0f} s)", flush=True)
