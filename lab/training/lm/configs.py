"""Model presets of the training runs: ``mini`` (the embedded lina-mini) and ``tiny`` (tests).

``mini`` must speak in real time on a 2-core CPU: 75 codec frames per second of audio means one
`LinaModel.step` at batch 1 in under 13.3 ms, and we aim at about half of that for a shared machine.

Measured here with :func:`step_ms` (torch 2.13 CPU, fp32, inference mode, batch 1, a 60-token text,
``torch.set_num_threads(2)``, 2 shared cores; ms per step, minimum over repeats of 50 steps, then the
medians seen while the machine was loaded), 4+4 GLA layers, 4 text layers, 4 heads, 4096 codes:

    d_model   params   quiet min   loaded min / medians (1 thread: min)
    64        1.3M     4.0         -
    192       7.3M     -           7.8 / 8.4-10.3   (9.9)
    256      11.9M     7.7         10.3 / 11.1-11.7 (13.0)
    320      17.8M     9.3         11.2 / 11.5-13.9 (15.9)
    384      24.7M     11.0        14.0 / 14.2-16.0 (18.9)
    448      32.8M     13.3        18.6 / 19.5
    512      42.1M     17.5        20.4 / 23.7

No width of this layout reaches 6 ms: at d_model 64 a step still costs 4 ms (about 800 small PyTorch
ops, dispatch-bound), and above that the step streams every weight once (fp32: 4 bytes a parameter).
``mini`` is d_model 256, the largest width that stayed under the 13.3 ms real-time bound in every
loaded measurement (d_model 320 went over it); with its 11.9M parameters its fp16 weights (24 MB) also
fit in two of the 15 MiB files a GPU call can send back.

``small`` (d_model 384, 24.7M) is the candidate for lina-mini v2, whose budget is a real-time factor of at most
0.5 with the C step (the app's back end, not the eager step above). Measured with the C step on 2 loaded cores
(load 1.5-1.7; the quiet mini figures are step 2.0 ms, RTF 0.20-0.23), random fp16 weights, 450 tokens:
mini 3.4 ms / RTF 0.44, small 5.7 ms / 0.54, d_model 448 6.6 ms / 0.87: quiet, small is about 0.3.
Its int8 weights (~25 MB) would add ~13 MB to the tree every GPU call carries.
"""
from __future__ import annotations

import dataclasses
import statistics
import time

import torch

from lina.config import LinaConfig
from lina.model import LinaModel

# Shared by every preset: the codec's 4096 codes (WavTokenizer) and the 256-id BPE.
N_CODEBOOK = 4096
N_TEXT_VOCAB = 256

MINI = LinaConfig(d_model=256, n_layer=4, n_heads=4, text_layers=4, text_heads=4,
                  n_text_vocab=N_TEXT_VOCAB, n_codebook=N_CODEBOOK)
# Seconds-long CPU tests: the smallest widths the model accepts, a 256-code codec (lina.pretrained's
# tiny random codec) and a short position table.
TINY = LinaConfig(d_model=32, n_layer=1, n_heads=2, text_layers=1, text_heads=2, gate_low_rank=4,
                  n_text_vocab=N_TEXT_VOCAB, n_codebook=256, max_text_len=256, pos_kernel=5)

SMALL = dataclasses.replace(MINI, d_model=384)

PRESETS: dict[str, LinaConfig] = {"mini": MINI, "small": SMALL, "tiny": TINY}


def preset(name: str) -> LinaConfig:
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown config {name!r}; presets: {sorted(PRESETS)}") from None


BENCH_TEXT_TOKENS = 60   # a sentence of ~150 characters
BENCH_WARMUP = 20
BENCH_STEPS = 50         # steps per timed repeat


def step_ms(cfg: LinaConfig, repeats: int = 7, threads: int = 2, seed: int = 0) -> tuple[float, float]:
    """``(min, median)`` milliseconds of one `LinaModel.step` at batch 1 (fp32, CPU, inference mode).

    The minimum over repeats is what the machine can do; the median shows what sharing it costs.
    """
    old_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with torch.random.fork_rng(devices=[]), torch.inference_mode():
            torch.manual_seed(seed)
            model = LinaModel(cfg).eval()
            text = torch.randint(3, cfg.n_text_vocab, (1, BENCH_TEXT_TOKENS))
            ctx = model.encode_text(text, torch.tensor([BENCH_TEXT_TOKENS]))
            state, token = model.init_state(1), torch.tensor([cfg.n_audio_vocab - 1])
            for _ in range(BENCH_WARMUP):
                state = model.step(ctx, token, state).state
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                for _ in range(BENCH_STEPS):
                    state = model.step(ctx, token, state).state
                times.append((time.perf_counter() - start) / BENCH_STEPS * 1e3)
    finally:
        torch.set_num_threads(old_threads)
    return min(times), statistics.median(times)


def candidates(widths: tuple[int, ...] = (256, 320, 384, 448, 512)) -> list[LinaConfig]:
    """The sizes compared for ``mini``: ``MINI`` with other model widths."""
    return [dataclasses.replace(MINI, d_model=d) for d in widths]
