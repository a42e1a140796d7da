"""Object-aware and order-aware attention between prompt tokens and image tokens.

OIS runs two blocks in sequence (design/model.md sections 2.5-2.7):

1. object block: positive tokens read only foreground image tokens of the previous
   mask, negative tokens only background ones; no previous mask = plain attention;
2. order block: attention logits of click token q on image token k are biased by
   ``-sigma_h * O_q[k]`` (``O_q`` the order map of q's click, sigma learnt per head),
   or blocked where ``O_q[k] > tau`` (hard variant; straight-through gradient of
   the soft form so a learnt depth head is still trained).

Each block (Cutie's form): tokens read pixels (masked/biased cross-attention) ->
token self-attention -> token FFN -> pixels read tokens -> pixel FFN; pre-LN,
residuals, position encodings on queries and keys.

Any attention row whose keys are all blocked is unblocked (plain attention for
that row) rather than producing NaN from a softmax over nothing.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .layers import FeedForward
from .prompts import NEGATIVE, POSITIVE, REF_NEGATIVE, REF_POSITIVE


def unblock_full_rows(blocked: torch.Tensor) -> torch.Tensor:
    """(..., Nq, Nk) bool: rows blocked everywhere become fully open."""
    return blocked & ~blocked.all(dim=-1, keepdim=True)


def object_blocked(prev_fg: torch.Tensor, labels: torch.Tensor, has_prev: torch.Tensor) -> torch.Tensor:
    """Object-aware attention mask.

    Parameters
    ----------
    prev_fg : torch.Tensor
        (B, h * w) bool: image tokens inside the previous mask.
    labels : torch.Tensor
        (B, N) token labels; positive clicks and the reference foreground prototype
        form the foreground group, negative clicks and the background prototype the
        background group; others (padding) are never blocked.
    has_prev : torch.Tensor
        (B,) bool; samples without a previous mask (first click) are not blocked.

    Returns
    -------
    torch.Tensor
        (B, N, h * w) bool, True = may not attend.
    """
    fg_group = (labels == POSITIVE) | (labels == REF_POSITIVE)
    bg_group = (labels == NEGATIVE) | (labels == REF_NEGATIVE)
    blocked = (fg_group[..., None] & ~prev_fg[:, None, :]) | (bg_group[..., None] & prev_fg[:, None, :])
    blocked = blocked & has_prev[:, None, None]
    return unblock_full_rows(blocked)


class MultiHeadAttention(nn.Module):
    """Multi-head attention with an optional boolean block mask and additive bias.

    Written out (not F.scaled_dot_product_attention) so the weights can be
    returned and checked; one side is always a handful of prompt tokens, so the
    logits are small (B, H, N, h*w).
    """

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.out = nn.Linear(dim, dim)

    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        blocked: torch.Tensor | None = None,
        bias: torch.Tensor | None = None,
        return_weights: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Attend.

        Parameters
        ----------
        query : torch.Tensor
            (B, Nq, C).
        key, value : torch.Tensor
            (B, Nk, C).
        blocked : torch.Tensor, optional
            (B, Nq, Nk) bool, True = weight forced to exactly 0 (full rows are unblocked).
        bias : torch.Tensor, optional
            (B, H or 1, Nq, Nk) added to the logits.

        Returns
        -------
        out : torch.Tensor
            (B, Nq, C).
        weights : torch.Tensor or None
            (B, H, Nq, Nk) attention weights when ``return_weights``.
        """
        b, nq, c = query.shape
        nk = key.shape[1]
        d = c // self.heads
        q = self.q(query).view(b, nq, self.heads, d).transpose(1, 2)
        k = self.k(key).view(b, nk, self.heads, d).transpose(1, 2)
        v = self.v(value).view(b, nk, self.heads, d).transpose(1, 2)
        # Softmax in float32: under autocast, bf16 logits plus a large bias lose the small differences.
        logits = (q @ k.transpose(-1, -2)).float() * (1.0 / math.sqrt(d))
        if bias is not None:
            logits = logits + bias.float()
        if blocked is not None:
            logits = logits.masked_fill(unblock_full_rows(blocked)[:, None], float("-inf"))
        weights = logits.softmax(dim=-1)
        out = (weights.to(v.dtype) @ v).transpose(1, 2).reshape(b, nq, c)
        return self.out(out), (weights if return_weights else None)


def _inverse_softplus(value: float) -> float:
    return value + math.log(-math.expm1(-value))


class PromptBlock(nn.Module):
    """One two-way block between prompt tokens and image (pixel) tokens.

    Parameters
    ----------
    dim : int
        Token width C.
    heads : int
        Attention heads.
    mlp_ratio : float
        FFN hidden width / C.
    order_mode : {None, "soft", "hard"}
        None: no order input (the object block); "soft": learnt per-head sigma;
        "hard": block where order > ``hard_threshold``.
    sigma_init : float
        Initial sigma of the soft bias.
    hard_threshold : float
        tau of the hard variant.
    """

    def __init__(self, dim: int, heads: int, mlp_ratio: float, order_mode: str | None = None,
                 sigma_init: float = 8.0, hard_threshold: float = 0.15):
        super().__init__()
        hidden = int(dim * mlp_ratio)
        self.order_mode = order_mode
        self.hard_threshold = hard_threshold
        self.sigma_init = sigma_init
        self.norm_read_q, self.norm_read_kv = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.token_read = MultiHeadAttention(dim, heads)
        self.norm_self = nn.LayerNorm(dim)
        self.token_self = MultiHeadAttention(dim, heads)
        self.norm_token_ffn = nn.LayerNorm(dim)
        self.token_ffn = FeedForward(dim, hidden)
        self.norm_write_q, self.norm_write_kv = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.pixel_read = MultiHeadAttention(dim, heads)
        self.norm_pixel_ffn = nn.LayerNorm(dim)
        self.pixel_ffn = FeedForward(dim, hidden)
        if order_mode == "soft":
            # sigma = softplus(s) > 0; starts strong (~8: a token one full depth range
            # away gets e^-8 of the weight) and is learnt per head.
            self.sigma_logit = nn.Parameter(torch.full((heads,), _inverse_softplus(sigma_init)))

    @property
    def sigma(self) -> torch.Tensor | None:
        """(H,) current order-bias scale, or None."""
        return F.softplus(self.sigma_logit) if self.order_mode == "soft" else None

    def forward(
        self,
        tokens: torch.Tensor,
        token_pe: torch.Tensor,
        pixels: torch.Tensor,
        pixel_pe: torch.Tensor,
        token_padding: torch.Tensor,
        blocked: torch.Tensor | None = None,
        order: torch.Tensor | None = None,
        return_weights: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Update tokens and pixels.

        Parameters
        ----------
        tokens, token_pe : torch.Tensor
            (B, N, C) prompt tokens and their position encodings.
        pixels : torch.Tensor
            (B, h * w, C) image tokens (with the dense prompt added).
        pixel_pe : torch.Tensor
            (1, h * w, C) position encodings of the image tokens.
        token_padding : torch.Tensor
            (B, N) bool, True for padding tokens (never read by pixels or tokens).
        blocked : torch.Tensor, optional
            (B, N, h * w) object-aware mask for the tokens-read-pixels step.
        order : torch.Tensor, optional
            (B, N, h * w) order maps in [0, 1] (0 rows = no bias), order blocks only.
        return_weights : bool
            Also return the tokens-read-pixels weights (B, H, N, h * w).
        """
        bias = None
        if order is not None and self.order_mode == "soft":
            bias = -self.sigma.view(1, -1, 1, 1) * order[:, None]
        elif order is not None and self.order_mode == "hard":
            hard = order > self.hard_threshold
            blocked = hard if blocked is None else blocked | hard
            # Straight-through: the forward pass sees only the hard mask (this term is 0),
            # the backward pass the gradient of a soft bias, so a depth head still learns.
            soft = -self.sigma_init * order[:, None]
            bias = soft - soft.detach()

        kv = self.norm_read_kv(pixels)
        q = self.norm_read_q(tokens) + token_pe
        update, weights = self.token_read(q, kv + pixel_pe, kv, blocked, bias, return_weights)
        tokens = tokens + update

        key_padding = token_padding[:, None, :].expand(-1, tokens.shape[1], -1)
        t = self.norm_self(tokens)
        tokens = tokens + self.token_self(t + token_pe, t + token_pe, t, key_padding)[0]
        tokens = tokens + self.token_ffn(self.norm_token_ffn(tokens))

        t = self.norm_write_kv(tokens)
        pixel_padding = token_padding[:, None, :].expand(-1, pixels.shape[1], -1)
        q = self.norm_write_q(pixels) + pixel_pe
        pixels = pixels + self.pixel_read(q, t + token_pe, t, pixel_padding)[0]
        pixels = pixels + self.pixel_ffn(self.norm_pixel_ffn(pixels))
        return tokens, pixels, weights
