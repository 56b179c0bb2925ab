#!/usr/bin/env bash
# Tuning time per preset voice on one GPU: random weights of the released size, the shipped presets'
# clips (voices/presets.json), 100 steps each, whole clips (the app's GPU settings). JSON + log under $OUT.
# Carry .whl as for lab/scripts/gpu_space_path.sh (fla, and the pure-Python needs of `lina` the image lacks).
#
#   bash lab/scripts/gpu_preset_tuning.sh            # 6 presets (the first includes fla's kernel autotuning)
#   LIMIT=12 bash lab/scripts/gpu_preset_tuning.sh
#   MODEL=tiny-random LIMIT=1 STEPS=2 OUT=/tmp/x bash lab/scripts/gpu_preset_tuning.sh   # a smoke run on a CPU
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-out}; mkdir -p "$OUT"
if compgen -G ".whl/*.whl" > /dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    || exit 1
fi
export PYTHONPATH=/tmp/site:$PWD GRADIO_ANALYTICS_ENABLED=False HF_HUB_OFFLINE=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
timeout "${SECONDS_LIMIT:-540}" python3 lab/scripts/tune_presets.py --model "${MODEL:-random-released}" --steps "${STEPS:-100}" \
  --limit "${LIMIT:-6}" --out "$OUT/states" --no-manifest --force --report "$OUT/preset_tuning_h200.json" "$@" \
  2>&1 | tee "$OUT/preset_tuning.log" | tail -n 20
rm -rf "$OUT/states"   # random-weight states: only the times matter
