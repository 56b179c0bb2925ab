"""Audio out of the HTTP API: the formats of OpenAI's `response_format`.

Encoders: libsndfile through `soundfile` (already what the app reads and writes WAV with; its wheels
bundle libsndfile 1.2 with LAME for MP3 and libopus for Ogg Opus), so every format is made in the
process, without a subprocess per request, and without depending on how a machine's ffmpeg was
built. (`speed` is `lina.speed.change_speed`: WSOLA, pitch kept.)
"""
from __future__ import annotations

import io

import numpy as np
import soundfile

from lina.audio import to_int16

# OpenAI's `response_format` values we serve -> (libsndfile format, subtype, Content-Type).
FORMATS = {
    "wav": ("WAV", "PCM_16", "audio/wav"),
    "flac": ("FLAC", "PCM_16", "audio/flac"),
    "mp3": ("MP3", "MPEG_LAYER_III", "audio/mpeg"),
    "opus": ("OGG", "OPUS", "audio/ogg; codecs=opus"),
    "pcm": (None, None, "audio/pcm"),   # raw 16-bit signed little-endian mono at the model's 24 kHz, as OpenAI's
}


def content_type(fmt: str) -> str:
    return FORMATS[fmt][2]


def encode(audio: np.ndarray, sample_rate: int, fmt: str) -> bytes:
    """Float32 mono `[S]` -> the bytes of a `fmt` file (one of `FORMATS`)."""
    container, subtype, _ = FORMATS[fmt]
    pcm = to_int16(audio)
    if container is None:
        return pcm.astype("<i2").tobytes()
    buffer = io.BytesIO()
    # int16 in: libsndfile writes PCM exactly, and the lossy encoders see the same samples a WAV holds.
    soundfile.write(buffer, pcm, sample_rate, format=container, subtype=subtype)
    return buffer.getvalue()
