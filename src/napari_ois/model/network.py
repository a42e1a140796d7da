"""The OIS network: encode a frame once, then a cheap prompt pass per click.

::

    encode(images)                         once per frame, cached
      backbone -> tokens (B, C, h, w) [+ skips]      depth head -> (B, 1, S/8, S/8)
    forward_prompt(cache, prompts, reference)        every click
      x = tokens + dense prompt [+ reference prototypes and similarity]
      tokens = [object token, click tokens..., reference tokens]
      object block (FG/BG-masked) -> order block (depth-order biased) -> decoder
      -> logits (B, 1, S, S)

In training, call :meth:`OISModel.encode` once per batch (with gradients) and
:meth:`OISModel.forward_prompt` for every simulated click round, as SegNext does.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import torch
from torch import nn

from .attention import PromptBlock, object_blocked
from .backbone import Backbone
from .config import ModelConfig
from .decoder import MaskDecoder
from .depth import DepthHead, user_depth_to_grid
from .layers import area_resize
from .order import order_maps
from .preprocess import valid_mask
from .prior import PriorFusion, prior_logit
from .prompts import OBJECT, PADDING, ClickTokenEncoder, DensePromptEncoder, FourierPositionEncoding, PromptBatch
from .reference import ReferenceEncoder, ReferencePrompt


@dataclass
class EncoderCache:
    """Everything the per-click path needs from the encoder.

    Attributes
    ----------
    tokens : torch.Tensor
        (B, C, h, w) image tokens, stride 16.
    valid_hw : torch.Tensor
        (B, 2) long extent (y, x) of image content in model pixels (the rest is padding).
    skip8, skip4 : torch.Tensor or None
        (B, D8, 2h, 2w), (B, D4, 4h, 4w) conv-backbone features for the decoder.
    depth : torch.Tensor or None
        (B, 1, S/8, S/8) depth for order maps (head or user), None without one.
    """

    tokens: torch.Tensor
    valid_hw: torch.Tensor
    skip8: torch.Tensor | None = None
    skip4: torch.Tensor | None = None
    depth: torch.Tensor | None = None

    @property
    def nbytes(self) -> int:
        """Bytes held by the cached tensors."""
        total = 0
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, torch.Tensor):
                total += value.numel() * value.element_size()
        return total


class OISModel(nn.Module):
    """Order-aware interactive segmentation network.

    Parameters
    ----------
    config : ModelConfig
        Architecture and ablation switches.
    load_backbone_weights : bool
        Load ``config.backbone_weights`` (a local file) into the backbone; leave
        False when the weights will come from a checkpoint.
    """

    def __init__(self, config: ModelConfig, load_backbone_weights: bool = False):
        super().__init__()
        self.config = config.validate()
        dim = config.embed_dim
        self.backbone = Backbone(config, load_backbone_weights)
        self.position = FourierPositionEncoding(dim)
        self.object_token = nn.Parameter(torch.zeros(1, 1, dim))
        nn.init.normal_(self.object_token, std=0.02)
        self.click_encoder = ClickTokenEncoder(dim) if config.use_sparse else None
        self.dense_encoder = (
            DensePromptEncoder(dim, config.click_radius, with_prior=config.use_prior, with_box=config.box_prompt)
            if config.use_dense else None
        )
        self.reference_encoder = (
            ReferenceEncoder(dim, config.reference_similarity) if config.use_reference else None
        )
        skip_dim = config.decoder_dims[1] if config.backbone_kind == "conv" else None
        self.depth_head = DepthHead(dim, config.depth_dim, skip_dim) if config.depth_head else None
        self.object_block = PromptBlock(dim, config.num_heads, config.mlp_ratio)
        self.order_block = PromptBlock(
            dim, config.num_heads, config.mlp_ratio,
            order_mode=config.order_mode if config.order_active else None,
            sigma_init=config.order_sigma_init, hard_threshold=config.order_hard_threshold,
        )
        self.decoder = MaskDecoder(dim, config.decoder_dims)
        self.prior_fusion = PriorFusion(config.decoder_dims[2], config.click_radius) if config.use_prior else None
        if config.use_prior:
            self.decoder.zero_output()  # residual on the prior: the untrained net reproduces it

    # ------------------------------------------------------------------ encode
    def encode(self, images: torch.Tensor | None, valid_hw: torch.Tensor | None = None,
               depth: torch.Tensor | None = None, trunk_maps: tuple[torch.Tensor, ...] | None = None) -> EncoderCache:
        """Run the heavy part once.

        Parameters
        ----------
        images : torch.Tensor
            (B, 3, S, S) RGB in [0, 1], longest-side resized and zero-padded.
        valid_hw : torch.Tensor, optional
            (B, 2) image extent (y, x) in model pixels; None = no padding.
        depth : torch.Tensor, optional
            (B, 1, S, S) user depth (any monotonic scale, larger = closer), resized
            and padded like the image; used when ``depth_source == "user"``.
        trunk_maps : tuple of torch.Tensor, optional
            A frozen conv trunk's maps of ``images`` computed earlier
            (:meth:`~napari_ois.model.backbone.Backbone.trunk_maps`); ``images`` may then be None.
        """
        size = self.config.image_size
        ref = images if images is not None else trunk_maps[0]
        b, device = ref.shape[0], ref.device
        if valid_hw is None:
            valid_hw = torch.full((b, 2), size, dtype=torch.long, device=device)
        valid_hw = valid_hw.to(device).long()
        feats = self.backbone(images, valid_mask(valid_hw, size, size), maps=trunk_maps)
        cache_depth = None
        if self.depth_head is not None:
            cache_depth = self.depth_head(feats.tokens, feats.skip8)
        elif self.config.order_active and self.config.depth_source == "user" and depth is not None:
            cache_depth = user_depth_to_grid(depth.to(device), size)
        return EncoderCache(feats.tokens, valid_hw, feats.skip8, feats.skip4, cache_depth)

    # ------------------------------------------------------------- per click
    def forward_prompt(self, cache: EncoderCache, prompts: PromptBatch, reference: ReferencePrompt | None = None,
                       return_attention: bool = False, add_prior: bool = True):
        """Mask logits for the prompts on encoded frames (never runs the encoder).

        Parameters
        ----------
        cache : EncoderCache
            From :meth:`encode` (batch B).
        prompts : PromptBatch
            Clicks (B, N, 2)/(B, N), previous probability (B, 1, S, S) or None.
        reference : ReferencePrompt, optional
            Reference-frame tokens and mask (ignored when ``use_reference`` is off).
        return_attention : bool
            Also return a dict with the tokens-read-pixels weights of both blocks
            (``object``, ``order``: (B, H, N_tokens, h * w)), ``labels`` (B, N_tokens),
            ``blocked`` and ``order_maps``.
        add_prior : bool
            Models with ``use_prior``: add ``gain * logit(prompts.prior)`` to the
            residual (False returns the residual alone, for adding the prior at full
            frame resolution, see OISSegmenter).

        Returns
        -------
        torch.Tensor
            (B, 1, S, S) mask logits (or ``(logits, info)`` with ``return_attention``).
        """
        cfg = self.config
        size = cfg.image_size
        tokens = cache.tokens
        b, dim, h, w = tokens.shape
        device = tokens.device
        points, labels = prompts.points.to(device).float(), prompts.labels.to(device).long()
        prev_prob = None if prompts.prev_prob is None else prompts.prev_prob.to(device).float()
        prior = None
        if self.prior_fusion is not None:
            # A prior-model without a prior (e.g. a caller that has none) sees "no opinion".
            prior = torch.full((b, 1, size, size), 0.5, device=device) if prompts.prior is None else (
                prompts.prior.to(device).float())

        x = tokens
        if self.dense_encoder is not None:
            box_map = None if prompts.box_map is None else prompts.box_map.to(device).float()
            x = x + self.dense_encoder(points, labels, prev_prob, size, prior, box_map).to(x.dtype)

        token_list = [self.object_token.expand(b, -1, -1).to(x.dtype)]
        pe_list = [torch.zeros_like(token_list[0])]
        label_list = [torch.full((b, 1), OBJECT, dtype=torch.long, device=device)]
        if self.click_encoder is not None and labels.shape[1]:
            click_tokens, click_pe = self.click_encoder(points, labels, size, self.position)
            token_list.append(click_tokens.to(x.dtype))
            pe_list.append(click_pe.to(x.dtype))
            label_list.append(labels)
        if self.reference_encoder is not None and reference is not None:
            dense, ref_tokens, ref_labels = self.reference_encoder(reference, tokens)
            x = x + dense.to(x.dtype)
            token_list.append(ref_tokens.to(x.dtype))
            pe_list.append(torch.zeros_like(ref_tokens, dtype=x.dtype))
            label_list.append(ref_labels)
        prompt_tokens = torch.cat(token_list, dim=1)
        token_pe = torch.cat(pe_list, dim=1)
        token_labels = torch.cat(label_list, dim=1)
        padding = token_labels == PADDING

        blocked = None
        if cfg.use_object and prev_prob is not None:
            has_prev = prompts.has_prev
            has_prev = torch.ones(b, dtype=torch.bool, device=device) if has_prev is None else has_prev.to(device)
            prev_fg = area_resize(prev_prob, (h, w)).flatten(1) > 0.5
            blocked = object_blocked(prev_fg, token_labels, has_prev)

        order = self._order(cache, points, labels, prompts.order_keep, token_labels, (h, w))

        pixels = x.flatten(2).transpose(1, 2)
        pixel_pe = self.position.grid(h, w)[None].to(x.dtype)
        prompt_tokens, pixels, w_object = self.object_block(
            prompt_tokens, token_pe, pixels, pixel_pe, padding, blocked=blocked, return_weights=return_attention)
        prompt_tokens, pixels, w_order = self.order_block(
            prompt_tokens, token_pe, pixels, pixel_pe, padding, order=order, return_weights=return_attention)
        x = pixels.transpose(1, 2).reshape(b, dim, h, w)
        extra4 = None if prior is None else self.prior_fusion(prior, points, labels, size)
        logits = self.decoder(x, cache.skip8, cache.skip4, size, extra4)
        if prior is not None and add_prior:
            logits = self.add_prior(logits, prior)
        if return_attention:
            info = dict(object=w_object, order=w_order, labels=token_labels, blocked=blocked, order_maps=order)
            return logits, info
        return logits

    def add_prior(self, residual: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
        """Mask logits from the network's residual and the classical prior: ``residual + gain * logit(prior)``.

        The one place the two are joined, for training (inside :meth:`forward_prompt`, at
        model resolution) and for inference (the segmenter joins them at full frame
        resolution so the prior keeps its own boundary detail), so what is trained is
        what runs.

        Parameters
        ----------
        residual : torch.Tensor
            (B, 1, Y, X) logits from :meth:`forward_prompt` with ``add_prior=False``.
        prior : torch.Tensor
            (B, 1, Y, X) prior probability at the same resolution.
        """
        return residual + self.prior_fusion.gain.to(residual.dtype) * prior_logit(prior.to(residual.device)).to(residual.dtype)

    def _order(self, cache: EncoderCache, points: torch.Tensor, labels: torch.Tensor,
               order_keep: torch.Tensor | None, token_labels: torch.Tensor,
               token_hw: tuple[int, int]) -> torch.Tensor | None:
        """(B, N_tokens, h * w) order maps aligned with the token list, or None when inactive."""
        cfg = self.config
        if not cfg.order_active or cache.depth is None or self.click_encoder is None or not labels.shape[1]:
            return None
        b = labels.shape[0]
        grid = cache.depth.shape[-1]
        depth_valid = valid_mask(cache.valid_hw, cfg.image_size, grid)
        click_order = order_maps(cache.depth, depth_valid, points, labels, cfg.image_size, token_hw)
        keep = torch.ones(b, dtype=torch.bool, device=labels.device)
        if order_keep is not None:
            keep = keep & order_keep.to(labels.device)
        if self.training and cfg.order_dropout > 0:
            # Train some samples without order maps: the model must also work without depth.
            keep = keep & (torch.rand(b, device=labels.device) >= cfg.order_dropout)
        click_order = click_order * keep[:, None, None].to(click_order.dtype)
        order = click_order.new_zeros(b, token_labels.shape[1], click_order.shape[-1])
        order[:, 1 : 1 + labels.shape[1]] = click_order  # after the object token; reference tokens get 0
        return order

    def forward(self, images: torch.Tensor, prompts: PromptBatch, reference: ReferencePrompt | None = None,
                valid_hw: torch.Tensor | None = None, depth: torch.Tensor | None = None) -> torch.Tensor:
        """Encode + one prompt pass: (B, 3, S, S) images -> (B, 1, S, S) logits."""
        return self.forward_prompt(self.encode(images, valid_hw, depth), prompts, reference)


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def with_box_prompt(model: OISModel) -> OISModel:
    """A copy of ``model`` that also takes box prompts (``config.box_prompt``).

    Every weight is copied; the dense prompt encoder gains one input channel whose
    weights start at zero, so the new model answers clicks exactly as ``model`` does
    until box training moves them. A model that already has it is returned as is.

    Raises
    ------
    ValueError
        The model has no dense prompt encoder to carry the box.
    """
    if model.config.box_prompt:
        return model
    if model.dense_encoder is None:
        raise ValueError("box prompts need the dense prompt encoder (use_dense)")
    boxed = OISModel(replace(model.config, box_prompt=True))
    state = model.state_dict()
    old = state["dense_encoder.embed.weight"]
    state["dense_encoder.embed.weight"] = torch.cat([old, old.new_zeros(old.shape[0], 1, *old.shape[2:])], dim=1)
    boxed.load_state_dict(state, strict=True)
    boxed.metadata = dict(getattr(model, "metadata", {}) or {})
    return boxed
