#!/usr/bin/env python3
"""Decode speed and low-precision error of the released-size codec, with random weights.

Builds the released WavTokenizer decoder sizes (4096 codes, backbone 768 / 2304, 12 ConvNeXt
layers, n_fft 1280, hop 320), fills it with random weights of realistic scale, and measures:

* decode throughput, in seconds of audio per second of wall clock, for each batch size and
  dtype (fp32, fp16, bf16), after warm-up, timed with device synchronization;
* streaming (batch 1, the app's default steps and windows): audio seconds per second and the
  time per step;
* the error of fp16 / bf16 against fp32 on the same codes: max-abs and SNR in dB.

Prints a markdown table and writes JSON to `$OUT/codec_gpu.json` (`OUT` defaults to `./out`).

    python3 lab/scripts/gpu_codec.py                      # CUDA: batch 1 and 64, fp32/fp16/bf16
    python3 lab/scripts/gpu_codec.py --device cpu         # CPU: batch 1, fp32, fewer iterations
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from lina.codec import Codec, CodecConfig  # noqa: E402
from lina.codec.backbone import AdaLayerNorm, ConvNeXtBlock  # noqa: E402
from lina.codec.streaming import STREAMING  # noqa: E402

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
# Sizes of the released config (wavtokenizer_official_layout.yaml); the defaults of CodecConfig.
RELEASED_SIZES = {"bins": 4096, "dim": 768, "intermediate_dim": 2304, "num_layers": 12, "n_fft": 1280, "hop": 320}
# Init scale of the original's conv and linear layers (truncated normal).
WEIGHT_STD = 0.02
# Spread of the random codebook, about that of trained SEANet latents.
CODEBOOK_STD = 1.0
JSON_NAME = "codec_gpu.json"


def released_config() -> CodecConfig:
    """The released model's config, checked against the sizes it must have."""
    config = CodecConfig()
    actual = {
        "bins": config.quantizer.bins,
        "dim": config.backbone.dim,
        "intermediate_dim": config.backbone.intermediate_dim,
        "num_layers": config.backbone.num_layers,
        "n_fft": config.head.n_fft,
        "hop": config.head.hop_length,
    }
    if actual != RELEASED_SIZES:
        raise SystemExit(f"CodecConfig defaults {actual} differ from the released sizes {RELEASED_SIZES}")
    return config


def random_codec(seed: int) -> Codec:
    """Released-size codec with random weights scaled like the original's initialization."""
    torch.manual_seed(seed)
    codec = Codec(released_config())
    with torch.no_grad():
        for module in codec.modules():
            if isinstance(module, (torch.nn.Conv1d, torch.nn.Linear)):
                torch.nn.init.trunc_normal_(module.weight, std=WEIGHT_STD)
                torch.nn.init.zeros_(module.bias)
            elif isinstance(module, AdaLayerNorm):
                torch.nn.init.ones_(module.scale.weight)
                torch.nn.init.zeros_(module.shift.weight)
            elif isinstance(module, ConvNeXtBlock):
                module.gamma.fill_(1.0 / codec.config.backbone.num_layers)
        codec.quantizer.codebook.normal_(0.0, CODEBOOK_STD)
    return codec.eval()


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_call(fn, device: torch.device, warmup: int, iters: int) -> float:
    """Median seconds per call after `warmup` untimed calls."""
    for _ in range(warmup):
        fn()
    synchronize(device)
    times = []
    for _ in range(iters):
        start = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - start)
    times.sort()
    return times[len(times) // 2]


def stream_through(codec: Codec, codes: torch.Tensor) -> None:
    """Stream codes `[1, T]` in chunks of the streaming step, as the app receives them."""
    decoder = codec.streaming_decoder(STREAMING)
    for first in range(0, codes.shape[1], STREAMING.chunk_frames):
        decoder.push(codes[:, first : first + STREAMING.chunk_frames])
    decoder.flush()


def error_stats(test: torch.Tensor, reference: torch.Tensor) -> dict[str, float]:
    """Max-abs difference and SNR (dB) of `test` against `reference`."""
    test, reference = test.double(), reference.double()
    noise = (test - reference).pow(2).sum().item()
    signal = reference.pow(2).sum().item()
    # Identical outputs have no finite SNR; JSON has no infinity, so it is written as null.
    snr = None if noise == 0 else 10 * math.log10(signal / noise)
    return {"max_abs": (test - reference).abs().max().item(), "snr_db": snr}


def run(args: argparse.Namespace) -> dict:
    device = torch.device(args.device)
    frames = round(args.seconds * 75)
    base = random_codec(args.seed)
    hop, rate = base.hop_length, base.sample_rate
    generator = torch.Generator().manual_seed(args.seed + 1)
    codes = {b: torch.randint(0, base.quantizer.bins, (b, frames), generator=generator).to(device) for b in args.batch}
    results, reference = [], {}
    for name in args.dtypes:
        codec = random_codec(args.seed).to(device=device, dtype=DTYPES[name])
        for batch in args.batch:
            try:
                audio = codec.decode(codes[batch])
                seconds = time_call(lambda: codec.decode(codes[batch]), device, args.warmup, args.iters)
            except (RuntimeError, NotImplementedError) as error:  # e.g. a dtype the CPU lacks
                results.append({"dtype": name, "batch": batch, "error": str(error).splitlines()[0]})
                continue
            row = {
                "dtype": name,
                "batch": batch,
                "frames": frames,
                "seconds_per_call": seconds,
                "audio_seconds_per_second": batch * frames * hop / rate / seconds,
            }
            if name == "fp32":
                reference[batch] = audio.float().cpu()
            elif batch in reference:
                row.update(error_stats(audio.float().cpu(), reference[batch]))
            results.append(row)
        row = codes[args.batch[0]][:1]
        try:
            seconds = time_call(lambda: stream_through(codec, row), device, args.warmup, args.iters)
            steps = math.ceil(frames / STREAMING.chunk_frames)
            results.append(
                {
                    "dtype": name,
                    "batch": 1,
                    "streaming_audio_seconds_per_second": frames * hop / rate / seconds,
                    "streaming_step_ms": seconds / steps * 1e3,
                }
            )
        except (RuntimeError, NotImplementedError) as error:
            results.append({"dtype": name, "batch": 1, "streaming_error": str(error).splitlines()[0]})
        del codec
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "config": RELEASED_SIZES,
        "seconds_of_audio_per_row": frames * hop / rate,
        "results": results,
    }


def markdown(report: dict) -> str:
    lines = [
        f"Decode, released-size codec (random weights), {report['device']}, torch {report['torch']}, "
        f"{report['seconds_of_audio_per_row']:.1f} s of audio per row",
        "",
        "| dtype | batch | s / call | audio s / s | max-abs vs fp32 | SNR vs fp32 (dB) |",
        "|---|---|---|---|---|---|",
    ]
    for row in report["results"]:
        if "error" in row:
            lines.append(f"| {row['dtype']} | {row['batch']} | failed: {row['error']} | | | |")
        elif "seconds_per_call" in row:
            err = f"{row['max_abs']:.2e}" if "max_abs" in row else "-"
            snr = "-" if "snr_db" not in row else "inf" if row["snr_db"] is None else f"{row['snr_db']:.1f}"
            lines.append(
                f"| {row['dtype']} | {row['batch']} | {row['seconds_per_call']:.4f} | "
                f"{row['audio_seconds_per_second']:.1f} | {err} | {snr} |"
            )
    lines += [
        "",
        f"Streaming (batch 1, {STREAMING.chunk_frames}-frame steps, {STREAMING.window_frames}-frame windows)",
        "",
        "| dtype | audio s / s | ms / step |",
        "|---|---|---|",
    ]
    for row in report["results"]:
        if "streaming_step_ms" in row:
            lines.append(
                f"| {row['dtype']} | {row['streaming_audio_seconds_per_second']:.1f} | {row['streaming_step_ms']:.1f} |"
            )
        elif "streaming_error" in row:
            lines.append(f"| {row['dtype']} | failed: {row['streaming_error']} | |")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda", help="cuda (default), cuda:N or cpu")
    parser.add_argument("--batch", type=int, nargs="+", help="batch sizes (cuda: 1 64, cpu: 1)")
    parser.add_argument("--dtypes", nargs="+", choices=sorted(DTYPES), help="(cuda: all, cpu: fp32)")
    parser.add_argument("--seconds", type=float, default=10.0, help="audio per row (default 10)")
    parser.add_argument("--iters", type=int, help="timed calls (cuda: 20, cpu: 3)")
    parser.add_argument("--warmup", type=int, help="untimed calls first (cuda: 5, cpu: 1)")
    parser.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's choice)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    on_cpu = args.device == "cpu"
    args.batch = args.batch or ([1] if on_cpu else [1, 64])
    args.dtypes = args.dtypes or (["fp32"] if on_cpu else ["fp32", "fp16", "bf16"])
    args.iters = args.iters or (3 if on_cpu else 20)
    args.warmup = args.warmup if args.warmup is not None else (1 if on_cpu else 5)
    if "fp32" in args.dtypes:  # the reference of the error columns runs first
        args.dtypes = ["fp32"] + [d for d in args.dtypes if d != "fp32"]
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error("CUDA is not available here; use --device cpu")
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    report = run(args)
    print(markdown(report))
    out = Path(os.environ.get("OUT", "out"))
    out.mkdir(parents=True, exist_ok=True)
    (out / JSON_NAME).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"\nwrote {out / JSON_NAME}")
    return report


if __name__ == "__main__":
    main()
