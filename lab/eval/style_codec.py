"""The style classifier of the codec's domain.

lina-mini can only say what its codec can carry. The committed classifier (`lab.eval.style`,
``style_model.json``) is fit on the corpus renderer's audio, and the codec alone takes its accuracy on real
corpus clips from 91 % to 48 % (``lab/scripts/style_ceiling.py``): coded speech is less voiced and less
harmonic, which the classifier reads as a style. This fits the same two models on the same corpus rows,
but on the codec's decoding of their stored codes, the domain every synthesized clip is in:

    python -m lab.eval.style_codec --codes data/codes2 --codec assets/lina-mini/codec \\
        --audio data/style_codec --model lab/eval/style_model_codec.json

then ``python -m lab.eval.style_presets --style-model lab/eval/style_model_codec.json ...``. The rows,
features and held-out tables are `style.train`'s; only the audio differs.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import soundfile
import torch

from lab.eval import style
from lab.training.corpus.generate import audio_path
from lab.training.lm.codes_folder import codes_path, read_manifest
from lab.training.lm.data import row_codes
from lina.audio import to_int16
from lina.codec.codec import Codec

CODEC_MODEL_PATH = Path(__file__).with_name("style_model_codec.json")
SPLITS = ("train", "validation", "test")


def decode_rows(rows: list[dict], codes: Path, split: str, codec: Codec, audio: Path) -> int:
    """Writes the codec's decoding of each row's stored codes where `style.train` looks for its clip.
    Returns how many were decoded (clips already there are kept). Every row must have codes: a missing
    one would be rendered from the corpus by `style.train`, mixing the two domains."""
    stored = {r["id"]: r for r in read_manifest(codes, split)}
    missing = [r["id"] for r in rows if r["id"] not in stored]
    if missing:
        raise SystemExit(f"{len(missing)} {split} rows have no codes in {codes}, e.g. {missing[0]}")
    array = np.load(codes_path(codes, split), mmap_mode="r")
    done = 0
    for row in rows:
        path = audio_path(audio, row)
        if path.exists():
            continue
        with torch.inference_mode():
            wav = codec.decode(row_codes(array, stored[row["id"]])[None])[0].float().numpy()
        path.parent.mkdir(parents=True, exist_ok=True)
        soundfile.write(str(path), to_int16(wav), codec.sample_rate, subtype="PCM_16")
        done += 1
    return done


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m lab.eval.style_codec", description=__doc__.split("\n")[0])
    p.add_argument("--corpus", type=Path, default=Path("data/corpus"), help="folder of {train,validation,test}.jsonl[.gz]")
    p.add_argument("--codes", type=Path, required=True, help="codes folder of the same rows: {split}.jsonl.gz + .codes.npy")
    p.add_argument("--codec", type=Path, required=True, help="codec folder (config.json + codec.safetensors)")
    p.add_argument("--audio", type=Path, default=Path("data/style_codec"), help="where decoded clips are cached")
    p.add_argument("--per-cell", type=int, default=24, help="train clips per (speaker, style)")
    p.add_argument("--heldout-per-cell", type=int, default=30, help="validation/test clips per (speaker, style)")
    p.add_argument("--model", type=Path, default=CODEC_MODEL_PATH)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    codec = Codec.from_pretrained(args.codec).eval()
    for split in SPLITS:
        rows = style.corpus_rows(args.corpus, split, args.per_cell if split == "train" else args.heldout_per_cell)
        print(f"{split}: {decode_rows(rows, args.codes, split, codec, args.audio)} of {len(rows)} clips decoded", flush=True)
    style.train(args.corpus, args.audio, args.per_cell, args.model, args.threads, args.heldout_per_cell)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
