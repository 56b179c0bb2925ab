"""Checks of what visitors and API callers send, before any model work; failures are `gr.Error`s.

lina checks what only the model can judge (speakable characters, audio content, voice shapes);
these checks cover what the app promises: limits, required fields, numeric ranges.
"""
from __future__ import annotations

import math
from pathlib import Path

import gradio as gr

from lina.audio import AudioError, AudioOptions, load_reference
from lina.config import LinaConfig
from lina.reference import CleanupReport
from lina.voice import Voice
from lina_app.errors import user_message
from lina_app.settings import (APP_AUDIO_OPTIONS, BEST_CLONE_CLIP_SECONDS, MAX_CLONE_CLIP_SECONDS, MAX_TEXT_CHARS,
                               MAX_TRANSCRIPT_CHARS, MAX_TUNING_CLIP_SECONDS, MAX_VOICE_NAME_CHARS)

MAX_CARD_LINES = 8   # the tuning status names at most this many clips' clean-up


def check_text(text, what: str = "text to speak", limit: int = MAX_TEXT_CHARS) -> str:
    """Non-empty and within the character limit; returns the text stripped."""
    if not isinstance(text, str) or not text.strip():
        raise gr.Error(f"Please enter the {what}: it is empty.", print_exception=False)
    text = text.strip()
    if len(text) > limit:
        raise gr.Error(f"The {what} is {len(text)} characters long; the limit is {limit}. "
                       "Please shorten it or split it into several requests.", print_exception=False)
    return text


def check_transcript(transcript) -> str:
    """Prompt continuation needs the exact words of the clip: say so when they are missing."""
    if not isinstance(transcript, str) or not transcript.strip():
        raise gr.Error("The transcript of the clip is required: type exactly what is said in the clip.",
                       print_exception=False)
    return check_text(transcript, "transcript", MAX_TRANSCRIPT_CHARS)


def check_clip(path) -> str:
    if not path:
        low, high = BEST_CLONE_CLIP_SECONDS
        raise gr.Error(f"Please upload or record a clip of the voice ({low} to {high} seconds of clear speech; "
                       f"at most {MAX_CLONE_CLIP_SECONDS:g} s).", print_exception=False)
    return str(path)


def check_number(label: str, value, bounds: tuple[float, float], integer: bool = False) -> float | int:
    """A number within `bounds` (inclusive); API callers can send anything, sliders cannot."""
    low, high = bounds
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise gr.Error(f"{label} must be a number, got {value!r}.", print_exception=False) from None
    if not math.isfinite(number) or not low <= number <= high:
        raise gr.Error(f"{label} must be between {low:g} and {high:g}, got {value!r}.", print_exception=False)
    if integer:
        if number != int(number):
            raise gr.Error(f"{label} must be a whole number, got {value!r}.", print_exception=False)
        return int(number)
    return number


def voice_name(name, default: str) -> str:
    """A short display name for a tuned voice (kept in its file's metadata)."""
    name = " ".join(str(name or "").split())[:MAX_VOICE_NAME_CHARS]
    return name or default


def load_voice_file(path, cfg: LinaConfig) -> Voice:
    """An uploaded voice file, checked against the loaded model (raises `VoiceError` with the reason)."""
    voice = Voice.load(Path(path))
    voice.check(cfg)
    return voice


def check_clips_audio(pairs: list[tuple[str, str]], options: AudioOptions = APP_AUDIO_OPTIONS) -> list[CleanupReport]:
    """Reads and cleans every tuning clip before any tuning, so a bad or over-long one is named (lina's message
    alone does not say which) and no work starts on a request that would fail. -> each clip's report card
    (`kept_seconds`: its length after trimming)."""
    reports = []
    for number, (path, _) in enumerate(pairs, start=1):
        try:
            _, report = load_reference(path, options=options)
        except AudioError as error:
            raise gr.Error(f"Clip {number} ({Path(path).name}): {user_message(error)}", print_exception=False) from None
        if report.kept_seconds > MAX_TUNING_CLIP_SECONDS:
            raise gr.Error(f"Clip {number} ({Path(path).name}) is {report.kept_seconds:.1f} s long after trimming "
                           f"silence; the limit is {MAX_TUNING_CLIP_SECONDS:g} s per clip: cut it into shorter clips.",
                           print_exception=False)
        reports.append(report)
    return reports


def reference_card(path, options: AudioOptions = APP_AUDIO_OPTIONS) -> CleanupReport:
    """The clean-up report of a clone clip (read again by the model: decoding a 15 s clip takes milliseconds)."""
    return load_reference(str(path), options=options)[1]


def cards_text(reports: list[CleanupReport], limit: int = MAX_CARD_LINES) -> str:
    """The report cards for the info box: '🧹 Reference clean-up: ...', one line per clip (at most `limit`)."""
    if len(reports) == 1:
        return f"🧹 Reference clean-up: {reports[0].card()}"
    lines = [f"clip {i}: {report.card()}" for i, report in enumerate(reports[:limit], start=1)]
    if len(reports) > limit:
        lines.append(f"… and {len(reports) - limit} more clips")
    return "\n".join(["🧹 Reference clean-up:"] + lines)
