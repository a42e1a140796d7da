"""The ``eval clicks`` and ``eval propagation`` runs behind the CLI: load, evaluate, write JSON + plot."""

from __future__ import annotations

import json
from pathlib import Path

from ..core.backends import DEFAULT_BACKEND, get_segmenter
from ..progress_bar import ProgressBar
from .click_eval import evaluate_clicks, item_nocs, summarize
from ..datasets.loaders import load_click_items, load_sequences
from .plots import plot_frame_j, plot_miou_curves
from .propagation_eval import evaluate_sequence, summarize_sequences


def _write_json(payload: dict, path: str | Path | None) -> None:
    text = json.dumps(payload, indent=2)
    if path is None:
        print(text)
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text + "\n")
    tmp.replace(path)  # a half-written JSON would mislead whoever reads it


def _default_plot(json_path: str | Path | None, suffix: str) -> Path | None:
    return Path(json_path).with_suffix(suffix) if json_path else None


def _bar(total: int, desc: str, unit: str, verbose: bool) -> ProgressBar:
    """A progress bar on stderr, silent when ``verbose`` is off (or ``--quiet`` was given)."""
    return ProgressBar(total, desc, unit=unit, quiet=not verbose)


def run_eval_clicks(
    root: str,
    fmt: str,
    backend: str = DEFAULT_BACKEND,
    checkpoint: str | None = None,
    device: str = "auto",
    max_clicks: int = 20,
    limit: int | None = None,
    json_path: str | None = None,
    plot_path: str | None = None,
    verbose: bool = True,
    init: str = "click",
) -> dict:
    """Evaluate the click protocol on a dataset and write the contract's JSON (+ a plot).

    ``init``: the first interaction, ``click`` (the protocol's) or ``box`` (the true box).
    """
    items = load_click_items(root, fmt, limit)
    segmenter = get_segmenter(backend, device, checkpoint)

    bar = _bar(len(items), "eval clicks", "object", verbose)

    def progress(i: int, result) -> None:
        bar.write(f"  [{i + 1}/{len(items)}] {result.name}: IoU@1 {result.ious[0]:.3f} "
                  f"@5 {result.ious[min(4, max_clicks - 1)]:.3f} ({result.seconds:.1f} s)")
        bar.update()

    with bar:
        results = evaluate_clicks(segmenter, items, max_clicks, on_item=progress, init=init)
    payload = {"backend": backend, "checkpoint": checkpoint, "dataset": str(root), "format": fmt,
               "max_clicks": max_clicks, "init": init, **summarize(results, max_clicks),
               "per_item": {r.name: [round(v, 4) for v in r.ious] for r in results},
               # From the exact IoUs: the rounded ones above can put an object a click early or
               # late, and paired comparisons of two backends need each object's own count.
               "per_item_noc": {r.name: item_nocs(r, max_clicks) for r in results}}
    _write_json(payload, json_path)
    plot = plot_path or _default_plot(json_path, ".png")
    if plot:
        label = backend if init == "click" else f"{backend} from a {init}"
        plot_miou_curves({label: payload["miou_at"]}, plot, f"{Path(root).name} ({payload['n']} objects)")
    return payload


def run_eval_propagation(
    root: str,
    fmt: str,
    sequences: list[str] | None = None,
    init: str = "mask",
    backend: str = DEFAULT_BACKEND,
    checkpoint: str | None = None,
    device: str = "auto",
    json_path: str | None = None,
    plot_path: str | None = None,
    verbose: bool = True,
    one_pass: bool = True,
) -> dict:
    """Propagate every sequence from its first frame and write the contract's JSON (+ a J plot).

    ``one_pass=False`` propagates one object after another (the earlier walk, for comparisons).
    """
    seqs = load_sequences(root, fmt, sequences)
    segmenter = get_segmenter(backend, device, checkpoint)
    results = []
    with _bar(sum(len(seq.frames) for seq in seqs), "eval propagation", "frame", verbose) as bar:
        for seq in seqs:
            result = evaluate_sequence(segmenter, seq, init, one_pass=one_pass)
            results.append(result)
            bar.update(len(seq.frames))
            m = result.metrics()
            bar.write(f"  {seq.name}: J {m['J_mean']:.3f} recall {m['J_recall']:.3f} "
                      f"decay {m['J_decay']:.3f} ({m['fps']:.2f} frames/s)")
    payload = {"backend": backend, "checkpoint": checkpoint, "dataset": str(root), "format": fmt,
               "init": init, "walk": "one-pass" if one_pass else "per-object", **summarize_sequences(results)}
    _write_json(payload, json_path)
    plot = plot_path or _default_plot(json_path, ".png")
    if plot:
        curves = {}
        for r in results:
            per_object = [v for v in r.j.values() if v]
            length = min((len(v) for v in per_object), default=0)
            if length:
                curves[r.name] = [sum(v[i] for v in per_object) / len(per_object) for i in range(length)]
        if curves:
            plot_frame_j(curves, plot, f"{Path(root).name}: J per frame ({backend})")
    return payload
