"""Decoder: a small top-down feature pyramid on the prompted tokens + a mask head.

Stride 16 -> 8 -> 4 by 2x2 transposed convolutions (SegNext's SimpleFPN builds
its levels the same way from ViT tokens); a conv backbone's cached stride-8/4
features are added on the way, so boundaries follow image edges. Runs every
click, so widths are kept small (``decoder_dims``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .layers import LayerNorm2d


class MaskDecoder(nn.Module):
    """(B, C, h, w) tokens [+ skips] -> (B, 1, S, S) mask logits.

    Parameters
    ----------
    in_dim : int
        Token width C.
    dims : tuple of int
        Channels at strides (16, 8, 4); the backbone's skips must match dims[1], dims[2].
    """

    def __init__(self, in_dim: int, dims: tuple[int, int, int]):
        super().__init__()
        d16, d8, d4 = dims
        self.lateral = nn.Sequential(nn.Conv2d(in_dim, d16, 1, bias=False), LayerNorm2d(d16), nn.GELU())
        self.up8 = nn.ConvTranspose2d(d16, d8, 2, stride=2)
        self.norm8 = LayerNorm2d(d8)
        self.up4 = nn.ConvTranspose2d(d8, d4, 2, stride=2)
        self.norm4 = LayerNorm2d(d4)
        # Depthwise 3x3 + pointwise: the spatial smoothing of a 3x3 conv at stride 4 for
        # a fraction of its cost (this is the largest map of the per-click path).
        self.head = nn.Sequential(
            nn.Conv2d(d4, d4, 3, padding=1, groups=d4), nn.Conv2d(d4, d4, 1), nn.GELU(), nn.Dropout2d(0.1),
            nn.Conv2d(d4, 1, 1),
        )

    def zero_output(self) -> None:
        """Make the mask head output exactly 0 (a residual head that starts as "no change")."""
        nn.init.zeros_(self.head[-1].weight)
        nn.init.zeros_(self.head[-1].bias)

    def forward(self, tokens: torch.Tensor, skip8: torch.Tensor | None, skip4: torch.Tensor | None,
                out_size: int, extra4: torch.Tensor | None = None) -> torch.Tensor:
        """Decode.

        Parameters
        ----------
        tokens : torch.Tensor
            (B, C, h, w) prompted image tokens.
        skip8, skip4 : torch.Tensor or None
            (B, dims[1], 2h, 2w) and (B, dims[2], 4h, 4w) cached encoder features.
        out_size : int
            S: logits are bilinearly upsampled to the model input size.
        extra4 : torch.Tensor or None
            (B, dims[2], 4h, 4w) prompt features added at stride 4 (the classical prior).
        """
        p8 = self.up8(self.lateral(tokens))
        if skip8 is not None:
            p8 = p8 + skip8.to(p8.dtype)
        p4 = self.up4(F.gelu(self.norm8(p8)))
        if skip4 is not None:
            p4 = p4 + skip4.to(p4.dtype)
        if extra4 is not None:
            p4 = p4 + extra4.to(p4.dtype)
        logits = self.head(F.gelu(self.norm4(p4)))
        return F.interpolate(logits, size=(out_size, out_size), mode="bilinear", align_corners=False)
