"""Turn results/*.json (from `napari-ois eval`) into the README's Markdown tables and
side-by-side plots (one mIoU-vs-clicks plot per click dataset, all backends together).

Usage: python scripts/results_table.py [RESULTS_DIR [BACKEND,BACKEND...]]  > results/dev_results.md
(only the named backends, e.g. the ones re-measured in this session; default: every JSON found)
"""

from __future__ import annotations

import json
import platform
import sys
from collections import defaultdict
from pathlib import Path

from napari_ois.evaluate.plots import plot_miou_curves


def load(results_dir: Path) -> tuple[dict, dict]:
    clicks, propagation = defaultdict(dict), defaultdict(dict)
    for path in sorted(results_dir.glob("*.json")):
        if path.name.startswith("bench"):
            continue
        data = json.loads(path.read_text())
        if not isinstance(data, dict) or "backend" not in data or "per_item" not in data and "sequences" not in data:
            continue  # other benchmarks' JSON (soak, autosave, ablation, multi-object timings)
        dataset = path.stem.rsplit("_" + data["backend"], 1)[0]
        (clicks if "miou_at" in data else propagation)[dataset][data["backend"]] = data
    return clicks, propagation


def click_table(clicks: dict) -> list[str]:
    lines = [
        "| dataset | backend | objects | NoC@85 | NoC@90 | NoC@95 | NoF@90 | mIoU@1 | mIoU@5 | mIoU@10 | s/click |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for dataset, runs in clicks.items():
        for backend, r in sorted(runs.items()):
            m = r["miou_at"]
            lines.append(
                f"| {dataset} | {backend} | {r['n']} | {r['noc']['85']:.2f} | {r['noc']['90']:.2f} | "
                f"{r['noc']['95']:.2f} | {r['nof']['90']} | {m[0]:.3f} | {m[4]:.3f} | {m[9]:.3f} | {r['spc_s']:.3f} |"
            )
    return lines


def propagation_table(propagation: dict) -> list[str]:
    lines = [
        "| dataset | sequence | backend | J mean | J recall | J decay | frames | frames/s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for dataset, runs in propagation.items():
        for backend, r in sorted(runs.items()):
            for name, s in r["sequences"].items():
                lines.append(
                    f"| {dataset} | {name} | {backend} | {s['J_mean']:.3f} | {s['J_recall']:.3f} | "
                    f"{s['J_decay']:.3f} | {s['frames']} | {s['fps']:.2f} |"
                )
            lines.append(f"| {dataset} | **mean** | {backend} | **{r['J_mean']:.3f}** | | | | |")
    return lines


def main() -> None:
    results_dir = Path(sys.argv[1] if len(sys.argv) > 1 else "results")
    clicks, propagation = load(results_dir)
    if len(sys.argv) > 2:
        keep = set(sys.argv[2].split(","))
        for table in (clicks, propagation):
            for dataset in list(table):
                table[dataset] = {b: r for b, r in table[dataset].items() if b in keep}
    for dataset, runs in clicks.items():
        curves = {backend: r["miou_at"] for backend, r in sorted(runs.items())}
        plot_miou_curves(curves, results_dir / f"{dataset}_miou_vs_clicks.png", f"{dataset}: mIoU vs clicks")
    print(f"Machine: {platform.machine()}, 2 CPU cores (no GPU), Python {platform.python_version()}.\n")
    print("Click protocol (20 clicks, threshold 0.49, first click at the farthest interior pixel):\n")
    print("\n".join(click_table(clicks)))
    print("\nPropagation from the first frame's ground-truth mask, no further input:\n")
    print("\n".join(propagation_table(propagation)))


if __name__ == "__main__":
    main()
