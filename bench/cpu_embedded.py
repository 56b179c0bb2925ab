"""The embedded model on this CPU: real-time factor at batch 1 and time to first streamed audio.

    python -m bench.cpu_embedded [--model assets/lina-mini] [--threads 2]

Prints a table and writes `$OUT/cpu_embedded.json`. Audio length is counted from the generated tokens
(75 per second), so the factor covers text encoding, generation and codec decoding.
"""
from __future__ import annotations

import argparse
import platform
import time

import torch

from bench.common import write_result
from lina.constants import FRAME_RATE, SAMPLE_RATE
from lina.tts import LinaTTS

SENTENCES = (
    "it was a bright cold day in april, and the clocks were striking thirteen.",
    "the birch canoe slid on the smooth planks.",
    "hello, my name is lina.",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="assets/lina-mini")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    tts = LinaTTS.from_pretrained(args.model)
    tts.synthesize("warm up.", seed=0)
    rows = []
    for text in SENTENCES:
        start = time.perf_counter()
        out = tts.synthesize(text, seed=0)
        batch_seconds = time.perf_counter() - start
        start = time.perf_counter()
        chunks = tts.stream(text, seed=0)
        first = next(chunks)
        first_audio = time.perf_counter() - start
        samples = len(first) + sum(len(c) for c in chunks)
        stream_seconds = time.perf_counter() - start
        audio = out.tokens / FRAME_RATE
        rows.append({"text": text, "tokens": out.tokens, "audio_s": round(audio, 2),
                     "rtf": round(batch_seconds / audio, 3), "tokens_per_s": round(out.tokens / batch_seconds, 1),
                     "first_audio_ms": round(first_audio * 1000), "stream_rtf": round(stream_seconds / (samples / SAMPLE_RATE), 3)})
    print("| audio s | RTF | tokens/s | first audio (stream) | stream RTF |\n|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['audio_s']} | {r['rtf']} | {r['tokens_per_s']} | {r['first_audio_ms']} ms | {r['stream_rtf']} |")
    path = write_result("cpu_embedded", {"model": args.model, "threads": args.threads,
                                         "cpu": platform.processor() or platform.machine(), "rows": rows})
    print(f"written {path}")


if __name__ == "__main__":
    main()
