"""Autosave: overhead per propagated frame, bytes on disk per frame, and a random-kill test.

Usage::

    python scripts/bench_autosave.py --frames 100 --size 480x854 --kills 20 --json results/bench_autosave.json

The overhead is measured with a cheap deterministic segmenter (bright components touching
the previous mask), so the difference with and without autosave is the autosave's own
work: mirroring the frame's label plane to zarr and journaling the frame (fsync'd).

The kill test starts a propagation in a child process, SIGKILLs it at a random moment
(not aligned with frames), restores the autosave and checks that every frame the child
reported complete is there bit-exact and that no frame is half-written.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import tifffile
from scipy import ndimage

from napari_ois.api import open_frames
from napari_ois.core.autosave import AutosaveStore, restore_sessions
from napari_ois.core.clicks import Click
from napari_ois.core.segmenter import Prediction
from napari_ois.core.session import AnnotationSession


class BrightComponents:
    """Deterministic stand-in segmenter: the bright components under clicks / touching the reference."""

    name = "bright-components"

    def __init__(self, delay: float = 0.0):
        self.delay = delay

    def encode(self, image):
        return _Gray(image.mean(axis=-1))

    def predict(self, embedding, clicks, prev_prob=None, reference=None):
        if reference is not None and self.delay:
            time.sleep(self.delay)
        labels, _ = ndimage.label(embedding.gray > 0.5)
        mask = np.zeros(labels.shape, bool)
        if reference is not None:
            ids = np.unique(labels[reference.mask & (labels > 0)])
            mask |= np.isin(labels, ids[ids > 0])
        for c in clicks:
            lab = labels[int(c.y), int(c.x)]
            if lab:
                mask = mask | (labels == lab) if c.positive else mask & (labels != lab)
        return Prediction(mask.astype(np.float32), 1.0 if mask.any() else 0.0)


class _Gray:
    def __init__(self, gray):
        self.gray = gray
        self.nbytes = gray.nbytes


def make_video(path: Path, n: int, height: int, width: int) -> np.ndarray:
    """A uint8 (T, Y, X) video of two discs drifting right; returns their (T, Y, X) labels."""
    yy, xx = np.mgrid[:height, :width]
    video = np.zeros((n, height, width), np.uint8)
    truth = np.zeros((n, height, width), np.uint32)
    radius = max(4, height // 8)
    for t in range(n):
        for obj, (cy, cx) in enumerate([(height // 3, radius + 2), (2 * height // 3, 2 * radius + 4)], start=1):
            x = cx + (t * (width - 4 * radius - 8)) // max(n - 1, 1)
            disc = (yy - cy) ** 2 + (xx - x) ** 2 < radius**2
            video[t][disc] = 200 + 20 * obj
            truth[t][disc] = obj
    tifffile.imwrite(path, video)
    return truth


def first_clicks(truth: np.ndarray) -> list[Click]:
    clicks = []
    for obj in (1, 2):
        ys, xs = np.nonzero(truth[0] == obj)
        clicks.append(Click(obj, 0, float(ys.mean()), float(xs.mean())))
    return clicks


def propagate(path: Path, truth: np.ndarray, folder: Path | None, delay: float = 0.0, report=None) -> float:
    """Seconds to propagate both objects forward through the video (autosaved into ``folder``)."""
    session = AnnotationSession(open_frames(path), segmenter=BrightComponents(delay))
    store = None
    if folder is not None:
        store = AutosaveStore.create(folder, session.labels, image_path=path, replace=True)
        store.attach(session)
    for click in first_clicks(truth):
        session.add_click(click)
    start = time.perf_counter()
    for obj in (1, 2):
        session.run_propagation(obj, "forward", on_frame=None if report is None else
                                (lambda r, obj=obj: report(obj, r.frame)))
    seconds = time.perf_counter() - start
    if store is not None:
        store.close()
    return seconds


def folder_bytes(folder: Path, pattern: str) -> int:
    return sum(p.stat().st_size for p in folder.glob(pattern) if p.is_file())


def measure_overhead(work: Path, n: int, height: int, width: int, repeats: int) -> dict:
    path = work / "video.tif"
    truth = make_video(path, n, height, width)
    frames = 2 * (n - 1)
    plain, saved = [], []
    for _ in range(repeats):
        plain.append(propagate(path, truth, None))
        saved.append(propagate(path, truth, work / "video.tif.ois"))
    folder = work / "video.tif.ois"
    return {
        "frames": frames,
        "size": [height, width],
        "ms_per_frame_without": 1000 * statistics.median(plain) / frames,
        "ms_per_frame_with": 1000 * statistics.median(saved) / frames,
        "overhead_ms_per_frame": 1000 * (statistics.median(saved) - statistics.median(plain)) / frames,
        "journal_bytes_per_frame": (folder / "journal.jsonl").stat().st_size / frames,
        "labels_zarr_bytes_per_frame": folder_bytes(folder / "labels.zarr", "**/*") / n,
    }


def child(path: str, folder: str, delay: float) -> None:
    """The killed process: propagate, printing each frame once it is applied (and autosaved)."""
    truth = np.load(folder + ".truth.npy")  # only for the first clicks
    propagate(Path(path), truth, Path(folder), delay, report=lambda obj, f: print("done", obj, f, flush=True))


def kill_test(work: Path, kills: int, n: int, height: int, width: int, delay: float, seed: int) -> dict:
    path = work / "kill.tif"
    truth = make_video(path, n, height, width)
    rng = random.Random(seed)
    result = {"kills": 0, "reported_frames": 0, "lost_reported_frames": 0, "half_written_frames": 0,
              "unreported_frames_on_disk": 0, "torn_journal_tails": 0, "finished_before_kill": 0}
    for k in range(kills):
        folder = work / f"kill{k}.ois"
        np.save(str(folder) + ".truth.npy", truth)
        proc = subprocess.Popen([sys.executable, __file__, "--child", str(path), str(folder), str(delay)],
                                stdout=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
        reported = []
        wait_frames = rng.randint(1, 2 * (n - 1) - 2)
        for line in proc.stdout:
            reported.append(tuple(int(v) for v in line.split()[1:]))
            if len(reported) >= wait_frames:
                time.sleep(rng.uniform(0.0, 2 * delay + 0.01))
                os.kill(proc.pid, signal.SIGKILL)
                break
        reported += [tuple(int(v) for v in ln.split()[1:]) for ln in proc.stdout.read().splitlines()]
        proc.wait()
        if proc.returncode != -signal.SIGKILL:
            result["finished_before_kill"] += 1
        restored = restore_sessions(folder, segmenter_factory=lambda config: BrightComponents())
        labels = restored.labels
        result["kills"] += 1
        result["reported_frames"] += len(reported)
        result["torn_journal_tails"] += any("torn" in w for w in restored.contents.warnings)
        result["lost_reported_frames"] += sum(
            not np.array_equal(labels[f] == o, truth[f] == o) for o, f in reported)
        on_disk = set()
        for f in range(1, n):
            for o in (1, 2):
                mask = labels[f] == o
                if mask.any():
                    on_disk.add((o, f))
                    result["half_written_frames"] += not np.array_equal(mask, truth[f] == o)
        result["unreported_frames_on_disk"] += len(on_disk - set(reported))
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--size", default="480x854")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--kill-frames", type=int, default=30)
    parser.add_argument("--kill-delay", type=float, default=0.02, help="seconds per frame in the killed child")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None)
    parser.add_argument("--child", nargs=3, metavar=("IMAGE", "FOLDER", "DELAY"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child[0], args.child[1], float(args.child[2]))
        return 0
    height, width = (int(v) for v in args.size.lower().split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        result = {"overhead": measure_overhead(work, args.frames, height, width, args.repeats)}
        if args.kills:
            result["kill_test"] = kill_test(work, args.kills, args.kill_frames, height, width,
                                            args.kill_delay, args.seed)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
