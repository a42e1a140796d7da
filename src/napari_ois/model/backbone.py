"""Image encoder: a timm network turned into a stride-16 token grid (+ finer skip features).

Runs once per frame; everything it returns is cached and reused by every click.

* ViT (``backbone_kind="vit"``): patch-16 tokens of the last block, with optional
  SegNext-style windowed attention (timm blocks run on windows of tokens; the
  blocks in ``global_blocks`` see all tokens). No skips: the decoder upsamples.
* Conv nets (``backbone_kind="conv"``): ``features_only`` maps at strides 4, 8, 16
  and 32; tokens fuse stride 16 with upsampled stride 32, and strides 8 and 4 are
  cached (projected to the decoder widths) as skips for sharp boundaries.
"""

from __future__ import annotations

from dataclasses import dataclass

import timm
import torch
import torch.nn.functional as F
from torch import nn

from ..core.errors import InputError
from .config import ModelConfig
from .layers import conv_norm
from .pretrained import PACKAGED, load_packaged_weights

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class EncoderFeatures:
    """What the encoder hands to the prompt path.

    Attributes
    ----------
    tokens : torch.Tensor
        (B, C, h, w) image tokens at stride 16, C = ``embed_dim``.
    skip8, skip4 : torch.Tensor or None
        (B, D8, 2h, 2w) and (B, D4, 4h, 4w) projected conv features (conv backbones only).
    """

    tokens: torch.Tensor
    skip8: torch.Tensor | None = None
    skip4: torch.Tensor | None = None


def _create_timm(config: ModelConfig, load_weights: bool, **kwargs) -> nn.Module:
    """timm model, random-init unless weights are named (never downloads).

    ``config.backbone_weights``: a local file (loaded through timm), or
    :data:`~napari_ois.model.pretrained.PACKAGED` for the weights inside a registry
    package (:mod:`napari_ois.model.pretrained`).
    """
    if config.drop_path_rate > 0:
        kwargs["drop_path_rate"] = config.drop_path_rate
    packaged = load_weights and config.backbone_weights == PACKAGED
    if load_weights and config.backbone_weights and not packaged:
        kwargs.update(pretrained=True, pretrained_cfg_overlay=dict(file=config.backbone_weights))
    else:
        kwargs["pretrained"] = False
    try:
        net = timm.create_model(config.backbone, **kwargs)
    except (RuntimeError, ValueError, TypeError, KeyError, FileNotFoundError) as exc:
        raise InputError(f"cannot build backbone {config.backbone!r}: {exc}") from None
    if packaged:
        load_packaged_weights(net, config.backbone)
    return net


class Backbone(nn.Module):
    """timm encoder + neck to ``embed_dim`` tokens.

    Parameters
    ----------
    config : ModelConfig
        Uses ``backbone``, ``backbone_kind``, ``image_size``, ``embed_dim``,
        ``decoder_dims``, ``window_size``, ``global_blocks``.
    load_weights : bool
        Load ``config.backbone_weights`` (a local file) into the timm model.
    """

    def __init__(self, config: ModelConfig, load_weights: bool = False):
        super().__init__()
        self.kind = config.backbone_kind
        self.window_size = config.window_size
        self.global_blocks = frozenset(config.global_blocks)
        dim = config.embed_dim
        if self.kind == "vit":
            self.net = _create_timm(config, load_weights, img_size=config.image_size, num_classes=0,
                                    global_pool="")
            patch = self.net.patch_embed.patch_size
            if tuple(patch) != (16, 16):
                raise InputError(f"ViT backbones must use 16 px patches, {config.backbone} has {patch}")
            self.neck = nn.Sequential(conv_norm(self.net.embed_dim, dim, 1), conv_norm(dim, dim, 3))
            self.skip8 = self.skip4 = None
        else:
            self.net = _create_timm(config, load_weights, features_only=True)
            reductions = list(self.net.feature_info.reduction())
            channels = list(self.net.feature_info.channels())
            missing = [s for s in (4, 8, 16, 32) if s not in reductions]
            if missing:
                raise InputError(f"{config.backbone} has no feature map at stride(s) {missing}")
            # Last map of each stride: the deepest features at that resolution.
            self.level_index = {s: len(reductions) - 1 - reductions[::-1].index(s) for s in (4, 8, 16, 32)}
            c = {s: channels[i] for s, i in self.level_index.items()}
            self.neck = nn.Sequential(conv_norm(c[16] + c[32], dim, 1), conv_norm(dim, dim, 3))
            self.skip8 = conv_norm(c[8], config.decoder_dims[1], 1)
            self.skip4 = conv_norm(c[4], config.decoder_dims[2], 1)
        cfg = getattr(self.net, "pretrained_cfg", None) or {}
        mean, std = cfg.get("mean", IMAGENET_MEAN), cfg.get("std", IMAGENET_STD)
        # Non-persistent: they come from the backbone's definition, not from training.
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)

    # --------------------------------------------------------- frozen trunk
    @property
    def trunk_frozen(self) -> bool:
        """Whether the timm network is frozen (no gradient, batch-norm statistics fixed)."""
        return getattr(self, "_trunk_frozen", False)

    def freeze_trunk(self) -> None:
        """Freeze the timm network for training: only the neck and skips (and everything
        after the encoder) learn, and the trunk's features of a view can be computed once
        and reused (:meth:`trunk_maps`, ``maps`` of :meth:`forward`)."""
        self._trunk_frozen = True
        for parameter in self.net.parameters():
            parameter.requires_grad_(False)
        self.net.eval()

    def train(self, mode: bool = True) -> "Backbone":
        super().train(mode)
        if self.trunk_frozen:
            self.net.eval()  # pretrained batch-norm statistics stay as they are
        return self

    def trunk_maps(self, images: torch.Tensor, valid: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
        """The conv trunk's feature maps at strides 4, 8, 16 and 32 (no gradient when frozen).

        Parameters
        ----------
        images, valid
            As for :meth:`forward`.

        Returns
        -------
        tuple of torch.Tensor
            (B, C4, S/4, S/4), (B, C8, S/8, S/8), (B, C16, S/16, S/16), (B, C32, S/32, S/32).
        """
        if self.kind == "vit":
            raise ValueError("trunk maps exist for conv backbones only")
        x = (images - self.mean) / self.std
        if valid is not None:
            x = x * valid.to(x.dtype)
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.trunk_frozen):
            feats = self.net(x)
        return tuple(feats[self.level_index[s]] for s in (4, 8, 16, 32))

    def forward(self, images: torch.Tensor | None, valid: torch.Tensor | None = None,
                maps: tuple[torch.Tensor, ...] | None = None) -> EncoderFeatures:
        """Encode padded images.

        Parameters
        ----------
        images : torch.Tensor or None
            (B, 3, S, S) RGB in [0, 1] (see :func:`~napari_ois.model.preprocess.preprocess_image`);
            may be None when ``maps`` is given.
        valid : torch.Tensor, optional
            (B, 1, S, S) bool, True on image content; padding is set to the mean
            colour (0 after normalisation) so it carries no false edge.
        maps : tuple of torch.Tensor, optional
            The frozen trunk's :meth:`trunk_maps` of these images, computed earlier
            (cached training views): only the neck and skips run.
        """
        if self.kind == "vit":
            x = (images - self.mean) / self.std
            if valid is not None:
                x = x * valid.to(x.dtype)
            return EncoderFeatures(self.neck(self._vit_tokens(x)))
        if maps is None:
            maps = self.trunk_maps(images, valid)
        elif not self.trunk_frozen:
            raise ValueError("cached trunk maps need a frozen trunk (freeze_trunk)")
        f4, f8, f16, f32 = (m.float() for m in maps)
        f32 = F.interpolate(f32, size=f16.shape[-2:], mode="bilinear", align_corners=False)
        tokens = self.neck(torch.cat([f16, f32], dim=1))
        return EncoderFeatures(tokens, self.skip8(f8), self.skip4(f4))

    # ------------------------------------------------------------------ ViT
    def _vit_tokens(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) normalised -> (B, D, S/16, S/16) last-block tokens (prefix tokens dropped)."""
        vit = self.net
        h, w = x.shape[-2] // 16, x.shape[-1] // 16
        x = vit.norm_pre(vit.patch_drop(vit._pos_embed(vit.patch_embed(x))))
        prefix = vit.num_prefix_tokens
        for index, block in enumerate(vit.blocks):
            if self.window_size and index not in self.global_blocks:
                x = _windowed(block, x, prefix, (h, w), self.window_size)
            else:
                x = block(x)
        x = vit.norm(x)[:, prefix:]
        return x.transpose(1, 2).reshape(x.shape[0], -1, h, w)


def _windowed(block: nn.Module, x: torch.Tensor, prefix: int, hw: tuple[int, int], size: int) -> torch.Tensor:
    """Run a timm ViT block on non-overlapping ``size`` x ``size`` windows of the token grid.

    Prefix (class/register) tokens are left unchanged by windowed blocks; the
    grid is zero-padded to whole windows and cropped back.

    Parameters
    ----------
    x : torch.Tensor
        (B, prefix + h * w, D) tokens.
    """
    b, _, d = x.shape
    h, w = hw
    head, grid = x[:, :prefix], x[:, prefix:].reshape(b, h, w, d)
    ph, pw = -h % size, -w % size
    if ph or pw:
        grid = F.pad(grid, (0, 0, 0, pw, 0, ph))
    nh, nw = (h + ph) // size, (w + pw) // size
    windows = grid.reshape(b, nh, size, nw, size, d).permute(0, 1, 3, 2, 4, 5).reshape(-1, size * size, d)
    windows = block(windows)
    grid = windows.reshape(b, nh, nw, size, size, d).permute(0, 1, 3, 2, 4, 5).reshape(b, nh * size, nw * size, d)
    grid = grid[:, :h, :w].reshape(b, h * w, d)
    return torch.cat([head, grid], dim=1)


__all__ = ["Backbone", "EncoderFeatures"]
