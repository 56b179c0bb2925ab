"""Random fixed-length segments of rendered corpus audio, for codec training.

The corpus renders in the background while the codec trains (lab.training.corpus render), so the
set of files grows: each worker re-lists which of its manifest's rows exist every `rescan_seconds`.
Only rows of the manifests given are used, which is how the test split's unseen speakers stay unseen.
"""
from __future__ import annotations

import random
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from torch.utils.data import IterableDataset, get_worker_info

from lab.training.corpus.generate import audio_path
from lab.training.corpus.manifest import read_jsonl
from lina.constants import SAMPLE_RATE

# Training segments are rescaled to a random peak in this range: the codec must not depend on level.
PEAK_RANGE = (0.2, 0.95)
# Rows shorter than this are skipped (a segment would be mostly padding).
MIN_SECONDS = 0.5


def read_manifest(path: str | Path) -> list[dict]:
    """Rows of a `.jsonl` or `.jsonl.gz` manifest."""
    return read_jsonl(Path(path))


def row_audio(roots: list[Path], row: dict) -> Path | None:
    """Where the corpus renderer put this row's audio, under the first root that has it."""
    for root in roots:
        path = audio_path(root, row)
        if path.exists():
            return path
    return None


class AudioSegments(IterableDataset):
    """Endless `[segment_samples]` float32 segments from the rows' audio, at 24 kHz."""

    def __init__(self, manifests: list[str | Path], roots: list[str | Path], segment_samples: int,
                 seed: int = 0, rescan_seconds: float = 60.0, wait_seconds: float = 600.0, rank: int = 0):
        self.rows = [r for m in manifests for r in read_manifest(m)]
        self.roots = [Path(r) for r in roots]
        self.segment = segment_samples
        self.seed = seed
        self.rescan_seconds = rescan_seconds
        self.wait_seconds = wait_seconds
        self.rank = rank  # a process of a distributed run: its own stream of segments

    def _available(self) -> list[Path]:
        found = (row_audio(self.roots, r) for r in self.rows)
        return [p for p in found if p is not None]

    def _wait_for_files(self) -> list[Path]:
        deadline = time.time() + self.wait_seconds
        while True:
            files = self._available()
            if files or time.time() > deadline:
                break
            time.sleep(5)
        if not files:
            raise RuntimeError(f"no audio of the {len(self.rows)} manifest rows under {self.roots}")
        return files

    def __iter__(self):
        info = get_worker_info()
        worker = 0 if info is None else info.id
        stream = self.seed * 1000 + worker
        # Rank 0 keeps the single-process stream; a string seed keeps other ranks' streams apart from it
        # (integers would collide with the streams of other seeds).
        rng = random.Random(stream if not self.rank else f"{stream}/rank{self.rank}")
        files, listed_at = self._wait_for_files(), time.time()
        while True:
            if time.time() - listed_at > self.rescan_seconds:
                files, listed_at = self._wait_for_files(), time.time()
            segment = self._segment(rng.choice(files), rng)
            if segment is not None:
                yield torch.from_numpy(segment)

    def _segment(self, path: Path, rng: random.Random) -> np.ndarray | None:
        try:
            info = sf.info(str(path))
        except RuntimeError:  # being written right now, or broken: pick another
            return None
        if info.samplerate != SAMPLE_RATE or info.frames < MIN_SECONDS * SAMPLE_RATE:
            return None
        start = rng.randrange(max(1, info.frames - self.segment + 1))
        audio, _ = sf.read(str(path), start=start, frames=self.segment, dtype="float32", always_2d=True)
        audio = audio.mean(axis=1)
        if len(audio) < self.segment:
            audio = np.pad(audio, (0, self.segment - len(audio)))
        peak = float(np.abs(audio).max())
        if peak < 1e-4:
            return None
        return (audio * (rng.uniform(*PEAK_RANGE) / peak)).astype(np.float32)
