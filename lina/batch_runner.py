"""One rank's work in `lina.batch`: jobs prepared (voices, prompt clips, sentences), batches generated with
`LinaTTS.generate_rows`, finished jobs watermarked and written by writer threads, outcomes recorded.

    runner = Runner(tts, Path("out"), Inputs(tts, Path("voices"), Path(".")), Options(batch_size=64))
    stats = runner.run(jobs, progress)          # progress: a tqdm bar
"""
from __future__ import annotations

import os
import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
import soundfile
import torch
from tqdm import tqdm

from lina.batch_plan import FAILED, OK, Job, Manifest, Outcome, Row, batch_seed, pack, windows
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
MAX_WRITERS = 8               # threads that watermark and write finished jobs while the device generates
WRITER_QUEUE = 4              # finished jobs waiting per writer before generation waits for them


@dataclass(frozen=True)
class Options:
    top_k: int = DEFAULT_TOP_K
    temperature: float = 1.0
    max_seconds: float = MAX_ROW_SECONDS
    batch_size: int = 0        # 0: chosen (`auto_batch_size`)
    max_jobs: int = 0          # > 0: this rank stops after writing that many files (a time-boxed run)
    writers: int = 1           # threads marking and writing finished jobs (`default_writers`)


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


def default_writers(local_world: int = 1) -> int:
    """Writer threads per rank: this host's cores shared by its ranks, one left for the decoding loop.
    The watermark runs on the CPU (~0.02 s per second of audio on one core): a GPU batch makes audio
    faster than one thread marks it."""
    return max(1, min(MAX_WRITERS, (os.cpu_count() or 2) // max(local_world, 1) - 1))


class Runner:
    """One rank's loop: prepares a window of jobs, generates its batches on the device, and hands each
    finished job to the writer threads (watermark, WAV, manifest line) while the next batch generates."""

    def __init__(self, tts: LinaTTS, out: Path, inputs: Inputs, options: Options, rank: int = 0):
        self.tts, self.out, self.inputs, self.options, self.rank = tts, out, inputs, options, rank
        self.batch_size = options.batch_size or auto_batch_size(tts, options.max_seconds)
        self.stats = Stats(rank)
        self.manifest = Manifest(out, rank)
        self.lock = threading.RLock()   # the manifest and the stats, shared with the writers
        self.n_writers = max(1, options.writers)
        self.writers = ThreadPoolExecutor(self.n_writers, thread_name_prefix=f"lina-writer-{rank}")
        self.pending: deque[Future] = deque()
        self.submitted = 0

    def record(self, outcome: Outcome) -> None:
        with self.lock:
            self.manifest.write(outcome)
            if outcome.status == FAILED:
                self.stats.failed += 1
                self.stats.reasons.append(f"{outcome.id}: {outcome.reason}")

    def full(self) -> bool:
        return bool(self.options.max_jobs) and self.submitted >= self.options.max_jobs

    def run(self, jobs: list[Job], progress: tqdm) -> Stats:
        start = time.perf_counter()
        try:
            for window in windows(jobs, self.batch_size * WINDOW_BATCHES):
                if self.full():
                    break
                self.run_window(window, progress)
            while self.pending:
                self.pending.popleft().result()
        finally:
            self.writers.shutdown(wait=True)
            self.manifest.close()
        self.stats.wall = time.perf_counter() - start
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
            if self.full():
                return
            for job_id in self.generate(batch, ready):
                if self.full():
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
                prompt=self.inputs.prompt(job.prompt), prefix=job.transcript or "", timestamps=False)
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
        """Hands a complete job to the writers; waits when too many are queued (bounded memory)."""
        self.submitted += 1
        self.pending.append(self.writers.submit(self.write, prepared))
        while len(self.pending) > WRITER_QUEUE * self.n_writers or (self.pending and self.pending[0].done()):
            self.pending.popleft().result()

    def write(self, prepared: Prepared) -> None:
        """(a writer thread) A job's sentences joined, watermarked, written; then its manifest line."""
        rows = [prepared.rows[i] for i in range(len(prepared.sentences))]
        try:
            audio, _ = join_rows([r.wave for r in rows], prepared.pauses, prepared.lead)
            audio = self.tts.mark(audio)
            write_wav(self.out, prepared.job.id, audio, self.rank)
        except Exception as exc:  # noqa: BLE001 - e.g. a full disk: that job is failed, with the reason
            self.record(Outcome(prepared.job.id, FAILED, rank=self.rank, reason=f"writing failed: {exc}"))
            return
        duration = len(audio) / SAMPLE_RATE
        with self.lock:
            self.stats.files += 1
            self.stats.audio_seconds += duration
        self.record(Outcome(prepared.job.id, OK, round(duration, 3), all(r.finished for r in rows),
                            round(sum(r.seconds for r in rows), 4), sum(len(r.codes) for r in rows), self.rank))
