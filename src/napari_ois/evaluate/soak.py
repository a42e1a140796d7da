"""``napari-ois bench --soak N``: thousands of clicks, undo/redo and propagation runs on one session.

The soak looks for memory that grows with use (undo history, caches, per-frame state)
and for undo/redo bookkeeping that drifts over a long session. It drives the same
:class:`~napari_ois.core.session.AnnotationSession` the widget uses, with a seeded
random mix of operations on a lazily generated video, samples the process's resident
memory (RSS) every ``sample_every`` operations, and at the end undoes everything
(labels must be empty again) and redoes everything (labels must be exactly the final
ones again).
"""

from __future__ import annotations

import gc
import json
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ..core.clicks import Click
from ..core.config import AnnotationConfig
from ..core.errors import OISError
from ..core.frames import FrameStack, StackNormalizer
from ..core.session import AnnotationSession
from ..threads import usable_cores
from .bench import SyntheticVideo

# Share of each operation in the random mix (the rest of the probability mass: clicks).
UNDO_SHARE, REDO_SHARE, PROPAGATE_SHARE, CLEAR_SHARE = 0.20, 0.15, 0.02, 0.01


def _rss_mb() -> float:
    try:
        import psutil
    except ImportError:
        raise OISError("the soak needs psutil (pip install napari-ois[eval])") from None
    return psutil.Process().memory_info().rss / 2**20


def history_bytes(session: AnnotationSession) -> int:
    """Bytes held by the undo and redo stacks (packed masks and probabilities)."""

    seen: set[int] = set()  # one click's "after" probability is the next click's "before": count once

    def held(state) -> int:
        if state is None or id(state) in seen:
            return 0
        seen.add(id(state))
        return len(state) if isinstance(state, bytes) else int(getattr(state, "nbytes", 0))

    def action_bytes(action) -> int:
        total = sum(held(b) + held(a) for b, a in action.masks.values())
        total += sum(held(b) + held(a) for b, a in action.probs.values())
        return total + sum(action_bytes(p) for p in getattr(action, "parts", ()))

    return sum(action_bytes(a) for a in session.undo_stack + session.redo_stack)


@dataclass
class _Mix:
    """The seeded random operation stream."""

    rng: np.random.Generator
    video: SyntheticVideo
    objects: int

    def next(self) -> tuple:
        draw = self.rng.random()
        if draw < UNDO_SHARE:
            return ("undo",)
        draw -= UNDO_SHARE
        if draw < REDO_SHARE:
            return ("redo",)
        draw -= REDO_SHARE
        obj = int(self.rng.integers(1, self.objects + 1))
        if draw < PROPAGATE_SHARE:
            return ("propagate", obj)
        draw -= PROPAGATE_SHARE
        if draw < CLEAR_SHARE:
            return ("clear", obj)
        n_frames, height, width, _ = self.video.shape
        frame = int(self.rng.integers(0, n_frames))
        positive = bool(self.rng.random() < 0.6)
        if obj == 1 and positive:  # object 1 is the moving disk: click inside it
            cy, cx = self.video.center(frame)
            r = self.video.radius * 0.6
            y, x = cy + self.rng.uniform(-r, r), cx + self.rng.uniform(-r, r)
        else:  # the others are patches of background texture; negatives fall anywhere
            y, x = self.rng.uniform(0, height), self.rng.uniform(0, width)
        return ("click", obj, frame, float(y), float(x), positive)


def _apply(session: AnnotationSession, op: tuple) -> None:
    kind = op[0]
    if kind == "click":
        _, obj, frame, y, x, positive = op
        session.add_click(Click(obj, frame, y, x, positive))
    elif kind == "undo":
        session.undo()
    elif kind == "redo":
        session.redo()
    elif kind == "clear":
        session.clear_object(op[1])
    elif session.keyframes_of(op[1]):
        session.run_propagation(op[1], "both")


def _slope_mb_per_1000(ops: list[int], rss: list[float]) -> float:
    """Least-squares slope of RSS against operations, in MB per 1,000 operations."""
    if len(ops) < 2:
        return 0.0
    return float(np.polyfit(np.asarray(ops, float), np.asarray(rss, float), 1)[0] * 1000)


def run_soak(
    operations: int = 5000,
    height: int = 200,
    width: int = 200,
    n_frames: int = 50,
    objects: int = 4,
    sample_every: int = 100,
    seed: int = 0,
    undo_mb: float = 1024.0,
    json_path: str | Path | None = None,
    plot_path: str | Path | None = None,
    log: Callable[[str], None] | None = None,
) -> dict:
    """Run the soak and return (and optionally write) its figures.

    Parameters
    ----------
    operations : int
        Number of random operations (clicks ~62 %, undo 20 %, redo 15 %, propagation
        runs 2 %, clearing an object 1 %).
    height, width, n_frames : int
        Size of the generated (T, Y, X, 3) uint8 video.
    objects : int
        Object ids 1..objects are clicked.
    sample_every : int
        RSS (after a garbage collection) is sampled every this many operations.
    undo_mb : float
        The session's undo-history budget (``AnnotationConfig.undo_mb``).

    Returns
    -------
    dict
        ``rss_mb`` samples, ``history_mb`` samples, ``growth`` figures (first half
        vs second half, least-squares slope over the second half in MB per 1,000
        operations), operation counts, ms per operation and the final undo/redo checks
        (``undo_all_gives_empty_labels`` is None when the budget made the session forget
        its oldest steps).
    """
    video = SyntheticVideo(n_frames, height, width, radius=max(2, min(height, width) // 6))
    frames = FrameStack(video, normalizer=StackNormalizer(0.0, 255.0))
    session = AnnotationSession(frames, config=AnnotationConfig(backend="classical", undo_mb=undo_mb))
    mix = _Mix(np.random.default_rng(seed), video, objects)
    counts: dict[str, int] = {}
    samples_ops, samples_rss, samples_history, samples_actions, samples_cache = [], [], [], [], []

    def sample(done: int) -> None:
        gc.collect()
        samples_ops.append(done)
        samples_rss.append(round(_rss_mb(), 2))
        samples_history.append(round(history_bytes(session) / 2**20, 3))
        samples_actions.append(len(session.undo_stack) + len(session.redo_stack))
        samples_cache.append(round(session.cache.nbytes / 2**20, 2))

    start = time.perf_counter()
    sample(0)
    for done in range(1, operations + 1):
        op = mix.next()
        _apply(session, op)
        counts[op[0]] = counts.get(op[0], 0) + 1
        if done % sample_every == 0 or done == operations:
            sample(done)
            if log is not None:
                log(f"soak: {done}/{operations} operations, RSS {samples_rss[-1]:.1f} MB, "
                    f"undo history {samples_history[-1]:.2f} MB in {samples_actions[-1]} steps")
    seconds = time.perf_counter() - start

    final = session.labels.copy()
    undone = 0
    while session.undo() is not None:
        undone += 1
    # with steps forgotten (undo budget reached) undo cannot go back to the start
    empty_after_undo = None if session.forgotten_steps else not session.labels.any()
    for _ in range(undone):  # not further: steps undone before the end stay undone
        session.redo()
    redo_restores = bool(np.array_equal(session.labels, final))

    half = len(samples_ops) // 2
    second = slice(half, None)
    payload = {
        "backend": "classical",
        "frame_size": [height, width],
        "frames": n_frames,
        "objects": objects,
        "operations": operations,
        "seed": seed,
        "undo_mb": undo_mb,
        "counts": counts,
        "ms_per_operation": round(1000 * seconds / max(operations, 1), 2),
        "samples": {"operations": samples_ops, "rss_mb": samples_rss, "history_mb": samples_history,
                    "history_steps": samples_actions, "embedding_cache_mb": samples_cache},
        "growth": {
            "rss_start_mb": samples_rss[0],
            "rss_end_mb": samples_rss[-1],
            "rss_mid_mb": samples_rss[half],
            "rss_second_half_mb": round(samples_rss[-1] - samples_rss[half], 2),
            "slope_second_half_mb_per_1000_ops": round(_slope_mb_per_1000(samples_ops[second], samples_rss[second]), 3),
            "history_end_mb": samples_history[-1],
        },
        "undo_all_steps": undone,
        "undo_steps_forgotten": session.forgotten_steps,
        "undo_all_gives_empty_labels": empty_after_undo,
        "redo_all_gives_final_labels": redo_restores,
        "machine": f"{platform.machine()}, {usable_cores()} CPU core(s), Python {platform.python_version()}",
    }
    if json_path:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(json.dumps(payload, indent=2) + "\n")
    if plot_path:
        plot_soak(payload, plot_path)
    return payload


def plot_soak(payload: dict, path: str | Path) -> bool:
    """RSS and undo-history size against the number of operations; returns whether a file was written."""
    from .plots import load_pyplot

    loaded = load_pyplot()
    if loaded is None:
        return False
    plt, _ = loaded
    s = payload["samples"]
    fig, ax = plt.subplots(figsize=(7, 4), dpi=120)
    ax.plot(s["operations"], s["rss_mb"], label="process RSS", color="tab:blue")
    ax.plot(s["operations"], s["embedding_cache_mb"], label="embedding cache (bounded by cache_mb)",
            color="tab:green", linestyle=":")
    ax.plot(s["operations"], s["history_mb"], label="undo history (bounded by undo_mb)",
            color="tab:orange", linestyle="--")
    growth = payload["growth"]
    height, width = payload["frame_size"]
    ax.set(xlabel="operations (clicks, undo, redo, propagation runs)", ylabel="MB",
           title=f"Soak: {payload['operations']} operations, {height}x{width} frames, undo budget "
                 f"{payload['undo_mb']} MB:\nslope over the second half "
                 f"{growth['slope_second_half_mb_per_1000_ops']:+.2f} MB / 1000 operations")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="center right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True
