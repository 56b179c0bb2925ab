"""Generation throughput: Lina (GLA, eager and CUDA graphs) vs a same-size self-attention decoder.

    python -m bench.throughput --batches 1 4 16 64 256 --tokens 1500 --lengths 500 1500 3000

Random weights of the released size (d_model 1024, 6+6 GLA layers, 4099-way head), bf16, top-k 100
sampling, no early stop. Prints markdown tables last; writes ``$OUT/throughput.json``.
"""
from __future__ import annotations

import argparse
import time

import torch

from bench.common import write_result
from bench.sa_baseline import SADecoder
from lina.config import LinaConfig
from lina.cuda_graphs import GraphDecoder
from lina.generate import decode
from lina.model import LinaModel, count_parameters
from lina.sampling import SamplingConfig

TEXT_TOKENS = 120
SAMPLING = SamplingConfig(top_k=100)


def _timed(fn) -> tuple[float, float]:
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    fn()
    torch.cuda.synchronize()
    return time.perf_counter() - start, torch.cuda.max_memory_allocated() / 2**20


def _text(model: LinaModel, batch: int):
    text = torch.randint(3, model.cfg.n_text_vocab, (batch, TEXT_TOKENS), device="cuda")
    return model.encode_text(text, torch.full((batch,), TEXT_TOKENS, device="cuda"))


@torch.inference_mode()
def gla_eager(model: LinaModel, batch: int, tokens: int) -> tuple[float, float]:
    ctx = _text(model, batch)
    gen = torch.Generator(device="cuda").manual_seed(0)

    def run():
        for _ in zip(range(tokens), decode(model, ctx, model.init_state(batch), None, SAMPLING, gen)):
            pass
    return _timed(run)


@torch.inference_mode()
def gla_graph(model: LinaModel, batch: int, tokens: int, use_fla: bool = False) -> tuple[float, float]:
    ctx = _text(model, batch)
    dec = GraphDecoder(model, ctx, model.init_state(batch), None, SAMPLING, block=256, use_fla=use_fla)
    dec.run(8)  # first replays
    return _timed(lambda: dec.run(tokens))


@torch.inference_mode()
def sa_eager(sa: SADecoder, batch: int, tokens: int) -> tuple[float, float]:
    d, h = sa.head.weight.shape[1], sa.heads
    kv = tuple(torch.randn(batch, h, TEXT_TOKENS, d // h, device="cuda", dtype=sa.head.weight.dtype) for _ in range(2))

    def run():
        caches = sa.caches(batch, tokens)
        token = torch.ones(batch, dtype=torch.long, device="cuda")
        for t in range(tokens):
            logits = sa.step(token, kv, caches, t).float()
            values, idx = logits.topk(SAMPLING.top_k, dim=-1)
            token = idx.gather(-1, torch.multinomial(values.softmax(-1), 1))[:, 0]
    return _timed(run)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 4, 16, 64, 256])
    ap.add_argument("--tokens", type=int, default=1500)
    ap.add_argument("--lengths", type=int, nargs="+", default=[500, 1500, 3000])
    ap.add_argument("--length-batch", type=int, default=64)
    ap.add_argument("--eager-batches", type=int, nargs="+", default=[1, 64])
    args = ap.parse_args()
    torch.manual_seed(0)
    cfg = LinaConfig(model_id="random-released-size")
    dtype = torch.bfloat16
    model = LinaModel(cfg).cuda().to(dtype).eval()
    sa = SADecoder(cfg).cuda().to(dtype).eval()
    rows = []
    for b in args.batches:
        row = {"batch": b, "tokens": args.tokens}
        gla_fla = lambda m, b_, n: gla_graph(m, b_, n, use_fla=True)
        for name, fn, obj in (("gla_graph", gla_graph, model), ("gla_graph_fla", gla_fla, model),
                              ("sa_eager", sa_eager, sa)) + (
                (("gla_eager", gla_eager, model),) if b in args.eager_batches else ()):
            sec, mem = fn(obj, b, args.tokens)
            row[name] = {"tokens_per_s": b * args.tokens / sec, "seconds": sec, "peak_mib": mem}
            print(b, name, row[name], flush=True)
        rows.append(row)
    lengths = []
    for n in args.lengths:
        b = args.length_batch
        entry = {"batch": b, "tokens": n}
        for name, fn, obj in (("gla_graph", lambda m, b_, n_: gla_graph(m, b_, n_, use_fla=True), model),
                              ("sa_eager", sa_eager, sa)):
            sec, mem = fn(obj, b, n)
            entry[name] = {"tokens_per_s": b * n / sec, "peak_mib": mem}
            print(n, name, entry[name], flush=True)
        entry["sa_kv_mib_per_row"] = sa.kv_bytes_per_row(n) / 2**20
        lengths.append(entry)
    row_state = model.init_state(1)
    state_bytes = sum(t.numel() * t.element_size() for s in row_state.encoder + row_state.decoder + [row_state.pos_net]
                      for t in (s.conv_q, s.conv_k, s.conv_v, s.recurrent))
    result = {"device": torch.cuda.get_device_name(), "dtype": str(dtype), "gla_parameters": count_parameters(model),
              "sa_parameters": count_parameters(sa), "gla_state_mib_per_row": state_bytes / 2**20,
              "batches": rows, "lengths": lengths}
    write_result("throughput", result)
    print(f"\n{result['device']}, {dtype}, GLA {result['gla_parameters'] / 1e6:.0f} M params, "
          f"SA {result['sa_parameters'] / 1e6:.0f} M params; GLA state {result['gla_state_mib_per_row']:.1f} MiB/row")
    print("| batch | GLA graphs tok/s | GLA graphs+fla step tok/s | GLA eager tok/s | SA+KV eager tok/s | best GLA/SA "
          "| GLA peak MiB | SA peak MiB |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        eager = f"{r['gla_eager']['tokens_per_s']:.0f}" if "gla_eager" in r else "-"
        best = max(r["gla_graph"]["tokens_per_s"], r["gla_graph_fla"]["tokens_per_s"])
        print(f"| {r['batch']} | {r['gla_graph']['tokens_per_s']:.0f} | {r['gla_graph_fla']['tokens_per_s']:.0f} | "
              f"{eager} | {r['sa_eager']['tokens_per_s']:.0f} | {best / r['sa_eager']['tokens_per_s']:.2f} | "
              f"{r['gla_graph_fla']['peak_mib']:.0f} | {r['sa_eager']['peak_mib']:.0f} |")
    print(f"\n| tokens (batch {args.length_batch}) | GLA (graphs+fla step) tok/s | SA tok/s | GLA/SA | GLA peak MiB | SA peak MiB | SA KV MiB/row |")
    print("|---|---|---|---|---|---|---|")
    for r in lengths:
        print(f"| {r['tokens']} | {r['gla_graph']['tokens_per_s']:.0f} | {r['sa_eager']['tokens_per_s']:.0f} | "
              f"{r['gla_graph']['tokens_per_s'] / r['sa_eager']['tokens_per_s']:.2f} | {r['gla_graph']['peak_mib']:.0f} | "
              f"{r['sa_eager']['peak_mib']:.0f} | {r['sa_kv_mib_per_row']:.1f} |")


if __name__ == "__main__":
    main()
