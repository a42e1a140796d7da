"""Propagation on training-side data (never dev): J of a mask chained through frames.

Two sets, both outside dev/:
- ``synthetic``: 12 procedural videos of 8 frames (seeds 777/k, never drawn by the trainer,
  whose streams use (seed, index) pairs), 320 px, the largest object of frame 0 that stays
  visible; exact ground truth.
- ``ctc-train``: 12 cells of the CTC *training* frames 0-5 (the trainer saw these frames as
  pairs: a check of the chain, not a held-out score).
- ``coco-moving``: the 30 held-out COCO training objects (the trainer's validation objects,
  never trained on), each made an 8-frame video by a slow random camera motion (cumulative
  shift, rotation, zoom of the whole photo): natural backgrounds and large objects, where a
  residual that leaks into the background grows the mask frame after frame.
- ``coco-fast``: the same objects and photos with a fast camera: per frame a shift of 3-5 % of
  the photo's size in a direction that drifts slowly, so the object travels 20-40 % of the frame
  in 7 steps (DAVIS kite-surf-like motion, where a search range tied to a zoom-in crop loses it).
- ``coco-bleed``: the same videos, but the chain starts from frame 0's mask with background
  regions added next to the object (``bleed_mask``, fixed seeds): can a backend remove a leak
  by its appearance, or does it keep and grow it, as the ois backend did on DAVIS blackswan?
  J counts frames 1-7, where a perfect repair would score as coco-moving.

Each step segments frame t from the mask of t-1 as reference and previous mask, no click,
exactly as propagation does. Prints the mean J and the median area ratio per step
(< 1: masks shrink, > 1: they grow).

Usage: python scripts/experiments/propagation_check.py BACKEND_OR_CHECKPOINT [zoom|nozoom] [VARIANT|full] [SETS]
VARIANT: a test-time ablation of ``napari-ois eval ablation`` (e.g. "no reference").
SETS: comma-separated subset of synthetic,ctc-train,ctc-train-all,coco-moving,coco-fast,coco-bleed
(default: all). ``ctc-train-all``: every cell present in all of the CTC training frames 0-19
(crowded, similar cells over 19 steps, as long as the dev CTC run).
"""

import sys

import numpy as np
import tifffile
import torch

from napari_ois.core.segmenter import Reference

from napari_ois.core.backends import get_segmenter
from napari_ois.evaluate.ablation import ablated
from napari_ois.model.checkpoint import load_model
from napari_ois.model.segmenter import OISSegmenter
from napari_ois.model.zoom import ZoomSettings
from napari_ois.train.real_data import default_data_root
from napari_ois.train.synthetic import render_scene

torch.set_num_threads(1)


def synthetic_videos(n=12, frames=8, size=320):
    for k in range(n):
        video = render_scene(np.random.default_rng([777, k]), size, None, frames)
        labels = np.stack([f[1] for f in video])
        ids, counts = np.unique(labels[0][labels[0] > 0], return_counts=True)
        for i in ids[np.argsort(-counts)]:
            if all((labels[t] == i).sum() >= 0.002 * size * size for t in range(frames)):
                yield [f[0] for f in video], labels == i
                break


def ctc_cells(n=12, frames=6):
    root = default_data_root() / "ctc_psc"
    images = [tifffile.imread(root / "02" / f"t{t:03d}.tif").astype(np.float32) / 255 for t in range(frames)]
    segs = np.stack([tifffile.imread(root / "02_ST" / "SEG" / f"man_seg{t:03d}.tif") for t in range(frames)])
    rgb = [np.repeat(im[..., None], 3, -1) for im in images]
    ids = [i for i in np.unique(segs[0]) if i and all((s == i).any() for s in segs)][:n]
    for i in ids:
        yield rgb, segs == i


def coco_moving(n=30, frames=8, fast=False):
    from skimage.io import imread
    from skimage.transform import SimilarityTransform, warp

    from napari_ois.train.trainer import TrainConfig, validation_items

    for k, item in enumerate(validation_items(TrainConfig(validation_items=n))):
        rng = np.random.default_rng([555, k])
        image = imread(item.image_path)
        image = np.repeat(image[..., None], 3, -1) if image.ndim == 2 else image[..., :3]
        image = image.astype(np.float32) / 255
        h, w = item.truth.shape
        centre = np.array([w / 2, h / 2])
        motion = np.eye(3)
        heading = rng.uniform(0, 2 * np.pi) if fast else 0.0
        video, masks = [], []
        for t in range(frames):
            if t:  # per frame: rotation <= 2 deg, zoom <= 2 %, and a shift
                scale, rotation = rng.uniform(0.98, 1.02), np.deg2rad(rng.uniform(-2, 2))
                if fast:  # 3-5 % of the size along a heading that turns by <= 20 deg a frame
                    heading += np.deg2rad(rng.uniform(-20, 20))
                    shift = rng.uniform(0.03, 0.05) * max(h, w) * np.array([np.cos(heading), np.sin(heading)])
                else:  # <= 1.5 % of the size per axis
                    shift = rng.uniform(-0.015, 0.015, 2) * max(h, w)
                step = (SimilarityTransform(translation=-centre) + SimilarityTransform(
                    scale=scale, rotation=rotation, translation=centre + shift))
                motion = step.params @ motion
            inverse = SimilarityTransform(matrix=np.linalg.inv(motion))
            video.append(warp(image, inverse, order=1, mode="reflect").astype(np.float32))
            masks.append(warp(item.truth.astype(np.float32), inverse, order=1, mode="constant") > 0.5)
        if all(m.sum() >= 0.002 * h * w for m in masks):
            yield video, np.stack(masks)


def coco_bleed(n=30, frames=8):
    from napari_ois.train.augment import bleed_mask

    for k, (video, masks) in enumerate(coco_moving(n, frames)):
        rng = np.random.default_rng([556, k])
        # A leak of at least 10 % of the object; a bounded number of draws, so an object
        # that cannot leak (it fills the frame) keeps its last draw.
        for _ in range(50):
            start = bleed_mask(masks[0], rng)
            if (start & ~masks[0]).sum() >= 0.1 * masks[0].sum():
                break
        yield video, masks, start


def chain(segmenter, videos):
    ious, ratios, cache = [], [], {}
    for frames, truth, *start in videos:
        key = id(frames[0]) if len(frames) else None
        if key not in cache:  # the CTC cells share their frames: encode once
            cache = {key: [segmenter.encode(f) for f in frames]}
        embeddings = cache[key]
        mask, per_step = (start[0] if start else truth[0]), []
        for t in range(1, len(frames)):
            new = segmenter.predict(embeddings[t], [], prev_prob=mask.astype(np.float32),
                                    reference=Reference(embeddings[t - 1], mask)).prob > 0.5
            per_step.append((new & truth[t]).sum() / max((new | truth[t]).sum(), 1))
            ratios.append(new.sum() / max(mask.sum(), 1))
            mask = new
        ious.append(per_step)
    ious = np.array(ious)
    return ious.mean(), ious.mean(0), float(np.median(ratios))


if __name__ == "__main__":  # the sequence builders are imported by scripts/fit_quality_calibration.py
    name = sys.argv[1]
    zoom = ZoomSettings(without_clicks=len(sys.argv) > 2 and sys.argv[2] == "zoom")
    if name in ("classical", "grabcut-cv"):
        segmenter = get_segmenter(name, "cpu")
    else:
        model = load_model(None if name == "default" else name, "cpu")
        if len(sys.argv) > 3 and sys.argv[3] != "full":
            model = ablated(model, sys.argv[3])
        segmenter = OISSegmenter(model, "cpu", zoom)
    sets = {"synthetic": synthetic_videos, "ctc-train": ctc_cells, "ctc-train-all": lambda: ctc_cells(1000, 20),
            "coco-moving": coco_moving,
            "coco-fast": lambda: coco_moving(fast=True), "coco-bleed": coco_bleed}
    for label in (sys.argv[4].split(",") if len(sys.argv) > 4 else sets):
        videos = sets[label]()
        j, per_step, ratio = chain(segmenter, videos)
        print(f"{label}: J {j:.3f} per step {np.round(per_step, 2).tolist()} area ratio/step {ratio:.2f}", flush=True)
