"""Kokoro rows of a corpus manifest rendered in batches on a GPU (corpus v2's 14.5 Kokoro hours).

Two halves, because the GPU host has no espeak-ng (the phonemizer):
  prepare (here)  every Kokoro row's pieces -> (ids, style, speed), phonemized with espeak-ng exactly as
                  `KokoroOnnx.synth` does, into ``DIR/pieces.npz`` + ``DIR/rows.jsonl.gz`` (a few MB);
  render (there)  the pieces in length-sorted batches through `KokoroTorch` (kokoro_batch's padded forward),
                  each row's pieces trimmed and joined as `KokoroOnnx.synth` joins them, then
                  `generate.post_process` (voice change, style, level) in worker processes, written the way
                  `render` writes (``wav/<speaker>/<id>.wav``, float32, 24 kHz; existing files are kept, so it
                  resumes) with ``{split}.jsonl`` manifests of the measured durations.

    python -m lab.training.corpus.kokoro_render prepare --manifest data/v2_parts/kokoro_*.jsonl --out DIR
    python -m lab.training.corpus.kokoro_render render --inputs DIR --weights W.safetensors --out AUDIO

The GPU's audio is not bit-identical to onnxruntime's (float32 vs int8 kernels; same transcripts in
lab/notes/kokoro_torch.md): a corpus is rendered by one back end.
"""
from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import multiprocessing
import os
import time
from collections import Counter
from pathlib import Path

import numpy as np

from .manifest import SPLITS, read_jsonl, write_jsonl

# Pieces per GPU batch are chosen so that the padded batch holds about this many phoneme ids.
BATCH_IDS = 24_000
MAX_BATCH = 128
# Batches are planned per chunk of this many rows (length-sorted within it): a row is written only once all
# its pieces are synthesized, so a call stopped by its time limit loses at most one chunk's unfinished rows.
# One global length order left long rows' first pieces waiting in memory all call and lost them at the stop.
ROWS_PER_CHUNK = 1_000
LOG_EVERY_S = 30.0


# ------------------------------------------------------------------------------------------------ prepare
def _row_pieces(row: dict) -> list[tuple[np.ndarray, np.ndarray, float]]:
    from .engines_kokoro import KokoroRecipe, kokoro_pieces
    from .styles import style

    tempo = row["spk"].get("tempo", 1.0) * style(row["style"]).tempo  # as generate._synthesize
    return kokoro_pieces(row["text"], KokoroRecipe.from_spk(row["spk"], tempo))


def prepare(manifests: list[Path], out: Path, jobs: int = 1) -> dict:
    """Kokoro rows of `manifests` -> ``out/pieces.npz`` (ids flat int16 + offsets, styles float16 [P, 256],
    speeds [P], row of each piece [P]) and ``out/rows.jsonl.gz`` (the rows, recipe included)."""
    rows = [r for m in manifests for r in read_jsonl(m) if r["spk"]["engine"] == "kokoro"]
    with cf.ProcessPoolExecutor(max_workers=max(1, jobs), mp_context=multiprocessing.get_context("spawn")) as pool:
        pieces = list(pool.map(_row_pieces, rows, chunksize=64))
    ids, offsets, styles, speeds, piece_row = [], [0], [], [], []
    for r, row_pieces in enumerate(pieces):
        for p_ids, p_style, p_speed in row_pieces:
            ids.append(np.asarray(p_ids, np.int16).reshape(-1))
            offsets.append(offsets[-1] + ids[-1].size)
            styles.append(np.asarray(p_style, np.float32).reshape(-1))
            speeds.append(p_speed)
            piece_row.append(r)
    out.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out / "pieces.npz", ids=np.concatenate(ids), offsets=np.asarray(offsets, np.int64),
                        styles=np.stack(styles).astype(np.float16), speeds=np.asarray(speeds, np.float32),
                        piece_row=np.asarray(piece_row, np.int32))
    write_jsonl(out / "rows.jsonl.gz", rows)
    return {"rows": len(rows), "pieces": len(piece_row), "rows_without_pieces": sum(not p for p in pieces),
            "bytes": sum(f.stat().st_size for f in out.iterdir())}


# ------------------------------------------------------------------------------------------------ render
def finish_audio(row: dict, pieces: list[np.ndarray]) -> np.ndarray:
    """A row's raw Kokoro pieces joined like KokoroOnnx.synth (trimmed, short pauses) -> the corpus audio."""
    from .engines_kokoro import KOKORO_RATE, PIECE_PAUSE_S, gentle_trim
    from .generate import post_process

    gap = np.zeros(int(PIECE_PAUSE_S * KOKORO_RATE), np.float32)
    parts = []
    for piece in pieces:
        parts += [gentle_trim(piece), gap]
    audio = np.clip(np.concatenate(parts[:-1]), -1.0, 1.0).astype(np.float32)
    return post_process(audio, KOKORO_RATE, row)


def _finish_row(row: dict, pieces: list[np.ndarray], out: str) -> tuple[str, str, float]:
    """Worker: `finish_audio`, then write the WAV -> (id, split, seconds)."""
    import soundfile as sf

    from .generate import SAMPLE_RATE, audio_path

    audio = finish_audio(row, pieces)
    path = audio_path(Path(out), row)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp.wav")
    sf.write(str(tmp), audio, SAMPLE_RATE, subtype="FLOAT")
    tmp.replace(path)
    return row["id"], row["split"], len(audio) / SAMPLE_RATE


def batches(lengths: np.ndarray, budget: int = BATCH_IDS, max_batch: int = MAX_BATCH) -> list[np.ndarray]:
    """Piece positions in length order, cut so that len(batch) * longest <= budget (and <= max_batch)."""
    order = np.argsort(lengths, kind="stable")
    out, start = [], 0
    for k in range(1, len(order) + 1):
        if k == len(order) or (k - start + 1) * lengths[order[k]] > budget or k - start >= max_batch:
            out.append(order[start:k])
            start = k
    return [b for b in out if len(b)]


def row_chunks(piece_row: np.ndarray, rows_per_chunk: int = ROWS_PER_CHUNK) -> list[np.ndarray]:
    """Positions of pieces `[P]` (their row numbers, in row order) grouped into chunks of whole rows."""
    rows = np.unique(piece_row)
    edges = rows[::rows_per_chunk][1:]
    cut = np.searchsorted(piece_row, edges, side="left")
    return [c for c in np.split(np.arange(len(piece_row)), cut) if len(c)]


def validation_pieces_first(keep: np.ndarray, piece_row: np.ndarray, validation: np.ndarray):
    """Pieces `keep` [K] (positions, in row order) reordered so that validation rows' pieces come first
    (stable: a row's pieces stay together), and rising row numbers [K] in that order for `row_chunks`.
    A render stopped part-way then holds the small validation splits whole."""
    keep = keep[np.argsort(~np.asarray(validation, bool), kind="stable")]
    rows = piece_row[keep]
    return keep, np.cumsum(np.r_[0, rows[1:] != rows[:-1]])[:len(keep)]


def plan_pieces(kokoro: dict, inputs: Path | None, weights: Path | None, device: str):
    """(piece arrays, model, batches of piece indices, rows without pieces) for the Kokoro rows still to do."""
    if not kokoro:
        return None, None, [], 0
    if inputs is None or weights is None:
        raise SystemExit("Kokoro rows need --kokoro-inputs (kokoro_render prepare) and --kokoro-weights")
    import torch

    from .kokoro_torch import KokoroTorch

    prepared = read_jsonl(inputs / "rows.jsonl.gz")
    with np.load(inputs / "pieces.npz") as npz:
        data = {k: npz[k] for k in npz.files}
    data["uid"] = [prepared[r]["id"] for r in data["piece_row"]]
    keep = np.flatnonzero([u in kokoro for u in data["uid"]])
    keep, rank = validation_pieces_first(keep, data["piece_row"],
                                         np.array([kokoro[data["uid"][p]].get("split") == "validation" for p in keep]))
    plan = []
    for chunk in row_chunks(rank):
        pieces = keep[chunk]
        plan += [pieces[b] for b in batches(np.diff(data["offsets"])[pieces])]
    data["need"] = Counter(data["uid"][p] for p in keep)  # pieces per row still to do
    missing = len(set(kokoro) - set(data["need"]))
    kt = KokoroTorch(weights, device)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    return data, kt, plan, missing


def synthesize_batch(kt, data: dict, idx: np.ndarray, got: dict) -> list[tuple[str, list[np.ndarray]]]:
    """Synthesize one batch of pieces; returns the rows whose pieces are now all there."""
    ids = [data["ids"][data["offsets"][p]:data["offsets"][p + 1]].astype(np.int64) for p in idx]
    audio = kt.batch(ids, [data["styles"][p].astype(np.float32) for p in idx], [float(data["speeds"][p]) for p in idx],
                     [0] * len(idx))
    ready = []
    for p, a in zip(idx, audio):
        uid = data["uid"][p]
        got.setdefault(uid, {})[int(p)] = a
        if len(got[uid]) == data["need"][uid]:
            parts = got.pop(uid)
            ready.append((uid, [parts[q] for q in sorted(parts)]))
    return ready


def render(inputs: Path, weights: Path, out: Path, *, device: str = "cuda", jobs: int = 8,
           max_seconds: float | None = None, limit: int | None = None, log=print) -> dict:
    """Render the prepared rows (or the first `limit`) into `out`; rows whose WAV exists are skipped."""
    from .engines_kokoro import KOKORO_RATE
    from .generate import _worker_init, audio_path

    start = time.time()
    rows = read_jsonl(inputs / "rows.jsonl.gz")[:limit]
    todo = {r["id"]: r for r in rows if not audio_path(out, r).exists()}
    data, kt, plan, _ = plan_pieces(todo, inputs, weights, device)
    got: dict[str, dict[int, np.ndarray]] = {}
    durations: dict[str, tuple[str, float]] = {}
    audio_s, gpu_s, last_log, stopped = 0.0, 0.0, time.time(), False
    with cf.ProcessPoolExecutor(max_workers=max(1, jobs), mp_context=multiprocessing.get_context("spawn"),
                                initializer=_worker_init) as pool:
        pending = set()
        for idx in plan:
            if max_seconds is not None and time.time() - start > max_seconds:
                stopped = True
                break
            t = time.time()
            ready = synthesize_batch(kt, data, idx, got)
            gpu_s += time.time() - t
            for uid, pieces in ready:
                audio_s += sum(len(p) for p in pieces) / KOKORO_RATE
                pending.add(pool.submit(_finish_row, todo[uid], pieces, str(out)))
            while len(pending) > 8 * jobs:  # bounded memory: wait for the workers to catch up
                done, pending = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
                durations.update({i: (s, d) for i, s, d in (f.result() for f in done)})
            if time.time() - last_log > LOG_EVERY_S:
                last_log = time.time()
                log(f"{len(durations)}/{len(todo)} rows written, {audio_s / max(gpu_s, 1e-9):.0f} audio s per "
                    f"GPU s, {time.time() - start:.0f} s")
        for f in cf.as_completed(pending):
            i, s, d = f.result()
            durations[i] = (s, d)
    done_rows = [dict(r, duration=round(durations[r["id"]][1], 3), audio=str(audio_path(Path("."), r)))
                 for r in rows if r["id"] in durations]
    for split in SPLITS:
        part = [r for r in done_rows if r["split"] == split]
        if part:
            write_jsonl(out / f"kokoro_{split}.jsonl", part)
    report = {"rows": len(rows), "rendered": len(durations), "skipped_existing": len(rows) - len(todo),
              "stopped_by_time": stopped, "hours": round(sum(d for _, d in durations.values()) / 3600, 3),
              "gpu_audio_s_per_s": round(audio_s / max(gpu_s, 1e-9), 1), "wall_s": round(time.time() - start, 1)}
    log(json.dumps(report))
    return report


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prepare", help="here: phonemize the Kokoro rows -> pieces.npz + rows.jsonl.gz")
    p.add_argument("--manifest", type=Path, nargs="+", required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--jobs", type=int, default=2)
    r = sub.add_parser("render", help="GPU host: batched KokoroTorch + post-processing -> WAVs")
    r.add_argument("--inputs", type=Path, required=True)
    r.add_argument("--weights", type=Path, required=True)
    r.add_argument("--out", type=Path, required=True)
    r.add_argument("--device", default="cuda")
    r.add_argument("--jobs", type=int, default=8)
    r.add_argument("--max-seconds", type=float)
    r.add_argument("--limit", type=int, help="only the first N rows (a dry run)")
    args = ap.parse_args(argv)
    if args.cmd == "prepare":
        print(json.dumps(prepare(args.manifest, args.out, args.jobs), indent=1))
    else:
        render(args.inputs, args.weights, args.out, device=args.device, jobs=args.jobs,
               max_seconds=args.max_seconds, limit=args.limit)


if __name__ == "__main__":
    main()
