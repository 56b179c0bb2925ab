#!/usr/bin/env bash
# lina-mini on the GPU host in two calls (issue 7); /data and setsid processes outlive a call while
# the machine is held.
#   start   carry .whl_lm data/codes (the codec travels as assets/lina-codec-mini): install fla, copy the codes and the codec to /data,
#           train in the background for LM_SECONDS (default 620)
#   finish  wait for training to end, export, tune the preset voices (+ samples), and put in $OUT:
#           fp16 weight shards (export again here), log, curves, presets.tar
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-out}; mkdir -p "$OUT" /data
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
case "${1:-}" in
  start)
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl_lm/*.whl
    cp -r data/codes /data/codes && cp -r assets/lina-codec-mini /data/lmcodec
    setsid nohup python3 -m lina.training.lm train --codes /data/codes --run /data/lmrun --config mini \
      --steps "${LM_STEPS:-2000}" --warmup 150 --val-every 1000 --val-batches 10 \
      --max-seconds "${LM_SECONDS:-620}" > /data/lm.log 2>&1 < /dev/null &
    sleep "${WAIT:-200}"; tail -n 5 /data/lmrun/log.jsonl ;;
  finish)
    while pgrep -f "[l]ina.training.lm train" >/dev/null; do sleep 5; done
    tail -n 5 /data/lm.log
    python3 -m lina.training.lm export --run /data/lmrun --codec /data/lmcodec --out /data/lina-mini
    python3 -m lina.training.lm shard --run /data/lmrun --out "$OUT/ckpt" --weights-only --half
    cp /data/lmrun/log.jsonl "$OUT/"; python3 -m lina.training.lm curves --run /data/lmrun --out "$OUT/curves.png"
    python3 scripts/make_presets.py --model /data/lina-mini --codes /data/codes --out /data/presets \
      --steps "${IST_STEPS:-100}" --clips-seconds 60 --device cuda --samples 2>&1 | tee /data/presets.log | tail -n 50
    cp /data/presets.log /data/presets/; tar -C /data -cf "$OUT/presets.tar" presets
    ls -la "$OUT" "$OUT/ckpt" ;;
esac
