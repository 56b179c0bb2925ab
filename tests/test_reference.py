"""Reference clean-up (`lina.reference`): each step changes what it claims, and the report card says so."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile
import soxr

from lina.audio import TARGET_LUFS, AudioOptions, load_reference, loudness_lufs
from lina.reference import CLIPPED_SHARE, NOISY_MARGIN_DB, clipped_share, measure_lufs, noise_margin_db

RATE = 24_000
EXAMPLES = Path(__file__).resolve().parents[1] / "assets" / "examples"
LEVEL_TOLERANCE_LU = 1.0
METERS_AGREE_LU = 0.5        # pyloudnorm vs the reference meter on speech (block edges differ; measured <= 0.35)
PAD_SECONDS = 2.0
ROOM_FLOOR_DBFS = -65.0


def _speech(name: str = "joe_tune_1.flac") -> np.ndarray:
    audio, rate = soundfile.read(EXAMPLES / name, dtype="float32")
    return soxr.resample(audio, rate, RATE).astype(np.float32)


def test_quiet_clip_is_brought_to_the_target_level():
    quiet = _speech() * np.float32(10 ** (-20 / 20))
    assert measure_lufs(quiet, RATE) < TARGET_LUFS - 15
    audio, report = load_reference((RATE, quiet))
    assert not report.peak_limited
    assert abs(measure_lufs(audio, RATE) - TARGET_LUFS) <= LEVEL_TOLERANCE_LU
    assert abs(report.loudness_after_lufs - TARGET_LUFS) < 0.01
    assert report.loudness_before_lufs < TARGET_LUFS - 15
    assert any(line.startswith("loudness ") and "→ -23.0 LUFS" in line for line in report.lines())


def test_long_silences_are_removed_and_reported():
    speech = _speech()
    rng = np.random.default_rng(0)
    pad = rng.standard_normal(int(PAD_SECONDS * RATE)).astype(np.float32) * 10 ** (ROOM_FLOOR_DBFS / 20)
    padded = np.concatenate([pad, speech, pad, pad])
    audio, report = load_reference((RATE, padded))
    margin = AudioOptions().trim_margin_seconds
    assert report.input_seconds == pytest.approx(len(padded) / RATE, abs=1e-3)
    assert len(audio) / RATE < len(speech) / RATE + 2 * margin + 0.05
    _, alone = load_reference((RATE, speech))   # the clip's own leading/trailing silence goes too
    assert report.trimmed_start_seconds == pytest.approx(alone.trimmed_start_seconds + PAD_SECONDS, abs=margin + 0.01)
    assert report.trimmed_end_seconds == pytest.approx(alone.trimmed_end_seconds + 2 * PAD_SECONDS, abs=0.02)
    assert report.kept_seconds == pytest.approx(alone.kept_seconds, abs=margin + 0.01)  # margins clamped alone
    start = f"silence trimmed: {report.trimmed_start_seconds:.1f} s at the start"
    assert any(line.startswith(start) for line in report.lines()), report.lines()


def test_clipping_is_detected_and_reported_not_hidden():
    speech = _speech()
    clipped = np.clip(speech * 6, -1, 1)
    assert clipped_share(clipped) > CLIPPED_SHARE and clipped_share(speech) < CLIPPED_SHARE
    _, report = load_reference((RATE, clipped))
    assert report.clipped and "clipping" in report.card()
    _, clean = load_reference((RATE, speech))
    assert not clean.clipped and "clipping" not in clean.card()
    # Resampling would smear the flat tops: they are counted as decoded, at the file's own rate.
    _, resampled = load_reference((44_100, soxr.resample(clipped, RATE, 44_100).clip(-1, 1)))
    assert resampled.clipped


def test_steps_switched_off_are_not_on_the_card():
    raw = AudioOptions(trim_silence=False, normalize_loudness=False)
    audio, report = load_reference((RATE, _speech()), options=raw)
    assert report.card() == "used as it is" and report.loudness_after_lufs is None
    assert len(audio) == len(_speech())


def test_pyloudnorm_agrees_with_the_reference_meter():
    for name in ("joe_clone.flac", "joe_tune_2.flac"):
        speech = _speech(name)
        for rate in (RATE, 16_000):
            audio = soxr.resample(speech, RATE, rate) if rate != RATE else speech
            assert abs(measure_lufs(audio, rate) - loudness_lufs(audio, rate)) < METERS_AGREE_LU
    t = np.arange(2 * 48_000) / 48_000   # BS.1770: a full-scale 997 Hz sine reads -3.01 LUFS on both
    assert measure_lufs(np.sin(2 * np.pi * 997 * t), 48_000) == pytest.approx(-3.01, abs=0.02)


def test_noisy_clips_are_denoised_when_asked_and_said_so():
    speech = _speech()
    noise = np.random.default_rng(0).standard_normal(speech.size).astype(np.float32)
    noisy = speech + noise * np.sqrt(np.mean(speech**2) / np.mean(noise**2)) * np.float32(10 ** (-10 / 20))
    auto = AudioOptions(denoise="auto")                   # the app's choice (lina_app.settings)
    cleaned, report = load_reference((RATE, noisy), options=auto)
    assert report.denoised and report.noise_margin_db < NOISY_MARGIN_DB
    assert any(line.startswith("light denoise applied") for line in report.lines())
    assert noise_margin_db(cleaned, RATE) > report.noise_margin_db + 2   # the floor went down (light: at most 6 dB)
    _, clean = load_reference((RATE, speech), options=auto)
    assert not clean.denoised and clean.noise_margin_db > NOISY_MARGIN_DB
    _, default = load_reference((RATE, noisy))             # the library's default: never
    assert not default.denoised
