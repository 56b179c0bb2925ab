"""Generation throughput of the Lina language model (random weights of a given size).

    python -m lab.bench.lm_speed --device cpu --batch 1 --tokens 100
    python -m lab.bench.lm_speed --device cuda --batch 1 64 --tokens 1500 --dtype bfloat16
    python -m lab.bench.lm_speed --smoke        # tiny model on the CPU, a second (tests)

Prints a markdown table last and writes JSON to ``$OUT/lm_speed.json`` (default ./out).
"""
from __future__ import annotations

import argparse
import itertools
import time

import torch

from lab.bench import common
from lab.bench.common import write_result
from lina.config import LinaConfig
from lina.generate import decode
from lina.model import LinaModel, count_parameters
from lina.sampling import SamplingConfig

TEXT_TOKENS = 120  # a sentence of ~20 words through a 256-token BPE


def released_size() -> LinaConfig:
    return common.released_size()


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(model: LinaModel, batch: int, tokens: int, warmup: int = 5) -> dict:
    device = model.device
    text = torch.randint(3, model.cfg.n_text_vocab, (batch, TEXT_TOKENS), device=device)
    lengths = torch.full((batch,), TEXT_TOKENS, device=device)
    sampling = SamplingConfig(top_k=100)
    gen = torch.Generator(device=device).manual_seed(0)
    with torch.inference_mode():
        ctx = model.encode_text(text, lengths)
        for _ in itertools.islice(decode(model, ctx, model.init_state(batch), None, sampling, gen), warmup):
            pass
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        _sync(device)
        start = time.perf_counter()
        ctx = model.encode_text(text, lengths)
        first = None
        for i, _ in enumerate(itertools.islice(decode(model, ctx, model.init_state(batch), None, sampling, gen),
                                               tokens)):
            if i == 0:
                _sync(device)
                first = time.perf_counter() - start
        _sync(device)
        elapsed = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
    return {"batch": batch, "tokens": tokens, "seconds": elapsed, "tokens_per_s": batch * tokens / elapsed,
            "ms_per_step": 1000 * elapsed / tokens, "first_token_s": first, "peak_mib": peak}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--batch", type=int, nargs="+", default=[1])
    ap.add_argument("--tokens", type=int, default=200)
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--smoke", action="store_true", help="tiny model, 5 tokens, CPU, 1 thread")
    args = ap.parse_args(argv)
    if args.smoke:
        args.device, args.batch, args.tokens, args.threads = "cpu", [1, 2], 5, 1
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cfg = common.tiny_size() if args.smoke else released_size()
    model = LinaModel(cfg).to(args.device, getattr(torch, args.dtype)).eval()
    rows = [measure(model, b, args.tokens) | {"device": args.device, "dtype": args.dtype} for b in args.batch]
    result = {"parameters": count_parameters(model), "config": model.cfg.to_dict(), "rows": rows}
    write_result("lm_speed", result)
    print(f"parameters: {result['parameters'] / 1e6:.1f} M")
    print("| device | dtype | batch | tokens | tokens/s | ms/step | first token (s) | peak MiB |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        peak = f"{r['peak_mib']:.0f}" if r["peak_mib"] is not None else "-"
        print(f"| {r['device']} | {r['dtype']} | {r['batch']} | {r['tokens']} | {r['tokens_per_s']:.0f} | "
              f"{r['ms_per_step']:.2f} | {r['first_token_s']:.3f} | {peak} |")
    return result


if __name__ == "__main__":
    main()
