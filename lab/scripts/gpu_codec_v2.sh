#!/usr/bin/env bash
# Codec v2 on the GPU host (recipe in lab/notes/codec_v2.md): one complete, resumable step per device call.
#
# Here, once (the files travel with the tree; data/carry is untracked and not ignored, so it always travels:
# keep it small; .whl is ignored, name it in `carry`):
#   bash lab/scripts/gpu_codec_v2.sh wheels     # -> .whl/: Python 3.12 wheels the image lacks (soundfile, cffi, soxr,
#                                           #    num2words (its CLI-only docopt left out), pystoi, parselmouth, pesq built here)
#   bash lab/scripts/gpu_codec_v2.sh heldout    # -> data/carry/heldout_v2/: the 32 fixed held-out clips (5 MB)
#   corpus manifests (gzipped) in data/carry/: the *train* ones are the codec's training rows
#
# There (each a device call; the machine keeps /data and /tmp/site while it is held):
#   setup            carry .whl: install into /tmp/site, check torch/CUDA and the metric packages, copy data/carry
#                    to /data/carry (later calls need not carry it)
#   render           with the corpus engines (carry .corpus_debs the first time; .corpus_wheels via the corpus
#                    README's batches): start rendering /data/carry/*.jsonl.gz into /data/audio in the
#                    background (resumable; skipped while a render runs). Training reads what is there.
#   mel SECONDS      phase mel (encoder + codebook + decoder, mel loss only): resume /data/run_mel, or start it
#                    (from /data/stage/init if staged: an earlier export of the lineage), train SECONDS, score
#                    the held-out clips every EVAL_EVERY steps and at the end, export float16 + logs to
#                    $OUT/codec_v2_mel.tar.partNN
#   freeze           the codes: /data/run_mel -> /data/frozen (encoder + codebook float32, codes id), to $OUT
#   gan SECONDS      phase gan (decoder only, MPD + MRD + multi-band STFT discriminators): resume /data/run_gan or
#                    start from /data/frozen (or /data/stage/init), train, score, export to $OUT/codec_v2_gan.tar.partNN
#   encode           LM v2's codes: every rendered row of /data/carry/*.jsonl.gz through /data/frozen -> $OUT parts
#   stage            copy data/carry/stage/* (tar parts of an earlier export, a few per call: the tree already
#                    takes ~36 of the 64 MiB a call carries) to /data/stage; when all parts are there, `mel`/`gan`
#                    on a fresh machine start from them
#   status           progress, GPU, the last evaluations (WAIT=seconds first)
# A step that ran past its budget saves (SIGTERM) and the next call resumes it. A machine given back loses
# /data: carry the last export back with `stage` (the run continues from its weights; optimizer and
# discriminator states start afresh, which the constant learning rate tolerates).
# Env: EVAL_EVERY (2000), BATCH (48), CONFIG (mini), TRAIN_WORKERS (6), RENDER_JOBS (12), AUDIO_ROOTS (/data/audio),
#      TRAIN_MANIFESTS (/data/carry/*train*.jsonl.gz).
set -uo pipefail
DATA=${DATA:-/data} SITE=${SITE:-/tmp/site}  # other folders only for a dry run elsewhere
cd "$(dirname "$0")/../.."
OUT=${OUT:-out}; mkdir -p "$OUT" $DATA
export PYTHONPATH=$SITE:$PWD PYTHONUNBUFFERED=1 LINA_CORPUS_ROOT=${LINA_CORPUS_ROOT:-$DATA/root}
PY=python3
PIP=($PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target $SITE)
WHEELS="soundfile==0.14.0 cffi==2.0.0 pycparser==3.0 soxr==1.1.0 num2words==0.5.14
  pystoi==0.4.1 praat-parselmouth==0.4.7"
PY312=${PY312:-$HOME/.pyenv/versions/3.12.1/bin/python}
ROOTS=${AUDIO_ROOTS:-$DATA/audio}
EVAL_EVERY=${EVAL_EVERY:-2000}
# How training starts: one process; lab/scripts/gpu_multi_train.sh sets torchrun over the host's GPUs.
read -r -a TRAIN_LAUNCH <<< "${TRAIN_LAUNCH:-$PY -m lab.training.codec}"

status() {
  echo "== $(date +%T) rendered: $(find $ROOTS -name '*.wav' 2>/dev/null | wc -l) wav; render processes: $(pgrep -cf '[c]orpus render --manifest')"
  for run in $DATA/run_mel $DATA/run_gan; do
    [ -f $run/log.jsonl ] && { echo "-- $run"; tail -n 2 $run/log.jsonl; tail -n 2 $run/eval.jsonl 2>/dev/null; }
  done
  nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader 2>/dev/null; true
}

send() {  # $1: name, then folders/files under $DATA: one tar cut into 15 MiB parts ($OUT takes 8 files of 16 MiB)
  local name=$1; shift
  tar -C $DATA -cf - "$@" | split -b 15m -d - "$OUT/$name.tar.part"
  ls -la "$OUT"
}

init_from_stage() {  # prints an init folder from staged parts, if complete
  if ls $DATA/stage/*.tar.part* >/dev/null 2>&1 && [ ! -d $DATA/stage/init ]; then
    mkdir -p $DATA/stage/x && cat $DATA/stage/*.tar.part* | tar -C $DATA/stage/x -xf - || return 1
    local codec; codec=$(dirname "$(find $DATA/stage/x -name config.json | head -n 1)")
    [ -n "$codec" ] && mv "$codec" $DATA/stage/init
  fi
  [ -d $DATA/stage/init ] && echo $DATA/stage/init
}

train_phase() {  # $1: mel|gan  $2: seconds  $3: default init (may be empty)
  local phase=$1 seconds=$2 run=$DATA/run_$1 init=${3:-}
  [ -f $SITE/.codec_v2_ready ] || { echo "run the setup step first"; exit 1; }
  [ -d $DATA/heldout ] || { echo "no held-out clips: carry data/carry/heldout_v2 and run setup"; exit 1; }
  local staged; staged=$(init_from_stage)
  local args=(--phase "$phase" --batch-size "${BATCH:-48}" --config "${CONFIG:-mini}")
  if [ ! -f $run/last.pt ]; then
    [ -n "$staged" ] && init=$staged
    [ -n "$init" ] && args+=(--init "$init")
  fi
  # Two thirds of a 600 s call train; the rest loads, scores and exports. SIGTERM saves.
  timeout -s TERM $((seconds + 120)) "${TRAIN_LAUNCH[@]}" train --manifest ${TRAIN_MANIFESTS:-$DATA/carry/*train*.jsonl.gz} \
    --roots $ROOTS --run-dir $run "${args[@]}" --max-seconds "$seconds" --workers "${TRAIN_WORKERS:-6}" \
    --eval-clips $DATA/heldout --eval-every "$EVAL_EVERY" --log-every 100 2>&1 | tee -a $DATA/train_$phase.log | tail -n 15
  local dir=$DATA/codec_v2_$phase lineage=($run)
  [ "$phase" = gan ] && [ -f $DATA/run_mel/eval.jsonl ] && lineage=($DATA/run_mel $run)
  rm -rf $dir && mkdir -p $dir
  $PY -m lab.training.codec export --run $run --out $dir/codec --dtype float16 || exit 1
  cp $run/log.jsonl $dir/log_$phase.jsonl; cp $run/eval.jsonl $dir/eval_$phase.jsonl; cp $DATA/train_$phase.log $dir/
  $PY -m lab.training.codec curve "${lineage[@]}" --out $dir/curve.png --md $dir/curve.md | tail -n 6
  send codec_v2_$phase codec_v2_$phase
}

case "${1:-status}" in
  wheels)  # here
    mkdir -p .whl
    $PY -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
      --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
      --platform manylinux2014_x86_64 --platform manylinux1_x86_64 --platform manylinux_2_24_x86_64 -d .whl $WHEELS || exit 1
    # pesq has no wheels: build one for the host's Python 3.12 here (Cython + numpy fetched by pip's build isolation).
    "$PY312" -m pip wheel -q --no-deps pesq==0.0.4 -w .whl || echo "pesq wheel not built: PESQ will read n/a there"
    ls -la .whl; du -sh .whl ;;
  heldout)  # here
    $PY -m lab.training.codec heldout --out data/carry/heldout_v2 | tail -n 2 ;;
  setup)
    "${PIP[@]}" .whl/*.whl || exit 1
    $PY - <<'EOF' || exit 1
import torch, soundfile, soxr, pystoi
print("torch", torch.__version__, "cuda", torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")
for name in ("pesq", "parselmouth"):
    try:
        __import__(name); print(name, "ok")
    except ImportError as error:
        print(name, "MISSING (its column reads n/a):", error)
EOF
    rm -rf $DATA/carry && cp -r data/carry $DATA/carry && cp -r $DATA/carry/heldout_v2 $DATA/heldout
    $PY -c "import json; print('held-out fingerprint', json.load(open('$DATA/heldout/clips.json'))['fingerprint'])"
    touch $SITE/.codec_v2_ready; nproc; status ;;
  render)
    [ -d .corpus_debs ] && [ ! -d $DATA/root ] && bash lab/scripts/corpus_bundle.sh unpack $DATA/root | tail -n 1
    [ -d .corpus_wheels ] && "${PIP[@]}" .corpus_wheels/*.whl
    [ -d $DATA/root/usr/share/festival ] && ln -sfn $DATA/root/usr/share/festival /usr/share/festival
    if pgrep -f "[c]orpus render --manifest" >/dev/null; then echo "a render is running"; else
      setsid nohup $PY -m lab.training.corpus render --manifest $DATA/carry/*.jsonl.gz --out $DATA/audio \
        --jobs "${RENDER_JOBS:-12}" > $DATA/render.log 2>&1 < /dev/null &
      sleep 30; tail -n 3 $DATA/render.log
    fi
    status ;;
  mel)  # MEL_INIT: an exported codec to start a new mel run from (e.g. assets/lina-mini/codec: v1's weights)
    train_phase mel "${2:-420}" "${MEL_INIT:-}" ;;
  freeze)
    rm -rf $DATA/frozen $DATA/codec_v2_frozen && mkdir -p $DATA/codec_v2_frozen
    $PY -m lab.training.codec export --run $DATA/run_mel --out $DATA/frozen --freeze || exit 1
    cp -r $DATA/frozen $DATA/codec_v2_frozen/codec && cp $DATA/run_mel/eval.jsonl $DATA/codec_v2_frozen/eval_mel.jsonl
    send codec_v2_frozen codec_v2_frozen ;;
  gan)
    init=""; [ -d $DATA/frozen ] && init=$DATA/frozen  # else a staged export (init_from_stage)
    train_phase gan "${2:-420}" "$init" ;;
  encode)
    codec=$DATA/frozen; [ -d $codec ] || codec=$(init_from_stage)
    [ -n "$codec" ] && [ -d "$codec" ] || { echo "no $DATA/frozen: run freeze (or stage a frozen export) first"; exit 1; }
    rm -rf $DATA/codes && $PY -m lab.training.codec encode --codec "$codec" --manifest $DATA/carry/*.jsonl.gz \
      --roots $ROOTS --out $DATA/codes 2>&1 | tail -n 6
    rm -rf $DATA/codes/codec/codec.safetensors  # the LM needs the codes and the id (codes.json), not the weights
    send codes_v2 codes ;;
  stage)
    mkdir -p $DATA/stage && cp -v data/carry/stage/* $DATA/stage/ && ls -la $DATA/stage ;;
  status)
    sleep "${WAIT:-0}"; status ;;
  *)
    sed -n '2,33p' "$0"; exit 2 ;;
esac
