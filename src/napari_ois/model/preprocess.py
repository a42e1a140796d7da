"""Longest-side resize + bottom/right padding: the one input convention of training and inference.

Images, masks, depth maps and click coordinates all go through the same
:class:`Geometry`, so a click lands on the same model pixel as the image content
it was placed on. The trainer imports these functions: what the model sees in
training is exactly what it sees in the plugin.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Geometry:
    """How a frame maps into the square model input.

    Attributes
    ----------
    orig_hw : tuple of int
        (Y, X) of the full-resolution frame.
    resized_hw : tuple of int
        (y, x) after the longest-side resize; the rest of the S x S input is padding.
    size : int
        Side S of the model input.
    """

    orig_hw: tuple[int, int]
    resized_hw: tuple[int, int]
    size: int

    @classmethod
    def fit(cls, orig_hw: tuple[int, int], size: int) -> "Geometry":
        """Geometry of a (Y, X) frame resized so its longest side is ``size``."""
        h, w = int(orig_hw[0]), int(orig_hw[1])
        scale = size / max(h, w)
        resized = (min(size, max(1, round(h * scale))), min(size, max(1, round(w * scale))))
        return cls((h, w), resized, int(size))

    @property
    def scale_yx(self) -> tuple[float, float]:
        """Model pixels per frame pixel along y and x."""
        return self.resized_hw[0] / self.orig_hw[0], self.resized_hw[1] / self.orig_hw[1]

    def to_model(self, y: float, x: float) -> tuple[float, float]:
        """Frame pixel (row, col) -> model pixel (row, col); pixel centres map onto pixel centres."""
        sy, sx = self.scale_yx
        return (y + 0.5) * sy - 0.5, (x + 0.5) * sx - 0.5


def resize_pad(maps: torch.Tensor, geometry: Geometry, mode: str = "bilinear") -> torch.Tensor:
    """Resize (B, C, Y, X) maps to ``geometry.resized_hw`` and zero-pad them to (B, C, S, S).

    Parameters
    ----------
    maps : torch.Tensor
        (B, C, Y, X) float images (RGB in [0, 1]), probabilities, or depth.
    geometry : Geometry
        From :meth:`Geometry.fit` on (Y, X).
    mode : {"bilinear", "area", "nearest"}
        Bilinear is antialiased when shrinking, so thin structures fade rather than alias.
    """
    maps = maps.float()
    if tuple(maps.shape[-2:]) != geometry.resized_hw:
        if mode == "bilinear":
            maps = F.interpolate(maps, size=geometry.resized_hw, mode="bilinear", align_corners=False,
                                 antialias=True)
        else:
            maps = F.interpolate(maps, size=geometry.resized_hw, mode=mode)
    pad_y = geometry.size - geometry.resized_hw[0]
    pad_x = geometry.size - geometry.resized_hw[1]
    return F.pad(maps, (0, pad_x, 0, pad_y))


def preprocess_image(image: np.ndarray, size: int) -> tuple[torch.Tensor, Geometry]:
    """A frame as the model's input.

    Parameters
    ----------
    image : np.ndarray
        (Y, X, 3) float RGB in [0, 1] ((Y, X) gray is repeated on 3 channels).
    size : int
        Model input side S.

    Returns
    -------
    torch.Tensor
        (1, 3, S, S) float32 in [0, 1], zero padding bottom/right.
    Geometry
        The mapping used (apply it to masks, depth and clicks of this frame).
    """
    image = np.asarray(image, dtype=np.float32)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=-1)
    image = np.clip(np.nan_to_num(image[..., :3]), 0.0, 1.0)
    geometry = Geometry.fit(image.shape[:2], size)
    tensor = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))[None]
    return resize_pad(tensor, geometry).clamp_(0.0, 1.0), geometry


def preprocess_map(values: np.ndarray, geometry: Geometry) -> torch.Tensor:
    """A (Y, X) mask, probability or depth map of a frame as (1, 1, S, S) float32."""
    tensor = torch.from_numpy(np.ascontiguousarray(np.asarray(values, dtype=np.float32)))[None, None]
    return resize_pad(tensor, geometry)


def valid_mask(geometry_hw: torch.Tensor, size: int, grid: int) -> torch.Tensor:
    """Which cells of a ``grid`` x ``grid`` map over the model input hold image content.

    Parameters
    ----------
    geometry_hw : torch.Tensor
        (B, 2) resized (y, x) extents in model pixels.
    size : int
        Model input side S.
    grid : int
        Side of the map (e.g. S / 8 for depth).

    Returns
    -------
    torch.Tensor
        (B, 1, grid, grid) bool; a cell counts when any of it is image.
    """
    stride = size / grid
    cells = torch.arange(grid, device=geometry_hw.device, dtype=torch.float32) * stride
    rows = cells[None, :] < geometry_hw[:, :1].float()
    cols = cells[None, :] < geometry_hw[:, 1:].float()
    return (rows[:, :, None] & cols[:, None, :])[:, None]
