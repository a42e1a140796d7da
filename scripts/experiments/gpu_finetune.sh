#!/usr/bin/env bash
# Data-parallel fine-tune of the shipped model on a lent GPU machine (issue #5, session 8).
#
# The machine has no registry access and its own python3 (torch, scikit-image, pillow);
# what it lacks travels with the working tree: the training data (copied from
# ../shared/data/train into the git-ignored .devdata/train) and this project's timm
# wheel (.whl/, so the backbone's parameter names match the checkpoint's).
#
# Each worker process builds its own batches on one CPU core (the classical prior and
# the click simulation are CPU work) and runs the network on the shared GPU; a
# one-step smoke run first checks the CUDA path and falls back to CPU workers if it fails.
#
# Env: RESULTS (default $OUT on the device machine, else runs/gpu): the smoke log and the
#      run folder RESULTS/run (log.jsonl, last.pt, state.pt, step_*.pt), written there
#      directly so that a run stopped at the call's time limit still brings them back;
#      MINUTES (training time, default 7); DEVICE=cpu to train on CPU workers only.
# Session 8's run of this script: MODEL_CARD.md and results/training/README.md.
set -uo pipefail
RESULTS=${RESULTS:-${OUT:-runs/gpu}}
RUN=$RESULTS/run
MINUTES=${MINUTES:-7}
DATA=${DATA:-.devdata/train}
mkdir -p "$RESULTS"

if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:src
else
  export PYTHONPATH=src
fi
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1
python3 -c "import torch, timm, numpy, skimage; print('torch', torch.__version__, 'timm', timm.__version__, 'numpy', numpy.__version__, 'skimage', skimage.__version__, 'cuda', torch.cuda.is_available() and torch.cuda.get_device_name())"

# `nproc --all`: plain nproc obeys OMP_NUM_THREADS=1 and would say 1.
CORES=$(nproc --all)
echo "cores: $CORES"
DEVICE=${DEVICE:-cuda}
WORKERS=$(( CORES - 1 ))
COMMON=(--preset tiny-prior --image-size 256 --batch-size 8 --threads 1 --validate-every 0
        --data-root "$DATA" --init-checkpoint src/napari_ois/checkpoints/default.pt
        --zero-click-prob 0.5 --exact-propagation-steps --rollout-reference-prob 0.5 --bleed-reference-prob 0.3
        --weights coco=0.5,synthetic=0.25,microscopy=0.1,ctc=0.15)
rm -rf /tmp/smoke
if [ "$DEVICE" = cuda ] && ! python3 -m napari_ois.cli train --out /tmp/smoke "${COMMON[@]}" --steps 2 --device cuda \
     --workers 2 > "$RESULTS/smoke.log" 2>&1; then
  tail -20 "$RESULTS/smoke.log"
  echo "CUDA smoke run failed: training on CPU workers instead"
  DEVICE=cpu
fi
[ "$DEVICE" = cpu ] && WORKERS=$CORES
echo "training: $WORKERS workers on $DEVICE for $MINUTES min"

if command -v nvidia-smi >/dev/null; then  # GPU load every 30 s: is the run CPU- or GPU-bound?
  nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader -l 30 &
  SMI=$!
fi
python3 -m napari_ois.cli train --out "$RUN" "${COMMON[@]}" --device "$DEVICE" --workers "$WORKERS" \
  --steps 320 --warmup-steps 30 --lr 6e-4 --seed 11 --keep-every 80 --max-minutes "$MINUTES"
STATUS=$?
[ -n "${SMI:-}" ] && kill "$SMI" 2>/dev/null
ls -la "$RESULTS" "$RUN"
exit $STATUS
