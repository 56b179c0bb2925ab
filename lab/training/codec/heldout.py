"""The fixed held-out clips of codec v2: rendered once from a committed manifest, read by every evaluation.

`HELDOUT_MANIFEST` (built by lab/scripts/codec_heldout_build.py) holds 32 corpus rows of unseen sentences and
mostly unseen speaker recipes over piper, espeak-ng, flite and Kokoro. `render_heldout` writes
`DIR/<id>.flac` (24 kHz, 24-bit: the quantization noise sits ~140 dB down, far below any codec's error)
and `DIR/clips.json` (each clip's SHA-256 of its float32 samples, and their combined `fingerprint`).
Engine versions can change samples, so renders are compared by fingerprint: every evaluation records
the fingerprint of the clips it scored, and two runs' scores compare only when their fingerprints match.
Render once (here or on the GPU host) and carry the folder, rather than re-rendering per machine.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import soundfile as sf

from lab.training.corpus.manifest import read_jsonl

HELDOUT_MANIFEST = Path(__file__).with_name("heldout_v2.jsonl")
CLIPS_JSON = "clips.json"
CLIP_SUFFIX = ".flac"
CLIP_SUBTYPE = "PCM_24"
SAMPLE_RATE = 24_000


def samples_sha256(audio: np.ndarray) -> str:
    """SHA-256 of float32 samples (what a clip *is*, whatever file format holds it)."""
    return hashlib.sha256(np.ascontiguousarray(audio, dtype=np.float32).tobytes()).hexdigest()


def fingerprint(hashes: dict[str, str]) -> str:
    """One id for a set of clips: SHA-256 over the sorted (id, sample hash) pairs, 16 hex digits."""
    text = "\n".join(f"{k} {hashes[k]}" for k in sorted(hashes))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def render_heldout(out: Path, manifest: Path = HELDOUT_MANIFEST, log=print) -> dict:
    """Render every row (rows already there are kept) -> the clips.json content.

    A row whose engine is missing is skipped with a message, so the fingerprint then differs from a
    complete render: compare runs only on equal fingerprints.
    """
    from lab.training.corpus.engine_tools import EngineMissing
    from lab.training.corpus.generate import render_row

    out.mkdir(parents=True, exist_ok=True)
    rows, skipped = read_jsonl(manifest), {}
    for row in rows:
        path = out / f"{row['id']}{CLIP_SUFFIX}"
        if path.exists():
            continue
        try:
            audio = render_row(row)
        except EngineMissing as error:
            skipped[row["id"]] = str(error)
            log(f"skipped {row['id']} ({row['engine']}): {error}")
            continue
        tmp = path.with_name(path.name + ".tmp")
        sf.write(str(tmp), audio, SAMPLE_RATE, subtype=CLIP_SUBTYPE, format="FLAC")
        tmp.replace(path)
    clips = load_clips(out, write_index=True)
    info = json.loads((out / CLIPS_JSON).read_text())
    info["skipped"] = skipped
    (out / CLIPS_JSON).write_text(json.dumps(info, indent=1) + "\n")
    log(f"{len(clips)} clips in {out}, fingerprint {info['fingerprint']}")
    return info


def load_clips(folder: Path, write_index: bool = False) -> dict[str, np.ndarray]:
    """`folder/*.flac|*.wav` -> {clip id: float32 samples [S]} (sorted by id); 24 kHz mono only."""
    folder = Path(folder)
    files = sorted([*folder.glob(f"*{CLIP_SUFFIX}"), *folder.glob("*.wav")])
    if not files:
        raise FileNotFoundError(f"no .flac or .wav clips in {folder}")
    clips = {}
    for path in files:
        audio, rate = sf.read(str(path), dtype="float32", always_2d=True)
        if rate != SAMPLE_RATE:
            raise ValueError(f"{path}: {rate} Hz, the clips must be {SAMPLE_RATE} Hz")
        clips[path.stem] = audio.mean(axis=1)
    if write_index:
        hashes = {k: samples_sha256(v) for k, v in clips.items()}
        index = {"manifest": HELDOUT_MANIFEST.name, "fingerprint": fingerprint(hashes),
                 "seconds": round(sum(len(v) for v in clips.values()) / SAMPLE_RATE, 2), "clips": hashes}
        (folder / CLIPS_JSON).write_text(json.dumps(index, indent=1) + "\n")
    return clips


def clips_fingerprint(clips: dict[str, np.ndarray]) -> str:
    return fingerprint({k: samples_sha256(v) for k, v in clips.items()})


def engine_of(clip_ids: list[str], manifest: Path = HELDOUT_MANIFEST) -> dict[str, str]:
    """Clip id -> engine name for the ids in the manifest ("other" for clips from elsewhere)."""
    engines = {row["id"]: row["engine"] for row in read_jsonl(manifest)} if manifest.exists() else {}
    return {k: engines.get(k, "other") for k in clip_ids}
