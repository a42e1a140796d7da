"""Box prompts: the data and its checks, the boxes CSV, every backend, the session, eval and the CLI."""

from __future__ import annotations

import numpy as np
import pytest

from napari_ois.core.boxes import BoxPrompt, box_of_mask, clip_box, read_boxes, validate_box, write_boxes
from napari_ois.core.click_simulator import iou
from napari_ois.core.clicks import Click
from napari_ois.core.errors import InputError
from napari_ois.core.frames import FrameStack
from napari_ois.core.session import AnnotationSession


def _disk_scene(size: int = 96) -> tuple[np.ndarray, np.ndarray]:
    """(Y, X, 3) float image of a bright disk on a textured dark background, and its (Y, X) mask."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:size, :size]
    mask = (yy - 40) ** 2 + (xx - 52) ** 2 <= 18**2
    image = 0.15 + 0.05 * rng.random((size, size))
    image[mask] = 0.85
    # A second bright blob outside the box: a box prompt must leave it out.
    image[80:92, 5:20] = 0.85
    return np.repeat(image[..., None], 3, axis=-1).astype(np.float32), mask


@pytest.mark.parametrize("box, message", [
    (BoxPrompt(10, 10, 5, 20), "inverted"),
    (BoxPrompt(10, 10, 10, 20), "zero area"),
    (BoxPrompt(10, 10, 20, 10), "zero area"),
    (BoxPrompt(-3, 10, 20, 20), "outside the 40x50 image"),
    (BoxPrompt(10, 10, 20, 51), "outside the 40x50 image"),
    (BoxPrompt(float("nan"), 10, 20, 20), "finite"),
])
def test_bad_boxes_are_refused_with_a_reason(box, message):
    with pytest.raises(InputError, match=message):
        validate_box(box, 40, 50)
    validate_box(BoxPrompt(0, 0, 40, 50), 40, 50)  # the whole frame is a valid box


def test_clip_box_orders_corners_and_keeps_the_part_on_the_frame():
    assert clip_box(BoxPrompt(30, 60, -5, 10), 40, 50) == BoxPrompt(0, 10, 30, 50)
    off = clip_box(BoxPrompt(50, 60, 70, 80), 40, 50)  # wholly off the frame
    with pytest.raises(InputError, match="zero area"):
        validate_box(off, 40, 50)


def test_box_mask_and_tight_box_agree():
    mask = np.zeros((20, 30), bool)
    mask[3:9, 4:17] = True
    box = box_of_mask(mask)
    assert box == BoxPrompt(3, 4, 9, 17)
    assert np.array_equal(box.mask(mask.shape), mask)
    assert box_of_mask(np.zeros((5, 5), bool)) is None


def test_boxes_csv_round_trip_and_errors(tmp_path):
    path = tmp_path / "boxes.csv"
    write_boxes(path, [(1, 0, BoxPrompt(1, 2, 10.5, 20)), (2, 3, BoxPrompt(0, 0, 5, 5))])
    rows = read_boxes(path)
    assert [(obj, frame, box) for _, obj, frame, box in rows] == [
        (1, 0, BoxPrompt(1, 2, 10.5, 20)), (2, 3, BoxPrompt(0, 0, 5, 5))]
    assert [line for line, *_ in rows] == [2, 3]
    bad = tmp_path / "bad.csv"
    bad.write_text("object_id,frame,y0,x0,y1\n1,0,1,2,3\n")
    with pytest.raises(InputError, match="lacks column.*x1"):
        read_boxes(bad)
    bad.write_text("object_id,frame,y0,x0,y1,x1\n1,0,1,2,3,four\n")
    with pytest.raises(InputError, match="line 2"):
        read_boxes(bad)
    bad.write_text("object_id,frame,y0,x0,y1,x1\n")
    with pytest.raises(InputError, match="no box"):
        read_boxes(bad)
    with pytest.raises(InputError, match="not found"):
        read_boxes(tmp_path / "missing.csv")


@pytest.mark.parametrize("backend", ["classical", "grabcut-cv"])
def test_backends_segment_from_a_box_and_leave_the_outside_out(backend):
    from napari_ois.core.backends import get_segmenter

    image, mask = _disk_scene()
    segmenter = get_segmenter(backend)
    embedding = segmenter.encode(image)
    box = box_of_mask(mask)
    predicted = segmenter.predict(embedding, [], None, None, box=box).prob > 0.5
    assert iou(mask, predicted) > 0.85
    assert not predicted[80:92, 5:20].any()  # the bright blob outside the box
    # A negative click inside the box removes what it lands on; the box still holds.
    refined = segmenter.predict(embedding, [Click(1, 0, 40, 52, False)], None, None, box=box).prob > 0.5
    assert not refined[40, 52]


def test_ois_backend_takes_a_box(torch_one_thread):
    from napari_ois.core.backends import get_segmenter

    image, mask = _disk_scene()
    segmenter = get_segmenter("ois", device="cpu")
    prediction = segmenter.predict(segmenter.encode(image), [], None, None, box=box_of_mask(mask))
    assert prediction.prob.shape == mask.shape
    assert iou(mask, prediction.prob > 0.5) > 0.7
    assert not (prediction.prob[80:92, 5:20] > 0.5).any()


def test_session_box_then_clicks_undo_and_clear(squares, fake_segmenter):
    video, truth = squares
    session = AnnotationSession(FrameStack(video), segmenter=fake_segmenter)
    session.add_click(Click(1, 2, 26, 12))  # a click first; the box starts the object afresh
    session.add_box(1, 2, BoxPrompt(3, 5, 13, 15))
    assert session.prompts.clicks(1, 2) == [] and session.prompts.box(1, 2) == BoxPrompt(3, 5, 13, 15)
    assert np.array_equal(session.object_mask(1, 2), truth[2] == 1)
    assert 2 in session.keyframes_of(1)
    session.add_click(Click(1, 2, 26, 12))  # refine with a click: the box is kept
    assert session.prompts.box(1, 2) is not None and len(session.prompts.clicks(1, 2)) == 1
    session.undo()
    session.undo()
    assert session.prompts.box(1, 2) is None and len(session.prompts.clicks(1, 2)) == 1
    session.redo()
    assert session.prompts.box(1, 2) == BoxPrompt(3, 5, 13, 15)
    session.clear_object(1)
    assert session.prompts.box(1, 2) is None
    session.undo()
    assert session.prompts.box(1, 2) == BoxPrompt(3, 5, 13, 15)


@pytest.mark.parametrize("box", [BoxPrompt(3, 5, 2, 15), BoxPrompt(3, 5, 3, 15), BoxPrompt(3, 5, 13, 41)])
def test_bad_box_changes_nothing(squares, fake_segmenter, box):
    video, _ = squares
    session = AnnotationSession(FrameStack(video), segmenter=fake_segmenter)
    session.add_click(Click(1, 0, 6, 4))
    labels_before = np.asarray(session.labels).copy()
    history = len(session.undo_stack)
    calls = fake_segmenter.predict_calls
    with pytest.raises(InputError):
        session.add_box(1, 0, box)
    assert np.array_equal(np.asarray(session.labels), labels_before)
    assert len(session.undo_stack) == history and fake_segmenter.predict_calls == calls
    assert session.prompts.box(1, 0) is None and len(session.prompts.clicks(1, 0)) == 1


def test_box_start_in_the_click_protocol():
    from napari_ois.core.backends import get_segmenter
    from napari_ois.core.segmenter import EmbeddingCache
    from napari_ois.datasets.layouts import InstanceItem
    from napari_ois.evaluate.click_eval import evaluate_instance

    image, mask = _disk_scene()
    segmenter = get_segmenter("classical")
    frames = FrameStack((image * 255).astype(np.uint8)[None])
    item = InstanceItem("disk", None, mask)
    results = {}
    for init in ("click", "box"):
        cache = EmbeddingCache(segmenter, frames.__getitem__, max_bytes=2**26)
        results[init] = evaluate_instance(segmenter, frames, cache, item, max_clicks=3, init=init)
    box_start = results["box"].ious
    assert len(box_start) == 3
    # The first interaction of the box start is the box itself: what the box alone gives.
    alone = segmenter.predict(segmenter.encode(frames[0]), [], None, None, box=box_of_mask(mask)).prob > 0.49
    assert box_start[0] == pytest.approx(iou(mask, alone))
    with pytest.raises(ValueError, match="init"):
        evaluate_instance(segmenter, frames, cache, item, max_clicks=3, init="lasso")
