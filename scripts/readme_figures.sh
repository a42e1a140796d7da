#!/usr/bin/env bash
# Re-measure the figures of README's *Measured results* (run on an otherwise idle machine;
# each stage records the load it saw). Stages (default: all, in this order):
#   dev        dev evaluations: bash scripts/run_dev_eval.sh ois classical
#   bench      napari-ois bench, 1 thread, 3 repeats, a 1,000-frame memory run (ois, classical)
#   demo       the headless demo on each sample (printed output -> results/demo_<sample>.txt)
#   load       demo CPU seconds idle and beside 2 busy processes, before (BEFORE_SRC) and after
#   quality    the quality score's rank correlation on dev DAVIS and CTC
#   screenshot docs/screenshot.png under Xvfb
# Usage: bash scripts/readme_figures.sh [STAGE ...]; BEFORE_SRC=/path/to/old/src for the load stage.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OIS=${OIS:-.venv/bin/napari-ois}
STAGES=("$@")
[ ${#STAGES[@]} -gt 0 ] || STAGES=(dev bench demo load quality screenshot)
load() { cut -d' ' -f1-3 /proc/loadavg; }
for stage in "${STAGES[@]}"; do
  echo "== $stage ($(date -u +%FT%TZ), load $(load))" >&2
  case $stage in
    dev) bash scripts/run_dev_eval.sh ois classical ;;
    bench)
      for backend in ois classical; do
        "$OIS" bench --backend "$backend" --threads 1 --repeats 3 --long-videos 1000 --quiet \
          --json "results/bench_${backend}.json"
      done ;;
    demo)
      for sample in video cells nuclei3d; do
        "$OIS" demo --headless --quiet --sample "$sample" --out "/tmp/napari_ois_demo_${sample}.tif" \
          | tee "results/demo_${sample}.txt"
      done ;;
    load)
      rm -f results/demo_load.json
      if [ -n "${BEFORE_SRC:-}" ]; then
        "$PY" scripts/measure_demo_load.py --src "$BEFORE_SRC" --label before --busy 0 --busy 2 --json results/demo_load.json
      fi
      "$PY" scripts/measure_demo_load.py --label after --busy 0 --busy 2 --json results/demo_load.json
      "$PY" scripts/measure_demo_load.py --label "after, --threads 1" --threads 1 --busy 2 \
        --json results/demo_load.json ;;
    quality) OMP_NUM_THREADS=1 "$PY" scripts/quality_score_check.py ;;  # accuracy only: any load
    screenshot) xvfb-run -a -s "-screen 0 1600x1000x24" "$PY" scripts/make_screenshot.py ;;
    *) echo "unknown stage $stage" >&2; exit 2 ;;
  esac
done
