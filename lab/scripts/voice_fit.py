#!/usr/bin/env python3
"""Do the styled preset voices fit *unseen* clips of their speaker and style?

For every styled speaker with voices in ``--voices`` and rows in ``--codes``'s ``--split``: its held-out
clips of each style (its last rows that none of the speaker's voices was tuned on, ``extra.clip_ids``,
at most ``--seconds`` of them) are scored by teacher forcing (`lina.ist.clip_loss`, mean next-token
cross-entropy) with no voice and with each of the speaker's voices. Reported:

- gain: loss without a voice minus loss with the clip style's own voice (> 0: the voice helps);
- likelihood style identification: the voice with the lowest loss on a style's clips, as a confusion
  table over the six styles (chance 1/6): does the state carry the style, seen from the model?

    python lab/scripts/voice_fit.py --model assets/lina-mini --codes data/enroll/codes --split enroll \\
        --voices voices --out out/voice_fit.json
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

# The repository (lina) and this folder: make_presets' make_clips builds the clips as the voices were tuned on them.
sys.path[:0] = [str(Path(__file__).resolve().parents[2]), str(Path(__file__).resolve().parent)]
from make_presets import make_clips

from lab.eval.style import STYLES
from lab.training.lm.codes_folder import codes_path, read_manifest
from lina.constants import FRAME_RATE
from lina.ist import clip_loss
from lina.tts import LinaTTS
from lina.voice import Voice

NO_VOICE = "none"


def held_out(rows: list[dict], speaker: str, style: str, used: set[str], seconds: float, rate: float) -> list[dict]:
    """The speaker's *last* rows of that style (by id) outside ``used``, within ``seconds`` (at least one):
    make_presets tunes on the first rows, so voices tuned on different splits are scored on the same clips."""
    out, total = [], 0
    mine = sorted((r for r in rows if r["speaker"] == speaker and r["style"] == style), key=lambda r: r["id"])
    for row in reversed(mine):
        if row["id"] in used:
            continue
        if out and total + row["frames"] > seconds * rate:
            break
        out.append(row)
        total += row["frames"]
    return out[::-1]


def score(tts: LinaTTS, rows: list[dict], codes: np.ndarray, voices: dict[str, Voice]) -> dict[str, float]:
    """Mean loss of ``rows`` with no voice and with each of ``voices``."""
    clips, _ = make_clips(tts, rows, codes)
    if not clips:
        raise ValueError("no speakable clip to score")
    with torch.no_grad():
        out = {NO_VOICE: clip_loss(tts.model, clips, None, use_fla=False).item()}
        for style, voice in voices.items():
            out[style] = clip_loss(tts.model, clips, voice.initial_states(len(clips)), use_fla=False).item()
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True)
    p.add_argument("--codes", required=True, help="codes folder ({split}.jsonl.gz + {split}.codes.npy)")
    p.add_argument("--split", default="enroll")
    p.add_argument("--voices", required=True, help="folder of *.safetensors voices (extra.speaker, style)")
    p.add_argument("--seconds", type=float, default=30.0, help="held-out clips per speaker and style")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--out", required=True, help="JSON report")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    tts = LinaTTS.from_pretrained(args.model, device="cpu", watermark=False)  # research: the model, not the mark
    rows = read_manifest(args.codes, args.split)
    codes = np.load(codes_path(Path(args.codes), args.split), mmap_mode="r")
    by_speaker: dict[str, dict[str, Voice]] = defaultdict(dict)
    for path in sorted(Path(args.voices).glob("*.safetensors")):
        voice = Voice.load(path)
        by_speaker[voice.extra.get("speaker", "")][voice.style] = voice
    speakers = sorted(s for s, v in by_speaker.items() if set(v) == set(STYLES) and any(r["speaker"] == s for r in rows))
    if not speakers:
        p.error("no speaker has a voice of every style and rows in the split")

    results, confusion = [], np.zeros((len(STYLES), len(STYLES)), dtype=int)
    for speaker in speakers:
        voices = {st: by_speaker[speaker][st] for st in STYLES}
        used = {cid for v in voices.values() for cid in v.extra.get("clip_ids", [])}
        for i, style in enumerate(STYLES):
            chosen = held_out(rows, speaker, style, used, args.seconds, FRAME_RATE)
            if not chosen:
                print(f"{speaker} {style}: every clip was used for tuning, none held out: skipped", flush=True)
                continue
            losses = score(tts, chosen, codes, voices)
            best = min(STYLES, key=lambda st: losses[st])
            confusion[i, STYLES.index(best)] += 1
            results.append({"speaker": speaker, "style": style, "clips": len(chosen), "losses": losses,
                            "gain": losses[NO_VOICE] - losses[style], "best": best})
            print(f"{speaker:28s} {style:8s} {len(chosen):2d} clips  none {losses[NO_VOICE]:.3f}  own "
                  f"{losses[style]:.3f}  best {best}", flush=True)
    if not results:
        p.error("no held-out clips: every clip of the split was used for tuning")
    summary = {"speakers": len(speakers), "mean_gain": float(np.mean([r["gain"] for r in results])),
               "helps": sum(r["gain"] > 0 for r in results), "cases": len(results),
               "style_id_accuracy": float(np.trace(confusion) / confusion.sum()),
               "confusion": {"labels": list(STYLES), "matrix": confusion.tolist()}}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"summary": summary, "results": results}, indent=1) + "\n")
    print(json.dumps({k: v for k, v in summary.items() if k != "confusion"}), flush=True)
    print("intended \\ lowest-loss voice: " + " ".join(STYLES))
    for style, line in zip(STYLES, confusion):
        print(f"{style:8s} " + " ".join(f"{x:7d}" for x in line))
    return 0


if __name__ == "__main__":
    sys.exit(main())
