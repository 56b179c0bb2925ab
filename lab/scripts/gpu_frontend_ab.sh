#!/usr/bin/env bash
# BPE vs phonemes (docs/text_frontend.md): two LMs trained side by side on one GPU, on the same
# codes with the same settings and steps (the batches depend on the codes' lengths only, so both runs
# see the same utterances in the same order); only --text-frontend differs. One phase per device call;
# /data and setsid processes outlive a call while the machine is held (it goes back 30 s after a call
# ends: keep a `wait` in flight while training runs).
#   start   carry .whl_lm .src .carry_codes: install fla, unpack AB_CODES (default .carry_codes/codes_ab.tgz:
#           a tar of ONE codes folder that holds phonemes.json.gz, see below), start
#           both runs for AB_STEPS (default 3000: lina-mini v1's validation loss was lowest near 2,400-3,000)
#           within AB_SECONDS (1320: the machine is held 30 min at most), AB_PAIRS (0.3) extra two-sentence
#           rows, AB_CONFIG (mini), AB_ARGS (more train options, both runs). Alone, mini trained at
#           6.4 steps/s after ~5 min of fla compilation (H100); two side by side share the GPU.
#   wait    sleep WAIT seconds (default 480), then show both logs and the GPU use
#   finish  wait for both runs to end; $OUT/ckpt_bpe, $OUT/ckpt_phonemes: fp16 weight shards + log.jsonl
#           (8 files, ~48 MB for mini: what one call can send back)
# Prepare here (the GPU host has no gruut: the phoneme run reads the phonemes computed here):
#   python3 -m lab.training.lm phonemize --codes data/codes      # writes data/codes/phonemes.json.gz
#   mkdir -p .carry_codes && tar -C data -czf .carry_codes/codes_ab.tgz codes
#   git archive HEAD lina lab | gzip > .src/src.tgz
# Then here, on the fetched shards (lab/scripts/frontend_ab.py compares the two evaluations):
#   python3 -m lab.training.lm export --run ckpt_bpe --codec assets/lina-mini/codec --out out/ab/bpe --name lina-ab-bpe
#   python3 -m lab.training.lm export --run ckpt_phonemes --codec assets/lina-mini/codec --out out/ab/phonemes --name lina-ab-phonemes
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-out}; DATA=${DATA:-/data}; mkdir -p "$OUT" "$DATA"  # DATA: another folder for a local try
FRONTENDS=(bpe phonemes)
if [[ "${1:-}" == start || ! -d "$DATA"/src ]]; then
  rm -rf "$DATA"/src && mkdir -p "$DATA"/src && tar -xzf .src/src.tgz -C "$DATA"/src && cp -r assets "$DATA"/src/assets || exit 1
fi
cd "$DATA"/src || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
if [[ ! -d /tmp/site ]] && compgen -G "$OLDPWD/.whl_lm/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site "$OLDPWD"/.whl_lm/*.whl
fi
if [[ ! -d "$DATA"/ab_codes && "${1:-}" == start ]]; then
  rm -rf "$DATA"/ab_unpack && mkdir -p "$DATA"/ab_unpack && tar -xzf "$OLDPWD/${AB_CODES:-.carry_codes/codes_ab.tgz}" -C "$DATA"/ab_unpack || exit 1
  mv "$DATA"/ab_unpack/* "$DATA"/ab_codes && rmdir "$DATA"/ab_unpack || exit 1
  [[ -f "$DATA"/ab_codes/phonemes.json.gz ]] || { echo "no phonemes.json.gz in the codes: run 'python3 -m lab.training.lm phonemize' here first"; exit 1; }
fi
case "${1:-}" in
  start)
    rm -rf "$DATA"/ab_bpe "$DATA"/ab_phonemes
    for fe in "${FRONTENDS[@]}"; do
      # shellcheck disable=SC2086  # AB_ARGS is a list of options
      setsid nohup python3 -m lab.training.lm train --codes "$DATA"/ab_codes --run "$DATA/ab_$fe" --text-frontend "$fe" \
        --config "${AB_CONFIG:-mini}" --steps "${AB_STEPS:-3000}" --warmup 150 --val-every 600 --val-batches 10 \
        --no-initial-val --pair-fraction "${AB_PAIRS:-0.3}" --max-seconds "${AB_SECONDS:-1320}" ${AB_ARGS:-} \
        > "$DATA/ab_$fe.log" 2>&1 < /dev/null &
    done
    sleep "${WAIT:-60}"; for fe in "${FRONTENDS[@]}"; do echo "== $fe"; tail -n 4 "$DATA/ab_$fe.log"; done ;;
  wait)
    sleep "${WAIT:-480}"
    for fe in "${FRONTENDS[@]}"; do echo "== $fe"; tail -n 2 "$DATA/ab_$fe.log"; tail -n 2 "$DATA/ab_$fe/log.jsonl"; done
    nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader ;;
  finish)
    while pgrep -f "[l]ab.training.lm train --codes $DATA/ab_codes" >/dev/null; do sleep 3; done
    for fe in "${FRONTENDS[@]}"; do
      echo "== $fe"; tail -n 3 "$DATA/ab_$fe.log"
      python3 -m lab.training.lm shard --run "$DATA/ab_$fe" --out "$OUT/ckpt_$fe" --weights-only --half --with-log
    done
    ls -la "$OUT"/ckpt_*
    # The comparison holds at equal steps: a run stopped by AB_SECONDS first is named here.
    python3 -c "import json, sys; s = [json.loads(open(f'$DATA/ab_{fe}/log.jsonl').read().splitlines()[-1])['step'] for fe in ('bpe', 'phonemes')]; print('steps: bpe', s[0], 'phonemes', s[1], '' if s[0] == s[1] else '(NOT EQUAL: compare at equal steps or rerun)')" ;;
  *) echo "usage: $0 start|wait|finish"; exit 2 ;;
esac
