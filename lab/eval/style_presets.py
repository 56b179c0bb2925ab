"""Is each preset voice's style recognizable? Several sentences per voice, the style classifier.

`python -m lab.eval.style eval --presets` classifies one ~4 s sample per preset: a noisy measurement.
Here every compatible voice of a folder speaks the same N fixed, style-neutral sentences (Harvard-like,
none of them in the evaluation's test or enrollment lists); each clip is classified with the committed
classifier of `lab.eval.style` (``auto``: the relative model where the voice's speaker has a neutral
preset, whose clips of the *other* sentences are the reference, averaged as `style.classify` does; the
absolute model elsewhere). Reported: (a) per clip, (b) per voice (argmax of the mean class probabilities
over its N clips), (c) each style's recall, and the same with the absolute model alone for comparison.

    python -m lab.eval.style_presets --model assets/lina-mini --voices voices --sentences 5 --out OUT
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from . import style
from .style import STYLES

SENTENCES = (  # style-neutral, 7-9 words each; the same for every voice, in this order
    "The sky that morning was clear and bright blue.",
    "A gray mare walked before the colt.",
    "The wide road shimmered in the hot sun.",
    "The lazy cow lay in the cool grass.",
    "The paper box is full of thumb tacks.",
    "The ship was torn apart on the sharp reef.",
    "Slide the box into that empty space.",
    "The plant grew large and green in the window.",
    "The lake sparkled in the red hot sun.",
    "Take the winding path to reach the lake.",
    "The dune rose from the edge of the water.",
    "Bring your problems to the wise chief.",
)
MAX_SECONDS = 8.0  # per sentence; ~3 s are expected


def load_voices(folder: Path, cfg, log=print) -> tuple[list[dict], list[str]]:
    """The folder's voices that fit the model and carry a known style, sorted by file name; notes on the others."""
    from lina.voice import Voice, VoiceError

    voices, notes = [], []
    for path in sorted(Path(folder).glob("*.safetensors")):
        try:
            voice = Voice.load(path)
            voice.check(cfg)
        except VoiceError as e:
            notes.append(f"{path.name}: skipped ({e})")
            continue
        if voice.style not in STYLES:
            notes.append(f"{path.name}: skipped (style {voice.style!r} is not one of {', '.join(STYLES)})")
            continue
        voices.append({"id": path.stem, "file": path.name, "voice": voice, "name": voice.name,
                       "style": voice.style, "speaker": voice.extra.get("speaker")})
    for n in notes:
        log(f"note: {n}")
    return voices, notes


def synthesize(tts, voices: list[dict], sentences: list[str], wav_dir: Path, seed: int = 0,
               max_seconds: float = MAX_SECONDS, log=print) -> tuple[list[dict], list[dict], list[str]]:
    """Speaks every sentence with every voice (sentence i with seed ``seed + i``) into ``wav_dir``.
    Returns the clip items (for the classifier), one summary per voice spoken, and notes on voices that failed."""
    import soundfile

    from lina.audio import to_int16

    wav_dir.mkdir(parents=True, exist_ok=True)
    items, spoken, notes = [], [], []
    for n, v in enumerate(voices, 1):
        start, clips, audio_s, unfinished = time.perf_counter(), [], 0.0, 0
        try:
            for i, text in enumerate(sentences):
                out = tts.synthesize(text, voice=v["voice"], seed=seed + i, max_seconds=max_seconds)
                path = wav_dir / f"{v['id']}__s{i + 1:02d}.wav"
                soundfile.write(str(path), to_int16(out.audio[0]), out.sample_rate, subtype="PCM_16")
                audio_s += len(out.audio[0]) / out.sample_rate
                unfinished += not out.finished[0]
                clips.append({"wav": path, "id": path.stem, "voice": v["id"], "style": v["style"],
                              "speaker": v["speaker"], "text": text, "sentence": i + 1})
        except Exception as e:  # noqa: BLE001 -- one bad voice must not end the run
            notes.append(f"{v['file']}: skipped (synthesis failed: {type(e).__name__}: {e})")
            log(f"[{n}/{len(voices)}] {v['id']}: FAILED ({type(e).__name__}: {e}), skipped")
            continue
        seconds = time.perf_counter() - start
        items += clips
        spoken.append({"voice": v["id"], "name": v["name"], "speaker": v["speaker"], "intended": v["style"],
                       "clips": len(clips), "audio_s": round(audio_s, 2), "unfinished": unfinished,
                       "synthesis_s": round(seconds, 2)})
        log(f"[{n}/{len(voices)}] {v['id']} ({v['style']}, {v['speaker'] or 'no speaker'}): {len(clips)} clips, "
            f"{audio_s:.1f} s audio in {seconds:.1f} s (RTF {seconds / max(audio_s, 1e-9):.2f})"
            + (f", {unfinished} cut at max_seconds" if unfinished else ""))
    return items, spoken, notes


def classify(items: list[dict], feats: list[dict], models: dict, mode: str = "auto") -> list[dict]:
    """As `style.classify`, on features computed once: relative model where the clip's speaker has neutral
    clips of other sentences among the items (their mean is the reference), absolute elsewhere."""
    vecs = np.stack([style.as_vector(f) for f in feats])
    refs = style.neutral_references(vecs, [it.get("speaker") for it in items], [it["style"] for it in items],
                                    [it.get("text") for it in items])
    rows = []
    for it, vec, ref in zip(items, vecs, refs):
        use = "absolute" if mode == "absolute" or (mode == "auto" and np.isnan(ref).all()) else "relative"
        model = models[use]
        probs = model.proba(vec if use == "absolute" else vec - ref)[0]
        p = dict(zip(model.classes, probs.tolist()))
        rows.append({"id": it["id"], "voice": it["voice"], "speaker": it.get("speaker"), "sentence": it.get("sentence"),
                     "intended": it["style"], "model": use, "predicted": model.classes[int(probs.argmax())],
                     "p": {c: round(float(p.get(c, 0.0)), 4) for c in STYLES}})
    return rows


def voice_decisions(clips: list[dict]) -> list[dict]:
    """Per voice (in order of first appearance): the mean of its clips' class probabilities over STYLES and
    the decision, its argmax (ties: the first in STYLES order); ``hits`` counts its clips classified right."""
    groups: dict[str, list[dict]] = {}
    for c in clips:
        groups.setdefault(c["voice"], []).append(c)
    out = []
    for voice, cs in groups.items():
        mean = np.array([[c["p"].get(s, 0.0) for s in STYLES] for c in cs]).mean(axis=0)
        out.append({"voice": voice, "speaker": cs[0].get("speaker"), "intended": cs[0]["intended"], "n": len(cs),
                    "models": sorted({c["model"] for c in cs}), "predicted": STYLES[int(np.argmax(mean))],
                    "p_mean": {s: round(float(m), 4) for s, m in zip(STYLES, mean)},
                    "hits": sum(c["predicted"] == c["intended"] for c in cs)})
    return out


def recall(conf: dict) -> dict[str, float | None]:
    """Each intended style's share classified as itself (None where the style has no rows)."""
    labels = conf["labels"]
    return {a: (round(row[k] / sum(row), 4) if sum(row) else None) for k, (a, row) in enumerate(zip(labels, conf["matrix"]))}


def summarize(clips: list[dict]) -> dict:
    voices = voice_decisions(clips)
    per_clip = style.confusion([c["intended"] for c in clips], [c["predicted"] for c in clips])
    per_voice = style.confusion([v["intended"] for v in voices], [v["predicted"] for v in voices])
    models = {m: sum(c["model"] == m for c in clips) for m in ("absolute", "relative")}
    return {"per_clip": per_clip, "per_voice": per_voice, "recall": {"per_clip": recall(per_clip), "per_voice": recall(per_voice)},
            "models_used": models, "voices": voices, "clips": clips}


def recall_table(summaries: dict[str, dict]) -> str:
    cols = [(name, level) for name in summaries for level in ("per_clip", "per_voice")]
    fmt = lambda r: "-" if r is None else f"{r:.0%}"
    lines = ["| style | " + " | ".join(f"{level.replace('_', ' ')} ({name})" for name, level in cols) + " |",
             "|---" * (len(cols) + 1) + "|"]
    for s in STYLES:
        lines.append(f"| {s} | " + " | ".join(fmt(summaries[n]["recall"][lv][s]) for n, lv in cols) + " |")
    lines.append("| **accuracy** | " + " | ".join(f"**{summaries[n][lv]['accuracy']:.1%}**" for n, lv in cols) + " |")
    return "\n".join(lines)


def report(result: dict) -> str:
    main = result["modes"][result["mode"]]
    k = result["n_sentences"]
    parts = [markdown_table(main["per_clip"], f"per clip ({result['mode']})", "clips"),
             markdown_table(main["per_voice"], f"per voice ({result['mode']}; argmax of the mean probabilities over {k} clips)", "voices"),
             "**recall per style**\n\n" + recall_table(result["modes"])]
    parts.append(f"| voice | speaker | intended | predicted | p(intended) | clips right (of {k}) | model |\n"
                 "|---|---|---|---|---|---|---|\n" + "\n".join(
                     f"| {v['voice']} | {v['speaker'] or '-'} | {v['intended']} | {v['predicted']} | "
                     f"{v['p_mean'][v['intended']]:.2f} | {v['hits']} | {'+'.join(v['models'])} |" for v in main["voices"]))
    if result["notes"]:
        parts.append("notes:\n" + "\n".join(f"- {n}" for n in result["notes"]))
    return "\n\n".join(parts)


def markdown_table(conf: dict, title: str, unit: str) -> str:
    return style.markdown_table(conf, title).replace(f"of {conf['n']} clips", f"of {conf['n']} {unit}", 1)


def run(tts, voices_dir: Path, out: Path, n_sentences: int = 5, seed: int = 0, mode: str = "auto",
        max_seconds: float = MAX_SECONDS, model_path: Path = style.MODEL_PATH, log=print) -> dict:
    """Synthesizes, classifies, writes ``out``/style_presets.json; returns the result."""
    if not 1 <= n_sentences <= len(SENTENCES):
        raise ValueError(f"--sentences must be 1..{len(SENTENCES)}")
    models = style.load_models(model_path)
    sentences = list(SENTENCES[:n_sentences])
    voices, notes = load_voices(voices_dir, tts.model.cfg, log)
    items, spoken, failed = synthesize(tts, voices, sentences, out / "wav", seed, max_seconds, log)
    notes += failed
    start = time.perf_counter()
    feats = []
    for it in items:
        try:
            feats.append(style.file_features(it["wav"]))
        except Exception as e:  # noqa: BLE001 -- an unreadable clip gets undefined features, noted
            notes.append(f"{it['id']}: features failed ({type(e).__name__}: {e}); classified from the training means")
            feats.append(dict.fromkeys(style.FEATURES + style.DIAGNOSTICS, float("nan")))
    log(f"features of {len(items)} clips in {time.perf_counter() - start:.1f} s")
    modes = [mode] + (["absolute"] if mode != "absolute" else [])
    result = {"model_id": tts.model_id, "voices_dir": str(voices_dir), "n_sentences": n_sentences, "seed": seed,
              "max_seconds": max_seconds, "sentences": sentences, "mode": mode, "feature_version": style.FEATURE_VERSION,
              "chance": round(1 / len(STYLES), 4), "notes": notes, "synthesis": spoken,
              "modes": {m: summarize(classify(items, feats, models, m)) for m in modes}}
    for it, f in zip(items, feats):  # the features of each clip, once (in the main mode's clip rows)
        it["features"] = {k: round(v, 4) for k, v in f.items() if np.isfinite(v)}
    by_id = {it["id"]: it["features"] for it in items}
    for c in result["modes"][mode]["clips"]:
        c["wav"], c["features"] = str(Path("wav") / f"{c['id']}.wav"), by_id[c["id"]]
    out.mkdir(parents=True, exist_ok=True)
    (out / "style_presets.json").write_text(json.dumps(result, indent=1) + "\n")
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m lab.eval.style_presets", description=__doc__.split("\n")[0])
    p.add_argument("--model", default="assets/lina-mini", help="model folder or name (LinaTTS.from_pretrained)")
    p.add_argument("--voices", type=Path, default=Path("voices"), help="folder of preset *.safetensors")
    p.add_argument("--sentences", type=int, default=5, help=f"sentences per voice (1-{len(SENTENCES)})")
    p.add_argument("--out", type=Path, required=True, help="writes wav/ and style_presets.json here")
    p.add_argument("--seed", type=int, default=0, help="sentence i is spoken with seed + i")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--mode", choices=("auto", "absolute", "relative"), default="auto")
    p.add_argument("--max-seconds", type=float, default=MAX_SECONDS)
    p.add_argument("--style-model", type=Path, default=style.MODEL_PATH)
    args = p.parse_args(argv)
    import torch

    from lina.tts import LinaTTS

    torch.set_num_threads(args.threads)
    tts = LinaTTS.from_pretrained(args.model, watermark=False)  # the model, not the mark
    print(f"model {tts.model_id} on {tts.device}; {args.sentences} sentences per voice from {args.voices}", flush=True)
    log = lambda msg: print(msg, flush=True)
    result = run(tts, args.voices, args.out, args.sentences, args.seed, args.mode, args.max_seconds, args.style_model, log)
    print(f"\nwrote {args.out / 'style_presets.json'}\n")
    print(report(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
