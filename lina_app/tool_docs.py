"""What the endpoints say about themselves: Gradio builds the API page and, started with `--mcp`, the MCP
tools (one per endpoint, named after the function) from these docstrings: one line per parameter (Gradio
reads no continuation lines).

`documented(fn, doc)` gives a handler its public description without growing handlers.py; the wrapper keeps
the handler's signature (Gradio reads its parameters through `__wrapped__`).
"""
from __future__ import annotations

import functools
import inspect
from typing import Callable

from lina_app.settings import (MAX_CANDIDATES, MAX_TEXT_CHARS, MAX_TRANSCRIPT_CHARS, TEMPERATURE_RANGE,
                               TOP_K_RANGE)

_SAMPLING = f"""    top_k: sample among the k likeliest tokens ({TOP_K_RANGE[0]} to {TOP_K_RANGE[1]}; default 100).
    temperature: {TEMPERATURE_RANGE[0]} to {TEMPERATURE_RANGE[1]}; lower is steadier, higher more varied (default 1.0).
    seed: a whole number; the same inputs and seed give the same audio (default 0)."""

SPEAK = f"""Speak English text with a preset voice of this Space, a voice file, or the untuned model.

Args:
    text: the text to speak, up to {MAX_TEXT_CHARS} characters; long text is split into sentences.
    preset: the id of a preset voice, as list_voices gives it (e.g. "ava_neutral"); "" for none.
    voice_file: a Lina-Speech voice file (.safetensors) from voice tuning or the Hub; it wins over preset.
{_SAMPLING}
    glossary: pronunciations, one "word = respelling" a line (e.g. "Nguyen = win"); "" for none. The text
        may also hold pauses: [pause 0.5] or <break time="500ms"/>.
    speed: 0.7 to 1.5, applied after generation (time-stretched, pitch kept); 1 leaves the audio as spoken.

Returns:
    the speech as a 24 kHz 16-bit WAV file, and a line of generation info (model, voice, timing).
"""

CLONE = f"""Clone a voice from a short clip of it and speak English text in that voice (prompt continuation).

Args:
    text: the text to speak, up to {MAX_TEXT_CHARS} characters.
    prompt_audio: an audio file of the voice to clone: 3 to 10 s of clear speech of one speaker who agreed to it.
    transcript: the exact words of prompt_audio (up to {MAX_TRANSCRIPT_CHARS} characters); "" to have them recognized.
{_SAMPLING}
    candidates: how many takes to generate together (1 to {MAX_CANDIDATES}; default 1).

Returns:
    one 24 kHz 16-bit WAV file per candidate, a line of generation info, and an alignment plot (PNG).
"""

LIST_VOICES = """List the preset voices of this Space, to pick one for speak.

Returns:
    one entry per voice: id (what speak's preset takes), name, style, description, model_id, rank, and
    compatible (false when it was made for another model than the one loaded).
"""

TRANSCRIBE = """The words spoken in an English audio clip, as the Space's speech recognizer (Whisper) hears them.

Args:
    clip: the audio file (WAV, FLAC, MP3, OGG, M4A, WebM) of clear speech.

Returns:
    the recognized words.
"""

VOICE_FROM_HUB = """Load a Lina-Speech voice shared on the Hugging Face Hub, checked against the loaded model.

Args:
    repo_id: the Hub repository of the voice, as owner/name.

Returns:
    the voice file (.safetensors; pass it to speak as voice_file), and what was loaded.
"""


def documented(fn: Callable, doc: str, name: str | None = None) -> Callable:
    """`fn` with `doc` as its docstring (and `name` as its name: the MCP tool's); same signature and result."""
    if inspect.isgeneratorfunction(fn):
        raise TypeError("documented() wraps plain functions: Gradio streams generators by their type")

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        return fn(*args, **kwargs)

    wrapper.__doc__ = doc
    if name:
        wrapper.__name__ = wrapper.__qualname__ = name
    return wrapper
