#!/usr/bin/env bash
# lina-codec-mini on the GPU host, one phase per device call. The machine keeps /data and
# /tmp/site while it is held, and processes started with setsid keep running between calls, so the
# corpus renders in the background while the codec trains on what is already there.
#
#   setup    install carried wheels (.whl) into /tmp/site, unpack .corpus_debs into /data/root,
#            check the engines, start rendering the non-piper rows (data/carry/np_*) into /data/r1,
#            start training into /data/run
#   piper1   install .piper1 (the joe voice);  piper2: install .piper2 (piper-tts), check piper,
#            start rendering the piper rows (data/carry/pp_*) into /data/r2
#   status   show progress; copy the training log to $OUT
#   finish   stop training (it saves), export fp16 in <16 MiB parts, stop rendering, encode every
#            rendered row to codes, copy codec + codes + logs to $OUT
# Env: RENDER_JOBS (12), TRAIN_WORKERS (3), TRAIN_SECONDS (3000).
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-out}; mkdir -p "$OUT" /data
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 LINA_CORPUS_ROOT=/data/root
PY=python3

status() {
  echo "== $(date +%T) rendered: r1 $(find /data/r1/wav -name '*.wav' 2>/dev/null | wc -l) r2 $(find /data/r2/wav -name '*.wav' 2>/dev/null | wc -l)"
  tail -n 2 /data/render1.log /data/render2.log 2>/dev/null
  tail -n 4 /data/train.log 2>/dev/null
  nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader
  cp /data/run/log.jsonl "$OUT/codec_log.jsonl" 2>/dev/null; cp /data/train.log "$OUT/train.log" 2>/dev/null; true
}

start_render() {  # $1: np|pp  $2: out dir  $3: log
  setsid nohup $PY -m lab.training.corpus render --manifest data/carry/$1_train.jsonl.gz \
    data/carry/$1_validation.jsonl.gz data/carry/$1_test.jsonl.gz --out "$2" --jobs "${RENDER_JOBS:-12}" \
    > "$3" 2>&1 < /dev/null &
}

case "${1:-status}" in
  setup)
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
    nvidia-smi --query-gpu=name --format=csv,noheader; nproc
    bash lab/scripts/corpus_bundle.sh unpack /data/root | tail -n 1
    ln -sfn /data/root/usr/share/festival /usr/share/festival  # festival reads init.scm there whatever --libdir says
    bash lab/scripts/corpus_bundle.sh check /data/root 2>&1 | tee "$OUT/engines.txt"
    start_render np /data/r1 /data/render1.log
    setsid nohup $PY -m lab.training.codec train --manifest data/carry/np_train.jsonl.gz data/carry/pp_train.jsonl.gz \
      --roots /data/r1 /data/r2 --run /data/run --config mini --max-seconds "${TRAIN_SECONDS:-3000}" \
      --workers "${TRAIN_WORKERS:-3}" > /data/train.log 2>&1 < /dev/null &
    sleep 90; status ;;
  render1)  # setup again after a failed engine check: reinstall wheels, recheck, restart the render
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    bash lab/scripts/corpus_bundle.sh check /data/root 2>&1 | tee "$OUT/engines.txt"
    pkill -f "[l]ab.training.corpus render"; start_render np /data/r1 /data/render1.log; sleep 45; status ;;
  piper1)
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .piper1/*.whl; status ;;
  piper2)
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .piper2/*.whl
    bash lab/scripts/corpus_bundle.sh check /data/root 2>&1 | tail -n 1 | tee -a "$OUT/engines.txt"
    start_render pp /data/r2 /data/render2.log
    sleep 20; status ;;
  status)
    sleep "${WAIT:-0}"; status ;;
  finish)
    pkill -TERM -o -f "[l]ab.training.codec train"; for i in $(seq 90); do pgrep -f "[l]ab.training.codec train" >/dev/null || break; sleep 2; done; pkill -KILL -f "[l]ab.training.codec train"
    pkill -TERM -f "[l]ab.training.corpus render"; sleep 3; pkill -KILL -f "[l]ab.training.corpus render"
    $PY -m lab.training.codec export --run /data/run --out /data/codec --dtype float16
    $PY -m lab.training.codec encode --codec /data/codec --manifest data/carry/*_*.jsonl.gz \
      --roots /data/r1 /data/r2 --out /data/codes 2>&1 | tee "$OUT/encode.log"
    # $OUT takes at most 8 files of 16 MiB: one archive, cut into 15 MiB parts (cat joins them).
    # encode saved the float32 codec into codes/codec: send the fp16 export instead (the parts stay < 64 MiB).
    rm -rf /data/codes/codec; cp /data/run/log.jsonl /data/codes/codec_log.jsonl; cp -r /data/codec /data/codes/codec_fp16
    tar -C /data -cf - codes | split -b 15m -d - "$OUT/codec_and_codes.tar.part"
    ls -la "$OUT"/*; status ;;
esac
