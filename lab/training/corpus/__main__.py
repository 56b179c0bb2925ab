"""Command line: `python -m lab.training.corpus {build,render,dedup,bench,status}`.

  build  --out DIR [--recipe v2] --seed 0   manifests only (train/validation/test.jsonl, speakers.json,
                                            summary.json); applies the committed dedup result for the seed
                                            (v1: dedup_seed0.json, v2: dedup_v2_seed0.json)
  render --manifest M [M...] --out DIR --jobs 16 [--max-seconds S] [--shard K/N]
                                            audio (wav/<speaker>/<id>.wav) + manifests with real durations
  dedup  --out FILE --seed 0 --jobs N       resemblyzer near-duplicate speakers -> JSON for build --drop
  screen --out FILE --seed 0 --jobs N [--dnsmos] [--clips DIR] | --render-only DIR
                                            Whisper WER screen of the Kokoro candidates (v2), embeddings
                                            into the v2 dedup cache; `dedup --recipe v2` then de-duplicates
  bench  --per-engine 6                     render speed per engine (seconds of audio per CPU second)
  status                                    which engines and text sources this machine has
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

from . import engines
from .dedup import COMMITTED, COMMITTED_V2, DedupUnavailable, load_dropped, run_dedup, run_dedup_v2
from .engine_tools import tools
from .generate import render_manifest
from .manifest import RECIPES, build_rows, neural_share, write_manifests
from .speakers import engine_counts, inventory, inventory_v2
from .texts import load_sentences, source_status


def _shard(text: str) -> tuple[int, int]:
    k, n = (int(x) for x in text.split("/"))
    if not 0 <= k < n:
        raise argparse.ArgumentTypeError("shard must be K/N with 0 <= K < N")
    return k, n


def cmd_build(args: argparse.Namespace) -> int:
    t0 = time.time()
    base = RECIPES[args.recipe]
    candidates = inventory(args.seed) if args.recipe == "v1" else inventory_v2(args.seed)
    committed = COMMITTED if args.recipe == "v1" else COMMITTED_V2
    drop_file = Path(args.drop) if args.drop else Path(str(committed).format(seed=args.seed))
    dropped = load_dropped(drop_file) if (drop_file.exists() and not args.no_dedup) else set()
    speakers = [s for s in candidates if s.id not in dropped]
    sentences = load_sentences(limit_per_source=args.sentences_per_source)
    if not sentences:
        print("no text sources installed (scripts/corpus_setup.sh installs them)", file=sys.stderr)
        return 2
    cfg = dataclasses.replace(base, hours=args.hours or base.hours, seed=args.seed,
                              styled_speakers=args.styled if args.styled is not None else base.styled_speakers)
    rows, plan = build_rows(speakers, sentences, cfg)
    extra = {"seed": args.seed, "candidates_per_engine": engine_counts(candidates),
             "dedup_file": str(drop_file) if dropped else None, "dropped_speakers": len(dropped),
             "duration_is": "estimated (render measures it)"}
    if args.recipe != "v1":  # (v1's summary stays as it was)
        extra |= {"recipe": args.recipe, "neural_share": round(neural_share(rows), 4),
                  "sentences_used": len({r["sentence"] for r in rows})}
    summary = write_manifests(Path(args.out), rows, plan, speakers, extra)
    print(json.dumps(summary, indent=1, sort_keys=True))
    print(f"built in {time.time() - t0:.1f} s -> {args.out}", file=sys.stderr)
    return 0


def cmd_render(args: argparse.Namespace) -> int:
    report = render_manifest([Path(m) for m in args.manifest], Path(args.out), jobs=args.jobs, shard=args.shard,
                             max_seconds=args.max_seconds, limit=args.limit)
    print(json.dumps(report, indent=1, sort_keys=True))
    return 0 if not report["errors"] else 1


def cmd_dedup(args: argparse.Namespace) -> int:
    candidates = inventory(args.seed) if args.recipe == "v1" else inventory_v2(args.seed)
    try:
        if args.recipe == "v1":
            result = run_dedup(candidates, Path(args.out), seed=args.seed, jobs=args.jobs)
        else:
            result = run_dedup_v2(candidates, Path(args.out), seed=args.seed, jobs=args.jobs)
    except DedupUnavailable as exc:
        print(f"dedup cannot run: {exc}", file=sys.stderr)
        return 3
    print(json.dumps({k: result[k] for k in ("per_engine", "cosine_stats", "threshold")}, indent=1))
    print(f"kept {len(result['kept'])} of {len(candidates)} -> {args.out}", file=sys.stderr)
    return 0


def cmd_screen(args: argparse.Namespace) -> int:
    from .dedup import v2_cache
    from .screen import render_clips_to, run_screen
    from .speakers import kokoro_inventory

    candidates = kokoro_inventory(args.seed)[args.skip : args.limit]
    if args.render_only:
        report = render_clips_to(candidates, Path(args.render_only), seed=args.seed, jobs=args.jobs)
        print(json.dumps({k: v for k, v in report.items() if k != "speakers"}, indent=1))
        return 0 if all("error" not in r for r in report["speakers"].values()) else 1
    out = Path(args.out)
    try:
        report = run_screen(candidates, out, seed=args.seed, jobs=args.jobs, dnsmos=args.dnsmos,
                            cache=v2_cache(args.seed) if args.limit is None and not args.skip else None,
                            clip_dir=Path(args.clips) if args.clips else None)
    except DedupUnavailable as exc:
        print(f"screen cannot run: {exc}", file=sys.stderr)
        return 3
    print(json.dumps({k: report[k] for k in ("candidates", "max_wer", "wer_all", "render_audio_s_per_cpu_s")}, indent=1))
    print(f"kept {len(report['kept'])} of {len(candidates)} -> {out}", file=sys.stderr)
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from .bench import bench

    print(json.dumps(bench(args.per_engine, args.seed), indent=1, sort_keys=True))
    return 0


def cmd_status(_: argparse.Namespace) -> int:
    status = {"engines": {e: engines.available(e) for e in engines.ENGINES}, "texts": source_status(),
              "engine_root": str(tools().root)}
    print(json.dumps(status, indent=1))
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m lab.training.corpus", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="plan the corpus: manifests only")
    b.add_argument("--out", required=True)
    b.add_argument("--recipe", choices=sorted(RECIPES), default="v1",
                   help="v1: four engines (default, unchanged); v2: + Kokoro, 70 %% neural hours")
    b.add_argument("--hours", type=float, default=None, help="default: the recipe's (v1 30, v2 32)")
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--styled", type=int, default=None, help="speakers reading all six styles (v1 8, v2 10)")
    b.add_argument("--drop", help="dedup JSON (default: the committed one for the seed, if any)")
    b.add_argument("--no-dedup", action="store_true", help="keep every candidate speaker")
    b.add_argument("--sentences-per-source", type=int, default=None)
    b.set_defaults(func=cmd_build)
    r = sub.add_parser("render", help="render manifest rows to 24 kHz float32 WAV")
    r.add_argument("--manifest", nargs="+", required=True)
    r.add_argument("--out", required=True)
    r.add_argument("--jobs", type=int, default=1)
    r.add_argument("--shard", type=_shard, default=(0, 1), help="K/N: render only the K-th of N shards")
    r.add_argument("--max-seconds", type=float, default=None, help="stop submitting work after this long")
    r.add_argument("--limit", type=int, default=None, help="render at most this many rows")
    r.set_defaults(func=cmd_render)
    d = sub.add_parser("dedup", help="resemblyzer near-duplicate speakers")
    d.add_argument("--out", required=True)
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--jobs", type=int, default=1)
    d.add_argument("--recipe", choices=("v1", "v2"), default="v1",
                   help="v2: v1's kept speakers + the screened Kokoro candidates (run `screen` first)")
    d.set_defaults(func=cmd_dedup)
    sc = sub.add_parser("screen", help="Whisper WER screen of the Kokoro candidates")
    sc.add_argument("--out", help="the screen result (JSON)")
    sc.add_argument("--render-only", metavar="DIR", help="only render the clips into DIR (16 kHz FLAC), e.g. on the GPU host")
    sc.add_argument("--clips", metavar="DIR", help="score the clips rendered into DIR instead of rendering")
    sc.add_argument("--seed", type=int, default=0)
    sc.add_argument("--jobs", type=int, default=1)
    sc.add_argument("--dnsmos", action="store_true", help="also score DNSMOS (needs speechmos)")
    sc.add_argument("--limit", type=int, default=None, help="only the first N candidates (a trial; no cache)")
    sc.add_argument("--skip", type=int, default=0, help="render-only: leave out the first N candidates")
    sc.set_defaults(func=cmd_screen)
    be = sub.add_parser("bench", help="render speed per engine")
    be.add_argument("--per-engine", type=int, default=6)
    be.add_argument("--seed", type=int, default=0)
    be.set_defaults(func=cmd_bench)
    sub.add_parser("status", help="engines and text sources found").set_defaults(func=cmd_status)
    args = p.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
