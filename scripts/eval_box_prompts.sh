#!/usr/bin/env bash
# The box-start click protocol (issue #21) on the dev click sets, per backend.
# Usage: bash scripts/eval_box_prompts.sh [BACKEND ...]   (default: ois grabcut-cv)
# Writes results/box/<dataset>_<backend>_box.json (+ .png): the object's true box first,
# then the protocol's corrective clicks (20 interactions in all). CHECKPOINT, if set, is
# given to the ois backend. The 1-min load average before each run goes to results/box/load.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/data/dev}
OIS=${OIS:-.venv/bin/napari-ois}
THREADS=${THREADS:-1}
BACKENDS=("$@")
[ ${#BACKENDS[@]} -gt 0 ] || BACKENDS=(ois grabcut-cv)
OUT=results/box
mkdir -p "$OUT"
for backend in "${BACKENDS[@]}"; do
  extra=()
  if [ "$backend" = ois ] && [ -n "${CHECKPOINT:-}" ]; then extra=(--checkpoint "$CHECKPOINT"); fi
  for set in coco_mval nuclei; do
    echo "$(date -u +%FT%TZ) $set $backend load $(cut -d' ' -f1 /proc/loadavg)" >> "$OUT/load.txt"
    case $set in
      coco_mval) root="$DATA/coco_mval"; fmt=coco_mval ;;
      nuclei) root="$DATA/stardist_nuclei"; fmt=folder ;;
    esac
    "$OIS" eval clicks "$root" --format "$fmt" --init box --backend "$backend" "${extra[@]}" --quiet \
      --threads "$THREADS" --json "$OUT/${set}_${backend}_box.json"
  done
done
