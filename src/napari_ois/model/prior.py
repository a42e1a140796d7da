"""The classical prior: the training-free backend's answer as a prompt of the network.

A network trained from scratch on two CPU cores sees a few tens of thousands of
crops, far too few to learn what "the region around a click" means from pixels
alone. The classical backend (geodesic evidence + random walker, no training)
already knows that. Models with ``use_prior`` therefore

- run the classical backend on the same frame with the same clicks, previous mask
  and reference (:class:`ClassicalPrior`),
- read its probability as a fourth dense prompt channel and, through
  :class:`PriorFusion`, on the stride-4 decoder path (boundaries are decided there),
- predict a residual on its logit: ``logits = delta + gain * logit(prior)``.

The residual head starts at exactly zero, so the untrained network reproduces the
classical backend; training moves it only where that lowers the loss. Every OIS
component (order- and object-aware attention, sparse and dense prompts, reference)
still decides the residual.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..core.boxes import BoxPrompt
from ..core.classical.segmenter import ClassicalSegmenter
from ..core.clicks import Click
from ..core.segmenter import Reference
from .layers import LayerNorm2d
from .prompts import rasterise_disks

PRIOR_EPS = 1e-3  # logit(1e-3) ~ -6.9: a saturated prior stays finite and can be overruled


def prior_logit(prior: torch.Tensor) -> torch.Tensor:
    """Clamped logit of a (B, 1, S, S) probability (finite for 0 and 1)."""
    p = prior.float().clamp(PRIOR_EPS, 1.0 - PRIOR_EPS)
    return torch.log(p) - torch.log1p(-p)


class PriorFusion(nn.Module):
    """[prior logit, positive disks, negative disks] -> (B, D4, S/4, S/4) decoder features.

    Parameters
    ----------
    out_dim : int
        Channels of the stride-4 decoder level.
    radius : int
        Click disk radius in model pixels.
    """

    pool = 4

    def __init__(self, out_dim: int, radius: int):
        super().__init__()
        self.radius = radius
        self.net = nn.Sequential(
            nn.Conv2d(3, out_dim, 3, padding=1), LayerNorm2d(out_dim), nn.GELU(), nn.Conv2d(out_dim, out_dim, 1),
        )
        # Learnt weight of the prior logit in the residual (starts as "take it as it is").
        self.gain = nn.Parameter(torch.ones(()))

    def forward(self, prior: torch.Tensor, points: torch.Tensor, labels: torch.Tensor, size: int) -> torch.Tensor:
        """Features for the decoder; ``prior`` (B, 1, S, S) probability."""
        disks = rasterise_disks(points, labels, size, self.radius)
        # Logits scaled to about [-1, 1]: the network sees where the prior is sure, not just its mask.
        maps = torch.cat([prior_logit(prior) / 7.0, disks.to(torch.float32)], dim=1)
        maps = F.avg_pool2d(maps, self.pool)
        return self.net(maps.to(self.net[0].weight.dtype))


class ClassicalPrior:
    """The classical backend as the prior of a network (inference and training alike).

    Parameters
    ----------
    work_size : int
        Longest side of the classical working grid (frames larger are downscaled).
    """

    def __init__(self, work_size: int = 320):
        self.backend = ClassicalSegmenter(work_size=work_size)

    def encode(self, image: np.ndarray):
        """Classical embedding of a (Y, X, 3) float32 RGB frame in [0, 1]."""
        return self.backend.encode(image)

    def predict(self, embedding, clicks: Sequence[Click], prev_prob: np.ndarray | None = None,
                reference: Reference | None = None, box: BoxPrompt | None = None) -> np.ndarray:
        """(Y, X) float32 prior probability (all zeros when nothing locates the object)."""
        return self.backend.predict(embedding, clicks, prev_prob, reference, box=box).prob

    def predict_points(self, embedding, points: Sequence[tuple[float, float, bool]],
                       prev_prob: np.ndarray | None = None, reference: Reference | None = None,
                       box: BoxPrompt | None = None) -> np.ndarray:
        """Same as :meth:`predict` with clicks given as ``(y, x, positive)`` pixel tuples."""
        clicks = [Click(1, 0, float(y), float(x), bool(p)) for y, x, p in points]
        return self.predict(embedding, clicks, prev_prob, reference, box)


__all__ = ["ClassicalPrior", "PriorFusion", "prior_logit", "PRIOR_EPS"]
