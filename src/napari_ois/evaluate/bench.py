"""``napari-ois bench``: encode time, seconds per click, propagation speed and peak memory.

Every figure is the median of repeated runs. Peak memory is measured in a fresh child
process per video length, so the parent's imports and caches do not pollute it.
"""

from __future__ import annotations

import json
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ..core.clicks import Click
from ..core.config import AnnotationConfig
from ..core.frames import FrameStack, StackNormalizer
from ..core.backends import DEFAULT_BACKEND
from ..core.session import AnnotationSession
from ..progress_bar import ProgressBar
from ..threads import usable_cores


class SyntheticVideo:
    """A lazily generated (T, Y, X, 3) uint8 video: a textured disk drifting over a textured background.

    Frames are made on demand from their index, so a 10,000-frame video costs no memory.
    """

    def __init__(self, n_frames: int, height: int = 480, width: int = 854, radius: int = 60):
        self.shape = (n_frames, height, width, 3)
        self.dtype = np.dtype(np.uint8)
        self.radius = radius
        yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
        background = 90 + 40 * np.sin(xx / 37.0) * np.cos(yy / 23.0)
        self._background = np.stack([background, background * 0.9 + 20, background * 0.7 + 30], -1)
        self._grid = (yy, xx)

    def center(self, t: int) -> tuple[float, float]:
        """Disk centre on frame ``t``: a slow Lissajous path that stays inside the frame."""
        _, height, width, _ = self.shape
        return (height / 2 + height / 4 * np.sin(t / 40.0), width / 2 + width / 4 * np.sin(t / 57.0))

    def truth(self, t: int) -> np.ndarray:
        """(Y, X) bool ground-truth disk of frame ``t``."""
        cy, cx = self.center(t)
        yy, xx = self._grid
        return (yy - cy) ** 2 + (xx - cx) ** 2 <= self.radius**2

    def __getitem__(self, index):
        index = index if isinstance(index, tuple) else (index,)
        t = int(index[0])
        frame = self._background.copy()
        disk = self.truth(t)
        frame[disk] = (200, 60 + 20 * np.sin(t / 5.0), 50)
        frame = frame.astype(np.uint8)
        return frame[index[1:]] if len(index) > 1 else frame

    def __len__(self) -> int:
        return self.shape[0]


def _session(video: SyntheticVideo, backend: str, device: str, checkpoint: str | None, labels=None):
    config = AnnotationConfig(backend=backend, device=device, checkpoint=checkpoint)
    # 8-bit frames: the natural range; no need to sample the stack.
    frames = FrameStack(video, normalizer=StackNormalizer(0.0, 255.0))
    return AnnotationSession(frames, labels=labels, config=config)


def measure_clicks(backend: str, device: str, checkpoint: str | None, height: int, width: int,
                   repeats: int = 5, clicks: int = 5) -> tuple[float, float]:
    """Median encode ms of one frame and median ms of one click (encoder not rerun)."""
    video = SyntheticVideo(repeats, height, width)
    encode_ms, click_ms = [], []
    for t in range(repeats):
        session = _session(video, backend, device, checkpoint)
        start = time.perf_counter()
        session.cache.get(t)
        encode_ms.append(1000 * (time.perf_counter() - start))
        cy, cx = video.center(t)
        for k in range(clicks):
            # Alternate inside clicks and background clicks, like a user correcting.
            y, x, positive = (cy + 5 * k, cx, True) if k % 2 == 0 else (10 + 3 * k, 10 + 3 * k, False)
            start = time.perf_counter()
            session.add_click(Click(1, t, y, x, positive))
            click_ms.append(1000 * (time.perf_counter() - start))
    return statistics.median(encode_ms), statistics.median(click_ms)


def measure_propagation(backend: str, device: str, checkpoint: str | None, n_frames: int,
                        height: int, width: int, labels=None) -> tuple[float, float]:
    """(frames per second, mean IoU) of forward propagation from a first-frame mask."""
    video = SyntheticVideo(n_frames, height, width)
    session = _session(video, backend, device, checkpoint, labels)
    session.set_keyframe_mask(1, 0, video.truth(0))
    ious = []

    def score(result) -> None:
        truth = video.truth(result.frame)
        ious.append(np.count_nonzero(truth & result.mask) / max(np.count_nonzero(truth | result.mask), 1))

    start = time.perf_counter()
    session.run_propagation(1, "forward", on_frame=score)
    elapsed = time.perf_counter() - start
    return (len(ious) / elapsed if elapsed > 0 else 0.0), float(np.mean(ious)) if ious else 0.0


def peak_rss_child(backend: str, device: str, checkpoint: str | None, n_frames: int,
                   height: int, width: int) -> dict:
    """Propagate through a lazily generated video in a fresh process; its peak RSS in MB."""
    code = (
        "import json, sys; from napari_ois.evaluate.bench import _child_main; "
        f"print(json.dumps(_child_main({backend!r}, {device!r}, {checkpoint!r}, {n_frames}, {height}, {width})))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"benchmark child failed: {out.stderr.strip().splitlines()[-1:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _child_main(backend: str, device: str, checkpoint: str | None, n_frames: int, height: int, width: int) -> dict:
    import zarr

    from ..threads import configure_threads

    configure_threads()  # the parent's --threads, passed on in $NAPARI_OIS_THREADS

    with tempfile.TemporaryDirectory() as tmp:
        # Labels on disk, one chunk per frame: memory must not grow with the video length.
        labels = zarr.open(str(Path(tmp) / "labels.zarr"), mode="w", shape=(n_frames, height, width),
                           chunks=(1, height, width), dtype=np.uint32)
        fps, mean_iou = measure_propagation(backend, device, checkpoint, n_frames, height, width, labels)
    # ru_maxrss is in kB on Linux.
    return {"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "fps": fps, "iou": mean_iou}


def run_bench(backend: str = DEFAULT_BACKEND, device: str = "auto", checkpoint: str | None = None,
              height: int = 480, width: int = 854, repeats: int = 5, propagate_frames: int = 30,
              long_videos: tuple[int, ...] = (1000, 10000), json_path: str | None = None) -> dict:
    """All benchmark figures in the contract's JSON shape (plus the settings that produced them).

    A progress bar on stderr counts the measuring runs: the click runs (one per repeat),
    three propagation runs and one child process per long video (the long runs dominate).
    """
    with ProgressBar(repeats + 3 + len(long_videos), "bench", unit="run") as bar:
        encode_ms, spc_ms = measure_clicks(backend, device, checkpoint, height, width, repeats)
        bar.update(repeats)
        fps_runs = []
        for _ in range(3):
            fps_runs.append(measure_propagation(backend, device, checkpoint, propagate_frames, height, width))
            bar.update()
        rss = {}
        for n in long_videos:
            rss[str(n)] = peak_rss_child(backend, device, checkpoint, n, height, width)
            bar.update()
    payload = {
        "backend": backend,
        "device": device if device != "auto" else _resolved_device(),
        "checkpoint": checkpoint,
        "resolution": [height, width],
        "encode_ms": round(encode_ms, 2),
        "spc_ms": round(spc_ms, 2),
        "propagate_fps": round(statistics.median(f for f, _ in fps_runs), 3),
        "propagate_iou": round(statistics.median(i for _, i in fps_runs), 4),
        "peak_rss_mb": {n: round(r["peak_rss_mb"], 1) for n, r in rss.items()},
        "long_video_fps": {n: round(r["fps"], 3) for n, r in rss.items()},
        "machine": f"{platform.machine()}, {usable_cores()} CPU core(s), Python {platform.python_version()}",
        "repeats": repeats,
    }
    if json_path:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(json.dumps(payload, indent=2) + "\n")
    return payload


def _resolved_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
