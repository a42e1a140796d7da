"""The classical prior of ``use_prior`` models: starts as the classical backend, trains as a residual."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_ois.core.classical.segmenter import ClassicalSegmenter
from napari_ois.core.clicks import Click
from napari_ois.core.segmenter import Reference
from napari_ois.model import OISModel, load_model, preset_config, save_checkpoint
from napari_ois.model.prior import ClassicalPrior, prior_logit
from napari_ois.model.segmenter import OISSegmenter
from napari_ois.train.samples import TrainingSample
from napari_ois.train.step import StepSettings, _BatchPrior, training_step


pytestmark = pytest.mark.usefixtures("torch_one_thread")


def _scene(shift: int = 0, size: tuple[int, int] = (72, 96)) -> tuple[np.ndarray, np.ndarray]:
    """A textured bright square on a darker textured background, and its mask."""
    rng = np.random.default_rng(3)
    image = 0.2 + 0.1 * rng.random(size + (3,), dtype=np.float32)
    mask = np.zeros(size, bool)
    mask[20:50, 30 + shift : 64 + shift] = True
    image[mask] = 0.75 + 0.1 * rng.random((int(mask.sum()), 3), dtype=np.float32)
    return image.astype(np.float32), mask


def _prior_model(**overrides) -> OISModel:
    torch.manual_seed(0)
    return OISModel(preset_config("test", use_prior=True, order_dropout=0.0, **overrides))


def test_untrained_prior_model_reproduces_the_classical_backend():
    segmenter = OISSegmenter(_prior_model(), "cpu")
    classical = ClassicalSegmenter(work_size=segmenter.config.prior_work_size)
    image, mask = _scene()
    clicks = [Click(1, 0, 35, 45, True), Click(1, 0, 5, 5, False)]
    ours = segmenter.predict(segmenter.encode(image), clicks)
    theirs = classical.predict(classical.encode(image), clicks)
    assert ours.prob.shape == mask.shape
    # Only the clamp of the prior logit (1e-3) separates them: the residual head starts at 0.
    assert np.abs(ours.prob - theirs.prob).max() <= 1.01e-3
    assert np.array_equal(ours.prob > 0.5, theirs.prob > 0.5)
    assert (ours.prob > 0.5)[mask].mean() > 0.9  # and that is a real segmentation, not an empty one


def test_prior_follows_the_reference_when_propagating():
    segmenter = OISSegmenter(_prior_model(), "cpu")
    image0, mask0 = _scene(0)
    image1, mask1 = _scene(4)
    reference = Reference(segmenter.encode(image0), mask0)
    propagated = segmenter.predict(segmenter.encode(image1), [], reference=reference)
    # No click at all on frame 1: the mask comes from the reference (through the prior).
    hit = (propagated.prob > 0.5)
    assert (hit & mask1).sum() / (hit | mask1).sum() > 0.8


def test_batch_prior_is_the_classical_answer_on_the_unpadded_extent():
    image, mask = _scene(size=(40, 64))
    canvas = np.zeros((64, 64, 3), np.float32)
    canvas[:40] = image
    target = np.zeros((64, 64), bool)
    target[:40] = mask
    ignore = np.zeros((64, 64), bool)
    ignore[40:] = True
    sample = TrainingSample(canvas, target, ignore)
    from napari_ois.train.samples import stack_samples
    from napari_ois.train.step import valid_extent

    batch = stack_samples([sample])
    prior = ClassicalPrior(320)
    batch_prior = _BatchPrior(prior, batch, valid_extent(batch["ignore"]))
    clicks = [np.array([[30, 45, 1]])]
    out = batch_prior(clicks, torch.zeros(1, 1, 64, 64), torch.zeros(1, dtype=torch.bool))
    expected = prior.predict_points(prior.encode(image), [(30, 45, True)])
    assert out.shape == (1, 1, 64, 64)
    assert np.allclose(out[0, 0, :40].numpy(), expected) and not out[0, 0, 40:].any()


def test_training_moves_the_residual_and_lowers_the_loss():
    model = _prior_model().train()
    image, mask = _scene(size=(64, 64))
    # A target the prior gets wrong on purpose: only the left half of the square.
    target = mask.copy()
    target[:, 47:] = False
    samples = [TrainingSample(image, target, np.zeros_like(target))] * 2
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(25):
        out = training_step(model, samples, np.random.default_rng(0), StepSettings(max_iter_clicks=0))
        optimizer.zero_grad()
        out["loss"].backward()
        optimizer.step()
        losses.append(out["nfl"])
    assert np.mean(losses[-5:]) < 0.9 * np.mean(losses[:5])
    assert model.decoder.head[-1].weight.abs().sum() > 0  # the residual left zero


def test_prior_settings_survive_a_checkpoint(tmp_path):
    model = _prior_model(prior_work_size=200).eval()
    with torch.no_grad():
        model.prior_fusion.gain.fill_(0.7)
    loaded = load_model(save_checkpoint(tmp_path / "p.pt", model, {"steps": 1}), "cpu")
    assert loaded.config.use_prior and loaded.config.prior_work_size == 200
    assert float(loaded.prior_fusion.gain) == pytest.approx(0.7)


def test_prior_logit_is_finite_at_zero_and_one():
    values = prior_logit(torch.tensor([0.0, 0.5, 1.0]))
    assert torch.isfinite(values).all() and values[1] == 0 and torch.isclose(values[0], -values[2])


def test_rollout_reference_is_the_models_own_backward_propagation():
    from napari_ois.train.samples import stack_samples
    from napari_ois.train.step import _images, valid_extent, rollout_references

    model = _prior_model().eval()  # untrained: reproduces the classical backend
    image, mask = _scene(size=(64, 64))
    ref_image, ref_truth = _scene(shift=6, size=(64, 64))
    wrong = np.zeros_like(mask)
    wrong[2:8, 2:8] = True  # a degraded reference that has nothing to do with the object
    pair = TrainingSample(image, mask, np.zeros_like(mask), ref_image=ref_image, ref_mask=wrong, kind="coco-pair")
    batch = stack_samples([pair, pair])
    valid_hw = valid_extent(batch["ignore"])
    with torch.no_grad():
        cache = model.encode(_images(batch, "image", "cpu"), valid_hw)
        ref_cache = model.encode(_images(batch, "ref_image", "cpu"), valid_hw)
    rollout_references(model, batch, cache, ref_cache, valid_hw, np.array([True, False]), "cpu")
    rolled = batch["ref_mask"][0]
    iou = (rolled & ref_truth).sum() / (rolled | ref_truth).sum()
    # Propagated from the current frame's true mask, the reference now follows the
    # moved object on the reference frame; the pair not chosen keeps its mask.
    assert iou > 0.8
    assert np.array_equal(batch["ref_mask"][1], wrong)


def test_rollout_back_and_forth_keeps_following_the_object():
    from napari_ois.train.samples import stack_samples
    from napari_ois.train.step import _images, valid_extent, rollout_references

    model = _prior_model().eval()
    image, mask = _scene(size=(64, 64))
    ref_image, ref_truth = _scene(shift=6, size=(64, 64))
    wrong = np.zeros_like(mask)
    wrong[2:8, 2:8] = True
    pair = TrainingSample(image, mask, np.zeros_like(mask), ref_image=ref_image, ref_mask=wrong, kind="coco-pair")
    batch = stack_samples([pair])
    valid_hw = valid_extent(batch["ignore"])
    with torch.no_grad():
        cache = model.encode(_images(batch, "image", "cpu"), valid_hw)
        ref_cache = model.encode(_images(batch, "ref_image", "cpu"), valid_hw)
    with pytest.raises(ValueError, match="odd"):
        rollout_references(model, batch, cache, ref_cache, valid_hw, np.array([True]), "cpu", steps=2)
    rollout_references(model, batch, cache, ref_cache, valid_hw, np.array([True]), "cpu", steps=3)
    rolled = batch["ref_mask"][0]
    # Three steps (current -> reference -> current -> reference) end on the reference
    # frame, on the moved object, not on the degraded mask nor the current frame's.
    assert (rolled & ref_truth).sum() / (rolled | ref_truth).sum() > 0.8
    assert (rolled & ref_truth).sum() > (rolled & mask & ~ref_truth).sum()


def test_training_and_inference_join_residual_and_prior_through_one_function(monkeypatch):
    """forward_prompt (training) and the segmenter (inference) both call OISModel.add_prior."""
    from napari_ois.model.prompts import PromptBatch

    model = _prior_model().eval()
    with torch.no_grad():
        model.prior_fusion.gain.fill_(0.7)
    cache = model.encode(torch.rand(1, 3, 64, 64))
    prompts = PromptBatch.from_clicks([[(20.0, 30.0, True)]], device="cpu")
    prompts.prior = torch.rand(1, 1, 64, 64)
    with torch.no_grad():
        joined = model.forward_prompt(cache, prompts)
        residual = model.forward_prompt(cache, prompts, add_prior=False)
        torch.testing.assert_close(joined, model.add_prior(residual, prompts.prior))
    calls = []
    original = OISModel.add_prior
    monkeypatch.setattr(OISModel, "add_prior", lambda self, r, p: calls.append(r.shape) or original(self, r, p))
    segmenter = OISSegmenter(model, "cpu")
    image, _ = _scene()
    segmenter.predict(segmenter.encode(image), [Click(1, 0, 35, 45, True)])
    assert calls and calls[-1][-2:] == image.shape[:2]  # the last join is at full frame resolution
