"""Batch-1 latency and its floor, time to first audio, prompt prefill, and voice-tuning time (CUDA).

    python -m bench.latency [--parts decode prefill ist] [--compile]

Random weights of the released size. Prints markdown tables last; writes ``$OUT/latency.json``.
Each part runs alone if asked (fla compiles and autotunes its kernels per shape on first use: minutes).
"""
from __future__ import annotations

import argparse
import itertools
import time

import torch

from bench.common import write_result
from lina.codec import Codec, CodecConfig
from lina.config import LinaConfig
from lina.cuda_graphs import GraphDecoder
from lina.generate import decode, prefill
from lina.ist import Clip, TuningConfig, tune_voice
from lina.model import LinaModel
from lina.sampling import SamplingConfig

STEPS = 500
FIRST_CHUNK = 15      # codec frames decoded for the first audio (0.2 s)
PROMPT = 750          # a 10 s prompt at 75 tokens/s
SAMPLING = SamplingConfig(top_k=100)


def _sync_time(fn):
    torch.cuda.synchronize()
    t = time.perf_counter()
    out = fn()
    torch.cuda.synchronize()
    return time.perf_counter() - t, out


def bandwidth_gbs() -> float:
    x = torch.empty(2**30, dtype=torch.uint8, device="cuda")
    y = torch.empty_like(x)
    y.copy_(x)
    sec, _ = _sync_time(lambda: [y.copy_(x) for _ in range(10)])
    return 2 * 10 * x.numel() / sec / 1e9  # read + write


def step_bytes(model: LinaModel) -> int:
    """Weights one decoding step must read (the text encoder runs once per utterance, not per step)."""
    per_step = [model.encoder, model.decoder, model.cross_attention, model.head]
    return sum(p.numel() * p.element_size() for m in per_step for p in m.parameters())


@torch.inference_mode()
def per_token_ms(model: LinaModel, graphs: bool, compile_step: bool = False) -> float:
    text = torch.randint(3, 256, (1, 120), device="cuda")
    ctx = model.encode_text(text, torch.tensor([120], device="cuda"))
    if graphs:
        dec = GraphDecoder(model, ctx, model.init_state(1), None, SAMPLING, block=STEPS, compile_step=compile_step)
        dec.run(4)
        sec, _ = _sync_time(lambda: dec.run(STEPS - 4))
        return 1000 * sec / (STEPS - 4)
    steps = decode(model, ctx, model.init_state(1), None, SAMPLING)
    list(itertools.islice(steps, 4))
    sec, _ = _sync_time(lambda: list(itertools.islice(steps, STEPS)))
    return 1000 * sec / STEPS


@torch.inference_mode()
def first_audio_s(model: LinaModel, codec: Codec, graphs: bool, compile_step: bool = False) -> float:
    text = torch.randint(3, 256, (1, 120), device="cuda")

    def run():
        ctx = model.encode_text(text, torch.tensor([120], device="cuda"))
        if graphs:
            tokens = GraphDecoder(model, ctx, model.init_state(1), None, SAMPLING, block=64,
                                  compile_step=compile_step).run(FIRST_CHUNK)
        else:
            tokens = torch.stack([s.tokens for s in itertools.islice(
                decode(model, ctx, model.init_state(1), None, SAMPLING), FIRST_CHUNK)], 1)
        return codec.decode((tokens - 3).clamp(0, codec.config.quantizer.bins - 1))
    run()
    return min(_sync_time(run)[0] for _ in range(3))


@torch.inference_mode()
def prefill_s(model: LinaModel) -> dict:
    text = torch.randint(3, 256, (1, 150), device="cuda")
    ctx = model.encode_text(text, torch.tensor([150], device="cuda"))
    prompt = torch.randint(0, 4096, (1, PROMPT), device="cuda")
    prefill(model, ctx, model.init_state(1), prompt)
    parallel, _ = _sync_time(lambda: prefill(model, ctx, model.init_state(1), prompt))

    def stepwise():
        out = model.step(ctx, torch.tensor([1], device="cuda"), model.init_state(1))
        for t in range(PROMPT):
            out = model.step(ctx, prompt[:, t] + 3, out.state)
    serial, _ = _sync_time(stepwise)
    return {"parallel_s": parallel, "token_by_token_s": serial}


def ist_s(model: LinaModel, use_fla: bool) -> dict:
    """100 tuning steps at batch 8 on 10 s clips; the first (warm-up) call's time is kept too, since
    with fla it is mostly kernel compilation and autotuning."""
    g = torch.Generator().manual_seed(0)
    clips = [Clip(torch.randint(0, 4096, (PROMPT,), generator=g), torch.randint(3, 256, (150,), generator=g))
             for _ in range(16)]
    warm, _ = _sync_time(lambda: tune_voice(model, clips, TuningConfig(steps=3, batch_size=8), use_fla=use_fla))
    sec, _ = _sync_time(lambda: tune_voice(model, clips, TuningConfig(steps=100, batch_size=8), use_fla=use_fla))
    return {"use_fla": use_fla, "warmup_3_steps_s": warm, "steps_100_s": sec}


def decode_rows(model32: LinaModel, codec: Codec, bw: float, compile_step: bool) -> list[dict]:
    rows = []
    for dtype in (torch.float32, torch.bfloat16):
        model = model32.to(dtype)
        floor_ms = 1000 * step_bytes(model) / (bw * 1e9)
        variants = [(False, False), (True, False)] + ([(True, True)] if compile_step else [])
        for graphs, compiled in variants:
            t0 = time.perf_counter()
            ms = per_token_ms(model, graphs, compiled)
            rows.append({"dtype": str(dtype), "cuda_graphs": graphs, "compiled": compiled, "ms_per_token": ms,
                         "tokens_per_s": 1000 / ms, "floor_ms": floor_ms, "setup_s": time.perf_counter() - t0,
                         "first_audio_s": first_audio_s(model, codec, graphs, compiled)})
            print(rows[-1], flush=True)
    model32.to(torch.float32)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--parts", nargs="+", default=["decode", "prefill", "ist"],
                        choices=["decode", "prefill", "ist"])
    parser.add_argument("--compile", action="store_true", help="also time the torch.compile'd step in the graph")
    parser.add_argument("--ist-fla", action="store_true", help="also time IST with fla's kernels (autotuning)")
    args = parser.parse_args()
    torch.manual_seed(0)
    torch.backends.cuda.matmul.allow_tf32 = True
    cfg = LinaConfig(model_id="random-released-size")
    model32 = LinaModel(cfg).cuda().eval()
    codec = Codec(CodecConfig()).cuda().eval()
    bw = bandwidth_gbs()
    res = {"device": torch.cuda.get_device_name(), "bandwidth_gbs": bw, "steps": [], "ist": []}
    if "decode" in args.parts:
        res["steps"] = decode_rows(model32, codec, bw, args.compile)
    if "prefill" in args.parts:
        res["prefill"] = prefill_s(model32)
        print(res["prefill"], flush=True)
    if "ist" in args.parts:
        for use_fla in (False, True) if args.ist_fla else (False,):
            res["ist"].append(ist_s(model32, use_fla))
            print(res["ist"][-1], flush=True)
    write_result("latency", res)
    print(f"\n{res['device']}: measured copy bandwidth {bw:.0f} GB/s")
    if res["steps"]:
        print("| dtype | CUDA graph | compiled | ms/token | tokens/s | floor ms (weights/bandwidth) | first audio (s) |")
        print("|---|---|---|---|---|---|---|")
        for r in res["steps"]:
            print(f"| {r['dtype']} | {r['cuda_graphs']} | {r['compiled']} | {r['ms_per_token']:.2f} | "
                  f"{r['tokens_per_s']:.0f} | {r['floor_ms']:.3f} | {r['first_audio_s']:.3f} |")
    if "prefill" in res:
        p = res["prefill"]
        print(f"\nprefill of a 10 s prompt ({PROMPT} tokens): parallel {p['parallel_s'] * 1000:.1f} ms, "
              f"token by token {p['token_by_token_s'] * 1000:.0f} ms")
    for r in res["ist"]:
        print(f"IST (fla {r['use_fla']}), 100 steps, batch 8, 10 s clips: {r['steps_100_s']:.2f} s "
              f"(first 3 steps incl. compilation {r['warmup_3_steps_s']:.1f} s)")


if __name__ == "__main__":
    main()
