"""Small building blocks shared by the model modules."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class LayerNorm2d(nn.Module):
    """LayerNorm over the channels of each pixel of a (B, C, H, W) map.

    Per-pixel statistics (not per-image, as GroupNorm(1) would be) keep a
    feature independent of what else, e.g. padding, is in the image.
    """

    def __init__(self, channels: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, C, H, W)."""
        x = F.layer_norm(x.permute(0, 2, 3, 1), x.shape[1:2], self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


class FeedForward(nn.Module):
    """Linear -> GELU -> Linear over the last axis of (..., C) tokens."""

    def __init__(self, dim: int, hidden: int, out_dim: int | None = None):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, out_dim or dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(..., C) -> (..., C_out)."""
        return self.fc2(F.gelu(self.fc1(x)))


def conv_norm(in_ch: int, out_ch: int, kernel: int = 1) -> nn.Sequential:
    """Conv (no bias: the norm has one) + per-pixel LayerNorm."""
    return nn.Sequential(nn.Conv2d(in_ch, out_ch, kernel, padding=kernel // 2, bias=False), LayerNorm2d(out_ch))


def area_resize(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Average-pool (B, C, H, W) maps to (B, C, h, w): each cell is the mean of the pixels it covers.

    Used for masks and order maps on the token grid, where a token's value must
    summarise its whole patch, not a sample of it.
    """
    if tuple(maps.shape[-2:]) == tuple(size):
        return maps
    return F.adaptive_avg_pool2d(maps, size)
