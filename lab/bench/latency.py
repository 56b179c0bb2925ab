"""Batch-1 latency and its floor, time to first audio, prompt prefill, and voice-tuning time (CUDA).

    python -m lab.bench.latency [--parts decode prefill ist] [--compile]
    python -m lab.bench.latency --parts decode --dtypes bfloat16 float32 --modes compile graph eager
    python -m lab.bench.latency --parts prefill ist --fla      # also the rows with fla's chunked kernels
    python -m lab.bench.latency --smoke                        # tiny model on the CPU, seconds (tests)

Random weights of the released size. Decoding rows (``--modes``): ``eager`` (`lina.generate.decode`),
``graph`` (`GraphDecoder`: the step in one CUDA graph), ``compile`` (`GraphDecoder(compile_step=True)`:
the step fused by torch.compile, then captured), for each of ``--dtypes``, in the order given.
Prefill: a 10 s prompt (750 tokens) in one parallel pass vs token by token. IST: 100 tuning steps at
batch 8 on 10 s clips (fp32 model, TF32 matmuls), first 3 steps timed apart.

fla: sequences (prefill, tuning, the BOS prefill inside the decoders) run in PyTorch by default, since
fla's chunked kernels compile and autotune for minutes per dtype and shape in a fresh process; the
decoding step never uses fla here. ``--fla`` adds the parallel prefill and IST rows with fla's kernels
(their first call, which autotunes, is timed apart; ``--ist-backends fla`` leaves out the PyTorch IST row).
``--ist-fla`` is the old name of ``--fla``.

``$OUT/latency.json`` is rewritten after every row (a run cut by a time limit keeps its rows); markdown
tables last. The measurements themselves: `lab.bench.latency_timing`.
"""
from __future__ import annotations

import argparse
import time
import traceback
from dataclasses import asdict

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
    tiny_size,
)
from lab.bench.latency_timing import (
    FULL,
    MODES,
    SMOKE,
    Sizes,
    bandwidth_gbs,
    first_audio_s,
    ist_s,
    per_token_ms,
    prefill_s,
    step_bytes,
)
from lina.codec import Codec, CodecConfig
from lina.model import LinaModel


def decode_rows(res: Results, model: LinaModel, codec: Codec, bw: float | None, dtypes: list[str],
                modes: list[str], sizes: Sizes) -> None:
    """One row per dtype x mode, written as each ends; ``model`` is left in float32."""
    for dtype_name in dtypes:
        dtype = getattr(torch, dtype_name)
        model.to(dtype)
        floor_ms = None if bw is None else 1000 * step_bytes(model) / (bw * 1e9)
        for mode in modes:
            graphs, compiled = MODES[mode]
            row = {"dtype": str(dtype), "mode": mode, "cuda_graphs": graphs, "compiled": compiled}
            res.log(f"decode {dtype_name} {mode} ...")
            t0 = time.perf_counter()
            try:
                ms = per_token_ms(model, graphs, compiled, sizes)
                row.update(ms_per_token=ms, tokens_per_s=1000 / ms, floor_ms=floor_ms,
                           setup_s=time.perf_counter() - t0)
                row["first_audio_s"] = first_audio_s(model, codec, graphs, compiled, sizes)
            except Exception as error:  # noqa: BLE001 - a failing mode must not cost the other rows
                traceback.print_exc()
                row["error"] = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
            free_memory(model.device)
            res.add("steps", row)
            res.log(row)
    model.to(torch.float32)


def guarded(res: Results, key: str, fn) -> None:
    try:
        row = fn()
    except Exception as error:  # noqa: BLE001
        traceback.print_exc()
        row = {"error": f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"}
    free_memory(res.data.get("device_type", "cpu"))
    res.add(key, row)
    res.log(key, row)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--parts", nargs="+", default=["decode", "prefill", "ist"],
                        choices=["decode", "prefill", "ist"])
    parser.add_argument("--dtypes", nargs="+", choices=["float32", "bfloat16", "float16"],
                        help="dtypes of the decoding rows, in this order (default float32 bfloat16; smoke float32)")
    parser.add_argument("--modes", nargs="+", choices=sorted(MODES),
                        help="decoders timed (default eager graph, + compile with --compile; smoke: eager)")
    parser.add_argument("--compile", action="store_true", help="also time the torch.compile'd step in the graph")
    parser.add_argument("--fla", "--ist-fla", dest="fla", action="store_true",
                        help="also the prefill and IST rows with fla's chunked kernels (they autotune: minutes)")
    parser.add_argument("--ist-backends", nargs="+", choices=["torch", "fla"],
                        help="IST rows (default torch, + fla with --fla)")
    parser.add_argument("--name", default="latency", help="result file $OUT/<name>.json")
    parser.add_argument("--device", help="(default cuda; smoke cpu)")
    parser.add_argument("--smoke", action="store_true", help="tiny model, few steps, CPU: checks the code paths")
    parser.add_argument("--dry-run", action="store_true", help="print what would be measured, measure nothing")
    args = parser.parse_args(argv)
    args.device = args.device or ("cpu" if args.smoke else "cuda")
    args.dtypes = args.dtypes or (["float32"] if args.smoke else ["float32", "bfloat16"])
    if args.modes is None:
        args.modes = ["eager"] if args.smoke else ["eager", "graph"] + (["compile"] if args.compile else [])
    args.ist_backends = args.ist_backends or (["torch", "fla"] if args.fla else ["torch"])
    require_cuda_unless_dry(parser, args)
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    if args.dry_run:
        return dry_run_plan(args, ("device", "smoke", "parts", "dtypes", "modes", "fla", "ist_backends", "name"))
    sizes = SMOKE if args.smoke else FULL
    torch.manual_seed(0)
    if args.smoke:
        torch.set_num_threads(1)  # tiny ops on a shared CPU: a second thread only waits
    torch.backends.cuda.matmul.allow_tf32 = True
    set_fla("none")
    allow_many_recompiles()
    dev = torch.device(args.device)
    model = LinaModel(tiny_size() if args.smoke else released_size()).to(dev).eval()
    if args.smoke:
        from lab.training.codec.configs import TINY
        codec = Codec(TINY).to(dev).eval()
    else:
        codec = Codec(CodecConfig()).to(dev).eval()
    bw = bandwidth_gbs() if dev.type == "cuda" else None
    free_memory(dev)  # the 2 GiB of the bandwidth test
    res = Results(args.name, device=device_name(dev), device_type=dev.type, torch=torch.__version__,
                  smoke=args.smoke, sizes=asdict(sizes), fla_installed=fla_installed(), bandwidth_gbs=bw,
                  steps=[], ist=[])
    res.log(f"{res.data['device']}, copy bandwidth {bw} GB/s, fla installed {res.data['fla_installed']}")
    with_fla = args.fla and res.data["fla_installed"]
    if args.fla and not with_fla:
        res.log("--fla: fla is not installed (or no CUDA); its rows are skipped")
    if "decode" in args.parts:
        decode_rows(res, model, codec, bw, args.dtypes, args.modes, sizes)
    if "prefill" in args.parts:
        res.log("prefill ...")
        guarded(res, "prefill_rows", lambda: prefill_s(model, sizes, with_fla))
        res.data["prefill"] = res.data["prefill_rows"][-1]
        res.save()
    if "ist" in args.parts:
        for use_fla in [b == "fla" for b in args.ist_backends if b == "torch" or with_fla]:
            res.log(f"IST (fla {use_fla}) ...")
            guarded(res, "ist", lambda use_fla=use_fla: ist_s(model, use_fla, sizes))
    res.done()
    print(tables(res.data))
    return res.data


def tables(res: dict) -> str:
    bw = res.get("bandwidth_gbs")
    lines = [f"\n{res['device']}: measured copy bandwidth " + (f"{bw:.0f} GB/s" if bw else "-")]
    if res["steps"]:
        lines += [("| dtype | decoder | ms/token | tokens/s | floor ms (weights/bandwidth) | first audio (s) "
                   "| setup s |"),
                  "|---|---|---|---|---|---|---|"]
        for r in res["steps"]:
            if "error" in r:
                lines.append(f"| {r['dtype']} | {r['mode']} | failed: {r['error']} | | | | |")
                continue
            floor = f"{r['floor_ms']:.3f}" if r.get("floor_ms") is not None else "-"
            lines.append(f"| {r['dtype']} | {r['mode']} | {r['ms_per_token']:.2f} | {r['tokens_per_s']:.0f} | "
                         f"{floor} | {r['first_audio_s']:.3f} | {r['setup_s']:.1f} |")
    p = res.get("prefill")
    if p and "error" not in p:
        fla = (f", fla {p['parallel_fla_s'] * 1000:.1f} ms (first call {p['parallel_fla_first_call_s']:.1f} s)"
               if "parallel_fla_s" in p else "")
        lines.append(f"\nprefill of a {p['prompt_tokens']}-token prompt ({p['dtype']}): parallel "
                     f"{p['parallel_s'] * 1000:.1f} ms{fla}, token by token {p['token_by_token_s'] * 1000:.0f} ms")
    elif p:
        lines.append(f"\nprefill failed: {p['error']}")
    for r in res["ist"]:
        if "error" in r:
            lines.append(f"IST failed: {r['error']}")
            continue
        lines.append(f"IST (fla {r['use_fla']}), {r['steps']} steps, batch {r['batch']}, {r['clip_tokens']}-token "
                     f"clips: {r['total_s']:.2f} s ({r['ms_per_step']:.0f} ms/step; first {r['warmup_s']:.1f} s "
                     f"for the warm-up call incl. compilation)")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
