#!/usr/bin/env bash
# The GPU-marked tests on the device machine (pyproject's `gpu` marker): fla kernels against the PyTorch GLA,
# the fast and in-place steps on CUDA. Carry .whl_lm (fla and its pure-Python needs) and .whl_test (pytest,
# pluggy, iniconfig, packaging: `pip download --no-deps -d .whl_test pytest pluggy iniconfig packaging`).
# fla autotunes its kernels on first use: give the call 400 s or more. Writes $OUT/gpu_tests.txt.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-out}; mkdir -p "$OUT"
[[ -d /tmp/site ]] || python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site \
  .whl_lm/*.whl .whl_test/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD GRADIO_ANALYTICS_ENABLED=False HF_HUB_OFFLINE=1
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
python3 -m pytest -q -p no:cacheprovider -m gpu tests/test_gpu.py "$@" 2>&1 | tee "$OUT/gpu_tests.txt" | tail -n 30
exit "${PIPESTATUS[0]}"
