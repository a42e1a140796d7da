"""Box start vs click start on the dev click sets: a Markdown table and one plot per set.

Reads ``results/box/<set>_<backend>_box.json`` (scripts/eval_box_prompts.sh) and the click
start of the same backend, ``results/<set>_<backend>.json`` (scripts/run_dev_eval.sh);
prints the table and writes ``results/box/<set>_box_vs_click.png``.

Usage: python scripts/box_prompt_table.py [--backends ois grabcut-cv classical litemedsam]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from napari_ois.evaluate.plots import plot_miou_curves

RESULTS = Path(__file__).resolve().parents[1] / "results"
SETS = {"coco_mval": "COCO-MVal dev", "nuclei": "nuclei (2-D)"}


def _load(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="+", default=["ois", "grabcut-cv", "classical", "litemedsam"])
    args = parser.parse_args()
    print("| dev set | backend | first prompt | mIoU@1 | mIoU@5 | NoC@85 | NoC@90 | NoF@90 | s/interaction |")
    print("|---|---|---|---|---|---|---|---|---|")
    for key, title in SETS.items():
        curves = {}
        for backend in args.backends:
            for start, path in (("box", RESULTS / "box" / f"{key}_{backend}_box.json"),
                                ("click", RESULTS / f"{key}_{backend}.json")):
                run = _load(path)
                if run is None:
                    continue
                m = run["miou_at"]
                print(f"| {title} | {backend} | {start} | {m[0]:.3f} | {m[4]:.3f} | {run['noc']['85']:.2f} | "
                      f"{run['noc']['90']:.2f} | {run['nof']['90']} | {run['spc_s']:.3f} |")
                curves[f"{backend}, {start} first"] = m
        plot_miou_curves(curves, RESULTS / "box" / f"{key}_box_vs_click.png",
                         f"{title}: box first vs click first (then corrective clicks)")


if __name__ == "__main__":
    main()
