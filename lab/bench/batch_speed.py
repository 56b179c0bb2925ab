"""Bulk synthesis (`lina.batch`) against a plain loop of `LinaTTS.synthesize` calls, on one device.

    python -m lab.bench.batch_speed                                   # CUDA, random weights of the released size
    python -m lab.bench.batch_speed --model tiny-random --device cpu --jobs 6 --loop-jobs 2 --row-seconds 1   # smoke

``--jobs`` jobs of one or two sentences go through `lina.batch.Runner` (the code ``python -m lina.batch``
runs) twice: with ``--voices`` different voices mixed in every batch, then all with one voice; then the
first ``--loop-jobs`` of them one `synthesize` call each (what a user's own loop does: a job's sentences
are its batch). All three in one process, after a warm-up that compiles the batch shapes. Random weights
rarely emit EOS, so every row runs to its cap (``--row-seconds``): the work is the same in each mode.
Writes ``$OUT/batch_speed.json``: per mode audio hours per device-hour, tokens/s; the ratios to the loop.
"""
from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import torch
from tqdm import tqdm

from lab.bench.space_path import _bundle
from lina.batch import Inputs, Options, Runner, auto_batch_size, default_writers
from lina.batch_plan import Job
from lina.tts import LinaTTS
from lina.voice import Voice

WORDS = ("the river morning boats harbour quiet light along early twelve counted record season window "
         "people walked slowly across bridge market opened bread warm coffee letters arrived yesterday").split()
WARMUP_JOBS = 3                  # batches of every size class the timed runs meet: compiled before timing


def sentences(rng: random.Random) -> str:
    """One or two sentences of 6-14 words: the job sizes of a data set or an app's requests."""
    said = []
    for _ in range(rng.choice((1, 2))):
        words = rng.sample(WORDS, rng.randint(6, 14))
        said.append(" ".join(words).capitalize() + ".")
    return " ".join(said)


def random_voice(tts: LinaTTS, seed: int) -> Voice:
    """An initial state as a tuning makes one (random here: the cost is a voice's, whatever it says)."""
    c, gen = tts.model.cfg, torch.Generator().manual_seed(seed)
    return Voice(0.1 * torch.randn(c.n_tunable_layers, 1, c.n_heads, c.head_k_dim, generator=gen),
                 0.1 * torch.randn(c.n_tunable_layers, 1, c.n_heads, c.head_v_dim, generator=gen), 1.0,
                 model_id=tts.model_id, name=f"random {seed}")


def sync(tts: LinaTTS) -> None:
    if tts.device.type == "cuda":
        torch.cuda.synchronize(tts.device)


def run_batch(tts: LinaTTS, jobs: list[Job], out: Path, voices: Path, options: Options) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    runner = Runner(tts, out, Inputs(tts, voices, voices), options)
    sync(tts)
    with tqdm(total=len(jobs), desc=out.name, unit="job") as progress:
        stats = runner.run(jobs, progress)
    sync(tts)
    return {"jobs": len(jobs), "files": stats.files, "failed": stats.failed, "batch_size": runner.batch_size,
            "wall_s": round(stats.wall, 2), "audio_s": round(stats.audio_seconds, 1), "tokens": stats.tokens,
            "tokens_per_s": round(stats.tokens / max(stats.wall, 1e-9), 1),
            "audio_h_per_device_h": round(stats.audio_seconds / max(stats.wall, 1e-9), 1)}


def run_loop(tts: LinaTTS, jobs: list[Job], voices: Path, options: Options) -> dict:
    inputs = Inputs(tts, voices, voices)
    audio = tokens = 0
    sync(tts)
    start = time.perf_counter()
    for job in tqdm(jobs, desc="synthesize loop", unit="job"):
        out = tts.synthesize(job.text, voice=inputs.voice(job.voice), top_k=options.top_k,
                             max_seconds=options.max_seconds, seed=job.seed)
        audio += out.duration
        tokens += out.tokens
    sync(tts)
    wall = time.perf_counter() - start
    return {"jobs": len(jobs), "wall_s": round(wall, 2), "audio_s": round(audio, 1), "tokens": tokens,
            "tokens_per_s": round(tokens / max(wall, 1e-9), 1), "audio_h_per_device_h": round(audio / max(wall, 1e-9), 1)}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="random-released", help="random-released | embedded | tiny-random | folder")
    p.add_argument("--device", default=None)
    p.add_argument("--backend", default="auto")
    p.add_argument("--jobs", type=int, default=1000)
    p.add_argument("--voices", type=int, default=8, help="different voices mixed in the first run")
    p.add_argument("--loop-jobs", type=int, default=100, help="jobs of the synthesize loop (its rate is per job)")
    p.add_argument("--batch-size", type=int, default=0, help="0: lina.batch's choice from free memory")
    p.add_argument("--row-seconds", type=float, default=8.0, help="cap of each sentence (600 tokens at 8 s)")
    p.add_argument("--top-k", type=int, default=100)
    p.add_argument("--watermark", action="store_true", help="watermark the batch outputs (needs resemble-perth)")
    p.add_argument("--out", type=Path, default=None, help="default $OUT or ./out")
    return p.parse_args(argv)


def main(argv=None) -> dict:
    import os
    args = parse_args(argv)
    out = args.out or Path(os.environ.get("OUT", "out"))
    work = out / "batch_speed_files"
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    tts = LinaTTS(_bundle(args), device=device, backend=args.backend, watermark=args.watermark)
    (work / "voices").mkdir(parents=True, exist_ok=True)
    for v in range(args.voices):
        random_voice(tts, v).save(work / "voices" / f"v{v}.safetensors")
    rng = random.Random(0)
    texts = [sentences(rng) for _ in range(args.jobs)]
    mixed = [Job(f"mixed-{i:05d}", t, f"v{i % args.voices}", seed=i) for i, t in enumerate(texts)]
    single = [Job(f"one-{i:05d}", t, "v0", seed=i) for i, t in enumerate(texts)]
    batch = args.batch_size or auto_batch_size(tts, args.row_seconds)
    options = Options(top_k=args.top_k, max_seconds=args.row_seconds, batch_size=batch, writers=default_writers())
    result = {"model": args.model, "device": str(tts.device), "backend": tts.backend.name,
              "gpu": torch.cuda.get_device_name(tts.device) if tts.device.type == "cuda" else "",
              "watermark": args.watermark, "writers": options.writers, "row_seconds": args.row_seconds, "top_k": args.top_k}
    start = time.perf_counter()   # warm-up: the full batch shape, a lone row, synthesize at batch 1 and 2
    warm = [Job(f"warm-{i}", t, f"v{i % args.voices}") for i, t in enumerate(texts[:batch])]
    run_batch(tts, warm, work / "warmup", work / "voices", options)
    run_batch(tts, warm[:1], work / "warmup-1", work / "voices", options)
    run_loop(tts, mixed[:WARMUP_JOBS], work / "voices", options)
    result["warmup_s"] = round(time.perf_counter() - start, 1)
    result["mixed"] = run_batch(tts, mixed, work / "mixed", work / "voices", options)
    result["one_voice"] = run_batch(tts, single, work / "one", work / "voices", options)
    result["loop"] = run_loop(tts, mixed[: args.loop_jobs], work / "voices", options)
    rate = {k: result[k]["audio_h_per_device_h"] for k in ("mixed", "one_voice", "loop")}
    result["mixed_vs_loop"] = round(rate["mixed"] / max(rate["loop"], 1e-9), 1)
    result["mixing_cost_percent"] = round(100 * (1 - result["mixed"]["tokens_per_s"]
                                                  / max(result["one_voice"]["tokens_per_s"], 1e-9)), 1)
    out.mkdir(parents=True, exist_ok=True)
    (out / "batch_speed.json").write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1), flush=True)
    return result


if __name__ == "__main__":
    main()
