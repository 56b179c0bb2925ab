"""What the watermark costs and how well it is found: the numbers of docs/reliability.md ("Watermark").

    python -m lab.bench.watermark --out lab/bench/results/watermark_cpu.json      # ~5 min on this 2-core CPU

50 held-out outputs of the embedded lina-mini (sentences of lab.eval's lists, the shipped presets in turn),
generated with the watermark off, then marked: PESQ-wb of the marked against the unmarked audio, the
detection rate as they are, after MP3 and Opus at 64 kbit/s (ffmpeg), after resampling to 16 kHz; false
positives on the 50 unmarked outputs and on the shipped unmarked clips (preset samples, app examples);
time to mark and to detect per second of audio.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile
import soxr

from lab.eval.style_presets import SENTENCES as STYLE_SENTENCES
from lab.eval.testlist import ENROLL_SENTENCES, TEST_SENTENCES
from lina.tts import LinaTTS
from lina.voice import Voice
from lina.watermark import apply_watermark, network, watermark_score

REPO = Path(__file__).resolve().parents[2]
RATE = 24_000
PESQ_RATE = 16_000
OUTPUTS = 50
BITRATE = "64k"
CODECS = {"mp3": ("libmp3lame", "mp3"), "opus": ("libopus", "ogg")}
THRESHOLD = 0.5


def reencode(audio: np.ndarray, codec: str) -> np.ndarray:
    """Through ffmpeg's encoder at `BITRATE` and back to float32 at 24 kHz."""
    encoder, suffix = CODECS[codec]
    with tempfile.TemporaryDirectory() as folder:
        wav, coded, back = (Path(folder) / name for name in ("in.wav", f"coded.{suffix}", "back.wav"))
        soundfile.write(wav, audio, RATE, subtype="PCM_16")
        subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(wav), "-c:a", encoder, "-b:a", BITRATE,
                        str(coded)], check=True)
        subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(coded), "-ar", str(RATE), "-ac", "1",
                        str(back)], check=True)
        return soundfile.read(back, dtype="float32")[0]


def generate(tts: LinaTTS, count: int) -> list[np.ndarray]:
    sentences = list(ENROLL_SENTENCES) + list(TEST_SENTENCES) + list(STYLE_SENTENCES)
    voices = sorted((REPO / "voices").glob("*.safetensors"))
    outputs = []
    for i in range(count):
        voice = Voice.load(voices[i % len(voices)])
        outputs.append(tts.synthesize(sentences[i % len(sentences)], voice, seed=i).audio[0])
    return outputs


def unmarked_clips() -> list[np.ndarray]:
    """The shipped clips nobody marked: preset samples and the app's examples, at 24 kHz."""
    clips = []
    for path in sorted((REPO / "voices").glob("*.flac")) + sorted((REPO / "assets" / "examples").glob("*.flac")):
        audio, rate = soundfile.read(path, dtype="float32")
        clips.append(soxr.resample(audio, rate, RATE).astype(np.float32) if rate != RATE else audio)
    return clips


def rate_above(scores: list[float]) -> float:
    return float(np.mean([s > THRESHOLD for s in scores]))


def main(argv: list[str] | None = None) -> dict:
    from pesq import pesq

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=OUTPUTS)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    tts = LinaTTS.from_pretrained(str(REPO / "assets" / "lina-mini"), device="cpu", watermark=False)
    started = time.perf_counter()
    network()
    load_seconds = time.perf_counter() - started
    plain = generate(tts, args.count)
    audio_seconds = sum(len(a) for a in plain) / RATE
    started = time.perf_counter()
    marked = [apply_watermark(a, RATE) for a in plain]
    mark_seconds = time.perf_counter() - started
    started = time.perf_counter()
    as_is = [watermark_score(a, RATE) for a in marked]
    detect_seconds = time.perf_counter() - started
    down = lambda a: soxr.resample(a, RATE, PESQ_RATE)  # noqa: E731
    pesq_marked = [pesq(PESQ_RATE, down(p), down(m), "wb") for p, m in zip(plain, marked)]
    results = {
        "outputs": args.count, "audio_seconds": round(audio_seconds, 1),
        "load_seconds": round(load_seconds, 2),
        "mark_seconds_per_audio_second": round(mark_seconds / audio_seconds, 4),
        "detect_seconds_per_audio_second": round(detect_seconds / audio_seconds, 4),
        "pesq_wb_marked_vs_unmarked": {"mean": round(float(np.mean(pesq_marked)), 3),
                                       "min": round(float(np.min(pesq_marked)), 3)},
        "snr_db_mark": round(float(np.mean([10 * np.log10(np.sum(p**2) / max(np.sum((m - p) ** 2), 1e-20))
                                            for p, m in zip(plain, marked)])), 1),
        "detected": {
            "as_is": rate_above(as_is),
            "mp3_64k": rate_above([watermark_score(reencode(m, "mp3"), RATE) for m in marked]),
            "opus_64k": rate_above([watermark_score(reencode(m, "opus"), RATE) for m in marked]),
            "resampled_16k": rate_above([watermark_score(down(m), PESQ_RATE) for m in marked]),
        },
        "false_positives": {
            "unmarked_outputs": rate_above([watermark_score(a, RATE) for a in plain]),
            "shipped_clips": rate_above([watermark_score(a, RATE) for a in unmarked_clips()]),
            "shipped_clip_count": len(unmarked_clips()),
        },
        "score_as_is": {"min": round(float(np.min(as_is)), 3), "mean": round(float(np.mean(as_is)), 3)},
    }
    print(json.dumps(results, indent=1))
    if args.out:
        args.out.write_text(json.dumps(results, indent=1) + "\n")
    return results


if __name__ == "__main__":
    main()
