"""Plan the corpus: which speaker reads which sentence in which style, split into train/validation/test.

- Speakers: a stratified share of each engine's derived speakers is held out for TEST (base voices stay
  in training); train and validation share the remaining speakers.
- Sentences: split by a hash of their id into train / validation / test pools; every row takes its
  text from its split's pool, so test holds unseen speakers AND unseen sentences, validation unseen
  sentences of seen speakers.
- Styled speakers (default 8, one of them a test speaker) read each of their sentences in all six
  styles (parallel data, as in Expresso); the others read neutral.
- Hours: each split's budget is shared across engines (`ENGINE_SHARE`, piper the largest), then across
  that engine's speakers; durations are estimated from text length until `render` measures them.
- Recipes (`RECIPES`): "v1" (the default; its manifests stay byte-identical) and "v2" (Kokoro speakers
  added, neural voices 70 % of the hours, ten styled speakers).
Rows are self-contained (the speaker's full recipe is in `spk`), so any row renders on its own.
"""
from __future__ import annotations

import gzip
import hashlib
import json
import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from .engines import SECONDS_PER_CHAR
from .speakers import Speaker
from .styles import STYLES, style
from .texts import Sentence

SPLITS = ("train", "validation", "test")
ENGINE_SHARE = {"piper": 0.45, "espeak": 0.25, "flite": 0.15, "festival": 0.15}
# v2: neural voices (kokoro + piper joe and its derivations) 70 % of the hours, formant engines 30 %.
ENGINE_SHARE_V2 = {"kokoro": 0.45, "piper": 0.25, "espeak": 0.15, "flite": 0.10, "festival": 0.05}
NEURAL_ENGINES = ("kokoro", "piper")
# Engines the styled speakers are drawn from, in turn, after piper's base voice (one more is a test speaker).
STYLED_ENGINES = ("piper", "espeak", "flite", "festival", "piper", "espeak", "flite", "piper", "festival")
STYLED_ENGINES_V2 = ("kokoro", "piper", "kokoro", "espeak", "kokoro", "flite", "piper", "kokoro", "festival", "kokoro")
# Seconds of leading/trailing silence kept per utterance after trimming (see generate.py).
EDGE_SILENCE_S = 0.15


@dataclass(frozen=True)
class BuildConfig:
    hours: float = 30.0
    seed: int = 0
    test_speaker_fraction: float = 0.08  # of each engine's derived speakers
    sentence_fractions: dict[str, float] = field(default_factory=lambda: {"validation": 0.02, "test": 0.03})
    hour_fractions: dict[str, float] = field(default_factory=lambda: {"validation": 0.03, "test": 0.05})
    styled_speakers: int = 8
    styled_hours_fraction: float = 0.2  # of the train hours, read by the styled speakers in six styles
    engine_share: dict[str, float] = field(default_factory=lambda: dict(ENGINE_SHARE))
    styled_engines: tuple[str, ...] = STYLED_ENGINES
    recipe: str = "v1"  # which speaker inventory and dedup result `build` uses (see RECIPES)


RECIPES = {
    "v1": BuildConfig(),
    "v2": BuildConfig(hours=32.0, styled_speakers=10, engine_share=dict(ENGINE_SHARE_V2),
                      styled_engines=STYLED_ENGINES_V2, recipe="v2"),
}


def stable_hash(*key: object) -> int:
    return int.from_bytes(hashlib.sha256(repr(key).encode()).digest()[:8], "little")


def utterance_seed(seed: int, utt_id: str) -> int:
    return stable_hash("utt", seed, utt_id) % (2**31)


def estimate_duration(text: str, speaker: dict, style_name: str) -> float:
    rate = speaker.get("tempo", 1.0) * style(style_name).tempo
    return len(text) * SECONDS_PER_CHAR[speaker["engine"]] / rate + 2 * EDGE_SILENCE_S


def split_speakers(speakers: list[Speaker], cfg: BuildConfig) -> dict[str, str]:
    """speaker id -> "train" or "test"; per engine, the derived speakers with the smallest hashes."""
    out = {s.id: "train" for s in speakers}
    for engine in sorted({s.engine for s in speakers}):
        derived = sorted((s for s in speakers if s.engine == engine and s.derived),
                         key=lambda s: stable_hash("spk-split", cfg.seed, s.id))
        if not derived:  # espeak's stock variants are each their own family
            derived = sorted((s for s in speakers if s.engine == engine),
                             key=lambda s: stable_hash("spk-split", cfg.seed, s.id))[1:]
        for s in derived[: max(1, math.ceil(cfg.test_speaker_fraction * len(derived)))] if derived else []:
            out[s.id] = "test"
    return out


def split_sentences(sentences: list[Sentence], cfg: BuildConfig) -> dict[str, list[Sentence]]:
    pools: dict[str, list[Sentence]] = {s: [] for s in SPLITS}
    bounds = (cfg.sentence_fractions["validation"], cfg.sentence_fractions["validation"] + cfg.sentence_fractions["test"])
    for sent in sentences:
        u = stable_hash("sent-split", cfg.seed, sent.id) / 2**64
        pools["validation" if u < bounds[0] else "test" if u < bounds[1] else "train"].append(sent)
    for name, pool in pools.items():  # a seeded order: rows take sentences round-robin from it
        pool.sort(key=lambda s: stable_hash("sent-order", cfg.seed, name, s.id))
    return pools


def choose_styled(speakers: list[Speaker], speaker_split: dict[str, str], cfg: BuildConfig) -> list[str]:
    """Styled speakers across engines: piper's base voice, then alternating engines; one test speaker."""
    if cfg.styled_speakers <= 0:
        return []
    order = sorted(speakers, key=lambda s: stable_hash("styled", cfg.seed, s.id))
    test = [s.id for s in order if speaker_split[s.id] == "test"]
    chosen = [next((s.id for s in speakers if s.engine == "piper" and not s.derived), None)]
    chosen = [c for c in chosen if c]
    for engine in cfg.styled_engines:
        if len(chosen) >= cfg.styled_speakers - (1 if test else 0):
            break
        pick = next((s.id for s in order if s.engine == engine and speaker_split[s.id] == "train" and s.id not in chosen), None)
        if pick:
            chosen.append(pick)
    if test:
        chosen.append(test[0])
    return chosen[: cfg.styled_speakers]


def build_rows(speakers: list[Speaker], sentences: list[Sentence], cfg: BuildConfig) -> tuple[list[dict], dict]:
    """The manifest rows (train, validation, test in that order) and a description of the plan."""
    speaker_split = split_speakers(speakers, cfg)
    pools = split_sentences(sentences, cfg)
    styled = set(choose_styled(speakers, speaker_split, cfg))
    total = cfg.hours * 3600
    split_seconds = {"validation": total * cfg.hour_fractions["validation"], "test": total * cfg.hour_fractions["test"]}
    split_seconds["train"] = total - sum(split_seconds.values())
    styled_seconds = split_seconds["train"] * cfg.styled_hours_fraction / max(1, len([s for s in styled if speaker_split[s] == "train"]))

    budgets: dict[tuple[str, str], float] = {}  # (split, speaker id) -> seconds
    for split in SPLITS:
        members = [s for s in speakers if (speaker_split[s.id] == "test") == (split == "test")]
        engines = {s.engine for s in members}
        share_sum = sum(cfg.engine_share.get(e, 0) for e in engines) or 1.0
        for engine in engines:
            group = [s for s in members if s.engine == engine]
            engine_seconds = split_seconds[split] * cfg.engine_share.get(engine, 0) / share_sum
            fixed = {s.id: styled_seconds for s in group if s.id in styled and split == "train"}
            rest = max(0.0, engine_seconds - sum(fixed.values())) / max(1, len(group) - len(fixed))
            for s in group:
                budgets[(split, s.id)] = fixed.get(s.id, rest)  # styled ones spread it over six styles

    rows: list[dict] = []
    cursor = {split: 0 for split in SPLITS}
    for split in SPLITS:
        pool = pools[split]
        if not pool:
            continue
        for s in speakers:
            budget = budgets.get((split, s.id), 0.0)
            spk = s.to_dict()
            styles = STYLES if s.id in styled else ("neutral",)
            used, n = 0.0, 0
            while used < budget:
                sent = pool[cursor[split] % len(pool)]
                cursor[split] += 1
                for st in styles:
                    uid = f"{s.id}_{st}_{split[:2]}{n:05d}"
                    duration = estimate_duration(sent.text, spk, st)
                    rows.append({"id": uid, "split": split, "speaker": s.id, "engine": s.engine, "family": s.family,
                                 "style": st, "text": sent.text, "sentence": sent.id, "source": sent.source,
                                 "seed": utterance_seed(cfg.seed, uid), "duration": round(duration, 3), "spk": spk})
                    used += duration
                n += 1
    plan = {"speaker_split": speaker_split, "styled": sorted(styled),
            "sentences": {k: len(v) for k, v in pools.items()}}
    return rows, plan


def summarize(rows: list[dict]) -> dict:
    """Hours per split/engine/style and speaker counts (the `duration` field, estimated or measured)."""
    hours: dict[str, dict[str, float]] = {k: defaultdict(float) for k in ("split", "engine", "style")}
    speakers: dict[str, set] = defaultdict(set)
    for r in rows:
        for key, table in hours.items():
            table[r[key]] += r["duration"] / 3600
        speakers[r["engine"]].add(r["speaker"])
        speakers["split:" + r["split"]].add(r["speaker"])
    styled = {r["speaker"] for r in rows if r["style"] != "neutral"}
    return {"utterances": len(rows), "hours": round(sum(r["duration"] for r in rows) / 3600, 3),
            **{f"hours_per_{k}": {n: round(h, 3) for n, h in sorted(v.items())} for k, v in hours.items()},
            "speakers": len({r["speaker"] for r in rows}),
            "speakers_per": {k: len(v) for k, v in sorted(speakers.items())},
            "styled_speakers": sorted(styled)}


def neural_share(rows: list[dict]) -> float:
    """Share of the hours read by neural voices (`NEURAL_ENGINES`)."""
    total = sum(r["duration"] for r in rows) or 1.0
    return sum(r["duration"] for r in rows if r["engine"] in NEURAL_ENGINES) / total


def _open(path: Path, mode: str):
    """Plain or gzip (".gz": smaller to carry to another machine), text mode."""
    if str(path).endswith(".gz"):
        return gzip.open(path, mode + "t", encoding="utf-8", compresslevel=6)
    return open(path, mode, encoding="utf-8")


def write_jsonl(path: Path, rows: list[dict]) -> None:
    with _open(path, "w") as f:
        for r in rows:
            f.write(json.dumps(r, sort_keys=True, ensure_ascii=False) + "\n")


def read_jsonl(path: Path) -> list[dict]:
    with _open(path, "r") as f:
        return [json.loads(line) for line in f if line.strip()]


def write_manifests(out: Path, rows: list[dict], plan: dict, speakers: list[Speaker], extra: dict | None = None) -> dict:
    """`{split}.jsonl`, `speakers.json` (every speaker's recipe and split) and `summary.json`."""
    out.mkdir(parents=True, exist_ok=True)
    for split in SPLITS:
        write_jsonl(out / f"{split}.jsonl", [r for r in rows if r["split"] == split])
    used = {r["speaker"] for r in rows}
    spk = [{**s.to_dict(), "split": plan["speaker_split"][s.id], "styled": s.id in plan["styled"]}
           for s in speakers if s.id in used]
    (out / "speakers.json").write_text(json.dumps(spk, indent=1, sort_keys=True) + "\n")
    summary = {**summarize(rows), "sentences_per_split": plan["sentences"], **(extra or {})}
    (out / "summary.json").write_text(json.dumps(summary, indent=1, sort_keys=True) + "\n")
    return summary
