"""Bulk synthesis: a JSONL file of jobs -> ``OUT/<id>.wav`` each, on one process or many (torchrun).

    python -m lina.batch --jobs jobs.jsonl --out out --voices voices --model assets/lina-mini
    torchrun --nnodes 2 --nproc-per-node 8 --rdzv-backend c10d --rdzv-endpoint HOST:29500 -m lina.batch ...

Each rank (torchrun's ``RANK`` of ``WORLD_SIZE``; one rank without torchrun) takes the jobs whose id
hashes to it, splits their texts into sentences as `LinaTTS.synthesize` does, packs sentences of
similar length into batches whatever their voices (a voice is a row's initial state), generates each
batch with one `LinaTTS.generate_rows` call (the app's decoding back end), joins each job's sentences
and writes its WAV (24 kHz, 16-bit) atomically, then a line of ``OUT/manifest-<rank>.jsonl``. A rerun
skips the ids written; a bad job is a ``failed`` line with its reason, never the end of the run.
Sampling: one seed per batch, from its jobs' ids and seeds (`lina.batch_plan.batch_seed`); ``--top-k 1``
(greedy) makes every job's audio independent of what it was batched with.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
import soundfile
import torch
from tqdm import tqdm

from lina.batch_plan import (FAILED, OK, Job, Manifest, Outcome, Row, batch_seed, done_ids, pack, rank_of, read_jobs,
                             windows)
from lina.constants import SAMPLE_RATE
from lina.sampling import DEFAULT_TOP_K
from lina.tokenizer import prepare_text
from lina.tts import MAX_ROW_SECONDS, LinaTTS, join_rows
from lina.voice import Voice

CPU_BATCH = 16                # rows per batch on a CPU: beyond this the step's cost grows ~linearly anyway
MAX_AUTO_BATCH = 256          # a CUDA batch past this gains little (the step is compute-bound by then)
MEMORY_FRACTION = 0.5         # of the free GPU memory the automatic batch size plans to use
STATE_COPIES = 4              # the state, its update and the graph's buffers: bytes per row ~ this x the state
CODEC_BYTES_PER_SAMPLE = 64   # the codec's decode of one row: hidden frames and iSTFT buffers per output sample
WINDOW_BATCHES = 8            # jobs are taken in windows of this many batches' rows (bounded memory, resume)
PARAGRAPH_PAUSE = 0.5         # seconds of silence between paragraphs (blank lines) of a job's text


@dataclass(frozen=True)
class Options:
    top_k: int = DEFAULT_TOP_K
    temperature: float = 1.0
    max_seconds: float = MAX_ROW_SECONDS
    batch_size: int = 0        # 0: chosen (`auto_batch_size`)
    max_jobs: int = 0          # > 0: this rank stops after writing that many files (a time-boxed run)


@dataclass
class Stats:
    rank: int = 0
    files: int = 0
    failed: int = 0
    skipped: int = 0
    audio_seconds: float = 0.0
    tokens: int = 0
    seconds: float = 0.0       # generation and decoding
    wall: float = 0.0
    reasons: list[str] = field(default_factory=list)

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / max(self.seconds, 1e-9)


def auto_batch_size(tts: LinaTTS, max_seconds: float) -> int:
    """Rows per batch: `CPU_BATCH` on a CPU; on CUDA what `MEMORY_FRACTION` of the free memory holds."""
    if tts.device.type != "cuda":
        return CPU_BATCH
    cfg = tts.model.cfg
    state = 2 * cfg.n_layer * cfg.n_heads * cfg.head_k_dim * cfg.head_v_dim * 4 * STATE_COPIES
    row = state + int(max_seconds * SAMPLE_RATE) * CODEC_BYTES_PER_SAMPLE
    free, _ = torch.cuda.mem_get_info(tts.device)
    return int(max(1, min(MAX_AUTO_BATCH, free * MEMORY_FRACTION // row)))


class Inputs:
    """Voices and prompt clips by name, each loaded once; a bad one raises ValueError in plain words."""

    def __init__(self, tts: LinaTTS, voices_dir: Path | None, base: Path):
        self.tts, self.voices_dir, self.base = tts, voices_dir, base
        self.cache: dict[tuple[str, str], object] = {}

    def _cached(self, kind: str, name: str, load):
        if (kind, name) not in self.cache:
            try:
                self.cache[kind, name] = load(name)
            except Exception as exc:  # any unreadable input fails its jobs, never the run
                self.cache[kind, name] = ValueError(f"{kind} {name!r}: {exc}")
        value = self.cache[kind, name]
        if isinstance(value, ValueError):
            raise value
        return value

    def _file(self, name: str) -> Path | None:
        for path in (Path(name), self.base / name):
            if path.is_file():
                return path
        return None

    def voice(self, name: str | None) -> Voice | None:
        if name is None:
            return None

        def load(name: str) -> Voice:
            path = self._file(name) or (self.voices_dir / f"{name}.safetensors" if self.voices_dir else None)
            if path is None or not path.is_file():
                raise ValueError("no such voice file or preset" + ("" if self.voices_dir else " (no --voices folder)"))
            voice = Voice.load(path)
            voice.check(self.tts.model.cfg)
            return voice

        return self._cached("voice", name, load)

    def prompt(self, name: str | None) -> torch.Tensor | None:
        if name is None:
            return None
        return self._cached("prompt clip", name, lambda n: self.tts.encode_prompt(self._file(n) or n))


class Spoken(NamedTuple):
    wave: np.ndarray            # [S] float32
    finished: bool              # ended with EOS within its limit
    codes: torch.Tensor         # [T] codec ids
    seconds: float              # its share of its batch's wall time


@dataclass
class Prepared:
    """A job ready to generate: its sentences, the silence after each, and its voice."""

    job: Job
    sentences: list[str]
    pauses: list[float]
    lead: float
    voice: Voice | None
    rows: dict[int, Spoken] = field(default_factory=dict)   # sentence index -> its generated row


def prepare(tts: LinaTTS, inputs: Inputs, job: Job) -> Prepared:
    """A job's text planned as `synthesize` plans it (pause marks, sentences), paragraph by paragraph so a
    chapter is not bound by one request's sentence limit; raises ValueError/TextError with the reason."""
    voice = inputs.voice(job.voice)
    inputs.prompt(job.prompt)
    sentences, pauses, lead = [], [], 0.0
    paragraphs = [p for p in job.text.replace("\r\n", "\n").split("\n\n") if any(ch.isalnum() for ch in p)]
    for number, paragraph in enumerate(paragraphs or [job.text]):
        plan = tts.plan(paragraph)
        if number == 0:
            lead = plan.lead
        elif pauses:
            pauses[-1] = max(pauses[-1], PARAGRAPH_PAUSE)
        sentences += plan.sentences
        pauses += plan.pauses
    prefix = job.transcript or ""
    for sentence in sentences:  # a sentence the tokenizer refuses fails its job here, not its whole batch
        prepare_text(f"{prefix} {sentence}".strip(), tts.tokenizer, tts.model.cfg.max_text_len)
    return Prepared(job, sentences, pauses, lead, voice)


def write_wav(out: Path, job_id: str, audio: np.ndarray, rank: int) -> None:
    """``OUT/<id>.wav`` appears whole or not at all: written beside, then renamed over."""
    tmp = out / f".{job_id}.{rank}.tmp.wav"
    soundfile.write(tmp, np.clip(audio, -1.0, 1.0), SAMPLE_RATE, subtype="PCM_16")
    os.replace(tmp, out / f"{job_id}.wav")


class Runner:
    def __init__(self, tts: LinaTTS, out: Path, inputs: Inputs, options: Options, rank: int = 0):
        self.tts, self.out, self.inputs, self.options, self.rank = tts, out, inputs, options, rank
        self.batch_size = options.batch_size or auto_batch_size(tts, options.max_seconds)
        self.stats = Stats(rank)
        self.manifest = Manifest(out, rank)

    def record(self, outcome: Outcome) -> None:
        self.manifest.write(outcome)
        if outcome.status == FAILED:
            self.stats.failed += 1
            self.stats.reasons.append(f"{outcome.id}: {outcome.reason}")

    def run(self, jobs: list[Job], progress: tqdm) -> Stats:
        start = time.perf_counter()
        for window in windows(jobs, self.batch_size * WINDOW_BATCHES):
            if self.options.max_jobs and self.stats.files >= self.options.max_jobs:
                break
            self.run_window(window, progress)
        self.stats.wall = time.perf_counter() - start
        self.manifest.close()
        return self.stats

    def run_window(self, window: list[Job], progress: tqdm) -> None:
        ready: dict[str, Prepared] = {}
        for job in window:
            try:
                ready[job.id] = prepare(self.tts, self.inputs, job)
            except Exception as exc:  # TextError, a missing voice, an unreadable clip: that job only
                self.record(Outcome(job.id, FAILED, rank=self.rank, reason=str(exc)))
                progress.update()
        rows = [Row(p.job, i, s, p.job.voice) for p in ready.values() for i, s in enumerate(p.sentences)]
        for batch in pack(rows, self.batch_size):
            if self.options.max_jobs and self.stats.files >= self.options.max_jobs:
                return
            for job_id in self.generate(batch, ready):
                if self.options.max_jobs and self.stats.files >= self.options.max_jobs:
                    return
                self.finish(ready.pop(job_id))
                progress.update()

    def generate(self, batch: list[Row], ready: dict[str, Prepared]) -> list[str]:
        """Generates one batch (halved on a CUDA out-of-memory); -> ids of the jobs it completed."""
        batch = [r for r in batch if r.job.id in ready]  # a job failed by an earlier batch is dropped
        if not batch:
            return []
        job = batch[0].job
        try:
            start = time.perf_counter()
            result = self.tts.generate_rows(
                [r.text for r in batch], [ready[r.job.id].voice for r in batch], top_k=self.options.top_k,
                temperature=self.options.temperature, seed=batch_seed(batch), max_seconds=self.options.max_seconds,
                prompt=self.inputs.prompt(job.prompt), prefix=job.transcript or "")
            seconds = time.perf_counter() - start
        except torch.cuda.OutOfMemoryError:
            if len(batch) == 1:
                return self.fail(batch, ready, "out of GPU memory for one sentence")
            torch.cuda.empty_cache()
            half = len(batch) // 2
            return self.generate(batch[:half], ready) + self.generate(batch[half:], ready)
        except Exception as exc:  # noqa: BLE001 - one bad batch fails its jobs, not the run
            return self.fail(batch, ready, f"generation failed: {exc}")
        tokens = sum(len(c) for c in result.codes)
        self.stats.tokens += tokens
        self.stats.seconds += seconds
        completed = []
        for row, wave, codes, finished in zip(batch, result.waves, result.codes, result.finished):
            prepared = ready[row.job.id]
            prepared.rows[row.index] = Spoken(wave, finished, codes, seconds * len(codes) / max(tokens, 1))
            if len(prepared.rows) == len(prepared.sentences):
                completed.append(row.job.id)
        return completed

    def fail(self, batch: list[Row], ready: dict[str, Prepared], reason: str) -> list[str]:
        for job_id in dict.fromkeys(r.job.id for r in batch):
            if job_id in ready:
                self.record(Outcome(job_id, FAILED, rank=self.rank, reason=reason))
                del ready[job_id]
        return []

    def finish(self, prepared: Prepared) -> None:
        rows = [prepared.rows[i] for i in range(len(prepared.sentences))]
        audio, _ = join_rows([r.wave for r in rows], prepared.pauses, prepared.lead)
        audio = self.tts.mark(audio)
        write_wav(self.out, prepared.job.id, audio, self.rank)
        duration = len(audio) / SAMPLE_RATE
        self.stats.files += 1
        self.stats.audio_seconds += duration
        self.record(Outcome(prepared.job.id, OK, round(duration, 3), all(r.finished for r in rows),
                            round(sum(r.seconds for r in rows), 4), sum(len(r.codes) for r in rows), self.rank))


# ---- processes and the command line ---------------------------------------------------------------
def distributed() -> tuple[int, int, int]:
    """``(rank, world size, local rank)``: torchrun's, with the process group joined (gloo on the CPU,
    NCCL on CUDA), or ``(0, 1, 0)`` for a plain ``python -m lina.batch``."""
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        return 0, 1, 0
    rank, world, local = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ.get("LOCAL_RANK", 0))
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(local)
    torch.distributed.init_process_group("nccl" if cuda else "gloo")
    return rank, world, local


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
        options = Options(args.top_k, args.temperature, args.max_seconds, args.batch_size, args.max_jobs)
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
