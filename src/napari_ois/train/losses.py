"""Training losses: normalized focal loss for masks, scale-and-shift-invariant depth loss."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _flat(x: torch.Tensor) -> torch.Tensor:
    """(B, 1, H, W) or (B, H, W) -> (B, H*W)."""
    return x.reshape(x.shape[0], -1)


def normalized_focal_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    ignore: torch.Tensor | None = None,
    alpha: float = 0.5,
    gamma: float = 2.0,
    eps: float = 1e-8,
) -> torch.Tensor:
    """Normalized focal loss (RITM/SegNext form), averaged over the batch.

    Per image, with p = sigmoid(z), p_t = p on the object and 1 - p elsewhere,
    beta = (1 - p_t) ** gamma and alpha_t = alpha on the object, 1 - alpha elsewhere::

        L = sum(alpha_t * beta * -log p_t) / sum(beta)

    over the non-ignored pixels. The normaliser sum(beta) is detached: it only rescales
    each image so that easy images do not vanish from the batch, and a gradient through
    it would push the model to raise the loss of already-solved pixels.

    Parameters
    ----------
    logits : torch.Tensor
        (B, 1, H, W) or (B, H, W) raw scores.
    target : torch.Tensor
        Same shape, bool or {0, 1} float.
    ignore : torch.Tensor, optional
        Same shape, bool; those pixels add nothing to the loss nor to the normaliser.
    alpha, gamma : float
        Class balance and focusing exponent.
    eps : float
        Guards the division for images with nothing left to learn.

    Returns
    -------
    torch.Tensor
        Scalar: mean over the batch of the per-image losses.
    """
    z = _flat(logits).float()
    y = _flat(target).to(z.dtype)
    valid = torch.ones_like(z) if ignore is None else (~_flat(ignore).bool()).to(z.dtype)
    p = torch.sigmoid(z)
    p_t = y * p + (1 - y) * (1 - p)
    # -log p_t from the logits: stable where p_t underflows in float32.
    nll = F.softplus(-z) * y + F.softplus(z) * (1 - y)
    beta = (1 - p_t) ** gamma * valid
    alpha_t = alpha * y + (1 - alpha) * (1 - y)
    norm = beta.sum(dim=1).detach()
    per_image = (alpha_t * beta * nll).sum(dim=1) / (norm + eps)
    return per_image.mean()


def ssi_depth_loss(
    pred: torch.Tensor,
    target: torch.Tensor,
    has_depth: torch.Tensor | None = None,
    valid: torch.Tensor | None = None,
    eps: float = 1e-6,
) -> torch.Tensor:
    """Scale-and-shift-invariant L1 between predicted and true relative depth.

    Both maps are normalised per image to zero median and unit mean absolute deviation
    over the valid pixels (MiDaS's alignment), then compared with L1. Only the order
    and relative spacing matter, which is all a monocular relative-depth map can give.

    Parameters
    ----------
    pred : torch.Tensor
        (B, 1, H, W) or (B, H, W) predicted relative depth (larger = closer).
    target : torch.Tensor
        Same shape, true relative depth (larger = closer).
    has_depth : torch.Tensor, optional
        (B,) bool: samples with a known depth map; the others are left out.
    valid : torch.Tensor, optional
        Same shape as ``pred``, bool pixels to use (e.g. not padding).

    Returns
    -------
    torch.Tensor
        Scalar mean over the samples with depth; 0 (still connected to ``pred``, so
        ``backward`` works) when there are none.
    """
    d = _flat(pred).float()
    t = _flat(target).float().to(d.device)
    v = torch.ones_like(d, dtype=torch.bool) if valid is None else _flat(valid).bool()
    keep = torch.ones(d.shape[0], dtype=torch.bool, device=d.device) if has_depth is None else has_depth.bool().to(d.device)
    keep = keep & (v.sum(dim=1) > 1)
    if not keep.any():
        return d.sum() * 0.0
    losses = []
    for b in torch.nonzero(keep).flatten().tolist():
        losses.append(torch.mean(torch.abs(_normalise(d[b][v[b]], eps) - _normalise(t[b][v[b]], eps))))
    return torch.stack(losses).mean()


def _normalise(x: torch.Tensor, eps: float) -> torch.Tensor:
    """Zero median, unit mean absolute deviation (1-D)."""
    x = x - x.median()
    return x / (x.abs().mean() + eps)
