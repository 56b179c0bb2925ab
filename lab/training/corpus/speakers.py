"""The speaker inventory: base voices of each engine and speakers derived from them, all from a seed.

A speaker is a complete recipe: engine, voice, engine-native settings (espeak-ng variant file, flite F0
target, tempo, piper noise, kokoro style vector) and a post-processing pitch/formant change (Praat "Change
gender": formant ratio by resampling, F0 by PSOLA). Speakers derived from one base voice share its `family`. Ids are
stable for a given seed; `inventory(seed)` always returns the same list in the same order.
"""
from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass

import numpy as np

# espeak-ng English accents (language voices; "en" is British: in SSML mode "en-gb+variant" ignores the
# variant) and its stock variants that sound like people.
ESPEAK_ACCENTS = ("en-us", "en", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-gb-x-rp",
                  "en-029", "en-us-nyc")
ESPEAK_VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5", "Alex", "Andy",
                   "Annie", "adam", "anika", "aunty", "belinda", "benjamin", "david", "edward", "grandma",
                   "grandpa", "john", "linda", "max", "michel", "norbert", "paul", "steph", "travis", "victor")
FLITE_VOICES = {"slt": (164.0, 12.0), "rms": (None, None), "awb": (122.0, 17.0), "kal16": (95.0, 9.0)}
FESTIVAL_VOICES = ("kal_diphone", "ked_diphone", "cmu_us_slt_arctic_hts")
# Candidates per engine before de-duplication (base voices included). resemblyzer hears most pitch/formant
# changes of one voice as the same speaker (cosine > 0.85), so the pools are several times the target:
# of the 786 candidates for seed 0, the committed dedup result keeps the number `dedup_seed0.json` lists.
DEFAULT_COUNTS = {"espeak": 600, "flite": 64, "festival": 42, "piper": 80}


@dataclass(frozen=True)
class Speaker:
    id: str
    engine: str
    voice: str  # espeak language voice, flite/festival voice name, "joe" for piper
    family: str  # the base voice's id (a base speaker is its own family)
    variant: str | None = None  # espeak stock variant
    variant_file: str | None = None  # espeak variant file text (random variants)
    tempo: float = 1.0  # > 1 faster
    f0_hz: float | None = None  # flite F0 target mean (Hz); None: the voice's own
    f0_std_hz: float | None = None
    pitch: float = 1.0  # post-processing F0 ratio
    formant: float = 1.0  # post-processing formant ratio
    noise_scale: float = 0.667  # piper
    noise_w: float = 0.8  # piper
    eq: tuple[tuple[float, float, float], ...] = ()  # peaking filters (Hz, dB, Q): the derived voice's colour
    # kokoro (voice = its style pack): the pack whose half `swap_half` (0 timbre, 1 prosody) replaces the
    # voice's own, and Gaussian noise (sigma, seed) on the style vector. None: unused (v1 recipes unchanged).
    style_swap: str | None = None
    swap_half: int | None = None
    style_noise: float | None = None
    style_seed: int | None = None

    @property
    def derived(self) -> bool:
        return self.id != self.family

    def to_dict(self) -> dict:
        out = {k: v for k, v in dataclasses.asdict(self).items() if v is not None and v != ()}
        if self.eq:
            out["eq"] = [list(band) for band in self.eq]
        return out

    @staticmethod
    def from_dict(data: dict) -> Speaker:
        return Speaker(**{**data, "eq": tuple(tuple(band) for band in data.get("eq", ()))})


def _rng(seed: int, *key: object) -> np.random.Generator:
    """An independent generator per (seed, key): adding a speaker elsewhere changes no other speaker."""
    digest = hashlib.sha256(repr((seed, *key)).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def _r(x: float, nd: int = 3) -> float:
    return float(round(x, nd))


def random_espeak_variant(rng: np.random.Generator, name: str) -> str:
    """An espeak-ng variant file: pitch base/range, formant frequency/height/width per formant, voice
    source (a Klatt source for some), breath, roughness, flutter, tone — a new vocal tract each time."""
    female = rng.random() < 0.5
    base = int(rng.uniform(140, 230) if female else rng.uniform(60, 125))
    span = int(rng.uniform(30, 140))
    shift = rng.uniform(102, 124) if female else rng.uniform(82, 106)  # vocal tract length
    lines = ["language variant", f"name {name}", f"gender {'female' if female else 'male'}",
             f"pitch {base} {base + span}"]
    if rng.random() < 0.3:
        lines.append(f"klatt {int(rng.integers(1, 5))}")
    for f in range(9):
        freq = shift * rng.uniform(0.9, 1.1) if f else 100
        lines.append(f"formant {f} {freq:.0f} {rng.uniform(50, 160):.0f} {rng.uniform(60, 180):.0f}")
    if rng.random() < 0.4:
        lines.append("breath " + " ".join(str(int(rng.uniform(0, 6))) for _ in range(8)))
    if rng.random() < 0.4:
        lines.append(f"tone {int(rng.uniform(300, 900))} {int(rng.uniform(150, 400))} "
                     f"{int(rng.uniform(1200, 2400))} {int(rng.uniform(40, 120))}")
    lines.append(f"roughness {int(rng.uniform(0, 6))}")
    lines.append(f"flutter {int(rng.uniform(0, 40))}")
    lines.append(f"voicing {int(rng.uniform(80, 120))}")
    lines.append(f"consonants {int(rng.uniform(70, 140))} {int(rng.uniform(70, 140))}")
    if rng.random() < 0.25:
        lines.append(f"echo {int(rng.uniform(5, 40))} {int(rng.uniform(3, 15))}")
    return "\n".join(lines) + "\n"


def _derived_voice(rng: np.random.Generator, base_f0_hz: float) -> dict:
    """A pitch/formant change that keeps a plausible voice: the formant ratio is drawn across the
    adult range; F0 follows it (longer tracts, lower voices) with its own spread, within 70-280 Hz;
    three peaking filters give the new voice its own timbre (nasal, bright, dark, boomy ...)."""
    formant = rng.uniform(0.82, 1.26)
    target_f0 = 120 * formant**4 * rng.uniform(0.8, 1.25)
    pitch = float(np.clip(target_f0 / base_f0_hz, 70 / base_f0_hz, 280 / base_f0_hz))
    eq = tuple((_r(float(np.exp(rng.uniform(np.log(200), np.log(6000)))), 0), _r(rng.uniform(-9, 9), 1),
                _r(rng.uniform(0.7, 2.5), 2)) for _ in range(3))
    return {"formant": _r(formant), "pitch": _r(pitch), "tempo": _r(rng.uniform(0.9, 1.1)), "eq": eq}


# Typical F0 of each base voice (Hz), to aim derived speakers at plausible absolute pitches.
BASE_F0_HZ = {"piper": 115.0, "flite:slt": 164.0, "flite:rms": 99.0, "flite:awb": 122.0, "flite:kal16": 95.0,
              "festival:kal_diphone": 105.0, "festival:ked_diphone": 105.0,
              "festival:cmu_us_slt_arctic_hts": 170.0}


def inventory(seed: int = 0, counts: dict[str, int] | None = None) -> list[Speaker]:
    """All candidate speakers for `seed`, base voices first within each engine."""
    counts = {**DEFAULT_COUNTS, **(counts or {})}
    speakers: list[Speaker] = []

    n = counts["espeak"]
    n_stock = min(n, len(ESPEAK_VARIANTS))  # each stock variant once (accents barely change the voice)
    for i in range(n_stock):
        accent = ESPEAK_ACCENTS[i % len(ESPEAK_ACCENTS)]
        variant = ESPEAK_VARIANTS[i]
        sid = f"espeak-{accent}-{variant.lower()}"
        tempo = _r(_rng(seed, sid).uniform(0.9, 1.1))
        speakers.append(Speaker(sid, "espeak", accent, sid, variant=variant, tempo=tempo))
    for i in range(n - n_stock):
        accent = ESPEAK_ACCENTS[i % len(ESPEAK_ACCENTS)]
        sid = f"espeak-{accent}-r{i:03d}"
        rng = _rng(seed, sid)
        speakers.append(Speaker(sid, "espeak", accent, sid, variant_file=random_espeak_variant(rng, f"r{i:03d}"),
                                tempo=_r(rng.uniform(0.9, 1.1))))

    def with_derived(engine: str, voices: list[str], total: int) -> None:
        """Base speakers of `voices`, then derived ones until `total`, cycling over the bases."""
        bases = []
        for v in voices[:total]:
            f0, std = FLITE_VOICES[v] if engine == "flite" else (None, None)
            sid = f"{engine}-{v.split('_')[0] if engine == 'festival' else v}"
            bases.append(Speaker(sid, engine, v, sid, f0_hz=f0, f0_std_hz=std))
        speakers.extend(bases)
        for i in range(total - len(bases)):
            family = bases[i % len(bases)]
            sid = f"{family.id}-d{i:02d}"
            rng = _rng(seed, sid)
            params = _derived_voice(rng, BASE_F0_HZ["piper" if engine == "piper" else f"{engine}:{family.voice}"])
            if engine == "piper":
                params |= {"noise_scale": _r(rng.uniform(0.5, 0.8)), "noise_w": _r(rng.uniform(0.6, 1.0))}
            speakers.append(dataclasses.replace(family, id=sid, **params))

    with_derived("flite", list(FLITE_VOICES), counts["flite"])
    with_derived("festival", list(FESTIVAL_VOICES), counts["festival"])
    with_derived("piper", ["joe"], counts["piper"])
    ids = [s.id for s in speakers]
    assert len(ids) == len(set(ids)), "speaker ids must be unique"
    return speakers


# ------------------------------------------------------------------------------------------------ kokoro (v2)
KOKORO_PACKS = ("jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo")
KOKORO_COUNT = 170  # candidates before the WER screen and de-duplication (seed 0: 40 distinct kept)
# Noise on the 256-d style vector, in units of each dimension's spread over the packs (engines_kokoro):
# 1.0 stays the pack's voice (resemblyzer cosine 0.88-0.92), 1.5-2.0 gives 0.67-0.85; a first screen
# with 1.5-2.3 lost most voices from ~1.8 up (WER 0.13-1.6 at 1.8-2.2, 0.06-0.09 at 1.56-1.9).
KOKORO_SIGMA = (1.4, 1.9)


def _short(pack: str) -> str:
    return pack.split("_", 1)[1]


def kokoro_inventory(seed: int = 0, count: int = KOKORO_COUNT) -> list[Speaker]:
    """Kokoro candidates: the 5 packs, the 20 (timbre pack, prosody pack) half-swaps, then seeded noise
    on them in turn (bases and swaps), each with its own tempo."""
    recipes: list[tuple[str, str, dict]] = []  # (id, family, fields)
    for pack in KOKORO_PACKS:
        recipes.append((f"kokoro-{_short(pack)}", f"kokoro-{_short(pack)}", {"voice": pack}))
    for timbre in KOKORO_PACKS:  # timbre (decoder half) from `timbre`, prosody from `pack`
        for pack in KOKORO_PACKS:
            if pack != timbre:
                recipes.append((f"kokoro-{_short(pack)}-t{_short(timbre)}", f"kokoro-{_short(pack)}",
                                {"voice": pack, "style_swap": timbre, "swap_half": 0}))
    parents = list(recipes)
    for i in range(max(0, count - len(parents))):
        pid, family, fields = parents[i % len(parents)]
        sid = f"{pid}-n{i:03d}"
        rng = _rng(seed, sid)
        recipes.append((sid, family, {**fields, "style_noise": _r(rng.uniform(*KOKORO_SIGMA)),
                                      "style_seed": int(rng.integers(2**31))}))
    speakers = []
    for sid, family, fields in recipes[:count]:
        tempo = 1.0 if sid == family else _r(_rng(seed, sid, "tempo").uniform(0.92, 1.08))
        speakers.append(Speaker(sid, "kokoro", family=family, tempo=tempo, **fields))
    return speakers


def inventory_v2(seed: int = 0, kokoro_count: int = KOKORO_COUNT, counts: dict[str, int] | None = None) -> list[Speaker]:
    """v1's candidates (unchanged, same ids) followed by the Kokoro candidates."""
    return inventory(seed, counts) + kokoro_inventory(seed, kokoro_count)


def by_id(speakers: list[Speaker]) -> dict[str, Speaker]:
    return {s.id: s for s in speakers}


def engine_counts(speakers: list[Speaker]) -> dict[str, int]:
    out: dict[str, int] = {}
    for s in speakers:
        out[s.engine] = out.get(s.engine, 0) + 1
    return out
