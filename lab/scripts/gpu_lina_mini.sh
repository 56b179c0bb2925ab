#!/usr/bin/env bash
# lina-mini on the GPU host, one phase per device call; /data and setsid processes outlive a
# call while the machine is held. A held machine goes back 30 s after a call ends: keep one in flight
# (`wait`) while training runs.
#   start   carry .whl_lm .src .carry_codes (codes2.tgz = `tar -C data -czf .carry_codes/codes2.tgz codes2`:
#           uint16 codes of 12 bits gzip to 58 %): install fla, unpack the codes, copy the shipped
#           codec to /data, train in the background for LM_SECONDS (default 900) and LM_STEPS (1800),
#           LM_PAIRS (0.3) of extra two-sentence rows, each styled row LM_STYLED (1) times
#   wait    sleep WAIT seconds (default 480), then show the log
#   finish  wait for training to end, export, put in $OUT the fp16 weight shards and the log
#   presets tune the preset voices (+ samples) without fla (its kernels autotune per clip shape) of the
#           model just exported, or else of the shipped assets/lina-mini (a later machine); $OUT/presets.tar
#           (PRESETS_DIR names another folder/tar, PRESETS_ARGS adds make_presets.py options, e.g.
#           "--only-test --test-speakers a,b" for held-out-clean voices of evaluation speakers;
#           PRESETS_SHARDS=N runs N make_presets.py --shard processes side by side on the GPU)
# (speed measurements: lab/scripts/gpu_bench.sh)
# .whl_lm holds fla and its pure-Python needs, num2words, and soundfile/soxr (+ cffi) for the samples.
#
# The code that runs is the committed HEAD (`.src/src.tgz`, made by `git archive` before `start`), not the
# working tree, which may hold someone's unfinished edits:
#   git archive HEAD lina lab | gzip > .src/src.tgz
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-out}; mkdir -p "$OUT" /data
if [[ "${1:-}" == start || ! -d /data/src ]]; then
  rm -rf /data/src && mkdir -p /data/src && tar -xzf .src/src.tgz -C /data/src && cp -r assets /data/src/assets || exit 1
fi
cd /data/src || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
[[ -d /tmp/site ]] || python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site "$OLDPWD"/.whl_lm/*.whl
if [[ ! -d /data/codes && "${1:-}" =~ ^(start|presets)$ ]]; then
  tar -xzf "$OLDPWD/.carry_codes/codes2.tgz" -C /data && mv /data/codes2 /data/codes || exit 1
fi
# Fresh enrollment clips of the styled speakers (lab/scripts/render_enroll.py), when carried:
#   tar -C data/enroll -czf .carry_codes/enroll.tgz codes  ->  PRESETS_ARGS="--enroll /data/enroll/codes"
if [[ -f "$OLDPWD/.carry_codes/enroll.tgz" && ! -d /data/enroll/codes ]]; then
  mkdir -p /data/enroll && tar -xzf "$OLDPWD/.carry_codes/enroll.tgz" -C /data/enroll || exit 1
fi
case "${1:-}" in
  start)
    rm -rf /data/lmrun /data/lmcodec
    cp -r assets/lina-mini/codec /data/lmcodec
    setsid nohup python3 -m lab.training.lm train --codes /data/codes --run /data/lmrun --config mini \
      --steps "${LM_STEPS:-1800}" --warmup 150 --val-every 600 --val-batches 10 --no-initial-val \
      --pair-fraction "${LM_PAIRS:-0.3}" --styled-repeat "${LM_STYLED:-1}" --max-seconds "${LM_SECONDS:-900}" > /data/lm.log 2>&1 < /dev/null &
    sleep "${WAIT:-30}"; tail -n 5 /data/lm.log ;;
  wait)
    sleep "${WAIT:-480}"; tail -n 3 /data/lm.log; tail -n 3 /data/lmrun/log.jsonl; nvidia-smi --query-gpu=utilization.gpu --format=csv,noheader ;;
  finish)
    while pgrep -f "[l]ab.training.lm train" >/dev/null; do sleep 3; done
    tail -n 5 /data/lm.log
    python3 -m lab.training.lm export --run /data/lmrun --codec /data/lmcodec --out /data/lina-mini
    python3 -m lab.training.lm shard --run /data/lmrun --out "$OUT/ckpt" --weights-only --half
    cp /data/lmrun/log.jsonl "$OUT/"
    ls -la "$OUT" "$OUT/ckpt" ;;
  presets)
    model=/data/lina-mini; [[ -d $model ]] || model=assets/lina-mini
    dir=${PRESETS_DIR:-presets}
    shards=${PRESETS_SHARDS:-1}
    # shellcheck disable=SC2206
    presets=(python3 lab/scripts/make_presets.py --model "$model" --codes /data/codes --out "/data/$dir"
      --steps "${IST_STEPS:-100}" --clips-seconds 60 --device cuda --samples --no-fla --resume ${PRESETS_ARGS:-})
    if (( shards == 1 )); then
      timeout "${PRESETS_SECONDS:-540}" "${presets[@]}" 2>&1 | tee -a "/data/$dir.log" | tail -n 12
    else  # processes share the GPU: one tuning leaves it mostly idle
      for ((i = 0; i < shards; i++)); do
        timeout "${PRESETS_SECONDS:-540}" "${presets[@]}" --shard "$i/$shards" >> "/data/$dir.shard$i.log" 2>&1 &
      done
      wait; tail -q -n 3 /data/"$dir".shard*.log; "${presets[@]}" --merge-shards "$shards"; cat /data/"$dir".shard*.log >> "/data/$dir.log"
    fi
    cp "/data/$dir.log" "/data/$dir/"; tar -C /data -cf "$OUT/$dir.tar" "$dir" ;;
esac
