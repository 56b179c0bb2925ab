#!/usr/bin/env python3
"""Fresh enrollment clips of the styled train speakers, for their preset voices.

Why: lina-mini has partly memorized its training clips (train loss 1.9 against 2.7 on validation).
Voices tuned on those clips learn to recall *those clips* rather than the speaker and the style: on
Finn's (piper-joe-d01) unseen validation clips every one of his v3 presets scored a *higher* loss
than no voice at all (e.g. sad clips: 2.79 without a voice, 2.81 with "Finn — sad"), while on the
clips it was tuned on the same voice took the loss from 2.02 to 1.84. A voice must be tuned the way a
user tunes one: on clips the model never saw.

So each styled train speaker reads, in each of the six styles, the same sentences drawn from the
corpus's *validation* sentences (never in train; the LM only scored them), rendered with the corpus
recipe (`lab.training.corpus.generate.render_row`) and encoded with the model's codec into a codes
folder whose split is ``enroll``:

    python lab/scripts/render_enroll.py --corpus data/corpus --codec assets/lina-mini/codec --out data/enroll

Writes ``OUT/wav/<speaker>/<id>.wav`` (float32, resumable), ``OUT/enroll.jsonl`` and the codes folder
``OUT/codes`` (``enroll.jsonl.gz``, ``enroll.codes.npy``) for ``lab/scripts/make_presets.py --enroll OUT/codes``.
Rows are ordered per (speaker, style) by id: make_presets tunes on the first ``--clips-seconds`` of them,
the rest stay unseen by the voice (``lab/scripts/voice_fit.py`` scores them).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from lab.eval.style import STYLES
from lab.eval.style_presets import SENTENCES as STYLE_EVAL_SENTENCES
from lab.training.corpus.generate import audio_path, render_manifest
from lab.training.corpus.manifest import (
    estimate_duration,
    read_jsonl,
    stable_hash,
    utterance_seed,
    write_jsonl,
)

SPLIT = "enroll"
SEED = 0
MIN_SECONDS, MAX_SECONDS = 1.5, 9.0  # estimated; tune_voice takes clips up to MAX_ROW_SECONDS


def sentences(corpus: Path) -> list[dict]:
    """The validation split's distinct sentences, minus the style evaluation's, in a fixed order."""
    banned = {s.lower() for s in STYLE_EVAL_SENTENCES}
    seen, out = set(), []
    for row in read_jsonl(corpus / "validation.jsonl"):
        if row["sentence"] in seen or row["text"].lower() in banned:
            continue
        seen.add(row["sentence"])
        out.append({"sentence": row["sentence"], "source": row["source"], "text": row["text"]})
    return sorted(out, key=lambda s: s["sentence"])


def plan_rows(speakers: list[dict], pool: list[dict], seconds: float) -> list[dict]:
    """Per styled train speaker: sentences (its own shuffle of ``pool``) until each style's estimate
    reaches ``seconds``; the same sentences in every style, so the styles differ only in style."""
    rows = []
    for spk in speakers:
        order = sorted(pool, key=lambda s: stable_hash("enroll", spk["id"], s["sentence"]))
        picked, longest = [], 0.0
        for sent in order:
            est = [estimate_duration(sent["text"], spk, st) for st in STYLES]
            if not (MIN_SECONDS <= min(est) and max(est) <= MAX_SECONDS):
                continue
            picked.append(sent)
            longest += min(est)  # the fastest style must reach the target too
            if longest >= seconds:
                break
        for st in STYLES:
            for i, sent in enumerate(picked):
                uid = f"{spk['id']}_{st}_en{i:05d}"
                rows.append({"id": uid, "speaker": spk["id"], "engine": spk["engine"], "family": spk["family"],
                             "style": st, "split": SPLIT, "seed": utterance_seed(SEED, uid), "spk": spk,
                             "duration": round(estimate_duration(sent["text"], spk, st), 3), **sent})
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--corpus", required=True, help="corpus folder with speakers.json and validation.jsonl")
    p.add_argument("--codec", required=True, help="codec folder (the model's: assets/lina-mini/codec)")
    p.add_argument("--out", required=True)
    p.add_argument("--seconds", type=float, default=100.0, help="per speaker and style (estimated)")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--speakers", default="", help="comma-separated ids (default: every styled train speaker)")
    args = p.parse_args(argv)

    corpus, out = Path(args.corpus), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    wanted = {s for s in args.speakers.split(",") if s}
    speakers = [s for s in json.loads((corpus / "speakers.json").read_text())
                if s["styled"] and s["split"] == "train" and (not wanted or s["id"] in wanted)]
    if not speakers:
        p.error("no styled train speaker matches")
    rows = plan_rows(speakers, sentences(corpus), args.seconds)
    plan = out / f"{SPLIT}.plan.jsonl"
    write_jsonl(plan, rows)
    print(f"{len(rows)} rows for {len(speakers)} speakers x {len(STYLES)} styles", flush=True)
    print(json.dumps(render_manifest([plan], out, jobs=args.jobs)), flush=True)

    done = []
    for row in rows:
        path = audio_path(out, row)
        if path.exists():
            done.append(dict(row, duration=round(sf.info(str(path)).duration, 3),
                             audio=str(audio_path(Path("."), row))))
    write_jsonl(out / f"{SPLIT}.jsonl", done)
    print(f"{len(done)}/{len(rows)} rows rendered, {sum(r['duration'] for r in done) / 60:.1f} min", flush=True)

    import torch

    from lab.training.codec.encode import encode_corpus
    from lina.codec.codec import Codec

    torch.set_num_threads(max(1, args.jobs))
    codec = Codec.from_pretrained(args.codec).float()
    encode_corpus(codec, {SPLIT: done}, [out], out / "codes")
    return 0 if len(done) == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
