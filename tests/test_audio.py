"""User audio in (any rate, channels, sample type, container) and out (int16), by the numbers."""
from __future__ import annotations

import io
import shutil
import subprocess

import numpy as np
import pytest
import soundfile
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from lina.audio import TARGET_LUFS, AudioError, AudioOptions, load_audio, loudness_lufs, to_int16
from lina.constants import SAMPLE_RATE

RAW = AudioOptions(trim_silence=False, normalize_loudness=False)
TONE_HZ = 440.0


def tone(rate: int, seconds: float = 1.0, amplitude: float = 0.5, hz: float = TONE_HZ) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return amplitude * np.sin(2 * np.pi * hz * t)


def dominant_hz(audio: np.ndarray, rate: int) -> float:
    """Peak of the zero-padded spectrum, refined by parabolic interpolation."""
    size = 8 * len(audio)
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(len(audio)), n=size))
    k = int(np.argmax(spectrum))
    left, mid, right = np.log(spectrum[k - 1 : k + 2])
    return (k + 0.5 * (left - right) / (left - 2 * mid + right)) * rate / size


def rms_db(audio: np.ndarray) -> float:
    return 20 * np.log10(np.sqrt(np.mean(np.square(audio, dtype=np.float64))))


# --- rates, channels, sample types ----------------------------------------------------------------


@pytest.mark.parametrize("rate", [8000, 16000, 22050, 44100, 48000, 96000])
def test_tone_keeps_frequency_and_level(rate):
    source = tone(rate)
    audio = load_audio((rate, (source * 32767).astype(np.int16)), options=RAW)
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert abs(len(audio) - SAMPLE_RATE) <= 1
    middle = audio[2400:-2400]  # away from the resampler's edge transients
    assert abs(dominant_hz(middle, SAMPLE_RATE) - TONE_HZ) < 0.5
    assert abs(rms_db(middle) - rms_db(source)) < 0.05


def test_stereo_44k1_float_channels_last_and_first():
    rate = 44100
    left, right = tone(rate), tone(rate, amplitude=0.25)
    last = np.stack([left, right], axis=1).astype(np.float32)  # [S, C]: Gradio, soundfile
    first = last.T.copy()  # [C, S]: torch, librosa
    a, b = load_audio((rate, last), options=RAW), load_audio((rate, first), options=RAW)
    np.testing.assert_array_equal(a, b)
    # Downmix is the channel mean: amplitude (0.5 + 0.25) / 2.
    expected = 20 * np.log10(0.375 / np.sqrt(2))
    assert abs(rms_db(a[2400:-2400]) - expected) < 0.05
    assert abs(dominant_hz(a[2400:-2400], SAMPLE_RATE) - TONE_HZ) < 0.5


def test_opposite_channels_cancel_to_silence():
    x = tone(24000)
    with pytest.raises(AudioError, match="silent"):
        load_audio((24000, np.stack([x, -x], axis=1)))


@pytest.mark.parametrize(
    "dtype, scale, offset",
    [(np.int16, 2**15, 0), (np.int32, 2**31, 0), (np.uint8, 2**7, 2**7), (np.float64, 1, 0), (np.float16, 1, 0)],
)
def test_sample_types_are_scaled_to_unit_range(dtype, scale, offset):
    x = tone(SAMPLE_RATE)
    samples = np.round(x * (scale - 1) + offset).astype(dtype) if scale > 1 else x.astype(dtype)
    audio = load_audio((SAMPLE_RATE, samples), options=RAW)
    tolerance = 2.0 / scale if scale > 1 else 1e-3
    np.testing.assert_allclose(audio, x, atol=tolerance)


def test_float_beyond_full_scale_is_brought_under_the_ceiling():
    audio = load_audio((SAMPLE_RATE, 3.0 * tone(SAMPLE_RATE)), options=RAW)
    assert abs(np.abs(audio).max() - 10 ** (-1 / 20)) < 1e-3


# --- files ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt, subtype", [("WAV", "PCM_16"), ("WAV", "FLOAT"), ("FLAC", "PCM_24"), ("OGG", "VORBIS")])
def test_files_and_bytes(tmp_path, fmt, subtype):
    rate = 44100
    stereo = np.stack([tone(rate), tone(rate)], axis=1)
    path = tmp_path / f"clip.{fmt.lower()}"
    soundfile.write(path, stereo, rate, format=fmt, subtype=subtype)
    from_path = load_audio(path, options=RAW)
    from_bytes = load_audio(path.read_bytes(), options=RAW)
    np.testing.assert_array_equal(from_path, from_bytes)
    assert abs(dominant_hz(from_path[2400:-2400], SAMPLE_RATE) - TONE_HZ) < 0.5
    level_tolerance = 0.5 if subtype == "VORBIS" else 0.05  # lossy codec
    assert abs(rms_db(from_path[2400:-2400]) - rms_db(tone(rate))) < level_tolerance


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed (scripts/setup.sh installs it)")
def test_formats_libsndfile_lacks_go_through_ffmpeg(tmp_path):
    wav, m4a = tmp_path / "clip.wav", tmp_path / "clip.m4a"
    soundfile.write(wav, tone(44100), 44100)
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(wav), str(m4a)], check=True)
    audio = load_audio(m4a, options=RAW)
    assert abs(dominant_hz(audio[4800:-4800], SAMPLE_RATE) - TONE_HZ) < 0.5
    np.testing.assert_array_equal(load_audio(m4a.read_bytes(), options=RAW), audio)
    with pytest.raises(AudioError, match="unreadable"):
        load_audio(b"\x00\x01garbage")


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed (scripts/setup.sh installs it)")
def test_too_long_through_ffmpeg_reports_the_real_length(tmp_path):
    """ffmpeg converts only just past the limit; the message still gives the file's own length."""
    mp3 = tmp_path / "long.mp3"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "sine=frequency=220:sample_rate=8000:duration=180",
                    "-b:a", "16k", str(mp3)], check=True)
    with pytest.raises(AudioError, match=r"the audio is 180\.\d s long; the limit is 60 s"):
        load_audio(mp3)


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed (scripts/setup.sh installs it)")
def test_refusals_name_no_exception_class_nor_path(tmp_path):
    for name, data in (("junk.m4a", b"\x00\x01garbage" * 50), ("junk.wav", b"RIFF not really a wave file")):
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(AudioError) as caught:
            load_audio(path)
        message = str(caught.value)
        assert message.startswith("unreadable audio file: it is not audio"), message
        assert "Error" not in message and str(tmp_path) not in message, message


def test_unreadable_and_oversized_files(tmp_path):
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"RIFF not really a wave file")
    with pytest.raises(AudioError, match="unreadable"):
        load_audio(junk)
    with pytest.raises(AudioError, match="unreadable"):
        load_audio(b"\x00\x01garbage")
    with pytest.raises(AudioError, match="no audio file"):
        load_audio(tmp_path / "missing.wav")
    soundfile.write(tmp_path / "big.wav", tone(24000), 24000)
    with pytest.raises(AudioError, match="larger than"):
        load_audio(tmp_path / "big.wav", options=AudioOptions(max_file_bytes=1000))


def test_too_long_is_refused_before_decoding(tmp_path):
    path = tmp_path / "long.flac"
    soundfile.write(path, np.zeros(8000 * 61, dtype=np.int16), 8000)
    with pytest.raises(AudioError, match="61.0 s long"):
        load_audio(path)
    with pytest.raises(AudioError, match="limit is 60"):
        load_audio((8000, np.zeros((8000 * 61, 2), dtype=np.int16)))


# --- trimming and loudness -------------------------------------------------------------------------


def test_silence_is_trimmed_with_margins():
    rate = 16000
    quiet = np.random.default_rng(0).normal(0, 1e-4, rate)  # -80 dBFS room noise
    clip = np.concatenate([quiet, tone(rate), quiet])
    audio = load_audio((rate, clip), options=AudioOptions(normalize_loudness=False))
    margin = AudioOptions().trim_margin_seconds
    assert abs(len(audio) / SAMPLE_RATE - (1.0 + 2 * margin)) < 0.025


def test_loudness_is_normalized_under_the_peak_ceiling():
    rate = 24000
    speechlike = tone(rate, 2.0, 0.05) * (1 + 0.5 * np.sin(2 * np.pi * 3 * np.arange(2 * rate) / rate))
    audio = load_audio((rate, speechlike))
    assert abs(loudness_lufs(audio, SAMPLE_RATE) - AudioOptions().target_lufs) < 0.05
    # A click train is loud at its peaks but quiet on average: the ceiling wins.
    clicks = np.zeros(rate)
    clicks[::2400] = 0.9
    clicks += tone(rate, amplitude=0.01)
    peaky = load_audio((rate, clicks), options=AudioOptions(trim_silence=False))
    assert np.abs(peaky).max() <= 10 ** (-1 / 20) + 1e-6


def test_default_loudness_is_the_training_level():
    # EBU R128's -23 LUFS: where lina-mini's training corpus sits (measured -23.2 LUFS on its test split).
    assert TARGET_LUFS == -23.0 and AudioOptions().target_lufs == TARGET_LUFS
    rate = 24000
    speechlike = tone(rate, 2.0, 0.3) * (1 + 0.5 * np.sin(2 * np.pi * 3 * np.arange(2 * rate) / rate))
    assert abs(loudness_lufs(load_audio((rate, speechlike)), SAMPLE_RATE) + 23.0) < 0.05
    louder = load_audio((rate, speechlike), options=AudioOptions(target_lufs=-20.0))
    assert abs(loudness_lufs(louder, SAMPLE_RATE) + 20.0) < 0.05


def test_loudness_meter_reference_levels():
    # BS.1770: a full-scale 997 Hz sine in one channel reads -3.01 LUFS.
    assert abs(loudness_lufs(tone(48000, 2.0, 1.0, 997.0), 48000) + 3.01) < 0.02
    assert abs(loudness_lufs(tone(24000, 2.0, 0.5, 997.0), 24000) + 9.03) < 0.05


# --- refusals --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "source, message",
    [
        ((24000, np.zeros(0)), "empty"),
        ((24000, np.zeros(24000)), "silent"),
        ((24000, np.full(24000, np.nan)), "NaN"),
        ((24000, tone(24000, 0.2)), "less than 0.5 s"),
        ((0, tone(24000)), "sample rate"),
        ((-8000, tone(24000)), "sample rate"),
        (("24000", tone(24000)), "invalid sample rate"),
        ((24000.5, tone(24000)), "invalid sample rate"),
        ((24000, np.zeros((2, 3, 4000))), "expected samples"),
        ((24000, np.zeros((400, 400))), "cannot tell channels"),
        ((24000, tone(24000).astype(np.complex64)), "not numbers"),
        ((24000, np.array(["a", "b"])), "not numbers"),
        ((24000, [[0.1, 0.2], [0.3]]), "unreadable samples"),
        ((24000,), "expected"),
        (12345, "unsupported"),
        (None, "unsupported"),
    ],
)
def test_bad_inputs_raise_audio_error(source, message):
    with pytest.raises(AudioError, match=message):
        load_audio(source)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rate=st.sampled_from([1, 8000, 11025, 24000, 44100, 192000, 10**7]),
    samples=hnp.arrays(
        dtype=st.sampled_from([np.int8, np.int16, np.int32, np.uint8, np.float32, np.float64]),
        shape=st.one_of(
            st.tuples(st.integers(1, 30000)),
            st.tuples(st.integers(1, 20000), st.integers(1, 3)),
            st.tuples(st.integers(1, 3), st.integers(1, 20000)),
            hnp.array_shapes(min_dims=2, max_dims=3, max_side=20),
        ),
    ),
)
def test_anything_gives_clean_audio_or_audio_error(rate, samples):
    try:
        audio = load_audio((rate, samples))
    except AudioError:
        return
    assert audio.dtype == np.float32 and audio.ndim == 1 and audio.size > 0
    assert np.isfinite(audio).all() and np.abs(audio).max() <= 1.0


# --- output ----------------------------------------------------------------------------------------


def test_to_int16():
    x = np.array([-2.0, -1.0, -0.5, 0.0, 1e-6, 0.5, 1.0, 2.0], dtype=np.float32)
    expected = np.array([-32767, -32767, -16384, 0, 0, 16384, 32767, 32767], dtype=np.int16)
    np.testing.assert_array_equal(to_int16(x), expected)
    np.testing.assert_array_equal(to_int16(torch.from_numpy(x)), expected)
    assert to_int16(np.zeros((2, 3))).shape == (2, 3)


def test_int16_roundtrip_through_a_file():
    audio = load_audio((SAMPLE_RATE, tone(SAMPLE_RATE)))
    buffer = io.BytesIO()
    soundfile.write(buffer, to_int16(audio), SAMPLE_RATE, format="WAV")
    again = load_audio(buffer.getvalue(), options=RAW)
    np.testing.assert_allclose(again, audio, atol=1.0 / 32767)
