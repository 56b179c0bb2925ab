"""Audio in and out: whatever a user uploads -> clean mono float32 at 24 kHz for the codec.

`load_audio` takes a file path, raw file bytes, or a `(sample_rate, array)` pair as Gradio gives
it (int or float samples, mono or multichannel, channels first or last) and returns a 1-D
float32 array: downmixed, resampled with soxr, then cleaned (`lina.reference`: clipping detected, silence
trimmed at both ends with margins, loudness normalized to BS.1770 gated loudness under a peak ceiling);
`load_reference` also returns the report card of that clean-up. Every problem with the
input raises `AudioError` with a message meant for the user; nothing else is raised.
"""
from __future__ import annotations

import io
import math
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Union

import numpy as np
import soundfile
import soxr

from lina.audio_levels import (  # noqa: F401 (re-exported: callers find them here)
    DEFAULT_OPTIONS, TARGET_LUFS, AudioError, AudioOptions, loudness_lufs, speech_end)
from lina.constants import SAMPLE_RATE
from lina.reference import clean, clipped_share

AudioSource = Union[str, os.PathLike, bytes, tuple]

# soxr's best quality preset: linear phase, ~175 dB stop band.
SOXR_QUALITY = "VHQ"
# More channels than this along an axis means that axis is time, not channels.
MAX_CHANNELS = 16
MIN_INPUT_RATE, MAX_INPUT_RATE = 1_000, 768_000
INT16_SCALE = 32767
# A conversion taking longer than this is treated as a broken upload.
FFMPEG_TIMEOUT_SECONDS = 120
FFPROBE_TIMEOUT_SECONDS = 10
# What a visitor reads for any file no decoder understands (decoder messages name server paths).
UNREADABLE = "unreadable audio file: it is not audio in a format we can decode (WAV, FLAC, MP3, OGG, M4A, WebM)"
def load_audio(
    source: AudioSource, sample_rate: int = SAMPLE_RATE, options: AudioOptions = DEFAULT_OPTIONS
) -> np.ndarray:
    """Any supported input -> mono float32 `[S]` at `sample_rate`, cleaned as `options` say."""
    return load_reference(source, sample_rate, options)[0]


def load_reference(source: AudioSource, sample_rate: int = SAMPLE_RATE, options: AudioOptions = DEFAULT_OPTIONS):
    """As `load_audio`, with the report card of the clean-up: -> (float32 `[S]`, `lina.reference.CleanupReport`)."""

    rate, samples = _read(source, options)
    _check_rate(rate)
    # The longest axis is time: refuse long inputs before any copy is made.
    seconds = max(samples.shape, default=0) / rate
    if seconds > options.max_input_seconds:
        raise AudioError(f"the audio is {seconds:.1f} s long; the limit is {options.max_input_seconds:g} s")
    audio = _to_mono(_to_float(samples))
    # Flat tops are counted as decoded: resampling rings around them and hides them.
    clipped = clipped_share(audio) if audio.size else 0.0
    if rate != sample_rate and audio.size:
        audio = soxr.resample(audio, rate, sample_rate, quality=SOXR_QUALITY).astype(np.float32)
    if audio.size == 0:
        raise AudioError("the audio is empty")
    return clean(audio, sample_rate, options, clipped, seconds)


def to_int16(audio) -> np.ndarray:
    """Float audio in [-1, 1] (numpy or torch, any shape) -> int16 (clipped, rounded)."""
    if hasattr(audio, "detach"):
        audio = audio.detach().float().cpu().numpy()
    scaled = np.clip(np.asarray(audio, dtype=np.float64), -1.0, 1.0) * INT16_SCALE
    return np.round(scaled).astype(np.int16)


def _read(source: AudioSource, options: AudioOptions) -> tuple[int, np.ndarray]:
    """-> (sample rate, samples as stored) for every accepted kind of source."""
    if isinstance(source, tuple):
        if len(source) != 2:
            raise AudioError("expected (sample_rate, samples)")
        rate, samples = source
        if isinstance(samples, (int, float)) and not isinstance(rate, (int, float)):
            rate, samples = samples, rate  # (samples, rate) is a common slip
        try:
            return _rate(rate), np.asarray(samples)
        except (TypeError, ValueError) as error:
            raise AudioError(f"unreadable samples: {error}") from None
    if isinstance(source, (bytes, bytearray)):
        if len(source) > options.max_file_bytes:
            raise AudioError(f"the file is larger than {options.max_file_bytes // 2**20} MB")
        try:
            return _decode(io.BytesIO(source), options)
        except AudioError:
            if shutil.which("ffmpeg") is None:
                raise
            with tempfile.TemporaryDirectory() as folder:
                upload = Path(folder) / "upload"
                upload.write_bytes(source)
                return _decode_with_ffmpeg(upload, options)
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise AudioError(f"no audio file at {path}")
        if path.stat().st_size > options.max_file_bytes:
            raise AudioError(f"the file is larger than {options.max_file_bytes // 2**20} MB")
        try:
            return _decode(path, options)
        except AudioError:
            if shutil.which("ffmpeg") is None:
                raise
            return _decode_with_ffmpeg(path, options)
    raise AudioError(f"unsupported audio input of type {type(source).__name__}")


def _decode(file, options: AudioOptions) -> tuple[int, np.ndarray]:
    try:
        with soundfile.SoundFile(file) as handle:
            if handle.frames / handle.samplerate > options.max_input_seconds:
                raise AudioError(
                    f"the audio is {handle.frames / handle.samplerate:.1f} s long; "
                    f"the limit is {options.max_input_seconds:g} s"
                )
            return handle.samplerate, handle.read(dtype="float32", always_2d=True)
    except AudioError:
        raise
    except Exception:  # noqa: BLE001 - libsndfile's own wording names server paths: say it plainly
        raise AudioError(UNREADABLE) from None


def _decode_with_ffmpeg(path: Path, options: AudioOptions) -> tuple[int, np.ndarray]:
    """Formats libsndfile lacks (m4a, webm, ...): ffmpeg converts to a float WAV first."""
    with tempfile.TemporaryDirectory() as folder:
        wav = Path(folder) / "audio.wav"
        # One second past the limit is enough to tell that the input is too long.
        command = ["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-t", str(options.max_input_seconds + 1),
                   "-vn", "-acodec", "pcm_f32le", str(wav)]
        try:
            subprocess.run(command, check=True, capture_output=True, timeout=FFMPEG_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            raise AudioError("the audio file took too long to decode; please upload a WAV, FLAC or MP3 file") from None
        except (subprocess.SubprocessError, OSError):
            raise AudioError(UNREADABLE) from None
        try:
            return _decode(wav, options)
        except AudioError as error:
            if "long; the limit is" not in str(error):
                raise
            # The conversion stopped just past the limit: report the file's own length instead.
            seconds = probe_seconds(path)
            if seconds is None:
                raise AudioError(f"the audio is longer than {options.max_input_seconds:g} s; "
                                 f"the limit is {options.max_input_seconds:g} s") from None
            raise AudioError(f"the audio is {seconds:.1f} s long; the limit is {options.max_input_seconds:g} s") from None


def probe_seconds(path: Path) -> float | None:
    """Duration of a media file as its container states it (ffprobe), or None when it cannot tell."""
    if shutil.which("ffprobe") is None:
        return None
    command = ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", str(path)]
    try:
        done = subprocess.run(command, check=True, capture_output=True, text=True, timeout=FFPROBE_TIMEOUT_SECONDS)
        seconds = float(done.stdout.strip())
    except (subprocess.SubprocessError, OSError, ValueError):
        return None
    return seconds if math.isfinite(seconds) and seconds > 0 else None


def _rate(rate) -> int:
    if isinstance(rate, bool) or not isinstance(rate, (int, float, np.integer, np.floating)) or rate != int(rate):
        raise AudioError(f"invalid sample rate {rate!r}")
    return int(rate)


def _check_rate(rate: int) -> None:
    if not MIN_INPUT_RATE <= rate <= MAX_INPUT_RATE:
        raise AudioError(f"sample rate {rate} Hz is outside [{MIN_INPUT_RATE}, {MAX_INPUT_RATE}]")


def _to_float(samples: np.ndarray) -> np.ndarray:
    """Integer PCM scaled to [-1, 1); floats as they are; anything else refused."""
    kind = samples.dtype.kind
    if kind == "f":
        # Checked before the cast: float64 beyond float32's range would turn into inf silently.
        if not np.isfinite(samples).all() or np.abs(samples).max(initial=0.0) > np.finfo(np.float32).max:
            raise AudioError("the audio contains NaN, infinite or out-of-range samples")
        return samples.astype(np.float32)
    if kind in "iu":
        half_range = float(2 ** (8 * samples.dtype.itemsize - 1))
        offset = half_range if kind == "u" else 0.0  # unsigned PCM is centred on half its range
        return ((samples.astype(np.float64) - offset) / half_range).astype(np.float32)
    raise AudioError(f"audio samples of type {samples.dtype} are not numbers")


def _to_mono(audio: np.ndarray) -> np.ndarray:
    """`[S]`, `[S, C]` or `[C, S]` (singleton axes ignored) -> mean over channels `[S]`."""
    audio = np.squeeze(audio)
    if audio.ndim <= 1:
        return audio.reshape(-1)
    if audio.ndim > 2:
        raise AudioError(f"audio of shape {audio.shape}: expected samples or samples x channels")
    rows, cols = audio.shape
    if cols < rows and cols <= MAX_CHANNELS:
        return audio.mean(axis=1)  # [S, C]: soundfile, Gradio
    if rows <= MAX_CHANNELS:
        return audio.mean(axis=0)  # [C, S]: torch, librosa
    raise AudioError(f"audio of shape {audio.shape}: cannot tell channels from samples")
