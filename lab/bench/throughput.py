"""Generation throughput: Lina (GLA; eager, CUDA graphs, compiled step, fla step) vs a self-attention decoder.

    python -m lab.bench.throughput --batches 1 4 16 64 256 --tokens 1500 --lengths 500 1500 3000
    python -m lab.bench.throughput --gla gla_graph_compile gla_graph_compile_fla --batches 64 256 --lengths 500 3000
    python -m lab.bench.throughput --smoke          # tiny model on the CPU, seconds (tests)

Random weights of the released size (d_model 1024, 6+6 GLA layers, 4099-way head), bf16, top-k 100
sampling, no early stop. GLA decoders (``--gla``):

* ``gla_eager``: `lina.generate.decode`, one Python call per step;
* ``gla_graph``: `GraphDecoder`, the whole step in one CUDA graph (PyTorch step);
* ``gla_graph_fla``: the same with fla's fused recurrent step kernel (``use_fla=True``);
* ``gla_graph_compile``: `GraphDecoder(compile_step=True)`: the step fused by torch.compile, then captured;
* ``gla_graph_compile_fla``: both.

Self-attention baseline: `lab.bench.sa_baseline.SADecoder` (KV cache, eager). The length table (``--lengths``
at ``--length-batch``) uses the GLA decoder that was fastest at that batch in the batch table (all of
``--gla`` if that batch was not measured); a length equal to ``--tokens`` reuses the batch-table row.
Prefills (BOS only, untimed) run in PyTorch (`lab.bench.common.set_fla("step")`).

Every measurement is printed when done and ``$OUT/<--name>.json`` is rewritten after each, so a run cut
by a time limit keeps its rows; ``--max-seconds`` skips the rows that would start after that budget.
Markdown tables last.
"""
from __future__ import annotations

import argparse
import itertools
import time
import traceback

import torch

from lab.bench.common import (
    Results,
    allow_many_recompiles,
    device_name,
    dry_run_plan,
    fla_installed,
    free_memory,
    released_size,
    require_cuda_unless_dry,
    set_fla,
    sync,
    timed,
    tiny_size,
)
from lab.bench.sa_baseline import SADecoder
from lina.cuda_graphs import GraphDecoder
from lina.generate import decode
from lina.model import LinaModel, count_parameters
from lina.sampling import SamplingConfig

TEXT_TOKENS = 120
SAMPLING = SamplingConfig(top_k=100)
BLOCK = 256  # graph replays between two host reads / noise refills
# name -> (CUDA graph, fla step kernel, torch.compile'd step)
VARIANTS = {
    "gla_eager": (False, False, False),
    "gla_graph": (True, False, False),
    "gla_graph_fla": (True, True, False),
    "gla_graph_compile": (True, False, True),
    "gla_graph_compile_fla": (True, True, True),
}
DEFAULT_GLA = ["gla_graph_compile", "gla_graph_fla", "gla_graph_compile_fla"]  # riskiest last


def _text(model: LinaModel, batch: int):
    dev = model.device
    text = torch.randint(3, model.cfg.n_text_vocab, (batch, TEXT_TOKENS), device=dev)
    return model.encode_text(text, torch.full((batch,), TEXT_TOKENS, device=dev))


@torch.inference_mode()
def gla_run(model: LinaModel, batch: int, tokens: int, variant: str) -> dict:
    """Tokens/s of one GLA decoder; ``setup_s`` is what comes before the timed run (text encoding,
    prefill, compilation, capture, first replays)."""
    graph, use_fla, compile_step = VARIANTS[variant]
    dev = model.device
    start = time.perf_counter()
    ctx = _text(model, batch)
    if graph:
        dec = GraphDecoder(model, ctx, model.init_state(batch), None, SAMPLING, block=BLOCK, use_fla=use_fla,
                           compile_step=compile_step)
        dec.run(8)  # first replays

        def run():
            dec.run(tokens)
    else:
        gen = torch.Generator(device=dev).manual_seed(0)
        steps = decode(model, ctx, model.init_state(batch), None, SAMPLING, gen)
        for _ in itertools.islice(steps, 2):
            pass

        def run():
            for _ in itertools.islice(steps, tokens):
                pass
    sync(dev)
    setup = time.perf_counter() - start
    sec, mem = timed(run, dev)
    return {"tokens_per_s": batch * tokens / sec, "seconds": sec, "ms_per_step": 1000 * sec / tokens,
            "peak_mib": mem, "setup_s": setup}


@torch.inference_mode()
def sa_run(sa: SADecoder, batch: int, tokens: int) -> dict:
    dev = sa.head.weight.device
    d, h = sa.head.weight.shape[1], sa.heads
    kv = tuple(torch.randn(batch, h, TEXT_TOKENS, d // h, device=dev, dtype=sa.head.weight.dtype) for _ in range(2))

    def run():
        caches = sa.caches(batch, tokens)
        token = torch.ones(batch, dtype=torch.long, device=dev)
        for t in range(tokens):
            logits = sa.step(token, kv, caches, t).float()
            values, idx = logits.topk(SAMPLING.top_k, dim=-1)
            token = idx.gather(-1, torch.multinomial(values.softmax(-1), 1))[:, 0]
    sec, mem = timed(run, dev)
    return {"tokens_per_s": batch * tokens / sec, "seconds": sec, "ms_per_step": 1000 * sec / tokens,
            "peak_mib": mem, "kv_mib_per_row": sa.kv_bytes_per_row(tokens) / 2**20}


def measure(res: Results, entry: dict, name: str, fn, max_seconds: float | None, device) -> None:
    """Runs one measurement into ``entry[name]``: the error or the skip is recorded instead of raising."""
    if max_seconds is not None and res.elapsed() > max_seconds:
        entry[name] = {"skipped": f"time budget of {max_seconds:.0f} s spent"}
    else:
        res.log(f"batch {entry['batch']}, {entry['tokens']} tokens: {name} ...")
        try:
            entry[name] = fn()
        except Exception as error:  # noqa: BLE001 - one failing decoder must not cost the other rows
            traceback.print_exc()
            entry[name] = {"error": f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"}
        free_memory(device)
    res.save()
    res.log(f"batch {entry['batch']}, {entry['tokens']} tokens: {name} {_short(entry[name])}")


def _short(r: dict) -> str:
    if "tokens_per_s" not in r:
        return str(r)
    peak = f", peak {r['peak_mib']:.0f} MiB" if r.get("peak_mib") is not None else ""
    setup = f", setup {r['setup_s']:.1f} s" if "setup_s" in r else ""
    return f"{r['tokens_per_s']:.0f} tok/s ({r['ms_per_step']:.2f} ms/step{peak}{setup})"


def best_gla(entry: dict) -> str | None:
    rates = {k: v["tokens_per_s"] for k, v in entry.items() if k in VARIANTS and "tokens_per_s" in v}
    return max(rates, key=rates.get) if rates else None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batches", type=int, nargs="*", help="batch table rows (default 1 4 16 64 256)")
    ap.add_argument("--tokens", type=int, help="tokens per row in the batch table (default 1500)")
    ap.add_argument("--lengths", type=int, nargs="*", help="length table (default 500 1500 3000)")
    ap.add_argument("--length-batch", type=int, help="batch of the length table (default 64)")
    ap.add_argument("--gla", nargs="+", choices=sorted(VARIANTS), help=f"GLA decoders (default {DEFAULT_GLA})")
    ap.add_argument("--eager-batches", type=int, nargs="*", default=[],
                    help="batches that also time gla_eager (slow; none by default)")
    ap.add_argument("--no-sa", action="store_true", help="skip the self-attention baseline")
    ap.add_argument("--dtype", choices=["bfloat16", "float32", "float16"], help="(default bfloat16; smoke float32)")
    ap.add_argument("--device", help="(default cuda; smoke cpu)")
    ap.add_argument("--max-seconds", type=float, help="skip measurements that would start after this")
    ap.add_argument("--name", default="throughput", help="result file $OUT/<name>.json")
    ap.add_argument("--smoke", action="store_true", help="tiny model, few tokens, CPU: checks the code paths")
    ap.add_argument("--dry-run", action="store_true", help="print what would be measured, measure nothing")
    args = ap.parse_args(argv)
    smoke = args.smoke

    def pick(value, full, small):
        return value if value is not None else (small if smoke else full)
    args.batches = pick(args.batches, [1, 4, 16, 64, 256], [1, 2])
    args.tokens = pick(args.tokens, 1500, 6)
    args.lengths = pick(args.lengths, [500, 1500, 3000], [4, 6])
    args.length_batch = pick(args.length_batch, 64, 2)
    args.dtype = pick(args.dtype, "bfloat16", "float32")
    args.device = pick(args.device, "cuda", "cpu")
    args.gla = pick(args.gla, DEFAULT_GLA, ["gla_eager"])
    require_cuda_unless_dry(ap, args)
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    if args.dry_run:
        return dry_run_plan(args, ("device", "dtype", "smoke", "batches", "tokens", "gla", "eager_batches", "no_sa",
                                   "lengths", "length_batch", "max_seconds", "name"))
    torch.manual_seed(0)
    if args.smoke:
        torch.set_num_threads(1)  # tiny ops on a shared CPU: a second thread only waits
    set_fla("step")
    allow_many_recompiles()
    dev = torch.device(args.device)
    dtype = getattr(torch, args.dtype)
    cfg = tiny_size() if args.smoke else released_size()
    model = LinaModel(cfg).to(dev, dtype).eval()
    sa = None if args.no_sa else SADecoder(cfg).to(dev, dtype).eval()
    has_fla = fla_installed()
    row_state = model.init_state(1)
    state_bytes = sum(t.numel() * t.element_size() for s in row_state.encoder + row_state.decoder + [row_state.pos_net]
                      for t in (s.conv_q, s.conv_k, s.conv_v, s.recurrent))
    res = Results(args.name, device=device_name(dev), torch=torch.__version__, dtype=str(dtype), smoke=args.smoke,
                  fla_installed=has_fla, gla_variants=args.gla, gla_parameters=count_parameters(model),
                  sa_parameters=None if sa is None else count_parameters(sa),
                  gla_state_mib_per_row=state_bytes / 2**20, config=cfg.to_dict(), text_tokens=TEXT_TOKENS,
                  tokens_per_s="batch * tokens / seconds",
                  peak_mib="max allocated during the timed run: both models' weights (GLA and SA) are resident",
                  batches=[], lengths=[])
    res.log(f"{res.data['device']}, {dtype}, GLA {res.data['gla_parameters'] / 1e6:.1f} M params; fla {has_fla}")

    def gla_jobs(batch: int, tokens: int, variants: list[str]):
        for v in variants:
            if VARIANTS[v][1] and not has_fla:
                yield v, lambda: {"skipped": "fla not installed (or no CUDA)"}
            else:
                yield v, (lambda v=v: gla_run(model, batch, tokens, v))

    for b in args.batches:
        entry = {"batch": b, "tokens": args.tokens}
        res.data["batches"].append(entry)
        variants = args.gla + (["gla_eager"] if b in args.eager_batches and "gla_eager" not in args.gla else [])
        for name, fn in gla_jobs(b, args.tokens, variants):
            measure(res, entry, name, fn, args.max_seconds, dev)
        if sa is not None:
            measure(res, entry, "sa_eager", lambda b=b: sa_run(sa, b, args.tokens), args.max_seconds, dev)
    same_batch = next((e for e in res.data["batches"] if e["batch"] == args.length_batch), None)
    chosen = best_gla(same_batch) if same_batch else None
    length_variants = [chosen] if chosen else args.gla
    res.data["length_gla"] = length_variants
    for n in args.lengths:
        b = args.length_batch
        entry = {"batch": b, "tokens": n}
        res.data["lengths"].append(entry)
        if same_batch is not None and n == args.tokens:  # that row is in the batch table already
            entry.update({k: v for k, v in same_batch.items() if k in length_variants or k == "sa_eager"},
                         from_batch_table=True)
            res.save()
            continue
        for name, fn in gla_jobs(b, n, length_variants):
            measure(res, entry, name, fn, args.max_seconds, dev)
        if sa is not None:
            measure(res, entry, "sa_eager", lambda n=n, b=b: sa_run(sa, b, n), args.max_seconds, dev)
    res.done()
    print(tables(res.data))
    return res.data


def _rate(r: dict | None) -> str:
    return f"{r['tokens_per_s']:.0f}" if r and "tokens_per_s" in r else ("-" if not r else
                                                                           "skip" if "skipped" in r else "error")


def _peak(r: dict | None) -> str:
    return f"{r['peak_mib']:.0f}" if r and r.get("peak_mib") is not None else "-"


def tables(data: dict) -> str:
    variants = [v for v in VARIANTS if any(v in e for e in data["batches"] + data["lengths"])]
    lines = [f"\n{data['device']}, {data['dtype']}, GLA {data['gla_parameters'] / 1e6:.0f} M params"
             + (f", SA {data['sa_parameters'] / 1e6:.0f} M params" if data.get("sa_parameters") else "")
             + f"; GLA state {data['gla_state_mib_per_row']:.1f} MiB/row; fla installed: {data['fla_installed']}"]
    for key, title in (("batches", "batch"), ("lengths", "tokens")):
        rows = data[key]
        if not rows:
            continue
        head = [title] + [f"{v} tok/s" for v in variants] + ["SA+KV tok/s", "best GLA / SA", "best GLA peak MiB",
                                                              "SA peak MiB", "compile setup s"]
        lines += ["", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for e in rows:
            best = best_gla(e)
            sa = e.get("sa_eager")
            ratio = (f"{e[best]['tokens_per_s'] / sa['tokens_per_s']:.2f}"
                     if best and sa and "tokens_per_s" in sa else "-")
            compile_setup = [e[v]["setup_s"] for v in e if v in VARIANTS and VARIANTS[v][2] and "setup_s" in e[v]]
            label = e[title if title == "batch" else "tokens"]
            if key == "lengths":
                label = f"{label} (batch {e['batch']})"
            cells = [str(label)] + [_rate(e.get(v)) for v in variants] + [
                _rate(sa), ratio + (f" ({best})" if best else ""), _peak(e.get(best)) if best else "-", _peak(sa),
                "/".join(f"{s:.0f}" for s in compile_setup) or "-"]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
