#!/usr/bin/env python3
"""The source clips of the shipped preset voices, as Opus files + transcripts in `voices/presets.json`.

A preset is defined by its clips, so that any model can tune it (`lina_app/preset_manifest.py`). The
shipped lina-mini states (`voices/<id>.safetensors`) record which corpus rows they were tuned from
(``extra.clip_ids``): the styled speakers' fresh enrollment rows (`lab/scripts/render_enroll.py`, split
``enroll``) and the unseen speakers' test rows. This script renders exactly those rows again with the
corpus recipe (deterministic: the same row gives the same samples), writes each as Ogg Opus (small:
synthetic speech at `BITRATE` keeps what tuning reads) and writes the manifest, the lina-mini states
listed under their model id with the preset key they stand for:

    python lab/scripts/preset_clips.py --corpus data/corpus_v1 --voices voices --jobs 2

``--corpus``: the corpus manifest folder lina-mini was trained from (``python -m lab.training.corpus
build --out DIR --hours 30 --seed 0``: speakers.json, validation.jsonl, test.jsonl).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from render_enroll import plan_rows, sentences  # noqa: E402

from lab.training.corpus.generate import audio_path, render_manifest  # noqa: E402
from lab.training.corpus.manifest import read_jsonl, write_jsonl  # noqa: E402
from lina.voice import Voice  # noqa: E402
from lina_app.preset_manifest import MANIFEST, ClipSpec, PresetSpec, TuningSettings, preset_key, write_manifest  # noqa: E402

ENROLL_SECONDS = 100.0   # render_enroll.py's default: the plan its rows were numbered in
SAMPLE_RATE = 24_000
# libsndfile's Opus compression level: 0.95 is about 21 kbit/s for this speech (its default, ~37 kbit/s, would
# make the 44 min of clips 12 MB; 21 kbit/s keeps them near 7 MB).
OPUS_COMPRESSION = 0.95
BITRATE_NOTE = f"Ogg Opus, compression level {OPUS_COMPRESSION} (about 21 kbit/s)"
CLIPS_DIR = "clips"


def source_rows(corpus: Path, voices: list[Voice]) -> dict[str, dict]:
    """Every corpus row a shipped voice was tuned from, by id."""
    wanted = {cid for v in voices for cid in v.extra.get("clip_ids", [])}
    speakers = {v.extra["speaker"] for v in voices if v.extra.get("clips_from") == "enroll"}
    styled = [s for s in json.loads((corpus / "speakers.json").read_text()) if s["id"] in speakers]
    rows = plan_rows(styled, sentences(corpus), ENROLL_SECONDS) + list(read_jsonl(corpus / "test.jsonl"))
    found = {r["id"]: r for r in rows if r["id"] in wanted}
    missing = sorted(wanted - set(found))
    if missing:
        raise SystemExit(f"{len(missing)} clip ids not in this corpus (e.g. {missing[0]}): wrong --corpus?")
    return found


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--corpus", required=True)
    p.add_argument("--voices", default="voices")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--work", default="", help="folder for the rendered WAVs (default: a temporary one)")
    args = p.parse_args(argv)
    folder = Path(args.voices)
    files = sorted(folder.glob("*.safetensors"))
    voices = [Voice.load(f) for f in files]
    rows = source_rows(Path(args.corpus), voices)
    work = Path(args.work or tempfile.mkdtemp(prefix="preset-clips-"))
    work.mkdir(parents=True, exist_ok=True)
    plan = work / "rows.jsonl"
    write_jsonl(plan, sorted(rows.values(), key=lambda r: r["id"]))
    print(f"{len(rows)} rows to render in {work}", flush=True)
    print(json.dumps(render_manifest([plan], work, jobs=args.jobs)), flush=True)
    specs = []
    for path, voice in zip(files, voices):
        clips = []
        for n, cid in enumerate(voice.extra["clip_ids"]):
            row = rows[cid]
            audio, sr = sf.read(str(audio_path(work, row)), dtype="float32")
            assert sr == SAMPLE_RATE, sr
            rel = f"{CLIPS_DIR}/{path.stem}/{n:02d}.opus"
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            sf.write(str(folder / rel), np.clip(audio, -1, 1), sr, format="OGG", subtype="OPUS",
                     compression_level=OPUS_COMPRESSION)
            clips.append(ClipSpec(rel, row["text"]))
        tuning = TuningSettings(steps=int(voice.extra.get("steps", 100)), rank=voice.rank,
                                learning_rate=float(voice.extra.get("learning_rate", 0.05)), seed=0)
        spec = PresetSpec(path.stem, voice.name, voice.style, voice.description, tuple(clips), tuning,
                          sample=next((f"{path.stem}{s}" for s in (".flac", ".wav") if (folder / f"{path.stem}{s}").exists()),
                                      ""), states={})
        key = preset_key(spec, folder, voice.model_id, spec.tuning.as_dict())
        specs.append(spec.with_state(voice.model_id, path.name, key))
        print(f"{path.stem}: {len(clips)} clips", flush=True)
    write_manifest(folder / MANIFEST, specs)
    size = sum(f.stat().st_size for f in (folder / CLIPS_DIR).rglob("*.opus"))
    print(f"{len(specs)} presets, clips {size / 2**20:.2f} MiB ({BITRATE_NOTE})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
