"""Does cleaning the reference clip help cloning? The numbers behind lina.audio.AudioOptions' defaults.

    python -m lab.bench.reference_cleanup --out lab/bench/results/reference_cleanup_cpu.json   # ~10 min, this CPU

The app's example speaker (assets/examples: 5 clips with transcripts) is degraded four ways (as it is,
white noise at 10 dB SNR, 22 dB too quiet, 2.5 s of near-silence before and after), each clip read with
the clean-up step meant for that degradation and without it (`CELLS`), and cloned by prompt continuation with the embedded lina-mini (2 sentences, fixed seeds). Scored: Whisper
WER of the clone (`lab.eval.asr`) and speaker similarity of the clone to the CLEAN clip
(`lab.eval.speaker`, resemblyzer cosine).
"""
from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import soundfile
import soxr

from lab.eval.asr import transcribe
from lab.eval.scoring import wer
from lab.eval.speaker import speaker_similarity
from lina.audio import AudioOptions
from lina.reference import measure_lufs
from lina.tts import LinaTTS

REPO = Path(__file__).resolve().parents[2]
RATE = 24_000
NOISE_SNR_DB = 10.0
QUIET_DB = -22.0
SILENCE_SECONDS = 2.5
ROOM_FLOOR_DBFS = -65.0      # a quiet room: 30+ dB under speech, so the trimmer sees it as silence
TARGETS = ("The birch canoe slid on the smooth planks.", "Four hours of steady work faced us.")
RAW = AudioOptions(trim_silence=False, normalize_loudness=False, denoise="never")
CONDITIONS = {
    "none": RAW,
    "trim": replace(RAW, trim_silence=True),
    "loudness": replace(RAW, normalize_loudness=True),
    "trim+loudness": AudioOptions(denoise="never"),
    "trim+loudness+denoise": AudioOptions(denoise="always"),
}

# Each step against what it claims to fix (and the whole default on a clean clip: it must not hurt).
CELLS = (("clean", "none"), ("clean", "trim+loudness"), ("silences", "none"), ("silences", "trim"),
         ("quiet", "none"), ("quiet", "loudness"), ("noise", "trim+loudness"), ("noise", "trim+loudness+denoise"),
         ("clean", "trim+loudness+denoise"), ("noise", "none"))


def degrade(clean: np.ndarray, how: str, rng: np.random.Generator) -> np.ndarray:
    if how == "clean":
        return clean
    if how == "noise":
        noise = rng.standard_normal(clean.size)
        scale = np.sqrt(np.mean(clean**2) / np.mean(noise**2)) * 10 ** (-NOISE_SNR_DB / 20)
        return (clean + scale * noise).astype(np.float32)
    if how == "quiet":
        return (clean * 10 ** (QUIET_DB / 20)).astype(np.float32)
    if how == "silences":
        pad = rng.standard_normal(int(SILENCE_SECONDS * RATE)) * 10 ** (ROOM_FLOOR_DBFS / 20)
        floor = rng.standard_normal(clean.size) * 10 ** (ROOM_FLOOR_DBFS / 20)
        return np.concatenate([pad, clean + floor, pad]).astype(np.float32)
    raise ValueError(how)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--clips", type=int, default=3)
    parser.add_argument("--cells", default="", help="only these, e.g. clean:none,noise:none (default: all)")
    parser.add_argument("--append", action="store_true", help="add the rows to those already in --out")
    args = parser.parse_args(argv)
    tts = LinaTTS.from_pretrained(str(REPO / "assets" / "lina-mini"), device="cpu", watermark=False)
    refs = []
    for path in sorted((REPO / "assets" / "examples").glob("*.flac"))[: args.clips]:
        audio, rate = soundfile.read(path, dtype="float32")
        refs.append((soxr.resample(audio, rate, RATE).astype(np.float32), path.with_suffix(".txt").read_text().strip()))
    rows = json.loads(args.out.read_text())["rows"] if args.append and args.out and args.out.is_file() else []
    cells = [tuple(c.split(":")) for c in args.cells.split(",")] if args.cells else CELLS
    for how, condition in cells:
        tts.audio_options = CONDITIONS[condition]
        wers, sims = [], []
        for i, (clean, transcript) in enumerate(refs):
            degraded = degrade(clean, how, np.random.default_rng(i))
            for seed, target in enumerate(TARGETS):
                out = tts.clone(target, (RATE, degraded), transcript, seed=seed).audio[0]
                wers.append(wer(target, transcribe(out, RATE)))
                sims.append(speaker_similarity(out, clean, RATE) or 0.0)
        rows.append({"degradation": how, "cleanup": condition, "wer": round(float(np.mean(wers)), 3),
                     "similarity": round(float(np.mean(sims)), 3), "clones": len(wers)})
        print(json.dumps(rows[-1]), flush=True)
    levels = {how: round(measure_lufs(degrade(refs[0][0], how, np.random.default_rng(0)), RATE), 1)
              for how in ("clean", "noise", "quiet", "silences")}
    results = {"rows": rows, "input_lufs_first_clip": levels, "targets": list(TARGETS), "clips": len(refs)}
    if args.out:
        args.out.write_text(json.dumps(results, indent=1) + "\n")
    return results


if __name__ == "__main__":
    main()
