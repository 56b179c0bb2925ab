"""Corpus rows -> the LM's codes in one pass on the GPU host, with no WAV files in between.

Kokoro rows are synthesized in length-sorted batches on the GPU (the pieces `kokoro_render prepare` made here),
every other row by `render_row` in worker processes; the workers also give Kokoro audio the corpus treatment
(`kokoro_render.finish_audio`). Each row's audio comes back to this process and is encoded by the codec on the
GPU in batches of similar length. Codes are saved in shard files (`codes_shards`: ``OUT/shards/NNNNN.npz``,
with the codec's codes id) every `SHARD_ROWS` rows, so a call stopped by its time limit loses little and the next
resumes (rows in a shard are skipped; shards of another codec are refused); `finalize` joins the shards into a
codes folder in `lab.training.codec.encode`'s layout. Validation rows are rendered first, so a partial render
has them all.

Stopping: ``--max-seconds`` stops taking rows, gives those in flight DRAIN_S, saves and exits; SIGINT/SIGTERM
save and exit at once (the worker processes are killed, never joined: `workpool`); a watchdog ends the process
HARD_EXIT_S after either whatever the main thread does. A log line comes every LOG_EVERY_S while anything is
pending, and says what is waiting when nothing has finished since the last.

Why one pass: reading 12 h of float32 WAVs back for `codec encode` took ~4 min on the host, longer than making
them; and a Kokoro render left in the background of a device call died when the call returned, so this runs in
the foreground of calls, resumably.

    python -m lab.training.corpus.render_codes run --manifest M... --kokoro-inputs DIR --kokoro-weights W \\
        --codec assets/lina-mini/codec --out CODES --jobs 14 --max-seconds 540
    python -m lab.training.corpus.render_codes finalize --manifest M... --codec assets/lina-mini/codec --out CODES
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path

import numpy as np

from .generate import _worker_init
from .engines_kokoro import KOKORO_RATE
from .kokoro_render import finish_audio, plan_pieces, synthesize_batch
from .codes_shards import ENCODE_SECONDS, ENCODE_SECONDS_CPU, Encoder, check_codec, done_ids, read_shards  # noqa: F401 (done_ids: gpu_lm_v2.sh)
from .manifest import read_jsonl
from .stopping import Heartbeat, StopFlag
from .workpool import WorkerPool

# Rows in flight per worker: bounds the memory of audio waiting in queues.
PENDING_PER_JOB = 8
LOG_EVERY_S = 30.0
POLL_S = 1.0        # the longest the loop waits for a worker: signals and deadlines are seen within it
# A row still running after this long is given up for this call and its worker replaced (the engines'
# subprocesses time out at SUBPROCESS_TIMEOUT_S = 120 s, so a row past this is stuck elsewhere).
STUCK_S = 180.0
DRAIN_S = 20.0      # after --max-seconds, how long rows in flight may still finish before the save
# A watchdog ends the process this long after a signal, or after --max-seconds + DRAIN_S, whatever the main
# thread is doing (the codes made so far are saved first): the call must end before the device kills it.
HARD_EXIT_S = 20.0
HARD_EXIT_CODE = 3


def _render_worker(row: dict) -> tuple[str, np.ndarray]:
    from .generate import render_row

    return row["id"], render_row(row)


def _kokoro_worker(row: dict, pieces: list[np.ndarray]) -> tuple[str, np.ndarray]:
    return row["id"], finish_audio(row, pieces)


def validation_first(rows: list[dict]) -> list[dict]:
    """Validation rows before the others (stable): a render stopped part-way holds the small validation splits
    whole. Train rows first once left the LM with an empty validation split (its loss logged as 0.0)."""
    return sorted(rows, key=lambda r: r.get("split") != "validation")


def run(manifests: list[Path], out: Path, codec_dir: Path, *, kokoro_inputs: Path | None = None,
        kokoro_weights: Path | None = None, device: str = "cuda", jobs: int = 8, max_seconds: float | None = None,
        log=print, render_fn=_render_worker, stuck_s: float = STUCK_S, drain_s: float = DRAIN_S,
        hard_exit_s: float | None = None) -> dict:
    """Render and encode every row of `manifests` not yet in a shard of `out` (see the module docstring).

    Returns within ~POLL_S + one GPU batch of SIGINT/SIGTERM, and within `drain_s` of `max_seconds`, with the
    finished rows saved. `hard_exit_s` (the command line sets it): a watchdog saves the codes made so far and
    ends the process that long after a signal, or after ``max_seconds + drain_s``, whatever the main thread is
    doing (see `stopping`). `render_fn(row) -> (id, audio)` renders the non-Kokoro rows."""
    from lina.codec.codec import Codec
    from lab.training.codec.freeze import codes_id

    start = time.monotonic()
    codec = Codec.from_pretrained(codec_dir).float().eval()
    ident = codes_id(codec)
    skip = done_ids(out, ident)
    rows = validation_first([r for m in manifests for r in read_jsonl(m) if r["id"] not in skip])
    plain = [r for r in rows if r["spk"]["engine"] != "kokoro"]
    kokoro = {r["id"]: r for r in rows if r["spk"]["engine"] == "kokoro"}
    codec = codec.to(device)
    enc = Encoder(codec, out, codec.sample_rate, ident,
                  ENCODE_SECONDS_CPU if str(device).startswith("cpu") else ENCODE_SECONDS)
    pieces, kt, kokoro_batches, missing = plan_pieces(kokoro, kokoro_inputs, kokoro_weights, device)
    got: dict[int, dict[int, np.ndarray]] = {}
    queue, queue_left = iter(plain), bool(plain)
    kokoro_audio_s = gpu_s = 0.0  # Kokoro audio made, and the seconds spent making it (the log says which side limits)
    cap = PENDING_PER_JOB * max(1, jobs)
    failed, given_up = 0, []
    pool = WorkerPool(jobs, _worker_init)

    def hard_exit() -> None:
        saved = enc.save_encoded()  # codes already made; audio still waiting for the codec is lost
        log(f"hard deadline ({stop.reason or 'time'}): ending the process at {time.monotonic() - start:.0f} s; "
            f"{enc.rows} rows of this call are in shards ({saved} saved now), the next call resumes")
        for pid in pool.pids():  # no executor call: it may wait on a lock the stuck main thread holds
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        os._exit(HARD_EXIT_CODE)

    stop = StopFlag(start, max_seconds, drain_s, hard_exit_s, hard_exit)
    log(f"rendering {len(rows)} rows ({len(kokoro)} Kokoro in {len(kokoro_batches)} GPU batches; "
        f"{sum(r.get('split') == 'validation' for r in rows)} validation rows first) with {jobs} workers; "
        f"{len(skip)} rows already in shards; codes id {ident}")
    last_log = last_done = time.monotonic()
    beat = Heartbeat(log, LOG_EVERY_S, lambda: f"{enc.held} rows done this call, {len(pool)} in flight, "
                                              f"{time.monotonic() - start:.0f} s")
    try:
        while True:
            stop.check()
            if stop.reason is None:
                while queue_left and len(pool) < cap // 2:
                    row = next(queue, None)
                    if row is None:
                        queue_left = False
                        break
                    pool.submit(row["id"], render_fn, row)
                if kokoro_batches and len(pool) < cap:
                    beat.doing("in a Kokoro batch")
                    t = time.monotonic()
                    for uid, parts in synthesize_batch(kt, pieces, kokoro_batches.pop(0), got):
                        pool.submit(uid, _kokoro_worker, kokoro[uid], parts)
                        kokoro_audio_s += sum(len(q) for q in parts) / KOKORO_RATE
                    gpu_s += time.monotonic() - t
            elif not stop.draining() or not len(pool):
                break  # a signal: save now; the time limit: once the rows in flight are in (or drain_s is over)
            gpu_next = stop.reason is None and bool(kokoro_batches) and len(pool) < cap
            if not len(pool) and not gpu_next and not queue_left:
                break
            beat.doing("waiting for the workers")
            for uid, result, error in pool.wait(0 if gpu_next else POLL_S):
                beat.doing("encoding finished rows with the codec")
                last_done = time.monotonic()
                if error is None:
                    enc.add(*result)
                else:  # one bad row must not stop the pass
                    failed += 1
                    log(f"row failed: {uid}: {error}")
            stuck = [uid for uid, age in pool.running() if age > stuck_s]
            if stuck:
                log(f"{len(stuck)} rows running for over {stuck_s:.0f} s, given up this call: {', '.join(stuck[:5])}; "
                    f"workers restarted, {len(pool) - len(stuck)} rows in flight submitted again")
                given_up += stuck
                pool.restart(set(stuck))
                last_done = time.monotonic()
            if time.monotonic() - last_log > LOG_EVERY_S:
                last_log = time.monotonic()
                beat.logged()
                log(f"{enc.held} rows done this call, {len(pool)} in flight, {len(kokoro_batches)} Kokoro batches left "
                    f"({kokoro_audio_s:.0f} audio s in {gpu_s:.0f} GPU s), codec {enc.encode_s:.0f} s, "
                    f"{time.monotonic() - start:.0f} s")
                if last_log - last_done > LOG_EVERY_S:
                    log(_waiting(pool, last_log - last_done, kokoro_batches, cap, stop.reason))
        if stop.reason:
            for uid, result, error in pool.wait(0.2):  # rows finished while the stop came in are kept too
                if error is None:
                    enc.add(*result)
            log(f"stopping ({stop.reason}): saving the rows finished so far, {len(pool)} in flight dropped")
    finally:
        beat.doing("saving")
        pool.kill()  # first: the save needs no worker, and a stuck worker must not hold the call
        enc.save()
        stop.restore()
        beat.stop()
    report = {"rows_this_call": enc.rows, "rows_done": len(done_ids(out)), "rows_skipped_before": len(skip),
              "rows_failed": failed, "rows_given_up": len(given_up), "kokoro_rows_without_pieces": missing,
              "stopped": stop.reason, "stopped_by_time": stop.reason is not None,
              "wall_s": round(time.monotonic() - start, 1), "kokoro_audio_s": round(kokoro_audio_s),
              "kokoro_gpu_s": round(gpu_s, 1), "codec_s": round(enc.encode_s, 1), "codes_id": ident}
    log(json.dumps(report))
    return report


def _waiting(pool: WorkerPool, idle_s: float, kokoro_batches: list, cap: int, reason: str | None) -> str:
    """The line said when nothing has finished for a while: what the call is waiting on."""
    running = pool.running()
    longest = ", ".join(f"{uid} {age:.0f} s" for uid, age in running[:3])
    gpu = ("the GPU waits: in-flight cap reached" if len(pool) >= cap else "the GPU has work") if kokoro_batches \
        else "no Kokoro batch left"
    return (f"nothing finished for {idle_s:.0f} s: {len(running)} rows running in {pool.jobs} workers "
            f"(longest: {longest or 'none'}), {len(pool) - len(running)} queued; {gpu}"
            f"{'; stopping: ' + reason if reason else ''}")


def finalize(manifests: list[Path], out: Path, codec_dir: Path) -> dict:
    """Shards -> ``out/{split}.jsonl.gz`` + ``{split}.codes.npy`` (manifest order), ``codec/``, ``summary.json``."""
    from lina.codec.codec import Codec
    from lab.training.codec.encode import write_split
    from lab.training.codec.freeze import write_codes_json

    from lab.training.codec.freeze import codes_id

    codec = Codec.from_pretrained(codec_dir)
    check_codec(out, codes_id(codec))
    codes = read_shards(out)
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
    for split, part in summary.items():
        if isinstance(part, dict) and not part["rows"]:  # the LM trainer then logs no validation loss
            print(f"warning: the {split} split has no rows rendered yet ({part['missing']} missing)", file=sys.stderr)
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
            p.add_argument("--max-seconds", type=float, help="stop taking rows after this; save and exit ~DRAIN_S later")
            p.add_argument("--drain-seconds", type=float, default=DRAIN_S)
            p.add_argument("--hard-exit-seconds", type=float, default=HARD_EXIT_S,
                           help="after a stop, end the process this much later whatever it is doing")
    args = ap.parse_args(argv)
    if args.cmd == "run":
        run(args.manifest, args.out, args.codec, kokoro_inputs=args.kokoro_inputs, kokoro_weights=args.kokoro_weights,
            device=args.device, jobs=args.jobs, max_seconds=args.max_seconds, drain_s=args.drain_seconds,
            hard_exit_s=args.hard_exit_seconds)
        # The workers are killed and the shards saved: leave without the interpreter's exit-time joins of the
        # executor's threads, which could wait on a worker's pipe.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    else:
        print(json.dumps(finalize(args.manifest, args.out, args.codec), indent=1))


if __name__ == "__main__":
    main()
