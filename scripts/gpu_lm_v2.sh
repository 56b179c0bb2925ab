#!/usr/bin/env bash
# LM v2 in one lease of the GPU host: corpus v2 rendered there (formant engines on its CPUs, Kokoro on the
# GPU), encoded with the shipped codec (its codes stay valid: the LM ships beside today's codec), then two
# LMs side by side on the same codes (BPE vs phonemes). Steps are device calls made back to back (the
# machine goes back 30 s after a call; /data and setsid processes live while it is held).
#
# Here, once (~5 min; needs corpus_setup.sh, gruut, the Kokoro weights of scripts/gpu_kokoro_bench.sh):
#   python -m lina.training.corpus build --out data/corpus_v2 --recipe v2 --seed 0      # then split by engine:
#   data/v2_parts/{formant,kokoro}_{train,validation,test}.jsonl (see `parts` below)
#   python -m lina.training.corpus.kokoro_render prepare --manifest data/v2_parts/kokoro_*.jsonl --out data/kokoro_inputs
#   python -m lina.training.lm phonemize --codes data/ph_texts    # texts of every split -> phonemes.json.gz
#   bash scripts/corpus_bundle.sh download                         # .corpus_debs/
#   bash scripts/gpu_lm_v2.sh pack                                 # -> .lmv2/c1 .. c5, each < 26 MB
# There, in order (carry .lmv2/cK in call K):
#   bash scripts/gpu_lm_v2.sh c1     wheels, source copy, fla warm-up (synthetic codes, fills the Triton cache)
#   bash scripts/gpu_lm_v2.sh c2     debs -> engines; formant rows render on the CPUs (background)
#   bash scripts/gpu_lm_v2.sh c3     stash only
#   bash scripts/gpu_lm_v2.sh c4     stash only
#   bash scripts/gpu_lm_v2.sh c5     Kokoro weights joined; Kokoro rows render on the GPU (background); WAIT s
#   bash scripts/gpu_lm_v2.sh train  wait for the renders (RENDER_DEADLINE s), encode, start both LMs, WAIT s
#   bash scripts/gpu_lm_v2.sh finish wait for both LMs; $OUT: fp16 shards + logs (<= 8 files)
#   bash scripts/gpu_lm_v2.sh status
# Env: AB_STEPS (3000), AB_SECONDS (training budget of each LM), WAIT, RENDER_DEADLINE.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-out}; DATA=${DATA:-/data}; SITE=${SITE:-/tmp/site}
STASH=$DATA/stash SRC=$DATA/src AUDIO=$DATA/audio
mkdir -p "$OUT" "$DATA" "$STASH"
export PYTHONUNBUFFERED=1 TRITON_CACHE_DIR=$DATA/triton FLA_CACHE_RESULTS=1 LINA_CORPUS_ROOT=$DATA/root
PIP=(python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE")
LM_WHEELS="soundfile cffi pycparser soxr num2words praat_parselmouth pyworld_prebuilt fla_core"
CARRY=.lmv2 PIECE_MB=${PIECE_MB:-25}

stash() { mkdir -p "$STASH" && cp -r "$CARRY/$1"/. "$STASH"/ && echo "stashed $1: $(ls "$STASH" | wc -l) files"; }
joined() {  # $1: name of a file cut into $1.part.* pieces in the stash -> path of the joined file (once complete)
  local n; n=$(cat "$STASH/$1.parts" 2>/dev/null) || return 1
  [ "$(ls "$STASH/$1".part.* 2>/dev/null | wc -l)" = "$n" ] || return 1
  [ -f "$STASH/$1" ] || cat "$STASH/$1".part.* > "$STASH/$1"
  echo "$STASH/$1"
}
in_src() { cd "$SRC" && export PYTHONPATH=$SITE:$SRC; }
status() {
  echo "== $(date +%T) wav: $(find "$AUDIO" -name '*.wav' 2>/dev/null | wc -l); renders: $(pgrep -fc '[c]orpus render|[k]okoro_render render')"
  tail -n 2 "$DATA"/render_formant.log "$DATA"/render_kokoro.log 2>/dev/null
  for fe in warm bpe phonemes; do [ -f "$DATA/lm_$fe.log" ] && { echo "-- $fe"; tail -n 2 "$DATA/lm_$fe.log"; }; done
  nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader 2>/dev/null; true
}
start_lm() {  # $1: name, $2: codes folder, $3...: more train options
  local name=$1 codes=$2; shift 2
  setsid nohup python3 -m lina.training.lm train --codes "$codes" --run "$DATA/run_$name" --config mini \
    --warmup 150 --val-every 600 --val-batches 10 --no-initial-val --pair-fraction 0.3 "$@" \
    > "$DATA/lm_$name.log" 2>&1 < /dev/null &
}

case "${1:-status}" in
  pack)  # here: the carries, each < PIECE_MB MB (the tree itself takes ~37 of a call's 64 MiB)
    rm -rf $CARRY && mkdir -p $CARRY/c1 $CARRY/c2 $CARRY/c3 $CARRY/c4 $CARRY/c5 $CARRY/big
    for w in $LM_WHEELS; do cp .whl/${w}-*.whl $CARRY/c1/ 2>/dev/null || cp /tmp/pyworld_whl/${w}-*.whl $CARRY/c1/ || exit 1; done
    cp .kokoro_carry/p1/*.whl $CARRY/c1/
    tar -C data -czf $CARRY/c1/inputs.tgz kokoro_inputs v2_parts/formant_train.jsonl v2_parts/formant_validation.jsonl \
      v2_parts/formant_test.jsonl ph_texts/phonemes.json.gz || exit 1
    tar -cf $CARRY/big/debs.tar .corpus_debs
    grep -q "^/$CARRY/" .git/info/exclude || echo "/$CARRY/" >> .git/info/exclude
    cat .kokoro_carry/p1/weights.gz.1 .kokoro_carry/p2/weights.gz.2 .kokoro_carry/p3/weights.gz.3 > $CARRY/big/kokoro.safetensors.gz
    # One stream of pieces filled in order: c1's free room first, then c2..c5.
    python3 - "$CARRY" "$PIECE_MB" <<'EOF' || exit 1
import os, sys
from pathlib import Path
carry, limit = Path(sys.argv[1]), int(float(sys.argv[2]) * 1e6)
room = {c: limit - sum(f.stat().st_size for f in (carry / c).iterdir()) for c in ("c1", "c2", "c3", "c4", "c5")}
for name in ("debs.tar", "kokoro.safetensors.gz"):
    data, k = (carry / "big" / name).read_bytes(), 0
    pos = 0
    for c in room:
        take = min(room[c], len(data) - pos)
        if take <= 0:
            continue
        (carry / c / f"{name}.part.{k:02d}").write_bytes(data[pos:pos + take])
        room[c] -= take; pos += take; k += 1
    if pos < len(data):
        sys.exit(f"{name}: {len(data) - pos} bytes do not fit in five carries of {limit} bytes")
    for c in room:
        (carry / c / f"{name}.parts").write_text(str(k))
for c in room:
    print(c, round(sum(f.stat().st_size for f in (carry / c).iterdir()) / 1e6, 1), "MB")
EOF
    cmp <(cat $CARRY/c*/kokoro.safetensors.gz.part.* | gzip -dc | sha256sum | cut -c1-64) \
      <(python3 -c "import json; print(json.load(open('.kokoro_carry/p1/manifest.json'))['sha256'])") || exit 1
    rm -rf $CARRY/big ;;
  c1)
    stash c1
    [ -n "${DRY:-}" ] || "${PIP[@]}" "$STASH"/*.whl || exit 1
    rm -rf "$SRC" && mkdir -p "$SRC" && cp -r lina assets scripts "$SRC"/ && tar -xzf "$STASH/inputs.tgz" -C "$DATA"
    in_src
    python3 -c "import torch, fla, parselmouth, soxr, soundfile; print('torch', torch.__version__, torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no GPU')" || exit 1
    nproc; df -h "$DATA" | tail -1
    # Warm-up: a short run on random codes shaped like the corpus (same buckets) fills fla's autotune cache.
    python3 - "$DATA/warm_codes" "$DATA/v2_parts" <<'EOF' || exit 1
import gzip, json, sys
from pathlib import Path
import numpy as np
out, parts = Path(sys.argv[1]), Path(sys.argv[2])
out.mkdir(parents=True, exist_ok=True)
rng = np.random.default_rng(0)
for split in ("train", "validation"):
    rows = [json.loads(l) for l in open(parts / f"formant_{split}.jsonl")]
    offset, manifest = 0, []
    for r in rows:
        frames = int(r["duration"] * 75)
        manifest.append({"id": r["id"], "speaker": r["speaker"], "style": r["style"], "text": r["text"],
                         "offset": offset, "frames": frames})
        offset += frames
    np.save(out / f"{split}.codes.npy", rng.integers(0, 4096, offset).astype(np.uint16))
    with gzip.open(out / f"{split}.jsonl.gz", "wt") as f:
        f.write("".join(json.dumps(m) + "\n" for m in manifest))
print("warm-up codes", offset)
EOF
    start_lm warm "$DATA/warm_codes" --steps 400 --max-seconds 420
    sleep 20; status ;;
  c2|c3|c4)
    stash "$1"
    if debs=$(joined debs.tar) && [ ! -d "$DATA/root" ]; then
      in_src
      tar -xf "$debs" -C "$DATA" && rm -rf "$SRC/.corpus_debs" && mv "$DATA/.corpus_debs" "$SRC/"
      bash scripts/corpus_bundle.sh unpack "$DATA/root" | tail -n 1
      [ -e /usr/share/festival ] || ln -sfn "$DATA/root/usr/share/festival" /usr/share/festival  # festival reads init.scm there
      bash scripts/corpus_bundle.sh check "$DATA/root" 2>&1 | grep -v "piper\|kokoro"
      setsid nohup python3 -m lina.training.corpus render --manifest "$DATA"/v2_parts/formant_*.jsonl --out "$AUDIO" \
        --jobs "${RENDER_JOBS:-12}" > "$DATA/render_formant.log" 2>&1 < /dev/null &
      sleep 15
    fi
    status ;;
  c5)
    stash c5
    weights=$(joined kokoro.safetensors.gz) || { echo "kokoro pieces missing"; exit 1; }
    [ -f "$STASH/kokoro.safetensors" ] || gzip -dc "$weights" > "$STASH/kokoro.safetensors"
    in_src
    setsid nohup python3 -m lina.training.corpus.kokoro_render render --inputs "$DATA/kokoro_inputs" \
      --weights "$STASH/kokoro.safetensors" --out "$AUDIO" --jobs "${KOKORO_JOBS:-6}" > "$DATA/render_kokoro.log" 2>&1 < /dev/null &
    sleep "${WAIT:-60}"; status ;;
  train)
    t0=$(date +%s); in_src
    deadline=$(( $(date +%s) + ${RENDER_DEADLINE:-240} ))
    while pgrep -f '[c]orpus render|[k]okoro_render render' > /dev/null && [ "$(date +%s)" -lt "$deadline" ]; do sleep 10; done
    pkill -f '[c]orpus render|[k]okoro_render render'; pkill -f '[l]m train --codes .*warm_codes'; sleep 3
    status
    rm -rf "$DATA/codes"
    python3 -m lina.training.codec encode --codec assets/lina-mini/codec --device "${ENCODE_DEVICE:-cuda}" --out "$DATA/codes" \
      --manifest "$DATA"/v2_parts/formant_{train,validation}.jsonl "$DATA"/kokoro_inputs/rows.jsonl.gz --roots "$AUDIO" 2>&1 \
      | tail -n 4; [ -f "$DATA/codes/train.jsonl.gz" ] || { echo "encoding failed"; exit 1; }
    cp "$DATA/ph_texts/phonemes.json.gz" "$DATA/codes/"
    for fe in bpe phonemes; do
      start_lm "$fe" "$DATA/codes" --text-frontend "$fe" --steps "${AB_STEPS:-3000}" --max-seconds "${AB_SECONDS:-780}"
    done
    sleep $(( ${CALL_SECONDS:-570} - ($(date +%s) - t0) )); status ;;  # keep the call (and the machine) busy
  finish)  # the runs stop themselves at AB_SECONDS; past FINISH_DEADLINE s they are told to save and stop
    t0=$(date +%s)
    while pgrep -f "[l]ina.training.lm train --codes $DATA/codes" > /dev/null; do
      [ $(( $(date +%s) - t0 )) -gt "${FINISH_DEADLINE:-500}" ] && pkill -TERM -f "[l]ina.training.lm train --codes $DATA/codes"
      sleep 3
    done
    in_src
    for fe in bpe phonemes; do
      tail -n 3 "$DATA/lm_$fe.log"
      python3 -m lina.training.lm shard --run "$DATA/run_$fe" --out "$OUT/ckpt_$fe" --weights-only --half --with-log
    done
    cat "$DATA/codes/summary.json"; tail -n 3 "$DATA"/render_*.log  # ($OUT holds 8 files: the four shards' of each run)
    ls -la "$OUT" "$OUT"/ckpt_* ;;
  status)
    sleep "${WAIT:-0}"; status ;;
  *)
    sed -n '2,25p' "$0"; exit 2 ;;
esac
