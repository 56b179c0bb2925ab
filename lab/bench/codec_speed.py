#!/usr/bin/env python3
"""Codec decode speed: the same measurement as `lab/scripts/gpu_codec.py` (one implementation).

    python3 lab/bench/codec_speed.py --device cpu --seconds 4
    python3 lab/bench/codec_speed.py                 # CUDA: batch 1 and 64, fp32 / fp16 / bf16
    python3 lab/bench/codec_speed.py --smoke         # the tiny test codec on the CPU, a second (tests)

Writes `$OUT/codec_gpu.json`. ``--smoke`` runs the same code on `lab.training.codec.configs.TINY`
instead of the released sizes, so the path can be checked without a GPU or the 9 s of building the
released codec on a CPU.
"""
import importlib.util
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "gpu_codec.py"
SMOKE_ARGS = ["--device", "cpu", "--threads", "1", "--seconds", "0.2", "--iters", "1", "--warmup", "0",
              "--batch", "1", "2", "--dtypes", "fp32"]


def main(argv: list[str] | None = None) -> dict:
    argv = list(sys.argv[1:] if argv is None else argv)
    spec = importlib.util.spec_from_file_location("bench_gpu_codec", SCRIPT)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)  # defines, does not run
    if "--smoke" in argv:
        from lab.training.codec.configs import TINY
        argv = [a for a in argv if a != "--smoke"] + SMOKE_ARGS
        script.released_config = lambda: TINY  # the script's functions read these module globals
        script.RELEASED_SIZES = {"bins": TINY.quantizer.bins, "dim": TINY.backbone.dim,  # the report's config
                                 "intermediate_dim": TINY.backbone.intermediate_dim,
                                 "num_layers": TINY.backbone.num_layers, "n_fft": TINY.head.n_fft,
                                 "hop": TINY.head.hop_length}
    return script.main(argv)


if __name__ == "__main__":
    main()
