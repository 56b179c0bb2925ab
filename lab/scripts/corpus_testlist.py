#!/usr/bin/env python3
"""A lina-testlist of the corpus test split (unseen speakers, unseen sentences), rendered here.

    python3 lab/scripts/corpus_testlist.py --manifest data/corpus/test.jsonl --out data/testlist \
        --speakers 6 --tests 3 --enroll-seconds 60

Picks ``--speakers`` test speakers (one engine after another, so every engine family is in), for each
its first ``--tests`` neutral rows as test sentences and further rows (any style) up to
``--enroll-seconds`` as enrollment clips; renders those rows with the corpus engines into
``OUT/wav/`` (deterministic from each row's seed) and writes ``OUT/testlist.json`` for
``python -m lab.evaluate --testlist OUT/testlist.json``.

``--exclude`` (manifests, repeatable) keeps sentences some model trained on out of the test sentences:
a row whose normalized text appears in one of them may still be an enrollment clip, never a test.
``--reuse`` (folders with ``wav/SPEAKER/ID.wav``) copies clips rendered before instead of rendering.
"""
from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from lab.eval.scoring import normalize_for_scoring  # noqa: E402
from lab.eval.testlist import TestList, from_rows  # noqa: E402
from lab.training.corpus.generate import SAMPLE_RATE, audio_path, render_row  # noqa: E402
from lab.training.corpus.manifest import read_jsonl  # noqa: E402


def pick_speakers(rows: list[dict], count: int) -> list[str]:
    """Round-robin over engines, speakers in id order within each."""
    by_engine: dict[str, list[str]] = {}
    for r in sorted(rows, key=lambda r: r["speaker"]):
        names = by_engine.setdefault(r["engine"], [])
        if r["speaker"] not in names:
            names.append(r["speaker"])
    chosen: list[str] = []
    while len(chosen) < count and any(by_engine.values()):
        for names in by_engine.values():
            if names and len(chosen) < count:
                chosen.append(names.pop(0))
    return chosen


def seen_texts(manifests: list[Path]) -> set[str]:
    """Normalized texts of every row of these manifests (sentences a model trained on)."""
    return {normalize_for_scoring(r["text"]) for m in manifests for r in read_jsonl(m)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--manifest", default="data/corpus/test.jsonl")
    p.add_argument("--out", default="data/testlist")
    p.add_argument("--speakers", type=int, default=6)
    p.add_argument("--tests", type=int, default=3)
    p.add_argument("--enroll-seconds", type=float, default=60.0)
    p.add_argument("--exclude", type=Path, action="append", default=[],
                   help="manifest whose sentences must not be test sentences (repeatable)")
    p.add_argument("--reuse", type=Path, action="append", default=[],
                   help="folder with wav/SPEAKER/ID.wav rendered before (repeatable)")
    p.add_argument("--name", default="corpus-test")
    args = p.parse_args()
    rows = [r for r in read_jsonl(Path(args.manifest)) if r["split"] == "test"]
    speakers = pick_speakers(rows, args.speakers)
    chosen = [r for r in rows if r["speaker"] in speakers]
    out = Path(args.out)
    seen = seen_texts(args.exclude)
    fresh = [r for r in chosen if normalize_for_scoring(r["text"]) not in seen]
    rel = lambda r: audio_path(Path("."), r)  # noqa: E731
    # Tests first (unseen sentences only), then enrollment from every other row of the speaker.
    tests_only = from_rows(args.name, fresh, rel, tests_per_speaker=args.tests, enroll_seconds=0.0, root=out)
    test_ids = {u.id for u in tests_only.utterances}
    enroll = from_rows(args.name, [r for r in chosen if r["id"] not in test_ids], rel, tests_per_speaker=0,
                       enroll_seconds=args.enroll_seconds, root=out)
    excluded = f", sentences of {len(args.exclude)} training manifests excluded from the tests" if args.exclude else ""
    tests = TestList(args.name, tests_only.utterances + enroll.utterances,
                     f"corpus test split: {len(speakers)} unseen speakers ({', '.join(speakers)}), "
                     f"{args.tests} unseen sentences each, enrollment up to {args.enroll_seconds:.0f} s{excluded}",
                     out)
    by_id = {r["id"]: r for r in chosen}
    for utt in tests.utterances:
        path = audio_path(out, by_id[utt.id])
        if path.exists():
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        rendered = [audio_path(d, by_id[utt.id]) for d in args.reuse]
        rendered = [q for q in rendered if q.exists()]
        if rendered:
            shutil.copyfile(rendered[0], path)
        else:
            sf.write(str(path), render_row(by_id[utt.id]), SAMPLE_RATE, subtype="PCM_16")
    tests.save(out / "testlist.json")
    roles = [u.role for u in tests.utterances]
    print(f"{out / 'testlist.json'}: {len(speakers)} speakers, {roles.count('test')} test, "
          f"{roles.count('enroll')} enrollment clips; {len(chosen) - len(fresh)} of {len(chosen)} rows "
          f"had a training sentence")
    return 0


if __name__ == "__main__":
    sys.exit(main())
