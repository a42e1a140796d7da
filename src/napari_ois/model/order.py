"""Order maps: how far, in depth order, every token is from the depth of a click.

OIS (Eq. 1-2, forms reconstructed in design/model.md section 2.2):

* D^ = (D - min) / (max - min) per image, over the image content only;
* all positive clicks share one map, O+ = |D^ - d+|, with d+ the mean depth at the
  positive clicks (each sampled as a 3x3 median, robust to a click on an edge);
* each negative click j has its own map, O-_j = |D^ - D^(n_j)|;
* maps are area-averaged onto the token grid, one row per click token.

Everything here is differentiable in the depth, so a learnt depth head receives
gradients from the segmentation loss.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .layers import area_resize
from .prompts import NEGATIVE, POSITIVE


def normalise_depth(depth: torch.Tensor, valid: torch.Tensor | None = None, eps: float = 1e-6) -> torch.Tensor:
    """Min-max normalise each image's depth to [0, 1] over its valid cells.

    Parameters
    ----------
    depth : torch.Tensor
        (B, 1, H, W) float.
    valid : torch.Tensor, optional
        (B, 1, H, W) bool; padding cells neither set the range nor keep a value (0).
    """
    depth = depth.float()
    if valid is None:
        valid = torch.ones_like(depth, dtype=torch.bool)
    big = torch.finfo(depth.dtype).max
    lo = torch.where(valid, depth, big).amin(dim=(1, 2, 3), keepdim=True)
    hi = torch.where(valid, depth, -big).amax(dim=(1, 2, 3), keepdim=True)
    out = (depth - lo) / (hi - lo).clamp_min(eps)
    return torch.where(valid, out.clamp(0.0, 1.0), torch.zeros_like(out))


def sample_click_depth(depth: torch.Tensor, points: torch.Tensor, size: int) -> torch.Tensor:
    """Depth at each click: the median of the 3x3 depth cells around it.

    Parameters
    ----------
    depth : torch.Tensor
        (B, 1, H, W) normalised depth on a grid over the S x S model input.
    points : torch.Tensor
        (B, N, 2) click (y, x) in model pixels.
    size : int
        Model input side S.

    Returns
    -------
    torch.Tensor
        (B, N) depth per click.
    """
    b, _, h, w = depth.shape
    n = points.shape[1]
    if n == 0:
        return depth.new_zeros(b, 0)
    cell_y = ((points[..., 0] + 0.5) * h / size).floor().long().clamp(0, h - 1)
    cell_x = ((points[..., 1] + 0.5) * w / size).floor().long().clamp(0, w - 1)
    # Replicate padding: a click at the border takes its neighbourhood from inside.
    neighbours = F.unfold(F.pad(depth, (1, 1, 1, 1), mode="replicate"), kernel_size=3)  # (B, 9, H*W)
    index = (cell_y * w + cell_x)[:, None, :].expand(b, 9, n)
    return torch.gather(neighbours, 2, index).median(dim=1).values


def order_maps(
    depth: torch.Tensor,
    valid: torch.Tensor | None,
    points: torch.Tensor,
    labels: torch.Tensor,
    size: int,
    token_hw: tuple[int, int],
) -> torch.Tensor:
    """Per-click-token order maps on the token grid.

    Parameters
    ----------
    depth : torch.Tensor
        (B, 1, H, W) raw depth (any monotonic scale) on a grid over the model input.
    valid : torch.Tensor or None
        (B, 1, H, W) bool image-content cells of that grid.
    points : torch.Tensor
        (B, N, 2) click (y, x) in model pixels.
    labels : torch.Tensor
        (B, N) long: ``POSITIVE``, ``NEGATIVE`` or padding (any other value).
    size : int
        Model input side S.
    token_hw : tuple of int
        (h, w) token grid.

    Returns
    -------
    torch.Tensor
        (B, N, h * w) order in [0, 1]; rows of padding tokens are 0 (no bias).
    """
    b, n = labels.shape
    h, w = token_hw
    if n == 0:
        return depth.new_zeros(b, 0, h * w)
    norm = normalise_depth(depth, valid)
    click_depth = sample_click_depth(norm, points, size)
    positive = (labels == POSITIVE).to(norm.dtype)
    # All positive clicks share one reference depth: their mean.
    shared = (click_depth * positive).sum(1) / positive.sum(1).clamp_min(1.0)
    target = torch.where(labels == POSITIVE, shared[:, None], click_depth)
    order = (norm - target[:, :, None, None]).abs()  # (B, N, H, W)
    order = area_resize(order, (h, w)).reshape(b, n, h * w)
    is_click = (labels == POSITIVE) | (labels == NEGATIVE)
    return order * is_click[..., None].to(order.dtype)
