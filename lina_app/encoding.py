"""Audio out of the HTTP API: the formats of OpenAI's `response_format`, and its `speed`.

Encoders: libsndfile through `soundfile` (already what the app reads and writes WAV with; its wheels
bundle libsndfile 1.2 with LAME for MP3 and libopus for Ogg Opus), so every format is made in the
process, without a subprocess per request, and without depending on how a machine's ffmpeg was
built. `speed` uses ffmpeg's `atempo` filter (WSOLA time stretching: the pitch stays), which setup
installs anyway for decoding uploads; a phase vocoder (librosa) smears speech audibly.
"""
from __future__ import annotations

import io
import math
import shutil
import subprocess

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
SPEED_RANGE = (0.25, 4.0)             # OpenAI's bounds
ATEMPO_RANGE = (0.5, 2.0)             # one atempo filter's range everywhere; larger factors are chained
FFMPEG_TIMEOUT_SECONDS = 60
SPEED_TOLERANCE = 1e-3                # closer to 1 than this: no stretching


class EncodingError(RuntimeError):
    """The audio could not be encoded or stretched; the message is for the caller."""


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


def atempo_chain(speed: float) -> list[float]:
    """Factors within `ATEMPO_RANGE` whose product is `speed` (e.g. 4.0 -> [2.0, 2.0], 0.3 -> [0.5, 0.6])."""
    low, high = ATEMPO_RANGE
    factors = []
    while speed > high:
        factors.append(high)
        speed /= high
    while speed < low:
        factors.append(low)
        speed /= low
    return factors + [speed]


def change_speed(audio: np.ndarray, sample_rate: int, speed: float) -> np.ndarray:
    """`audio` played `speed` times faster, pitch kept (ffmpeg atempo); float32 `[S / speed]`."""
    if abs(speed - 1.0) < SPEED_TOLERANCE or audio.size == 0:
        return audio
    if shutil.which("ffmpeg") is None:
        raise EncodingError("speed other than 1.0 needs ffmpeg on the server, which is not installed")
    chain = ",".join(f"atempo={factor:.6f}" for factor in atempo_chain(speed))
    command = ["ffmpeg", "-nostdin", "-v", "error", "-f", "f32le", "-ar", str(sample_rate), "-ac", "1", "-i", "pipe:0",
               "-af", chain, "-f", "f32le", "pipe:1"]
    try:
        done = subprocess.run(command, input=np.asarray(audio, dtype="<f4").tobytes(), capture_output=True,
                              check=True, timeout=FFMPEG_TIMEOUT_SECONDS)
    except (subprocess.SubprocessError, OSError):
        raise EncodingError("the speed change failed; please try speed 1.0") from None
    out = np.frombuffer(done.stdout, dtype="<f4").astype(np.float32)
    if not math.isfinite(float(np.abs(out).sum())):
        raise EncodingError("the speed change failed; please try speed 1.0")
    return out
