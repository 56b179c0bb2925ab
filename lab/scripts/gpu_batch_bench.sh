#!/usr/bin/env bash
# Bulk synthesis on one GPU (lab/bench/batch_speed.py): 1,000 jobs of one or two sentences through lina.batch
# with 8 voices mixed in every batch, the same with one voice, and a plain loop of LinaTTS.synthesize calls
# (the first LOOP_JOBS jobs), random weights of the released size, in one process; JSON + log under $OUT.
# Carry .whl as for lab/scripts/gpu_space_path.sh (fla + the pure-Python needs of `lina` the device image lacks),
# with tqdm's wheel added where the image lacks it:
#   python3 -m pip download -q --no-deps --only-binary=:all: tqdm==4.67.1 -d .whl
#
#   bash lab/scripts/gpu_batch_bench.sh                       # the measurement (~5 min on an H200)
#   SMOKE=1 bash lab/scripts/gpu_batch_bench.sh               # a smoke run: tiny-random, a few jobs
#   TESTS=0 bash lab/scripts/gpu_batch_bench.sh               # without the GPU test first (~1 min)
#   bash lab/scripts/gpu_batch_bench.sh --batch-size 128      # any lab.bench.batch_speed option is passed on
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-out}; mkdir -p "$OUT"
export OUT
if compgen -G ".whl/*.whl" > /dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    || exit 1
fi
export PYTHONPATH=/tmp/site:$PWD GRADIO_ANALYTICS_ENABLED=False HF_HUB_OFFLINE=1
python3 -c "import tqdm" 2>/dev/null || { echo "tqdm is missing: add its wheel to .whl (see the top of this script)"; exit 1; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
start=$SECONDS
if [[ "${TESTS:-1}" == 1 ]]; then   # lina.batch on CUDA with the back end the app uses (tests/test_batch.py)
  timeout 150 python3 -m pytest -q -p no:cacheprovider -m gpu tests/test_batch.py 2>&1 | tee "$OUT/gpu_tests_batch.txt" | tail -n 5
fi
args=(--jobs "${JOBS:-1000}" --voices 8 --loop-jobs "${LOOP_JOBS:-100}")
if [[ "${SMOKE:-0}" == 1 ]]; then
  args=(--model tiny-random --jobs 20 --voices 4 --loop-jobs 4 --row-seconds 2)
fi
left=$(( ${TOTAL_SECONDS:-560} - (SECONDS - start) ))
timeout "$left" python3 -m lab.bench.batch_speed "${args[@]}" "$@" 2>&1 \
  | tr '\r' '\n' | grep -v 'job/s\]$' | tee "$OUT/batch_speed.log" | tail -n 45
rm -rf "$OUT/batch_speed_files"   # the WAVs (about 2 h of audio): too large to bring back
