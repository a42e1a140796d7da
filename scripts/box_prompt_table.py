"""Box start vs click start on the dev click sets: a Markdown table and one plot per set.

Reads ``results/box/<set>_<backend>_box.json`` (scripts/eval_box_prompts.sh) and the click
start of the same backend, ``results/<set>_<backend>.json`` (scripts/run_dev_eval.sh);
prints the table and writes ``results/box/<set>_box_vs_click.png``. Below the table, for each set
whose ``ois`` and ``grabcut-cv`` box runs both carry per-object click counts, a paired comparison:
the mean difference of NoC@85/90 object by object and its standard error.

Usage: python scripts/box_prompt_table.py [--backends ois grabcut-cv classical litemedsam]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from napari_ois.evaluate.click_eval import paired_noc
from napari_ois.evaluate.plots import plot_miou_curves

RESULTS = Path(__file__).resolve().parents[1] / "results"
SETS = {"coco_mval": "COCO-MVal dev", "nuclei": "nuclei (2-D)"}


def _load(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="+", default=["ois", "grabcut-cv", "classical", "litemedsam"])
    args = parser.parse_args()
    comparisons = []
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
        ois, grabcut = (_load(RESULTS / "box" / f"{key}_{b}_box.json") for b in ("ois", "grabcut-cv"))
        for threshold in ("85", "90"):
            paired = paired_noc(ois, grabcut, threshold) if ois and grabcut else None
            if paired is not None:
                mean, se, fewer, more, same = paired
                comparisons.append(f"- {title}, box first, `ois` - `grabcut-cv` object by object: NoC@{threshold} "
                                   f"{mean:+.2f} (standard error {se:.2f}); `ois` took fewer clicks on {fewer} "
                                   f"objects, more on {more}, as many on {same}.")
        plot_miou_curves(curves, RESULTS / "box" / f"{key}_box_vs_click.png",
                         f"{title}: box first vs click first (then corrective clicks)")
    if comparisons:
        print()
        print("\n".join(comparisons))


if __name__ == "__main__":
    main()
