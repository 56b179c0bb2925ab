"""Dialogue in one batch vs line by line: wall time of `LinaTTS.synthesize_dialogue` (every sentence of
every line a row of one batch, each with its speaker's initial state) against the same lines generated
one request each (``line_by_line=True``), for scripts of 2 to 16 lines with 4 speakers.

    python -m lab.bench.dialogue_speed --out $OUT/dialogue_speed.json                # CUDA, random released-size
    python -m lab.bench.dialogue_speed --model embedded --device cpu --lines 2 4     # lina-mini on this CPU

Every batch size runs once untimed first (a GPU back end compiles per batch class), then ``--repeats``
timed runs; the table keeps the median. Random weights rarely stop early, so rows run to their cap:
both sides do the same number of steps per row.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from lab.bench.space_path import _bundle

LINES = (2, 4, 8, 16)
SPEAKERS = ("Ava", "Leo", "Mia", "Noah")
LINE = "This is line number {} of the script, read by its own speaker."


def _voices(tts, seed: int = 0) -> dict:
    from lina.voice import Voice

    cfg, gen = tts.model.cfg, torch.Generator().manual_seed(seed)
    return {name: Voice(0.1 * torch.randn(cfg.n_tunable_layers, 1, cfg.n_heads, cfg.head_k_dim, generator=gen),
                        0.1 * torch.randn(cfg.n_tunable_layers, 1, cfg.n_heads, cfg.head_v_dim, generator=gen), 1.0,
                        model_id=tts.model_id) for name in SPEAKERS}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="random-released", help="random-released | embedded | tiny-random | folder")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--lines", type=int, nargs="+", default=list(LINES))
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--max-seconds", type=float, default=4.0, help="cap of each row (random weights run to it)")
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    from lina.tts import LinaTTS

    tts = LinaTTS(_bundle(args), args.device, watermark=False)  # the generation, not the mark, is measured
    voices = _voices(tts)
    rows = []
    for n in args.lines:
        script = [(SPEAKERS[i % len(SPEAKERS)], LINE.format(i + 1)) for i in range(n)]
        options = dict(seed=0, max_seconds=args.max_seconds, line_by_line=True)
        tts.synthesize_dialogue(script, voices, **options)  # compiles / warms this batch class and batch 1
        runs = [tts.synthesize_dialogue(script, voices, **options) for _ in range(args.repeats)]
        batch = statistics.median(r.seconds for r in runs)
        alone = statistics.median(r.line_by_line_seconds for r in runs)
        rows.append({"lines": n, "rows": runs[0].rows, "audio_seconds": round(runs[0].duration, 2),
                     "batch_seconds": round(batch, 3), "line_by_line_seconds": round(alone, 3),
                     "speedup": round(alone / batch, 2)})
        print(json.dumps(rows[-1]), flush=True)
    result = {"model": tts.name, "device": str(tts.device), "backend": tts.backend.name,
              "gpu": torch.cuda.get_device_name() if tts.device.type == "cuda" else "-",
              "max_seconds_per_row": args.max_seconds, "repeats": args.repeats, "rows": rows,
              "time": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    print("| lines | rows | audio s | one batch s | line by line s | speed-up |\n|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['lines']} | {r['rows']} | {r['audio_seconds']} | {r['batch_seconds']} | "
              f"{r['line_by_line_seconds']} | {r['speedup']}x |")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
