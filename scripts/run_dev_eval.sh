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
THREADS=${THREADS:-1}  # model threads per command (1: what the README's timings use)
mkdir -p results
LOADLOG=results/dev_eval_load.txt
echo "# $(date -u +%FT%TZ) $(nproc) cores; 1-min load average before each evaluation (THREADS=$THREADS)" > "$LOADLOG"
load() { echo "$1 $(cut -d' ' -f1 /proc/loadavg)" >> "$LOADLOG"; }
for backend in "${BACKENDS[@]}"; do
  load "coco_mval $backend"
  "$OIS" eval clicks "$DATA/coco_mval" --format coco_mval --backend "$backend" --quiet --threads "$THREADS" \
    --json "results/coco_mval_${backend}.json"
  load "nuclei $backend"
  "$OIS" eval clicks "$DATA/stardist_nuclei" --format folder --backend "$backend" --quiet --threads "$THREADS" \
    --json "results/nuclei_${backend}.json"
  load "davis2016 $backend"
  "$OIS" eval propagation "$DATA/davis2016" --format davis --backend "$backend" --quiet --threads "$THREADS" \
    --json "results/davis2016_${backend}.json"
  load "ctc_psc $backend"
  "$OIS" eval propagation "$DATA/ctc_psc" --format ctc --backend "$backend" --quiet --threads "$THREADS" \
    --json "results/ctc_psc_${backend}.json"
done
backends_csv=$(IFS=,; echo "${BACKENDS[*]}")
"${PYTHON:-.venv/bin/python}" scripts/results_table.py results "$backends_csv" > results/dev_results.md
cat results/dev_results.md
