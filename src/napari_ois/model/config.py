"""Model configuration: presets and ablation switches in one typed dataclass.

A :class:`ModelConfig` travels inside every checkpoint (as a plain dict), so a
checkpoint fully describes the network it holds. Unknown keys are an error (the
file comes from a newer version or another program); keys missing from an old
file take their defaults, which must keep the old behaviour.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from ..core.errors import InputError

BACKBONE_KINDS = ("vit", "conv")
DEPTH_SOURCES = ("head", "user", "none")
ORDER_MODES = ("soft", "hard")


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to build an :class:`~napari_ois.model.network.OISModel`.

    Attributes
    ----------
    preset : str
        Name of the preset this config started from (informational).
    backbone : str
        timm model name; always created with ``pretrained=False`` unless
        ``backbone_weights`` names weights.
    backbone_kind : {"vit", "conv"}
        ``vit``: plain ViT with patch 16 (tokens from its last block); ``conv``: a
        convolutional net through ``features_only`` (strides 4, 8, 16, 32).
    backbone_weights : str or None
        Optional backbone weights loaded when the model is first built for training
        (ignored when loading a checkpoint, which carries every weight): a local file
        loaded through timm (e.g. MAE), or ``"packaged"`` for the weights inside a
        registry package (:mod:`napari_ois.model.pretrained`).
    image_size : int
        Side S of the square model input (longest-side resize, then pad).
    embed_dim : int
        Width C of the cached tokens and of the whole prompt path.
    num_heads : int
        Attention heads of the prompt path.
    mlp_ratio : float
        Hidden width / C of the feed-forward layers in the prompt path.
    decoder_dims : tuple of int
        Channels of the decoder levels at strides (16, 8, 4).
    depth_dim : int
        Hidden channels of the depth head.
    window_size : int
        ViT only: windowed self-attention over ``window_size`` x ``window_size``
        tokens in every block not listed in ``global_blocks``; 0 = all global.
    global_blocks : tuple of int
        ViT block indices (0-based) that attend globally when windowing.
    click_radius : int
        Radius of the click disks of the dense prompt, in model-input pixels.
    drop_path_rate : float
        Stochastic depth of the backbone (training regulariser).
    use_order : bool
        Order-aware attention (depth-ordered bias on click tokens).
    use_object : bool
        Object-aware attention (positive tokens see only foreground, negative only background).
    use_sparse : bool
        Click tokens (without them the attention blocks see only reference/padding tokens).
    use_dense : bool
        Dense prompt (previous probability + click disks) added to the image tokens.
    use_reference : bool
        Reference prompts from a neighbouring frame (propagation).
    reference_similarity : bool
        Add cosine similarity to the reference prototypes as dense channels.
    depth_source : {"head", "user", "none"}
        Where order maps get depth: a learnt head on the encoder tokens, a depth map
        given by the user per frame, or nowhere (order-aware attention then inactive).
    order_mode : {"soft", "hard"}
        ``soft``: logits biased by ``-sigma * order``; ``hard``: tokens with
        ``order > order_hard_threshold`` blocked.
    order_sigma_init : float
        Initial per-head sigma of the soft bias (sigma = softplus(s)).
    order_hard_threshold : float
        Threshold of the hard variant (order maps are in [0, 1]).
    order_dropout : float
        Training only: probability that a sample is trained without order maps, so
        the model also works when depth is missing.
    use_prior : bool
        Classical prior: the training-free backend's probability for the same clicks
        (and previous mask / reference) enters as a fourth dense prompt channel and on
        the stride-4 decoder path, and the network predicts a residual on its logit.
        The residual head starts at zero, so an untrained network reproduces the
        classical backend and training can only start from there (see prior.py).
    prior_work_size : int
        Longest side of the classical backend's working grid at inference.
    box_prompt : bool
        Box prompts: the box as a dense map (1 inside) in one more channel of the dense
        prompt encoder (after the prior's); the classical prior sees the box too.
        :func:`~napari_ois.model.network.with_box_prompt` adds the channel to a trained
        model, its weights zero so the model answers clicks exactly as before.
    """

    preset: str = "tiny"
    backbone: str = "mobilenetv4_conv_small"
    backbone_kind: str = "conv"
    backbone_weights: str | None = None
    image_size: int = 448
    embed_dim: int = 96
    num_heads: int = 4
    mlp_ratio: float = 2.0
    decoder_dims: tuple[int, int, int] = (48, 32, 24)
    depth_dim: int = 32
    window_size: int = 0
    global_blocks: tuple[int, ...] = ()
    click_radius: int = 3
    drop_path_rate: float = 0.0
    use_order: bool = True
    use_object: bool = True
    use_sparse: bool = True
    use_dense: bool = True
    use_reference: bool = True
    reference_similarity: bool = True
    depth_source: str = "head"
    order_mode: str = "soft"
    order_sigma_init: float = 8.0
    order_hard_threshold: float = 0.15
    order_dropout: float = 0.2
    use_prior: bool = False
    prior_work_size: int = 320
    box_prompt: bool = False

    # ------------------------------------------------------------------ derived
    @property
    def order_active(self) -> bool:
        """Whether order maps can exist at all (switch on and some depth source)."""
        return self.use_order and self.use_sparse and self.depth_source != "none"

    @property
    def depth_head(self) -> bool:
        """Whether the network owns a depth head."""
        return self.order_active and self.depth_source == "head"

    @property
    def grid_size(self) -> int:
        """Side of the stride-16 token grid."""
        return self.image_size // 16

    # ------------------------------------------------------------- validation
    def validate(self) -> "ModelConfig":
        """Raise :class:`InputError` on an impossible setting; return self."""
        if self.backbone_kind not in BACKBONE_KINDS:
            raise InputError(f"backbone_kind must be one of {BACKBONE_KINDS}, got {self.backbone_kind!r}")
        if self.depth_source not in DEPTH_SOURCES:
            raise InputError(f"depth_source must be one of {DEPTH_SOURCES}, got {self.depth_source!r}")
        if self.order_mode not in ORDER_MODES:
            raise InputError(f"order_mode must be one of {ORDER_MODES}, got {self.order_mode!r}")
        if self.image_size < 32 or self.image_size % 32:
            # Multiples of 32 keep every pyramid level (down to stride 32) integral.
            raise InputError(f"image_size must be a multiple of 32 (>= 32), got {self.image_size}")
        if self.embed_dim % self.num_heads or self.embed_dim % 2:
            raise InputError(f"embed_dim {self.embed_dim} must be even and divisible by num_heads {self.num_heads}")
        if len(self.decoder_dims) != 3 or min(self.decoder_dims) < 1:
            raise InputError(f"decoder_dims must be 3 positive ints (strides 16, 8, 4), got {self.decoder_dims}")
        if self.window_size < 0 or self.click_radius < 1:
            raise InputError("window_size must be >= 0 and click_radius >= 1")
        if self.prior_work_size < 16:
            raise InputError(f"prior_work_size must be >= 16, got {self.prior_work_size}")
        if not 0.0 <= self.order_dropout <= 1.0:
            raise InputError(f"order_dropout must be in [0, 1], got {self.order_dropout}")
        return self

    # ---------------------------------------------------------- serialisation
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-compatible dict (tuples become lists)."""
        out = asdict(self)
        out["decoder_dims"] = list(self.decoder_dims)
        out["global_blocks"] = list(self.global_blocks)
        return out

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "ModelConfig":
        """Inverse of :meth:`to_dict`.

        Raises
        ------
        InputError
            ``raw`` is not a dict, holds unknown keys, or values of the wrong kind.
        """
        if not isinstance(raw, dict):
            raise InputError(f"model config must be a dict, got {type(raw).__name__}")
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(raw) - set(known))
        if unknown:
            raise InputError(f"model config has unknown key(s) {', '.join(unknown)} (made by a newer version?)")
        values = dict(raw)
        try:
            for key in ("decoder_dims", "global_blocks"):
                if key in values:
                    values[key] = tuple(int(v) for v in values[key])
            config = cls(**values)
            for f in fields(cls):
                value = getattr(config, f.name)
                default = getattr(cls, f.name, None)
                if default is not None and not isinstance(value, type(default)) and not (
                    isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool)
                ):
                    raise InputError(f"model config {f.name}={value!r} should be a {type(default).__name__}")
        except (TypeError, ValueError) as exc:
            raise InputError(f"model config is malformed: {exc}") from None
        return config.validate()


# Presets: sizes picked for where each one runs. Encode/click times on 2 CPU cores are in
# the issue-4 report; per-click cost is the prompt path only (blocks + decoder).
PRESETS: dict[str, ModelConfig] = {
    # Unit tests: timm's 64-d, 6-block random ViT at 64 px, windowed so that code path runs too.
    "test": ModelConfig(
        preset="test", backbone="test_vit", backbone_kind="vit", image_size=64, embed_dim=32,
        num_heads=2, decoder_dims=(16, 16, 8), depth_dim=8, window_size=2, global_blocks=(2, 5),
        click_radius=2,
    ),
    # 2 CPU cores: MobileNetV4-conv-small (1.3M params, ~0.7 GMAC at 448 px; ~1.0 GMAC with
    # neck, skips and depth head; ~0.15 GMAC per click).
    "tiny": ModelConfig(preset="tiny"),
    # Modest GPUs or patient CPUs: ViT-S/16 at 512 px, windowed like SegNext.
    "small": ModelConfig(
        preset="small", backbone="vit_small_patch16_224", backbone_kind="vit", image_size=512,
        embed_dim=192, num_heads=6, decoder_dims=(96, 48, 32), depth_dim=48, window_size=16,
        global_blocks=(2, 5, 8, 11), click_radius=3, drop_path_rate=0.05,
    ),
    # The shipped CPU model: "tiny" at 256 px refining the classical backend's probability
    # (a strong cue a CPU-trained network need not learn from scratch; issue #5).
    "tiny-prior": ModelConfig(preset="tiny-prior", image_size=256, use_prior=True),
    # Pretrained on ImageNet (weights from a registry package, model/pretrained.py):
    # EfficientNet-Lite0 (3.4M params in the trunk, features at strides 2-32 with
    # 16/24/40/112/320 channels) at 320 px, refining the classical prior like tiny-prior.
    "lite0": ModelConfig(preset="lite0", backbone="tf_efficientnet_lite0", backbone_weights="packaged",
                         image_size=320, use_prior=True),
    # The same without the classical prior: a training step 3.2x faster on a CPU (MODEL_CARD.md).
    "lite0-noprior": ModelConfig(preset="lite0-noprior", backbone="tf_efficientnet_lite0",
                                 backbone_weights="packaged", image_size=320, use_prior=False),
    # GPUs: ViT-B/16 at 1024 px (the SegNext/OIS setting), 4x4 windows of 16x16 tokens.
    "base": ModelConfig(
        preset="base", backbone="vit_base_patch16_224", backbone_kind="vit", image_size=1024,
        embed_dim=256, num_heads=8, decoder_dims=(128, 64, 32), depth_dim=64, window_size=16,
        global_blocks=(2, 5, 8, 11), click_radius=5, drop_path_rate=0.1,
    ),
}


def preset_config(name: str, **overrides: Any) -> ModelConfig:
    """The config of preset ``name`` with ``overrides`` (e.g. switches, image_size) applied.

    Raises
    ------
    InputError
        Unknown preset or override key.
    """
    if name not in PRESETS:
        raise InputError(f"unknown model preset {name!r}; choose one of {', '.join(PRESETS)}")
    known = {f.name for f in fields(ModelConfig)}
    bad = sorted(set(overrides) - known)
    if bad:
        raise InputError(f"unknown model setting(s) {', '.join(bad)}")
    return replace(PRESETS[name], **overrides).validate()


__all__ = ["ModelConfig", "PRESETS", "preset_config", "DEPTH_SOURCES", "ORDER_MODES", "BACKBONE_KINDS"]
