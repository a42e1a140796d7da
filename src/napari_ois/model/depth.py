"""Depth for order maps: a light learnt head, a user-supplied map, or none.

Depth lives on a stride-8 grid (S/8 x S/8): fine enough to sample a click's
depth robustly, coarse enough to be free next to the encoder. It is computed once
per frame and cached with the tokens.

No depth weights can be downloaded here, so the head is trained with the
segmenter: its only signal is the segmentation loss reaching it through the order
bias (or a depth loss the trainer adds when it has depth targets). What it learns
is an "ordinal" map in which the clicked object is one layer; the order maps only
use differences, so its sign and offset do not matter.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .layers import LayerNorm2d, area_resize

DEPTH_STRIDE = 8


class DepthHead(nn.Module):
    """Tokens (stride 16) -> relative inverse depth (stride 8).

    Parameters
    ----------
    in_dim : int
        Token width C.
    hidden : int
        Hidden channels.
    skip_dim : int or None
        Channels of the stride-8 skip features when the backbone has them.
    """

    def __init__(self, in_dim: int, hidden: int, skip_dim: int | None = None):
        super().__init__()
        self.reduce = nn.Sequential(nn.Conv2d(in_dim, hidden, 3, padding=1, bias=False), LayerNorm2d(hidden), nn.GELU())
        self.up = nn.ConvTranspose2d(hidden, hidden, 2, stride=2)
        self.skip = nn.Conv2d(skip_dim, hidden, 1) if skip_dim else None
        self.out = nn.Sequential(nn.Conv2d(hidden, hidden, 3, padding=1), nn.GELU(), nn.Conv2d(hidden, 1, 1))

    def forward(self, tokens: torch.Tensor, skip8: torch.Tensor | None = None) -> torch.Tensor:
        """(B, C, h, w) [+ (B, D8, 2h, 2w)] -> (B, 1, 2h, 2w) depth >= 0 (larger = closer, like DA2)."""
        x = self.up(self.reduce(tokens))
        if self.skip is not None and skip8 is not None:
            x = x + self.skip(skip8)
        # softplus keeps the output positive without ReLU's dead zone (a dead head gets no gradient).
        return F.softplus(self.out(x))


def user_depth_to_grid(depth: torch.Tensor, size: int) -> torch.Tensor:
    """A user depth map already resized/padded to (B, 1, S, S) -> the (B, 1, S/8, S/8) depth grid."""
    grid = size // DEPTH_STRIDE
    return area_resize(torch.nan_to_num(depth.float()), (grid, grid))
