"""Headless Python API: segment and propagate files with the same engine the widget uses.

>>> from napari_ois.api import propagate_file
>>> summary = propagate_file("video.mp4", "labels.tif", prompts="clicks.csv", direction="both")
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np

from .core.boxes import BoxPrompt, read_boxes
from .core.clicks import Click, read_prompt_lines
from .core.config import AnnotationConfig
from .core.errors import InputError
from .core.frames import FrameStack
from .core.io import open_image_data, write_labels
from .core.io.label_frames import LabelFrames
from .core.io.streamed_labels import FrameAxisLabels, streamed_labels
from .core.multi_propagation import MultiFrameResult
from .core.propagation import FrameResult
from .core.session import AnnotationSession
from .progress_bar import ProgressBar


#: Embedding cache budget of headless one-pass runs (MB).
HEADLESS_CACHE_MB = 64


@dataclass
class RunSummary:
    """What a headless run did (printed as the CLI's one-line summary)."""

    command: str
    out: str
    n_frames: int
    objects: list[int]
    frames_annotated: int = 0
    frames_propagated: int = 0
    seconds: float = 0.0
    scores: dict[int, dict[int, float]] = field(default_factory=dict)

    def line(self) -> str:
        return (
            f"{self.command}: {len(self.objects)} object(s), {self.n_frames} frame(s), "
            f"{self.frames_annotated} annotated + {self.frames_propagated} propagated frame(s) "
            f"in {self.seconds:.1f} s -> {self.out}"
        )


def open_frames(path: str | Path, axis: int = 0, hold: dict[int, int] | None = None) -> FrameStack:
    """Open any accepted input lazily as a :class:`FrameStack` along ``axis``.

    Parameters
    ----------
    path : str or Path
        Video file, TIFF (2-D/3-D/4-D), folder of frames, single image or zarr.
    axis : int
        Frame axis (0 = time for videos and stacks).
    hold : dict, optional
        Index held on the other leading axes of 4-D data, e.g. ``{0: t}``.
    """
    data, meta = open_image_data(path)
    return FrameStack(data, axis=axis, rgb=meta.get("rgb"), fixed=hold)


def _add_prompts(
    session: AnnotationSession,
    lines: list[tuple[int, Click]],
    source: str | Path,
    show_progress: bool = False,
) -> int:
    """Replay clicks in file order; returns the number of annotated (object, frame) pairs.

    ``lines`` are ``(line number, click)`` pairs of the prompts file ``source``: a click the
    session refuses (outside the image, a frame beyond the stack) is reported with its row.
    """
    with ProgressBar(len(lines), "clicks", unit="click", quiet=not show_progress) as bar:
        for line_no, click in lines:
            try:
                session.add_click(click)
            except InputError as exc:
                raise InputError(f"{source}, line {line_no}: {exc}") from None
            bar.update()
    return len({(c.object_id, c.frame) for _, c in lines})


def _add_boxes(session: AnnotationSession, rows: list[tuple[int, int, int, BoxPrompt]], source: str | Path,
               show_progress: bool = False) -> set[tuple[int, int]]:
    """Segment each boxed object in file order; returns the (object, frame) pairs boxed.

    ``rows`` are :func:`~napari_ois.core.boxes.read_boxes` rows of the boxes file
    ``source``: a box the session refuses (outside the image, inverted or zero-area
    corners, a frame beyond the stack) is reported with its row.
    """
    with ProgressBar(len(rows), "boxes", unit="box", quiet=not show_progress) as bar:
        for line_no, object_id, frame, box in rows:
            try:
                session.add_box(object_id, frame, box)
            except InputError as exc:
                raise InputError(f"{source}, line {line_no}: {exc}") from None
            bar.update()
    return {(obj, frame) for _, obj, frame, _ in rows}


def _add_box_and_click_prompts(session: AnnotationSession, box_rows, boxes: str | Path | None,
                               lines, prompts: str | Path | None, show_progress: bool) -> int:
    """Boxes first (each starts its object on its frame), then the clicks that refine them;
    returns the number of annotated (object, frame) pairs."""
    annotated: set[tuple[int, int]] = set()
    if box_rows is not None:
        annotated |= _add_boxes(session, box_rows, boxes, show_progress)
    if lines is not None:
        _add_prompts(session, lines, prompts, show_progress)
        annotated |= {(c.object_id, c.frame) for _, c in lines}
    return len(annotated)


def _read_prompt_files(prompts: str | Path | None, boxes: str | Path | None):
    """(click lines, box rows) of the given files (None for a file not given)."""
    if prompts is None and boxes is None:
        raise InputError("give a prompts CSV (--prompts), a boxes CSV (--boxes) or both")
    lines = read_prompt_lines(prompts) if prompts is not None else None
    box_rows = read_boxes(boxes) if boxes is not None else None
    return lines, box_rows


def _add_keyframe_masks(session: AnnotationSession, keyframes, source: str | Path = "keyframe masks") -> int:
    """Every frame holding non-zero labels is a keyframe of each id in it.

    ``keyframes`` is (N, Y, X) (or (Y, X) for one frame), numpy or a
    :class:`~napari_ois.core.io.label_frames.LabelFrames` read one frame at a time;
    ``source`` names it in errors (the file given to ``--masks``).
    """
    expected = (session.frames.n_frames, *session.frames.shape)
    shape = tuple(keyframes.shape)
    if session.frames.n_frames == 1 and len(shape) == 2:
        shape = (1, *shape)
        if isinstance(keyframes, np.ndarray):
            keyframes = keyframes[None]  # (LabelFrames gives a 2-D file as its frame 0)
    if shape != expected:
        raise InputError(
            f"{source}: keyframe masks have shape {tuple(keyframes.shape)} but the input needs {expected} "
            "(one labels frame per input frame)"
        )
    count = session.set_keyframes_from_labels(keyframes.__getitem__)
    if count == 0:
        raise InputError(f"{source}: the keyframe masks hold no non-zero label")
    return count


def build_session(
    input_path: str | Path,
    config: AnnotationConfig | None = None,
    hold: dict[int, int] | None = None,
) -> AnnotationSession:
    """Open ``input_path`` and make an annotation session over it."""
    config = (config or AnnotationConfig()).validate()
    frames = open_frames(input_path, axis=config.axis, hold=hold)
    return AnnotationSession(frames, config=config)


def _frame_labels(session: AnnotationSession) -> np.ndarray:
    """The labels along the walked axis as (N, Y, X) (what the outputs hold)."""
    frames = session.frames
    return np.stack([np.asarray(session.labels[frames.index(f)]) for f in range(frames.n_frames)])


def segment_file(
    input_path: str | Path,
    out: str | Path,
    prompts: str | Path | None = None,
    config: AnnotationConfig | None = None,
    hold: dict[int, int] | None = None,
    show_progress: bool = False,
    boxes: str | Path | None = None,
) -> RunSummary:
    """Masks on the frames that have prompts only; writes a labels stack to ``out``.

    ``prompts`` (clicks CSV) and/or ``boxes`` (boxes CSV, ``object_id,frame,y0,x0,y1,x1``):
    a box starts its object on its frame and the clicks of that object and frame refine
    it. ``show_progress`` shows progress bars on stderr (:mod:`napari_ois.progress_bar`).
    """
    start = time.perf_counter()
    lines, box_rows = _read_prompt_files(prompts, boxes)
    session = build_session(input_path, config, hold)
    annotated = _add_box_and_click_prompts(session, box_rows, boxes, lines, prompts, show_progress)
    write_labels(out, _frame_labels(session))
    return RunSummary("segment", str(out), session.frames.n_frames, session.objects(),
                      frames_annotated=annotated, seconds=time.perf_counter() - start)


def propagate_file(
    input_path: str | Path,
    out: str | Path,
    prompts: str | Path | None = None,
    masks: str | Path | None = None,
    direction: str = "both",
    config: AnnotationConfig | None = None,
    hold: dict[int, int] | None = None,
    on_frame: Callable[[int, FrameResult], None] | None = None,
    show_progress: bool = False,
    boxes: str | Path | None = None,
) -> RunSummary:
    """Annotate from prompts, boxes or keyframe masks, propagate all objects in one pass, write ``out``.

    All objects advance together (each frame is encoded once for all of them; overlaps
    go to the object in front by the backend's depth cue, else to the higher
    probability; see :mod:`napari_ois.core.multi_propagation`). The labels are written
    frame by frame into a zarr array on disk (the output itself for ``.zarr``, a
    scratch array streamed into a TIFF/PNG output at the end), so memory does not grow
    with the number of frames; the output appears atomically when the run is complete.

    Parameters
    ----------
    prompts, boxes, masks : path
        A prompts CSV and/or a boxes CSV (boxes first, clicks refine them), or else a
        labels stack (same frame count as the input) whose non-zero frames are
        keyframes, one object per label id.
    direction : {"forward", "backward", "both"}
    on_frame : callable, optional
        ``on_frame(object_id, result)`` after each propagated frame of each object
        (progress); the labels of that frame are on disk by then.
    show_progress : bool
        Progress bars on stderr (clicks, then propagated object-frames); see
        :mod:`napari_ois.progress_bar`.
    """
    if (prompts is None and boxes is None) == (masks is None):
        raise InputError("give --masks, or else --prompts and/or --boxes")
    start = time.perf_counter()
    # Read and check the prompts/masks before touching the (maybe long) input.
    lines, box_rows = _read_prompt_files(prompts, boxes) if masks is None else (None, None)
    keyframe_masks = LabelFrames(masks) if masks is not None else None  # read frame by frame
    config = (config or AnnotationConfig()).validate()
    # One pass reuses almost no embedding (a keyframe's, between the two sweeps): a small
    # cache keeps memory flat instead of filling the interactive budget on long data.
    config = replace(config, cache_mb=min(config.cache_mb, HEADLESS_CACHE_MB))
    frames = open_frames(input_path, axis=config.axis, hold=hold)
    if masks is None:
        max_id = max([c.object_id for _, c in lines or ()] + [row[1] for row in box_rows or ()])
    else:
        max_id = keyframe_masks.max_id_bound()
    propagated = 0

    def report(result: MultiFrameResult) -> None:
        nonlocal propagated
        for object_id, object_result in result.object_results():
            propagated += 1
            bar.update()
            if on_frame is not None:
                on_frame(object_id, object_result)

    label_shape = tuple(frames.data.shape[:-1] if frames.rgb else frames.data.shape)
    with streamed_labels(out, frames.n_frames, frames.shape, max_id) as store:
        labels = FrameAxisLabels(store, label_shape, frames.axis)
        session = AnnotationSession(frames, labels=labels, config=config)
        if masks is None:
            annotated = _add_box_and_click_prompts(session, box_rows, boxes, lines, prompts, show_progress)
        else:
            annotated = _add_keyframe_masks(session, keyframe_masks, masks)
            keyframe_masks.close()
        # An upper bound: every frame that is not a keyframe of each object (a run can end
        # early when an object is lost, and the bar then says how far it got).
        n = session.frames.n_frames
        total = sum(n - len(session.keyframes_of(o)) for o in session.objects())
        with ProgressBar(total, "propagate", unit="frame", quiet=not show_progress) as bar:
            # No undo history: it would grow with the frames, and nobody undoes a CLI run.
            session.run_multi_propagation(direction=direction, on_frame=report, record=False)
    return RunSummary("propagate", str(out), session.frames.n_frames, session.objects(),
                      frames_annotated=annotated, frames_propagated=propagated,
                      seconds=time.perf_counter() - start, scores=session.scores)
