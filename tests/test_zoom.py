"""Zoom-in: crop choice, crop reuse across clicks, and pasting back into the frame."""

import numpy as np
import pytest
import torch

from napari_ois.core.classical import ClassicalSegmenter
from napari_ois.core.clicks import Click
from napari_ois.core.segmenter import Reference
from napari_ois.model.config import preset_config
from napari_ois.model.network import OISModel
from napari_ois.model.segmenter import OISSegmenter
from napari_ois.model.zoom import ZoomSettings, box_iou, object_box, reusable_crop, with_motion, zoom_box


def test_object_box_unites_masks_and_points():
    mask = np.zeros((50, 60), bool)
    mask[10:20, 30:35] = True
    assert object_box([None, mask], [(40.2, 5.7)]) == (10, 41, 5, 35)
    assert object_box([None, np.zeros((50, 60))], []) is None


def test_zoom_box_expands_keeps_a_minimum_and_stays_inside():
    settings = ZoomSettings(expand=2.0, min_side=32, max_fraction=0.5)
    assert zoom_box((40, 60, 40, 50), (200, 300), settings) == (30, 70, 29, 61)  # 2x20 rows, 32-px minimum
    y0, y1, x0, x1 = zoom_box((0, 10, 290, 300), (200, 300), settings)
    assert (y0, x1) == (0, 300) and (y1 - y0, x1 - x0) == (32, 32)  # shifted inside the frame
    assert zoom_box((0, 150, 0, 200), (200, 300), settings) is None  # too big: whole frame
    assert zoom_box((40, 60, 40, 50), (200, 300), ZoomSettings(enabled=False)) is None


def test_a_box_with_motion_covers_the_old_and_the_moved_box_inside_the_frame():
    assert with_motion((10, 20, 30, 40), 5, -8, (50, 60)) == (10, 25, 22, 40)
    assert with_motion((0, 10, 50, 60), -5, 8, (50, 60)) == (0, 10, 50, 60)  # clipped to the frame
    assert with_motion((10, 20, 30, 40), 0, 0, (50, 60)) == (10, 20, 30, 40)


def test_a_cached_crop_is_reused_only_while_it_fits():
    settings = ZoomSettings(keep_iou=0.5)
    cached = [(0, 100, 0, 100)]
    assert reusable_crop(cached, (40, 60, 40, 60), (20, 100, 20, 100), settings) == (0, 100, 0, 100)
    assert reusable_crop(cached, (40, 60, 40, 60), (30, 90, 30, 90), settings) is None  # IoU 0.36: too loose
    assert reusable_crop(cached, (40, 110, 40, 60), (30, 120, 30, 90), settings) is None  # object leaves it
    assert box_iou((0, 100, 0, 100), (100, 200, 0, 100)) == 0.0


def _scene():
    """A 240 x 320 frame with a 24 x 30 bright square: small at the model's 64 px."""
    rng = np.random.default_rng(5)
    image = 0.2 + 0.1 * rng.random((240, 320, 3), dtype=np.float32)
    mask = np.zeros((240, 320), bool)
    mask[100:124, 150:180] = True
    image[mask] = 0.8
    return image, mask


@pytest.fixture
def untrained():
    torch.manual_seed(0)
    return OISModel(preset_config("test", use_prior=True, order_dropout=0.0)).eval()


def test_clicks_zoom_in_and_reuse_the_crop(untrained, monkeypatch):
    segmenter = OISSegmenter(untrained, "cpu")
    image, mask = _scene()
    embedding = segmenter.encode(image)
    encodes = []
    original = untrained.encode
    monkeypatch.setattr(untrained, "encode", lambda *a, **k: encodes.append(1) or original(*a, **k))
    first = segmenter.predict(embedding, [Click(1, 0, 110, 165, True)])
    second = segmenter.predict(embedding, [Click(1, 0, 110, 165, True), Click(1, 0, 60, 60, False)])
    assert first.prob.shape == mask.shape and second.prob.shape == mask.shape
    assert len(embedding.crops) == 1 and len(encodes) == 1  # the second click reused the crop
    (y0, y1, x0, x1), = embedding.crops
    assert y0 <= 100 and 124 <= y1 and x0 <= 150 and 180 <= x1 and (y1 - y0) * (x1 - x0) < 0.5 * 240 * 320


def test_untrained_zoomed_prediction_is_still_the_classical_one(untrained):
    # The residual head starts at zero, so pasting the crop must leave the prior intact.
    segmenter = OISSegmenter(untrained, "cpu")
    classical = ClassicalSegmenter(work_size=segmenter.config.prior_work_size)
    image, mask = _scene()
    clicks = [Click(1, 0, 110, 165, True)]
    ours = segmenter.predict(segmenter.encode(image), clicks)
    theirs = classical.predict(classical.encode(image), clicks)
    assert np.abs(ours.prob - theirs.prob).max() < 1e-3


def test_no_zoom_for_pure_propagation_or_when_off(untrained):
    image, mask = _scene()
    segmenter = OISSegmenter(untrained, "cpu")
    previous = segmenter.encode(image)
    embedding = segmenter.encode(image)
    segmenter.predict(embedding, [], prev_prob=mask.astype(np.float32), reference=Reference(previous, mask))
    assert not embedding.crops
    off = OISSegmenter(untrained, "cpu", ZoomSettings(enabled=False))
    embedding = off.encode(image)
    off.predict(embedding, [Click(1, 0, 110, 165, True)])
    assert not embedding.crops and embedding.image is None


def test_a_checkpoint_carries_its_zoom_settings(untrained, tmp_path):
    from napari_ois.model.checkpoint import load_model, save_checkpoint

    path = save_checkpoint(tmp_path / "z.pt", untrained, {"steps": 1, "zoom": {"without_clicks": True, "old": 1}})
    segmenter = OISSegmenter(load_model(path, "cpu"), "cpu")
    assert segmenter.zoom.without_clicks and segmenter.zoom.enabled
    image, mask = _scene()
    previous, embedding = segmenter.encode(image), segmenter.encode(image)
    segmenter.predict(embedding, [], prev_prob=mask.astype(np.float32), reference=Reference(previous, mask))
    assert len(embedding.crops) == 1  # a pure propagation step zoomed in
    assert not OISSegmenter(untrained, "cpu").zoom.without_clicks  # no metadata: the default


def _large_scene():
    """A 480 x 640 frame (twice the prior's 320 px working size) with a 20 x 26 bright blob."""
    rng = np.random.default_rng(7)
    image = 0.2 + 0.1 * rng.random((480, 640, 3), dtype=np.float32)
    yy, xx = np.mgrid[:480, :640]
    mask = ((yy - 240) / 10.0) ** 2 + ((xx - 300) / 13.0) ** 2 <= 1.0
    image[mask] = 0.8
    return image, mask


def test_the_prior_is_recomputed_on_the_crop_of_a_downscaled_frame(untrained):
    segmenter = OISSegmenter(untrained, "cpu")
    assert segmenter.config.prior_work_size < 480  # the whole-frame prior runs downscaled
    classical = ClassicalSegmenter(work_size=segmenter.config.prior_work_size)
    image, mask = _large_scene()
    embedding = segmenter.encode(image)
    clicks = [Click(1, 0, 240, 300, True)]
    ours = segmenter.predict(embedding, clicks).prob
    (box,) = embedding.crops
    assert list(embedding.prior_crops) == [box]
    y0, y1, x0, x1 = box
    # Untrained, the residual is zero: inside the crop the result is the classical
    # backend run on the crop itself (full resolution), not on the downscaled frame.
    crop = (image[y0:y1, x0:x1] * 255 + 0.5).astype(np.uint8).astype(np.float32) / 255
    on_crop = classical.predict(classical.encode(crop), [Click(1, 0, 240 - y0, 300 - x0, True)]).prob
    assert np.abs(ours[y0:y1, x0:x1] - on_crop).max() < 1e-3
    assert embedding.nbytes > embedding.cache.nbytes + embedding.image.nbytes + sum(
        v.nbytes for v in vars(embedding.prior).values() if isinstance(v, np.ndarray))
    off = OISSegmenter(untrained, "cpu", ZoomSettings(crop_prior=False))
    plain = off.encode(image)
    off.predict(plain, clicks)
    assert plain.crops and not plain.prior_crops


def _step(segmenter, monkeypatch=None, shift=3):
    """One propagation step on the large scene shifted by ``shift`` px: (previous, current, prob, truth, prior calls)."""
    image, mask = _large_scene()
    shifted, truth = np.roll(image, shift, axis=1), np.roll(mask, shift, axis=1)
    previous, current = segmenter.encode(image), segmenter.encode(shifted)
    calls = []
    if monkeypatch is not None:
        original = segmenter._prior
        monkeypatch.setattr(segmenter, "_prior", lambda *a, **k: calls.append(1) or original(*a, **k))
    prob = segmenter.predict(current, [], prev_prob=mask.astype(np.float32), reference=Reference(previous, mask)).prob
    return previous, current, prob, truth, calls


def test_a_propagated_small_object_keeps_its_shape_with_the_crop_prior(untrained):
    ious = {}
    for crop_prior in (True, False):
        segmenter = OISSegmenter(untrained, "cpu", ZoomSettings(without_clicks=True, crop_prior=crop_prior))
        previous, current, prob, truth, _ = _step(segmenter)
        found = prob > 0.5
        ious[crop_prior] = (found & truth).sum() / (found | truth).sum()
        # The reference frame's same crop is encoded for the prior's reference prompt.
        assert list(previous.prior_crops) == list(current.prior_crops) == (list(current.crops) if crop_prior else [])
    # Measured: 0.998 on the crop against 0.938 on the 2x downscaled frame.
    assert ious[True] > 0.97 and ious[True] > ious[False] + 0.03


def test_the_crop_prior_follows_an_object_moving_more_than_its_crops_motion_range(untrained):
    # 14 px is 2 % of the 640-px frame (within the whole-frame prior's 5 % search) but 22 %
    # of the 64-px crop: a search range taken from the crop's own size (3 px) lost it.
    segmenter = OISSegmenter(untrained, "cpu", ZoomSettings(without_clicks=True))
    previous, current, prob, truth, _ = _step(segmenter, shift=14)
    ((y0, y1, x0, x1),) = current.crops
    assert max(y1 - y0, x1 - x0) < 160  # the step ran on a crop (grown by the estimated motion)
    (crop_prior,) = current.prior_crops.values()
    assert crop_prior.context_side == 640 and crop_prior.motion_range >= 14
    found = prob > 0.5
    assert (found & truth).sum() / (found | truth).sum() > 0.9


def test_a_step_places_its_crop_where_a_fast_object_went(untrained):
    # 28 px is more than the blob's 26 px width: a crop twice the previous mask's box
    # (64 px) keeps only a sliver of the moved blob. The whole-frame motion estimate
    # grows the crop over the moved box and moves the previous mask along.
    segmenter = OISSegmenter(untrained, "cpu", ZoomSettings(without_clicks=True))
    previous, current, prob, truth, _ = _step(segmenter, shift=28)
    assert segmenter._step_motion(current, Reference(previous, _large_scene()[1]))[1] in (26, 28, 30)
    ((y0, y1, x0, x1),) = current.crops
    cols = np.flatnonzero(truth.any(axis=0))
    assert x0 <= cols[0] and cols[-1] < x1 and x1 - x0 < 160  # still a crop, and the object is in it
    found = prob > 0.5
    assert (found & truth).sum() / (found | truth).sum() > 0.9


def test_a_frame_within_the_prior_size_needs_no_crop_prior(untrained):
    segmenter = OISSegmenter(untrained, "cpu")
    image, _ = _scene()  # 240 x 320: the prior already runs at full resolution
    embedding = segmenter.encode(image)
    segmenter.predict(embedding, [Click(1, 0, 110, 165, True)])
    assert embedding.crops and not embedding.prior_crops


def test_crop_only_steps_match_the_full_step_inside_the_crop_and_skip_the_frame_prior(untrained, monkeypatch):
    results = {}
    for crop_only in (False, True):
        segmenter = OISSegmenter(untrained, "cpu", ZoomSettings(without_clicks=True, crop_only_steps=crop_only))
        # A still object: for a moving one the crop-only step also moves the previous mask.
        _, current, results[crop_only], truth, calls = _step(segmenter, monkeypatch, shift=0)
        assert len(calls) == (0 if crop_only else 1)  # no whole-frame classical pass
    (y0, y1, x0, x1), = current.crops
    # Untrained (zero residual), inside the crop both are the crop prior; outside, background.
    assert np.abs(results[True][y0:y1, x0:x1] - results[False][y0:y1, x0:x1]).max() < 1e-3
    assert results[True].sum() > 0 and (results[True] > 0.5)[truth].mean() > 0.95


def test_step_residual_scale_damps_the_residual_on_propagation_steps_only(untrained, tmp_path):
    from napari_ois.model.checkpoint import load_model, save_checkpoint

    with torch.no_grad():
        untrained.decoder.head[-1].bias.fill_(-30.0)  # a residual that erases the object everywhere
    image, mask = _scene()
    clicks = [Click(1, 0, 110, 165, True)]

    def run(segmenter):
        previous, embedding = segmenter.encode(image), segmenter.encode(image)
        step = segmenter.predict(embedding, [], prev_prob=mask.astype(np.float32), reference=Reference(previous, mask))
        return step.prob, segmenter.predict(segmenter.encode(image), clicks).prob

    full_step, full_click = run(OISSegmenter(untrained, "cpu"))
    path = save_checkpoint(tmp_path / "s.pt", untrained, {"steps": 1, "step_residual_scale": 0.0})
    damped = OISSegmenter(load_model(path, "cpu"), "cpu")
    assert damped.step_residual_scale == 0.0
    zero_step, zero_click = run(damped)
    # Scale 0: the step is the classical prior alone (the object survives); clicks keep the residual.
    assert (zero_step > 0.5)[mask].mean() > 0.9 > (full_step > 0.5)[mask].mean()
    assert np.abs(zero_click - full_click).max() < 1e-6
    with pytest.raises(ValueError, match="step_residual_scale"):
        OISSegmenter(untrained, "cpu", step_residual_scale=1.5)


def test_package_checkpoint_stores_the_inference_settings(untrained, tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    from napari_ois.model.checkpoint import load_model, save_checkpoint

    source = save_checkpoint(tmp_path / "run.pt", untrained, {"steps": 3})
    script = Path(__file__).resolve().parents[1] / "scripts" / "package_checkpoint.py"
    out = tmp_path / "packaged.pt"
    subprocess.run([sys.executable, str(script), str(source), "--zoom-without-clicks",
                    "--step-residual-scale", "0.5", "--out", str(out)], check=True, capture_output=True)
    segmenter = OISSegmenter(load_model(out, "cpu"), "cpu")
    assert segmenter.zoom.without_clicks and segmenter.step_residual_scale == 0.5
    assert segmenter.metadata["steps"] == 3
