"""How well the quality score ranks propagated frames on dev DAVIS-2016 and dev CTC (evaluation only).

Runs ``eval propagation``'s own per-sequence walk (first-frame mask, forward, one pass)
three times with the default ``ois`` backend, scoring frames by
- ``raw``: the raw boundary confidence (the score before calibration);
- ``step``: the step's calibrated predicted IoU alone (the session's track stage off);
- ``calibrated``: what ships: the step's predicted IoU refined by the session's track
  stage (colour match with the keyframe, distance to it; :mod:`napari_ois.core.quality`).
The masks are the same every time (the score does not steer propagation at the default
``min_score`` 0); the script checks that.

Reports, pooled over every scored frame of every object (frames 1..T-1):
- Spearman rank correlation between score and true IoU (and per DAVIS sequence);
- mean absolute error between score and true IoU;
- per DAVIS sequence, *Jump to worst frame*: the frame with the lowest score (first on
  ties, as ``AnnotationSession.worst_frame``), its true IoU and whether it lies below the
  sequence's median IoU.

Writes results/quality_score.json. Nothing here is fitted: the calibration comes from
scripts/fit_quality_calibration.py on training-side data.

Usage: OMP_NUM_THREADS=1 python scripts/quality_score_check.py [DATA_ROOT]
(DATA_ROOT defaults to /work/shared/data; uses DATA_ROOT/dev/davis2016 and DATA_ROOT/dev/ctc_psc).
"""

import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr

from napari_ois.core.backends import get_segmenter
from napari_ois.datasets.loaders import load_sequences
from napari_ois.evaluate.propagation_eval import evaluate_sequence

ROOT = Path(__file__).resolve().parent.parent


def _rank(score: np.ndarray, iou: np.ndarray) -> dict:
    rho = spearmanr(score, iou).statistic if np.ptp(score) > 0 and np.ptp(iou) > 0 else float("nan")
    return {"spearman": round(float(rho), 4), "mae": round(float(np.abs(score - iou).mean()), 4),
            "n_frames": int(len(iou))}


def _walk(segmenter, seq, calibration, track):
    """Per object: (frames, true IoU, score) arrays of one run (``calibration`` None: raw score;
    ``track`` None: the step score as written)."""
    segmenter.quality_calibration = calibration
    segmenter.track_calibration = track
    result = evaluate_sequence(segmenter, seq, "mask")
    return {o: (np.asarray(result.scored_frames[o]), np.asarray(result.j[o]), np.asarray(result.scores[o]))
            for o in result.j if result.j[o]}


VARIANTS = ("raw", "step", "calibrated")


def check_dataset(segmenter, calibration, track, root: Path, fmt: str) -> dict:
    out = {"sequences": {}}
    pooled = {**{v: [] for v in VARIANTS}, "iou": []}
    settings = {"raw": (None, None), "step": (calibration, None), "calibrated": (calibration, track)}
    for seq in load_sequences(root, fmt):
        start = time.perf_counter()
        runs = {v: _walk(segmenter, seq, *settings[v]) for v in VARIANTS}
        raw, cal = runs["raw"], runs["calibrated"]
        for run in runs.values():  # same masks, so the same IoUs frame by frame
            for o in raw:
                assert np.array_equal(raw[o][1], run[o][1]) and np.array_equal(raw[o][0], run[o][0]), (seq.name, o)
        iou = np.concatenate([raw[o][1] for o in raw])
        scores = {v: np.concatenate([runs[v][o][2] for o in raw]) for v in VARIANTS}
        pooled["iou"].append(iou)
        for v in VARIANTS:
            pooled[v].append(scores[v])
        entry = {"objects": len(raw), "J_mean": round(float(iou.mean()), 4),
                 **{v: _rank(scores[v], iou) for v in VARIANTS},
                 "seconds": round(time.perf_counter() - start, 1)}
        if fmt == "davis":
            frames, j, _ = cal[next(iter(cal))]
            median = float(np.median(j))
            entry["median_iou"] = round(median, 4)
            for label, per in runs.items():
                _, _, s = per[next(iter(per))]
                k = int(np.argmin(s))  # first minimum, as AnnotationSession.worst_frame
                entry[label]["worst_frame"] = {"frame": int(frames[k]), "score": round(float(s[k]), 4),
                                               "true_iou": round(float(j[k]), 4),
                                               "below_median": bool(j[k] < median)}
        print(f"  {seq.name}: {json.dumps(entry)}", flush=True)
        # Per object and scored frame, so other scores can be ranked without a rerun.
        entry["per_frame"] = {str(o): {"frame": raw[o][0].tolist(), "iou": np.round(raw[o][1], 4).tolist(),
                                       **{v: np.round(runs[v][o][2], 4).tolist() for v in VARIANTS}}
                               for o in raw}
        out["sequences"][seq.name] = entry
    iou = np.concatenate(pooled["iou"])
    out["pooled"] = {v: _rank(np.concatenate(pooled[v]), iou) for v in VARIANTS}
    return out


def main() -> None:
    data = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("/work/shared/data")
    torch.set_num_threads(1)
    segmenter = get_segmenter("ois", "cpu")
    calibration, track = segmenter.quality_calibration, segmenter.track_calibration
    report = {"backend": "ois", "checkpoint": "packaged default", "init": "first-frame mask, forward, one pass",
              "calibration": {"weights": list(calibration.weights), "bias": calibration.bias},
              "track_calibration": {"weights": list(track.weights), "bias": track.bias}}
    for name, fmt in (("davis2016", "davis"), ("ctc_psc", "ctc")):
        print(f"{name}:", flush=True)
        report[name] = check_dataset(segmenter, calibration, track, data / "dev" / name, fmt)
        print(f"  pooled: {json.dumps(report[name]['pooled'])}", flush=True)
    davis = report["davis2016"]["sequences"]
    report["worst_frame_below_median"] = {s: e["calibrated"]["worst_frame"]["below_median"] for s, e in davis.items()}
    out = ROOT / "results" / "quality_score.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
