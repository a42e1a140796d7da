"""Propagation runs of the widget: a napari worker over the core generator.

The worker only computes (``session.propagation`` yields one FrameResult per frame);
each result is applied on the main thread in ``_on_yielded``, so Stop (``worker.quit()``,
honoured between frames) leaves every frame untouched or complete.
"""

from __future__ import annotations

from typing import Iterator

from napari.qt.threading import create_worker
from napari.utils import progress

from napari_ois.core.errors import OISError
from napari_ois.core.multi_propagation import MultiFrameResult
from napari_ois.core.propagation import FrameResult

from . import _layers


def _iterate(results: Iterator[FrameResult]) -> Iterator[FrameResult]:
    """Worker body: pull frames from the core generator (quit() stops between frames)."""
    yield from results


class PropagationMixin:
    """Propagate / Stop / Jump to worst frame of :class:`AnnotateObjectsWidget`."""

    _progress_pending = 0  # steps of frames applied during napari's progress update
    _progress_updating = False

    # --------------------------------------------------------- propagation
    def _show_frame_count(self) -> None:
        """Set the bar to "0 / N frames", N the frames of the chosen image along the chosen axis.

        Called when the image or axis changes, so the bar tells the length of the data
        before any run (a run then sets its own upper bound, see :meth:`propagate`).
        """
        if self.image_layer is None:
            return
        self.progress.setRange(0, _layers.frame_count(self.image_layer, self.axis))
        self.progress.setValue(0)

    def propagate(self, direction: str = "both"):
        """Start propagating the current object; returns the worker (None if not started).

        If the displayed frame is a keyframe of an object that was propagated before,
        this is a correction: only the frames that change are recomputed from there.
        With *All objects in one pass* checked, :meth:`propagate_all` runs instead.
        """
        if self.worker is not None:
            return None
        if self.all_objects_check.isChecked():
            return self.propagate_all(direction)
        try:
            self._apply_contrast()
            session = self.session
            obj = self.object_spin.value()
            start = session.correction_start(obj, self.current_frame())
            correcting = start is not None
            results = session.propagation(obj, direction, start)
        except OISError as exc:
            self._error(str(exc), warning=True)
            return None
        run = session.begin_run(obj, direction, start)
        self._run = (session, run)
        # Upper bound of the frames to compute: the run may end early (object lost, or a
        # correction agreeing again with the earlier masks).
        total = max(session.frames.n_frames - len(session.keyframes_of(obj)), 1)
        self.progress.setRange(0, total)
        self.progress.setValue(0)
        # napari's own progress bar (activity dock), next to the widget's bar.
        self._napari_progress = progress(total=total, desc=f"napari-ois: object {obj}")
        what = f"from frame {start}" if correcting else direction
        return self._start_worker(results, f"Propagating object {obj} ({what})…")

    def propagate_all(self, direction: str = "both"):
        """Propagate every annotated object in one pass; returns the worker (None if not started).

        Each frame is encoded once for all objects; overlaps go to the object in front
        (or the more probable one); the whole run is one undo step.
        """
        if self.worker is not None:
            return None
        try:
            self._apply_contrast()
            session = self.session
            ids = session.objects_to_propagate()
            results = session.multi_propagation(ids, direction)
        except OISError as exc:
            self._error(str(exc), warning=True)
            return None
        self._run = (session, session.begin_multi_run(ids, direction=direction))
        # Progress counts object-frames: the upper bound is every non-keyframe of every object.
        n_frames = session.frames.n_frames
        total = max(sum(n_frames - len(session.keyframes_of(o)) for o in ids), 1)
        self.progress.setRange(0, total)
        self.progress.setValue(0)
        self._napari_progress = progress(total=total, desc=f"napari-ois: {len(ids)} objects")
        status = f"Propagating {len(ids)} object(s) {_id_list(ids)} in one pass ({direction})…"
        return self._start_worker(results, status)

    def _start_worker(self, results, status: str):
        worker = create_worker(_iterate, results, _start_thread=False)
        worker.yielded.connect(self._on_yielded)
        worker.errored.connect(self._on_worker_error)
        worker.finished.connect(self._on_finished)
        self.worker = worker
        self._set_busy(True)
        self._set_status(status)
        worker.start()
        return worker

    def _on_yielded(self, result: FrameResult) -> None:
        if self._run is None or self.labels_layer is None:
            return  # no run, or its objects layer was removed (on-disk labels are deleted with it)
        session, run = self._run
        if isinstance(result, MultiFrameResult):
            session.apply_multi_result(run, result)
            steps = len(result.masks)
            text = f"Frame {result.frame} done for object(s) {_id_list(sorted(result.masks))}."
        else:
            session.apply_result(run, result)
            steps = 1
            text = f"Object {run.object_id}: frame {result.frame} done ({_score_text(session, result.score)})."
        if not self._hooks.attached:
            return  # the widget is going away: keep the data consistent, skip the UI
        self._refresh_labels()
        self.progress.setValue(min(self.progress.value() + steps, self.progress.maximum()))
        self._set_status(text)
        # Last: napari's progress bar may process Qt events, which can run _on_finished.
        self._advance_napari_progress(steps)

    def _advance_napari_progress(self, steps: int) -> None:
        """Add ``steps`` to napari's progress bar without nesting frame handlers.

        Its update processes Qt events, which delivers frames queued meanwhile: those
        (run inside the update) only add their steps here, and the outer call passes them
        on. Else each queued frame would go one level deeper (RecursionError on a long
        video with a fast backend).
        """
        self._progress_pending += steps
        if self._progress_updating:
            return
        self._progress_updating = True
        try:
            while self._progress_pending and self._napari_progress is not None:
                steps, self._progress_pending = self._progress_pending, 0
                self._napari_progress.update(steps)
        finally:
            self._progress_updating = False
            self._progress_pending = 0

    def _on_worker_error(self, exc: Exception) -> None:
        message = str(exc) if isinstance(exc, OISError) else f"propagation failed: {exc!r}"
        if self._hooks.attached:
            self._error(message)

    def _on_finished(self) -> None:
        stopped = self.worker is not None and self.worker.abort_requested
        self.worker = None
        if self._napari_progress is not None:
            self._napari_progress.close()
            self._napari_progress = None
        if self._run is None:
            return
        session, run = self._run
        self._run = None
        session.end_run(run)
        if not self._hooks.attached:
            return
        self._set_busy(False)
        done = len(run.frames)
        if run.parts:
            ids = [p.object_id for p in run.parts]
            text = (f"{'Stopped' if stopped else 'Propagated'} {len(ids)} object(s) {_id_list(ids)}: "
                    f"{done} frame(s) updated")
            text += "; each is complete." if stopped else " (one undo step)."
            self._set_status(text)
            self.propagation_finished.emit()
            return
        worst = session.worst_frame(run.object_id)
        text = f"{'Stopped' if stopped else 'Propagated'} object {run.object_id}: {done} frame(s) updated"
        text += "; each is complete." if stopped else "."
        if worst is not None:
            text += f" Worst frame {worst} ({_score_text(session, session.scores[run.object_id][worst])})."
        self._set_status(text)
        self.propagation_finished.emit()

    def stop(self) -> None:
        """Stop the running propagation after the frame being computed."""
        if self.worker is not None:
            self.worker.quit()
            self._set_status("Stopping after the current frame…")

    def jump_to_worst_frame(self) -> int | None:
        """Show the propagated frame of the current object with the lowest quality score."""
        try:
            session = self.session
        except OISError as exc:
            self._error(str(exc))
            return None
        obj = self.object_spin.value()
        frame = session.worst_frame(obj)
        if frame is None:
            self._set_status(f"Object {obj} has no propagated frame yet.")
            return None
        _layers.move_to_frame(self.viewer, self.image_layer, self.axis, frame)
        self._set_status(f"Worst frame of object {obj}: {frame} ({_score_text(session, session.scores[obj][frame])}).")
        return frame


def _score_text(session, score: float) -> str:
    """A frame's quality score with its scale, e.g. ``predicted IoU 0.93 of 1``.

    Backends with a quality calibration (``ois``, see core/quality.py) score a frame by its
    predicted IoU with the truth; the others give their own 0-1 confidence.
    """
    if getattr(session.segmenter, "quality_calibration", None) is not None:
        return f"predicted IoU {score:.2f} of 1"
    return f"quality score {score:.2f} of 1"


def _id_list(ids) -> str:
    """``[1, 2, 3]`` -> ``"1, 2, 3"``, shortened for long lists (status line)."""
    ids = list(ids)
    text = ", ".join(str(i) for i in ids[:8])
    return text + (f", … ({len(ids)})" if len(ids) > 8 else "")
