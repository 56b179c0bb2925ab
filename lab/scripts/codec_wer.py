"""Intelligibility of codecs on the fixed held-out clips (codec v2, lab/notes/codec_v2.md): Whisper WER (tiny.en, or
`--asr base`) of each clip as rendered and after a round trip (encode -> codes -> decode) through each codec
given, per engine. With no --codec it scores the clips as rendered only (and times the recognizer).

PESQ/STOI say how close the waveform is; this says whether the words survive, which is what an LM trained on
the codes can at best imitate (the shipped v1 codec tripled Kokoro's WER).

    python lab/scripts/codec_wer.py --clips data/heldout_v2 --codec v1=assets/lina-mini/codec \
        --codec v2=data/codec_v2_runs/codec_v2_mel/codec --out lab/notes/codec_v2/wer_heldout.json
    python lab/scripts/codec_wer.py --clips data/heldout_v2 --asr base
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root: lab is not installed

from lab.eval.asr import ASR_MODELS, DEFAULT_ASR, ToolUnavailable, asr_model, whisper_model
from lab.eval.asr import transcribe as recognize
from lab.eval.audio import resample
from lab.eval.scoring import wer
from lab.training.codec.heldout import HELDOUT_MANIFEST, SAMPLE_RATE, load_clips
from lab.training.corpus.manifest import read_jsonl
from lina.codec.codec import Codec


def round_trip(codec: Codec, audio: np.ndarray, sr: int) -> np.ndarray:
    """Mono audio -> codec codes -> audio at the codec's rate."""
    x = torch.from_numpy(resample(audio, sr, codec.sample_rate).astype(np.float32))[None]
    with torch.inference_mode():
        return codec.decode(codec.encode(x))[0].numpy()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clips", type=Path, required=True, help="folder of `python -m lab.training.codec heldout`")
    p.add_argument("--codec", action="append", default=[], help="NAME=FOLDER (repeat)")
    p.add_argument("--asr", choices=tuple(ASR_MODELS), default=DEFAULT_ASR, help="speech recognizer")
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    torch.set_num_threads(2)
    rows = read_jsonl(HELDOUT_MANIFEST)
    clips = load_clips(args.clips)  # checked: 24 kHz mono
    folders = dict(c.split("=", 1) for c in args.codec)
    codecs = {name: Codec.from_pretrained(folder).float().eval() for name, folder in folders.items()}
    try:
        whisper_model(args.asr)  # loaded before the clock starts: the seconds below are transcription only
    except ToolUnavailable as e:
        raise SystemExit(str(e)) from None

    per_clip, raw_seconds, audio_seconds = [], 0.0, 0.0
    for row in rows:
        audio, sr = clips[row["id"]], SAMPLE_RATE
        start = time.perf_counter()
        hyps = {"raw": recognize(audio, sr, args.asr)}
        raw_seconds += time.perf_counter() - start
        audio_seconds += len(audio) / sr
        for name, codec in codecs.items():
            hyps[name] = recognize(round_trip(codec, audio, sr), codec.sample_rate, args.asr)
        per_clip.append({"id": row["id"], "engine": row["engine"], "text": row["text"], "hyp": hyps,
                         "wer": {k: round(wer(row["text"], h), 4) for k, h in hyps.items()}})
        print(row["id"], row["engine"], per_clip[-1]["wer"], flush=True)
    variants = ["raw", *codecs]
    table = defaultdict(dict)
    for group in ["all", *sorted({r["engine"] for r in rows})]:
        clips = [c for c in per_clip if group in ("all", c["engine"])]
        for v in variants:  # the mean of the clips' WERs (each clip weighs the same)
            table[group][v] = round(float(np.mean([c["wer"][v] for c in clips])), 4)
    print("\n| clips | " + " | ".join(variants) + " |\n|---|" + "---|" * len(variants))
    for group, scores in table.items():
        print(f"| {group} | " + " | ".join(f"{scores[v]:.3f}" for v in variants) + " |")
    speed = {"seconds_per_clip": round(raw_seconds / len(rows), 3),
             "real_time_factor": round(raw_seconds / audio_seconds, 3)}
    print(f"\n{asr_model(args.asr).description}: {speed['seconds_per_clip']} s per clip as rendered "
          f"(real-time factor {speed['real_time_factor']}, mean clip {audio_seconds / len(rows):.2f} s)")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"asr": asr_model(args.asr).description, "asr_speed": speed,
                                        "codecs": folders,
                                        "mean_wer": table, "clips": per_clip}, indent=1) + "\n")


if __name__ == "__main__":
    main()
