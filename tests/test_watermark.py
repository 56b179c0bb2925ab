"""The watermark (`lina.watermark`): marks speech, finds its mark and not on unmarked clips, changes
nothing above its band, agrees with the plain Perth round trip, and `LinaTTS(watermark=False)` is off."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile
import soxr
import torch

from lina.watermark import (PERTH_RATE, _analyze, _synthesize, apply_watermark, detect_watermark, network,
                            watermark_score)

RATE = 24_000
EXAMPLES = Path(__file__).resolve().parents[1] / "assets" / "examples"
ABOVE_BAND_HZ = 3000          # the mark lives below 2 kHz; leakage of the 2048-point window stays under this
AGREEMENT_SNR_DB = 30         # our delta form vs Perth's whole re-synthesis, measured on the mark itself
SECONDS = 4.0                 # clips are cut to this: detection costs ~0.1 s per second of audio here


def _clip(name: str = "joe_clone.flac", rate: int = RATE) -> np.ndarray:
    audio, source_rate = soundfile.read(EXAMPLES / name, dtype="float32")
    return soxr.resample(audio[: int(SECONDS * source_rate)], source_rate, rate).astype(np.float32)


@pytest.fixture(scope="module")
def clip() -> np.ndarray:
    return _clip()


@pytest.fixture(scope="module")
def marked(clip) -> np.ndarray:
    return apply_watermark(clip, RATE)


def test_mark_is_found_and_unmarked_speech_is_not(clip, marked):
    assert marked.shape == clip.shape and marked.dtype == np.float32
    assert detect_watermark(marked, RATE).present and watermark_score(marked, RATE) > 0.9
    assert not detect_watermark(clip, RATE).present
    for name in ("joe_tune_1.flac", "joe_tune_2.flac"):
        assert watermark_score(_clip(name), RATE) < 0.5


def test_mark_survives_16k_and_file_round_trip(marked, tmp_path):
    assert detect_watermark(soxr.resample(marked, RATE, 16_000), 16_000).present
    soundfile.write(tmp_path / "m.wav", marked, RATE, subtype="PCM_16")
    assert detect_watermark(str(tmp_path / "m.wav")).present   # a path: read as it is


def test_nothing_changes_above_the_marks_band(clip, marked):
    spectrum = np.abs(np.fft.rfft(marked - clip))
    freqs = np.fft.rfftfreq(len(clip), 1 / RATE)
    low = spectrum[freqs < ABOVE_BAND_HZ]
    high = spectrum[freqs >= ABOVE_BAND_HZ]
    assert np.sqrt(np.mean(high**2)) < 0.02 * np.sqrt(np.mean(low**2))


def test_delta_form_matches_perths_whole_resynthesis(clip, marked):
    """Naive reference: Perth's own recipe (resample to 32 kHz, re-synthesize the marked spectrogram, resample
    back); ours adds only the difference the encoder makes. The two marks agree."""
    high = torch.from_numpy(soxr.resample(clip, RATE, PERTH_RATE).astype(np.float32))
    with torch.inference_mode():
        spec, phase = _analyze(high)
        whole = _synthesize(network().embed(spec), phase, len(high)).numpy()
    naive = soxr.resample(whole, PERTH_RATE, RATE)[: len(clip)]
    ours, theirs = marked - clip, naive - clip
    snr = 10 * np.log10(np.sum(theirs**2) / np.sum((ours - theirs) ** 2))
    assert snr > AGREEMENT_SNR_DB, snr
    assert detect_watermark(naive, RATE).present


def test_silence_and_tiny_inputs_pass_through():
    assert np.array_equal(apply_watermark(np.zeros(RATE, np.float32), RATE), np.zeros(RATE, np.float32))
    short = np.full(100, 0.1, np.float32)
    assert np.array_equal(apply_watermark(short, RATE), short)
    assert detect_watermark(np.zeros(RATE, np.float32), RATE).score == 0.0


def test_library_switch():
    from lina.tts import LinaTTS

    tts = LinaTTS.from_pretrained("tiny-random", device="cpu", watermark=False)
    audio = np.random.default_rng(0).standard_normal(RATE).astype(np.float32) * 0.1
    assert tts.mark(audio) is audio
    plain = tts.synthesize("Hello.", max_seconds=1).audio[0]
    tts.watermark = True
    assert not np.array_equal(tts.synthesize("Hello.", max_seconds=1).audio[0], plain)


def test_digital_silence_stays_exactly_silent(clip):
    """Pauses between sentences and dialogue lines are exact zeros; the mark does not leak into them."""
    gap = np.zeros(RATE // 4, np.float32)
    joined = np.concatenate([clip[:RATE], gap, clip[RATE:2 * RATE]])
    marked = apply_watermark(joined, RATE)
    assert not marked[RATE:RATE + len(gap)].any()
    assert detect_watermark(marked, RATE).present


def test_a_missing_package_fails_at_once_with_the_way_out(monkeypatch):
    import importlib.util

    from lina.tts import LinaTTS
    from lina.watermark import WatermarkError

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "perth" else real(name, *a))
    with pytest.raises(WatermarkError, match="pip install resemble-perth.*watermark=False"):
        LinaTTS.from_pretrained("tiny-random", device="cpu")
    assert LinaTTS.from_pretrained("tiny-random", device="cpu", watermark=False).watermark is False
