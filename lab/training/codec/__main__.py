"""Codec training CLI: `python -m lab.training.codec COMMAND` (the codec v2 recipe: lab/notes/codec_v2.md).

  train     --manifest M... --roots DIR... --run RUN [--config mini] [--max-seconds S]   (resumes RUN)
            on N GPUs: torchrun --nproc-per-node N -m lab.training.codec train --run-dir RUN ... (each
            process trains on batch_size / N segments of the global batch; the learning rate is unchanged)
            [--phase mel|gan]   codec v2 phases (configs.PHASES): mel-only codes, then the frozen-codes GAN
            [--init CODEC_DIR [--decoder-only]]   a new run from exported weights; frozen encoder + codebook
            [--eval-clips DIR --eval-every N]     held-out scores every N steps into RUN/eval.jsonl
  merge     --out CODES SRC... [--skip-codec]   codes folders of one codec concatenated split by split
  export    --run RUN --out DIR [--dtype float16] [--split-mib 15] [--freeze]
            (encoder + codebook always float32, so every export keeps the codes and their id, codes.json)
            --freeze: marks the export whose codes LM v2 trains on and decoder-only runs start from
  curve     --out PNG RUN... [--md MD]   held-out PESQ/STOI vs log steps of runs that continue one another
  encode    --codec DIR --manifest M... --roots DIR... --out CODES      (rows grouped by their split)
  evaluate  --codec DIR (--clips DIR | --manifest M [--roots DIR... | --render]) [--limit N] [--out JSON]
  heldout   --out DIR [--manifest M]     render the fixed held-out clips (default: heldout_v2) to DIR
  ceiling   --codec DIR --clips DIR --out JSON [--md MD]   codec vs unquantized latents vs ISTFT analysis
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch


def _device(name: str | None) -> torch.device:
    return torch.device(name or ("cuda" if torch.cuda.is_available() else "cpu"))


def cmd_train(args: argparse.Namespace) -> int:
    from torch.utils.data import DataLoader

    from lab.training import distributed
    from lab.training.codec.data import AudioSegments
    from lab.training.codec.runs import open_run
    from lab.training.codec.train import LOG, train

    world, device = distributed.init(args.device)
    run = Path(args.run)
    say = (lambda line: print(line, flush=True)) if world.is_main else (lambda line: None)
    overrides = {k: v for k, v in (("batch_size", args.batch_size), ("total_steps", args.total_steps),
                                   ("gan_start_step", args.gan_start_step), ("learning_rate", args.learning_rate),
                                   ("warmup_steps", args.warmup_steps), ("lr_schedule", args.lr_schedule))
                 if v is not None}
    if args.discriminators is not None:
        overrides["discriminators"] = tuple(d for d in args.discriminators.split(",") if d)
    trainer = open_run(run, device, config=args.config, phase=args.phase, init=Path(args.init) if args.init else None,
                       decoder_only=args.decoder_only, overrides=overrides, log=say)
    # The global batch is the run's batch_size; each process draws its share of it from its own stream.
    share = len(distributed.split_evenly(range(trainer.config.batch_size), world))
    launch = {"launch": {"step": trainer.step, "processes": world.size, "global_batch": trainer.config.batch_size,
                         "batch_per_process": share, "learning_rate": trainer.config.learning_rate,
                         "lr_rule": "learning_rate is the rate of the global batch; unchanged by the process count"}}
    say(json.dumps(launch))
    if world.is_main:
        run.mkdir(parents=True, exist_ok=True)
        with (run / LOG).open("a", encoding="utf-8") as f:
            f.write(json.dumps(launch) + "\n")
    evaluator = None
    if args.eval_clips and world.is_main:
        from lab.training.codec.eval_hook import HeldoutEval
        from lab.training.codec.heldout import load_clips

        evaluator = HeldoutEval(load_clips(Path(args.eval_clips)), args.eval_every, run)
    hop = trainer.codec.hop_length
    segment = round(trainer.config.segment_seconds * trainer.codec.sample_rate / hop) * hop
    data = AudioSegments(args.manifest, args.roots, segment, seed=trainer.config.seed + trainer.step, rank=world.rank)
    loader = DataLoader(data, batch_size=share, num_workers=args.workers,
                        pin_memory=device.type == "cuda", persistent_workers=args.workers > 0)
    start = time.time()
    try:
        train(trainer, iter(loader), run, args.max_seconds, args.max_steps, log_every=args.log_every,
              log=say, evaluator=evaluator)
    finally:
        distributed.finish()
    say(f"stopped at step {trainer.step} after {time.time() - start:.0f} s")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from lab.training.codec.runs import export, freeze_run
    from lab.training.codec.train import Trainer

    trainer = Trainer.load(Path(args.run), torch.device("cpu"))
    if args.freeze:
        ident = freeze_run(trainer, Path(args.out), args.split_mib)
    else:
        ident = export(trainer, Path(args.out), getattr(torch, args.dtype), args.split_mib)
    print(f"exported step {trainer.step} (total {trainer.config.base_step + trainer.step}) to {args.out}, "
          f"codes id {ident}{' (frozen)' if args.freeze else ''}")
    return 0


def cmd_curve(args: argparse.Namespace) -> int:
    from lab.training.codec.curve import curve_table, lineage_rows, plot_curve

    rows, left_out = lineage_rows([Path(r) for r in args.runs])
    if not rows:
        raise SystemExit(f"no evaluation rows in {args.runs} (train with --eval-clips)")
    plot_curve(rows, Path(args.out), args.title)
    table = curve_table(rows)
    print(table)
    if left_out:
        print(f"{left_out} rows of another clip set (fingerprint) left out")
    if args.md:
        Path(args.md).write_text(table + "\n")
    return 0


def _rows(manifests: list[str]) -> list[dict]:
    from lab.training.codec.data import read_manifest

    return [row for m in manifests for row in read_manifest(m)]


def cmd_encode(args: argparse.Namespace) -> int:
    from lina.codec.codec import Codec
    from lab.training.codec.encode import encode_corpus
    from lab.training.codec.freeze import write_codes_json
    from lab.training.codec.runs import join_parts

    join_parts(Path(args.codec))
    codec = Codec.from_pretrained(args.codec).float().to(_device(args.device))
    by_split: dict[str, list[dict]] = {}
    for row in _rows(args.manifest):
        by_split.setdefault(row["split"], []).append(row)
    encode_corpus(codec, by_split, [Path(r) for r in args.roots], Path(args.out))
    print(f"codes id {write_codes_json(codec, Path(args.out) / 'codec', source=str(args.codec))}")
    return 0


def cmd_merge(args: argparse.Namespace) -> int:
    from lab.training.codec.encode import merge_codes

    print(json.dumps(merge_codes([Path(s) for s in args.sources], Path(args.out)), indent=1))
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    import soundfile as sf

    from lina.codec.codec import Codec
    from lab.training.codec.data import row_audio
    from lab.training.codec.evaluate import evaluate_clips

    codec = Codec.from_pretrained(args.codec).float()
    clips = {}
    if args.clips:
        from lab.training.codec.heldout import clips_fingerprint, load_clips

        clips = dict(list(load_clips(Path(args.clips)).items())[: args.limit])
        report = evaluate_clips(codec, clips)
        report["fingerprint"] = clips_fingerprint(clips)
        print(json.dumps(report["mean"], indent=1))
        if args.out:
            Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
        return 0
    if not args.manifest:
        raise SystemExit("evaluate needs --clips DIR or --manifest M")
    for row in _rows(args.manifest)[: args.limit]:
        if args.render:
            from lab.training.corpus.generate import render_row

            clips[row["id"]] = render_row(row)
        else:
            path = row_audio([Path(r) for r in args.roots], row)
            if path is not None:
                clips[row["id"]] = sf.read(str(path), dtype="float32")[0]
    report = evaluate_clips(codec, clips)
    print(json.dumps(report["mean"], indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    return 0


def cmd_heldout(args: argparse.Namespace) -> int:
    from lab.training.codec.heldout import HELDOUT_MANIFEST, render_heldout

    render_heldout(Path(args.out), Path(args.manifest) if args.manifest else HELDOUT_MANIFEST)
    return 0


def cmd_ceiling(args: argparse.Namespace) -> int:
    from lina.codec.codec import Codec
    from lab.training.codec.ceiling import ceiling, table
    from lab.training.codec.heldout import clips_fingerprint, engine_of, load_clips

    codec = Codec.from_pretrained(args.codec).float().to(_device(args.device))
    clips = load_clips(Path(args.clips))
    report = ceiling(codec, clips, engine_of(list(clips)), log=lambda line: print(line, flush=True))
    report = {"codec": str(args.codec), "clips_dir": str(args.clips), "fingerprint": clips_fingerprint(clips),
              **report}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    markdown = table(report)
    print(markdown)
    if args.md:
        Path(args.md).write_text(markdown + "\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab.training.codec", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train")
    t.add_argument("--manifest", nargs="+", required=True)
    t.add_argument("--roots", nargs="+", required=True)
    # --run-dir: the spelling torchrun lets through (its own parser reads --run as its --run-path)
    t.add_argument("--run", "--run-dir", dest="run", required=True)
    t.add_argument("--config", default="mini")
    t.add_argument("--max-seconds", type=float, default=540.0)
    t.add_argument("--max-steps", type=int, default=None)
    t.add_argument("--batch-size", type=int, default=None)
    t.add_argument("--total-steps", type=int, default=None)
    t.add_argument("--gan-start-step", type=int, default=None)
    t.add_argument("--learning-rate", type=float, default=None)
    t.add_argument("--warmup-steps", type=int, default=None)
    t.add_argument("--phase", default=None, choices=["mel", "gan"], help="codec v2 phase settings")
    t.add_argument("--lr-schedule", default=None, choices=["cosine", "constant"])
    t.add_argument("--discriminators", default=None, help="comma-separated families: mpd,mrd,mbstft ('' for none)")
    t.add_argument("--eval-clips", default=None, help="held-out clips folder (heldout render) scored during training")
    t.add_argument("--eval-every", type=int, default=2000)
    t.add_argument("--init", default=None, help="exported codec folder to start a new run from")
    t.add_argument("--decoder-only", action="store_true", help="with --init: train backbone + head only")
    t.add_argument("--workers", type=int, default=4)
    t.add_argument("--log-every", type=int, default=50)
    t.add_argument("--device", default=None)
    t.set_defaults(func=cmd_train)
    x = sub.add_parser("export")
    x.add_argument("--run", required=True)
    x.add_argument("--out", required=True)
    x.add_argument("--dtype", default="float16", choices=["float16", "bfloat16", "float32"])
    x.add_argument("--split-mib", type=int, default=0)
    x.add_argument("--freeze", action="store_true", help="the frozen codes: LM v2's codes, start of the gan phase")
    x.set_defaults(func=cmd_export)
    e = sub.add_parser("encode")
    e.add_argument("--codec", required=True)
    e.add_argument("--manifest", nargs="+", required=True)
    e.add_argument("--roots", nargs="+", required=True)
    e.add_argument("--out", required=True)
    e.add_argument("--device", default=None)
    e.set_defaults(func=cmd_encode)
    m = sub.add_parser("merge")
    m.add_argument("--out", required=True)
    m.add_argument("sources", nargs="+")
    m.set_defaults(func=cmd_merge)
    v = sub.add_parser("evaluate")
    v.add_argument("--codec", required=True)
    v.add_argument("--manifest", nargs="+", default=None)
    v.add_argument("--clips", default=None, help="a folder of clips (the rendered held-out set)")
    v.add_argument("--roots", nargs="*", default=[])
    v.add_argument("--render", action="store_true", help="render the rows now instead of reading them")
    v.add_argument("--limit", type=int, default=50)
    v.add_argument("--out", default=None)
    v.set_defaults(func=cmd_evaluate)
    u = sub.add_parser("curve")
    u.add_argument("runs", nargs="+", help="run folders (or eval.jsonl files) in lineage order")
    u.add_argument("--out", required=True)
    u.add_argument("--md", default=None)
    u.add_argument("--title", default="lina-codec held-out curve")
    u.set_defaults(func=cmd_curve)
    h = sub.add_parser("heldout")
    h.add_argument("--out", required=True)
    h.add_argument("--manifest", default=None)
    h.set_defaults(func=cmd_heldout)
    c = sub.add_parser("ceiling")
    c.add_argument("--codec", required=True)
    c.add_argument("--clips", required=True)
    c.add_argument("--out", required=True)
    c.add_argument("--md", default=None, help="also write the markdown table here")
    c.add_argument("--device", default=None)
    c.set_defaults(func=cmd_ceiling)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
