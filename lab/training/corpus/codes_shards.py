"""The shard files `render_codes` saves its codes in (``OUT/shards/NNNNN.npz``), and the codec they belong to.

A shard holds ``ids`` [R], ``frames`` [R], ``codes`` [sum(frames), n_codebook] uint16 and ``codes_id`` (the
encoder + codebook id of `lab.training.codec.freeze`): a codes folder carried from one GPU lease to the next
resumes only with the same codec, so codes of two codecs are never mixed in one corpus.
"""
from __future__ import annotations

import math
import threading
import time
from pathlib import Path

import numpy as np

SHARD_ROWS = 2_000
ENCODE_SECONDS = 600.0  # audio gathered before an encoding pass; also the padded size of one codec batch
# On a CPU (dry runs) a 600 s batch holds the main loop for minutes (GBs of activations): smaller passes.
ENCODE_SECONDS_CPU = 20.0


class OtherCodec(SystemExit):
    """Shards made by another codec (or by a version that did not record it)."""


def shard_files(out: Path) -> list[Path]:
    return sorted(p for p in (out / "shards").glob("*.npz") if not p.name.endswith(".tmp.npz"))


def check_codec(out: Path, codes_id: str) -> None:
    """Refuse, in plain words, when a shard in `out` was made by another codec than `codes_id`."""
    for f in shard_files(out):
        with np.load(f) as data:
            theirs = str(data["codes_id"]) if "codes_id" in data.files else "unrecorded"
        if theirs != codes_id:
            raise OtherCodec(f"{out} holds codes of codec {theirs} ({f.name}) and this codec's codes are {codes_id}: "
                             f"use another --out folder, or remove {out / 'shards'} to render again")


def done_ids(out: Path, codes_id: str | None = None) -> set[str]:
    """Ids of the rows already in shards (checked against `codes_id` when given)."""
    if codes_id is not None:
        check_codec(out, codes_id)
    ids: set[str] = set()
    for f in shard_files(out):
        with np.load(f) as data:
            ids.update(str(i) for i in data["ids"])
    return ids


def read_shards(out: Path) -> dict[str, np.ndarray]:
    """Every row's codes in the shards of `out`: id -> [frames, n_codebook]."""
    codes: dict[str, np.ndarray] = {}
    for f in shard_files(out):
        with np.load(f) as data:
            ends = np.cumsum(data["frames"])
            for uid, end, n in zip(data["ids"], ends, data["frames"]):
                codes[str(uid)] = data["codes"][end - n:end]
    return codes


class Encoder:
    """Audio of finished rows -> codes, in codec batches of similar length; shards written as they fill."""

    def __init__(self, codec, out: Path, sample_rate: int, codes_id: str, batch_seconds: float = ENCODE_SECONDS) -> None:
        self.codec, self.out, self.rate, self.codes_id = codec, out / "shards", sample_rate, codes_id
        self.batch_seconds = batch_seconds
        self.encode_s = 0.0  # seconds the codec took (the progress line says where the main loop's time goes)
        self.out.mkdir(parents=True, exist_ok=True)
        self.audio: dict[str, np.ndarray] = {}
        self.codes: dict[str, np.ndarray] = {}
        self.seconds = 0.0
        self.rows = 0  # rows saved in shards by this call
        self.lock = threading.Lock()  # the watchdog thread may save the encoded codes while the main thread hangs

    @property
    def held(self) -> int:
        """Rows finished this call (saved or not)."""
        return self.rows + len(self.codes) + len(self.audio)

    def add(self, uid: str, audio: np.ndarray) -> None:
        self.audio[uid] = audio
        self.seconds += len(audio) / self.rate
        if self.seconds >= self.batch_seconds:
            self.encode()

    def encode(self) -> None:
        import torch

        t0 = time.monotonic()
        items = sorted(self.audio.items(), key=lambda kv: len(kv[1]))
        start = 0
        while start < len(items):
            end = start + 1
            while end < len(items) and (end - start + 1) * len(items[end][1]) <= self.batch_seconds * self.rate:
                end += 1
            chunk = items[start:end]
            wav = torch.zeros(len(chunk), len(chunk[-1][1]))
            for i, (_, a) in enumerate(chunk):
                wav[i, : len(a)] = torch.from_numpy(a)
            with torch.inference_mode():
                codes = self.codec.encode(wav).cpu().numpy()
            for i, (uid, a) in enumerate(chunk):
                self.codes[uid] = codes[i, : math.ceil(len(a) / self.codec.hop_length)].astype(np.uint16)
            start = end
        self.audio, self.seconds = {}, 0.0
        self.encode_s += time.monotonic() - t0
        if len(self.codes) >= SHARD_ROWS:
            with self.lock:
                self._write()

    def save(self) -> None:
        if self.audio:
            self.encode()
        with self.lock:
            self._write()

    def save_encoded(self, wait_s: float = 5.0) -> int:
        """From another thread: write the codes already made (no codec call) -> rows written."""
        if not self.lock.acquire(timeout=wait_s):
            return 0
        try:
            return self._write()
        finally:
            self.lock.release()

    def _write(self) -> int:
        if not self.codes:
            return 0
        codes = dict(self.codes)
        ids = list(codes)
        numbers = [int(f.stem) for f in shard_files(self.out.parent) if f.stem.isdigit()]
        path = self.out / f"{max(numbers, default=-1) + 1:05d}.npz"  # never over an older shard
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, ids=np.array(ids), frames=np.array([len(codes[i]) for i in ids]),
                 codes=np.concatenate([codes[i] for i in ids]), codes_id=np.array(self.codes_id))
        tmp.replace(path)  # atomic: a call killed mid-save leaves no half shard
        self.rows += len(ids)
        self.codes = {k: v for k, v in self.codes.items() if k not in codes}
        return len(ids)
