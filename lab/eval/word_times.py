"""Word timestamps checked against Whisper's: the median absolute boundary error (starts and ends).

    python -m lab.eval.word_times --model embedded --out lab/bench/results/word_times_cpu.json

Held-out sentences (written for this check, in no training set) are spoken with preset voices; our
words (`Synthesis.words`, from the model's cross-attention) are matched to faster-whisper's word
timestamps (tiny.en, the evaluation's offline ASR) by their letters, and every matched word's start and
end are compared. The first half of the sentences (dev) gives the median signed offset, reported with
the error of the second half (test) before and after subtracting it: a constant lag is a calibration,
a spread is not.
"""
from __future__ import annotations

import argparse
import difflib
import json
import re
import time
from pathlib import Path

import numpy as np

from lab.eval.asr import BEAM_SIZE, whisper_model
from lab.eval.audio import METRIC_RATE, peak_limit, resample

SENTENCES = (
    "The old lighthouse keeper climbed the stairs every evening at dusk.",
    "Please bring two loaves of bread and a jar of honey from the market.",
    "A sudden gust of wind scattered the papers across the kitchen floor.",
    "In 1990, the small village built a bridge over the river.",
    "She painted the fence blue, then sat down to watch it dry.",
    "Our train leaves at 7:45, so we should pack the bags tonight.",
    "The children laughed as the puppy chased its own tail in circles.",
    "Dr. Smith paid $5.50 for three apples and a pear.",
    "Every winter the lake freezes and the town holds a skating race.",
    "He opened the letter slowly, afraid of what it might say.",
    "The museum closes early on Sundays, except in the summer months.",
    "Warm soup and fresh bread make a fine supper on a rainy night.",
    "Fourteen boats sailed out of the harbor before the storm arrived.",
    "The garden was full of roses, tulips and tall yellow sunflowers.",
    "Nobody noticed the cat sleeping quietly on top of the bookshelf.",
    "They walked along the beach until the sun disappeared behind the hills.",
)
VOICES = ("ava_neutral", "leo_neutral", "mia_neutral", "noah_neutral")


def _key(word: str) -> str:
    return re.sub(r"[^a-z0-9]", "", word.lower())


def whisper_words(audio: np.ndarray, rate: int) -> list[tuple[str, float, float]]:
    """``(word, start, end)`` seconds as faster-whisper (tiny.en) hears and times them."""
    x = peak_limit(resample(audio, rate, METRIC_RATE))
    segments, _ = whisper_model().transcribe(x, language="en", beam_size=BEAM_SIZE, temperature=0.0,
                                             condition_on_previous_text=False, vad_filter=False,
                                             word_timestamps=True)
    return [(w.word.strip(), float(w.start), float(w.end)) for s in segments for w in (s.words or [])]


def matched_errors(ours, theirs) -> list[tuple[float, float]]:
    """Signed (start, end) differences, ours minus Whisper's, of the words both sides wrote the same.

    ``ours``: `WordTime`s; ``theirs``: ``(word, start, end)``. Words are compared by their letters; a number
    we write as digits matches Whisper's digits or words only where both wrote it the same way."""
    a, b = [_key(w.word) for w in ours], [_key(w[0]) for w in theirs]
    out = []
    for block in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_matching_blocks():
        for k in range(block.size):
            mine, other = ours[block.a + k], theirs[block.b + k]
            out.append((mine.start - other[1], mine.end - other[2]))
    return out


def evaluate(model: str, seed: int = 0) -> dict:
    from lina.tts import LinaTTS
    from lina.voice import Voice
    from lina_app.settings import DEFAULT_VOICES_DIR

    tts = LinaTTS.from_pretrained(model, device="cpu", watermark=False)  # the model, not the mark
    rows, started = [], time.perf_counter()
    for i, sentence in enumerate(SENTENCES):
        voice_id = VOICES[i % len(VOICES)]
        voice = Voice.load(DEFAULT_VOICES_DIR / f"{voice_id}.safetensors")
        out = tts.synthesize(sentence, voice, seed=seed)
        theirs = whisper_words(out.audio[0], out.sample_rate)
        errors = matched_errors(out.words[0], theirs)
        rows.append({"sentence": sentence, "voice": voice_id, "words": len(out.words[0]),
                     "whisper": " ".join(w[0] for w in theirs), "matched": len(errors),
                     "errors": [[round(s, 4), round(e, 4)] for s, e in errors]})
    half = len(rows) // 2
    dev = np.array([x for r in rows[:half] for pair in r["errors"] for x in pair])
    test = np.array([x for r in rows[half:] for pair in r["errors"] for x in pair])
    every = np.array([x for r in rows for pair in r["errors"] for x in pair])
    offset = float(np.median(dev)) if dev.size else 0.0
    return {
        "model": tts.name, "model_id": tts.model_id, "sentences": len(rows), "seed": seed,
        "asr": "faster-whisper tiny.en int8, word_timestamps=True",
        "matched_words": int(sum(r["matched"] for r in rows)), "words": int(sum(r["words"] for r in rows)),
        "median_abs_boundary_error_ms": round(1000 * float(np.median(np.abs(every))), 1) if every.size else None,
        "median_signed_boundary_error_ms": round(1000 * float(np.median(every)), 1) if every.size else None,
        "dev_offset_ms": round(1000 * offset, 1),
        "test_median_abs_error_ms": round(1000 * float(np.median(np.abs(test))), 1) if test.size else None,
        "test_median_abs_error_after_offset_ms":
            round(1000 * float(np.median(np.abs(test - offset))), 1) if test.size else None,
        "seconds": round(time.perf_counter() - started, 1),
        "rows": rows,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="embedded")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.model == "embedded":
        from lina_app.settings import EMBEDDED_MODEL_DIR

        args.model = str(EMBEDDED_MODEL_DIR)
    result = evaluate(args.model, args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "rows"}, indent=1))


if __name__ == "__main__":
    main()
