"""Speaking styles (Expresso-like): prosody targets per style and the signal effects that realize them.

Each style is a set of relative targets — F0 level and range, tempo, level, spectral tilt, drive — that
every engine realizes its own way: espeak-ng through SSML `<prosody>` (pitch, range, rate, volume), the
others through their native tempo control plus a Praat "Change gender" pass for F0 level and range
(`generate.py`). Whisper is unvoiced resynthesis: WORLD with F0 = 0 and aperiodicity 1 everywhere, so
the spectral envelope (the words, the speaker's formants) stays and the voicing goes.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import signal

STYLES = ("neutral", "happy", "sad", "angry", "whisper", "calm")


@dataclass(frozen=True)
class Style:
    name: str
    f0: float = 1.0  # F0 level ratio
    f0_range: float = 1.0  # F0 excursion ratio (around the median)
    tempo: float = 1.0  # > 1: faster
    gain_db: float = 0.0  # level relative to the corpus target loudness
    tilt_db: float = 0.0  # high-shelf gain above ~1.5 kHz: > 0 brighter, < 0 darker
    drive: float = 0.0  # soft saturation amount (0: none), pressed/tense phonation for anger
    whisper: bool = False


STYLE_PARAMS: dict[str, Style] = {
    "neutral": Style("neutral"),
    "happy": Style("happy", f0=1.18, f0_range=1.5, tempo=1.08, gain_db=1.0, tilt_db=2.0),
    "sad": Style("sad", f0=0.88, f0_range=0.55, tempo=0.84, gain_db=-4.0, tilt_db=-4.0),
    "angry": Style("angry", f0=1.10, f0_range=1.4, tempo=1.12, gain_db=3.0, tilt_db=4.0, drive=0.6),
    "whisper": Style("whisper", tempo=0.94, gain_db=-8.0, tilt_db=1.0, whisper=True),
    "calm": Style("calm", f0=0.95, f0_range=0.7, tempo=0.9, gain_db=-2.0, tilt_db=-2.0),
}


def style(name: str) -> Style:
    try:
        return STYLE_PARAMS[name]
    except KeyError:
        raise ValueError(f"unknown style {name!r}; one of {', '.join(STYLES)}") from None


def espeak_prosody(name: str) -> dict[str, str]:
    """SSML `<prosody>` attributes for espeak-ng (relative: "+18%" pitch, "150%" range, "108%" rate)."""
    s = style(name)
    attrs = {}
    if s.f0 != 1.0:
        attrs["pitch"] = f"{(s.f0 - 1) * 100:+.0f}%"
    if s.f0_range != 1.0:
        attrs["range"] = f"{s.f0_range * 100:.0f}%"
    if s.tempo != 1.0:
        attrs["rate"] = f"{s.tempo * 100:.0f}%"
    return attrs


def _high_shelf(audio: np.ndarray, sr: int, gain_db: float, corner_hz: float = 1500.0) -> np.ndarray:
    """First-order high shelf: the signal plus `g - 1` times its high-passed part."""
    sos = signal.butter(1, corner_hz, btype="highpass", fs=sr, output="sos")
    high = signal.sosfilt(sos, audio)
    return audio + (10 ** (gain_db / 20) - 1) * high


def apply_effects(audio: np.ndarray, sr: int, name: str) -> np.ndarray:
    """Tilt and drive of a style (level is applied at loudness normalization, see `style_gain_db`)."""
    s = style(name)
    out = audio.astype(np.float64)
    if s.tilt_db:
        out = _high_shelf(out, sr, s.tilt_db)
    if s.drive:
        peak = float(np.max(np.abs(out))) or 1.0
        k = 1 + 4 * s.drive
        out = np.tanh(k * out / peak) / np.tanh(k) * peak
    return out.astype(np.float32)


def whisper(audio: np.ndarray, sr: int, frame_ms: float = 5.0) -> np.ndarray:
    """Unvoiced resynthesis with WORLD: same spectral envelope, noise excitation everywhere."""
    import pyworld

    x = audio.astype(np.float64)
    f0, times = pyworld.dio(x, sr, frame_period=frame_ms)
    f0 = pyworld.stonemask(x, f0, times, sr)
    envelope = pyworld.cheaptrick(x, f0, times, sr)
    aperiodicity = np.ones_like(envelope)
    out = pyworld.synthesize(np.zeros_like(f0), envelope, aperiodicity, sr, frame_period=frame_ms)
    return out[: len(audio)].astype(np.float32)
