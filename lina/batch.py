"""Bulk synthesis: a JSONL file of jobs -> ``OUT/<id>.wav`` each, on one process or many (torchrun).

    python -m lina.batch --jobs jobs.jsonl --out out --voices voices --model assets/lina-mini
    torchrun --nnodes 2 --nproc-per-node 8 --rdzv-backend c10d --rdzv-endpoint HOST:29500 -m lina.batch ...

Each rank (torchrun's ``RANK`` of ``WORLD_SIZE``; one rank without torchrun) takes the jobs whose id
hashes to it, splits their texts into sentences as `LinaTTS.synthesize` does, packs sentences of
similar length into batches whatever their voices (a voice is a row's initial state), generates each
batch with one `LinaTTS.generate_rows` call (the app's decoding back end); writer threads join each
job's sentences, watermark it (the library's default; ``--no-watermark`` for research) and write its WAV
(24 kHz, 16-bit) atomically, then a line of ``OUT/manifest-<rank>.jsonl``, while the next batch generates. A rerun
skips the ids written; a bad job is a ``failed`` line with its reason, never the end of the run.
Sampling: one seed per batch, from its jobs' ids and seeds (`lina.batch_plan.batch_seed`); ``--top-k 1``
(greedy) makes every job's audio independent of what it was batched with.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import torch
from tqdm import tqdm

from lina import process_group
from lina.batch_plan import Outcome, done_ids, rank_of, read_jobs
from lina.batch_runner import Inputs, Options, Runner, Stats, auto_batch_size, default_writers, prepare
from lina.sampling import DEFAULT_TOP_K
from lina.tts import MAX_ROW_SECONDS, LinaTTS

__all__ = ["Inputs", "Options", "Runner", "Stats", "auto_batch_size", "default_writers", "main", "prepare"]


# ---- processes and the command line ---------------------------------------------------------------
def distributed() -> tuple[int, int, int]:
    """``(rank, world size, local rank)``: torchrun's, with the process group joined (gloo on the CPU,
    NCCL on CUDA, NVLink multicast off), or ``(0, 1, 0)`` for a plain ``python -m lina.batch``."""
    world, _ = process_group.init()
    return world.rank, world.size, world.local_rank


def summarize(all_stats: list[Stats], out: Path) -> dict:
    """Per rank and in total: files, failures, audio hours, tokens/s; written to ``OUT/summary.json``."""
    ranks = [{"rank": s.rank, "files": s.files, "failed": s.failed, "skipped": s.skipped,
              "audio_hours": round(s.audio_seconds / 3600, 4), "tokens": s.tokens,
              "tokens_per_second": round(s.tokens_per_second, 1), "wall_seconds": round(s.wall, 2)} for s in all_stats]
    wall = max(s.wall for s in all_stats)
    total = {"files": sum(s.files for s in all_stats), "failed": sum(s.failed for s in all_stats),
             "skipped": sum(s.skipped for s in all_stats),
             "audio_hours": round(sum(s.audio_seconds for s in all_stats) / 3600, 4),
             "tokens": sum(s.tokens for s in all_stats),
             "tokens_per_second": round(sum(s.tokens for s in all_stats) / max(wall, 1e-9), 1),
             "wall_seconds": round(wall, 2),
             "failures": [r for s in all_stats for r in s.reasons]}
    summary = {"ranks": ranks, "total": total}
    (out / "summary.json").write_text(json.dumps(summary, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return summary


def print_summary(summary: dict) -> None:
    for r in summary["ranks"] + [dict(summary["total"], rank="all")]:
        print(f"rank {r['rank']}: {r['files']} files, {r['failed']} failed, {r['skipped']} already done, "
              f"{r['audio_hours']:.4f} h of audio, {r['tokens_per_second']:.0f} tokens/s", flush=True)
    for reason in summary["total"]["failures"][:20]:
        print(f"  failed {reason}", flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m lina.batch", description=__doc__.split("\n\n")[0])
    p.add_argument("--jobs", required=True, type=Path, help="JSONL: one {id, text[, voice, seed, prompt, transcript]}")
    p.add_argument("--out", required=True, type=Path, help="folder of <id>.wav and the manifests (shared by all hosts)")
    p.add_argument("--voices", type=Path, default=None, help="folder of preset voices (<id>.safetensors)")
    p.add_argument("--model", default="released", help="released, tiny-random, a model folder or a .ckpt")
    p.add_argument("--device", default=None, help="default: this rank's GPU, else the CPU")
    p.add_argument("--backend", default="auto", help="decode back end (lina.backends); auto as the app")
    p.add_argument("--batch-size", type=int, default=0, help="rows per batch; 0: from free GPU memory")
    p.add_argument("--top-k", type=int, default=DEFAULT_TOP_K, help="1: greedy (batch-independent audio)")
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--max-seconds", type=float, default=MAX_ROW_SECONDS, help="length limit of one sentence")
    p.add_argument("--max-jobs", type=int, default=0, help="each rank stops after writing this many files")
    p.add_argument("--writers", type=int, default=0, help="threads marking and writing WAVs; 0: from the cores")
    p.add_argument("--no-watermark", action="store_true", help="research only: audio without the watermark")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    rank, world, local = distributed()
    try:
        args.out.mkdir(parents=True, exist_ok=True)
        jobs, bad = read_jobs(args.jobs)
        done = done_ids(args.out)
        mine = [j for j in jobs if rank_of(j.id, world) == rank and j.id not in done]
        device = args.device or (f"cuda:{local}" if torch.cuda.is_available() else "cpu")
        tts = LinaTTS.from_pretrained(args.model, device=device, backend=args.backend, watermark=not args.no_watermark)
        writers = args.writers or default_writers(int(os.environ.get("LOCAL_WORLD_SIZE", 1)))
        options = Options(args.top_k, args.temperature, args.max_seconds, args.batch_size, args.max_jobs, writers)
        runner = Runner(tts, args.out, Inputs(tts, args.voices, args.jobs.resolve().parent), options, rank)
        runner.stats.skipped = sum(rank_of(j.id, world) == rank for j in jobs) - len(mine)
        for outcome in bad:
            if rank_of(outcome.id, world) == rank:
                runner.record(Outcome(**{**outcome.__dict__, "rank": rank}))
        with tqdm(total=len(mine), desc=f"rank {rank}", unit="job", position=rank if world <= 8 else None,
                  file=sys.stderr, dynamic_ncols=True) as progress:
            stats = runner.run(mine, progress)
        gathered = [stats]
        if world > 1:
            gathered = [None] * world
            torch.distributed.all_gather_object(gathered, stats)
        if rank == 0:
            print_summary(summarize(gathered, args.out))
    finally:
        if torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
