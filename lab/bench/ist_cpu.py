"""One Initial-State Tuning step of the embedded model on this CPU: forward and forward+backward.

    python -m lab.bench.ist_cpu [--model assets/lina-mini] [--batch 8] [--frames 300] [--text 60]
                            [--threads 2] [--repeats 3] [--no-profile]

Random codes and text (``lina.ist.Clip``), a rank-1 voice as ``tune_voice`` builds it. Times
``clip_loss`` (minimum and median over repeats, ms), then profiles one forward+backward with
``torch.profiler`` (top 15 ops by self CPU time). Prints a table last; writes ``$OUT/ist_cpu.json``.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from lab.bench.common import random_clips, write_result
from lina.ist import clip_loss
from lina.tts import LinaTTS
from lina.voice import RELEASED_SCALE, Voice


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="assets/lina-mini")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--text", type=int, default=60)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-profile", action="store_true")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    tts = LinaTTS.from_pretrained(args.model, watermark=False)  # tuning speed: no audio is returned
    model = tts.model
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    c = model.cfg
    clips = random_clips(args.batch, args.frames, args.text, c.n_codebook, c.n_text_vocab, vary=True)
    gen = torch.Generator().manual_seed(0)
    shape = (c.n_tunable_layers, 1, c.n_heads)
    k = torch.randn(*shape, c.head_k_dim, generator=gen).requires_grad_()
    v = (torch.randn(*shape, c.head_v_dim, generator=gen) * RELEASED_SCALE).requires_grad_()

    def fwd():
        with torch.no_grad():
            return clip_loss(model, clips, Voice(k, v).initial_states(len(clips)), use_fla=False)

    def fwd_bwd():
        k.grad = v.grad = None
        loss = clip_loss(model, clips, Voice(k, v).initial_states(len(clips)), use_fla=False)
        loss.backward()
        return loss

    def timed(fn):
        fn()  # warm-up
        ts = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            fn()
            ts.append((time.perf_counter() - t0) * 1e3)
        return min(ts), statistics.median(ts)

    loss = fwd_bwd()
    rows = [("forward (no grad)", *timed(fwd)), ("forward+backward", *timed(fwd_bwd))]

    if not args.no_profile:
        from torch.profiler import ProfilerActivity, profile
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            fwd_bwd()
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))

    write_result("ist_cpu", {"model": args.model, "batch": args.batch, "frames": args.frames, "text": args.text,
                             "threads": args.threads, "loss": loss.item(),
                             "rows": [{"part": n, "min_ms": lo, "median_ms": med} for n, lo, med in rows]})
    print(f"loss {loss.item():.5f}  grad|k| {k.grad.norm().item():.6g}  grad|v| {v.grad.norm().item():.6g}")
    print(f"\nIST step, {args.model}, batch {args.batch} x {args.frames} frames, text {args.text}, "
          f"{args.threads} threads")
    print(f"{'':20s} {'min ms':>10s} {'median ms':>10s}")
    for name, lo, med in rows:
        print(f"{name:20s} {lo:10.1f} {med:10.1f}")


if __name__ == "__main__":
    main()
