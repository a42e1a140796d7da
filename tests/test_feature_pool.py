"""The CPU regime for pretrained trunks: a frozen trunk, and a pool of views with cached trunk features."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from napari_ois.model.config import preset_config
from napari_ois.model.network import OISModel
from napari_ois.train.feature_pool import FeaturePool
from napari_ois.train.real_data import mixed_stream
from napari_ois.train.samples import stack_samples
from napari_ois.train.step import valid_extent
from napari_ois.train.trainer import TrainConfig, Trainer

SYNTHETIC_ONLY = {"synthetic": 1.0, "microscopy": 1.0}  # no dependency on ../shared/data


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _frozen_model() -> OISModel:
    model = OISModel(preset_config("tiny", image_size=64))
    model.backbone.freeze_trunk()
    return model.train()


def test_frozen_trunk_gets_no_gradient_and_keeps_its_statistics():
    model = _frozen_model()
    assert not model.backbone.net.training and model.backbone.neck.training
    before = {k: v.clone() for k, v in model.backbone.net.state_dict().items()}
    cache = model.encode(torch.rand(2, 3, 64, 64))
    cache.tokens.sum().backward()
    assert all(p.grad is None for p in model.backbone.net.parameters())
    assert any(p.grad is not None for p in model.backbone.neck.parameters())
    assert all(torch.equal(before[k], v) for k, v in model.backbone.net.state_dict().items())


def test_cached_maps_give_the_encoding_of_the_images():
    model = _frozen_model()
    stream = mixed_stream(0, 64, SYNTHETIC_ONLY)
    pool = FeaturePool(model, stream, size=4, reuse=2)
    samples, maps, ref_maps = pool.draw(4, np.random.default_rng(0))
    batch = stack_samples(samples)
    images = torch.from_numpy(batch["image"]).permute(0, 3, 1, 2).contiguous()
    valid_hw = valid_extent(batch["ignore"])
    with torch.no_grad():
        fresh = model.encode(images, valid_hw)
        cached = model.encode(None, valid_hw, trunk_maps=maps)
    # float16 storage of the maps: equal up to its rounding
    torch.testing.assert_close(cached.tokens, fresh.tokens, atol=2e-2, rtol=2e-2)
    torch.testing.assert_close(cached.skip4, fresh.skip4, atol=2e-2, rtol=2e-2)
    assert ref_maps[0].shape == maps[0].shape and maps[0].dtype == torch.float16


def test_pool_retires_views_after_their_reuse_count():
    model = _frozen_model()
    pool = FeaturePool(model, mixed_stream(1, 64, SYNTHETIC_ONLY), size=6, reuse=3)
    rng = np.random.default_rng(1)
    for _ in range(9):
        pool.draw(2, rng)
        assert all(v.uses < 3 for v in pool.views)
    # 9 draws of 2 = 18 uses; each view serves 3 before it goes: 6 to start, then about 1 per draw
    assert 6 <= pool.encoded <= 6 + 18 // 3 + 2
    with pytest.raises(ValueError, match="frozen trunk"):
        FeaturePool(OISModel(preset_config("tiny", image_size=64)), iter(()), 4, 2)
    with pytest.raises(ValueError, match="conv backbone"):
        FeaturePool(OISModel(preset_config("test")), iter(()), 4, 2)


def test_training_with_a_pool_learns_only_after_the_trunk(tmp_path):
    cfg = TrainConfig(preset="tiny", image_size=64, batch_size=2, steps=3, log_every=1, warmup_steps=1,
                      weights=SYNTHETIC_ONLY, threads=1, validate_every=0, pool_size=4, pool_reuse=2)
    trainer = Trainer(cfg, tmp_path / "run", log=lambda _: None)
    trunk = {k: v.clone() for k, v in trainer.model.backbone.net.state_dict().items()}
    neck = {k: v.clone() for k, v in trainer.model.backbone.neck.state_dict().items()}
    trainer.run()
    assert trainer.step == 3
    assert all(torch.equal(trunk[k], v) for k, v in trainer.model.backbone.net.state_dict().items())
    assert any(not torch.equal(neck[k], v) for k, v in trainer.model.backbone.neck.state_dict().items())
    records = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    fresh = [r["fresh_views"] for r in records if "fresh_views" in r]
    assert fresh[0] == 4 and sum(fresh) < 3 * 2 + 4  # the pool's first fill, then fewer than a batch per step
    assert trainer.samples == sum(fresh)
