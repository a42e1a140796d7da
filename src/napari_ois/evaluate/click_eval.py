"""``eval clicks``: the standard interactive-segmentation protocol (NoC, NoF, mIoU@k, SPC).

The simulated user drives :class:`~napari_ois.core.session.AnnotationSession`, the very
object the napari widget drives, so the numbers measure what users get.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..core.boxes import box_of_mask
from ..core.click_simulator import iou, next_click
from ..core.clicks import Click
from ..core.config import AnnotationConfig
from ..core.frames import FrameStack
from ..core.io import read_image_file
from ..core.segmenter import EmbeddingCache, Segmenter
from ..core.session import AnnotationSession
from ..datasets.layouts import InstanceItem

EVAL_THRESHOLD = 0.49  # the protocol's probability threshold
IOU_TARGETS = (0.85, 0.90, 0.95)
TARGET_KEYS = {0.85: "85", 0.90: "90", 0.95: "95"}  # how the JSON names each target
INIT_PROMPTS = ("click", "box")  # what the simulated user gives first


@dataclass
class InstanceResult:
    """Per-object outcome: IoU after each click (length ``max_clicks``)."""

    name: str
    ious: list[float]
    seconds: float
    encode_s: float

    def noc(self, target: float, max_clicks: int) -> int:
        """Number of clicks to reach ``target`` IoU; ``max_clicks`` when never reached."""
        for k, value in enumerate(self.ious, start=1):
            if value >= target:
                return k
        return max_clicks


def evaluate_instance(
    segmenter: Segmenter,
    frames: FrameStack,
    cache: EmbeddingCache,
    item: InstanceItem,
    max_clicks: int = 20,
    init: str = "click",
) -> InstanceResult:
    """Run the protocol on one object: up to ``max_clicks`` simulated interactions.

    All ``max_clicks`` are simulated (no early stop) so that mIoU after every k is
    defined; once the prediction is perfect the last IoU is carried forward. With
    ``init="box"`` the first interaction is the object's true (tight) box, and the
    corrective clicks of the protocol follow; NoC then counts the box as one.
    """
    if init not in INIT_PROMPTS:
        raise ValueError(f"init must be one of {INIT_PROMPTS}, got {init!r}")
    config = AnnotationConfig(threshold=EVAL_THRESHOLD)
    session = AnnotationSession(frames, segmenter=segmenter, config=config, cache=cache)
    start = time.perf_counter()
    encoded_before = 0 in cache
    cache.get(0)
    encode_s = 0.0 if encoded_before else time.perf_counter() - start
    predicted = np.zeros(item.truth.shape, bool)
    clicked = np.zeros(item.truth.shape, bool)
    ious: list[float] = []
    box = box_of_mask(item.truth & ~item.ignore if item.ignore is not None else item.truth)
    if init == "box" and box is not None:
        predicted = session.add_box(1, 0, box).prob > EVAL_THRESHOLD
        ious.append(iou(item.truth, predicted, item.ignore))
    while len(ious) < max_clicks:
        click = next_click(item.truth, predicted, item.ignore, clicked)
        if click is None:
            ious.extend([ious[-1] if ious else 1.0] * (max_clicks - len(ious)))
            break
        clicked[click.y, click.x] = True
        prediction = session.add_click(Click(1, 0, click.y, click.x, click.positive))
        predicted = prediction.prob > EVAL_THRESHOLD
        ious.append(iou(item.truth, predicted, item.ignore))
    return InstanceResult(item.name, ious, time.perf_counter() - start, encode_s)


def evaluate_clicks(
    segmenter: Segmenter,
    items: list[InstanceItem],
    max_clicks: int = 20,
    on_item: Callable[[int, InstanceResult], None] | None = None,
    init: str = "click",
) -> list[InstanceResult]:
    """Evaluate every item (``init`` as :func:`evaluate_instance`); each image is encoded
    once for all of its objects."""
    results = []
    current_path, frames, cache = None, None, None
    for i, item in enumerate(items):
        if item.image_path != current_path:
            current_path = item.image_path
            frames = FrameStack(read_image_file(item.image_path))
            cache = EmbeddingCache(segmenter, frames.__getitem__, max_bytes=2**30)
        result = evaluate_instance(segmenter, frames, cache, item, max_clicks, init)
        results.append(result)
        if on_item is not None:
            on_item(i, result)
    return results


def summarize(results: list[InstanceResult], max_clicks: int = 20) -> dict:
    """The contract's metrics: NoC/NoF at 85/90/95, mIoU after 1..max_clicks, SPC, encode time."""
    ious = np.array([r.ious for r in results])
    nocs = {t: np.array([r.noc(t, max_clicks) for r in results]) for t in IOU_TARGETS}
    total_clicks = ious.size
    return {
        "n": len(results),
        "noc": {TARGET_KEYS[t]: float(v.mean()) for t, v in nocs.items()},
        # NoF counts objects whose NoC hit the limit (success on the last click included).
        "nof": {TARGET_KEYS[t]: int((v >= max_clicks).sum()) for t, v in nocs.items()},
        "miou_at": [float(x) for x in ious.mean(axis=0)],
        "spc_s": float(sum(r.seconds for r in results) / max(total_clicks, 1)),
        "encode_s": float(np.mean([r.encode_s for r in results if r.encode_s > 0] or [0.0])),
    }


def item_nocs(result: InstanceResult, max_clicks: int = 20) -> dict[str, int]:
    """One object's NoC at each target, keyed as the JSON keys them ("85", "90", "95")."""
    return {TARGET_KEYS[t]: result.noc(t, max_clicks) for t in IOU_TARGETS}


def paired_noc(run: dict, baseline: dict, key: str) -> tuple[float, float, int, int, int] | None:
    """Per-object NoC difference ``run`` - ``baseline`` at threshold ``key`` ("85", "90", "95").

    ``run`` and ``baseline`` are ``eval clicks`` JSON payloads of the same objects; the
    standard error is that of the mean of the paired differences (its spread over the
    objects / sqrt(n)), the yardstick for whether one backend's NoC lead is more than noise.

    Returns
    -------
    tuple or None
        (mean difference, its standard error, objects where ``run`` took fewer clicks, more,
        as many); None when either run lacks ``per_item_noc`` or they share no object.
    """
    a, b = run.get("per_item_noc"), baseline.get("per_item_noc")
    names = sorted(set(a) & set(b)) if a and b else []
    if not names:
        return None
    diff = np.array([a[n][key] - b[n][key] for n in names], dtype=float)
    se = float(diff.std(ddof=1) / np.sqrt(len(diff))) if len(diff) > 1 else float("nan")
    return float(diff.mean()), se, int((diff < 0).sum()), int((diff > 0).sum()), int((diff == 0).sum())
