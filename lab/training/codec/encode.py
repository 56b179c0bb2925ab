"""Encode the rendered corpus into codes for the language model (the input of lab.training.lm).

Output folder:
  `{split}.jsonl.gz`   the manifest rows that had audio, plus `offset` and `frames`
  `{split}.codes.npy`  uint16, every row's codes one after another (`codes[offset:offset+frames]`)
  `codec/`             the codec that made them (its config and weights)
  `summary.json`       rows, hours and codebook usage per split
Rows are encoded in batches of similar length; a row's codes are cut to `ceil(samples / hop)`.
"""
from __future__ import annotations

import gzip
import json
import math
import shutil
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from lab.training.codec.data import row_audio
from lab.training.corpus.manifest import read_jsonl, write_jsonl
from lina.codec.codec import Codec

# Rows per batch are chosen so that the padded batch holds about this many seconds of audio.
BATCH_SECONDS = 600.0
CODES_DTYPE = np.uint16


def _batches(rows: list[tuple[dict, np.ndarray]], sample_rate: int):
    rows = sorted(rows, key=lambda item: len(item[1]))
    batch: list[tuple[dict, np.ndarray]] = []
    for item in rows:
        if batch and (len(batch) + 1) * len(item[1]) / sample_rate > BATCH_SECONDS:
            yield batch
            batch = []
        batch.append(item)
    if batch:
        yield batch


@torch.inference_mode()
def encode_rows(codec: Codec, rows: list[dict], roots: list[Path]) -> tuple[list[dict], np.ndarray]:
    """Rows with rendered audio -> (rows with `offset`/`frames`, flat uint16 codes), in manifest order."""
    loaded = []
    for row in rows:
        path = row_audio(roots, row)
        if path is not None:
            audio, rate = sf.read(str(path), dtype="float32")
            if rate != codec.sample_rate:
                raise ValueError(f"{path}: {rate} Hz, the codec wants {codec.sample_rate}")
            loaded.append((row, audio))
    codes_of: dict[str, np.ndarray] = {}
    for batch in _batches(loaded, codec.sample_rate):
        width = len(batch[-1][1])
        wav = torch.zeros(len(batch), width)
        for i, (_, audio) in enumerate(batch):
            wav[i, : len(audio)] = torch.from_numpy(audio)
        codes = codec.encode(wav).cpu().numpy()
        for i, (row, audio) in enumerate(batch):
            codes_of[row["id"]] = codes[i, : math.ceil(len(audio) / codec.hop_length)]
    out_rows, chunks, offset = [], [], 0
    for row in rows:
        if row["id"] in codes_of:
            codes = codes_of[row["id"]]
            out_rows.append({**row, "offset": offset, "frames": len(codes)})
            chunks.append(codes.astype(CODES_DTYPE))
            offset += len(codes)
    flat = np.concatenate(chunks) if chunks else np.zeros(0, CODES_DTYPE)
    return out_rows, flat


def encode_corpus(codec: Codec, rows_by_split: dict[str, list[dict]], roots: list[Path], out: Path,
                  log=print) -> dict:
    """Encode each split's rows (rows without rendered audio are skipped and counted)."""
    out.mkdir(parents=True, exist_ok=True)
    codec.save_pretrained(out / "codec")
    summary = {}
    for split, rows in rows_by_split.items():
        done, flat = encode_rows(codec, rows, roots)
        summary[split] = write_split(out, split, done, flat, codec, missing=len(rows) - len(done))
        log(f"{split}: {summary[split]}")
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    return summary


def write_split(out: Path, split: str, rows: list[dict], flat: np.ndarray, codec: Codec, missing: int = 0) -> dict:
    """One split of a codes folder: rows (with `offset`/`frames` into `flat`) and the codes; returns its summary."""
    np.save(out / f"{split}.codes.npy", flat.astype(CODES_DTYPE))
    with gzip.open(out / f"{split}.jsonl.gz", "wt", encoding="utf-8") as handle:
        for row in rows:
            row = {k: v for k, v in row.items() if k != "spk"}  # the recipe is in the corpus, not needed here
            handle.write(json.dumps(row) + "\n")
    used = int(np.unique(flat).size)
    return {"rows": len(rows), "missing": missing,
            "hours": round(len(flat) / codec.sample_rate * codec.hop_length / 3600, 3),
            "codes_used": used, "usage": round(used / codec.quantizer.bins, 4)}


def merge_codes(sources: list[Path], out: Path) -> dict:
    """Concatenate codes folders made by one codec (e.g. a corpus and its extension), split by split:
    rows keep their order (first source first) and their offsets move by the codes before them.
    Row ids must be unique across the sources, and their codes ids (``codec/codes.json``) one and the same
    (ids of different codecs mean different sounds). The first source's `codec/` (if any) is kept."""
    from lab.training.codec.freeze import read_codes_id

    ids = {str(s): read_codes_id(Path(s) / "codec") for s in sources}
    if len(set(ids.values())) > 1:
        raise ValueError(f"the sources hold codes of different codecs (codes ids {ids}): merge codes of one codec only")
    out.mkdir(parents=True, exist_ok=True)
    splits = sorted({p.name.split(".")[0] for s in sources for p in s.glob("*.codes.npy")})
    summary, seen = {}, set()
    for split in splits:
        rows, chunks, offset = [], [], 0
        for source in sources:
            if not (source / f"{split}.codes.npy").exists():
                continue
            codes = np.load(source / f"{split}.codes.npy")
            for row in read_jsonl(source / f"{split}.jsonl.gz"):
                if row["id"] in seen:
                    raise ValueError(f"{source}: row {row['id']} is already in an earlier source")
                seen.add(row["id"])
                rows.append({**row, "offset": row["offset"] + offset})
            chunks.append(codes.astype(CODES_DTYPE))
            offset += len(codes)
        np.save(out / f"{split}.codes.npy", np.concatenate(chunks))
        write_jsonl(out / f"{split}.jsonl.gz", rows)
        summary[split] = {"rows": len(rows), "frames": offset}
    codec = sources[0] / "codec"
    if codec.is_dir() and not (out / "codec").exists():
        shutil.copytree(codec, out / "codec")
    summary["codes_id"] = next(iter(ids.values()), None)
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    return summary
