"""The track stage of a propagated frame's quality score (mixed into ``AnnotationSession``).

A propagation step scores its mask from what it sees (for ``ois``, a predicted IoU from
the boundary confidence, :mod:`napari_ois.core.quality`). Along one track that score
hardly moves: a mask that slid onto the floor after the dancer left is as crisp as a
right one. The session knows more: the object's look on its annotated frames. As each
propagated frame is written, its score becomes :func:`~napari_ois.core.quality.track_score`
of the step score, the :func:`~napari_ois.core.quality.colour_match` between the
written mask's pixels and the keyframes' object pixels, and the distance to the nearest
keyframe, so the status line, the undo history and *Jump to worst frame* all see the
same number.
"""

from __future__ import annotations

import numpy as np

from .quality import colour_counts, colour_match, track_score


class TrackQuality:
    """Scores written frames against the object's keyframes (needs ``frames``,
    ``keyframes``, ``segmenter`` and ``object_mask`` of the session)."""

    def _written_scores(self, frame: int, masks: dict[int, np.ndarray], step_scores: dict[int, float]) -> dict[int, float]:
        """The scores stored for the objects written on a propagated frame.

        Parameters
        ----------
        frame : int
            The frame written.
        masks : dict
            Object id -> (Y, X) bool: its pixels as written on ``frame``.
        step_scores : dict
            Object id -> the backend's score of the step.

        Returns
        -------
        dict
            Object id -> the track score when the backend has both a step calibration
            and a track calibration (``quality_calibration``, ``track_calibration``);
            else the step score. The frame is read once for all objects.
        """
        calibration = getattr(self.segmenter, "track_calibration", None)
        if calibration is None or getattr(self.segmenter, "quality_calibration", None) is None:
            return dict(step_scores)  # no predicted-IoU scale to refine
        scores, image = {}, None
        for obj, mask in masks.items():
            exemplar = self._exemplar(obj)
            if exemplar is None or step_scores[obj] <= 0.0:
                scores[obj] = step_scores[obj]
                continue
            if image is None:
                image = self.frames[frame]
            match = colour_match(colour_counts(image, mask), exemplar)
            steps = min(abs(frame - key) for key in self.keyframes[obj])
            scores[obj] = track_score(step_scores[obj], match, steps, calibration)
        return scores

    def _exemplar(self, object_id: int) -> np.ndarray | None:
        """(B,) colour counts of the object over all its keyframes (None: no keyframe pixels).

        Cached per keyframe set until the next run begins (:meth:`_forget_exemplars`):
        a keyframe's mask can change between runs (clicks on it), not within one.
        """
        cache = self.__dict__.setdefault("_exemplar_cache", {})
        keys = frozenset(self.keyframes.get(object_id, ()))
        cached = cache.get(object_id)
        if cached is not None and cached[0] == keys:
            return cached[1]
        counts = None
        for key in sorted(keys):
            here = colour_counts(self.frames[key], self.object_mask(object_id, key))
            counts = here if counts is None else counts + here
        exemplar = counts if counts is not None and counts.sum() > 0 else None
        cache[object_id] = (keys, exemplar)
        return exemplar

    def _forget_exemplars(self) -> None:
        """Drop cached keyframe colours (called when a run begins)."""
        self.__dict__.pop("_exemplar_cache", None)
