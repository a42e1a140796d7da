"""``eval propagation``: initialise on the first frame, propagate to the end, score J.

J is region similarity (IoU) per object and frame. Per sequence: J mean, J recall
(fraction of frames with IoU > 0.5) and J decay (mean J over the first quarter of the
frames minus the last quarter), averaged over objects; the first frame (the given
initialisation) is excluded. Frames per second count propagated frames only.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from ..core.click_simulator import iou, next_click
from ..core.clicks import Click
from ..core.config import AnnotationConfig
from ..core.frames import FrameStack
from ..core.io import read_image_file
from ..core.segmenter import Segmenter
from ..core.session import AnnotationSession
from ..datasets.loaders import Sequence

INIT_MODES = ("mask", "clicks")
INIT_CLICK_TARGET = 0.9


class _FileStack:
    """(T, Y, X[, C]) array-like over a list of image files, read one frame at a time."""

    def __init__(self, paths):
        self.paths = list(paths)
        first = read_image_file(self.paths[0])
        self.shape = (len(self.paths), *first.shape)
        self.dtype = first.dtype

    def __getitem__(self, index):
        index = index if isinstance(index, tuple) else (index,)
        frame = read_image_file(self.paths[index[0]])
        return frame[index[1:]] if len(index) > 1 else frame


def _truth(seq: Sequence, t: int) -> np.ndarray:
    mask = read_image_file(seq.truth[t], labels=True)
    mask = mask[..., 0] if mask.ndim == 3 else mask
    return (mask > 0).astype(np.uint16) if seq.binary else mask.astype(np.int64)


@dataclass
class SequenceResult:
    """J per object and frame for one sequence."""

    name: str
    j: dict[int, list[float]] = field(default_factory=dict)  # object -> IoU per scored frame
    # object -> the quality score shown for each scored frame (0 where no front reached it:
    # the object was lost), and the frame indices; aligned with ``j``.
    scores: dict[int, list[float]] = field(default_factory=dict)
    scored_frames: dict[int, list[int]] = field(default_factory=dict)
    frames: int = 0
    seconds: float = 0.0
    init_clicks: int = 0

    def metrics(self) -> dict:
        per_object = [np.asarray(v) for v in self.j.values() if len(v)]
        if not per_object:
            return {"J_mean": 0.0, "J_recall": 0.0, "J_decay": 0.0, "frames": self.frames, "fps": 0.0}

        def decay(v: np.ndarray) -> float:
            quarter = max(1, len(v) // 4)
            return float(v[:quarter].mean() - v[-quarter:].mean())

        return {
            "J_mean": float(np.mean([v.mean() for v in per_object])),
            "J_recall": float(np.mean([(v > 0.5).mean() for v in per_object])),
            "J_decay": float(np.mean([decay(v) for v in per_object])),
            "frames": self.frames,
            "fps": float((self.frames - 1) / self.seconds) if self.seconds > 0 else 0.0,
            "objects": len(per_object),
            "init_clicks": self.init_clicks,
        }


def _initialise(session: AnnotationSession, truth0: np.ndarray, init: str) -> int:
    """Annotate frame 0 from its ground truth; returns the number of simulated clicks."""
    clicks = 0
    for object_id in (int(i) for i in np.unique(truth0) if i):
        target = truth0 == object_id
        if init == "mask":
            session.set_keyframe_mask(object_id, 0, target)
            continue
        predicted = np.zeros(target.shape, bool)
        clicked = np.zeros(target.shape, bool)
        for _ in range(20):
            click = next_click(target, predicted, clicked=clicked)
            if click is None:
                break
            clicked[click.y, click.x] = True
            session.add_click(Click(object_id, 0, click.y, click.x, click.positive))
            clicks += 1
            predicted = session.object_mask(object_id, 0)
            if iou(target, predicted) >= INIT_CLICK_TARGET:
                break
    return clicks


def evaluate_sequence(
    segmenter: Segmenter, seq: Sequence, init: str = "mask", one_pass: bool = True
) -> SequenceResult:
    """Initialise on frame 0, propagate forward through the sequence, score every later frame.

    ``one_pass``: all objects advance together, overlaps resolved by order (what the CLI
    and the widget's *All objects* run); False: one object after another, the first
    object keeping overlapping pixels (the earlier walk, kept for comparisons).
    """
    frames = FrameStack(_FileStack(seq.frames))
    session = AnnotationSession(frames, segmenter=segmenter, config=AnnotationConfig())
    truth0 = _truth(seq, 0)
    result = SequenceResult(seq.name, frames=frames.n_frames)
    result.init_clicks = _initialise(session, truth0, init)
    start = time.perf_counter()
    if one_pass:
        session.run_multi_propagation(direction="forward", record=False)
    else:
        for object_id in session.objects():
            session.run_propagation(object_id, "forward")
    result.seconds = time.perf_counter() - start
    object_ids = [int(i) for i in np.unique(truth0) if i]
    result.j = {o: [] for o in object_ids}
    result.scores = {o: [] for o in object_ids}
    result.scored_frames = {o: [] for o in object_ids}
    for t in range(1, frames.n_frames):
        truth = _truth(seq, t)
        predicted = np.asarray(session.labels[t])
        for o in object_ids:
            gt, pred = truth == o, predicted == o
            if gt.any() or pred.any():  # frames where the object is gone from both say nothing
                result.j[o].append(iou(gt, pred))
                result.scores[o].append(float(session.scores.get(o, {}).get(t, 0.0)))
                result.scored_frames[o].append(t)
    return result


def summarize_sequences(results: list[SequenceResult]) -> dict:
    """The contract's JSON body: overall J mean and per-sequence metrics."""
    sequences = {r.name: r.metrics() for r in results}
    for r in results:
        # Per object and scored frame: true IoU and the quality score (for rank checks).
        sequences[r.name]["per_frame"] = {
            str(o): {"frame": r.scored_frames.get(o, []), "j": [round(v, 4) for v in r.j[o]],
                     "score": [round(v, 4) for v in r.scores.get(o, [])]}
            for o in r.j
        }
    return {
        "J_mean": float(np.mean([m["J_mean"] for m in sequences.values()])) if sequences else 0.0,
        "sequences": sequences,
    }
