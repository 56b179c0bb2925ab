"""Command line: `python -m lina.training.corpus {build,render,dedup,bench,status}`.

  build  --out DIR --hours 30 --seed 0      manifests only (train/validation/test.jsonl, speakers.json,
                                            summary.json); applies the committed dedup result for the seed
  render --manifest M [M...] --out DIR --jobs 16 [--max-seconds S] [--shard K/N]
                                            audio (wav/<speaker>/<id>.wav) + manifests with real durations
  dedup  --out FILE --seed 0 --jobs N       resemblyzer near-duplicate speakers -> JSON for build --drop
  bench  --per-engine 6                     render speed per engine (seconds of audio per CPU second)
  status                                    which engines and text sources this machine has
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from . import engines
from .dedup import COMMITTED, DedupUnavailable, load_dropped, run_dedup
from .generate import render_manifest
from .manifest import BuildConfig, build_rows, write_manifests
from .speakers import engine_counts, inventory
from .texts import load_sentences, source_status


def _shard(text: str) -> tuple[int, int]:
    k, n = (int(x) for x in text.split("/"))
    if not 0 <= k < n:
        raise argparse.ArgumentTypeError("shard must be K/N with 0 <= K < N")
    return k, n


def cmd_build(args: argparse.Namespace) -> int:
    t0 = time.time()
    candidates = inventory(args.seed)
    drop_file = Path(args.drop) if args.drop else Path(str(COMMITTED).format(seed=args.seed))
    dropped = load_dropped(drop_file) if (drop_file.exists() and not args.no_dedup) else set()
    speakers = [s for s in candidates if s.id not in dropped]
    sentences = load_sentences(limit_per_source=args.sentences_per_source)
    if not sentences:
        print("no text sources installed (scripts/corpus_setup.sh installs them)", file=sys.stderr)
        return 2
    cfg = BuildConfig(hours=args.hours, seed=args.seed, styled_speakers=args.styled)
    rows, plan = build_rows(speakers, sentences, cfg)
    extra = {"seed": args.seed, "candidates_per_engine": engine_counts(candidates),
             "dedup_file": str(drop_file) if dropped else None, "dropped_speakers": len(dropped),
             "duration_is": "estimated (render measures it)"}
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
    candidates = inventory(args.seed)
    try:
        result = run_dedup(candidates, Path(args.out), seed=args.seed, jobs=args.jobs)
    except DedupUnavailable as exc:
        print(f"dedup cannot run: {exc}", file=sys.stderr)
        return 3
    print(json.dumps({k: result[k] for k in ("per_engine", "cosine_stats", "threshold")}, indent=1))
    print(f"kept {len(result['kept'])} of {len(candidates)} -> {args.out}", file=sys.stderr)
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from .bench import bench

    print(json.dumps(bench(args.per_engine, args.seed), indent=1, sort_keys=True))
    return 0


def cmd_status(_: argparse.Namespace) -> int:
    status = {"engines": {e: engines.available(e) for e in engines.ENGINES}, "texts": source_status(),
              "engine_root": str(engines.tools().root)}
    print(json.dumps(status, indent=1))
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m lina.training.corpus", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="plan the corpus: manifests only")
    b.add_argument("--out", required=True)
    b.add_argument("--hours", type=float, default=30.0)
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--styled", type=int, default=8, help="speakers reading all six styles")
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
    d.set_defaults(func=cmd_dedup)
    be = sub.add_parser("bench", help="render speed per engine")
    be.add_argument("--per-engine", type=int, default=6)
    be.add_argument("--seed", type=int, default=0)
    be.set_defaults(func=cmd_bench)
    sub.add_parser("status", help="engines and text sources found").set_defaults(func=cmd_status)
    args = p.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
