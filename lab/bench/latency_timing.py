"""What `lab.bench.latency` times at batch 1 (CUDA; the CPU for smoke runs): one decoding step per decoder,
the time to first audio, a prompt's prefill (parallel vs token by token), voice tuning (IST), and the
weight-read floor of a step (weights / measured copy bandwidth). `lab.bench.latency` runs them and writes rows.
"""
from __future__ import annotations

import itertools
import time
from dataclasses import dataclass

import torch

from lab.bench.common import fla_mode, peak_mib, random_clips, reset_peak, sync
from lina.codec import Codec
from lina.cuda_graphs import GraphDecoder
from lina.generate import decode, prefill
from lina.ist import TuningConfig, tune_voice
from lina.model import LinaModel
from lina.sampling import SamplingConfig

SAMPLING = SamplingConfig(top_k=100)
MODES = {"eager": (False, False), "graph": (True, False), "compile": (True, True)}  # graphs, compiled step


@dataclass(frozen=True)
class Sizes:
    steps: int = 500          # timed decoding steps at batch 1
    first_chunk: int = 15     # codec frames decoded for the first audio (0.2 s)
    text: int = 120           # text tokens of the decoded sentence
    prompt: int = 750         # a 10 s prompt at 75 tokens/s
    prompt_text: int = 150
    ist_steps: int = 100
    ist_batch: int = 8
    ist_clips: int = 16
    ist_warmup_steps: int = 3


FULL = Sizes()
SMOKE = Sizes(steps=8, first_chunk=3, text=12, prompt=16, prompt_text=10, ist_steps=1, ist_batch=2, ist_clips=3,
              ist_warmup_steps=1)


def sync_time(fn, device):
    """``(seconds, fn())`` with the device synchronised before and after."""
    sync(device)
    t = time.perf_counter()
    out = fn()
    sync(device)
    return time.perf_counter() - t, out


def bandwidth_gbs() -> float | None:
    """Copy bandwidth of the GPU (read + write of 1 GiB, 10 times), GB/s; ``None`` without CUDA."""
    if not torch.cuda.is_available():
        return None
    x = torch.empty(2**30, dtype=torch.uint8, device="cuda")
    y = torch.empty_like(x)
    y.copy_(x)
    sec, _ = sync_time(lambda: [y.copy_(x) for _ in range(10)], "cuda")
    return 2 * 10 * 2**30 / sec / 1e9  # read + write


def step_bytes(model: LinaModel) -> int:
    """Weights one decoding step must read (the text encoder runs once per utterance, not per step)."""
    per_step = [model.encoder, model.decoder, model.cross_attention, model.head]
    return sum(p.numel() * p.element_size() for m in per_step for p in m.parameters())


def text_context(model: LinaModel, n: int):
    """The encoded text of ``n`` random text ids (never the special ids below 3), batch 1."""
    dev = model.device
    text = torch.randint(3, model.cfg.n_text_vocab, (1, n), device=dev)
    return model.encode_text(text, torch.tensor([n], device=dev))


@torch.inference_mode()
def per_token_ms(model: LinaModel, graphs: bool, compile_step: bool, sizes: Sizes) -> float:
    ctx, dev = text_context(model, sizes.text), model.device
    if graphs:
        dec = GraphDecoder(model, ctx, model.init_state(1), None, SAMPLING, block=sizes.steps,
                           compile_step=compile_step)
        dec.run(4)
        sec, _ = sync_time(lambda: dec.run(sizes.steps - 4), dev)
        return 1000 * sec / (sizes.steps - 4)
    steps = decode(model, ctx, model.init_state(1), None, SAMPLING)
    list(itertools.islice(steps, 4))
    sec, _ = sync_time(lambda: list(itertools.islice(steps, sizes.steps)), dev)
    return 1000 * sec / sizes.steps


@torch.inference_mode()
def first_audio_s(model: LinaModel, codec: Codec, graphs: bool, compile_step: bool, sizes: Sizes) -> float:
    """Text encoding + prefill (+ capture) + the first chunk of tokens + its codec decode; best of 3."""
    dev = model.device
    text = torch.randint(3, model.cfg.n_text_vocab, (1, sizes.text), device=dev)

    def run():
        ctx = model.encode_text(text, torch.tensor([sizes.text], device=dev))
        if graphs:
            tokens = GraphDecoder(model, ctx, model.init_state(1), None, SAMPLING, block=64,
                                  compile_step=compile_step).run(sizes.first_chunk)
        else:
            tokens = torch.stack([s.tokens for s in itertools.islice(
                decode(model, ctx, model.init_state(1), None, SAMPLING), sizes.first_chunk)], 1)
        return codec.decode((tokens - 3).clamp(0, codec.config.quantizer.bins - 1))
    run()
    return min(sync_time(run, dev)[0] for _ in range(3))


@torch.inference_mode()
def prefill_s(model: LinaModel, sizes: Sizes, with_fla: bool) -> dict:
    """A prompt of ``sizes.prompt`` tokens: one parallel pass (PyTorch; fla too if asked) vs one step per token."""
    dev = model.device
    ctx = text_context(model, sizes.prompt_text)
    prompt = torch.randint(0, model.cfg.n_codebook, (1, sizes.prompt), device=dev)

    def once():
        return prefill(model, ctx, model.init_state(1), prompt)
    out = {"prompt_tokens": sizes.prompt, "dtype": str(model.dtype)}
    with fla_mode("none"):
        once()
        out["parallel_s"], _ = sync_time(once, dev)
    if with_fla:
        with fla_mode("all"):
            out["parallel_fla_first_call_s"], _ = sync_time(once, dev)  # compiles and autotunes
            out["parallel_fla_s"], _ = sync_time(once, dev)

    def stepwise(n: int):
        o = model.step(ctx, torch.tensor([1], device=dev), model.init_state(1))
        for t in range(n):
            o = model.step(ctx, prompt[:, t] + 3, o.state)
    stepwise(min(8, sizes.prompt))  # warm-up (the decoding rows warmed the step already, if they ran)
    out["token_by_token_s"], _ = sync_time(lambda: stepwise(sizes.prompt), dev)
    return out


def ist_s(model: LinaModel, use_fla: bool, sizes: Sizes) -> dict:
    """``sizes.ist_steps`` tuning steps at batch ``sizes.ist_batch`` on clips of ``sizes.prompt`` tokens;
    the first (warm-up) call's time is kept too, since with fla it is mostly compilation and autotuning."""
    dev = model.device
    clips = random_clips(sizes.ist_clips, sizes.prompt, sizes.prompt_text, model.cfg.n_codebook,
                         model.cfg.n_text_vocab)

    def tune(steps: int):
        return tune_voice(model, clips, TuningConfig(steps=steps, batch_size=sizes.ist_batch), use_fla=use_fla)
    with fla_mode("all" if use_fla else "none"):
        warm, _ = sync_time(lambda: tune(sizes.ist_warmup_steps), dev)
        reset_peak(dev)
        sec, _ = sync_time(lambda: tune(sizes.ist_steps), dev)
    return {"use_fla": use_fla, "dtype": str(model.dtype), "steps": sizes.ist_steps, "batch": sizes.ist_batch,
            "clip_tokens": sizes.prompt, "warmup_steps": sizes.ist_warmup_steps, "warmup_s": warm, "total_s": sec,
            "ms_per_step": 1000 * sec / sizes.ist_steps, "peak_mib": peak_mib(dev)}
