"""Prompt encoders: clicks as a dense map (SegNext) and as sparse tokens (OIS).

Dense: [previous probability, positive disks, negative disks] -> 16x16/16 patch
embedding -> added to the cached image tokens (spatially aligned, cheap).

Sparse: one token per click = Fourier position encoding of (y, x) + a learnt
positive/negative embedding; padding slots hold a learnt "not a point" token
with no position, so batches can have different click counts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

# Token labels. Clicks use the first two; padding is anything negative; reference
# prototypes (reference.py) are tokens of their own kinds; the object token (one per
# sample, always present, like SAM's mask token) is never blocked nor order-biased.
NEGATIVE, POSITIVE, PADDING, REF_POSITIVE, REF_NEGATIVE, OBJECT = 0, 1, -1, 2, 3, 4


@dataclass
class PromptBatch:
    """The per-click inputs of a batch, all in model-input coordinates.

    Attributes
    ----------
    points : torch.Tensor
        (B, N, 2) float click (y, x) in model pixels (see ``Geometry.to_model``).
    labels : torch.Tensor
        (B, N) long: ``POSITIVE`` / ``NEGATIVE``; ``PADDING`` (-1) for empty slots.
    prev_prob : torch.Tensor or None
        (B, 1, S, S) probability of the previous interaction (or propagated mask), or None.
    has_prev : torch.Tensor or None
        (B,) bool: which samples have a previous mask (object-aware attention is
        off for the others: the first click). Defaults to "all" when ``prev_prob`` is given.
    order_keep : torch.Tensor or None
        (B,) bool: samples that may use order maps (training drops some).
    prior : torch.Tensor or None
        (B, 1, S, S) classical backend's probability for the same prompts (models
        with ``use_prior``), or None.
    box_map : torch.Tensor or None
        (B, 1, S, S) 1 inside each sample's box prompt, 0 elsewhere and for samples
        without a box (models with ``box_prompt``), or None (= no box anywhere).
    """

    points: torch.Tensor
    labels: torch.Tensor
    prev_prob: torch.Tensor | None = None
    has_prev: torch.Tensor | None = None
    order_keep: torch.Tensor | None = None
    prior: torch.Tensor | None = None
    box_map: torch.Tensor | None = None

    @classmethod
    def from_clicks(
        cls,
        clicks: Sequence[Sequence[tuple[float, float, bool]]],
        prev_prob: torch.Tensor | None = None,
        device: torch.device | str = "cpu",
    ) -> "PromptBatch":
        """Pad per-sample click lists ``[(y, x, positive), ...]`` (model pixels) into a batch."""
        n = max((len(c) for c in clicks), default=0)
        points = torch.zeros(len(clicks), n, 2)
        labels = torch.full((len(clicks), n), PADDING, dtype=torch.long)
        for i, sample in enumerate(clicks):
            for j, (y, x, positive) in enumerate(sample):
                points[i, j] = torch.tensor([y, x])
                labels[i, j] = POSITIVE if positive else NEGATIVE
        return cls(points.to(device), labels.to(device), prev_prob)


class FourierPositionEncoding(nn.Module):
    """Random Fourier features of 2-D positions (shared by clicks and pixels).

    A fixed Gaussian matrix G (2, C/2) maps normalised positions c in [-1, 1]^2 to
    [sin(2 pi c G), cos(2 pi c G)]. Clicks and image tokens use the same G, so a
    click's query matches the keys of the tokens around it.
    """

    def __init__(self, dim: int, scale: float = 1.0):
        super().__init__()
        # A buffer, saved in checkpoints: the encoding must not change after training.
        self.register_buffer("gaussian", scale * torch.randn(2, dim // 2))
        self._grid_memo: dict[tuple, torch.Tensor] = {}

    def _load_from_state_dict(self, *args, **kwargs):
        self._grid_memo.clear()  # the memoised grids belong to the old matrix
        super()._load_from_state_dict(*args, **kwargs)

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        """(..., 2) positions in [0, 1] -> (..., C) encodings."""
        proj = (2.0 * coords - 1.0) @ self.gaussian.to(coords.dtype) * (2.0 * math.pi)
        return torch.cat([proj.sin(), proj.cos()], dim=-1)

    def grid(self, h: int, w: int) -> torch.Tensor:
        """(h * w, C) encodings of the centres of an h x w token grid, row-major.

        Memoised outside training (it is the same for every click); recomputed while
        training so nothing stale survives an optimiser step on a buffer.
        """
        key = (h, w, self.gaussian.device, self.gaussian.data_ptr())
        if not self.training and key in self._grid_memo:
            return self._grid_memo[key]
        grid = self._grid(h, w)
        if not self.training and not torch.is_grad_enabled():
            self._grid_memo[key] = grid
        return grid

    def _grid(self, h: int, w: int) -> torch.Tensor:
        ys = (torch.arange(h, device=self.gaussian.device, dtype=torch.float32) + 0.5) / h
        xs = (torch.arange(w, device=self.gaussian.device, dtype=torch.float32) + 0.5) / w
        coords = torch.stack(torch.meshgrid(ys, xs, indexing="ij"), dim=-1).reshape(-1, 2)
        return self(coords)


class ClickTokenEncoder(nn.Module):
    """Sparse click tokens.

    Parameters
    ----------
    dim : int
        Token width C.
    """

    def __init__(self, dim: int):
        super().__init__()
        self.label_embed = nn.Embedding(2, dim)  # index NEGATIVE=0, POSITIVE=1
        self.not_a_point = nn.Parameter(torch.zeros(dim))
        nn.init.normal_(self.label_embed.weight, std=0.02)
        nn.init.normal_(self.not_a_point, std=0.02)

    def forward(self, points: torch.Tensor, labels: torch.Tensor, size: int,
                position: FourierPositionEncoding) -> tuple[torch.Tensor, torch.Tensor]:
        """Click tokens and their query position encodings.

        Parameters
        ----------
        points : torch.Tensor
            (B, N, 2) click (y, x) in model pixels.
        labels : torch.Tensor
            (B, N) long token labels.
        size : int
            Model input side S.
        position : FourierPositionEncoding
            The encoding shared with the image tokens.

        Returns
        -------
        tokens : torch.Tensor
            (B, N, C) position + label embedding (``not_a_point`` for padding).
        token_pe : torch.Tensor
            (B, N, C) position encoding added to the queries in attention (0 for padding).
        """
        is_click = (labels == POSITIVE) | (labels == NEGATIVE)
        pe = position((points + 0.5) / size) * is_click[..., None]
        kind = self.label_embed(labels.clamp(0, 1))
        tokens = torch.where(is_click[..., None], pe + kind, self.not_a_point.expand_as(pe))
        return tokens, pe


def _disk(radius: int) -> torch.Tensor:
    r = torch.arange(-radius, radius + 1, dtype=torch.float32)
    return (r[:, None] ** 2 + r[None, :] ** 2) <= radius**2


def rasterise_disks(points: torch.Tensor, labels: torch.Tensor, size: int, radius: int) -> torch.Tensor:
    """Binary click disks, as SegNext's dense prompt.

    Parameters
    ----------
    points : torch.Tensor
        (B, N, 2) click (y, x) in model pixels.
    labels : torch.Tensor
        (B, N) token labels; only ``POSITIVE`` / ``NEGATIVE`` are drawn.
    size : int
        Model input side S.
    radius : int
        Disk radius in model pixels.

    Returns
    -------
    torch.Tensor
        (B, 2, S, S) float {0, 1}: channel 0 positive disks, channel 1 negative disks.
    """
    b = labels.shape[0]
    out = torch.zeros(b, 2, size + 2 * radius, size + 2 * radius, device=points.device)
    stamp = _disk(radius).to(points.device)
    # A stamp per click (clicks are few): far cheaper than a distance map per click.
    centres = points.detach().round().long().clamp(0, size - 1).tolist()
    for i, row in enumerate(labels.tolist()):
        for j, label in enumerate(row):
            if label not in (POSITIVE, NEGATIVE):
                continue
            y, x = centres[i][j]
            patch = out[i, 0 if label == POSITIVE else 1, y : y + 2 * radius + 1, x : x + 2 * radius + 1]
            patch.masked_fill_(stamp, 1.0)
    return out[:, :, radius : radius + size, radius : radius + size]


class DensePromptEncoder(nn.Module):
    """[previous probability, positive disks, negative disks(, prior)(, box)] -> (B, C, S/16, S/16) embedding.

    The maps are area-averaged by 4 before a 4x4/4 patch embedding: the same
    stride-16 token per 16x16 patch as SegNext's full-resolution embedding, with
    16x fewer multiply-adds (this runs every click). A disk then shows as partial
    coverage of a few cells, which still places it within the patch.

    Parameters
    ----------
    dim : int
        Token width C.
    radius : int
        Click disk radius in model pixels.
    with_prior : bool
        Take the classical prior probability as a fourth channel.
    with_box : bool
        Take a box map (1 inside the box prompt) as the last channel.
    """

    pool = 4

    def __init__(self, dim: int, radius: int, with_prior: bool = False, with_box: bool = False):
        super().__init__()
        self.radius = radius
        self.with_prior = with_prior
        self.with_box = with_box
        channels = 3 + int(with_prior) + int(with_box)
        self.embed = nn.Conv2d(channels, dim, kernel_size=16 // self.pool, stride=16 // self.pool)

    def prompt_maps(self, points: torch.Tensor, labels: torch.Tensor, prev_prob: torch.Tensor | None,
                    prior: torch.Tensor | None, size: int, box_map: torch.Tensor | None = None) -> torch.Tensor:
        """(B, 3..5, S, S) [previous probability, positive disks, negative disks(, prior)(, box)]."""
        disks = rasterise_disks(points, labels, size, self.radius)
        zeros = disks.new_zeros(disks.shape[0], 1, size, size)
        maps = [zeros if prev_prob is None else prev_prob.to(disks.dtype), disks]
        if self.with_prior:
            maps.append(zeros if prior is None else prior.to(disks.dtype))
        if self.with_box:
            maps.append(zeros if box_map is None else box_map.to(disks.dtype))
        return torch.cat(maps, dim=1)

    def forward(self, points: torch.Tensor, labels: torch.Tensor, prev_prob: torch.Tensor | None,
                size: int, prior: torch.Tensor | None = None, box_map: torch.Tensor | None = None) -> torch.Tensor:
        """See class docstring; ``prev_prob``, ``prior``, ``box_map`` (B, 1, S, S) or None (= zeros)."""
        return self.embed_maps(self.prompt_maps(points, labels, prev_prob, prior, size, box_map))

    def embed_maps(self, maps: torch.Tensor) -> torch.Tensor:
        """(B, K, S, S) prompt maps -> (B, C, S/16, S/16) tokens."""
        return self.embed(F.avg_pool2d(maps, self.pool).to(self.embed.weight.dtype))
