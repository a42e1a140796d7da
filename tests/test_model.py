"""The OIS model: shapes per preset, attention masks and biases, gradients, checkpoints, the backend.

Fast: the ``test`` preset (timm's random test_vit at 64 px) unless a test is about
another preset; the tiny preset runs once at its native resolution.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from napari_ois.core.clicks import Click
from napari_ois.core.config import AnnotationConfig
from napari_ois.core.errors import BackendUnavailable, InputError
from napari_ois.core.frames import FrameStack, StackNormalizer
from napari_ois.core.segmenter import Reference
from napari_ois.core.backends import get_segmenter
from napari_ois.core.session import AnnotationSession
from napari_ois.model import (
    PRESETS, ModelConfig, OISModel, OISSegmenter, PromptBatch, ReferencePrompt, load_model, preset_config,
    save_checkpoint,
)
from napari_ois.model.attention import object_blocked
from napari_ois.model.checkpoint import PACKAGE_CHECKPOINTS, make_random_checkpoint
from napari_ois.model.order import order_maps, sample_click_depth
from napari_ois.model.preprocess import Geometry, preprocess_image
from napari_ois.model.prompts import NEGATIVE, OBJECT, POSITIVE



@pytest.fixture(autouse=True)
def _one_thread():
    """One intra-op thread: these models are tiny, and on a shared 2-core machine a second
    OpenMP thread mostly waits for a core (each parallel region then costs a time slice)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _model(**overrides) -> OISModel:
    torch.manual_seed(0)
    overrides.setdefault("order_dropout", 0.0)
    return OISModel(preset_config("test", **overrides))


def _inputs(size: int, batch: int = 2, seed: int = 0):
    """Images, clicks (with a padding slot), a previous probability and a reference."""
    g = torch.Generator().manual_seed(seed)
    images = torch.rand(batch, 3, size, size, generator=g)
    clicks = [[(size * 0.3, size * 0.3, True), (size * 0.8, size * 0.7, False)], [(size * 0.5, size * 0.2, True)]]
    prev = torch.zeros(batch, 1, size, size)
    prev[:, :, : size // 2] = 0.9
    prompts = PromptBatch.from_clicks(clicks[:batch], prev_prob=prev)
    return images, prompts


# --------------------------------------------------------------------------- config
def test_config_round_trips_and_rejects_unknown_keys():
    for name, config in PRESETS.items():
        assert ModelConfig.from_dict(config.to_dict()) == config, name
    raw = PRESETS["tiny"].to_dict()
    with pytest.raises(InputError, match="unknown key"):
        ModelConfig.from_dict({**raw, "use_magic": True})
    with pytest.raises(InputError, match="depth_source"):
        ModelConfig.from_dict({**raw, "depth_source": "lidar"})
    with pytest.raises(InputError):
        preset_config("huge")


# --------------------------------------------------------------------------- shapes
@pytest.mark.parametrize("preset,size", [("test", 64), ("tiny", 128), ("small", 128), ("base", 128)])
def test_every_preset_gives_the_stride16_grid_and_full_size_logits(preset, size):
    # small/base at a reduced input size: the same modules, seconds instead of minutes.
    torch.manual_seed(0)
    config = preset_config(preset, image_size=size, order_dropout=0.0)
    model = OISModel(config).eval()
    images, prompts = _inputs(size, batch=1)
    with torch.inference_mode():
        cache = model.encode(images)
        logits = model.forward_prompt(cache, prompts)
    grid = size // 16
    assert cache.tokens.shape == (1, config.embed_dim, grid, grid)
    assert cache.depth.shape == (1, 1, size // 8, size // 8)
    if config.backbone_kind == "conv":
        assert cache.skip8.shape == (1, config.decoder_dims[1], 2 * grid, 2 * grid)
        assert cache.skip4.shape == (1, config.decoder_dims[2], 4 * grid, 4 * grid)
    assert logits.shape == (1, 1, size, size) and torch.isfinite(logits).all()
    assert cache.nbytes > 0


def test_tiny_preset_at_its_native_resolution():
    torch.manual_seed(0)
    config = preset_config("tiny")
    model = OISModel(config).eval()
    size = config.image_size
    images, prompts = _inputs(size, batch=1)
    with torch.inference_mode():
        cache = model.encode(images, torch.tensor([[size, size * 3 // 4]]))
        logits = model.forward_prompt(cache, prompts)
    assert cache.tokens.shape == (1, config.embed_dim, size // 16, size // 16)
    assert logits.shape == (1, 1, size, size) and torch.isfinite(logits).all()


def test_preprocess_keeps_aspect_and_maps_clicks_onto_content():
    image = np.zeros((30, 90, 3), np.float32)
    image[10:20, 60:70] = 1.0
    tensor, geometry = preprocess_image(image, 64)
    assert tensor.shape == (1, 3, 64, 64) and geometry.resized_hw == (21, 64)
    assert float(tensor[0, :, 21:].abs().max()) == 0.0  # padding below the content
    y, x = geometry.to_model(15, 65)
    assert tensor[0, 0, round(y), round(x)] > 0.9
    assert Geometry.fit((90, 30), 64).resized_hw == (64, 21)


# --------------------------------------------------------------------------- attention
def test_object_aware_mask_zeroes_positive_attention_on_background():
    model = _model().eval()
    images, prompts = _inputs(64)
    with torch.inference_mode():
        _, info = model.forward_prompt(model.encode(images), prompts, return_attention=True)
    weights, labels = info["object"], info["labels"]  # (B, H, N, hw), (B, N)
    fg = torch.zeros(4, 4, dtype=torch.bool)
    fg[:2] = True  # prev_prob covers the top half
    fg = fg.flatten()
    for b in range(2):
        for q in range(labels.shape[1]):
            if labels[b, q] == POSITIVE:
                assert torch.all(weights[b, :, q, ~fg] == 0) and torch.all(weights[b, :, q, fg] > 0)
            elif labels[b, q] == NEGATIVE:
                assert torch.all(weights[b, :, q, fg] == 0) and torch.all(weights[b, :, q, ~fg] > 0)
            elif labels[b, q] == OBJECT:
                assert torch.all(weights[b, :, q] > 0)


def test_first_click_is_unmasked_and_full_rows_are_unblocked():
    model = _model().eval()
    images, prompts = _inputs(64)
    with torch.inference_mode():
        cache = model.encode(images)
        first = dataclasses.replace(prompts, prev_prob=None)
        _, info = model.forward_prompt(cache, first, return_attention=True)
        assert info["blocked"] is None and torch.all(info["object"] > 0)
        # A previous mask that is all background: positive rows would block everything.
        empty = dataclasses.replace(prompts, prev_prob=torch.zeros_like(prompts.prev_prob))
        logits, info = model.forward_prompt(cache, empty, return_attention=True)
    assert torch.isfinite(logits).all() and torch.isfinite(info["object"]).all()
    positive = info["labels"][0] == POSITIVE
    assert torch.all(info["object"][0, :, positive] > 0)
    assert torch.allclose(info["object"].sum(-1), torch.ones(()))
    # has_prev=False: no blocking for that sample even with a mask.
    blocked = object_blocked(torch.tensor([[True, False]]), torch.tensor([[POSITIVE]]), torch.tensor([False]))
    assert not blocked.any()


def _order_setup(order_mode: str):
    """A user depth map: left half near (1), right half far (0); one positive click on the left."""
    model = _model(depth_source="user", order_mode=order_mode).eval()
    images = torch.rand(1, 3, 64, 64)
    depth = torch.zeros(1, 1, 64, 64)
    depth[..., :32] = 1.0
    prompts = PromptBatch.from_clicks([[(32.0, 10.0, True)]])
    far = torch.zeros(4, 4, dtype=torch.bool)
    far[:, 2:] = True
    return model, images, depth, prompts, far.flatten()


def test_order_bias_lowers_attention_to_far_depth_tokens():
    model, images, depth, prompts, far = _order_setup("soft")
    with torch.inference_mode():
        cache = model.encode(images, depth=depth)
        order = order_maps(cache.depth, None, prompts.points, prompts.labels, 64, (4, 4))[0, 0]
        assert torch.all(order[far] > 0.9) and torch.all(order[~far] < 0.1)

        def far_mass() -> torch.Tensor:
            _, info = model.forward_prompt(cache, prompts, return_attention=True)
            click = (info["labels"][0] == POSITIVE).nonzero()[0, 0]
            return info["order"][0, :, click][:, far].sum(-1)  # per head

        biased = far_mass()
        model.order_block.sigma_logit.fill_(-30.0)  # sigma = softplus(-30) ~ 1e-13
        unbiased = far_mass()
    assert torch.all(biased < 0.05 * unbiased), (biased, unbiased)


def test_hard_order_variant_blocks_far_tokens():
    model, images, depth, prompts, far = _order_setup("hard")
    with torch.inference_mode():
        _, info = model.forward_prompt(model.encode(images, depth=depth), prompts, return_attention=True)
    click = (info["labels"][0] == POSITIVE).nonzero()[0, 0]
    assert torch.all(info["order"][0, :, click][:, far] == 0)


def test_click_depth_is_a_3x3_median():
    depth = torch.zeros(1, 1, 8, 8)
    depth[0, 0, 4, 4] = 1.0  # a lone outlier under the click
    assert float(sample_click_depth(depth, torch.tensor([[[36.0, 36.0]]]), 64)) == 0.0


# --------------------------------------------------------------------------- gradients
SWITCHES = [
    {},
    {"use_order": False},
    {"use_object": False},
    {"use_sparse": False},
    {"use_dense": False},
    {"use_reference": False},
    {"reference_similarity": False},
    {"depth_source": "none"},
    {"depth_source": "user"},
    {"order_mode": "hard"},
    {"use_prior": True},
]


@pytest.mark.parametrize("switches", SWITCHES, ids=lambda s: ",".join(f"{k}={v}" for k, v in s.items()) or "all")
def test_gradients_reach_every_trainable_parameter(switches):
    model = _model(**switches).train()
    if model.prior_fusion is not None:
        # The residual head starts at exactly 0, which would stop every gradient behind it
        # on this first step; give it the small weights it has after any training.
        torch.nn.init.normal_(model.decoder.head[-1].weight, std=0.02)
    images, prompts = _inputs(64)
    depth = torch.rand(2, 1, 64, 64)
    cache = model.encode(images, depth=depth)
    # The reference is the other sample's frame: its tokens come from the same (grad-carrying) cache.
    reference = ReferencePrompt(cache.tokens.flip(0), torch.rand(2, 1, 4, 4))
    logits = model.forward_prompt(cache, prompts, reference)
    target = torch.rand_like(logits).round()
    torch.nn.functional.binary_cross_entropy_with_logits(logits, target).backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    broken = [n for n, p in model.named_parameters() if p.grad is not None and not torch.isfinite(p.grad).all()]
    assert not missing and not broken, (missing, broken)
    if model.config.depth_head:
        assert model.depth_head is not None
        assert any(p.grad.abs().sum() > 0 for p in model.depth_head.parameters())


# --------------------------------------------------------------------------- checkpoints
def test_save_load_round_trip_gives_identical_outputs(tmp_path):
    model = _model().eval()
    path = save_checkpoint(tmp_path / "m.pt", model, {"data": "synthetic", "steps": 3, "metrics": {"miou": 0.5}})
    loaded = load_model(path, "cpu")
    assert loaded.config == model.config
    assert loaded.metadata["steps"] == 3 and loaded.metadata["metrics"] == {"miou": 0.5}
    images, prompts = _inputs(64)
    with torch.inference_mode():
        a = model.forward_prompt(model.encode(images), prompts)
        b = loaded.forward_prompt(loaded.encode(images), prompts)
    assert torch.equal(a, b)


@pytest.fixture(scope="module")
def test_checkpoint(tmp_path_factory):
    return make_random_checkpoint(tmp_path_factory.mktemp("ckpt") / "test.pt", "test")


def test_bad_checkpoints_give_clear_errors(tmp_path, test_checkpoint):
    with pytest.raises(BackendUnavailable, match="not found"):
        load_model(tmp_path / "missing.pt")
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(np.random.default_rng(0).bytes(5000))
    with pytest.raises(InputError, match="corrupt or truncated"):
        load_model(garbage)
    truncated = tmp_path / "truncated.pt"
    data = test_checkpoint.read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="corrupt or truncated"):
        load_model(truncated)
    plain = tmp_path / "plain.pt"
    torch.save({"weights": torch.zeros(3)}, plain)
    with pytest.raises(InputError, match="not a napari-ois checkpoint"):
        load_model(plain)

    payload = torch.load(test_checkpoint, weights_only=True)
    wider = tmp_path / "wider.pt"
    torch.save({**payload, "config": {**payload["config"], "embed_dim": 48}}, wider)
    with pytest.raises(InputError, match="does not match"):
        load_model(wider)
    fewer = tmp_path / "fewer.pt"
    state = dict(payload["state_dict"])
    state.pop(next(k for k in state if k.startswith("decoder.")))
    torch.save({**payload, "state_dict": state}, fewer)
    with pytest.raises(InputError, match="missing weight"):
        load_model(fewer)
    newer = tmp_path / "newer.pt"
    torch.save({**payload, "config": {**payload["config"], "use_magic": True}}, newer)
    with pytest.raises(InputError, match="unknown key"):
        load_model(newer)


def test_ois_backend_without_checkpoint_says_what_to_do(tmp_path, monkeypatch):
    from napari_ois.model import checkpoint as checkpoint_module

    monkeypatch.setattr(checkpoint_module, "PACKAGE_CHECKPOINTS", tmp_path)  # an install without the default
    with pytest.raises(BackendUnavailable, match="no trained checkpoint is installed.*--checkpoint PATH"):
        get_segmenter("ois")


def test_packaged_default_is_the_trained_prior_model():
    assert (PACKAGE_CHECKPOINTS / "default.pt").is_file()
    segmenter = get_segmenter("ois", "cpu")
    meta = segmenter.metadata
    assert segmenter.config.use_prior and segmenter.config.preset == "tiny-prior"
    assert segmenter.config.box_prompt  # stage 4: trained with box starts (MODEL_CARD.md)
    assert meta["steps"] > 0 and meta["train_config"]["preset"] == "tiny-prior"
    image = np.zeros((60, 80, 3), np.float32)
    image[15:45, 20:60] = 0.9
    prob = segmenter.predict(segmenter.encode(image), [Click(1, 0, 30, 40)]).prob
    inside = prob[15:45, 20:60] > 0.5
    assert inside.mean() > 0.9 and (prob > 0.5).sum() < 1.3 * inside.size


# --------------------------------------------------------------------------- backend
def test_per_click_predict_never_runs_the_encoder(test_checkpoint):
    segmenter = get_segmenter("ois", "cpu", str(test_checkpoint))
    assert isinstance(segmenter, OISSegmenter)
    calls = {"backbone": 0}
    original = segmenter.model.backbone.forward

    def counting(*args, **kwargs):
        calls["backbone"] += 1
        return original(*args, **kwargs)

    segmenter.model.backbone.forward = counting
    image = np.random.default_rng(0).random((40, 70, 3), dtype=np.float32)
    embedding = segmenter.encode(image)
    assert calls["backbone"] == 1
    clicks = [Click(1, 0, 20, 30, True)]
    prediction = segmenter.predict(embedding, clicks)
    for k in range(3):
        clicks.append(Click(1, 0, 5 + 3 * k, 5 + 3 * k, k % 2 == 1))
        prediction = segmenter.predict(embedding, clicks, prediction.prob)
    reference = Reference(embedding, prediction.prob > 0.5)
    segmenter.predict(embedding, [], prev_prob=prediction.prob, reference=reference)
    assert calls["backbone"] == 1
    assert prediction.prob.shape == (40, 70) and prediction.prob.dtype == np.float32
    assert 0.0 <= prediction.score <= 1.0


def test_ois_segmenter_drives_an_annotation_session(test_checkpoint):
    rng = np.random.default_rng(1)
    video = (rng.random((4, 37, 53, 3)) * 255).astype(np.uint8)
    frames = FrameStack(video, normalizer=StackNormalizer(0.0, 255.0))
    config = AnnotationConfig(backend="ois", device="cpu", checkpoint=str(test_checkpoint))
    session = AnnotationSession(frames, config=config)
    assert session.segmenter.name == "ois"
    prediction = session.add_click(Click(1, 0, 18, 26, True))
    assert prediction.prob.shape == (37, 53)
    assert prediction.prob.min() >= 0.0 and prediction.prob.max() <= 1.0
    prediction = session.add_click(Click(1, 0, 3, 3, False))
    assert prediction.prob.shape == (37, 53)

    mask = np.zeros((37, 53), bool)
    mask[10:25, 15:40] = True
    session.set_keyframe_mask(2, 1, mask)
    results = list(session.propagation(2, "forward"))
    assert results, "propagation produced no frame"
    for result in results:
        assert result.mask.shape == (37, 53) and 0.0 <= result.score <= 1.0


def test_prompt_path_runs_under_bf16_autocast():
    # No GPU here: CPU bf16 autocast exercises the same dtype mixing as CUDA autocast.
    model = _model().eval()
    images, prompts = _inputs(64)
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        cache = model.encode(images)
        reference = ReferencePrompt(cache.tokens, torch.rand(2, 1, 4, 4))
        logits = model.forward_prompt(cache, prompts, reference)
    assert logits.shape == (2, 1, 64, 64) and torch.isfinite(logits.float()).all()
