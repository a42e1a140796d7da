"""Headless propagation of many objects: one pass + streamed labels vs object by object in memory.

Each measurement runs in a fresh child process (peak RSS is per process):

    python scripts/bench_multi_propagation.py ctc  --json results/multi_propagation_ctc.json
    python scripts/bench_multi_propagation.py long --frames 500,1000 --json results/multi_propagation_long.json

``ctc``: the dev CTC sequence (../shared/data/dev/ctc_psc/02, 69 cells) from the
ground-truth masks of its first frame, forward, classical backend, TIFF output; J
against the ground truth of every later frame. ``long``: a generated stack of two
textured discs drifting over noise (256 x 256 frames), forward from frame 0.

``per-object`` is the walk ``napari-ois propagate`` used before: labels in memory,
objects one after another, written at the end. ``one-pass`` is
:func:`napari_ois.api.propagate_file` now.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CTC = ROOT.parent / "shared" / "data" / "dev" / "ctc_psc"


def _per_object(input_path, out, masks):
    """The former ``propagate_file``: in-memory labels, one object at a time, written at the end."""
    from napari_ois.api import _add_keyframe_masks, _frame_labels, build_session
    from napari_ois.core.io import read_labels, write_labels

    session = build_session(input_path)
    _add_keyframe_masks(session, read_labels(masks))
    for object_id in session.objects():
        session.run_propagation(object_id, "forward")
    write_labels(out, _frame_labels(session))


def _one_pass(input_path, out, masks):
    from napari_ois.api import propagate_file

    propagate_file(input_path, out, masks=masks, direction="forward")


def child(mode: str, input_path: str, masks: str, out: str) -> dict:
    """One measured run (in this process); counts the classical backend's encoder passes."""
    from napari_ois.core.classical.segmenter import ClassicalSegmenter

    encodes = [0]
    encode = ClassicalSegmenter.encode

    def counted(self, image):
        encodes[0] += 1
        return encode(self, image)

    ClassicalSegmenter.encode = counted
    start, cpu = time.perf_counter(), time.process_time()
    (_per_object if mode == "per-object" else _one_pass)(input_path, out, masks)
    return {"mode": mode, "seconds": time.perf_counter() - start, "cpu_seconds": time.process_time() - cpu,
            "encodes": encodes[0], "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def _run_child(mode: str, input_path: Path, masks: Path, out: Path) -> dict:
    code = (f"import json, sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
            f"import bench_multi_propagation as b; "
            f"print(json.dumps(b.child({mode!r}, {str(input_path)!r}, {str(masks)!r}, {str(out)!r})))")
    done = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def _ctc_inputs(tmp: Path) -> tuple[Path, Path, list[np.ndarray]]:
    import tifffile

    frames = CTC / "02"
    truth_files = sorted((CTC / "02_ST" / "SEG").glob("man_seg*.tif"))
    truth = [tifffile.imread(p) for p in truth_files]
    keys = np.zeros((len(truth),) + truth[0].shape, np.uint16)
    keys[0] = truth[0]
    masks = tmp / "ctc_keys.tif"
    tifffile.imwrite(masks, keys)
    return frames, masks, truth


def _j_mean(labels: np.ndarray, truth: list[np.ndarray]) -> float:
    """Mean over objects of the mean IoU over frames 1.. (frames where both lack it skipped)."""
    per_object = {}
    for t in range(1, len(truth)):
        for obj in np.unique(truth[0])[1:]:
            gt, pred = truth[t] == obj, labels[t] == obj
            union = (gt | pred).sum()
            if union:
                per_object.setdefault(int(obj), []).append((gt & pred).sum() / union)
    return float(np.mean([np.mean(v) for v in per_object.values()]))


def _long_inputs(tmp: Path, n_frames: int) -> tuple[Path, Path]:
    import tifffile

    rng = np.random.default_rng(0)
    size = 256
    yy, xx = np.mgrid[:size, :size]
    video = np.empty((n_frames, size, size), np.uint8)
    keys = np.zeros((n_frames, size, size), np.uint16)
    for t in range(n_frames):
        frame = rng.integers(20, 60, (size, size), dtype=np.uint8)
        for obj, (cy, cx0, value) in enumerate(((80, 60, 200), (170, 150, 150)), start=1):
            cx = cx0 + 30 * np.sin(t / 25 + obj)
            disc = (yy - cy) ** 2 + (xx - cx) ** 2 < 30**2
            frame[disc] = value + rng.integers(0, 30, disc.sum(), dtype=np.uint8)
            if t == 0:
                keys[0][disc] = obj
        video[t] = frame
    stack, masks = tmp / f"long_{n_frames}.tif", tmp / f"long_{n_frames}_keys.tif"
    tifffile.imwrite(stack, video)  # uncompressed: read lazily through a memory map
    tifffile.imwrite(masks, keys, compression="zlib")
    return stack, masks


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("case", choices=("ctc", "long"))
    parser.add_argument("--frames", default="500,1000", help="long: comma-separated frame counts")
    parser.add_argument("--modes", default="per-object,one-pass")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    modes = args.modes.split(",")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if args.case == "ctc":
            import tifffile

            frames, masks, truth = _ctc_inputs(tmp)
            for mode in modes:
                out = tmp / f"ctc_{mode}.tif"
                row = _run_child(mode, frames, masks, out)
                row.update(case="ctc_psc/02", frames=len(truth), objects=int(len(np.unique(truth[0])) - 1),
                           J_mean=_j_mean(tifffile.imread(out), truth))
                rows.append(row)
                print(json.dumps(row), flush=True)
        else:
            for n in (int(v) for v in args.frames.split(",")):
                stack, masks = _long_inputs(tmp, n)
                for mode in modes:
                    row = _run_child(mode, stack, masks, tmp / f"long_{n}_{mode}.tif")
                    row.update(case="long", frames=n, objects=2)
                    rows.append(row)
                    print(json.dumps(row), flush=True)
                stack.unlink()
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
