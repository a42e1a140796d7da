#!/usr/bin/env bash
# Re-run every evaluation behind the README's results tables on ../shared/data/dev.
# Usage: bash scripts/run_dev_eval.sh [BACKEND ...]   (default: classical grabcut-cv)
# Writes results/<dataset>_<backend>.json and .png, then the Markdown table
# results/dev_results.md (scripts/results_table.py).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/data/dev}
OIS=${OIS:-.venv/bin/napari-ois}
BACKENDS=("$@")
[ ${#BACKENDS[@]} -gt 0 ] || BACKENDS=(classical grabcut-cv)
mkdir -p results
for backend in "${BACKENDS[@]}"; do
  "$OIS" eval clicks "$DATA/coco_mval" --format coco_mval --backend "$backend" --quiet \
    --json "results/coco_mval_${backend}.json"
  "$OIS" eval clicks "$DATA/stardist_nuclei" --format folder --backend "$backend" --quiet \
    --json "results/nuclei_${backend}.json"
  "$OIS" eval propagation "$DATA/davis2016" --format davis --backend "$backend" --quiet \
    --json "results/davis2016_${backend}.json"
  "$OIS" eval propagation "$DATA/ctc_psc" --format ctc --backend "$backend" --quiet \
    --json "results/ctc_psc_${backend}.json"
done
"${PYTHON:-.venv/bin/python}" scripts/results_table.py results > results/dev_results.md
cat results/dev_results.md
