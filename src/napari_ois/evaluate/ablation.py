"""Test-time ablation of a trained OIS model: switch one component off, measure again.

Each variant is the *same* trained network with one component removed at inference
(no retraining, which two CPU cores cannot afford per switch): order maps, the
object-aware mask, click tokens, the dense prompt, the reference prompt, the
classical prior, the zoom-in around the object or its crop prior; ``prior only`` zeroes
the residual head, leaving the classical prior the network refines. It measures how much the trained model leans on each component,
not what a model trained without it would reach; the report says so.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path

import torch

from ..core.errors import InputError
from ..model.checkpoint import load_model
from ..model.network import OISModel
from ..model.segmenter import OISSegmenter
from ..model.zoom import zoom_from_metadata
from .click_eval import evaluate_clicks, summarize
from ..datasets.loaders import load_click_items, load_sequences
from .propagation_eval import evaluate_sequence, summarize_sequences

# variant -> (config switches turned off, modules removed)
VARIANTS: dict[str, tuple[dict, tuple[str, ...]]] = {
    "full": ({}, ()),
    "no order": ({"use_order": False}, ()),
    "no object": ({"use_object": False}, ()),
    "no sparse": ({"use_sparse": False}, ("click_encoder",)),
    "no dense": ({"use_dense": False}, ("dense_encoder",)),
    "no reference": ({"use_reference": False}, ("reference_encoder",)),
    "no prior": ({"use_prior": False}, ("prior_fusion",)),
    "no zoom": ({}, ()),  # inference settings, not network parts: see ablated_segmenter
    "no crop prior": ({}, ()),
    "prior only": ({}, ()),  # the residual head zeroed: what the network adds to its prior
}
# Zoom-in settings changed by the inference-only variants.
ZOOM_VARIANTS = {"no zoom": {"enabled": False}, "no crop prior": {"crop_prior": False}}


def ablated(model: OISModel, variant: str) -> OISModel:
    """A copy of ``model`` with the component of ``variant`` removed (weights shared otherwise).

    Raises
    ------
    InputError
        Unknown variant.
    """
    if variant not in VARIANTS:
        raise InputError(f"unknown ablation {variant!r}; choose from {', '.join(VARIANTS)}")
    switches, modules = VARIANTS[variant]
    out = copy.deepcopy(model)
    # The forward pass reads these switches from the config and checks the modules below.
    out.config = dataclasses.replace(model.config, **switches)
    for name in modules:
        setattr(out, name, None)
    if variant == "prior only":
        # The residual head starts at zero (model/prior.py): zeroed again, the model
        # returns its (learnt-gain) classical prior, zoom-in and crop prior included.
        head = out.decoder.head[-1]
        with torch.no_grad():
            head.weight.zero_()
            if head.bias is not None:
                head.bias.zero_()
    return out.eval()


def ablated_segmenter(model: OISModel, variant: str) -> OISSegmenter:
    """The backend for ``variant``: the ablated network with the checkpoint's zoom settings, changed
    for ``no zoom`` and ``no crop prior``."""
    zoom = None
    if variant in ZOOM_VARIANTS:
        zoom = dataclasses.replace(zoom_from_metadata(getattr(model, "metadata", {}) or {}), **ZOOM_VARIANTS[variant])
    return OISSegmenter(ablated(model, variant), "cpu", zoom)


def run_ablation(checkpoint: str | None, click_root: str, click_format: str, limit: int | None, clicks: int,
                 propagation_root: str | None = None, propagation_format: str = "davis",
                 sequences: list[str] | None = None, variants: list[str] | None = None,
                 json_path: str | None = None, log=print) -> dict:
    """Measure every variant: click metrics on ``click_root`` (+ J on ``propagation_root``).

    Returns
    -------
    dict
        ``{"checkpoint", "click_data", "objects", "clicks", "rows": {variant: metrics}}``; metrics hold
        ``miou_at_1``, ``miou_at_5``, ``noc_85``, ``noc_90``, ``spc_s`` and ``J_mean`` when propagating.
    """
    base = load_model(checkpoint, "cpu")
    items = load_click_items(click_root, click_format, limit)
    seqs = load_sequences(propagation_root, propagation_format, sequences) if propagation_root else []
    rows = {}
    for variant in variants or list(VARIANTS):
        segmenter = ablated_segmenter(base, variant)
        summary = summarize(evaluate_clicks(segmenter, items, clicks), clicks)
        row = {"miou_at_1": summary["miou_at"][0], "miou_at_5": summary["miou_at"][min(4, clicks - 1)],
               "noc_85": summary["noc"]["85"], "noc_90": summary["noc"]["90"], "spc_s": summary["spc_s"]}
        if seqs:
            row["J_mean"] = summarize_sequences([evaluate_sequence(segmenter, s, "mask") for s in seqs])["J_mean"]
        rows[variant] = row
        log(f"ablation {variant}: " + ", ".join(f"{k} {v:.3f}" for k, v in row.items()))
    payload = {"checkpoint": checkpoint, "click_data": str(click_root), "objects": len(items), "clicks": clicks,
               "propagation_data": str(propagation_root) if propagation_root else None,
               "sequences": [s.name for s in seqs], "kind": "test-time (same weights, one component removed)",
               "rows": rows}
    if json_path:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(json.dumps(payload, indent=2) + "\n")
    return payload


def markdown_table(payload: dict) -> str:
    """The ablation rows as a Markdown table."""
    has_j = any("J_mean" in r for r in payload["rows"].values())
    head = "| variant | mIoU@1 | mIoU@5 | NoC@85 | NoC@90 |" + (" J mean |" if has_j else "")
    lines = [head, "|---" * (head.count("|") - 1) + "|"]
    for name, r in payload["rows"].items():
        line = f"| {name} | {r['miou_at_1']:.3f} | {r['miou_at_5']:.3f} | {r['noc_85']:.2f} | {r['noc_90']:.2f} |"
        lines.append(line + (f" {r['J_mean']:.3f} |" if has_j else ""))
    return "\n".join(lines)


__all__ = ["VARIANTS", "ablated", "ablated_segmenter", "run_ablation", "markdown_table"]
