"""The embedded model on this CPU: real-time factor at batch 1 and time to first streamed audio.

    python -m lab.bench.cpu_embedded [--model assets/lina-mini] [--threads 1] [--repeats 3]
    python -m lab.bench.cpu_embedded --smoke     # one short sentence, one repeat, few step blocks (tests)

Prints a table and writes `$OUT/cpu_embedded.json`. Audio length is counted from the generated tokens
(75 per second), so the factor covers text encoding, generation and codec decoding. Each sentence runs
`--repeats` times: the minimum is what the machine can do, the median what sharing it costs (the load
average is recorded too). `--threads 1,2` measures several thread counts in one run.

Also times one decoding step at batch 1 in milliseconds (minimum and median over blocks of steps):
the step of the back end the app runs (`tts.backend`: the C step, `lina.ops.native`, where a compiler
is available), the fused PyTorch step (`lina.ops.fused_step`, TorchScript) and the modules' reference
step (`LinaModel.step`).
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import torch

from lab.bench.common import write_result
from lina.backends import Fused
from lina.constants import FRAME_RATE, SAMPLE_RATE
from lina.ops import native
from lina.request import text_rows
from lina.tts import LinaTTS

SENTENCES = (
    "it was a bright cold day in april, and the clocks were striking thirteen.",
    "the birch canoe slid on the smooth planks.",
    "hello, my name is lina.",
)
STEP_BLOCKS, STEPS_PER_BLOCK = 15, 40


def step_ms(tts: LinaTTS, step, blocks: int = STEP_BLOCKS) -> tuple[float, float]:
    """``(min, median)`` ms of ``step(ctx, token, state)`` at batch 1 over blocks of steps."""
    model = tts.model
    ids, lengths, _ = text_rows([SENTENCES[0]], tts.tokenizer, model.cfg.max_text_len)
    with torch.inference_mode():
        ctx = model.encode_text(ids, lengths)
        state, token = model.init_state(1), torch.tensor([5])
        for _ in range(20):
            state = step(ctx, token, state).state
        times = []
        for _ in range(blocks):
            start = time.perf_counter()
            for _ in range(STEPS_PER_BLOCK):
                state = step(ctx, token, state).state
            times.append((time.perf_counter() - start) / STEPS_PER_BLOCK * 1e3)
    return round(min(times), 2), round(statistics.median(times), 2)


def sentence_row(tts: LinaTTS, text: str, repeats: int) -> dict:
    rtf, first, stream_rtf, tokens = [], [], [], 0
    for _ in range(repeats):
        start = time.perf_counter()
        out = tts.synthesize(text, seed=0)
        rtf.append((time.perf_counter() - start) / (out.tokens / FRAME_RATE))
        tokens = out.tokens
        start = time.perf_counter()
        chunks = tts.stream(text, seed=0)
        audio = next(chunks)
        first.append(time.perf_counter() - start)
        samples = len(audio) + sum(len(c) for c in chunks)
        stream_rtf.append((time.perf_counter() - start) / (samples / SAMPLE_RATE))
    best = min(rtf)
    return {"text": text, "tokens": tokens, "audio_s": round(tokens / FRAME_RATE, 2),
            "rtf": round(best, 3), "rtf_median": round(statistics.median(rtf), 3),
            "tokens_per_s": round(FRAME_RATE / best, 1), "first_audio_ms": round(min(first) * 1000),
            "first_audio_ms_median": round(statistics.median(first) * 1000),
            "stream_rtf": round(min(stream_rtf), 3)}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="assets/lina-mini")
    parser.add_argument("--threads", default="1", help="comma-separated thread counts (torch.set_num_threads)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--smoke", action="store_true", help="the shortest sentence once, 2 step blocks")
    args = parser.parse_args(argv)
    sentences, blocks = (SENTENCES[-1:], 2) if args.smoke else (SENTENCES, STEP_BLOCKS)
    if args.smoke:
        args.repeats = 1
    tts = LinaTTS.from_pretrained(args.model)  # with the watermark, as the app serves (real-time factor includes it)
    native.load(wait=True)  # the C step is built in the background on first use: time it built
    runs = []
    for threads in (int(t) for t in args.threads.split(",")):
        torch.set_num_threads(threads)
        load_before = os.getloadavg()[0]
        tts.synthesize("warm up.", seed=0)
        steps = {"step": step_ms(tts, tts.backend.step, blocks), "fused": step_ms(tts, Fused(tts.model).step, blocks),
                 "reference": step_ms(tts, tts.model.step, blocks)}
        rows = [sentence_row(tts, text, args.repeats) for text in sentences]
        runs.append({"threads": threads, "step_ms_min_median": steps, "rows": rows,
                     "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)]})
        print(f"\nthreads {threads}, load {runs[-1]['load_average']}: step ms min / median: "
              + ", ".join(f"{k} {v[0]} / {v[1]}" for k, v in steps.items()))
        print("| audio s | RTF min (median) | tokens/s | first audio min (median) | stream RTF |\n|---|---|---|---|---|")
        for r in rows:
            print(f"| {r['audio_s']} | {r['rtf']} ({r['rtf_median']}) | {r['tokens_per_s']} | "
                  f"{r['first_audio_ms']} ms ({r['first_audio_ms_median']} ms) | {r['stream_rtf']} |")
    packed = tts.backend.packed() if hasattr(tts.backend, "packed") else None
    int8 = packed is not None and bool(getattr(packed.cache.get("native"), "int8", None))
    result = {"model": args.model, "model_id": tts.model_id, "smoke": args.smoke, "backend": tts.backend.name,
              "step": ("C, int8-form matrices" if int8 else "C") if native.load(wait=True)
              else "fused PyTorch (no C compiler)",
              "cpu": platform.processor() or platform.machine(),
              "cores": os.cpu_count(), "repeats": args.repeats, "runs": runs}
    path = write_result("cpu_embedded", result)
    print(f"written {path}")
    return result


if __name__ == "__main__":
    main()
