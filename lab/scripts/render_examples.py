"""Renders the Space's example clips (assets/examples/) with the corpus's piper "joe" voice, offline.

    python3 lab/scripts/render_examples.py            # writes assets/examples/*.flac + *.txt

The voice is synthetic (piper's en_US-joe-medium, the engine lab.training.corpus uses), so the examples
clone no real person. Deterministic: piper's noise comes from a fixed seed. The clips are resampled to
24 kHz and peak-normalised; each `.txt` beside a clip holds its exact words (what the app's examples and
the tuning tab's clip.txt pairing read).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import soundfile
import soxr

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root: lab is not installed

from lab.training.corpus.engines import piper_engine
from lina.constants import SAMPLE_RATE

OUT = Path(__file__).resolve().parents[2] / "assets" / "examples"
SEED = 0
PEAK = 0.9
# Sentences written for these examples (not from the training corpus's texts).
CLONE = {"joe_clone": "Every morning I walk along the river and count the boats that come home. "
                        "Some days there are twelve, and some days only three."}
TUNE = {"joe_tune_1": "The kettle is on, and the bread will be ready in a minute.",
        "joe_tune_2": "Please leave the books on the table by the window.",
        "joe_tune_3": "We met at the station and took the last train north.",
        "joe_tune_4": "It rained all night, but the garden looks brighter today."}


def render(text: str, seed: int) -> np.ndarray:
    audio, rate = piper_engine().synth(text, seed=seed)
    audio = soxr.resample(audio, rate, SAMPLE_RATE).astype(np.float32)
    return audio * np.float32(PEAK / max(float(np.abs(audio).max()), 1e-6))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for i, (stem, text) in enumerate({**CLONE, **TUNE}.items()):
        audio = render(text, SEED + i)
        soundfile.write(str(args.out / f"{stem}.flac"), audio, SAMPLE_RATE, subtype="PCM_16")
        (args.out / f"{stem}.txt").write_text(text + "\n", encoding="utf-8")
        print(f"{stem}: {len(audio) / SAMPLE_RATE:.1f} s  {text}")


if __name__ == "__main__":
    main()
