"""One training step of the OIS model: simulated clicking as in SegNext/RITM iterative training.

Per batch: encode the images once (with gradients) and the reference frames once
(without: the reference path learns through its own MLPs); sample the initial clicks;
run 0..``max_iter_clicks`` no-grad prompt passes, each adding one corrective click in
the error of the model's own prediction and feeding its probability back; then one
prompt pass with gradients carries the normalized focal loss (+ the depth loss where
depth is known).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..model.layers import area_resize
from ..model.network import OISModel
from ..core.segmenter import Reference
from ..model.prior import ClassicalPrior
from ..core.boxes import BoxPrompt, box_of_mask
from ..model.prompts import PromptBatch
from ..model.reference import ReferencePrompt
from .augment import bleed_mask
from .click_sampler import clicked_map, iterative_click, sample_initial_clicks
from .losses import normalized_focal_loss, ssi_depth_loss
from .samples import TrainingSample, stack_samples


@dataclass
class StepSettings:
    """Knobs of the click simulation and the loss.

    Attributes
    ----------
    max_iter_clicks : int
        Corrective clicks drawn uniformly from 0..this per batch (SegNext: 3).
    prev_from_reference_prob : float
        Pair samples whose degraded reference mask is the previous mask (else none).
    depth_loss_weight : float
        Weight of the scale-and-shift-invariant depth loss.
    zero_click_prob : float
        Pair samples trained with no click at all (pure propagation).
    rollout_reference_prob : float
        Pair samples whose reference mask is replaced by the model's own prediction on
        the reference frame (see :func:`rollout_references`).
    rollout_max_steps : int
        Longest roll-out (odd); each batch draws its length from 1, 3, .. this, so
        some references carry the error of several propagation steps.
    exact_propagation_steps : bool
        Train zero-click pairs exactly as propagation runs them: the previous mask is
        the reference mask and no corrective click is simulated (else those samples
        gain clicks in the iterative rounds and their previous mask becomes the
        model's own aligned prediction, so a true propagation step is rarely seen).
    bleed_reference_prob : float
        Pair samples whose reference mask (after any roll-out) also gets background
        regions touching the object (:func:`~napari_ois.train.augment.bleed_mask`): a
        filled concavity or an outside blob, the leaks that grow frame after frame in
        propagation unless the model learns to remove them.
    single_click_start_prob : float
        Samples that start from nothing (no previous mask) whose multi-point initial
        clicks are replaced by one positive click deep inside the object, where a user
        (and the evaluation protocol) clicks first; the corrective rounds then follow
        as usual. The multi-point sampler gives exactly one positive and no negative
        click to ~4 % of the samples, so the first click of a session is rarely trained.
    """

    max_iter_clicks: int = 3
    prev_from_reference_prob: float = 0.5
    depth_loss_weight: float = 0.5
    zero_click_prob: float = 0.25
    rollout_reference_prob: float = 0.0
    exact_propagation_steps: bool = False
    rollout_max_steps: int = 1
    bleed_reference_prob: float = 0.0
    single_click_start_prob: float = 0.0
    box_start_prob: float = 0.0
    box_jitter: float = 0.1


def _images(batch: dict, key: str, device) -> torch.Tensor:
    """(B, H, W, 3) numpy -> (B, 3, H, W) float tensor, channels-last for the conv nets."""
    t = torch.from_numpy(batch[key]).permute(0, 3, 1, 2).contiguous().to(device)
    return t.contiguous(memory_format=torch.channels_last)


def valid_extent(ignore: np.ndarray) -> torch.Tensor:
    """(B, 2) image extent from the padding (padding is bottom/right and ignored)."""
    rows = (~ignore).any(axis=2)
    cols = (~ignore).any(axis=1)
    return torch.tensor([[max(int(r.sum()), 1), max(int(c.sum()), 1)] for r, c in zip(rows, cols)])


def _click_lists(clicks: list[np.ndarray]) -> list[list[tuple[float, float, bool]]]:
    return [[(float(y), float(x), bool(p)) for y, x, p in c] for c in clicks]


class _BatchPrior:
    """The classical prior of every sample of a batch, recomputed at each click round.

    Runs on each sample's valid (unpadded) extent, exactly as the segmenter runs it on
    a whole frame, with the same clicks, previous probability and reference.
    """

    def __init__(self, prior: ClassicalPrior, batch: dict, valid_hw: torch.Tensor, only: np.ndarray | None = None):
        self.prior, self.size = prior, batch["mask"].shape[-1]
        self.extents = [tuple(int(v) for v in hw) for hw in valid_hw.tolist()]
        # ``only``: samples to compute (the others stay zero), to spare the encoding.
        self.only = np.ones(len(self.extents), bool) if only is None else np.asarray(only, bool)
        self.embeddings = [prior.encode(img[:h, :w]) if keep else None
                           for img, (h, w), keep in zip(batch["image"], self.extents, self.only)]
        self.references: list[Reference | None] = []
        for i, (h, w) in enumerate(self.extents):
            ref = None
            if self.only[i] and batch["has_ref"][i] and batch["ref_mask"][i][:h, :w].any():
                ref = Reference(prior.encode(batch["ref_image"][i][:h, :w]), batch["ref_mask"][i][:h, :w])
            self.references.append(ref)

    def set_reference_masks(self, masks: torch.Tensor) -> None:
        """Give every sample that has a reference the (B, 1, S, S) ``masks`` as its reference mask."""
        masks_np = masks[:, 0].detach().cpu().numpy() > 0.5
        for i, ((h, w), ref) in enumerate(zip(self.extents, self.references)):
            if ref is not None:
                self.references[i] = Reference(ref.embedding, masks_np[i, :h, :w])

    def __call__(self, clicks: list[np.ndarray], prev: torch.Tensor, has_prev: torch.Tensor,
                 boxes: list[BoxPrompt | None] | None = None) -> torch.Tensor:
        """(B, 1, S, S) prior probability (zeros on the padding); ``boxes`` per sample or None."""
        out = np.zeros((len(clicks), 1, self.size, self.size), np.float32)
        boxes = boxes if boxes is not None else [None] * len(clicks)
        prev_np = prev[:, 0].detach().cpu().numpy()
        for i, (h, w) in enumerate(self.extents):
            if not self.only[i]:
                continue
            points = [(float(y), float(x), bool(p)) for y, x, p in clicks[i] if y < h and x < w]
            previous = prev_np[i, :h, :w] if bool(has_prev[i]) else None
            out[i, 0, :h, :w] = self.prior.predict_points(self.embeddings[i], points, previous, self.references[i],
                                                          boxes[i])
        return torch.from_numpy(out).to(prev.device)


_PRIORS: dict[int, ClassicalPrior] = {}


def rollout_references(model: OISModel, batch: dict, cache, ref_cache, valid_hw: torch.Tensor,
                       chosen: np.ndarray, device, steps: int = 1) -> None:
    """Replace the reference masks of the ``chosen`` pairs by the model's own propagation.

    At inference the reference of frame t is the model's mask on frame t-1, with its
    systematic errors (e.g. a band too wide, or a mask a little smaller each frame);
    a model trained only on ground truth degraded at random never learns to undo
    them, and they compound frame after frame. Here the model first propagates
    backwards, exactly as one propagation step does: it segments the reference frame
    given the current frame's true mask as reference and previous mask, with no
    click. That mask, errors included, becomes the pair's reference (and previous)
    mask, so the trained step is the second of a two-step chain.

    With ``steps`` > 1 (odd) the chain goes back and forth between the two frames
    (current -> reference -> current -> reference ...), so the reference carries the
    error of ``steps`` propagation steps, as deep in a long video, and the trained
    step must bring that mask back to the truth. No gradient flows through the
    roll-out.

    Parameters
    ----------
    batch : dict
        From :func:`stack_samples`; ``ref_mask`` (B, S, S) is updated in place.
    cache, ref_cache : EncoderCache
        The encoded current and reference frames (batch B).
    chosen : np.ndarray
        (B,) bool, pairs to roll out.
    steps : int
        Odd number of propagation steps; the last one lands on the reference frame.
    """
    if not chosen.any():
        return
    if steps < 1 or steps % 2 == 0:
        raise ValueError(f"roll-out steps must be odd and >= 1, got {steps}")
    b = len(chosen)
    valid = torch.from_numpy(~batch["ignore"])[:, None].to(device)
    mask = torch.from_numpy(batch["mask"]).float()[:, None].to(device)  # on the current frame
    alive = torch.from_numpy(chosen).to(device)
    # The classical prior of each direction: frames encoded once, reference masks set per step.
    priors = [None, None]
    if model.prior_fusion is not None:
        work = _classical_prior(model.config.prior_work_size)
        backward = {"image": batch["ref_image"], "mask": batch["mask"], "ref_image": batch["image"],
                    "ref_mask": batch["mask"], "has_ref": chosen}
        forward = {"image": batch["image"], "mask": batch["mask"], "ref_image": batch["ref_image"],
                   "ref_mask": batch["mask"], "has_ref": chosen}
        priors = [_BatchPrior(work, backward, valid_hw, only=chosen),
                  _BatchPrior(work, forward, valid_hw, only=chosen) if steps > 1 else None]
    for k in range(steps):
        # Even k: current -> reference frame; odd k: reference -> current frame.
        source, target = (cache, ref_cache) if k % 2 == 0 else (ref_cache, cache)
        prompts = PromptBatch.from_clicks([[] for _ in range(b)], mask, device)
        prompts.has_prev = alive
        with torch.no_grad():
            ref_prompt = ReferencePrompt(source.tokens.detach(), area_resize(mask, source.tokens.shape[-2:]), alive)
            prior = priors[k % 2]
            if prior is not None:
                prior.set_reference_masks(mask)
                prompts.prior = prior([np.zeros((0, 3), np.int64)] * b, mask, alive)
            prob = torch.sigmoid(model.forward_prompt(target, prompts, ref_prompt).float())
        new = ((prob > 0.5) & valid).float()
        # A lost object stops its chain and keeps its degraded reference.
        alive = alive & (new.flatten(1).sum(1) > 0)
        mask = torch.where(alive[:, None, None, None], new, mask)
    rolled = mask[:, 0].cpu().numpy() > 0.5
    for i in np.flatnonzero(alive.cpu().numpy()):
        batch["ref_mask"][i] = rolled[i]


def bleed_references(batch: dict, chosen: np.ndarray, rng: np.random.Generator) -> None:
    """Add leaked background to the reference masks of the ``chosen`` pairs, in place.

    Parameters
    ----------
    batch : dict
        From :func:`stack_samples`; ``ref_mask`` (B, S, S) bool is updated, never over
        the padding (``ignore``).
    chosen : np.ndarray
        (B,) bool.
    """
    for i in np.flatnonzero(chosen):
        ref = batch["ref_mask"][i]
        batch["ref_mask"][i] = ref | (bleed_mask(ref, rng) & ~batch["ignore"][i])


def jittered_box(mask: np.ndarray, extent: tuple[int, int], jitter: float,
                 rng: np.random.Generator) -> BoxPrompt | None:
    """The tight box of a (S, S) bool ``mask`` with each side moved by up to ``jitter`` of its size.

    Kept inside the valid ``extent`` (h, w) and at least one pixel wide; None for an
    empty mask.
    """
    tight = box_of_mask(mask)
    if tight is None:
        return None
    h, w = extent
    dy, dx = jitter * tight.height, jitter * tight.width
    y0, y1 = tight.y0 + rng.uniform(-dy, dy), tight.y1 + rng.uniform(-dy, dy)
    x0, x1 = tight.x0 + rng.uniform(-dx, dx), tight.x1 + rng.uniform(-dx, dx)
    y0, x0 = float(np.clip(y0, 0, h - 1)), float(np.clip(x0, 0, w - 1))
    y1, x1 = float(np.clip(y1, y0 + 1, h)), float(np.clip(x1, x0 + 1, w))
    return BoxPrompt(y0, x0, y1, x1)


def box_maps(boxes: list[BoxPrompt | None], size: int, device) -> torch.Tensor:
    """(B, 1, S, S) float maps, 1 inside each sample's box (all 0 without one)."""
    maps = np.zeros((len(boxes), 1, size, size), np.float32)
    for i, box in enumerate(boxes):
        if box is not None:
            maps[i, 0] = box.mask((size, size))
    return torch.from_numpy(maps).to(device)


def _classical_prior(work_size: int) -> ClassicalPrior:
    if work_size not in _PRIORS:
        _PRIORS[work_size] = ClassicalPrior(work_size)
    return _PRIORS[work_size]


def training_step(
    model: OISModel,
    samples: list[TrainingSample],
    rng: np.random.Generator,
    settings: StepSettings,
    device: torch.device | str = "cpu",
    n_iter: int | None = None,
    trunk: tuple[tuple[torch.Tensor, ...], tuple[torch.Tensor, ...]] | None = None,
) -> dict[str, torch.Tensor | float]:
    """Forward the batch with simulated clicks; returns the losses (``loss`` has a graph).

    Parameters
    ----------
    samples : list of TrainingSample
        Same-size samples (model input size), e.g. from ``mixed_stream``.
    rng : numpy.random.Generator
        Drives click sampling, so a step is reproducible given the seed.
    n_iter : int, optional
        Corrective-click rounds of this batch (default: drawn from ``rng``, 0..
        ``settings.max_iter_clicks``). Data-parallel workers pass one shared draw: each
        round reruns the classical prior, so a worker drawing more rounds than the
        others would keep them all waiting at the gradient average.
    trunk : tuple, optional
        (maps, ref_maps): a frozen trunk's cached maps of the images and the reference
        images (:class:`~napari_ois.train.feature_pool.FeaturePool`); only the neck
        onwards runs on them.
    """
    batch = stack_samples(samples)
    b, size = len(samples), batch["mask"].shape[-1]
    images = _images(batch, "image", device)
    valid_hw = valid_extent(batch["ignore"])
    maps, ref_maps = trunk if trunk is not None else (None, None)
    to_device = lambda m: None if m is None else tuple(t.to(device) for t in m)  # noqa: E731
    cache = model.encode(images, valid_hw, trunk_maps=to_device(maps))

    reference = None
    has_ref = torch.from_numpy(batch["has_ref"])
    if model.reference_encoder is not None and bool(has_ref.any()):
        with torch.no_grad():
            ref_cache = model.encode(_images(batch, "ref_image", device), valid_hw, trunk_maps=to_device(ref_maps))
        if settings.rollout_reference_prob > 0:  # no draw when off: older runs replay unchanged
            rollout = batch["has_ref"] & (rng.random(b) < settings.rollout_reference_prob)
            steps = 1
            if settings.rollout_max_steps > 1:  # no draw when off: older runs replay unchanged
                steps = 1 + 2 * int(rng.integers(0, (settings.rollout_max_steps + 1) // 2))
            rollout_references(model, batch, cache, ref_cache, valid_hw, rollout, device, steps)
        if settings.bleed_reference_prob > 0:  # no draw when off: older runs replay unchanged
            bleed_references(batch, batch["has_ref"] & (rng.random(b) < settings.bleed_reference_prob), rng)
        ref_mask = torch.from_numpy(batch["ref_mask"]).float()[:, None].to(device)
        reference = ReferencePrompt(ref_cache.tokens, area_resize(ref_mask, ref_cache.tokens.shape[-2:]),
                                    has_ref.to(device))

    clicks = [sample_initial_clicks(s, rng, settings.zero_click_prob) for s in samples]
    # Pair samples start, half of the time, from their (degraded) reference mask, as when
    # a propagated mask is being corrected; the others start from nothing.
    use_prev = np.array([bool(r) and rng.random() < settings.prev_from_reference_prob for r in batch["has_ref"]])
    pure = np.zeros(b, bool)
    if settings.exact_propagation_steps:
        pure = batch["has_ref"] & np.array([len(c) == 0 for c in clicks])
        use_prev |= pure
    if settings.single_click_start_prob > 0:  # no draw when off: older runs replay unchanged
        single = (rng.random(b) < settings.single_click_start_prob) & ~use_prev
        for i in np.flatnonzero(single):
            if len(clicks[i]):  # zero-click propagation samples stay as they are
                first = iterative_click(batch["mask"][i], np.zeros((size, size), np.float32), None, rng,
                                        batch["ignore"][i])
                clicks[i] = np.array([first], np.int64) if first is not None else clicks[i]
    boxes: list[BoxPrompt | None] = [None] * b
    if model.config.box_prompt and settings.box_start_prob > 0:
        # A box replaces the initial clicks of a fresh start (never of a propagation step).
        start_with_box = (rng.random(b) < settings.box_start_prob) & ~use_prev & ~pure
        for i in np.flatnonzero(start_with_box):
            boxes[i] = jittered_box(batch["mask"][i], tuple(int(v) for v in valid_hw[i]), settings.box_jitter, rng)
            if boxes[i] is not None:
                clicks[i] = np.zeros((0, 3), np.int64)
    box_map = box_maps(boxes, size, device) if model.config.box_prompt else None
    prev = torch.zeros(b, 1, size, size, device=device)
    if use_prev.any():
        prev[torch.from_numpy(use_prev)] = torch.from_numpy(batch["ref_mask"][use_prev]).float()[:, None].to(device)
    has_prev = torch.from_numpy(use_prev).to(device)
    batch_prior = None
    if model.prior_fusion is not None:
        batch_prior = _BatchPrior(_classical_prior(model.config.prior_work_size), batch, valid_hw)

    if n_iter is None:
        n_iter = int(rng.integers(0, settings.max_iter_clicks + 1))
    if n_iter:
        with torch.no_grad():
            for _ in range(n_iter):
                prompts = PromptBatch.from_clicks(_click_lists(clicks), prev, device)
                prompts.has_prev, prompts.box_map = has_prev, box_map
                if batch_prior is not None:
                    prompts.prior = batch_prior(clicks, prev, has_prev, boxes)
                prob = torch.sigmoid(model.forward_prompt(cache, prompts, reference)).float()
                prob_np = prob[:, 0].cpu().numpy()
                for i in range(b):
                    if pure[i]:
                        continue  # a propagation step gets no click
                    click = iterative_click(batch["mask"][i], prob_np[i], clicked_map(clicks[i], (size, size)),
                                            rng, batch["ignore"][i])
                    if click is not None:
                        clicks[i] = np.vstack([clicks[i], np.array([click], np.int64)])
                # Propagation steps keep the reference mask as their previous mask.
                keep = torch.from_numpy(pure).to(device)[:, None, None, None]
                prev = torch.where(keep, prev, prob)
                has_prev = torch.ones(b, dtype=torch.bool, device=device)

    prompts = PromptBatch.from_clicks(_click_lists(clicks), prev, device)
    prompts.has_prev, prompts.box_map = has_prev, box_map
    if batch_prior is not None:
        prompts.prior = batch_prior(clicks, prev, has_prev, boxes)
    logits = model.forward_prompt(cache, prompts, reference).float()
    target = torch.from_numpy(batch["mask"]).float()[:, None].to(device)
    ignore = torch.from_numpy(batch["ignore"])[:, None].to(device)
    seg_loss = normalized_focal_loss(logits, target, ignore)

    depth_loss = torch.zeros((), device=device)
    has_depth = torch.from_numpy(batch["has_depth"])
    if cache.depth is not None and bool(has_depth.any()):
        grid = cache.depth.shape[-2:]
        true_depth = area_resize(torch.from_numpy(batch["depth"])[:, None].to(device), grid)
        valid = F.interpolate((~ignore).float(), size=grid, mode="area") > 0.99
        depth_loss = ssi_depth_loss(cache.depth.float(), true_depth, has_depth.to(device), valid)
    loss = seg_loss + settings.depth_loss_weight * depth_loss
    with torch.no_grad():
        iou = ((logits > 0) & (target > 0.5) & ~ignore).sum((1, 2, 3)) / (
            ((logits > 0) | (target > 0.5)) & ~ignore).sum((1, 2, 3)).clamp(min=1)
    return {"loss": loss, "nfl": seg_loss.item(), "depth": depth_loss.item(),
            "train_iou": float(iou.mean()), "clicks": float(np.mean([len(c) for c in clicks]))}
