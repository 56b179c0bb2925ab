#!/usr/bin/env bash
# The product path on one GPU (lab/bench/space_path.py), within 9 minutes, JSON and logs under $OUT.
# Carry .whl: fla (flash-linear-attention + fla-core 0.6.0) and the pure-Python needs of `lina` the
# device image lacks (num2words + docopt, soundfile + cffi + pycparser, soxr); see README "Speed".
#
#   bash lab/scripts/gpu_space_path.sh          # GPU back-end tests (<= TEST_SECONDS), then the benchmark
#   TESTS=0 QUICK=1 bash lab/scripts/gpu_space_path.sh   # a smoke run: tiny-random model, no harness
#   TESTS=0 SINGLE=1 TOTAL_SECONDS=200 bash lab/scripts/gpu_space_path.sh --batches 1 8   # one process only
#
# Budget (H200): tests ~2 min, cold warm-up (empty kernel cache: compiles, fla autotuning) <= COLD_SECONDS,
# then a fresh process with that cache: warm-up, every endpoint first + steady, harness <= MEASURE_SECONDS.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-out}; mkdir -p "$OUT"
export OUT
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
  || exit 1
export PYTHONPATH=/tmp/site:$PWD GRADIO_ANALYTICS_ENABLED=False HF_HUB_OFFLINE=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
python3 -c "import torch, triton, fla; print('torch', torch.__version__, 'triton', triton.__version__, 'fla', fla.__version__)" \
  2>&1 | tee -a "$OUT/gpu.txt"
start=$SECONDS
if [[ "${TESTS:-1}" == 1 ]]; then
  timeout "${TEST_SECONDS:-150}" python3 -m pytest -q -p no:cacheprovider -m gpu tests/test_gpu.py -s \
    -k "${TEST_FILTER:-backend or bf16 or tts_on_cuda}" 2>&1 | tee "$OUT/gpu_tests_backends.txt" | tail -n 25
fi
left=$(( ${TOTAL_SECONDS:-530} - (SECONDS - start) ))
if [[ "${SINGLE:-0}" == 1 ]]; then   # one process (no fresh-process emulation): a short device budget
  timeout "$left" python3 -m lab.bench.space_path --phase measure "$@" 2>&1 | tee "$OUT/space_path.log" | tail -n 40
  rm -rf "$OUT/kernel-cache"; exit 0
elif [[ "${QUICK:-0}" == 1 ]]; then
  args=(--model tiny-random --quick --tune-steps 5 --repeats 1 --cold-seconds 120 --measure-seconds 120)
else
  cold=$(( left * 45 / 100 )); measure=$(( left - cold - 10 ))
  args=(--cold-seconds "$cold" --measure-seconds "$measure")
fi
python3 -m lab.bench.space_path "${args[@]}" "$@" 2>&1 | tee "$OUT/space_path.log" | tail -n 40
du -sh "$OUT/kernel-cache"/* 2>/dev/null | tee -a "$OUT/gpu.txt"
rm -rf "$OUT/kernel-cache"   # large; rebuilt by the next run (the Space keeps its own)
