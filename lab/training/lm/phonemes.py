"""Text ids of a codes folder's rows, and the phoneme cache that lets a phoneme run train without a G2P.

``python -m lab.training.lm phonemize --codes DIR`` writes ``DIR/phonemes.json.gz``: the phoneme
vocabulary and the ids of every text of every split, computed once where gruut is installed (here). A
phoneme run then reads its tokenizer and ids from the cache: the GPU host, which has no gruut and no
network, never phonemizes, and a run starts without minutes of G2P (~5 ms a sentence on one core).

A paired row (two sentences back to back, `data.pair_rows`) reads as its two sentences' phonemes joined by
a word boundary: the G2P reads one sentence at a time, as at inference. BPE rows are encoded as before.

A grown corpus extends an earlier cache instead of phonemizing it all again (`--reuse OLD`: its entries are
kept, only new texts go through the G2P), with the texts of more manifests (`--texts M...`, e.g. an
expansion's chunks): the result covers the old corpus and the new rows, so that one table serves codes
folders merged from both.
"""
from __future__ import annotations

import gzip
import json
import multiprocessing
import os
from collections.abc import Sequence
from pathlib import Path

from lab.training.lm.codes_folder import read_manifest
from lina.phoneme_tokenizer import PhonemeTokenizer
from lina.text_frontend import AnyTokenizer

CACHE_NAME = "phonemes.json.gz"
FORMAT, VERSION = "lina-phoneme-cache", 1
SPLITS = ("train", "validation", "test")
# More distinct texts than this are phonemized by worker processes, each loading its own G2P (~3 s).
PARALLEL_MIN_TEXTS = 2_000
MAX_WORKERS = 16
CHUNK_TEXTS = 256


def _encode_chunk(args: tuple[str, list[str]]) -> list[list[int]]:
    vocabulary, texts = args
    tokenizer = PhonemeTokenizer.from_str(vocabulary)
    return [tokenizer.encode(t) for t in texts]


def encode_texts(tokenizer: AnyTokenizer, texts: Sequence[str], workers: int | None = None) -> list[list[int]]:
    """``[tokenizer.encode(t) for t in texts]`` (the reference), computed once per distinct text; phoneme
    texts beyond ``PARALLEL_MIN_TEXTS`` in ``workers`` processes (default: the CPU count, at most 16)."""
    distinct = sorted(set(texts))
    workers = min(MAX_WORKERS, os.cpu_count() or 1) if workers is None else workers
    if isinstance(tokenizer, PhonemeTokenizer) and workers > 1 and len(distinct) >= PARALLEL_MIN_TEXTS:
        chunks = [distinct[i: i + CHUNK_TEXTS] for i in range(0, len(distinct), CHUNK_TEXTS)]
        # spawn: the parent may hold CUDA and torch threads, which a forked child must not inherit.
        with multiprocessing.get_context("spawn").Pool(workers) as pool:
            encoded = [ids for part in pool.map(_encode_chunk, [(tokenizer.to_str(), c) for c in chunks])
                       for ids in part]
    else:
        encoded = [tokenizer.encode(t) for t in distinct]
    by_text = dict(zip(distinct, encoded))
    return [by_text[t] for t in texts]


def _split_texts(codes: Path) -> list[str]:
    return [row["text"] for split in SPLITS if (codes / f"{split}.jsonl.gz").exists()
            for row in read_manifest(codes, split)]


def phonemize_codes(codes: str | Path, workers: int | None = None, reuse: str | Path | None = None,
                    manifests: Sequence[str | Path] = ()) -> Path:
    """Writes ``codes/phonemes.json.gz`` (vocabulary + ids of every distinct text of the folder's splits and
    of `manifests`, plus every entry of the `reuse` cache, whose texts are not phonemized again); returns its path."""
    from lab.training.corpus.manifest import read_jsonl

    codes = Path(codes)
    tokenizer = PhonemeTokenizer.default()
    known: dict[str, list[int]] = {}
    if reuse is not None:
        old = load_cache(reuse)
        if old is None:
            raise FileNotFoundError(f"{reuse}: no phoneme cache there")
        if old[0].to_str() != tokenizer.to_str():
            raise ValueError(f"{reuse}: another phoneme vocabulary than this G2P's; phonemize without --reuse")
        known = old[1]
    texts = set(_split_texts(codes)) | {row["text"] for m in manifests for row in read_jsonl(Path(m))}
    missing = sorted(texts - set(known))
    table = {**known, **dict(zip(missing, encode_texts(tokenizer, missing, workers)))}
    codes.mkdir(parents=True, exist_ok=True)
    path = codes / CACHE_NAME
    tmp = path.with_suffix(".tmp")
    with gzip.open(tmp, "wt", encoding="utf-8") as f:
        json.dump({"format": FORMAT, "version": VERSION, "vocabulary": tokenizer.to_str(),
                   "texts": dict(sorted(table.items()))}, f, ensure_ascii=False)
    os.replace(tmp, path)
    return path


def load_cache(codes: str | Path) -> tuple[PhonemeTokenizer, dict[str, list[int]]] | None:
    """``(vocabulary, {text: ids})`` from ``codes/phonemes.json.gz`` (or that file itself); None when there is none."""
    path = Path(codes) if str(codes).endswith(".json.gz") else Path(codes) / CACHE_NAME
    if not path.exists():
        return None
    with gzip.open(path, "rt", encoding="utf-8") as f:
        data = json.load(f)
    if data.get("format") != FORMAT or data.get("version") != VERSION:
        raise ValueError(f"{path}: not a phoneme cache of version {VERSION}; rerun `phonemize`")
    return PhonemeTokenizer.from_str(data["vocabulary"]), data["texts"]


def encode_rows(tokenizer: AnyTokenizer, rows: Sequence[dict], codes: str | Path) -> list[list[int]]:
    """Text ids of each manifest row (``[BOS] ... [EOS]``); phonemes from the cache where it has them."""
    if not isinstance(tokenizer, PhonemeTokenizer):
        return encode_texts(tokenizer, [row["text"] for row in rows])
    cached = load_cache(codes)
    known = cached[1] if cached and cached[0].symbols == tokenizer.symbols else {}
    parts = [row.get("parts", [row["text"]]) for row in rows]
    missing = sorted({t for p in parts for t in p if t not in known})
    by_text = {**known, **dict(zip(missing, encode_texts(tokenizer, missing)))}
    return [join_sentences([by_text[t] for t in p], tokenizer.boundary_id) for p in parts]


def join_sentences(sentences: Sequence[list[int]], boundary: int) -> list[int]:
    """One row's ids from its sentences' ``[BOS] ... [EOS]`` ids: ``[BOS] a ␣ b [EOS]``."""
    ids = list(sentences[0])
    for more in sentences[1:]:
        ids = ids[:-1] + [boundary] + list(more[1:])
    return ids
