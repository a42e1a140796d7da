"""Training views whose frozen-trunk features are computed once and reused (the CPU regime).

With the pretrained trunk frozen (:meth:`~napari_ois.model.backbone.Backbone.freeze_trunk`)
its features of an augmented view never change, so a view need not be re-encoded at each
step that draws it. The pool holds ``size`` views with their trunk maps in float16; each
step draws a batch at random, and a view drawn ``reuse`` times is replaced by a fresh one
from the sample stream. On average a step then encodes ``batch / reuse`` new views
instead of ``batch``; the clicks, previous masks, roll-outs and the classical prior are
drawn anew at every use, so a reused view is a new training example of the same pixels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch

from ..model.network import OISModel
from ..model.preprocess import valid_mask
from .samples import TrainingSample, stack_samples
from .step import valid_extent

Maps = tuple[torch.Tensor, ...]


@dataclass
class PooledView:
    """One view and its trunk maps.

    Attributes
    ----------
    sample : TrainingSample
        The augmented view (``ref_image`` set for propagation pairs).
    maps, ref_maps : tuple of torch.Tensor
        Trunk maps of ``sample.image`` and ``sample.ref_image`` (zeros image for stills),
        each (C_s, S/s, S/s) float16 for strides s = 4, 8, 16, 32.
    uses : int
        Times drawn so far.
    """

    sample: TrainingSample
    maps: Maps
    ref_maps: Maps
    uses: int = 0

    @property
    def nbytes(self) -> int:
        return sum(m.numel() * m.element_size() for m in (*self.maps, *self.ref_maps))


class FeaturePool:
    """A bounded pool of training views with cached frozen-trunk features.

    Parameters
    ----------
    model : OISModel
        A conv model whose trunk is frozen.
    stream : iterator of TrainingSample
        Where fresh views come from (e.g. ``mixed_stream``).
    size : int
        Views held.
    reuse : int
        Draws after which a view is replaced.
    device : torch.device or str
        Where the trunk runs (the maps are kept on the CPU).
    """

    def __init__(self, model: OISModel, stream: Iterator[TrainingSample], size: int, reuse: int,
                 device: torch.device | str = "cpu"):
        if model.backbone.kind != "conv":
            raise ValueError("a feature pool needs a conv backbone (its trunk maps are what is cached)")
        if not model.backbone.trunk_frozen:
            raise ValueError("a feature pool needs a frozen trunk (Backbone.freeze_trunk)")
        if size < 1 or reuse < 1:
            raise ValueError(f"pool size and reuse must be >= 1, got {size} and {reuse}")
        self.model, self.stream, self.size, self.reuse, self.device = model, stream, size, reuse, device
        self.views: list[PooledView] = []
        self.encoded = 0  # views encoded so far (for samples-per-hour reports)

    @property
    def nbytes(self) -> int:
        """Bytes held by the cached maps."""
        return sum(v.nbytes for v in self.views)

    def _encode(self, samples: list[TrainingSample]) -> list[PooledView]:
        size = samples[0].shape[0]
        batch = stack_samples(samples)
        # The padding zeroed as model.encode does it, so cached maps equal fresh ones.
        valid = valid_mask(valid_extent(batch["ignore"]), size, size).to(self.device)
        out = []
        with torch.no_grad():
            maps = self.model.backbone.trunk_maps(_tensor(batch["image"], self.device), valid)
            ref_maps = self.model.backbone.trunk_maps(_tensor(batch["ref_image"], self.device), valid)
        for i, sample in enumerate(samples):
            out.append(PooledView(sample, tuple(m[i].to("cpu", torch.float16) for m in maps),
                                  tuple(m[i].to("cpu", torch.float16) for m in ref_maps)))
        self.encoded += len(samples)
        return out

    def _fill(self, chunk: int = 8) -> None:
        """Top the pool up to ``size`` views, encoding ``chunk`` at a time."""
        while len(self.views) < self.size:
            n = min(chunk, self.size - len(self.views))
            self.views.extend(self._encode([next(self.stream) for _ in range(n)]))

    def draw(self, batch_size: int, rng: np.random.Generator) -> tuple[list[TrainingSample], Maps, Maps]:
        """A batch of distinct views and their stacked maps; retires views used ``reuse`` times.

        Returns
        -------
        samples : list of TrainingSample
        maps, ref_maps : tuple of torch.Tensor
            (B, C_s, S/s, S/s) float16 per stride, for ``training_step``'s ``trunk``.
        """
        self._fill()
        chosen = rng.choice(len(self.views), size=min(batch_size, len(self.views)), replace=False)
        views = [self.views[i] for i in chosen]
        samples = [v.sample for v in views]
        maps = tuple(torch.stack([v.maps[s] for v in views]) for s in range(4))
        ref_maps = tuple(torch.stack([v.ref_maps[s] for v in views]) for s in range(4))
        for v in views:
            v.uses += 1
        self.views = [v for v in self.views if v.uses < self.reuse]
        return samples, maps, ref_maps


def _tensor(images: np.ndarray, device) -> torch.Tensor:
    """(B, H, W, 3) float32 numpy -> (B, 3, H, W) tensor on ``device``."""
    return torch.from_numpy(images).permute(0, 3, 1, 2).contiguous().to(device)
