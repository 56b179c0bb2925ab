#!/usr/bin/env python3
"""Compares two (or more) evaluations of one test list: which text front end reads better.

    python3 lab/scripts/frontend_ab.py out/ab/eval-bpe/results.json out/ab/eval-phonemes/results.json \
        --labels bpe,phonemes --train-manifest data/codes/train.jsonl.gz --out out/ab/frontend_ab.md

Each ``results.json`` is `python -m lab.evaluate`'s on the same list with the same seed; utterances are
paired by id (the case ``--case``, default ``plain``). Per model, on the normalized texts of the scorer
(`lab.eval.scoring`):
  * WER and CER (corpus level, as lab.evaluate);
  * start WER: edits on the first ``START_WORDS`` words of each sentence / those words (lina-mini v1 is
    worst at sentence starts);
  * unseen-word errors: the share of reference words absent from the training texts (``--train-manifest``)
    that were substituted or deleted;
  * runaways and empty outputs;
and, against the first model, the corpus WER difference with a paired bootstrap 95 % interval over
utterances and the number of utterances with fewer / more word errors.
"""
from __future__ import annotations

import argparse
import gzip
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from lab.eval.scoring import cer, normalize_for_scoring  # noqa: E402

START_WORDS = 3
BOOTSTRAP = 2000
BOOTSTRAP_SEED = 0


def word_edits(ref: str, hyp: str) -> tuple[list[int], list[bool], int]:
    """``(edits per reference word position, misread per position, insertions past the last word)``.

    On normalized texts. A substitution or deletion counts at its reference word (which is then misread),
    an insertion at the word it comes before. The edits and the tail add up to jiwer's S + D + I.
    """
    import jiwer

    words = ref.split()
    edits, wrong, tail = [0] * len(words), [False] * len(words), 0
    for chunk in jiwer.process_words(ref, hyp or "").alignments[0]:
        if chunk.type in ("substitute", "delete"):
            for k in range(chunk.ref_start_idx, chunk.ref_end_idx):
                edits[k] += 1
                wrong[k] = True
        elif chunk.type == "insert":
            n = chunk.hyp_end_idx - chunk.hyp_start_idx
            if chunk.ref_start_idx < len(words):
                edits[chunk.ref_start_idx] += n
            else:
                tail += n
    return edits, wrong, tail


def training_words(manifest: Path) -> set[str]:
    with gzip.open(manifest, "rt", encoding="utf-8") as f:
        return {w for line in f if line.strip() for w in normalize_for_scoring(json.loads(line)["text"]).split()}


def load_items(path: Path, case: str) -> dict[str, dict]:
    data = json.loads(path.read_text())
    items = {i["utterance"]: i for i in data["items"] if i["case"] == case}
    if not items:
        raise SystemExit(f"{path}: no item of case {case!r}")
    return items


def score(items: dict[str, dict], ids: list[str], seen: set[str] | None) -> dict:
    """Metrics of one model on the utterances ``ids`` (all transcribed)."""
    per_utt, words, start_edits, start_words, unseen, unseen_wrong = [], 0, 0, 0, 0, 0
    for u in ids:
        ref, hyp = normalize_for_scoring(items[u]["text"]), normalize_for_scoring(items[u]["transcript"] or "")
        edits, wrong, tail = word_edits(ref, hyp)
        per_utt.append(sum(edits) + tail)
        words += len(edits)
        start_edits += sum(edits[:START_WORDS])
        start_words += min(START_WORDS, len(edits))
        if seen is not None:
            new = [k for k, w in enumerate(ref.split()) if w not in seen]
            unseen += len(new)
            unseen_wrong += sum(wrong[k] for k in new)
    texts = [items[u]["text"] for u in ids]
    return {"n": len(ids), "words": words, "edits": np.asarray(per_utt), "wer": sum(per_utt) / max(words, 1),
            "cer": cer(texts, [items[u]["transcript"] or "" for u in ids]),
            "start_wer": start_edits / max(start_words, 1),
            "unseen_words": unseen if seen is not None else None,
            "unseen_error": unseen_wrong / unseen if seen is not None and unseen else None,
            "runaway": np.mean([bool(items[u].get("runaway")) for u in ids]),
            "empty": np.mean([bool(items[u].get("silent")) for u in ids])}


def paired_bootstrap(a: np.ndarray, b: np.ndarray, words: np.ndarray, seed: int = BOOTSTRAP_SEED) -> tuple[float, float]:
    """95 % interval of corpus WER(b) - WER(a) over utterances resampled with replacement."""
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(a), size=(BOOTSTRAP, len(a)))
    diffs = (b[picks].sum(1) - a[picks].sum(1)) / np.maximum(words[picks].sum(1), 1)
    low, high = np.percentile(diffs, [2.5, 97.5])
    return float(low), float(high)


def compare(results: list[Path], labels: list[str], case: str, manifest: Path | None) -> str:
    models = [load_items(p, case) for p in results]
    ids = sorted(set.intersection(*(set(m) for m in models)))
    ids = [u for u in ids if all(m[u].get("transcript") is not None for m in models)]
    if not ids:
        raise SystemExit("no utterance transcribed in every results.json")
    seen = training_words(manifest) if manifest else None
    scores = [score(m, ids, seen) for m in models]
    words = np.asarray([len(normalize_for_scoring(models[0][u]["text"]).split()) for u in ids])
    lines = [f"Case `{case}`, {len(ids)} utterances paired by id, {int(words.sum())} reference words"
             + (f", {scores[0]['unseen_words']} of them unseen in training" if seen is not None else "") + ".", "",
             "| model | WER | CER | start WER (first 3 words) | unseen-word errors | runaway | empty "
             "| WER - first (95 % CI) | fewer / more errors |", "|---|---|---|---|---|---|---|---|---|"]
    for label, s in zip(labels, scores):
        if s is scores[0]:
            diff, better = "", ""
        else:
            low, high = paired_bootstrap(scores[0]["edits"], s["edits"], words)
            diff = f"{s['wer'] - scores[0]['wer']:+.3f} ({low:+.3f} .. {high:+.3f})"
            better = f"{int((s['edits'] < scores[0]['edits']).sum())} / {int((s['edits'] > scores[0]['edits']).sum())}"
        unseen = "n/a" if s["unseen_error"] is None else f"{s['unseen_error']:.3f}"
        lines.append(f"| {label} | {s['wer']:.3f} | {s['cer']:.3f} | {s['start_wer']:.3f} | {unseen} | "
                     f"{s['runaway']:.1%} | {s['empty']:.1%} | {diff} | {better} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", type=Path, nargs="+", help="results.json of lab.evaluate, the baseline first")
    parser.add_argument("--labels", help="comma-separated names (default: the results' parent folders)")
    parser.add_argument("--case", default="plain")
    parser.add_argument("--train-manifest", type=Path, help="train.jsonl.gz of the codes: for unseen-word errors")
    parser.add_argument("--out", type=Path, help="also write the table here (markdown)")
    args = parser.parse_args(argv)
    labels = args.labels.split(",") if args.labels else [p.parent.name for p in args.results]
    if len(labels) != len(args.results):
        parser.error(f"{len(labels)} labels for {len(args.results)} results")
    table = compare(args.results, labels, args.case, args.train_manifest)
    print(table, end="")
    if args.out:
        args.out.write_text(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
