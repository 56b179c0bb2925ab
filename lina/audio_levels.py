"""Levels of audio: speech frames, silence trimming and BS.1770 loudness, with the options and the error of
`lina.audio` (which decodes and loads clips) and `lina.reference` (which cleans them) both build on.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.signal import lfilter

from lina.constants import SAMPLE_RATE

# Silence detection on 20 ms frames every 10 ms.
FRAME_SECONDS, FRAME_STEP_SECONDS = 0.020, 0.010
# A frame is speech if within this many dB of the loudest frame and above the absolute floor.
SPEECH_RANGE_DB = 40.0
SILENCE_FLOOR_DBFS = -60.0
# RMS of digital silence is clamped here before taking decibels (-240 dBFS).
RMS_FLOOR = 1e-12
# BS.1770: 400 ms blocks with 75 % overlap, gates at -70 LUFS and 10 LU below the ungated mean.
LOUDNESS_BLOCK_SECONDS, LOUDNESS_STEP_SECONDS = 0.400, 0.100
ABSOLUTE_GATE_LUFS, RELATIVE_GATE_LU = -70.0, -10.0
LOUDNESS_OFFSET_DB = -0.691
# K-weighting = high shelf + high pass, as analog prototypes (their bilinear transforms at 48 kHz
# are the coefficients printed in BS.1770).
SHELF_HZ, SHELF_GAIN_DB, SHELF_Q = 1681.974450955533, 3.999843853973347, 0.7071752369554196
SHELF_VB_EXPONENT = 0.4996667741545416
HIGHPASS_HZ, HIGHPASS_Q = 38.13547087602444, 0.5003270373238773
# Default loudness of a clean clip: EBU R128's -23 LUFS, which is also where the training audio sits
# (lina-mini's corpus is normalized to -23 dB active RMS; its rendered test split measures -23.2 LUFS,
# std 1.1 over 119 files), so a prompt or tuning clip reaches the model at the level it was trained on.
TARGET_LUFS = -23.0


class AudioError(ValueError):
    """The input audio cannot be used; the message says why, for the user."""


@dataclass(frozen=True)
class AudioOptions:
    """Limits and processing of `load_audio` (durations in seconds)."""

    max_input_seconds: float = 60.0
    max_file_bytes: int = 50 * 2**20
    min_speech_seconds: float = 0.5
    trim_silence: bool = True
    trim_margin_seconds: float = 0.1
    normalize_loudness: bool = True
    target_lufs: float = TARGET_LUFS
    peak_dbfs: float = -1.0
    # Light spectral gating (lina.reference): "never" (the library's default), "auto" (noisy clips only: the
    # app's choice), "always".
    denoise: str = "never"


DEFAULT_OPTIONS = AudioOptions()


def loudness_lufs(audio: np.ndarray, sample_rate: int) -> float:
    """Integrated loudness of mono `[S]` (ITU-R BS.1770 K-weighting and gating), in LUFS."""
    weighted = _k_weighting(audio.astype(np.float64), sample_rate)
    block = int(round(LOUDNESS_BLOCK_SECONDS * sample_rate))
    step = int(round(LOUDNESS_STEP_SECONDS * sample_rate))
    if weighted.size <= block:
        powers = np.array([np.mean(weighted**2)])
    else:
        starts = np.arange(0, weighted.size - block + 1, step)
        cumulative = np.concatenate([[0.0], np.cumsum(weighted**2)])
        powers = (cumulative[starts + block] - cumulative[starts]) / block
    floor = 10 ** ((ABSOLUTE_GATE_LUFS - LOUDNESS_OFFSET_DB) / 10)
    gated = powers[powers > floor]
    if gated.size == 0:
        return ABSOLUTE_GATE_LUFS
    relative = np.mean(gated) * 10 ** (RELATIVE_GATE_LU / 10)
    kept = gated[gated > relative]
    return LOUDNESS_OFFSET_DB + 10 * math.log10(np.mean(kept))


def _k_weighting(audio: np.ndarray, rate: int) -> np.ndarray:
    k = math.tan(math.pi * SHELF_HZ / rate)
    vh = 10 ** (SHELF_GAIN_DB / 20)
    vb = vh**SHELF_VB_EXPONENT
    a0 = 1 + k / SHELF_Q + k * k
    shelf_b = np.array([vh + vb * k / SHELF_Q + k * k, 2 * (k * k - vh), vh - vb * k / SHELF_Q + k * k]) / a0
    shelf_a = np.array([a0, 2 * (k * k - 1), 1 - k / SHELF_Q + k * k]) / a0
    k = math.tan(math.pi * HIGHPASS_HZ / rate)
    a0 = 1 + k / HIGHPASS_Q + k * k
    highpass_a = np.array([a0, 2 * (k * k - 1), 1 - k / HIGHPASS_Q + k * k]) / a0
    return lfilter([1.0, -2.0, 1.0], highpass_a, lfilter(shelf_b, shelf_a, audio))


def _speech_frames(audio: np.ndarray, rate: int) -> np.ndarray:
    """Boolean per 10 ms step: does the 20 ms frame starting there hold sound?"""
    size, step = int(FRAME_SECONDS * rate), int(FRAME_STEP_SECONDS * rate)
    padded = np.pad(audio.astype(np.float64), (0, max(0, size - audio.size)))
    starts = np.arange(0, padded.size - size + 1, step)
    cumulative = np.concatenate([[0.0], np.cumsum(padded**2)])
    rms = np.sqrt((cumulative[starts + size] - cumulative[starts]) / size)
    level = 20 * np.log10(np.maximum(rms, RMS_FLOOR))
    return level > max(SILENCE_FLOOR_DBFS, level.max() - SPEECH_RANGE_DB)


def speech_end(audio: np.ndarray, rate: int = SAMPLE_RATE) -> int:
    """Sample index where the last sound of ``audio: [S]`` ends (``len(audio)`` for a clip cut mid-sound).

    Sound is what trimming keeps (:func:`_speech_frames`); the end is that of the last 10 ms step whose
    frame holds sound (a frame reaching past it into silence would add up to a step of silence)."""
    speech = _speech_frames(audio, rate)
    voiced = np.flatnonzero(speech)
    if voiced.size == 0 or voiced[-1] == speech.size - 1:
        return len(audio)
    return min(len(audio), int(voiced[-1] + 1) * int(FRAME_STEP_SECONDS * rate))


def _trim(audio: np.ndarray, rate: int, speech: np.ndarray, margin_seconds: float) -> np.ndarray:
    step, size, margin = int(FRAME_STEP_SECONDS * rate), int(FRAME_SECONDS * rate), int(margin_seconds * rate)
    voiced = np.flatnonzero(speech)
    start = max(0, voiced[0] * step - margin)
    end = min(audio.size, voiced[-1] * step + size + margin)
    return audio[start:end]
