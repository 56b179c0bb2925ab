"""Speaking rate as post-processing: pitch-preserving time-scale modification of finished audio.

The model speaks at its own pace; ``change_speed`` then makes the audio faster or slower without
changing its pitch, with WSOLA (waveform-similarity overlap-add) from `audiotsm`: a pure-Python,
numpy-only library (no binary to install, unlike rubberband), whose WSOLA keeps speech natural at
0.7-1.5x. Word timestamps scale with it (:func:`scale_times`).
"""
from __future__ import annotations

import numpy as np

from lina.constants import SAMPLE_RATE

__all__ = ["MAX_SPEED", "MIN_SPEED", "change_speed", "scale_times"]

MIN_SPEED, MAX_SPEED = 0.7, 1.5
# WSOLA frames of 40 ms (about two pitch periods of a low voice, so a frame holds whole periods) with a
# 10 ms synthesis hop and a +-10 ms search for the most similar waveform: settings for 24 kHz speech.
FRAME_SECONDS = 0.040
HOP_SECONDS = 0.010
TOLERANCE_SECONDS = 0.010


def check_speed(speed: float) -> float:
    speed = float(speed)
    if not MIN_SPEED <= speed <= MAX_SPEED:  # (also refuses NaN)
        raise ValueError(f"the speed must be between {MIN_SPEED:g} and {MAX_SPEED:g}, got {speed:g}")
    return speed


def change_speed(audio: np.ndarray, speed: float, rate: int = SAMPLE_RATE) -> np.ndarray:
    """``audio [S]`` float -> float32 ``[round(S / speed)]``, ``speed`` times faster at the same pitch.

    Speed 1 returns the audio unchanged. WSOLA stops about a frame before the end of its input, so the
    input is padded with silence and the output cut to exactly ``S / speed`` samples.
    """
    speed = check_speed(speed)
    audio = np.asarray(audio, dtype=np.float32).reshape(-1)
    if speed == 1.0 or audio.size == 0:
        return audio.copy()
    from audiotsm import wsola
    from audiotsm.io.array import ArrayReader, ArrayWriter

    frame = int(FRAME_SECONDS * rate)
    synthesis_hop = int(HOP_SECONDS * rate)
    tsm = wsola(1, speed=speed, frame_length=frame, synthesis_hop=synthesis_hop,
                tolerance=int(TOLERANCE_SECONDS * rate))
    padded = np.concatenate([audio, np.zeros(2 * frame, dtype=np.float32)])
    writer = ArrayWriter(1)
    tsm.run(ArrayReader(padded[None].astype(np.float64)), writer)
    out = writer.data[0].astype(np.float32)
    wanted = int(round(len(audio) / speed))
    return np.pad(out, (0, max(0, wanted - len(out))))[:wanted]


def scale_times(seconds: float, speed: float) -> float:
    """A time in the original audio -> the same moment after `change_speed` (same factor)."""
    return seconds / speed
