"""Reference prompts for propagation: the neighbouring frame's object as prototypes.

RefCut-style (design/model.md 5.1): masked average pooling of the reference frame's
*cached* tokens under its mask (p+) and outside it (p-), each through its own
2-layer MLP. The results are

* broadcast-added to the dense prompt embedding (after the encoder, so the frame
  is still encoded once), and
* appended as two tokens, in the foreground/background groups of object-aware
  attention and exempt from the order bias (they have no click depth).

Optionally (iCMFormer++ idea, 5.2) the cosine similarity of every current token to
p+ and to p- becomes two extra dense channels.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .layers import FeedForward
from .prompts import PADDING, REF_NEGATIVE, REF_POSITIVE


@dataclass
class ReferencePrompt:
    """A batch of reference frames.

    Attributes
    ----------
    tokens : torch.Tensor
        (B, C, h, w) cached encoder tokens of the reference frames.
    mask : torch.Tensor
        (B, 1, h, w) float in [0, 1]: fraction of each token cell inside the reference mask.
    present : torch.Tensor or None
        (B,) bool: samples that have a reference (training drops some); None = all.
    """

    tokens: torch.Tensor
    mask: torch.Tensor
    present: torch.Tensor | None = None


def masked_average(tokens: torch.Tensor, weight: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """(B, C, h, w) tokens averaged with (B, 1, h, w) weights -> (B, C); 0 when the weights are 0."""
    return (tokens * weight).sum(dim=(2, 3)) / (weight.sum(dim=(2, 3)) + eps)


class ReferenceEncoder(nn.Module):
    """Prototypes of a reference frame -> prompt additions and tokens.

    Parameters
    ----------
    dim : int
        Token width C.
    similarity : bool
        Also embed the cosine-similarity maps as dense channels.
    """

    def __init__(self, dim: int, similarity: bool = True):
        super().__init__()
        self.mlp_fg = FeedForward(dim, dim)
        self.mlp_bg = FeedForward(dim, dim)
        self.kind = nn.Parameter(torch.zeros(2, dim))
        nn.init.normal_(self.kind, std=0.02)
        self.similarity = nn.Conv2d(2, dim, 1) if similarity else None

    def forward(self, reference: ReferencePrompt, tokens: torch.Tensor) -> tuple[
            torch.Tensor, torch.Tensor, torch.Tensor]:
        """Encode a reference.

        Parameters
        ----------
        reference : ReferencePrompt
            Reference tokens (B, C, h, w) and mask (B, 1, h, w).
        tokens : torch.Tensor
            (B, C, h, w) cached tokens of the current frame (for the similarity maps).

        Returns
        -------
        dense : torch.Tensor
            (B, C, h, w) addition to the dense prompt embedding (0 where absent).
        ref_tokens : torch.Tensor
            (B, 2, C) foreground and background prototype tokens.
        labels : torch.Tensor
            (B, 2) long ``REF_POSITIVE``, ``REF_NEGATIVE`` (``PADDING`` where absent).
        """
        b = tokens.shape[0]
        ref_tokens_in = reference.tokens.to(tokens.dtype)
        mask = reference.mask.to(tokens.dtype)
        present = reference.present
        if present is None:
            present = torch.ones(b, dtype=torch.bool, device=tokens.device)
        keep = present.to(tokens.dtype)
        proto_fg = masked_average(ref_tokens_in, mask)
        proto_bg = masked_average(ref_tokens_in, 1.0 - mask)
        emb_fg, emb_bg = self.mlp_fg(proto_fg), self.mlp_bg(proto_bg)
        dense = ((emb_fg + emb_bg) * keep[:, None])[:, :, None, None].expand_as(tokens)
        if self.similarity is not None:
            sim = torch.stack([
                F.cosine_similarity(tokens, proto_fg[:, :, None, None], dim=1),
                F.cosine_similarity(tokens, proto_bg[:, :, None, None], dim=1),
            ], dim=1)
            dense = dense + self.similarity(sim) * keep[:, None, None, None]
        ref_tokens = torch.stack([emb_fg, emb_bg], dim=1) + self.kind.to(emb_fg.dtype)
        kinds = torch.tensor([REF_POSITIVE, REF_NEGATIVE], device=tokens.device).expand(b, 2)
        labels = torch.where(present[:, None], kinds, torch.full_like(kinds, PADDING))
        return dense, ref_tokens, labels
