"""The ``ois`` backend: :class:`OISSegmenter` implements the Segmenter protocol on an OISModel.

``encode`` preprocesses the frame (longest-side resize + pad, the same function
the trainer uses) and runs the encoder once; ``predict`` maps the clicks, the
previous probability and the reference into model space and runs only the prompt
path. Probabilities come back at the full frame resolution.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..core.boxes import BoxPrompt, clip_box
from ..core.classical.motion import estimate_motion, shift_map
from ..core.clicks import Click
from ..core.quality import OIS_CALIBRATION, OIS_TRACK_CALIBRATION, Calibration, predicted_iou
from ..core.segmenter import Prediction, Reference
from .checkpoint import load_model
from .layers import area_resize
from .network import EncoderCache, OISModel
from .preprocess import Geometry, preprocess_image, preprocess_map
from .prior import ClassicalPrior
from .prompts import PromptBatch
from .reference import ReferencePrompt
from .runtime import autocast_for, resolve_device
from .zoom import (Box, ZoomSettings, object_box, reusable_crop, union_box, with_motion, zoom_box,
                   zoom_from_metadata)


@dataclass
class OISEmbedding:
    """One encoded frame (what the embedding cache holds).

    Attributes
    ----------
    cache : EncoderCache
        Batch-1 encoder outputs on the model's device.
    geometry : Geometry
        How the frame maps into the model input.
    prior : object or None
        The classical backend's embedding of the frame (models with ``use_prior``).
    image : np.ndarray or None
        (Y, X, 3) uint8 frame, kept to encode crops for zoom-in (None: zoom off).
    crops : dict
        Box (y0, y1, x0, x1) -> (EncoderCache, Geometry) of the crops encoded so far,
        oldest first.
    prior_crops : dict
        Box -> the classical backend's embedding of that crop at up to its own working
        size (see :attr:`ZoomSettings.crop_prior`), oldest first.
    """

    cache: EncoderCache
    geometry: Geometry
    prior: object | None = None
    image: np.ndarray | None = None
    crops: dict = field(default_factory=dict)
    prior_crops: dict = field(default_factory=dict)

    @property
    def nbytes(self) -> int:
        """Bytes held by the cached tensors, crops, frame and classical prior arrays."""
        extra = sum(crop.nbytes for crop, _ in self.crops.values())
        if self.image is not None:
            extra += self.image.nbytes
        for prior in [self.prior, *self.prior_crops.values()]:
            if prior is not None:
                extra += sum(v.nbytes for v in vars(prior).values() if isinstance(v, np.ndarray))
        return self.cache.nbytes + extra


def boundary_confidence(prob: torch.Tensor, band: int = 1, max_side: int = 128) -> float:
    """Quality score: mean confidence |2p - 1| in a band around the predicted boundary.

    A confident mask has near-0/1 probabilities right up to its edge; a doubtful one
    blurs there. Empty masks score 0 (the object is lost). Computed on a grid of at
    most ``max_side`` pixels: a score needs no full-resolution detail, and the
    per-click path must stay cheap.

    Parameters
    ----------
    prob : torch.Tensor
        (1, 1, y, x) probability at model resolution (padding cropped).
    band : int
        Half-width of the band in pixels of the reduced grid.
    """
    factor = max(1, -(-max(prob.shape[-2:]) // max_side))
    if factor > 1:
        prob = F.avg_pool2d(prob, factor, ceil_mode=True)
    mask = (prob > 0.5).float()
    if not bool(mask.any()):
        return 0.0
    k = 2 * band + 1
    dilated = F.max_pool2d(mask, k, stride=1, padding=band)
    eroded = -F.max_pool2d(-mask, k, stride=1, padding=band)
    ring = dilated > eroded
    confidence = (2.0 * prob - 1.0).abs()
    return float(confidence[ring].mean() if bool(ring.any()) else confidence.mean())


BOX_MARGIN = 0.05


def box_extent(box: BoxPrompt, clicks: Sequence[Click], shape: tuple[int, int], margin: float) -> np.ndarray:
    """(Y, X) bool: where an object given by ``box`` may be; the box stretched over every
    positive click, then grown by ``margin`` of its height/width (at least 2 px) a side."""
    positive = [c for c in clicks if c.positive]
    ys = [box.y0, box.y1] + [c.y for c in positive] + [c.y + 1 for c in positive]
    xs = [box.x0, box.x1] + [c.x for c in positive] + [c.x + 1 for c in positive]
    stretched = BoxPrompt(min(ys), min(xs), max(ys), max(xs))
    # The margin follows the box as drawn, not as stretched by a far click.
    dy, dx = max(2.0, margin * box.height), max(2.0, margin * box.width)
    return clip_box(BoxPrompt(stretched.y0 - dy, stretched.x0 - dx, stretched.y1 + dy, stretched.x1 + dx),
                    *shape).mask(shape)


class OISSegmenter:
    """Order-aware interactive segmentation backend.

    Parameters
    ----------
    model : OISModel
        Network (e.g. from :func:`~napari_ois.model.checkpoint.load_model`).
    device : str
        ``auto`` (cuda > mps > cpu), ``cpu``, ``cuda`` or ``mps``.
    zoom : ZoomSettings, optional
        Zoom-in around the object (:mod:`napari_ois.model.zoom`). Default: the
        checkpoint's own ``metadata["zoom"]`` (the settings validated for those
        weights, see MODEL_CARD.md), else :class:`ZoomSettings` defaults.
    step_residual_scale : float, optional
        Factor on the network's residual in click-free (propagation) steps; clicked
        predictions always get the full residual. Default: the checkpoint's
        ``metadata["step_residual_scale"]``, else 1.
    """

    name = "ois"

    def __init__(self, model: OISModel, device: str = "auto", zoom: ZoomSettings | None = None,
                 step_residual_scale: float | None = None):
        self.device = resolve_device(device)
        # Channels-last suits the convolutions of encoder and decoder on CPU and GPU alike.
        self.model = model.eval().to(self.device, memory_format=torch.channels_last)
        self.config = model.config
        self.metadata = dict(getattr(model, "metadata", {}) or {})
        self.checkpoint = getattr(model, "checkpoint_path", None)
        self.prior = ClassicalPrior(self.config.prior_work_size) if self.config.use_prior else None
        self.zoom = zoom if zoom is not None else zoom_from_metadata(self.metadata)
        # A propagation step has no click to correct the residual's errors, and each
        # step's output is the next step's reference: a damped residual keeps most of
        # the gain while its leaks compound more slowly (chosen on training-side chains).
        if step_residual_scale is None:
            step_residual_scale = float(self.metadata.get("step_residual_scale", 1.0))
        if not 0.0 <= step_residual_scale <= 1.0:
            raise ValueError(f"step_residual_scale must be in [0, 1], got {step_residual_scale}")
        self.step_residual_scale = step_residual_scale
        # Maps a propagation step's raw score to a predicted IoU (None: raw boundary
        # confidence, as the calibration script needs to fit it).
        self.quality_calibration: Calibration | None = OIS_CALIBRATION
        # What the session makes of that predicted IoU once the frame is written: colour
        # match with the keyframes and distance to them (core/track_quality.py).
        self.track_calibration: Calibration | None = OIS_TRACK_CALIBRATION
        # A box says where the object is: nothing beyond it (this fraction of its size as
        # slack, for a hand-drawn box) is the object unless a positive click says so.
        # None lets the network's residual reach outside the box.
        self.box_margin: float | None = BOX_MARGIN

    @classmethod
    def from_checkpoint(cls, name_or_path: str | None = None, device: str = "auto") -> "OISSegmenter":
        """Load a checkpoint (None = the packaged default) into a segmenter."""
        return cls(load_model(name_or_path, "cpu"), device)

    # ------------------------------------------------------------------ encode
    def encode(self, image: np.ndarray, depth: np.ndarray | None = None) -> OISEmbedding:
        """Run the encoder (and depth head) on one frame.

        Parameters
        ----------
        image : np.ndarray
            (Y, X, 3) float32 RGB in [0, 1].
        depth : np.ndarray, optional
            (Y, X) user depth (larger = closer), used when the model's
            ``depth_source`` is ``user``.
        """
        size = self.config.image_size
        tensor, geometry = preprocess_image(image, size)
        valid_hw = torch.tensor([geometry.resized_hw], dtype=torch.long)
        user_depth = preprocess_map(depth, geometry) if depth is not None else None
        with torch.inference_mode(), autocast_for(self.device):
            tensor = tensor.to(self.device).contiguous(memory_format=torch.channels_last)
            cache = self.model.encode(tensor, valid_hw.to(self.device), user_depth)
        prior = self.prior.encode(image) if self.prior is not None else None
        kept = None
        if self.zoom.enabled:
            rgb = np.asarray(image, dtype=np.float32)
            rgb = np.repeat(rgb[..., None], 3, axis=-1) if rgb.ndim == 2 else rgb[..., :3]
            # 8 bits are what frames are shown with; a quarter of the float32 bytes.
            kept = (np.clip(np.nan_to_num(rgb), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
        return OISEmbedding(cache, geometry, prior, kept)

    # ----------------------------------------------------------------- predict
    def predict(
        self,
        embedding: OISEmbedding,
        clicks: Sequence[Click],
        prev_prob: np.ndarray | None = None,
        reference: Reference | None = None,
        box: BoxPrompt | None = None,
    ) -> Prediction:
        """Segment one object; see :meth:`napari_ois.core.segmenter.Segmenter.predict`.

        A ``box`` (full-frame pixels) places the zoom-in crop, enters the classical prior
        (outside it is background unless a click says otherwise) and, in models with
        ``box_prompt``, the dense prompt as a map.

        Returns
        -------
        Prediction
            ``prob`` (Y, X) float32 in [0, 1] at full resolution, ``score`` in [0, 1]:
            for a click-free (propagation) step the predicted IoU of the mask
            (:mod:`napari_ois.core.quality`, with :attr:`quality_calibration`), else
            the boundary confidence.
        """
        prediction = self._predict_raw(embedding, clicks, prev_prob, reference, box)
        if clicks or box is not None or self.quality_calibration is None or (reference is None and prev_prob is None):
            # The calibration was fitted on propagation steps only; a clicked mask keeps
            # its raw confidence.
            return prediction
        ref_mask = reference.mask if reference is not None else np.asarray(prev_prob) > 0.5
        score = predicted_iou(prediction.prob, ref_mask, prediction.score, self.quality_calibration)
        return Prediction(prediction.prob, score)

    def _predict_raw(self, embedding: OISEmbedding, clicks: Sequence[Click], prev_prob: np.ndarray | None,
                     reference: Reference | None, box_prompt: BoxPrompt | None = None) -> Prediction:
        """:meth:`predict` with the raw boundary-confidence score."""
        geometry = embedding.geometry
        has_prev = prev_prob is not None and bool(np.any(np.asarray(prev_prob) > 0.5))
        ref_prompt = self._reference(embedding, reference)
        if box_prompt is None and not any(c.positive for c in clicks) and ref_prompt is None and not has_prev:
            # Nothing says where the object is: an empty mask, and no confidence in it.
            return Prediction(np.zeros(geometry.orig_hw, np.float32), 0.0)
        if not clicks and box_prompt is None and self.zoom.crop_only_steps and self.prior is not None and self._prior_lost_detail(embedding):
            # A propagation step: the previous and reference masks place the crop, so the
            # whole-frame prior and residual (a third of the step's time) are not needed.
            motion = self._step_motion(embedding, reference)
            if motion != (0, 0) and prev_prob is not None:
                # The previous mask, moved with the object. Left where it was, it pulls the
                # prior and the network's dense prompt towards the object's old place, and a
                # crop twice its size loses an object moving more than half its size
                # (training-side fast-moving COCO chains: J 0.82 -> 0.90).
                prev_prob = shift_map(np.asarray(prev_prob, np.float32), *motion)
            crop = self._zoom_crop(embedding, clicks, prev_prob, reference, None, motion)
            if crop is not None:
                return self._predict_crop_only(embedding, crop, prev_prob, reference)
        prior_full = None
        if self.prior is not None:
            prior_full = self._prior(embedding, clicks, prev_prob, reference, box_prompt)
        whole = self._predict_in(embedding.cache, geometry, None, clicks, prev_prob, prior_full, ref_prompt,
                                 box_prompt)
        crop = self._zoom_crop(embedding, clicks, prev_prob, reference, prior_full, box_prompt=box_prompt)
        if crop is None:
            full_logits, score = whole
        else:
            box, crop_cache, crop_geometry = crop
            if prior_full is not None and self._prior_lost_detail(embedding):
                y0, y1, x0, x1 = box
                prior_full = prior_full.copy()
                prior_full[y0:y1, x0:x1] = self._prior_on_crop(embedding, box, clicks, prev_prob, reference,
                                                               box_prompt)
            ref_prompt = self._reference(embedding, reference, crop_cache)
            full_logits, _ = whole
            crop_logits, score = self._predict_in(crop_cache, crop_geometry, box, clicks, prev_prob, prior_full,
                                                  ref_prompt, box_prompt)
            y0, y1, x0, x1 = box
            # The crop covers the object with margin: its sharper residual replaces the
            # whole-frame one there; outside, the whole-frame residual still removes
            # the prior's false positives far from the object.
            full_logits = full_logits.clone()
            full_logits[..., y0:y1, x0:x1] = crop_logits
        if prior_full is not None:
            # The prior's logit joins at full resolution: the residual is coarse (model
            # pixels) but the classical boundary keeps its own detail.
            with torch.inference_mode():
                full_logits = self.model.add_prior(full_logits, torch.from_numpy(prior_full)[None, None])
        prob = torch.sigmoid(full_logits)[0, 0].cpu().numpy().astype(np.float32, copy=False)
        if box_prompt is not None and self.box_margin is not None:
            prob = prob * box_extent(box_prompt, clicks, geometry.orig_hw, self.box_margin)
        return Prediction(prob, score)

    def _predict_crop_only(self, embedding: OISEmbedding, crop: tuple[Box, EncoderCache, Geometry],
                           prev_prob: np.ndarray | None, reference: Reference | None) -> Prediction:
        """A click-free step predicted on the crop alone; the frame outside it is background.

        The crop is twice the previous mask's box, so an object that moves less than half
        its size per frame stays inside (RITM's zoom-in pastes its crop the same way).
        """
        box, crop_cache, crop_geometry = crop
        y0, y1, x0, x1 = box
        prior_crop = self._prior_on_crop(embedding, box, [], prev_prob, reference)
        prior_full = np.zeros(embedding.geometry.orig_hw, np.float32)
        prior_full[y0:y1, x0:x1] = prior_crop
        ref_prompt = self._reference(embedding, reference, crop_cache)
        logits, score = self._predict_in(crop_cache, crop_geometry, box, [], prev_prob, prior_full, ref_prompt)
        with torch.inference_mode():
            logits = self.model.add_prior(logits, torch.from_numpy(prior_crop)[None, None])
        prob = np.zeros(embedding.geometry.orig_hw, np.float32)
        prob[y0:y1, x0:x1] = torch.sigmoid(logits)[0, 0].cpu().numpy()
        return Prediction(prob, score)

    def _predict_in(self, cache: EncoderCache, geometry: Geometry, box: Box | None, clicks: Sequence[Click],
                    prev_prob: np.ndarray | None, prior_full: np.ndarray | None,
                    ref_prompt: ReferencePrompt | None,
                    box_prompt: BoxPrompt | None = None) -> tuple[torch.Tensor, float]:
        """Residual logits of one encoded view (the whole frame, or the crop ``box``).

        ``box_prompt`` is in full-frame pixels, as ``clicks`` are.

        Returns
        -------
        torch.Tensor
            (1, 1, y, x) logits at the view's frame resolution, without the prior.
        float
            The view's boundary-confidence score (prior included).
        """
        y0, x0 = (box[0], box[2]) if box is not None else (0, 0)
        crop = (slice(box[0], box[1]), slice(box[2], box[3])) if box is not None else (slice(None), slice(None))
        points = [geometry.to_model(c.y - y0, c.x - x0) + (bool(c.positive),) for c in clicks
                  if box is None or (box[0] <= c.y < box[1] and box[2] <= c.x < box[3])]
        prev = preprocess_map(prev_prob[crop], geometry).to(self.device) if prev_prob is not None else None
        prompts = PromptBatch.from_clicks([points], prev_prob=prev, device=self.device)
        if prior_full is not None:
            prompts.prior = preprocess_map(prior_full[crop], geometry).to(self.device)
        if box_prompt is not None and self.config.box_prompt:
            view = box_prompt.in_view((y0, x0), geometry.orig_hw)
            inside = np.zeros(geometry.orig_hw, bool) if view is None else view.mask(geometry.orig_hw)
            prompts.box_map = preprocess_map(inside.astype(np.float32), geometry).to(self.device)
        with torch.inference_mode(), autocast_for(self.device):
            logits = self.model.forward_prompt(cache, prompts, ref_prompt, add_prior=False)
        rh, rw = geometry.resized_hw
        logits = logits.float()[:, :, :rh, :rw]
        if not clicks and box_prompt is None and self.step_residual_scale != 1.0:
            logits = logits * self.step_residual_scale
        score_logits = logits
        if prior_full is not None:
            with torch.inference_mode():
                score_logits = self.model.add_prior(logits, prompts.prior[:, :, :rh, :rw])
        score = boundary_confidence(torch.sigmoid(score_logits))
        full = F.interpolate(logits, size=geometry.orig_hw, mode="bilinear", align_corners=False)
        return full, score

    def _zoom_crop(self, embedding: OISEmbedding, clicks: Sequence[Click], prev_prob: np.ndarray | None,
                   reference: Reference | None, prior_full: np.ndarray | None,
                   motion: tuple[int, int] = (0, 0),
                   box_prompt: BoxPrompt | None = None) -> tuple[Box, EncoderCache, Geometry] | None:
        """The encoded crop around the object, or None when the whole frame is as good.

        The object's extent is the union of the positive clicks, the box prompt, the
        previous mask, the reference mask (same object one frame away) and the prior's mask; the
        reference mask's box counts both where it was and moved by ``motion`` (dy, dx)
        frame pixels, where the object went.
        """
        if not self.zoom.enabled or embedding.image is None or not (
                clicks or box_prompt is not None or self.zoom.without_clicks):
            return None
        ref_mask = None
        if reference is not None and np.shape(reference.mask) == embedding.geometry.orig_hw:
            ref_mask = reference.mask
        points = [(c.y, c.x) for c in clicks if c.positive]
        if box_prompt is not None:
            y0, y1, x0, x1 = box_prompt.pixel_bounds(embedding.geometry.orig_hw)
            points += [(y0, x0), (y1 - 1, x1 - 1)]
        needed = object_box([prev_prob, ref_mask, prior_full], points)
        # With a moved previous mask the box already spans both places; this covers a
        # step given only a reference (API callers may pass no previous mask).
        ref_box = object_box([ref_mask], []) if motion != (0, 0) else None
        if ref_box is not None:
            needed = union_box(needed, with_motion(ref_box, *motion, embedding.geometry.orig_hw))
        ideal = zoom_box(needed, embedding.geometry.orig_hw, self.zoom)
        if ideal is None:
            return None
        box = reusable_crop(list(embedding.crops), needed, ideal, self.zoom) or ideal
        if box not in embedding.crops:
            y0, y1, x0, x1 = box
            pixels = embedding.image[y0:y1, x0:x1].astype(np.float32) / 255.0
            tensor, geometry = preprocess_image(pixels, self.config.image_size)
            valid_hw = torch.tensor([geometry.resized_hw], dtype=torch.long)
            with torch.inference_mode(), autocast_for(self.device):
                tensor = tensor.to(self.device).contiguous(memory_format=torch.channels_last)
                cache = self.model.encode(tensor, valid_hw.to(self.device))
            embedding.crops[box] = (cache, geometry)
            while len(embedding.crops) > self.zoom.keep_crops:
                embedding.crops.pop(next(iter(embedding.crops)))
        else:
            embedding.crops[box] = embedding.crops.pop(box)  # now the newest
        cache, geometry = embedding.crops[box]
        return box, cache, geometry

    def _step_motion(self, embedding: OISEmbedding, reference: Reference | None) -> tuple[int, int]:
        """(dy, dx) frame pixels the reference frame's object moved to reach this frame.

        Estimated on the whole-frame classical grids (the prior's own motion search), so
        a propagation step can place its crop where the object went rather than where it was.
        """
        if reference is None or not isinstance(reference.embedding, OISEmbedding):
            return 0, 0
        if reference.embedding.prior is None or embedding.prior is None:
            return 0, 0
        return estimate_motion(reference.embedding.prior, embedding.prior, reference.mask)

    def _prior(self, embedding: OISEmbedding, clicks: Sequence[Click], prev_prob: np.ndarray | None,
               reference: Reference | None, box_prompt: BoxPrompt | None = None) -> np.ndarray:
        """(Y, X) classical prior probability for the same prompts (full frame resolution)."""
        ref = None
        if reference is not None and isinstance(reference.embedding, OISEmbedding) and (
                reference.embedding.prior is not None):
            ref = Reference(reference.embedding.prior, reference.mask)
        return self.prior.predict(embedding.prior, clicks, prev_prob, ref, box_prompt)

    def _prior_lost_detail(self, embedding: OISEmbedding) -> bool:
        """Whether the whole-frame prior ran on a downscaled grid that a crop prior would refine."""
        return self.zoom.crop_prior and embedding.prior is not None and embedding.prior.scale < 1.0

    def _prior_crop_embedding(self, embedding: OISEmbedding, box: Box):
        """The classical embedding of the crop ``box`` of an encoded frame (cached per frame)."""
        if box not in embedding.prior_crops:
            y0, y1, x0, x1 = box
            crop_prior = self.prior.encode(embedding.image[y0:y1, x0:x1].astype(np.float32) / 255.0)
            # Motion is searched over a fraction of the whole frame, as for the whole-frame
            # prior: a crop twice the object's size would otherwise cap it at a few pixels
            # and lose an object moving faster (DAVIS kite-surf).
            crop_prior.context_side = max(embedding.geometry.orig_hw)
            embedding.prior_crops[box] = crop_prior
            while len(embedding.prior_crops) > self.zoom.keep_crops:
                embedding.prior_crops.pop(next(iter(embedding.prior_crops)))
        return embedding.prior_crops[box]

    def _prior_on_crop(self, embedding: OISEmbedding, box: Box, clicks: Sequence[Click],
                       prev_prob: np.ndarray | None, reference: Reference | None,
                       box_prompt: BoxPrompt | None = None) -> np.ndarray:
        """(y1 - y0, x1 - x0) classical prior recomputed on the crop ``box``.

        The classical backend works on a grid of at most ``prior_work_size`` pixels: on a
        576 x 720 cell frame a 25 px cell spans 11 of its pixels (5 on its coarse
        geodesic grid) and its propagated mask loses a rim each frame. On the crop it
        runs at up to full resolution, the scale the network's prior had in training
        (object-centred 256 px views). The reference is the same box of the reference
        frame, when that frame kept its pixels.
        """
        y0, y1, x0, x1 = box
        inside = [replace(c, y=c.y - y0, x=c.x - x0) for c in clicks if y0 <= c.y < y1 and x0 <= c.x < x1]
        prev = None if prev_prob is None else np.asarray(prev_prob, np.float32)[y0:y1, x0:x1]
        ref = None
        ref_embedding = reference.embedding if reference is not None else None
        if (isinstance(ref_embedding, OISEmbedding) and ref_embedding.image is not None
                and np.shape(reference.mask) == ref_embedding.geometry.orig_hw
                and ref_embedding.geometry.orig_hw == embedding.geometry.orig_hw):
            ref = Reference(self._prior_crop_embedding(ref_embedding, box), np.asarray(reference.mask)[y0:y1, x0:x1])
        if box_prompt is not None:
            box_prompt = box_prompt.in_view((y0, x0), (y1 - y0, x1 - x0))
        return self.prior.predict(self._prior_crop_embedding(embedding, box), inside, prev, ref, box_prompt)

    def _reference(self, embedding: OISEmbedding, reference: Reference | None,
                   crop_cache: EncoderCache | None = None) -> ReferencePrompt | None:
        """The reference frame as a model prompt, when this model uses one and it fits.

        With zoom-in (``crop_cache`` given) a crop of the reference frame that holds
        at least 90 % of the reference mask is used when there is one (the newest
        such): its prototypes then come from features at the same scale as the
        current crop's. Other objects' crops of the same frame do not qualify, as
        they do not hold this mask.
        """
        if reference is None or not self.config.use_reference:
            return None
        ref_embedding = reference.embedding
        if not isinstance(ref_embedding, OISEmbedding):
            return None  # encoded by another backend: its features mean nothing here
        mask = np.asarray(reference.mask, dtype=np.float32)
        tokens, geometry = ref_embedding.cache.tokens, ref_embedding.geometry
        total = float(mask.sum()) if crop_cache is not None else 0.0
        for box, (ref_crop, ref_geometry) in reversed(list(ref_embedding.crops.items()) if total else []):
            inside = mask[box[0]:box[1], box[2]:box[3]]
            if inside.sum() >= 0.9 * total:
                tokens, geometry, mask = ref_crop.tokens, ref_geometry, inside
                break
        target = crop_cache if crop_cache is not None else embedding.cache
        if tokens.shape != target.tokens.shape:
            return None
        cells = area_resize(preprocess_map(mask, geometry).to(self.device), tuple(tokens.shape[-2:]))
        return ReferencePrompt(tokens, cells)

    def frame_depth(self, embedding: OISEmbedding) -> np.ndarray | None:
        """The depth head's map of an encoded frame, at frame resolution (larger = closer).

        Used by multi-object propagation to put the object in front first where masks
        overlap. Costs no encoder pass: the depth is part of the cached embedding.

        Returns
        -------
        np.ndarray or None
            (Y, X) float32 relative depth, or None when the model has no depth.
        """
        depth = embedding.cache.depth
        if depth is None:
            return None
        geometry = embedding.geometry
        grid = int(depth.shape[-1])
        # The map covers the padded S x S input: keep the cells over image content only.
        rows = max(1, -(-geometry.resized_hw[0] * grid // geometry.size))
        cols = max(1, -(-geometry.resized_hw[1] * grid // geometry.size))
        with torch.inference_mode():
            valid = depth[:1, :1, :rows, :cols].float()
            full = F.interpolate(valid, size=geometry.orig_hw, mode="bilinear", align_corners=False)
        return full[0, 0].cpu().numpy().astype(np.float32, copy=False)
