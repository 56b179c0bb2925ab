#!/usr/bin/env bash
# LM v2 in one lease of the GPU host: corpus v2 rows rendered there and encoded in the same pass
# (lab.training.corpus.render_codes: formant engines on its CPUs, Kokoro on the GPU, the shipped codec on the
# GPU; no WAV files), then LMs on those codes (phonemes and BPE side by side, or one). Steps are device calls
# made back to back: the machine goes back 30 s after a call; /data and setsid processes live while it is held.
# Rendering runs in the foreground of calls (resumable): a Kokoro render left in the background of a call died
# when the call returned (first LM v2 lease), while LM runs started with setsid survived.
#
# Here, once (~1 h of CPU; needs corpus_setup.sh, gruut, the Kokoro weights of lab/scripts/gpu_kokoro_bench.sh):
#   python -m lab.training.corpus build --out data/corpus_v2_80h --recipe v2 --seed 0 --hours 80
#   split it by engine into data/v2_80h_parts/{formant,kokoro}_{train,validation,test}.jsonl (piper rows are not
#     rendered: its 58 MB voice would need three more calls and ~18 min of the host's CPUs)
#   python -m lab.training.corpus.kokoro_render prepare --manifest data/v2_80h_parts/kokoro_{train,validation}.jsonl \
#     --out data/kokoro_inputs_80h                                  # espeak-ng phonemes (the host has none)
#   python -m lab.training.lm phonemize --codes data/ph_texts_80h # texts of every split -> phonemes.json.gz
#   (Kokoro expansion, lab/training/corpus/README.md "Growing the Kokoro hours": `expand` -> chunks of ~20 h,
#   `kokoro_render prepare` per chunk -> data/kokoro_inputs_v3/chunkK, `phonemize --reuse` -> data/ph_texts_v3)
#   python -m lab.training.codec heldout --out data/heldout_v2     # the 32 fixed held-out clips of codec v2
#   bash lab/scripts/corpus_bundle.sh download                         # .corpus_debs/
#   bash lab/scripts/gpu_lm_v2.sh pack                                 # -> .lmv2/c1 .. cN, each < PIECE_MB MB
# There, in order (carry .lmv2/cK in call K; `pack` prints N):
#   bash lab/scripts/gpu_lm_v2.sh c1     wheels, source copy, fla warm-up on random codes (fills the Triton cache)
#   bash lab/scripts/gpu_lm_v2.sh cK     stash; engines, inputs and Kokoro weights are unpacked once complete
#   (codec v2 first:) bash lab/scripts/gpu_lm_v2.sh wavs     WAV files of every train/validation row (repeat until
#                                    Kokoro prints no row left), then `codec mel 420` per call, then `codec freeze`
#   bash lab/scripts/gpu_lm_v2.sh render render + encode every train/validation row (validation rows first),
#                                    MAX_SECONDS (480) per call: it stops taking rows then, saves its shards and
#                                    exits by MAX_SECONDS+40 s whatever its workers do; repeat until it prints
#                                    "all rows done"; then the codes folder is finalized
#                                    Each render call also returns the shards so far (codes_back 1, below).
#   bash lab/scripts/gpu_lm_v2.sh codes_back K   return the codes ($CODES/shards, ~34 MB for all 55k rows,
#                                    17 MB per 28k) in 15 MiB parts, CODES_PARTS_PER_CALL (4) per call: call K=1,
#                                    2, ... until it says "last part"; a full render needs 1 call (3 parts): the
#                                    render call's own, so codes_back K>1 is only for more than 60 MiB. Here:
#                                    `bash lab/scripts/gpu_lm_v2.sh codes_join FILES_AT...` -> CODES_BACK, which
#                                    the next `pack` carries: that lease's `render` resumes from those shards.
#   CHUNK=K bash lab/scripts/gpu_lm_v2.sh render   the same for chunk K of the Kokoro expansion (its Kokoro rows,
#                                    into $DATA/codes_chunkK; one call renders a 20 h chunk); the call returns its
#                                    shards like render: here `CHUNK=K bash lab/scripts/gpu_lm_v2.sh codes_join
#                                    FILES_AT` -> data/codes_v3_chunkK_back, which the next `pack` carries too
#   bash lab/scripts/gpu_lm_v2.sh train  start the LMs (LM_RUNS: FRONTEND:CONFIG each, default "phonemes:mini phonemes:small",
#                                    side by side on the GPU) for AB_SECONDS; the call waits CALL_SECONDS.
#                                    They train on every finalized codes folder there (v2's and each chunk's),
#                                    merged into $DATA/codes_all (one codec: `codec merge` checks the codes ids)
#   bash lab/scripts/gpu_lm_v2.sh finish wait for the LMs (FINISH_DEADLINE s, then they save and stop); $OUT:
#                                    lmv2.tar.partNN (checkpoints fp16, logs, codes summary; < 64 MiB: SHIP names
#                                    the runs to send, e.g. SHIP=phonemes_mini, then SHIP=phonemes_small again)
#   bash lab/scripts/gpu_lm_v2.sh status
# A lease that resumes a returned render: here `codes_join FILES_AT` (the last render call's files), then `pack`
# (it prints the calls: the codes ride in the last ones), then there c1 .. cN (the last unpacks the shards into
# $CODES; render refuses shards of another codec), `render` until "all rows done" (none left: it only
# finalizes, ~1 min), `train`, `finish`. With the expansion: after v2's `render`, `CHUNK=1 render`,
# `CHUNK=2 render` ... (a 20 h chunk is ~72,000 Kokoro audio s: ~4-5 min at 250-470 audio s per GPU s), each
# returning its shards, then `train` on the union; here `CHUNK=K codes_join` each chunk's files.
# Env: AB_STEPS (3000), AB_SECONDS (780), PARTS (data/v2_80h_parts), KOKORO_INPUTS (data/kokoro_inputs_80h),
#      PHONEMES (data/ph_texts_v3/phonemes.json.gz, v2 + the chunks' texts; else data/ph_texts_80h's), PIECE_MB (20), DRY (skip pip: a dry run here),
#      WARM (1; 0: no fla warm-up in c1, for a codec lease), MEL_INIT (codec mel: start from that export),
#      FROZEN (data/codec_v2_frozen/codec: the frozen codec v2 that `pack` carries), CODEC (the codec `render` encodes
#      with: the carried frozen codec there, else assets/lina-mini/codec), CODES_BACK (data/codes_v2_back: the
#      returned codes folder `codes_join` makes and `pack` carries), CHUNKS_DIR (data/kokoro_inputs_v3: the
#      prepared chunks `pack` carries; CHUNKS="1 2" only those), CHUNK (render / codes_back / codes_join on
#      chunk K), CHUNKS_BACK (data/codes_v3_chunk: data/codes_v3_chunkK_back are the returned chunks `pack` carries).
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-out}; DATA=${DATA:-/data}; SITE=${SITE:-/tmp/site}
STASH=$DATA/stash SRC=$DATA/src CODES=$DATA/codes
mkdir -p "$OUT" "$DATA" "$STASH"
export PYTHONUNBUFFERED=1 TRITON_CACHE_DIR=$DATA/triton FLA_CACHE_RESULTS=1 LINA_CORPUS_ROOT=$DATA/root
PIP=(python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE")
LM_WHEELS="soundfile cffi pycparser soxr num2words praat_parselmouth pyworld_prebuilt fla_core pesq pystoi"
CARRY=${CARRY:-.lmv2} PIECE_MB=${PIECE_MB:-20}
PARTS=${PARTS:-data/v2_80h_parts} KOKORO_INPUTS=${KOKORO_INPUTS:-data/kokoro_inputs_80h}
# The phoneme table of v2 and the expansion's chunks when it is there (a superset serves v2 alone as well).
PHONEMES=${PHONEMES:-$([ -f data/ph_texts_v3/phonemes.json.gz ] && echo data/ph_texts_v3/phonemes.json.gz || echo data/ph_texts_80h/phonemes.json.gz)}
CHUNKS_DIR=${CHUNKS_DIR:-data/kokoro_inputs_v3} CHUNKS_BACK=${CHUNKS_BACK:-data/codes_v3_chunk} CHUNK=${CHUNK:-}
# The codes the LM learns: the frozen codec v2 carried by `pack` (FROZEN here -> $DATA/codec_frozen there), else v1.
FROZEN=${FROZEN:-data/codec_v2_frozen/codec}
CODES_BACK=${CODES_BACK:-$([ -n "$CHUNK" ] && echo "${CHUNKS_BACK}${CHUNK}_back" || echo data/codes_v2_back)} CODES_PART=${CODES_PART:-15m} CODES_PARTS_PER_CALL=${CODES_PARTS_PER_CALL:-4}
CODEC=${CODEC:-$([ -d "$DATA/codec_frozen" ] && echo "$DATA/codec_frozen" || echo assets/lina-mini/codec)}
LM_RUNS=(${LM_RUNS:-phonemes:mini phonemes:small})  # run NAME = FRONTEND_CONFIG
RUN_NAMES=(); for r in "${LM_RUNS[@]}"; do RUN_NAMES+=("${r%%:*}_${r##*:}"); done
MANIFESTS=("$DATA"/parts/formant_train.jsonl "$DATA"/parts/formant_validation.jsonl "$DATA"/parts/kokoro_train.jsonl
           "$DATA"/parts/kokoro_validation.jsonl)
KOKORO_DIR=$DATA/kokoro_inputs
if [ -n "$CHUNK" ]; then  # chunk K of the expansion: its prepared rows are its manifest; its own codes folder
  KOKORO_DIR=$DATA/chunks/chunk$CHUNK CODES=$DATA/codes_chunk$CHUNK
  MANIFESTS=("$KOKORO_DIR/rows.jsonl.gz")
fi

stash() { mkdir -p "$STASH" && cp -r "$CARRY/$1"/. "$STASH"/ && echo "stashed $1: $(ls "$STASH" | wc -l) files"; }
joined() {  # $1: a file cut into $1.part.NN pieces in the stash -> path of the joined file, once all are there
  local n; n=$(cat "$STASH/$1.parts" 2>/dev/null) || return 1
  [ "$(ls "$STASH/$1".part.* 2>/dev/null | wc -l)" = "$n" ] || return 1
  [ -f "$STASH/$1" ] || cat "$STASH/$1".part.* > "$STASH/$1"
  echo "$STASH/$1"
}
in_src() { cd "$SRC" && export PYTHONPATH=$SITE:$SRC; }
unpack_ready() {  # engines, inputs and Kokoro weights, each once all its pieces are stashed
  local f
  if f=$(joined debs.tar) && [ ! -d "$DATA/root" ]; then
    tar -xf "$f" -C "$SRC" && (in_src && bash lab/scripts/corpus_bundle.sh unpack "$DATA/root" | tail -n 1)
    [ -e /usr/share/festival ] || ln -sfn "$DATA/root/usr/share/festival" /usr/share/festival  # festival reads init.scm there
    (in_src && bash lab/scripts/corpus_bundle.sh check "$DATA/root" 2>&1 | grep -v "piper\|kokoro")
  fi
  if f=$(joined inputs.tgz) && [ ! -d "$DATA/parts" ]; then tar -xzf "$f" -C "$DATA" && ls "$DATA"/parts; fi
  if f=$(joined codec.tar) && [ ! -d "$DATA/codec_frozen" ] && [ -s "$f" ]; then
    mkdir -p "$DATA/codec_frozen" && tar -xf "$f" -C "$DATA/codec_frozen" && echo "frozen codec: $(cat "$DATA/codec_frozen/codes.json" | tr -d '\n ')"
  fi
  if f=$(joined codes.tar) && [ -s "$f" ] && [ ! -d "$CODES/shards" ]; then  # a render returned by codes_back
    mkdir -p "$CODES" && tar -xf "$f" -C "$CODES" && echo "codes carried: $(ls "$CODES/shards" | wc -l) shards"
  fi
  if f=$(joined chunk_codes.tar) && [ -s "$f" ] && [ ! -f "$DATA/.chunk_codes" ]; then  # chunks returned earlier
    tar -xf "$f" -C "$DATA" && touch "$DATA/.chunk_codes" && for d in "$DATA"/codes_chunk*/; do
      echo "codes carried: $(ls "$d/shards" | wc -l) shards of $(basename "$d")"; done
  fi
  if f=$(joined kokoro.safetensors.gz) && [ ! -f "$STASH/kokoro.safetensors" ]; then
    gzip -dc "$f" > "$STASH/kokoro.safetensors" && echo "kokoro weights joined"
  fi
}
status() {
  echo "== $(date +%T) shards: $(ls "$CODES"/shards 2>/dev/null | wc -l)$(for d in "$DATA"/codes_chunk*/; do [ -d "$d/shards" ] \
    && echo -n ", $(basename "$d") $(ls "$d/shards" | wc -l)"; done)"
  for fe in warm "${RUN_NAMES[@]}"; do [ -f "$DATA/lm_$fe.log" ] && { echo "-- $fe"; tail -n 2 "$DATA/lm_$fe.log" | cut -c1-300; }; done
  for fe in "${RUN_NAMES[@]}"; do [ -f "$DATA/run_$fe/log.jsonl" ] && grep val_loss "$DATA/run_$fe/log.jsonl" | tail -n 3; done
  nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader 2>/dev/null; true
}
start_lm() {  # $1: name, $2: codes folder, $3...: more train options (--config among them)
  local name=$1 codes=$2; shift 2
  setsid nohup python3 -m lab.training.lm train --codes "$codes" --run "$DATA/run_$name" \
    --warmup 150 --val-every 600 --val-batches 10 --no-initial-val --pair-fraction 0.3 "$@" \
    > "$DATA/lm_$name.log" 2>&1 < /dev/null &
}

union_codes() {  # every finalized codes folder here ($CODES and $DATA/codes_chunkK) -> the folder to train on (printed)
  local sources=() d
  [ -f "$CODES/train.jsonl.gz" ] && sources+=("$CODES")
  for d in "$DATA"/codes_chunk*/; do [ -f "$d/train.jsonl.gz" ] && sources+=("${d%/}"); done
  [ ${#sources[@]} -gt 0 ] || return 1
  if [ ${#sources[@]} = 1 ]; then echo "${sources[0]}"; return 0; fi
  rm -rf "$DATA/codes_all"
  python3 -m lab.training.codec merge --out "$DATA/codes_all" "${sources[@]}" >&2 || return 1
  cp "$DATA/phonemes.json.gz" "$DATA/codes_all/" && echo "$DATA/codes_all"
}

send_codes() {  # $1: call number K -> $OUT gets parts of the shards' tar (CODES_PARTS_PER_CALL of 15 MiB per call)
  local k=$1 back=$DATA/codes_back${CHUNK:+_chunk$CHUNK} parts n first sent
  [ -d "$CODES/shards" ] || { echo "no shards in $CODES"; return 1; }
  if [ "$k" = 1 ] || [ ! -d "$back" ]; then  # call 1 cuts the parts; later calls send the rest of the same cut
    rm -rf "$back" && mkdir -p "$back"
    tar -C "$CODES" -cf - shards $( [ -f "$CODES/summary.json" ] && echo summary.json ) \
      | split -b "$CODES_PART" -d - "$back/codes.tar.part" || return 1
    (cd "$back" && sha256sum codes.tar.part* > codes.sha256)
  fi
  parts=("$back"/codes.tar.part*); n=${#parts[@]}; first=$(( (k - 1) * CODES_PARTS_PER_CALL ))
  [ "$first" -lt "$n" ] || { echo "no part $((first + 1)): $n parts in all"; return 1; }
  sent=("${parts[@]:$first:$CODES_PARTS_PER_CALL}")
  mkdir -p "$OUT" && cp "${sent[@]}" "$back/codes.sha256" "$OUT"/ || return 1
  echo "rows in shards: $(in_src 2>/dev/null; python3 -c "from lab.training.corpus.codes_shards import done_ids; from pathlib import Path; print(len(done_ids(Path('$CODES'))))")"
  echo "codes back, call $k of $(( (n + CODES_PARTS_PER_CALL - 1) / CODES_PARTS_PER_CALL )): parts $((first + 1))..$((first + ${#sent[@]})) of $n ($(du -ch "${sent[@]}" | tail -n 1 | cut -f1))$( [ $((first + ${#sent[@]})) = "$n" ] && echo ', last part' || echo "; then: codes_back $((k + 1))")"
}

case "${1:-status}" in
  pack)  # here: carries of < PIECE_MB MB (the tree itself takes ~44 of the 67 MB (64 MiB) a call carries: check before a lease)
    rm -rf $CARRY && mkdir -p $CARRY/c1 $CARRY/big
    exclude="$(git rev-parse --git-common-dir)/info/exclude"  # (.git is a file in a worktree)
    case $CARRY in /*) ;; *) grep -q "^/$CARRY/" "$exclude" || echo "/$CARRY/" >> "$exclude" ;; esac
    for w in $LM_WHEELS; do cp .whl/${w}-*.whl $CARRY/c1/ 2>/dev/null || cp /tmp/pyworld_whl/${w}-*.whl $CARRY/c1/ || exit 1; done
    cp .kokoro_carry/p1/*.whl $CARRY/c1/
    staging=$(mktemp -d) && mkdir -p "$staging/parts" && cp "$PARTS"/*.jsonl "$staging/parts/" && cp -r "$KOKORO_INPUTS" "$staging/kokoro_inputs" \
      && cp "$PHONEMES" "$staging/phonemes.json.gz" && cp -r "${HELDOUT:-data/heldout_v2}" "$staging/heldout" || exit 1
    for k in ${CHUNKS:-$(ls "$CHUNKS_DIR" 2>/dev/null | sed -n 's/^chunk//p' | sort -n)}; do  # the expansion's prepared chunks
      mkdir -p "$staging/chunks" && cp -r "$CHUNKS_DIR/chunk$k" "$staging/chunks/" && echo "chunk $k: $(du -sh "$CHUNKS_DIR/chunk$k" | cut -f1)" || exit 1
    done
    tar -C "$staging" -czf $CARRY/big/inputs.tgz . && rm -rf "$staging" || exit 1
    tar -cf $CARRY/big/debs.tar .corpus_debs
    cat .kokoro_carry/p1/weights.gz.1 .kokoro_carry/p2/weights.gz.2 .kokoro_carry/p3/weights.gz.3 > $CARRY/big/kokoro.safetensors.gz
    if [ -d "$FROZEN" ]; then tar -C "$FROZEN" -cf $CARRY/big/codec.tar . && echo "frozen codec: $FROZEN"; else : > $CARRY/big/codec.tar; fi
    if [ -d "$CODES_BACK/shards" ]; then  # a returned render: the next lease's render resumes from it
      tar -C "$CODES_BACK" -cf $CARRY/big/codes.tar shards && echo "codes: $(ls "$CODES_BACK"/shards | wc -l) shards of $CODES_BACK"
    else : > $CARRY/big/codes.tar; fi
    : > $CARRY/big/chunk_codes.tar
    for back in "$CHUNKS_BACK"*_back; do  # chunks rendered in earlier leases -> $DATA/codes_chunkK/shards there
      k=${back#"$CHUNKS_BACK"}; k=${k%_back}
      [ -d "$back/shards" ] && tar -C "$back" -rf $CARRY/big/chunk_codes.tar --transform "s,^shards,codes_chunk$k/shards," shards \
        && echo "chunk $k codes: $(ls "$back/shards" | wc -l) shards of $back"
    done
    python3 - "$CARRY" "$PIECE_MB" <<'EOF' || exit 1
import sys
from pathlib import Path
carry, limit = Path(sys.argv[1]), int(float(sys.argv[2]) * 1e6)
NAMES = ("inputs.tgz", "debs.tar", "kokoro.safetensors.gz", "codec.tar", "codes.tar", "chunk_codes.tar")
room = {"c1": limit - sum(f.stat().st_size for f in (carry / "c1").iterdir())}
for name in NAMES:  # one stream of pieces, calls filled in order
    data, pos, k = (carry / "big" / name).read_bytes(), 0, 0
    while pos < len(data):
        c = next((c for c, r in room.items() if r > 0), None)
        if c is None:
            c = f"c{len(room) + 1}"
            room[c] = limit
            (carry / c).mkdir()
        take = min(room[c], len(data) - pos)
        (carry / c / f"{name}.part.{k:02d}").write_bytes(data[pos:pos + take])
        room[c] -= take; pos += take; k += 1
    (carry / f"{name}.parts").write_text(str(k))
for c in room:
    for name in NAMES:
        (carry / c / f"{name}.parts").write_text((carry / f"{name}.parts").read_text())
    print(c, round(sum(f.stat().st_size for f in (carry / c).iterdir()) / 1e6, 1), "MB")
print("calls to carry:", len(room))
EOF
    cmp <(cat $CARRY/c*/kokoro.safetensors.gz.part.* | gzip -dc | sha256sum | cut -c1-64) \
      <(python3 -c "import json; print(json.load(open('.kokoro_carry/p1/manifest.json'))['sha256'])") || exit 1
    rm -rf $CARRY/big $CARRY/*.parts ;;
  c1)
    stash c1
    [ -n "${DRY:-}" ] || "${PIP[@]}" "$STASH"/*.whl || exit 1
    touch "$SITE/.codec_v2_ready"  # what lab/scripts/gpu_codec_v2.sh's training steps check: wheels in place
    rm -rf "$SRC" && mkdir -p "$SRC" && cp -r lina lab assets scripts "$SRC"/
    in_src
    python3 -c "import torch, fla, parselmouth, soxr, soundfile; print('torch', torch.__version__, torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no GPU')" || exit 1
    nproc; df -h "$DATA" | tail -1
    # Warm-up: a short run on random codes with the corpus's lengths fills fla's autotune cache meanwhile.
    python3 - "$DATA/warm_codes" <<'EOF' || exit 1
import gzip, json, sys
from pathlib import Path
import numpy as np
out, rng = Path(sys.argv[1]), np.random.default_rng(0)
out.mkdir(parents=True, exist_ok=True)
words = ["the", "voice", "reads", "a", "short", "sentence", "of", "many", "words", "again"]
for split, n in (("train", 4000), ("validation", 200)):
    frames = np.clip(rng.lognormal(np.log(450), 0.5, n), 60, 1500).astype(int)
    rows = [{"id": f"w{i}", "speaker": f"s{i % 50}", "style": "neutral", "offset": int(o), "frames": int(f),
             "text": " ".join(rng.choice(words, max(2, f // 30)))} for i, (o, f) in enumerate(zip(np.cumsum(frames) - frames, frames))]
    np.save(out / f"{split}.codes.npy", rng.integers(0, 4096, int(frames.sum())).astype(np.uint16))
    with gzip.open(out / f"{split}.jsonl.gz", "wt") as f:
        f.write("".join(json.dumps(r) + "\n" for r in rows))
EOF
    [ "${WARM:-1}" = 0 ] || start_lm warm "$DATA/warm_codes" --config mini --steps 400 --max-seconds 420  # WARM=0: a codec lease
    unpack_ready; sleep 10; status ;;
  c[2-9]|c[1-9][0-9])
    stash "$1"; in_src; unpack_ready; status ;;
  wavs)  # audio files for codec v2: formant rows on the CPUs (background), Kokoro on the GPU (foreground, resumes)
    in_src
    [ -d "$DATA/parts" ] && [ -f "$STASH/kokoro.safetensors" ] && [ -d "$DATA/root" ] || { echo "carries missing"; exit 1; }
    pgrep -f '[c]orpus render --manifest' > /dev/null || setsid nohup python3 -m lab.training.corpus render \
      --manifest "$DATA"/parts/formant_{train,validation}.jsonl --out "$DATA/audio" --jobs "${RENDER_JOBS:-10}" \
      > "$DATA/render_formant.log" 2>&1 < /dev/null &
    timeout -k 10 -s INT $(( ${MAX_SECONDS:-480} + 45 )) python3 -m lab.training.corpus.kokoro_render render --inputs "$DATA/kokoro_inputs" \
      --weights "$STASH/kokoro.safetensors" --out "$DATA/audio" --jobs "${KOKORO_JOBS:-6}" --max-seconds "${MAX_SECONDS:-480}" \
      --device "${RENDER_DEVICE:-cuda}" 2>&1 | tee -a "$DATA/render_kokoro.log" | tail -n 3
    tail -n 4 "$DATA/render_formant.log"; echo "wav files: $(find "$DATA/audio" -name '*.wav' | wc -l)" ;;
  codec)  # codec v2 on those files (lab/notes/codec_v2.md): `codec mel SECONDS`, then `codec freeze` ($OUT gets each export)
    in_src
    TRAIN_MANIFESTS="$DATA/parts/formant_train.jsonl $DATA/parts/kokoro_train.jsonl" AUDIO_ROOTS="$DATA/audio" \
      bash lab/scripts/gpu_codec_v2.sh "${2:-mel}" "${3:-420}" ;;
  render)
    in_src
    [ -d "$DATA/parts" ] && [ -f "$STASH/kokoro.safetensors" ] && [ -d "$DATA/root" ] && [ -f "${MANIFESTS[0]}" ] \
      || { echo "carries missing"; exit 1; }
    # The warm-up's checkpoint is worthless: KILL, not TERM (on TERM it finished its step, then ran its end-of-call
    # validation, compiling new shapes, and saved, while this render started). Triton's cache files are renamed
    # into place, so a killed warm-up leaves only whole entries.
    pkill -KILL -f '[l]m train --codes .*warm_codes'
    echo "codec: $CODEC, codes: $CODES"
    # The log goes to /data too. render_codes stops itself: no new rows after MAX_SECONDS, rows in flight get
    # 20 s, the shards are saved, workers killed; its watchdog ends it at MAX_SECONDS + 40 s whatever it is doing.
    # Behind that, timeout's SIGINT at +45 s (save and exit at once; the watchdog 20 s later) and its KILL of the
    # whole group at +70 s: no worker may outlive the call holding the tee pipe open (the first LM v2 render
    # call hung until the device's 600 s). With the default 480 the call ends by ~560 s.
    timeout -k 25 -s INT $(( ${MAX_SECONDS:-480} + 45 )) python3 -m lab.training.corpus.render_codes run --manifest "${MANIFESTS[@]}" \
      --kokoro-inputs "$KOKORO_DIR" --kokoro-weights "$STASH/kokoro.safetensors" --codec "$CODEC" --out "$CODES" \
      --device "${RENDER_DEVICE:-cuda}" --jobs "${RENDER_JOBS:-14}" --max-seconds "${MAX_SECONDS:-480}" 2>&1 \
      | tee -a "$DATA/render_codes.log" | tail -n 12
    total=$(zcat -f "${MANIFESTS[@]}" | wc -l)  # (a chunk's manifest is gzipped)
    done_rows=$(python3 -c "from lab.training.corpus.render_codes import done_ids; from pathlib import Path; print(len(done_ids(Path('$CODES'))))")
    echo "rows done: $done_rows of $total"
    if [ "$done_rows" -ge "$total" ] || [ -n "${FINALIZE_ANYWAY:-}" ]; then
      python3 -m lab.training.corpus.render_codes finalize --manifest "${MANIFESTS[@]}" --codec "$CODEC" \
        --out "$CODES" | tail -n 20 && cp "$DATA/phonemes.json.gz" "$CODES/" && echo "all rows done: codes finalized"
    fi
    # Every render call returns its shards (~34 MB for all rows: one call's $OUT), so a machine given back loses
    # no rendering: here `codes_join FILES_AT`, and the next `pack` carries them. RETURN_CODES=0: not this call.
    [ "${RETURN_CODES:-1}" = 0 ] || send_codes 1 ;;
  codes_back)  # there: the shards back to this machine (render does call 1 itself); `codes_back K` sends call K
    send_codes "${2:-1}" ;;
  codes_join)  # here: codes_join FOLDER... (each codes_back call's files) -> CODES_BACK/shards, checked
    shift; tmp=$(mktemp -d)
    for d in "$@"; do cp "$d"/codes.tar.part* "$d"/codes.sha256 "$tmp"/ || exit 1; done
    (cd "$tmp" && sha256sum -c --quiet codes.sha256) || { echo "parts missing or damaged: $(ls "$tmp")"; exit 1; }
    rm -rf "$CODES_BACK" && mkdir -p "$CODES_BACK" && cat "$tmp"/codes.tar.part* | tar -xf - -C "$CODES_BACK" && rm -rf "$tmp" || exit 1
    python3 -c "
import sys
from pathlib import Path
import numpy as np
from lab.training.corpus.codes_shards import done_ids, shard_files
out = Path(sys.argv[1])
ids = sorted({str(np.load(f)['codes_id']) for f in shard_files(out)})
print(f'{out}: {len(done_ids(out))} rows in {len(shard_files(out))} shards, codes id', *ids)" "$CODES_BACK" || exit 1 ;;
  train)
    t0=$(date +%s); in_src
    codes=$(union_codes) || { echo "no codes: run render (and CHUNK=K render) until it says all rows done"; exit 1; }
    echo "$codes" > "$DATA/train_codes" && echo "training on $codes: $(zcat "$codes/train.jsonl.gz" | wc -l) train rows"
    for r in "${LM_RUNS[@]}"; do
      start_lm "${r%%:*}_${r##*:}" "$codes" --text-frontend "${r%%:*}" --config "${r##*:}" --steps "${AB_STEPS:-3000}" \
        --max-seconds "${AB_SECONDS:-780}"
    done
    # Meanwhile (PROFILE_GAN=0 skips it): where the codec GAN step spends its time, ~1 min shared with the LMs.
    if [ "${PROFILE_GAN:-1}" = 1 ] && [ -d "$DATA/codec_frozen" ]; then
      timeout 240 python3 lab/scripts/codec_gan_profile.py --device cuda --init "$DATA/codec_frozen" --steps 5 2>&1 | tail -n 16
    fi
    sleep $(( ${CALL_SECONDS:-570} - ($(date +%s) - t0) )); status ;;  # keep the call (and the machine) busy
  finish)  # the runs stop themselves at AB_SECONDS; past FINISH_DEADLINE s they are told to save and stop
    t0=$(date +%s)
    while pgrep -f "[l]ab.training.lm train --codes $CODES" > /dev/null; do
      [ $(( $(date +%s) - t0 )) -gt "${FINISH_DEADLINE:-500}" ] && pkill -TERM -f "[l]ab.training.lm train --codes $CODES"
      sleep 3
    done
    in_src; rm -rf "$DATA/ret" && mkdir -p "$DATA/ret"
    # $OUT takes 64 MiB: mini (24 MB fp16) and small (49 MB) go back in two calls: SHIP=phonemes_small finish again.
    for fe in ${SHIP:-${RUN_NAMES[@]}}; do
      tail -n 2 "$DATA/lm_$fe.log" | cut -c1-300
      python3 -m lab.training.lm shard --run "$DATA/run_$fe" --out "$DATA/ret/ckpt_$fe" --weights-only --half --with-log > /dev/null
    done
    cp "$(cat "$DATA/train_codes" 2>/dev/null || echo "$CODES")/summary.json" "$DATA"/lm_*.log "$DATA/ret/"
    tar -C "$DATA" -cf - ret | split -b 15m -d - "$OUT/lmv2.tar.part"  # $OUT takes 8 files of 16 MiB
    ls -la "$OUT"; cat "$DATA/ret/summary.json" ;;
  union)  # which codes folder `train` would use (merging v2's and the chunks' finalized folders into codes_all)
    union_codes ;;
  status)
    sleep "${WAIT:-0}"; status ;;
  *)
    sed -n '2,30p' "$0"; exit 2 ;;
esac
