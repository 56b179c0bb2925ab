#!/usr/bin/env python3
"""Codec decode speed: the same measurement as `scripts/gpu_codec.py` (one implementation).

    python3 bench/codec_speed.py --device cpu --seconds 4
    python3 bench/codec_speed.py                 # CUDA: batch 1 and 64, fp32 / fp16 / bf16
"""
import runpy
from pathlib import Path

if __name__ == "__main__":
    runpy.run_path(str(Path(__file__).resolve().parents[1] / "scripts" / "gpu_codec.py"), run_name="__main__")
