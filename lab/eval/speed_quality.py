"""What the speed control costs: WER (Whisper tiny.en) and DNSMOS of the same speech at 0.75x, 1x, 1.25x
and 1.5x (`lina.speed.change_speed`, WSOLA), with the duration ratio and the median pitch (Praat).

    python -m lab.eval.speed_quality --model embedded --out lab/bench/results/speed_quality_cpu.json

Each held-out sentence is generated once (a preset voice, seed 0), then time-stretched: the numbers
compare the post-processing only, never two different takes.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from lab.eval.asr import transcribe
from lab.eval.quality import dnsmos
from lab.eval.scoring import wer
from lab.eval.word_times import SENTENCES, VOICES
from lina.speed import change_speed

SPEEDS = (0.75, 1.0, 1.25, 1.5)


def median_pitch(audio: np.ndarray, rate: int) -> float | None:
    """Median f0 (Hz) of the voiced frames, Praat's autocorrelation method (parselmouth)."""
    import parselmouth

    pitch = parselmouth.Sound(audio.astype(np.float64), rate).to_pitch(time_step=0.01)
    voiced = pitch.selected_array["frequency"]
    voiced = voiced[voiced > 0]
    return float(np.median(voiced)) if voiced.size else None


def evaluate(model: str, count: int, seed: int = 0) -> dict:
    from lina.tts import LinaTTS
    from lina.voice import Voice
    from lina_app.settings import DEFAULT_VOICES_DIR

    tts = LinaTTS.from_pretrained(model, device="cpu", watermark=False)  # the model, not the mark
    started = time.perf_counter()
    per_speed: dict[float, dict[str, list]] = {s: {"refs": [], "hyps": [], "ovrl": [], "ratio": [], "pitch": []}
                                               for s in SPEEDS}
    for i, sentence in enumerate(SENTENCES[:count]):
        voice = Voice.load(DEFAULT_VOICES_DIR / f"{VOICES[i % len(VOICES)]}.safetensors")
        out = tts.synthesize(sentence, voice, seed=seed)
        base = out.audio[0]
        base_pitch = median_pitch(base, out.sample_rate)
        for speed in SPEEDS:
            audio = change_speed(base, speed)
            got = per_speed[speed]
            got["refs"].append(sentence)
            got["hyps"].append(transcribe(audio, out.sample_rate))
            mos = dnsmos(audio, out.sample_rate)
            got["ovrl"].append(mos["ovrl"] if mos else np.nan)
            got["ratio"].append(len(audio) / len(base))
            pitch = median_pitch(audio, out.sample_rate)
            got["pitch"].append(pitch / base_pitch if pitch and base_pitch else np.nan)
    table = {f"{s:g}x": {"wer": round(wer(v["refs"], v["hyps"]), 4),
                         "dnsmos_ovrl": round(float(np.nanmean(v["ovrl"])), 3),
                         "duration_ratio": round(float(np.mean(v["ratio"])), 4),
                         "median_pitch_ratio": round(float(np.nanmedian(v["pitch"])), 4)}
             for s, v in per_speed.items()}
    return {"model": tts.name, "model_id": tts.model_id, "sentences": count, "seed": seed,
            "tsm": "audiotsm 0.1.2 WSOLA (40 ms frames, 10 ms hop, 10 ms tolerance)",
            "asr": "faster-whisper tiny.en int8", "dnsmos": "speechmos DNSMOS (ovrl)",
            "speeds": table, "seconds": round(time.perf_counter() - started, 1),
            "transcripts": {f"{s:g}x": v["hyps"] for s, v in per_speed.items()}}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="embedded")
    parser.add_argument("--sentences", type=int, default=8)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.model == "embedded":
        from lina_app.settings import EMBEDDED_MODEL_DIR

        args.model = str(EMBEDDED_MODEL_DIR)
    result = evaluate(args.model, args.sentences)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result["speeds"], indent=1))


if __name__ == "__main__":
    main()
