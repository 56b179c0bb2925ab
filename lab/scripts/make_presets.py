#!/usr/bin/env python3
"""The preset expressive voices of an exported lina-mini, by Initial-State Tuning from codec codes.

No audio is needed: the clips come from the codes folder the model was trained on
(``{split}.jsonl.gz`` + ``{split}.codes.npy``, see `lab.training.lm.data`). Voices made:

* every (speaker, style) of the *styled* speakers: train speakers with rows in all six styles,
  tuned from their train clips, or with ``--enroll DIR`` from DIR's ``enroll`` split: fresh clips of
  sentences the model never trained on (``lab/scripts/render_enroll.py``). Prefer those: voices tuned on
  clips the model has partly memorized learn those clips, not the speaker and style;
* a neutral voice of ``TEST_VOICES`` speakers of the test split (none of them in train), one engine
  after another (or those of ``--test-speakers``), tuned from their test clips but never from their
  first ``--held-out`` neutral rows: those are the evaluation's test sentences
  (``lab/scripts/corpus_testlist.py`` takes each speaker's first neutral rows). The ids used are in the
  voice metadata (``extra.clip_ids``); ``lab.evaluate --ist-voices`` checks them.

Clips: sorted by id, taken while their total stays within ``--clips-seconds`` (at least one).

``--styles-from-neutral``: a styled speaker's neutral voice is tuned first (as always), then its
other styles start from it instead of a random init, ``--anchor W`` adding W x the relative distance of
their state to the neutral one to the loss (`lina.ist.tune_voice`), so a style is an offset from the
speaker. Those voices record ``extra.start`` (the neutral slug), ``anchor_weight`` and ``start_distance``
(`lina.ist.voice_distance`); ``--resume`` keeps a voice only if it was made with the same start and weight.

    python3 lab/scripts/make_presets.py --model out/lina-mini --codes data/codes --out out/presets --samples

``--shard I/N`` makes only the voices of every N-th speaker from the I-th (0-based): N processes share one
GPU (tuning one small voice leaves it mostly idle) and one OUT, each writing ``OUT/presets.shardIofN.json``;
``--merge-shards N`` joins them into ``OUT/presets.json``, ordered by voice id.

Writes ``OUT/voices/<slug>.safetensors`` (`lina.voice.Voice`, metadata name/style/description/model_id
and ``extra``), with ``--samples`` ``OUT/samples/<slug>.wav`` (24 kHz int16), and ``OUT/presets.json``
(rewritten after every voice, so a cut-off run keeps what it made; ``--resume`` skips those). The app
(`lina_app/presets.py`) lists ``voices/*.safetensors`` and plays a sample of the same stem beside it:
copy both ``OUT/voices/*`` and ``OUT/samples/*`` into ``voices/``.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import soundfile
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from lab.training.lm.codes_folder import codes_path, read_manifest
from lab.training.lm.data import row_codes
from lina.audio import to_int16
from lina.constants import FRAME_RATE
from lina.ist import Clip, TuningConfig, tune_voice, voice_distance
from lina.tokenizer import TextError, prepare_text
from lina.tts import MAX_ROW_SECONDS, LinaTTS
from lina.voice import Voice, VoiceError

STYLES = ("neutral", "happy", "sad", "angry", "whisper", "calm")
TEST_VOICES = 4
ENROLL = "enroll"  # split of lab/scripts/render_enroll.py's codes folder
HELD_OUT_TEST_ROWS = 6  # lab/scripts/corpus_testlist.py --tests: a test speaker's first neutral rows are test sentences
PREFERRED_TEST_SPEAKERS = ("piper-joe-d54",)  # the test speaker of the piper engine family: always wanted
# Friendly first names, handed out in speaker order (styled speakers first, then the test speakers).
NAMES = ("Ava", "Leo", "Mia", "Noah", "Zoe", "Finn", "Iris", "Owen", "Lucy", "Theo", "Nora", "Jack")
ENGINE_WORDS = {"piper": "Piper neural voice", "espeak": "eSpeak NG formant voice", "flite": "Flite voice",
                "festival": "Festival voice"}
STYLE_WORDS = {"neutral": "neutral, plain reading", "happy": "happy, bright and upbeat", "sad": "sad, slow and low",
               "angry": "angry, tense and forceful", "whisper": "whispered, breathy and quiet",
               "calm": "calm, soft and even"}
# One short sentence per style (a sample stays within SAMPLE_SECONDS).
SAMPLE_TEXT = {"neutral": "The train leaves at nine, so please be on time.",
               "happy": "What a wonderful surprise, thank you so much!",
               "sad": "I waited all evening, but nobody came.",
               "angry": "I told you three times, stop doing that!",
               "whisper": "Come closer, I have a secret to tell you.",
               "calm": "Breathe in slowly, and let the day drift away."}
SAMPLE_SECONDS = 4.0
SAMPLE_SEED = 0
TUNING_SEED = 0
MAX_CLIP_FRAMES = int(MAX_ROW_SECONDS * FRAME_RATE)  # what tts.tune_voice accepts from one clip


def styled_speakers(rows: list[dict]) -> list[str]:
    """Speakers with rows in every style of STYLES, sorted."""
    styles = defaultdict(set)
    for row in rows:
        styles[row["speaker"]].add(row["style"])
    return sorted(s for s, have in styles.items() if set(STYLES) <= have)


def pick_test_speakers(test_rows: list[dict], train_speakers: set[str], n: int) -> list[str]:
    """``n`` unseen speakers with neutral rows: one engine after another (engines sorted), preferred ones first."""
    by_engine = defaultdict(set)
    for row in test_rows:
        if row["style"] == "neutral" and row["speaker"] not in train_speakers:
            by_engine[row.get("engine", "")].add(row["speaker"])
    queues = {e: sorted(s, key=lambda x: (x not in PREFERRED_TEST_SPEAKERS, x)) for e, s in sorted(by_engine.items())}
    picked: list[str] = []
    while len(picked) < n and any(queues.values()):
        for queue in queues.values():  # round robin: engines as diverse as the split allows
            if queue and len(picked) < n:
                picked.append(queue.pop(0))
    return picked


def choose_clips(rows: list[dict], speaker: str, style: str, seconds: float, skip: int = 0) -> list[dict]:
    """That speaker's rows of that style, sorted by id, past the first ``skip``, while their total stays
    within ``seconds``."""
    budget, total, chosen = seconds * FRAME_RATE, 0, []
    mine = sorted((r for r in rows if r["speaker"] == speaker and r["style"] == style), key=lambda r: r["id"])
    for row in mine[skip:]:
        if not 0 < row["frames"] <= MAX_CLIP_FRAMES:
            continue
        if chosen and total + row["frames"] > budget:
            break
        chosen.append(row)
        total += row["frames"]
    return chosen


def make_clips(tts: LinaTTS, rows: list[dict], codes: np.ndarray) -> tuple[list[Clip], list[dict]]:
    """Clips as `LinaTTS.tune_voice` builds them: raw codec ids, text through `prepare_text`."""
    clips, used = [], []
    for row in rows:
        try:
            ids = prepare_text(row["text"], tts.tokenizer, tts.model.cfg.max_text_len).ids
        except TextError:
            continue  # not speakable by this tokenizer: skip rather than fail a whole run
        clips.append(Clip(row_codes(codes, row), torch.tensor(ids)))
        used.append(row)
    return clips, used


def describe(speaker: str, engine: str, style: str, test: bool) -> str:
    where = "unseen in training (test split)" if test else "seen in training"
    return f"{ENGINE_WORDS.get(engine, engine or 'synthetic voice')} '{speaker}', {STYLE_WORDS.get(style, style)}; {where}"


def plan(train_rows: list[dict], test_rows: list[dict], test_speakers: list[str] | None = None,
         only_test: bool = False) -> list[dict]:
    """Every voice to make: slug, name, style, speaker, engine, split. ``test_speakers`` replaces the
    automatic pick; ``only_test`` leaves the styled speakers out (their names are still counted)."""
    engines = {r["speaker"]: r.get("engine", "") for r in train_rows + test_rows}
    styled = styled_speakers(train_rows)
    unseen = test_speakers or pick_test_speakers(test_rows, {r["speaker"] for r in train_rows}, TEST_VOICES)
    unknown = sorted(set(unseen) - {r["speaker"] for r in test_rows})
    if unknown:
        raise SystemExit(f"not speakers of the test split: {', '.join(unknown)}")
    jobs = []
    for i, speaker in enumerate(styled + unseen):
        first = NAMES[i % len(NAMES)] + (str(i // len(NAMES) + 1) if i >= len(NAMES) else "")
        split = "train" if speaker in styled else "test"
        if only_test and split == "train":
            continue
        for style in (STYLES if split == "train" else ("neutral",)):
            jobs.append({"slug": f"{first.lower()}_{style}", "name": f"{first} — {style}", "style": style,
                         "speaker": speaker, "engine": engines[speaker], "split": split,
                         "description": describe(speaker, engines[speaker], style, split == "test")})
    return jobs


def parse_shard(text: str) -> tuple[int, int]:
    """``"I/N"`` -> (I, N) with 0 <= I < N."""
    try:
        index, count = (int(x) for x in text.split("/"))
    except ValueError:
        raise SystemExit(f"--shard wants I/N, e.g. 0/4, not {text!r}") from None
    if not 0 <= index < count:
        raise SystemExit(f"--shard {text}: need 0 <= I < N")
    return index, count


def in_shard(jobs: list[dict], index: int, count: int) -> list[dict]:
    """The jobs of every ``count``-th speaker from the ``index``-th, in plan order (a speaker's styles stay
    together: its neutral voice may be their start)."""
    speakers = list(dict.fromkeys(job["speaker"] for job in jobs))
    mine = set(speakers[index::count])
    return [job for job in jobs if job["speaker"] in mine]


def merge_shards(out: Path, count: int) -> list[dict]:
    """Join the listings of ``--shard I/count`` runs into ``OUT/presets.json``, ordered by voice id (a shard
    that made no voice wrote none; listings of another N are not this run's)."""
    parts = [path for i in range(count) if (path := out / shard_listing(i, count)).exists()]
    if not parts:
        raise SystemExit(f"no presets.shard*of{count}.json in {out}")
    done = sorted((e for part in parts for e in json.loads(part.read_text())), key=lambda e: e["id"])
    (out / "presets.json").write_text(json.dumps(done, indent=1, ensure_ascii=False) + "\n")
    return done


def shard_listing(index: int, count: int) -> str:
    return f"presets.shard{index}of{count}.json"


def entry(slug: str, voice: Voice, out: Path) -> dict:
    """One presets.json row: the voice's metadata and where its files are."""
    sample = out / "samples" / f"{slug}.wav"
    return {"id": slug, "file": f"voices/{slug}.safetensors", "sample": f"samples/{slug}.wav" if sample.exists() else None,
            "name": voice.name, "style": voice.style, "description": voice.description, "model_id": voice.model_id,
            **voice.extra}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", required=True, help="exported model folder (LinaTTS.from_pretrained)")
    p.add_argument("--codes", required=True, help="codes folder: {split}.jsonl.gz + {split}.codes.npy")
    p.add_argument("--out", required=True)
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--clips-seconds", type=float, default=60.0)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--samples", action="store_true", help="also write a short sample per voice")
    p.add_argument("--resume", action="store_true", help="keep voices already in OUT/voices for this model")
    p.add_argument("--no-fla", action="store_true",
                   help="pure-PyTorch GLA on CUDA: fla autotunes every new clip shape (minutes each)")
    p.add_argument("--test-speakers", default="", help="comma-separated test-split speakers (default: pick 4)")
    p.add_argument("--only-test", action="store_true", help="only the test speakers' neutral voices")
    p.add_argument("--held-out", type=int, default=HELD_OUT_TEST_ROWS,
                   help="never tune on a test speaker's first N neutral rows (the evaluation's test sentences)")
    p.add_argument("--styles-from-neutral", action="store_true",
                   help="tune a styled speaker's other styles starting from its neutral voice")
    p.add_argument("--enroll", default="",
                   help="codes folder with an enroll split (lab/scripts/render_enroll.py): the styled speakers' clips")
    p.add_argument("--anchor", type=float, default=0.0,
                   help="with --styles-from-neutral: weight of the styled state's distance to the neutral one")
    p.add_argument("--shard", default="", help="I/N: only every N-th speaker from the I-th (0-based)")
    p.add_argument("--merge-shards", type=int, default=0, metavar="N",
                   help="only join OUT's listings of the N shards into presets.json")
    args = p.parse_args(argv)
    if args.merge_shards:
        print(f"{len(merge_shards(Path(args.out), args.merge_shards))} voices in {args.out}/presets.json")
        return 0
    shard = parse_shard(args.shard) if args.shard else None
    if args.anchor and not args.styles_from_neutral:
        p.error("--anchor needs --styles-from-neutral (the neutral voice is what it anchors to)")

    start = time.perf_counter()
    out = Path(args.out)
    (out / "voices").mkdir(parents=True, exist_ok=True)
    if args.samples:
        (out / "samples").mkdir(parents=True, exist_ok=True)
    tts = LinaTTS.from_pretrained(args.model, device=args.device, watermark=False)  # the app marks what it serves
    rows = {s: read_manifest(args.codes, s) for s in ("train", "test")}
    codes = {s: np.load(codes_path(Path(args.codes), s), mmap_mode="r") for s in rows}
    if args.enroll:
        rows[ENROLL] = read_manifest(args.enroll, ENROLL)
        codes[ENROLL] = np.load(codes_path(Path(args.enroll), ENROLL), mmap_mode="r")
    jobs = plan(rows["train"], rows["test"], [s for s in args.test_speakers.split(",") if s], args.only_test)
    listing = "presets.json"
    if shard:
        jobs, listing = in_shard(jobs, *shard), shard_listing(*shard)
    print(f"model {tts.model_id} on {tts.device}: {len(jobs)} voices, {args.steps} steps, "
          f"<= {args.clips_seconds:g} s of clips each", flush=True)
    cfg = TuningConfig(steps=args.steps, seed=TUNING_SEED)
    styled_cfg = TuningConfig(steps=args.steps, seed=TUNING_SEED, anchor_weight=args.anchor)  # (validates it)
    neutral: dict[str, tuple[str, Voice, bool]] = {}  # styled speaker -> its neutral (slug, voice, tuned now)
    done: list[dict] = []
    for n, job in enumerate(jobs, 1):
        path = out / "voices" / f"{job['slug']}.safetensors"
        from_neutral = args.styles_from_neutral and job["split"] == "train" and job["style"] != "neutral"
        origin = neutral.get(job["speaker"]) if from_neutral else None
        if from_neutral and origin is None:
            print(f"[{n}/{len(jobs)}] {job['slug']}: no neutral voice of {job['speaker']}, tuned from random init",
                  flush=True)
        source = ENROLL if args.enroll and job["split"] == "train" else job["split"]
        want = {"start": origin[0], "anchor_weight": args.anchor} if origin else {}
        voice = None
        if args.resume and path.exists() and not (origin and origin[2]):  # a re-tuned neutral: re-tune its styles
            try:
                voice = Voice.load(path)
                voice.check(tts.model.cfg)
                if any(voice.extra.get(key) != want.get(key) for key in ("start", "anchor_weight")) \
                        or voice.extra.get("clips_from", job["split"]) != source:
                    raise VoiceError("made from another start, anchor weight or clip source")
                print(f"[{n}/{len(jobs)}] {job['slug']}: kept", flush=True)
            except VoiceError:
                voice = None  # another model's, start's or clips' or a broken file: tune it again
        tuned = voice is None
        if voice is None:
            skip = args.held_out if job["split"] == "test" else 0
            chosen = choose_clips(rows[source], job["speaker"], job["style"], args.clips_seconds, skip)
            clips, used = make_clips(tts, chosen, codes[source])
            if not clips:
                print(f"[{n}/{len(jobs)}] {job['slug']}: no usable clip, skipped", flush=True)
                continue
            t0 = time.perf_counter()
            voice, losses = tune_voice(tts.model, clips, styled_cfg if origin else cfg,
                                       start=origin[1] if origin else None, name=job["name"], style=job["style"],
                                       description=job["description"], use_fla=not args.no_fla)
            if tts.device.type == "cuda":
                torch.cuda.synchronize()
            seconds = time.perf_counter() - t0
            voice.extra = {"speaker": job["speaker"], "engine": job["engine"], "split": job["split"], "clips_from": source,
                           "clip_ids": [r["id"] for r in used],
                           "clip_seconds": round(sum(r["frames"] for r in used) / FRAME_RATE, 2),
                           "steps": args.steps, "rank": cfg.rank, "learning_rate": cfg.learning_rate,
                           "first_loss": round(losses[0], 4), "final_loss": round(losses[-1], 4),
                           "tuning_seconds": round(seconds, 2), **want}
            if origin:
                voice.extra["start_distance"] = round(voice_distance(voice, origin[1]), 4)
            voice.save(path)
            print(f"[{n}/{len(jobs)}] {job['slug']} ({job['speaker']}, {job['style']}): {len(clips)} clips "
                  f"{voice.extra['clip_seconds']:.0f} s, loss {losses[0]:.3f} -> {losses[-1]:.3f}, {seconds:.1f} s"
                  + (f", from {origin[0]}: distance {voice.extra['start_distance']:.3f}" if origin else ""), flush=True)
        if args.styles_from_neutral and job["split"] == "train" and job["style"] == "neutral":
            neutral[job["speaker"]] = (job["slug"], voice, tuned)
        if args.samples:
            text = SAMPLE_TEXT.get(job["style"], SAMPLE_TEXT["neutral"])
            speech = tts.synthesize(text, voice=voice, seed=SAMPLE_SEED, max_seconds=SAMPLE_SECONDS)
            soundfile.write(str(out / "samples" / f"{job['slug']}.wav"), to_int16(speech.audio[0]),
                            speech.sample_rate, subtype="PCM_16")
        done.append(entry(job["slug"], voice, out))
        (out / listing).write_text(json.dumps(done, indent=1, ensure_ascii=False) + "\n")
    print(f"{len(done)} voices in {out} ({time.perf_counter() - start:.0f} s)", flush=True)
    return 0 if done else 1


if __name__ == "__main__":
    sys.exit(main())
