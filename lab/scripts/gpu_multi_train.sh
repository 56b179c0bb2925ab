#!/usr/bin/env bash
# Codec training on all the GPUs of one host (torchrun, lab.training.distributed): one complete, resumable
# step per device call, like lab/scripts/gpu_codec_v2.sh, whose folders, carries and steps it shares (its header
# says what to prepare here: wheels, held-out clips, manifests). Every step not named below is that script's.
#
#   gan SECONDS      phase gan on NGPU GPUs: resume /data/run_gan or start it from /data/frozen (or a staged
#                    export), train SECONDS (default 480), score the held-out clips every EVAL_EVERY steps and at
#                    the end (rank 0), export float16 + logs + curve to $OUT/codec_v2_gan.tar.partNN
#   mel SECONDS      the same for phase mel
#   scale [SECONDS]  steps/s of phase gan on each GPU count of SCALE_COUNTS (default 1 2 4 8, up to NGPU), the
#                    same batch per GPU, SECONDS (default 60) each in scratch runs from /data/frozen (or a staged
#                    export); appends to /data/scale.jsonl and copies it to $OUT. About 1.5 + SECONDS / 60 min
#                    per count: on 8 GPUs split it over calls (SCALE_COUNTS="1 2", then "4 8").
#   setup | render | freeze | encode | stage | status | ...   -> lab/scripts/gpu_codec_v2.sh
#
# The global batch is BATCH (default BATCH_PER_GPU x NGPU = 48 x NGPU): each GPU trains on BATCH / NGPU segments,
# the gradients are averaged, so one step is the step of one process on the whole batch. The learning rate
# is the recipe's, unchanged (no scaling rule: the gan phase's constant rate, on a batch with less noise).
# A run keeps the batch it started with (in its last.pt): on fewer GPUs each takes a larger share, so a run
# started on 8 GPUs (384) continues on 1 only where one GPU holds 384 segments of 1.6 s, and back.
# Env: NGPU (all visible GPUs), BATCH_PER_GPU (48), BATCH, TRAIN_WORKERS (data workers per GPU; default
#      min(6, CPUs / NGPU - 1)), EVAL_EVERY (2000), and gpu_codec_v2.sh's.
set -uo pipefail
cd "$(dirname "$0")/../.."
# NVLink multicast off in every process this starts (the multi-GPU kinds' documented environment).
export NCCL_NVLS_ENABLE=${NCCL_NVLS_ENABLE:-0} TORCH_SYMM_MEM_DISABLE_MULTICAST=${TORCH_SYMM_MEM_DISABLE_MULTICAST:-1} \
  NVSHMEM_DISABLE_NVLS=${NVSHMEM_DISABLE_NVLS:-1}
DATA=${DATA:-/data} OUT=${OUT:-out}
PY=python3
NGPU=${NGPU:-$(nvidia-smi -L 2>/dev/null | grep -c '^GPU')}
[ "${NGPU:-0}" -ge 1 ] || NGPU=1
CPUS=$(nproc)
WORKERS=${TRAIN_WORKERS:-$(( CPUS / NGPU - 1 < 6 ? (CPUS / NGPU - 1 > 0 ? CPUS / NGPU - 1 : 0) : 6 ))}
V2=lab/scripts/gpu_codec_v2.sh

launcher() {  # $1: processes
  echo "$PY -m torch.distributed.run --standalone --nproc-per-node $1 -m lab.training.codec"
}

scale() {  # $1: seconds per count
  local seconds=$1 init=$DATA/frozen
  [ -d $init ] || init=$(ls -d $DATA/stage/init 2>/dev/null)
  [ -n "$init" ] && [ -d "$init" ] || { echo "no /data/frozen or staged export: run freeze (or stage) first"; exit 1; }
  for n in ${SCALE_COUNTS:-1 2 4 8}; do
    [ "$n" -le "$NGPU" ] || continue
    local run=$DATA/scale_$n batch=$(( ${BATCH_PER_GPU:-48} * n ))
    rm -rf $run
    timeout -s TERM $((seconds + 180)) $(launcher $n) train --manifest ${TRAIN_MANIFESTS:-$DATA/carry/*train*.jsonl.gz} \
      --roots ${AUDIO_ROOTS:-$DATA/audio} --run-dir $run --phase gan --init "$init" --decoder-only --batch-size $batch \
      --config "${CONFIG:-mini}" --max-seconds "$seconds" --workers "$WORKERS" --log-every 20 > $DATA/scale_$n.log 2>&1
    # The first window holds the start (CUDA and NCCL set-up, DataLoader workers): left out.
    $PY - "$run/log.jsonl" "$n" "$batch" >> $DATA/scale.jsonl <<'PYEOF'
import json, statistics, sys
path, n, batch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rows = [r for r in map(json.loads, open(path)) if "steps_per_s" in r][1:]
rate = statistics.median(r["steps_per_s"] for r in rows) if rows else float("nan")
print(json.dumps({"gpus": n, "global_batch": batch, "steps_per_s": rate, "segments_per_s": rate * batch,
                  "windows": len(rows)}))
PYEOF
    tail -n 1 $DATA/scale.jsonl; tail -n 2 $DATA/scale_$n.log
    rm -rf $run
  done
  mkdir -p "$OUT" && cp $DATA/scale.jsonl "$OUT/" && $PY - $DATA/scale.jsonl <<'PYEOF'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
one = {r["gpus"]: r["segments_per_s"] for r in rows}.get(1)
print("gpus  steps/s  segments/s  efficiency")
for r in rows:
    eff = r["segments_per_s"] / (one * r["gpus"]) if one else float("nan")
    print(f"{r['gpus']:>4}  {r['steps_per_s']:7.2f}  {r['segments_per_s']:10.1f}  {eff:10.2f}")
PYEOF
}

case "${1:-status}" in
  gan|mel)
    echo "== $1 on $NGPU GPUs: global batch ${BATCH:-$(( ${BATCH_PER_GPU:-48} * NGPU ))}, $WORKERS data workers per GPU"
    TRAIN_LAUNCH=$(launcher "$NGPU") BATCH=${BATCH:-$(( ${BATCH_PER_GPU:-48} * NGPU ))} TRAIN_WORKERS=$WORKERS \
      DATA=$DATA OUT=$OUT bash $V2 "$1" "${2:-480}" ;;
  scale)
    export PYTHONPATH=${SITE:-/tmp/site}:$PWD PYTHONUNBUFFERED=1
    scale "${2:-60}" ;;
  help|-h)
    sed -n '2,27p' "$0" ;;
  *)
    DATA=$DATA OUT=$OUT bash $V2 "$@" ;;
esac
