#!/usr/bin/env python3
"""How much of the corpus styles survives the codec? The ceiling of preset style recognition.

lina-mini speaks through its codec: if the style classifier (`lab.eval.style`) cannot tell the styles of
*real* corpus clips once they are coded and decoded, no language model or voice can make them recognizable.
For each (speaker, style) of a codes folder's split, its last ``--per-cell`` clips are classified twice with
the committed classifier (or ``--style-model``) as the presets are scored (``auto``: relative to the speaker's
neutral clips of other sentences; and ``absolute``), per clip and per (speaker, style) as `style_presets` does
per voice (argmax of the mean probabilities): the source wav, and the codec's decoding of its stored codes.

    python lab/scripts/style_ceiling.py --codes data/enroll/codes --split enroll --audio data/enroll \\
        --codec assets/lina-mini/codec --per-cell 5 --out out/style_ceiling

Writes OUT/wav/<speaker>/<id>.wav (decoded clips) and OUT/style_ceiling.json; prints both confusion tables.
``python -m lab.eval.style_codec`` fits the classifier on such decoded clips instead.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from lab.eval import style
from lab.eval.style_codec import decode_rows
from lab.eval.style_presets import summarize
from lab.training.corpus.generate import audio_path
from lab.training.lm.codes_folder import read_manifest
from lina.codec.codec import Codec


def cells(rows: list[dict]) -> dict[tuple[str, str], list[dict]]:
    """Rows per (speaker, style), each cell sorted by id, cells sorted."""
    grouped = defaultdict(list)
    for row in sorted(rows, key=lambda r: r["id"]):
        grouped[row["speaker"], row["style"]].append(row)
    return dict(sorted(grouped.items()))


def last_clips(rows: list[dict], per_cell: int) -> list[dict]:
    """The last ``per_cell`` rows (by id) of every (speaker, style): the ones presets were not tuned on."""
    return [row for cell in cells(rows).values() for row in cell[-per_cell:]]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--codes", required=True, help="codes folder: {split}.jsonl.gz + {split}.codes.npy")
    p.add_argument("--split", default="enroll")
    p.add_argument("--audio", required=True, help="folder the manifest's `audio` paths are relative to")
    p.add_argument("--codec", required=True, help="codec folder (config.json + codec.safetensors)")
    p.add_argument("--per-cell", type=int, default=5, help="clips per (speaker, style)")
    p.add_argument("--out", required=True)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--style-model", default=style.MODEL_PATH, help="classifier JSON (style.train's output)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    rows = last_clips(read_manifest(args.codes, args.split), args.per_cell)
    decode_rows(rows, Path(args.codes), args.split, Codec.from_pretrained(args.codec).eval(), out)
    items = [{"id": r["id"], "style": r["style"], "speaker": r["speaker"], "text": r["text"]} for r in rows]
    source = [{**it, "wav": str(Path(args.audio) / r["audio"])} for it, r in zip(items, rows)]
    decoded = [{**it, "wav": str(audio_path(out, r))} for it, r in zip(items, rows)]
    models = style.load_models(args.style_model)
    report = {}
    for name, clips in (("source", source), ("decoded", decoded)):
        for mode in ("auto", "absolute"):
            rows = style.classify(clips, models, mode=mode)["clips"]
            for row in rows:  # a (speaker, style) cell plays the part of a preset voice
                row["voice"] = f"{row['speaker']}/{row['intended']}"
            summary = summarize(rows)
            report[f"{name}/{mode}"] = summary
            for unit in ("clip", "voice"):
                conf = summary[f"per_{unit}"]
                print(f"{name}, {mode}, per {'clip' if unit == 'clip' else '(speaker, style)'}: "
                      f"{conf['accuracy']:.1%} of {conf['n']}", flush=True)
            if mode == "auto":
                print(style.markdown_table(summary["per_clip"], f"{name} ({args.split}, per clip)"), flush=True)
    (out / "style_ceiling.json").write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
