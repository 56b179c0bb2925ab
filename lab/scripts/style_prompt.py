#!/usr/bin/env python3
"""Is a style heard better through prompt continuation than through the IST presets?

For every (speaker, style) of the enrollment clips (``lab/scripts/render_enroll.py``), the last clip of 3-5 s is
the prompt (with its transcript, `LinaTTS.clone`) for the same sentences and seeds `lab.eval.style_presets`
gives the presets; the clips are classified as the presets are (``auto`` and ``absolute``), with the corpus
classifier and with the codec-domain one (`lab.eval.style_codec`). The preset voices were tuned on the first
minute of the same cells; the prompts come from their unused tail.

    python lab/scripts/style_prompt.py --model assets/lina-mini --enroll data/enroll --out out/style_prompt

Writes OUT/wav/<speaker>_<style>__sNN.wav and OUT/style_prompt.json; prints the accuracies.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import soundfile
import torch

# The repository (lina) and this folder (style_ceiling's cells).
sys.path[:0] = [str(Path(__file__).resolve().parents[2]), str(Path(__file__).resolve().parent)]
from style_ceiling import cells

from lab.eval import style
from lab.eval.style_codec import CODEC_MODEL_PATH
from lab.eval.style_presets import SENTENCES, classify, summarize
from lab.training.lm.codes_folder import read_manifest
from lina.audio import to_int16
from lina.tts import LinaTTS

PROMPT_SECONDS = (3.0, 5.0)
SPLIT = "enroll"


def prompts(rows: list[dict]) -> dict[tuple[str, str], dict]:
    """Per (speaker, style): its last clip (by id) of 3-5 s, else its last clip."""
    low, high = PROMPT_SECONDS
    return {key: next((r for r in reversed(cell) if low <= r["duration"] <= high), cell[-1])
            for key, cell in cells(rows).items()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="assets/lina-mini")
    p.add_argument("--enroll", type=Path, default=Path("data/enroll"),
                   help="render_enroll.py's folder: codes/enroll.jsonl.gz and the wav files it names")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--sentences", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    tts = LinaTTS.from_pretrained(args.model, watermark=False)  # research: the model, not the mark
    (args.out / "wav").mkdir(parents=True, exist_ok=True)
    sentences = list(SENTENCES[:args.sentences])
    chosen = prompts(read_manifest(args.enroll / "codes", SPLIT))
    items = []
    for (speaker, intended), prompt in chosen.items():
        voice, start = f"{speaker}_{intended}", time.perf_counter()
        for i, text in enumerate(sentences):
            path = args.out / "wav" / f"{voice}__s{i + 1:02d}.wav"
            if not path.exists():
                spoken = tts.clone(text, str(args.enroll / prompt["audio"]), prompt["text"], seed=i)
                soundfile.write(str(path), to_int16(spoken.audio[0]), spoken.sample_rate, subtype="PCM_16")
            items.append({"wav": path, "id": path.stem, "voice": voice, "style": intended, "speaker": speaker,
                          "text": text, "sentence": i + 1})
        print(f"{voice}: prompt {prompt['id']} ({prompt['duration']:.1f} s), {time.perf_counter() - start:.1f} s",
              flush=True)
    feats = [style.file_features(it["wav"]) for it in items]
    result = {"model_id": tts.model_id, "sentences": sentences,
              "prompts": {f"{speaker}_{intended}": row["id"] for (speaker, intended), row in chosen.items()}}
    for name, path in (("corpus", style.MODEL_PATH), ("codec", CODEC_MODEL_PATH)):
        models = style.load_models(path)
        for mode in ("auto", "absolute"):
            summary = summarize(classify(items, feats, models, mode))
            result[f"{name}/{mode}"] = {k: summary[k] for k in ("per_clip", "per_voice", "recall")}
            print(f"{name} classifier, {mode}: per clip {summary['per_clip']['accuracy']:.1%}, "
                  f"per voice {summary['per_voice']['accuracy']:.1%}", flush=True)
    (args.out / "style_prompt.json").write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
