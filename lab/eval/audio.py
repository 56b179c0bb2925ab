"""Audio helpers shared by the metrics: every tool gets mono float32 at its own rate (16 kHz here)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile
import soxr

METRIC_RATE = 16_000          # Whisper, resemblyzer, DNSMOS, PESQ-wb and STOI all work at 16 kHz
SOXR_QUALITY = "VHQ"
RMS_FLOOR = 1e-10


def as_mono(audio) -> np.ndarray:
    """numpy/torch audio (``[S]``, ``[1, S]`` or ``[S, C]``) -> 1-D float32 (channels averaged)."""
    if hasattr(audio, "detach"):
        audio = audio.detach().float().cpu().numpy()
    x = np.asarray(audio, dtype=np.float32)
    if x.ndim == 2:
        x = x.mean(axis=0 if x.shape[0] < x.shape[1] else 1)
    if x.ndim != 1:
        raise ValueError(f"expected mono audio [S] (or [C, S]), got shape {x.shape}")
    return np.ascontiguousarray(np.nan_to_num(x), dtype=np.float32)


def resample(audio, sr: int, target: int = METRIC_RATE) -> np.ndarray:
    """Mono float32 at ``target`` Hz (soxr, deterministic)."""
    x = as_mono(audio)
    if sr == target or x.size == 0:
        return x
    return soxr.resample(x, sr, target, quality=SOXR_QUALITY).astype(np.float32)


def peak_limit(x: np.ndarray, peak: float = 0.99) -> np.ndarray:
    """Scales down (never up) so that ``|x| <= peak``: some tools refuse samples outside [-1, 1]."""
    top = float(np.abs(x).max()) if x.size else 0.0
    return (x * (peak / top)).astype(np.float32) if top > peak else x


def read_wav(path: str | Path) -> tuple[np.ndarray, int]:
    """A sound file -> (mono float32, rate), untouched otherwise (no trimming, no loudness change)."""
    data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    return as_mono(data.T), int(rate)


def frame_rms_db(x: np.ndarray, sr: int, frame_s: float = 0.02, hop_s: float = 0.01) -> np.ndarray:
    """RMS level in dBFS of ``frame_s`` frames every ``hop_s`` (empty for audio shorter than a frame)."""
    frame, hop = max(1, int(sr * frame_s)), max(1, int(sr * hop_s))
    if x.size < frame:
        return np.zeros(0)
    frames = np.lib.stride_tricks.sliding_window_view(x.astype(np.float64), frame)[::hop]
    return 20 * np.log10(np.sqrt((frames ** 2).mean(axis=1)) + RMS_FLOOR)
