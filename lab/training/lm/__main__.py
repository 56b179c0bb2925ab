"""Command line: `python -m lab.training.lm {train,shard,export,curves}`.

  train  --codes DIR --run RUNDIR [--config mini] [--text-frontend bpe|phonemes] [--steps N] [--lr 1e-3] [--warmup 500]
         [--batch-frames 60000] [--max-frames 1500] [--seed 0] [--max-seconds S] [--stop-at STEP]
         [--resume-from CKPT] [--val-every 500] [--log-every 10] [--checkpoint-seconds 300] [--batches-per-step K]
         Trains, or continues RUNDIR/last.pt (or --resume-from: last.pt, a run or a shard folder).
         On several GPUs: torchrun --nproc-per-node N -m lab.training.lm train --run-dir RUNDIR ...
         (torchrun takes --run for its own --run-path: write --run-dir there; K batches of the
         global schedule per step, K/N per process; lr is the rate of that global step).
  shard  --run RUNDIR --out DIR [--with-log] [--weights-only [--half]]
                                      last.pt as files of <= 15 MiB (what --resume-from and export read)
  export --run RUNDIR --codec CODECDIR --out FOLDER [--name lina-mini] [--version v1]   fp16 folder for LinaTTS
                                      (refuses a codec whose codes id differs from the training codes')
  phonemize --codes DIR [--workers N] [--reuse OLD] [--texts M...]
                                      DIR/phonemes.json.gz: phonemes of every text, so that a
                                      --text-frontend phonemes run trains where gruut is absent
                                      (--reuse: keep an earlier cache's entries; --texts: more manifests)
  curves --run RUNDIR --out PNG       train / validation loss curves
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import shutil
import sys
from pathlib import Path

import torch

from lab.training.lm import checkpoint
from lab.training.lm.train import LOG_NAME, RunOptions, TrainSettings


def cmd_train(args: argparse.Namespace) -> int:
    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainSettings)
             if getattr(args, f.name, None) is not None}
    options = RunOptions(max_seconds=args.max_seconds or math.inf, stop_at=args.stop_at, val_every=args.val_every,
                         val_batches=args.val_batches, log_every=args.log_every,
                         initial_validation=not args.no_initial_val,
                         checkpoint_seconds=args.checkpoint_seconds, device=args.device)
    from lab.training import distributed
    from lab.training.lm.train import train

    try:
        result = train(args.codes, args.run, given, options, args.resume_from)
        if distributed.current().is_main:
            print(json.dumps(result))
    finally:
        distributed.finish()
    return 0


def cmd_shard(args: argparse.Namespace) -> int:
    ckpt = checkpoint.load(args.run)
    if args.weights_only:
        ckpt = checkpoint.weights_only(ckpt, torch.float16 if args.half else None)
    paths = checkpoint.save_shards(ckpt, args.out)
    log = Path(args.run) / LOG_NAME
    if args.with_log and log.is_file():
        shutil.copyfile(log, Path(args.out) / LOG_NAME)
        paths.append(Path(args.out) / LOG_NAME)
    print(json.dumps({"files": [str(p) for p in paths], "bytes": sum(p.stat().st_size for p in paths)}))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from lab.training.lm.export import export

    print(export(args.run, args.codec, args.out, name=args.name, version=args.version, license=args.license))
    return 0


def cmd_phonemize(args: argparse.Namespace) -> int:
    from lab.training.lm.phonemes import phonemize_codes

    print(phonemize_codes(args.codes, args.workers, args.reuse, args.texts or ()))
    return 0


def cmd_curves(args: argparse.Namespace) -> int:
    from lab.training.lm.curves import plot_curves

    print(plot_curves(Path(args.run) / LOG_NAME, args.out))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab.training.lm", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("train", help="train or continue a run")
    p.add_argument("--codes", required=True, help="codes folder: {split}.jsonl.gz + {split}.codes.npy")
    # --run-dir: the spelling torchrun lets through (its own parser reads --run as its --run-path)
    p.add_argument("--run", "--run-dir", dest="run", required=True)
    p.add_argument("--resume-from", help="continue from this checkpoint (last.pt, run or shard folder)")
    # Settings default to None: a fresh run takes TrainSettings' defaults, a rerun the stored ones.
    p.add_argument("--config", help="model preset: mini, small, tiny")
    p.add_argument("--text-frontend", choices=("bpe", "phonemes"),
                   help="what the model reads: BPE text (default) or gruut phonemes (docs/text_frontend.md)")
    p.add_argument("--steps", type=int, help="length of the learning-rate schedule")
    p.add_argument("--lr", type=float)
    p.add_argument("--warmup", type=int)
    p.add_argument("--batch-frames", type=int, help="padded audio tokens per batch")
    p.add_argument("--max-frames", type=int, help="skip longer utterances")
    p.add_argument("--pair-fraction", type=float, help="extra train rows of two sentences back to back")
    p.add_argument("--styled-repeat", type=int, help="each non-neutral train row this many times")
    p.add_argument("--seed", type=int)
    p.add_argument("--batches-per-step", type=int,
                   help="global batch: batches per optimizer step, split among torchrun's processes "
                        "(default 1; under torchrun, the process count)")
    p.add_argument("--max-seconds", type=float, help="wall-clock budget of this call, saving included")
    p.add_argument("--stop-at", type=int, help="stop after this step (the schedule still spans --steps)")
    p.add_argument("--val-every", type=int, default=RunOptions.val_every)
    p.add_argument("--val-batches", type=int, default=RunOptions.val_batches, help="0: all")
    p.add_argument("--no-initial-val", action="store_true", help="no step-0 validation")
    p.add_argument("--log-every", type=int, default=RunOptions.log_every)
    p.add_argument("--checkpoint-seconds", type=float, default=RunOptions.checkpoint_seconds)
    p.add_argument("--device", help="default: cuda when available")
    p.set_defaults(func=cmd_train)
    p = sub.add_parser("shard", help="copy a run's checkpoint as files of at most 15 MiB")
    p.add_argument("--run", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--weights-only", action="store_true", help="no optimizer state: exportable, not resumable")
    p.add_argument("--half", action="store_true", help="with --weights-only: fp16 weights")
    p.add_argument("--with-log", action="store_true", help="copy log.jsonl beside the shards")
    p.set_defaults(func=cmd_shard)
    p = sub.add_parser("export", help="fp16 model folder for LinaTTS.from_pretrained")
    p.add_argument("--run", required=True, help="run folder, last.pt or shard folder")
    p.add_argument("--codec", required=True, help="codec folder (config.json + codec.safetensors)")
    p.add_argument("--out", required=True)
    p.add_argument("--name", default="lina-mini")
    p.add_argument("--version", default="v1", help="the model id is NAME-VERSION-HASH (e.g. v2 for lina-mini v2)")
    p.add_argument("--license", default="MIT")
    p.set_defaults(func=cmd_export)
    p = sub.add_parser("phonemize", help="phonemes of a codes folder's texts, computed once (needs gruut)")
    p.add_argument("--codes", required=True)
    p.add_argument("--workers", type=int, help="G2P processes (default: the CPU count, at most 16)")
    p.add_argument("--reuse", help="an earlier phoneme cache (folder or .json.gz): its entries are kept, not redone")
    p.add_argument("--texts", nargs="+", help="more manifests (.jsonl or .jsonl.gz) whose texts the cache covers")
    p.set_defaults(func=cmd_phonemize)
    p = sub.add_parser("curves", help="loss curves PNG")
    p.add_argument("--run", required=True, help="run folder (or shard folder) holding log.jsonl")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_curves)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
