#!/usr/bin/env bash
# One GPU call of lina-mini training (lab/training/lm): train within a time budget, then copy to $OUT
# what the files-back limits allow (8 files, 16 MiB each, 64 MiB in all).
#
#   LM_CODES=data/codes       codes folder ({split}.jsonl.gz + {split}.codes.npy; carry it, without codec/)
#   LM_RUN=out/lm-run          run folder; out/ is ignored, so it stays on a warm machine between calls
#                              and a second call continues the run exactly (same data order, optimizer)
#   LM_SECONDS=480             training budget of this call, validation and checkpoint included
#   LM_ARGS="--steps 20000"    more train options (only on the first call of a run: a rerun reuses them)
#   LM_RESUME=DIR              continue from a copied full shard folder (fresh machine; small models only)
#   LM_FULL_CKPT=0             $OUT/ckpt: fp16 weights only (export reads them); 1: the resumable state
#   LM_CONFIG=mini             model preset (tiny: a smoke test)
#   LM_FRONTEND=bpe            what the model reads: bpe or phonemes (the codes folder must then hold
#                              phonemes.json.gz: `python3 -m lab.training.lm phonemize --codes DIR` here,
#                              the GPU host has no gruut; docs/text_frontend.md)
#   LM_WHEELS=1                install .whl/*.whl (cp312) into /tmp/site first (0: a local CPU try)
#
# $OUT gets: log.jsonl, curves.png, ckpt/ (state.json + <= 15 MiB safetensors files). Export here with
#   python -m lab.training.lm export --run <fetched ckpt> --codec DIR/codec --out assets/lina-mini
# A full resumable checkpoint (weights + AdamW moments, 12 bytes a parameter) of mini is about 143 MB:
# too big for $OUT; it lives in LM_RUN on the machine while it stays warm.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-out/gpu}
LM_CODES=${LM_CODES:-data/codes}
LM_RUN=${LM_RUN:-out/lm-run}
LM_SECONDS=${LM_SECONDS:-480}
LM_FULL_CKPT=${LM_FULL_CKPT:-0}
LM_CONFIG=${LM_CONFIG:-mini}
LM_FRONTEND=${LM_FRONTEND:-bpe}
mkdir -p "$OUT" "$LM_RUN"
export PYTHONUNBUFFERED=1 PYTHONPATH=.
if [[ "${LM_WHEELS:-1}" == 1 ]] && compgen -G ".whl/*.whl" >/dev/null; then  # fla, num2words: no index there
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site:.
fi
python3 -c "import torch; from lina.ops.dispatch import fla_available as f; c = torch.cuda.is_available(); print(torch.__version__, torch.cuda.get_device_name() if c else 'no CUDA', 'fla', f())"

resume=()
if [[ -n "${LM_RESUME:-}" && ! -f "$LM_RUN/last.pt" ]]; then resume=(--resume-from "$LM_RESUME"); fi
# shellcheck disable=SC2086  # LM_ARGS is a list of options
python3 -m lab.training.lm train --codes "$LM_CODES" --run "$LM_RUN" --max-seconds "$LM_SECONDS" \
    "${resume[@]}" ${LM_ARGS:-} --config "$LM_CONFIG" --text-frontend "$LM_FRONTEND" | tee "$OUT/result.json"

cp "$LM_RUN/log.jsonl" "$OUT/log.jsonl"
python3 -m lab.training.lm curves --run "$LM_RUN" --out "$OUT/curves.png"
if [[ "$LM_FULL_CKPT" == 1 ]]; then
    python3 -m lab.training.lm shard --run "$LM_RUN" --out "$OUT/ckpt" --with-log
else
    python3 -m lab.training.lm shard --run "$LM_RUN" --out "$OUT/ckpt" --weights-only --half
fi
ls -la "$OUT" "$OUT/ckpt"
tail -n 3 "$OUT/log.jsonl"
