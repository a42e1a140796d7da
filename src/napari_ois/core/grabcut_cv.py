"""``grabcut-cv``: OpenCV's GrabCut driven by the same clicks, a well-known peer for results tables.

Nobody here wrote GrabCut, so it keeps our own baselines honest. How clicks drive it:
the first positive click seeds a probable-foreground box around it, every click
becomes a definite foreground/background disk, and a few GrabCut iterations run per
click. A previous probability map (an earlier click, or the reference frame's mask in
propagation) seeds probable foreground/background instead of the box. A box prompt is
GrabCut's own mode: alone, ``GC_INIT_WITH_RECT``; with clicks, outside the box is
definite background and inside it probable foreground, the clicks as disks on top.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .boxes import BoxPrompt
from .click_simulator import iou
from .clicks import Click
from .errors import BackendUnavailable
from .segmenter import Prediction, Reference

WORK_SIDE = 480  # GrabCut is slow; it runs on a frame whose longest side is at most this
DISK_RADIUS = 5  # px at working resolution, as the click disks of the protocol
ITERATIONS = 3
BOX_FRACTION = 0.25  # half-size of the first click's box, as a fraction of the longest side


def _cv2():
    try:
        import cv2
    except ImportError:
        raise BackendUnavailable(
            "the 'grabcut-cv' backend needs OpenCV: pip install opencv-python-headless "
            "(or napari-ois[eval])"
        ) from None
    return cv2


@dataclass
class GrabCutEmbedding:
    """The frame at working resolution: (y, x, 3) uint8 BGR, and the scale from full size."""

    image: np.ndarray
    scale: float
    full_shape: tuple[int, int]

    @property
    def nbytes(self) -> int:
        return self.image.nbytes


class GrabCutSegmenter:
    """OpenCV GrabCut behind the Segmenter interface."""

    name = "grabcut-cv"

    def __init__(self):
        self.cv2 = _cv2()

    def encode(self, image: np.ndarray) -> GrabCutEmbedding:
        """(Y, X, 3) float32 [0, 1] -> working-resolution uint8 BGR copy."""
        full_shape = image.shape[:2]
        scale = min(1.0, WORK_SIDE / max(full_shape))
        small = (np.clip(image, 0, 1) * 255).astype(np.uint8)
        if scale < 1.0:
            size = (max(1, round(full_shape[1] * scale)), max(1, round(full_shape[0] * scale)))
            small = self.cv2.resize(small, size, interpolation=self.cv2.INTER_AREA)
        return GrabCutEmbedding(np.ascontiguousarray(small[..., ::-1]), scale, full_shape)

    def _resize(self, plane: np.ndarray, shape: tuple[int, int], nearest: bool) -> np.ndarray:
        interp = self.cv2.INTER_NEAREST if nearest else self.cv2.INTER_LINEAR
        return self.cv2.resize(plane.astype(np.float32), (shape[1], shape[0]), interpolation=interp)

    def predict(
        self,
        embedding: GrabCutEmbedding,
        clicks: Sequence[Click],
        prev_prob: np.ndarray | None = None,
        reference: Reference | None = None,
        box: BoxPrompt | None = None,
    ) -> Prediction:
        cv2 = self.cv2
        shape = embedding.image.shape[:2]
        if box is not None and not clicks and prev_prob is None and reference is None:
            return self._predict_rect(embedding, box)
        seed = np.full(shape, cv2.GC_BGD, np.uint8)
        if reference is not None and prev_prob is None:
            prev_prob = reference.mask.astype(np.float32)
        prior = None
        if prev_prob is not None:
            prior = self._resize(prev_prob, shape, nearest=False) > 0.5
            if prior.any():
                # Probable labels everywhere near the previous mask, so motion can be followed.
                near = cv2.dilate(prior.astype(np.uint8), np.ones((15, 15), np.uint8)) > 0
                seed[near] = cv2.GC_PR_BGD
                seed[prior] = cv2.GC_PR_FGD
        if box is not None:
            y0, y1, x0, x1 = box.scaled(embedding.scale).pixel_bounds(shape)
            inside = np.zeros(shape, bool)
            inside[y0:y1, x0:x1] = True
            seed[~inside] = cv2.GC_BGD
            seed[inside & (seed == cv2.GC_BGD)] = cv2.GC_PR_FGD if prior is None else cv2.GC_PR_BGD
        positives = [c for c in clicks if c.positive]
        if not (seed == cv2.GC_PR_FGD).any() and positives:
            first = positives[0]
            half = max(2, int(BOX_FRACTION * max(shape)))
            y, x = int(first.y * embedding.scale), int(first.x * embedding.scale)
            seed[max(0, y - half): y + half, max(0, x - half): x + half] = cv2.GC_PR_FGD
        for click in clicks:
            centre = (int(click.x * embedding.scale), int(click.y * embedding.scale))
            cv2.circle(seed, centre, DISK_RADIUS, int(cv2.GC_FGD if click.positive else cv2.GC_BGD), -1)
        if not np.isin(seed, (cv2.GC_FGD, cv2.GC_PR_FGD)).any():
            return Prediction(np.zeros(embedding.full_shape, np.float32), 0.0)
        if not np.isin(seed, (cv2.GC_BGD, cv2.GC_PR_BGD)).any():
            return Prediction(np.ones(embedding.full_shape, np.float32), 0.0)
        bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
        try:
            cv2.grabCut(embedding.image, seed, None, bgd, fgd, ITERATIONS, cv2.GC_INIT_WITH_MASK)
        except cv2.error:
            # GrabCut refuses degenerate seeds (e.g. a flat image); report "nothing found".
            return Prediction(np.zeros(embedding.full_shape, np.float32), 0.0)
        return self._result(embedding, seed, prior)

    def _predict_rect(self, embedding: GrabCutEmbedding, box: BoxPrompt) -> Prediction:
        """GrabCut from a box alone, in OpenCV's rectangle mode."""
        cv2 = self.cv2
        shape = embedding.image.shape[:2]
        y0, y1, x0, x1 = box.scaled(embedding.scale).pixel_bounds(shape)
        seed = np.zeros(shape, np.uint8)
        bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
        try:
            cv2.grabCut(embedding.image, seed, (x0, y0, x1 - x0, y1 - y0), bgd, fgd, ITERATIONS,
                        cv2.GC_INIT_WITH_RECT)
        except cv2.error:
            # A box covering the whole frame leaves no background to model.
            seed[y0:y1, x0:x1] = cv2.GC_PR_FGD
        return self._result(embedding, seed, None)

    def _result(self, embedding: GrabCutEmbedding, seed: np.ndarray, prior: np.ndarray | None) -> Prediction:
        """The full-resolution probability of GrabCut's labels, scored against ``prior``."""
        cv2 = self.cv2
        foreground = np.isin(seed, (cv2.GC_FGD, cv2.GC_PR_FGD)).astype(np.float32)
        prob = self._resize(foreground, embedding.full_shape, nearest=False)
        # GrabCut gives no confidence. As a drift indicator, score = IoU between the
        # result and the prior mask it started from (1 when there was no prior).
        result = foreground > 0.5
        score = iou(result, prior) if prior is not None else 1.0
        return Prediction(np.clip(prob, 0, 1), score)
