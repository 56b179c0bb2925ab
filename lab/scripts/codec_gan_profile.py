"""Where a codec GAN step spends its time (the decoder-only GAN phase ran at 2.6 steps/s on the H200, against
20 steps/s for the mel phase at the same batch): whole training steps per discriminator set, then each part's
forward + backward alone, with and without weight-norm parametrizations (recomputed at every forward).

    python lab/scripts/codec_gan_profile.py --device cuda [--init data/codec_frozen] [--batch 48] [--steps 10]
    python lab/scripts/codec_gan_profile.py --device cpu --batch 2 --steps 1      # smoke run here

Prints one markdown table (ms per step or per pass, milliseconds of wall time after a device sync).
"""
from __future__ import annotations

import argparse
import copy
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch
from torch.nn.utils import parametrize

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root: lab is not installed

from lab.training.codec.configs import CONFIGS, phase_config
from lab.training.codec.discriminators import _default_family
from lab.training.codec.train import Trainer
from lina.codec.codec import Codec

SETS = (("mpd", "mrd", "mbstft"), ("mpd", "mrd"), ("mpd",), ("mrd",), ("mbstft",), ())


def timed(fn, device: torch.device, steps: int) -> float:
    """Milliseconds per call of `fn` (one warm-up call first)."""
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / steps * 1e3


def plain_weights(module: torch.nn.Module) -> torch.nn.Module:
    """A copy whose weight-normed layers hold their current weight as a plain parameter."""
    module = copy.deepcopy(module)
    for sub in module.modules():
        if parametrize.is_parametrized(sub):
            for name in list(sub.parametrizations):
                parametrize.remove_parametrizations(sub, name, leave_parametrized=True)
    return module


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--init", default=None, help="an exported codec (decoder-only steps, as the GAN phase runs)")
    p.add_argument("--batch", type=int, default=48)
    p.add_argument("--steps", type=int, default=10)
    args = p.parse_args(argv)
    device = torch.device(args.device)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    base = phase_config("gan")
    segment = int(base.segment_seconds * 24000) // 320 * 320
    wav = (torch.randn(args.batch, segment, device=device) * 0.1).clamp(-1, 1)
    rows = []
    for names in SETS:
        config = replace(base, discriminators=names, batch_size=args.batch, warmup_steps=0, gan_start_step=0)
        if args.init:
            trainer = Trainer.warm_start(Codec.from_pretrained(args.init), replace(config, train_encoder=False), device)
        else:
            trainer = Trainer.create(CONFIGS["mini"], replace(config, train_encoder=True), device)  # k-means start
        ms = timed(lambda: trainer.train_step(wav), device, args.steps)
        rows.append((f"train step, discriminators {'+'.join(names) or 'none'}", ms))
        print(rows[-1], flush=True)
        del trainer
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")
    for name in ("mpd", "mrd", "mbstft"):
        for label, family in (("", _default_family(name).to(device)), (" (plain weights)", None)):
            family = family if family is not None else plain_weights(_default_family(name)).to(device)

            def pass_(family=family):
                x = wav.clone().requires_grad_(True)
                with autocast:
                    outs = family(x)
                    loss = sum(logit.float().mean() + sum(f.float().mean() for f in feats) for logit, feats in outs)
                loss.backward()
            rows.append((f"{name} forward + backward{label}", timed(pass_, device, args.steps)))
            print(rows[-1], flush=True)
    print(f"\nbatch {args.batch} x {segment / 24000:.2f} s on {device} "
          f"({torch.cuda.get_device_name(0) if device.type == 'cuda' else 'CPU'})\n\n| what | ms |\n|---|---|")
    for what, ms in rows:
        print(f"| {what} | {ms:.1f} |")


if __name__ == "__main__":
    main()
