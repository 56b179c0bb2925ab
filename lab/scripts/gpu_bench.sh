#!/usr/bin/env bash
# The speed measurements on one GPU (written for an H100), one phase per device call: each phase
# ends well inside a 10-minute call and writes <phase>.log and its JSON under $OUT (<phase>.json;
# check: check_throughput.json + check_latency.json; codec: codec_gpu.json), rewriting the JSON
# after every row (a killed phase keeps its rows; the log shows them as they come, flushed).
# Random weights of the released size (d_model 1024, 6+6 GLA, 4099-way head); see lab/bench/*.py.
#
#   bash lab/scripts/gpu_bench.sh PHASE          (from the repository root; carry .whl_lm for the fla phases)
#
# Phase        what                                                            expected on an H100
# check        tiny model on the GPU: every decoder (graph, compiled, fla step) ~1-2 min
#              latency + throughput code paths (catches breakage cheaply)
# latency      batch 1, bf16 + fp32 x {compile, graph, eager} (bf16+compile    ~4 min (<= 6.5)
#              first), time to first audio, prefill of a 10 s prompt parallel
#              vs token by token, IST 100 steps batch 8 on 10 s clips; no fla
# latency_fla  prefill and IST with fla's chunked kernels (first call timed    3-8 min, unknown:
#              apart: it compiles + autotunes per dtype/shape)                 cut at the limit
# throughput1  bf16 tok/s, 1500 tokens, batches 1 4 16: GLA graph+compiled     ~4 min (<= 6)
#              step (+ fla step variant, + graph+fla uncompiled) vs SA+KV
# throughput2  the same at batches 64 256, then 500/1500/3000 tokens at        ~5 min (<= 7.5)
#              batch 64 (best GLA decoder of the batch-64 row) with peak memory
# codec        codec decode speed, batch 1 and 64, fp32/fp16/bf16 + streaming  ~1 min
#
# Estimates from the known numbers (lab/bench/results/latency_h100.log, throughput_h200.json): fp32 batch 1
# 11.7 ms/token eager, 1.76 graph, 1.16 graph+compile (21 s to compile), bf16 graph 1.96; each compile
# of the step ~20-30 s (one per batch size, dtype and fla choice); H200 bf16 seconds for 1500 tokens:
# GLA graph+fla 2.8/3.2/3.7/6.1/18.5 at batches 1/4/16/64/256, SA 6.5/6.9/7.5/8.1/10.2 (H100: up to
# ~1.4x slower at large batch, less bandwidth). latency: setup ~30 s, 2 compiled rows ~2x45 s (incl.
# the time-to-first-audio decoder), eager rows 2x10 s, prefill ~12 s, IST 20-60 s. throughput1:
# 3 batches x (2 compiles + 3 runs of 2-4 s + SA 7 s) + setup; throughput2: batch 64 ~90 s, batch 256
# ~140 s, lengths 500/3000 ~50 s. Rows that would start after THROUGHPUT_BUDGET (450 s) are skipped
# and recorded as such; every python run is killed at PHASE_SECONDS (540 s).
#
# Order: check, latency, throughput1, throughput2, codec (~20 min of device time), latency_fla if time is
# left. If check records an error for gla_graph_compile_fla (fla's Triton step inside torch.compile and
# the graph capture), run the throughput phases with GLA="gla_graph_compile gla_graph_fla".
#
# Environment: OUT (default ./out), DRY=1 (print each run's plan, measure nothing: any machine),
# PHASE_SECONDS, THROUGHPUT_BUDGET, GLA (GLA decoders of the throughput phases, default
# "gla_graph_compile gla_graph_fla gla_graph_compile_fla"), TOKENS (1500),
# SRC_TGZ (run that `git archive` instead of the working tree, as lab/scripts/gpu_lina_mini.sh does).
# fla (phases check, latency_fla, throughput*) installs once from .whl_lm into /tmp/site:
#   python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl_lm/*.whl
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
OUT=${OUT:-out}; mkdir -p "$OUT"; OUT=$(cd "$OUT" && pwd); export OUT
phase=${1:-help}
LIMIT=${PHASE_SECONDS:-540}
BUDGET=${THROUGHPUT_BUDGET:-450}
GLA=${GLA:-gla_graph_compile gla_graph_fla gla_graph_compile_fla}
TOKENS=${TOKENS:-1500}
export PYTHONUNBUFFERED=1 PYTHONPATH=$ROOT

phases="check latency latency_fla throughput1 throughput2 codec"
if [[ ! " $phases " == *" $phase "* ]]; then
  sed -n '2,/^set -uo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
  echo "phases: $phases"
  [[ $phase == help ]]; exit
fi

if [[ -n "${SRC_TGZ:-}" ]]; then
  rm -rf /tmp/bench_src && mkdir -p /tmp/bench_src && tar -xzf "$SRC_TGZ" -C /tmp/bench_src || exit 1
  cd /tmp/bench_src && export PYTHONPATH=$PWD
fi

with_fla() {
  [[ -n "${DRY:-}" ]] && return 0
  if [[ ! -d /tmp/site/fla ]]; then
    if compgen -G "$ROOT/.whl_lm/*.whl" >/dev/null; then
      python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site \
        "$ROOT"/.whl_lm/*.whl || echo "fla did not install: its rows will be recorded as skipped"
    else
      echo "no .whl_lm here (carry it): fla rows will be recorded as skipped"
    fi
  fi
  export PYTHONPATH=/tmp/site:$PYTHONPATH
}

log=$OUT/$phase.log
bench() {  # bench ARGS...: one python run under the phase's time limit, into the log
  if [[ -n "${DRY:-}" ]]; then  # DRY=1: check the plumbing anywhere (CPU): plans, and the codec's smoke run
    if [[ $1 == -m ]]; then set -- "$@" --dry-run; else set -- "$@" --smoke; fi
  fi
  echo "# $(date -u +%FT%TZ) $phase: python3 $*" | tee -a "$log"
  timeout -k 10 "$LIMIT" python3 "$@" 2>&1 | tee -a "$log"
  local rc=${PIPESTATUS[0]}
  if [[ $rc == 124 || $rc == 137 ]]; then
    echo "# killed at ${LIMIT}s (exit $rc): the JSON holds the rows done" | tee -a "$log"
  else
    echo "# exit $rc, ${SECONDS}s into the phase" | tee -a "$log"
  fi
  return "$rc"
}

{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || echo "no nvidia-smi"
  python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.cuda.is_available())'
} 2>&1 | tee -a "$log"

case "$phase" in
  check)
    with_fla
    bench -m lab.bench.throughput --smoke --device cuda --dtype bfloat16 --name check_throughput --batches 2 \
      --lengths 4 --gla gla_eager gla_graph gla_graph_fla gla_graph_compile gla_graph_compile_fla
    bench -m lab.bench.latency --smoke --device cuda --name check_latency --modes eager graph compile ;;
  latency)
    bench -m lab.bench.latency --parts decode prefill ist --dtypes bfloat16 float32 --modes compile graph eager ;;
  latency_fla)
    with_fla
    bench -m lab.bench.latency --parts prefill ist --fla --ist-backends fla --name latency_fla ;;
  throughput1)
    with_fla
    # shellcheck disable=SC2086
    bench -m lab.bench.throughput --name throughput1 --batches 1 4 16 --lengths --tokens "$TOKENS" \
      --gla $GLA --max-seconds "$BUDGET" ;;
  throughput2)
    with_fla
    # shellcheck disable=SC2086
    bench -m lab.bench.throughput --name throughput2 --batches 64 256 --lengths 500 1500 3000 --length-batch 64 \
      --tokens "$TOKENS" --gla $GLA --max-seconds "$BUDGET" ;;
  codec)
    bench lab/bench/codec_speed.py ;;
esac
rc=$?
ls -la "$OUT"
exit $rc
