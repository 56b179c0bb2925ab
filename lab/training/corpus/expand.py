"""More rows for the voices a corpus already has: an expansion in ordered chunks, each rendered in one GPU call.

The base corpus (a `build` folder: ``{split}.jsonl`` + ``speakers.json``) fixes everything but the sentences:
- speakers: the base's speakers of one engine (default Kokoro) with their exact recipes (the rows' ``spk``)
  and their train/test split; test speakers get no row at all, train speakers get train and validation rows;
- hours per speaker and styles: each speaker keeps its share of the engine's hours in that split and reads
  the styles it read there (styled speakers: every sentence in all six), so the style mix stays the base's;
- sentences: train rows from the train sentence pool, validation rows from the validation pool (the base's
  `split_sentences`, same seed), never a test sentence. The least-read sentences come first: those the base
  never used, then those only other engines read, then those this engine read, each time by a speaker that
  has not read it yet; a new round starts when every sentence of the pool is taken;
- chunks: chunk k holds ``chunk_hours`` (the last one the rest), split into train and validation by
  ``validation_fraction``; speakers take sentences in turn, so every chunk is a balanced slice;
- ids: ``{speaker}_{style}_{tag}{split[:2]}{n:05d}`` (base ids have no tag), each row's seed from its id.

    python -m lab.training.corpus.expand --base data/corpus_v2_80h --out data/v3_kokoro_parts --hours 60 \\
        --chunk-hours 20 --testlist data/testlist_v2/testlist.json
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from .manifest import RECIPES, estimate_duration, read_jsonl, split_sentences, stable_hash, utterance_seed, write_jsonl
from .styles import STYLES
from .texts import Sentence

ROW_SPLITS = ("train", "validation")  # an expansion adds no test rows: the test split stays the base's


@dataclass(frozen=True)
class ExpandConfig:
    hours: float = 60.0
    chunk_hours: float = 20.0
    validation_fraction: float = 0.03  # of each chunk's hours (the base recipes' validation share)
    seed: int = 0  # the base's seed: it fixes the sentence pools; the expansion's order depends on it too
    engine: str = "kokoro"
    tag: str = "x"  # in every new id; base ids have none, so they cannot collide

    def chunk_seconds(self) -> list[float]:
        """Seconds of each chunk: full chunks of ``chunk_hours``, then the rest (``[n_chunks]``)."""
        n = max(1, math.ceil(self.hours / self.chunk_hours - 1e-9))
        return [3600 * min(self.chunk_hours, self.hours - k * self.chunk_hours) for k in range(n)]


def speaker_plan(base_rows: list[dict], engine: str, split: str) -> dict[str, dict]:
    """Speakers of `engine` in the base's `split`: ``{id: {"share", "styles", "spk"}}`` in first-row order,
    share = the speaker's fraction of the engine's seconds there, styles in `STYLES` order."""
    seconds: dict[str, float] = defaultdict(float)
    styles: dict[str, set] = defaultdict(set)
    spk: dict[str, dict] = {}
    for r in base_rows:
        if r["engine"] == engine and r["split"] == split:
            seconds[r["speaker"]] += r["duration"]
            styles[r["speaker"]].add(r["style"])
            spk.setdefault(r["speaker"], r["spk"])
    total = sum(seconds.values()) or 1.0
    return {s: {"share": seconds[s] / total, "styles": [st for st in STYLES if st in styles[s]], "spk": spk[s]}
            for s in spk}


class SentenceQueue:
    """A split's sentences, least-read first (by this engine, then by any engine, then a seeded hash), handed
    to speakers that have not read them; `readers` holds who read what (the base's rows and the new ones)."""

    def __init__(self, pool: list[Sentence], readers: dict[str, set], engine_reads: dict[str, int], seed: int,
                 split: str):
        self.pool, self.readers, self.engine_reads, self.seed, self.split = pool, readers, engine_reads, seed, split
        self.round = -1
        self.fresh = sum(1 for s in pool if not readers.get(s.id))  # never read before the expansion
        self._new_round()

    def _new_round(self) -> None:
        self.round += 1
        self.order = sorted(self.pool, key=lambda s: (self.engine_reads.get(s.id, 0), len(self.readers.get(s.id, ())),
                                                      stable_hash("expand", self.seed, self.split, self.round, s.id)))
        self.taken = [False] * len(self.order)
        self.head = 0

    def take(self, speaker: str) -> Sentence:
        """The first sentence not taken this round that `speaker` has not read (a new round when none is left)."""
        for attempt in range(2):
            while self.head < len(self.order) and self.taken[self.head]:
                self.head += 1
            for j in range(self.head, len(self.order)):
                sent = self.order[j]
                if not self.taken[j] and speaker not in self.readers.get(sent.id, ()):
                    self.taken[j] = True
                    self.readers.setdefault(sent.id, set()).add(speaker)
                    self.engine_reads[sent.id] = self.engine_reads.get(sent.id, 0) + 1
                    return sent
            if attempt == 0:
                self._new_round()
        raise ValueError(f"{speaker} has read every {self.split} sentence: the pool is too small for these hours")


def expand_rows(base_rows: list[dict], pools: dict[str, list[Sentence]], cfg: ExpandConfig) -> list[dict]:
    """The new rows, chunk by chunk (train then validation in each), each with its ``chunk`` (1-based)."""
    readers: dict[str, set] = defaultdict(set)
    engine_reads: dict[str, int] = defaultdict(int)
    counters: dict[tuple[str, str], int] = defaultdict(int)
    for r in base_rows:
        readers[r["sentence"]].add(r["speaker"])
        if r["engine"] == cfg.engine:
            engine_reads[r["sentence"]] += 1
    plans = {split: speaker_plan(base_rows, cfg.engine, split) for split in ROW_SPLITS}
    queues = {split: SentenceQueue(pools[split], readers, engine_reads, cfg.seed, split) for split in ROW_SPLITS}
    fractions = {"train": 1 - cfg.validation_fraction, "validation": cfg.validation_fraction}
    rows: list[dict] = []
    for k, chunk_s in enumerate(cfg.chunk_seconds(), start=1):
        for split in ROW_SPLITS:
            plan = plans[split]
            budget = {s: p["share"] * chunk_s * fractions[split] for s, p in plan.items()}
            used = dict.fromkeys(plan, 0.0)
            while any(used[s] < budget[s] for s in plan):
                for s, p in plan.items():  # in turn: each speaker one sentence (in all its styles) per pass
                    if used[s] >= budget[s]:
                        continue
                    sent = queues[split].take(s)
                    n = counters[(s, split)]
                    counters[(s, split)] += 1
                    for st in p["styles"]:
                        uid = f"{s}_{st}_{cfg.tag}{split[:2]}{n:05d}"
                        duration = estimate_duration(sent.text, p["spk"], st)
                        rows.append({"id": uid, "split": split, "speaker": s, "engine": cfg.engine,
                                     "family": p["spk"]["family"], "style": st, "text": sent.text,
                                     "sentence": sent.id, "source": sent.source, "seed": utterance_seed(cfg.seed, uid),
                                     "duration": round(duration, 3), "spk": p["spk"], "chunk": k})
                        used[s] += duration
    return rows


def check_rows(rows: list[dict], base_rows: list[dict], pools: dict[str, list[Sentence]],
               test_speakers: set[str], testlist_texts: set[str] = frozenset()) -> dict:
    """Raise ValueError on any leak; returns the counts checked. A leak is: an id already in the base or
    twice, a test speaker's row, a row whose sentence is not from its split's pool, or a row whose sentence
    id or text is a test sentence (the test pool, the base's test rows, or `testlist_texts`)."""
    ids = [r["id"] for r in rows]
    base_ids = {r["id"] for r in base_rows}
    pool_ids = {split: {s.id for s in pools[split]} for split in pools}
    test_ids = pool_ids.get("test", set()) | {r["sentence"] for r in base_rows if r["split"] == "test"}
    test_texts = ({s.text for s in pools.get("test", [])} | {r["text"] for r in base_rows if r["split"] == "test"}
                  | set(testlist_texts))
    leaks = {
        "ids_in_base": sum(i in base_ids for i in ids),
        "ids_repeated": len(ids) - len(set(ids)),
        "test_speaker_rows": sum(r["speaker"] in test_speakers for r in rows),
        "rows_outside_their_pool": sum(r["sentence"] not in pool_ids[r["split"]] for r in rows),
        "test_sentence_rows": sum(r["sentence"] in test_ids for r in rows),
        "test_text_rows": sum(r["text"] in test_texts for r in rows),
    }
    if any(leaks.values()):
        raise ValueError(f"the expansion leaks: {leaks}")
    return {**leaks, "rows": len(rows), "test_sentences": len(test_ids), "test_texts": len(test_texts)}


def summarize_chunks(rows: list[dict], base_rows: list[dict]) -> list[dict]:
    """Per chunk: rows, estimated hours per split and style, speakers, sentences (and how many the base never read)."""
    base_sentences = {r["sentence"] for r in base_rows}
    out = []
    for k in sorted({r["chunk"] for r in rows}):
        part = [r for r in rows if r["chunk"] == k]
        hours: dict[str, dict[str, float]] = {"split": defaultdict(float), "style": defaultdict(float)}
        for r in part:
            hours["split"][r["split"]] += r["duration"] / 3600
            hours["style"][r["style"]] += r["duration"] / 3600
        sentences = {r["sentence"] for r in part}
        out.append({"chunk": k, "rows": len(part), "rows_per_split": {s: sum(r["split"] == s for r in part) for s in ROW_SPLITS},
                    "hours": round(sum(r["duration"] for r in part) / 3600, 3),
                    **{f"hours_per_{key}": {n: round(h, 3) for n, h in sorted(v.items())} for key, v in hours.items()},
                    "speakers": len({r["speaker"] for r in part}), "sentences": len(sentences),
                    "sentences_new_to_the_base": len(sentences - base_sentences)})
    return out


def testlist_texts(path: Path | None) -> set[str]:
    """Texts of every utterance of a held-out list (`lab/scripts/corpus_testlist.py`'s JSON)."""
    return {u["text"] for u in json.loads(path.read_text())["utterances"]} if path else set()


def main(argv: list[str] | None = None) -> int:
    from .texts import load_sentences

    ap = argparse.ArgumentParser(prog="python -m lab.training.corpus.expand", description=__doc__.split("\n")[0])
    ap.add_argument("--base", type=Path, required=True, help="the base corpus folder ({split}.jsonl, speakers.json)")
    ap.add_argument("--out", type=Path, required=True, help="-> chunkK_{train,validation}.jsonl + summary.json")
    ap.add_argument("--recipe", default="v2", help="the base's recipe (its sentence split)")
    ap.add_argument("--testlist", type=Path, help="a held-out list whose texts no row may read")
    for f in ("hours", "chunk_hours", "validation_fraction"):
        ap.add_argument(f"--{f.replace('_', '-')}", type=float, default=getattr(ExpandConfig, f))
    ap.add_argument("--seed", type=int, default=ExpandConfig.seed)
    ap.add_argument("--engine", default=ExpandConfig.engine)
    ap.add_argument("--tag", default=ExpandConfig.tag)
    args = ap.parse_args(argv)
    t0 = time.time()
    cfg = ExpandConfig(args.hours, args.chunk_hours, args.validation_fraction, args.seed, args.engine, args.tag)
    base_rows = [r for split in ("train", "validation", "test") for r in read_jsonl(args.base / f"{split}.jsonl")]
    speakers = json.loads((args.base / "speakers.json").read_text())
    test_speakers = {s["id"] for s in speakers if s["split"] == "test"}
    pools = split_sentences(load_sentences(), dataclasses.replace(RECIPES[args.recipe], seed=args.seed))
    missing = {r["sentence"] for r in base_rows} - {s.id for p in pools.values() for s in p}
    if missing:
        print(f"{len(missing)} base sentences are not in this machine's texts: other text packages?", file=sys.stderr)
        return 2
    rows = expand_rows(base_rows, pools, cfg)
    check = check_rows(rows, base_rows, pools, test_speakers, testlist_texts(args.testlist))
    args.out.mkdir(parents=True, exist_ok=True)
    chunks = summarize_chunks(rows, base_rows)
    for c in chunks:
        for split in ROW_SPLITS:
            write_jsonl(args.out / f"chunk{c['chunk']}_{split}.jsonl",
                        [r for r in rows if r["chunk"] == c["chunk"] and r["split"] == split])
    summary = {"config": dataclasses.asdict(cfg), "base": str(args.base), "testlist": str(args.testlist),
               "leak_check": check, "chunks": chunks, "hours": round(sum(r["duration"] for r in rows) / 3600, 3),
               "rows": len(rows), "duration_is": "estimated (render measures it)"}
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1, sort_keys=True) + "\n")
    print(json.dumps(summary, indent=1, sort_keys=True))
    print(f"built in {time.time() - t0:.1f} s -> {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
