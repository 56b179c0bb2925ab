"""Speed as post-processing: duration changes by the factor, pitch stays (WSOLA, audiotsm)."""
from pathlib import Path

import numpy as np
import pytest

from lina.audio import load_audio
from lina.constants import SAMPLE_RATE
from lina.speed import change_speed, check_speed

CLIP = Path(__file__).resolve().parents[1] / "assets" / "examples" / "joe_clone.flac"
FRAME = 0.04
LOW_HZ, HIGH_HZ = 60, 400


def pitch_reference(audio: np.ndarray, rate: int = SAMPLE_RATE) -> float:
    """Median f0 (Hz) over loud frames, by autocorrelation: the test's own simple pitch meter."""
    n = int(FRAME * rate)
    loud = np.sqrt(np.mean(audio ** 2)) * 0.5
    found = []
    for i in range(0, len(audio) - n, n):
        frame = audio[i:i + n] - audio[i:i + n].mean()
        if np.sqrt(np.mean(frame ** 2)) < loud:
            continue
        ac = np.correlate(frame, frame, "full")[n - 1:]
        lo, hi = rate // HIGH_HZ, rate // LOW_HZ
        lag = lo + int(np.argmax(ac[lo:hi]))
        if ac[lag] > 0.5 * ac[0]:
            found.append(rate / lag)
    return float(np.median(found))


@pytest.fixture(scope="module")
def speech():
    return load_audio(str(CLIP))


@pytest.mark.parametrize("speed", [0.7, 0.75, 1.25, 1.5])
def test_speed_scales_duration_and_keeps_pitch(speech, speed):
    out = change_speed(speech, speed)
    assert len(out) / len(speech) == pytest.approx(1 / speed, rel=0.05)
    # The end of the speech is kept: the last second is not silence.
    assert np.abs(out[-SAMPLE_RATE:]).max() > 0.01 * np.abs(out).max() or np.abs(speech[-SAMPLE_RATE:]).max() < 0.01
    assert pitch_reference(out) == pytest.approx(pitch_reference(speech), rel=0.05)


def test_speed_one_is_identity_and_limits_hold(speech):
    assert np.array_equal(change_speed(speech, 1.0), speech)
    for bad in (0.5, 1.6, float("nan")):
        with pytest.raises(ValueError, match="speed must be between 0.7 and 1.5"):
            check_speed(bad)
