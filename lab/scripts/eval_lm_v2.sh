#!/usr/bin/env bash
# Held-out comparison of LM candidates against the shipped lina-mini v1, in one command:
#
#   bash lab/scripts/eval_lm_v2.sh MODEL_DIR[=NAME] ...          e.g. out/lm_v2/bpe=bpe out/lm_v2/phonemes=ph
#
# Each model (and v1 = assets/lina-mini, first) is evaluated with `python -m lab.evaluate` on the corpus v2
# test list (data/testlist_v2/testlist.json: 8 unseen speakers of 5 engines, 6 sentences each that neither
# v1 nor v2 trained on; built by lab/scripts/corpus_testlist.py, see the reports in lab/notes/) into data/eval_NAME/,
# cases reference (the corpus audio itself: the ASR floor), plain (no voice) and prompt (the first enrollment
# clip as audio prompt), metrics Whisper tiny.en WER and resemblyzer speaker similarity, seed 0, 1 torch thread.
# Then one table per case (lab/scripts/frontend_ab.py: WER, CER, start WER, runaway, empty, paired bootstrap of
# the WER difference to v1) and a summary of lab.evaluate's own numbers (similarity included).
#
# A results.json is reused when it is newer than its model folder's files and the test list (v1's baseline is
# precomputed in data/eval_v1/), so rerunning after one more export evaluates only what changed.
# Options (before the models):
#   --max-utterances N   sentences per speaker (quick check; outputs go to data/eval_NAME_maxN/)
#   --max-speakers N     first N speakers only (outputs get _spkN)
#   --device D           torch device (default cpu; outputs get _D unless cpu)
#   --asr NAME           the recognizer (tiny.en, default; base: fewer errors of its own; outputs get _asrNAME)
#   --force              evaluate again even when a results.json is up to date
# Env: TESTLIST, BASELINE (default assets/lina-mini), TRAIN_MANIFEST (codes train.jsonl.gz: unseen-word errors).
set -euo pipefail
cd "$(dirname "$0")/../.."
TESTLIST=${TESTLIST:-data/testlist_v2/testlist.json}
BASELINE=${BASELINE:-assets/lina-mini}
CASES=reference,plain,prompt
METRICS=asr,speaker
SEED=0

extra=() suffix="" force=0
while [ $# -gt 0 ]; do
  case "$1" in
    --max-utterances) extra+=(--max-utterances "$2"); suffix+="_max$2"; shift 2 ;;
    --max-speakers) extra+=(--max-speakers "$2"); suffix+="_spk$2"; shift 2 ;;
    --device) extra+=(--device "$2"); [ "$2" = cpu ] || suffix+="_$2"; shift 2 ;;
    --asr) extra+=(--asr "$2"); [ "$2" = tiny.en ] || suffix+="_asr$2"; shift 2 ;;
    --force) force=1; shift ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    --*) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
    *) break ;;
  esac
done
# No model: v1 alone (its baseline tables).
[ -f "$TESTLIST" ] || { echo "no test list at $TESTLIST (build it: see lab/scripts/corpus_testlist.py)" >&2; exit 2; }

names=() results=()
evaluate() {  # $1: model folder, $2: name -> data/eval_NAME$suffix/results.json
  local dir=$1 name=$2 out="data/eval_$2$suffix" t0
  [ -d "$dir" ] || { echo "no model folder at $dir" >&2; exit 2; }
  if [ $force = 0 ] && [ -f "$out/results.json" ] && [ ! "$TESTLIST" -nt "$out/results.json" ] \
      && [ -z "$(find -L "$dir" -type f -newer "$out/results.json" -print -quit)" ]; then
    echo "== $name: $out/results.json is up to date (--force to redo)" >&2
  else
    echo "== $name: evaluating $dir -> $out ($(date -u +%H:%M:%S) UTC)" >&2
    t0=$(date +%s)
    mkdir -p "$out"
    python3 -m lab.evaluate --model "$dir" --testlist "$TESTLIST" --out "$out" --cases $CASES \
      --metrics $METRICS --seed $SEED "${extra[@]}" > "$out/eval.log" 2>&1 \
      || { echo "lab.evaluate failed for $name; the end of $out/eval.log:" >&2; tail -n 20 "$out/eval.log" >&2; exit 1; }
    echo "== $name: done in $(( $(date +%s) - t0 )) s" >&2
  fi
  names+=("$name"); results+=("$out/results.json")
}

evaluate "$BASELINE" v1
for arg in "$@"; do
  dir=${arg%%=*}; name=$(basename "$dir"); [ "$arg" != "$dir" ] && name=${arg#*=}
  [ "$name" != v1 ] || { echo "the name v1 is the baseline's; give another (DIR=NAME)" >&2; exit 2; }
  evaluate "$dir" "$name"
done

labels=$(IFS=,; echo "${names[*]}")
report="data/eval_lm_v2${suffix}.md"
{
  echo "# LM v2 candidates vs lina-mini v1 ($(date -u +%F\ %H:%M) UTC)"
  echo
  echo "Test list: $TESTLIST; cases $CASES, seed $SEED${extra[*]:+, ${extra[*]}}."
  for case in plain prompt; do
    echo
    echo "## $case"
    echo
    python3 lab/scripts/frontend_ab.py "${results[@]}" --labels "$labels" --case $case \
      ${TRAIN_MANIFEST:+--train-manifest "$TRAIN_MANIFEST"}
  done
  echo
  echo "## lab.evaluate summaries"
  echo
  python3 - "$labels" "${results[@]}" <<'EOF'
import json, sys

labels, paths = sys.argv[1].split(","), sys.argv[2:]
cell = lambda v, f="{:.3f}": "-" if v is None else f.format(v)  # noqa: E731
print("| model | case | n | WER | CER | speaker sim | runaway | empty |")
print("|---|---|---|---|---|---|---|---|")
for label, path in zip(labels, paths):
    summary = json.load(open(path))["summary"]
    for case in ("reference", "plain", "prompt"):
        if case == "reference" and label != labels[0]:
            continue  # the corpus audio: the same for every model
        s = summary.get(case)
        if s:
            print(f"| {label if case != 'reference' else 'corpus audio'} | {case} | {s['n']} | {cell(s['wer'])} | "
                  f"{cell(s['cer'])} | {cell(s['similarity'])} | {cell(s['runaway'], '{:.1%}')} | "
                  f"{cell(s['empty'], '{:.1%}')} |")
    if "plain" in summary and "prompt" in summary and summary["plain"]["similarity"] is not None:
        gain = summary["prompt"]["similarity"] - summary["plain"]["similarity"]
        print(f"| {label} | prompt - plain sim | | | | {gain:+.3f} | | |")

# Per engine (the ASR floor differs a lot between engines: see the corpus audio's row).
from lab.eval.scoring import wer  # noqa: E402

engine = lambda item: item["speaker"].split("-")[0]  # noqa: E731
runs = [json.load(open(p))["items"] for p in paths]
engines = sorted({engine(i) for i in runs[0]})
print("\n| WER per engine | " + " | ".join(engines) + " |")
print("|---|" + "---|" * len(engines))
rows = [("corpus audio", runs[0], "reference")] + [(f"{l} {c}", r, c) for c in ("plain", "prompt")
                                                    for l, r in zip(labels, runs)]
for name, items, case in rows:
    cells = []
    for e in engines:
        got = [i for i in items if i["case"] == case and engine(i) == e and i["transcript"] is not None]
        cells.append(f"{wer([i['text'] for i in got], [i['transcript'] for i in got]):.3f}" if got else "-")
    print(f"| {name} | " + " | ".join(cells) + " |")
EOF
} | tee "$report"
echo "(written to $report; audio under data/eval_NAME$suffix/audio/)" >&2
