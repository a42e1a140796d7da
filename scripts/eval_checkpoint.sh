#!/usr/bin/env bash
# The dev evaluations of run_dev_eval.sh for one candidate checkpoint of the ois backend.
# Usage: bash scripts/eval_checkpoint.sh CHECKPOINT OUTDIR [DATASET ...]
#   DATASET: coco_mval nuclei davis2016 ctc_psc (default: all four)
# Writes OUTDIR/<dataset>_ois.json (the same contract as results/<dataset>_ois.json) and the
# load average before each run to OUTDIR/load.txt. THREADS (default 1) model threads per command.
set -euo pipefail
cd "$(dirname "$0")/.."
CKPT=$1; OUT=$2; shift 2
DATA=${DATA:-../shared/data/dev}
OIS=${OIS:-.venv/bin/napari-ois}
THREADS=${THREADS:-1}
SETS=("$@")
[ ${#SETS[@]} -gt 0 ] || SETS=(coco_mval nuclei davis2016 ctc_psc)
mkdir -p "$OUT"
common=(--backend ois --checkpoint "$CKPT" --quiet --threads "$THREADS")
for set in "${SETS[@]}"; do
  echo "$set $(cut -d' ' -f1 /proc/loadavg)" >> "$OUT/load.txt"
  case $set in
    coco_mval) "$OIS" eval clicks "$DATA/coco_mval" --format coco_mval "${common[@]}" --json "$OUT/coco_mval_ois.json" ;;
    nuclei) "$OIS" eval clicks "$DATA/stardist_nuclei" --format folder "${common[@]}" --json "$OUT/nuclei_ois.json" ;;
    davis2016) "$OIS" eval propagation "$DATA/davis2016" --format davis "${common[@]}" --json "$OUT/davis2016_ois.json" ;;
    ctc_psc) "$OIS" eval propagation "$DATA/ctc_psc" --format ctc "${common[@]}" --json "$OUT/ctc_psc_ois.json" ;;
    *) echo "unknown dataset $set" >&2; exit 2 ;;
  esac
done
