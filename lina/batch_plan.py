"""The bookkeeping of `lina.batch`, without a model: job lines, each rank's share, packing rows into
batches, and the manifest that makes a rerun resume.

    jobs, bad = read_jobs("jobs.jsonl")              # bad: [Outcome(status="failed", reason=...)]
    mine = [j for j in jobs if rank_of(j.id, world) == rank]
    batches = pack(rows, batch_size)                 # rows of similar length together, any voices mixed

A job line is a JSON object: ``{"id": "ch01", "text": "...", "voice": "ava_happy", "seed": 0}``;
``voice`` (a preset id of the voices folder, or a voice file) and ``seed`` are optional, so are
``prompt`` (a clip to continue) with its ``transcript``.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

MANIFEST_GLOB = "manifest-*.jsonl"
OK, FAILED = "ok", "failed"
# A file name on any file system: letters, digits, dot, dash, underscore; no leading dot (hidden / ".."),
# bounded so that "<id>.wav" and its temporary name stay under the usual 255-byte limit.
_ID_RE = re.compile(r"^[A-Za-z0-9_\-][A-Za-z0-9_.\-]{0,199}$")


@dataclass(frozen=True)
class Job:
    id: str
    text: str
    voice: str | None = None         # preset id or voice file; None: the untuned model
    seed: int = 0
    prompt: str | None = None        # a clip the model continues (voice cloning) ...
    transcript: str | None = None    # ... and what it says

    @property
    def group(self) -> tuple[str | None, str | None]:
        """Rows share a batch only within a group: one batch continues one prompt clip (or none)."""
        return self.prompt, self.transcript


@dataclass(frozen=True)
class Outcome:
    """One manifest line: a job written (``ok``) or not (``failed``, with the reason in plain words)."""

    id: str
    status: str
    duration: float = 0.0            # seconds of audio written
    finished: bool = False           # every sentence ended by itself (False: one hit the length limit)
    seconds: float = 0.0             # this job's share of the batches' wall time
    tokens: int = 0                  # audio tokens generated for it
    rank: int = 0
    reason: str = ""

    def line(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False) + "\n"


def _job(obj: object) -> Job:
    """A parsed JSON line -> `Job`; raises ValueError with a plain reason."""
    if not isinstance(obj, dict):
        raise ValueError("the line is not a JSON object")
    job_id = obj.get("id")
    if not isinstance(job_id, str) or not _ID_RE.match(job_id):
        raise ValueError("the id must be letters, digits, '.', '-' or '_' (at most 200, no leading dot)")
    text = obj.get("text")
    if not isinstance(text, str) or not text.strip():
        raise ValueError("the text is missing or empty")
    voice, prompt, transcript = obj.get("voice"), obj.get("prompt"), obj.get("transcript")
    for name, value in (("voice", voice), ("prompt", prompt), ("transcript", transcript)):
        if value is not None and not isinstance(value, str):
            raise ValueError(f"{name} must be a string")
    if prompt and not (transcript and transcript.strip()):
        raise ValueError("a prompt clip needs its transcript")
    seed = obj.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError("seed must be an integer")
    return Job(job_id, text, voice or None, seed, prompt or None, transcript if prompt else None)


def read_jobs(path: str | Path) -> tuple[list[Job], list[Outcome]]:
    """The jobs of a JSONL file, and a failed `Outcome` for each bad line (id ``line-N`` where the line
    has no usable id) and each repeated id (the first one runs)."""
    jobs: list[Job] = []
    bad: list[Outcome] = []
    seen: set[str] = set()
    for number, raw in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not raw.strip():
            continue
        obj = None
        try:
            obj = json.loads(raw)
            job = _job(obj)
        except ValueError as exc:   # json's errors are ValueErrors too
            reason = str(exc) if obj is not None else "the line is not valid JSON"
            given = obj.get("id") if isinstance(obj, dict) else None
            job_id = given if isinstance(given, str) and _ID_RE.match(given) else f"line-{number}"
            bad.append(Outcome(job_id, FAILED, reason=f"line {number}: {reason}"))
            continue
        if job.id in seen:
            bad.append(Outcome(job.id, FAILED, reason=f"line {number}: the id is used by an earlier line"))
            continue
        seen.add(job.id)
        jobs.append(job)
    return jobs, bad


def rank_of(job_id: str, world: int) -> int:
    """The rank that owns ``job_id``: a stable hash (not Python's salted ``hash``), the same on every host."""
    digest = hashlib.blake2b(job_id.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % world


@dataclass(frozen=True)
class Row:
    """One sentence of one job: what a batch row speaks."""

    job: Job
    index: int                       # sentence number within the job
    text: str
    voice: str | None


def pack(rows: Sequence[Row], batch_size: int) -> list[list[Row]]:
    """Rows -> batches of at most ``batch_size``: within each group (prompt), rows sorted by length so a
    batch's rows end at about the same step (a batch runs until its longest row ends); voices are not
    looked at, each row carries its own initial state. Deterministic: ties break by (id, index)."""
    if batch_size < 1:
        raise ValueError(f"batch size must be >= 1, got {batch_size}")
    groups: dict[tuple, list[Row]] = {}
    for row in rows:
        groups.setdefault(row.job.group, []).append(row)
    batches = []
    for key in sorted(groups, key=lambda k: (k[0] or "", k[1] or "")):
        ordered = sorted(groups[key], key=lambda r: (len(r.text), r.job.id, r.index))
        batches += [ordered[i:i + batch_size] for i in range(0, len(ordered), batch_size)]
    return batches


def batch_seed(batch: Sequence[Row]) -> int:
    """One seed per batch (the decoder samples a batch from one generator), from its jobs' ids and seeds:
    the same jobs, world size and batch size give the same audio."""
    key = ",".join(sorted({f"{r.job.id}:{r.job.seed}" for r in batch}))
    return int.from_bytes(hashlib.blake2b(key.encode("utf-8"), digest_size=4).digest(), "big")


def windows(jobs: Sequence[Job], size: int) -> Iterable[list[Job]]:
    """Consecutive slices of ``size`` jobs: rows are packed within one window, so the audio held before a
    job is complete stays bounded and a killed run loses at most one window's work."""
    for i in range(0, len(jobs), size):
        yield list(jobs[i:i + size])


# ---- the manifest --------------------------------------------------------------------------------
def manifest_path(out: Path, rank: int) -> Path:
    """Each rank appends to its own file: no two processes (or hosts) write one file."""
    return out / f"manifest-{rank}.jsonl"


def read_manifest(out: Path) -> dict[str, dict]:
    """Every rank's manifest lines, the last line of an id winning; a torn last line (a kill while
    writing) is skipped."""
    latest: dict[str, dict] = {}
    for path in sorted(out.glob(MANIFEST_GLOB)):
        for raw in path.read_text(encoding="utf-8").splitlines():
            try:
                entry = json.loads(raw)
            except ValueError:
                continue
            if isinstance(entry, dict) and isinstance(entry.get("id"), str):
                latest[entry["id"]] = entry
    return latest


def done_ids(out: Path) -> set[str]:
    """Ids a rerun skips: written (``ok`` in a manifest and the file there). Failed ones are tried again
    (the voice file may have been added since)."""
    return {i for i, e in read_manifest(out).items() if e.get("status") == OK and (out / f"{i}.wav").is_file()}


class Manifest:
    """Appends outcomes to this rank's manifest, each line flushed to disk before the next job."""

    def __init__(self, out: Path, rank: int):
        self.path = manifest_path(out, rank)
        torn = self.path.is_file() and self.path.stat().st_size and not self.path.read_bytes().endswith(b"\n")
        self.file = open(self.path, "a", encoding="utf-8")
        if torn:  # a line torn by a kill must not swallow the next one
            self.file.write("\n")

    def write(self, outcome: Outcome) -> None:
        self.file.write(outcome.line())
        self.file.flush()
        os.fsync(self.file.fileno())

    def close(self) -> None:
        self.file.close()
