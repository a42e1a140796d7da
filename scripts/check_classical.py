"""Quick quality check of the classical backend on the dev data (not a test; prints numbers).

(a) Interactive: COCO-MVal objects, clicks simulated with the standard protocol (first click
    at the object pixel farthest from its boundary; each next one at the interior point
    farthest from the boundary of the larger error region: missed object -> positive,
    wrongly included -> negative), previous probability fed back; mIoU after 1/3/5/10 clicks.
(b) Propagation: DAVIS-2016 sequences from the ground-truth mask of frame 0, frame by frame
    with zero clicks, reference = previous prediction; mean J per sequence.

Usage: python scripts/check_classical.py [--data /work/shared/data/dev] [--coco 20] [--frames 30]
       [--seqs blackswan,car-shadow] [--skip-coco] [--skip-davis]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage as ndi

from napari_ois.core.classical import ClassicalSegmenter
from napari_ois.core.clicks import Click
from napari_ois.core.segmenter import Reference


def load_rgb(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255.0


def load_mask(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("L")) > 127


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)


def farthest_point(region: np.ndarray) -> tuple[float, int, int]:
    """(distance, y, x) of the region pixel farthest from the region's boundary (padded)."""
    dt = ndi.distance_transform_edt(np.pad(region, 1))[1:-1, 1:-1]
    y, x = np.unravel_index(int(np.argmax(dt)), dt.shape)
    return float(dt[y, x]), int(y), int(x)


def next_click(gt: np.ndarray, pred: np.ndarray) -> Click:
    fn_d, fn_y, fn_x = farthest_point(gt & ~pred)
    fp_d, fp_y, fp_x = farthest_point(~gt & pred)
    if fn_d >= fp_d:
        return Click(1, 0, fn_y, fn_x, True)
    return Click(1, 0, fp_y, fp_x, False)


def check_coco(seg, root: Path, limit: int, max_clicks: int = 10) -> None:
    gts = sorted((root / "coco_mval" / "gt").glob("*.png"))
    gts = gts[:: max(1, len(gts) // limit)][:limit]
    ious = np.zeros((len(gts), max_clicks))
    times = []
    for i, gt_path in enumerate(gts):
        image = load_rgb(root / "coco_mval" / "img" / (gt_path.stem + ".jpg"))
        gt = load_mask(gt_path)
        emb = seg.encode(image)
        clicks: list[Click] = []
        pred = np.zeros_like(gt)
        prob = None
        for k in range(max_clicks):
            clicks.append(next_click(gt, pred))
            t0 = time.perf_counter()
            out = seg.predict(emb, clicks, prev_prob=prob)
            times.append(time.perf_counter() - t0)
            prob = out.prob
            pred = prob > 0.5
            ious[i, k] = iou(pred, gt)
        print(f"  {gt_path.stem:40s} {image.shape[1]}x{image.shape[0]}  IoU@1 {ious[i, 0]:.3f} @5 {ious[i, 4]:.3f} @10 {ious[i, 9]:.3f}")
    m = ious.mean(0)
    print(f"COCO-MVal n={len(gts)}  mIoU@1 {m[0]:.3f}  @3 {m[2]:.3f}  @5 {m[4]:.3f}  @10 {m[9]:.3f}  "
          f"predict {1000 * np.mean(times):.0f} ms")


def check_davis(seg, root: Path, seqs: list[str], n_frames: int) -> None:
    js = []
    for seq in seqs:
        frames = sorted((root / "davis2016" / "JPEGImages" / "480p" / seq).glob("*.jpg"))[:n_frames]
        annos = [root / "davis2016" / "Annotations" / "480p" / seq / (f.stem + ".png") for f in frames]
        mask = load_mask(annos[0])
        prev_emb = seg.encode(load_rgb(frames[0]))
        scores, ious, times = [], [], []
        for f, a in zip(frames[1:], annos[1:]):
            emb = seg.encode(load_rgb(f))
            t0 = time.perf_counter()
            out = seg.predict(emb, [], reference=Reference(prev_emb, mask))
            times.append(time.perf_counter() - t0)
            mask = out.prob > 0.5
            ious.append(iou(mask, load_mask(a)))
            scores.append(out.score)
            prev_emb = emb
        js.append(np.mean(ious))
        print(f"DAVIS {seq:12s} J {np.mean(ious):.3f}  last {ious[-1]:.3f}  min score {min(scores):.2f}  "
              f"predict {1000 * np.mean(times):.0f} ms")
    print(f"DAVIS mean J {np.mean(js):.3f}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="/work/shared/data/dev", type=Path)
    ap.add_argument("--coco", default=20, type=int)
    ap.add_argument("--frames", default=30, type=int)
    ap.add_argument("--seqs", default="blackswan,car-shadow")
    ap.add_argument("--skip-coco", action="store_true")
    ap.add_argument("--skip-davis", action="store_true")
    args = ap.parse_args()
    seg = ClassicalSegmenter()
    if not args.skip_coco:
        check_coco(seg, args.data, args.coco)
    if not args.skip_davis:
        check_davis(seg, args.data, args.seqs.split(","), args.frames)


if __name__ == "__main__":
    main()
