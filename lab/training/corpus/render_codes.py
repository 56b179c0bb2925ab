"""Corpus rows -> the LM's codes in one pass on the GPU host, with no WAV files in between.

Kokoro rows are synthesized in length-sorted batches on the GPU (the pieces `kokoro_render prepare` made here),
every other row by `render_row` in worker processes; the workers also give Kokoro audio the corpus treatment
(`kokoro_render.finish_audio`). Each row's audio comes back to this process and is encoded by the codec on the
GPU in batches of similar length. Codes are saved in shard files (``OUT/shards/NNNNN.npz``) every
`SHARD_ROWS` rows, so a call stopped by its time limit loses little and the next resumes (rows in a shard are
skipped); `finalize` joins the shards into a codes folder in `lab.training.codec.encode`'s layout.

Why one pass: reading 12 h of float32 WAVs back for `codec encode` took ~4 min on the host, longer than making
them; and a Kokoro render left in the background of a device call died when the call returned, so this runs in
the foreground of calls, resumably.

    python -m lab.training.corpus.render_codes run --manifest M... --kokoro-inputs DIR --kokoro-weights W \\
        --codec assets/lina-mini/codec --out CODES --jobs 14 --max-seconds 540
    python -m lab.training.corpus.render_codes finalize --manifest M... --codec assets/lina-mini/codec --out CODES
"""
from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import math
import multiprocessing
import time
from pathlib import Path

import numpy as np

from .generate import _worker_init
from .engines_kokoro import KOKORO_RATE
from .kokoro_render import finish_audio, plan_pieces, synthesize_batch
from .manifest import read_jsonl

SHARD_ROWS = 2_000
ENCODE_SECONDS = 600.0  # audio gathered before an encoding pass; also the padded size of one codec batch
PENDING_PER_JOB = 8     # rows in flight per worker: bounds the memory of audio waiting in queues
LOG_EVERY_S = 30.0


def _render_worker(row: dict) -> tuple[str, np.ndarray]:
    from .generate import render_row

    return row["id"], render_row(row)


def _kokoro_worker(row: dict, pieces: list[np.ndarray]) -> tuple[str, np.ndarray]:
    return row["id"], finish_audio(row, pieces)


def done_ids(out: Path) -> set[str]:
    return {str(i) for f in sorted((out / "shards").glob("*.npz")) for i in np.load(f)["ids"]}


class Encoder:
    """Audio of finished rows -> codes, in GPU batches of similar length; shards written as they fill."""

    def __init__(self, codec, out: Path, sample_rate: int) -> None:
        self.codec, self.out, self.rate = codec, out / "shards", sample_rate
        self.out.mkdir(parents=True, exist_ok=True)
        self.audio: dict[str, np.ndarray] = {}
        self.codes: dict[str, np.ndarray] = {}
        self.seconds = 0.0
        self.rows = 0

    def add(self, uid: str, audio: np.ndarray) -> None:
        self.audio[uid] = audio
        self.seconds += len(audio) / self.rate
        if self.seconds >= ENCODE_SECONDS:
            self.encode()

    def encode(self) -> None:
        import torch

        items = sorted(self.audio.items(), key=lambda kv: len(kv[1]))
        start = 0
        while start < len(items):
            end = start + 1
            while end < len(items) and (end - start + 1) * len(items[end][1]) <= ENCODE_SECONDS * self.rate:
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
        if len(self.codes) >= SHARD_ROWS:
            self.save()

    def save(self) -> None:
        if self.audio:
            self.encode()
        if not self.codes:
            return
        ids = list(self.codes)
        path = self.out / f"{len(list(self.out.glob('*.npz'))):05d}.npz"
        np.savez(path.with_suffix(".tmp.npz"), ids=np.array(ids), frames=np.array([len(self.codes[i]) for i in ids]),
                 codes=np.concatenate([self.codes[i] for i in ids]))
        path.with_suffix(".tmp.npz").replace(path)
        self.rows += len(ids)
        self.codes = {}


def run(manifests: list[Path], out: Path, codec_dir: Path, *, kokoro_inputs: Path | None = None,
        kokoro_weights: Path | None = None, device: str = "cuda", jobs: int = 8, max_seconds: float | None = None,
        log=print) -> dict:
    """Render and encode every row of `manifests` not yet in a shard of `out` (see the module docstring)."""
    from lina.codec.codec import Codec

    start = time.time()
    skip = done_ids(out)
    rows = [r for m in manifests for r in read_jsonl(m) if r["id"] not in skip]
    plain = [r for r in rows if r["spk"]["engine"] != "kokoro"]
    kokoro = {r["id"]: r for r in rows if r["spk"]["engine"] == "kokoro"}
    codec = Codec.from_pretrained(codec_dir).float().to(device).eval()
    enc = Encoder(codec, out, codec.sample_rate)
    pieces, kt, kokoro_batches, missing = plan_pieces(kokoro, kokoro_inputs, kokoro_weights, device)
    got: dict[int, dict[int, np.ndarray]] = {}
    queue, queue_left, pending, stopped, last_log = iter(plain), bool(plain), set(), False, time.time()
    kokoro_audio_s = gpu_s = 0.0  # Kokoro audio made, and the seconds spent making it (the log says which side limits)
    cap = PENDING_PER_JOB * max(1, jobs)
    ctx = multiprocessing.get_context("spawn")
    with cf.ProcessPoolExecutor(max_workers=max(1, jobs), mp_context=ctx, initializer=_worker_init) as pool:
        try:
            while True:
                stopped = stopped or (max_seconds is not None and time.time() - start > max_seconds)
                while not stopped and queue_left and len(pending) < cap // 2:
                    row = next(queue, None)
                    if row is None:
                        queue_left = False
                        break
                    pending.add(pool.submit(_render_worker, row))
                if not stopped and kokoro_batches and len(pending) < cap:
                    t = time.time()
                    for uid, parts in synthesize_batch(kt, pieces, kokoro_batches.pop(0), got):
                        pending.add(pool.submit(_kokoro_worker, kokoro[uid], parts))
                        kokoro_audio_s += sum(len(q) for q in parts) / KOKORO_RATE
                    gpu_s += time.time() - t
                gpu_next = not stopped and bool(kokoro_batches) and len(pending) < cap
                if not pending:
                    if gpu_next:
                        continue
                    if stopped or not queue_left:
                        break
                    continue
                # Block for a worker unless the GPU has a batch to do meanwhile (no busy loop).
                done, pending = cf.wait(pending, timeout=0 if gpu_next else None, return_when=cf.FIRST_COMPLETED)
                for f in done:
                    try:
                        enc.add(*f.result())
                    except Exception as exc:  # noqa: BLE001 (one bad row must not stop the pass)
                        log(f"row failed: {type(exc).__name__}: {exc}")
                if time.time() - last_log > LOG_EVERY_S:
                    last_log = time.time()
                    log(f"{enc.rows + len(enc.codes) + len(enc.audio)} rows done this call, {len(pending)} in flight, "
                        f"{len(kokoro_batches)} Kokoro batches left ({kokoro_audio_s:.0f} audio s in {gpu_s:.0f} GPU s), "
                        f"{time.time() - start:.0f} s")
        except KeyboardInterrupt:  # a hard time limit (SIGINT): keep what is encoded, the next call resumes
            stopped = True
            log("interrupted: saving the rows encoded so far")
            pending = {f for f in pending if not f.cancel()}
        enc.save()
    report = {"rows_this_call": enc.rows, "rows_done": len(done_ids(out)), "rows_skipped_before": len(skip),
              "kokoro_rows_without_pieces": missing, "stopped_by_time": stopped, "wall_s": round(time.time() - start, 1),
              "kokoro_audio_s": round(kokoro_audio_s), "kokoro_gpu_s": round(gpu_s, 1)}
    log(json.dumps(report))
    return report


def finalize(manifests: list[Path], out: Path, codec_dir: Path) -> dict:
    """Shards -> ``out/{split}.jsonl.gz`` + ``{split}.codes.npy`` (manifest order), ``codec/``, ``summary.json``."""
    from lina.codec.codec import Codec
    from lab.training.codec.encode import write_split
    from lab.training.codec.freeze import write_codes_json

    codes: dict[str, np.ndarray] = {}
    for f in sorted((out / "shards").glob("*.npz")):
        data = np.load(f)
        ends = np.cumsum(data["frames"])
        for uid, end, n in zip(data["ids"], ends, data["frames"]):
            codes[str(uid)] = data["codes"][end - n:end]
    codec = Codec.from_pretrained(codec_dir)
    codec.save_pretrained(out / "codec")
    by_split: dict[str, list[dict]] = {}
    for row in (r for m in manifests for r in read_jsonl(m)):
        by_split.setdefault(row["split"], []).append(row)
    summary = {}
    for split, rows in by_split.items():
        done, chunks, offset = [], [], 0
        for row in rows:
            if row["id"] in codes:
                c = codes[row["id"]]
                done.append({**row, "offset": offset, "frames": len(c)})
                chunks.append(c)
                offset += len(c)
        flat = np.concatenate(chunks) if chunks else np.zeros(0, np.uint16)
        summary[split] = write_split(out, split, done, flat, codec, missing=len(rows) - len(done))
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    summary["codes_id"] = write_codes_json(codec, out / "codec", source=str(codec_dir))
    return summary


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("run", "finalize"):
        p = sub.add_parser(name)
        p.add_argument("--manifest", type=Path, nargs="+", required=True)
        p.add_argument("--codec", type=Path, required=True)
        p.add_argument("--out", type=Path, required=True)
        if name == "run":
            p.add_argument("--kokoro-inputs", type=Path)
            p.add_argument("--kokoro-weights", type=Path)
            p.add_argument("--device", default="cuda")
            p.add_argument("--jobs", type=int, default=8)
            p.add_argument("--max-seconds", type=float)
    args = ap.parse_args(argv)
    if args.cmd == "run":
        run(args.manifest, args.out, args.codec, kokoro_inputs=args.kokoro_inputs, kokoro_weights=args.kokoro_weights,
            device=args.device, jobs=args.jobs, max_seconds=args.max_seconds)
    else:
        print(json.dumps(finalize(args.manifest, args.out, args.codec), indent=1))


if __name__ == "__main__":
    main()
