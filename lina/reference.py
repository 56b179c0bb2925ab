"""Clean-up of a reference clip (prompt or tuning clip) before the codec reads it, and its report card.

Steps, in order, each switchable in `lina.audio.AudioOptions` and each recorded in a `CleanupReport`:

1. clipping is detected (runs of samples stuck at the clip's peak, counted before any resampling) and
   reported: it cannot be undone, the visitor is told a cleaner recording clones better;
2. light denoise (`noisereduce`'s stationary spectral gating) of clips whose noise floor sits less than
   `NOISY_MARGIN_DB` under the speech: it helped cloning from noisy clips and slightly hurt clean ones
   (docs/reliability.md "Reference clean-up"), so the app asks for `denoise="auto"`: noisy clips only (a
   steady tone also reads as "noisy": the library's default stays "never");
3. leading and trailing silence trimmed, with a margin;
4. loudness normalized to the target (ITU-R BS.1770 integrated loudness measured by `pyloudnorm`, with
   the exact BS.1770 filter at any sample rate, its "DeMan" class), under a peak ceiling.

`lina.audio_levels.loudness_lufs` is the naive reference of the meter (tests compare the two).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lina.audio_levels import (FRAME_SECONDS, FRAME_STEP_SECONDS, RMS_FLOOR, AudioError, AudioOptions, _speech_frames,
                               _trim, loudness_lufs)

# Clipping: this many samples in a row at the clip's own peak (within CLIP_TOLERANCE of it) form a run;
# more than CLIPPED_SHARE of samples in runs and the clip counts as clipped (a clean peak is one sample).
CLIP_RUN = 3
CLIP_TOLERANCE = 1e-4
CLIPPED_SHARE = 1e-3
LOUDNESS_FILTER = "DeMan"    # pyloudnorm's exact BS.1770 K-weighting (its default approximates it)
MIN_METER_SECONDS = 0.4      # one BS.1770 block: shorter audio is measured by the reference meter
MIN_REPORTED_TRIM_SECONDS = 0.05   # less trimmed than this is not worth a line on the card
DENOISE_STRENGTH = 0.5       # noisereduce's prop_decrease: "light" (half the estimated noise removed)
# Noise margin: the 95th minus the 10th percentile of 20 ms frame levels (dB). Clean speech with pauses
# reads 40-80 dB, white noise at 10 / 20 / 30 dB SNR reads ~16 / ~26 / ~36 dB. Denoise measured at 10 dB SNR.
NOISY_MARGIN_DB = 20.0
LOUD_PERCENTILE, FLOOR_PERCENTILE = 95, 10
DENOISE_MODES = ("auto", "always", "never")
MIN_DENOISE_SECONDS = 0.5    # shorter audio is refused later anyway; the gate needs a few frames to estimate noise


@dataclass(frozen=True)
class CleanupReport:
    """What the clean-up did to one clip (seconds, LUFS); `lines()` is the report card."""

    input_seconds: float
    kept_seconds: float
    trimmed_start_seconds: float = 0.0
    trimmed_end_seconds: float = 0.0
    loudness_before_lufs: float | None = None
    loudness_after_lufs: float | None = None
    peak_limited: bool = False
    clipped_share: float = 0.0
    denoised: bool = False
    noise_margin_db: float | None = None
    notes: tuple[str, ...] = field(default=())

    @property
    def clipped(self) -> bool:
        return self.clipped_share > CLIPPED_SHARE

    def lines(self) -> list[str]:
        """One plain line per step taken (and the clipping verdict)."""
        out = []
        if self.clipped:
            out.append(f"⚠️ clipping: {100 * self.clipped_share:.1f} % of the samples are cut off at the peak "
                       "(distorted); a cleaner recording will clone better")
        if self.denoised:
            margin = f" (noise floor {self.noise_margin_db:.0f} dB under the speech)" if self.noise_margin_db else ""
            out.append(f"light denoise applied{margin}")
        if self.trimmed_start_seconds + self.trimmed_end_seconds >= MIN_REPORTED_TRIM_SECONDS:
            out.append(f"silence trimmed: {self.trimmed_start_seconds:.1f} s at the start, "
                       f"{self.trimmed_end_seconds:.1f} s at the end ({self.kept_seconds:.1f} s kept)")
        if self.loudness_before_lufs is not None and self.loudness_after_lufs is not None:
            limit = " (held down by the peak ceiling)" if self.peak_limited else ""
            out.append(f"loudness {self.loudness_before_lufs:.1f} → {self.loudness_after_lufs:.1f} LUFS{limit}")
        return out + list(self.notes)

    def card(self) -> str:
        return "; ".join(self.lines()) or "used as it is"


def clipped_share(audio: np.ndarray) -> float:
    """Share of the samples of mono `[S]` that sit in runs of `CLIP_RUN`+ at the clip's peak magnitude."""
    magnitude = np.abs(np.asarray(audio, dtype=np.float64))
    peak = magnitude.max(initial=0.0)
    if peak == 0.0:
        return 0.0
    at_peak = np.concatenate([[False], magnitude >= peak * (1 - CLIP_TOLERANCE), [False]])
    edges = np.flatnonzero(np.diff(at_peak.astype(np.int8)))
    runs = edges[1::2] - edges[::2]
    return float(runs[runs >= CLIP_RUN].sum() / magnitude.size)


def measure_lufs(audio: np.ndarray, rate: int) -> float:
    """Integrated loudness of mono `[S]` (pyloudnorm; the reference meter for audio under one block)."""
    if audio.size < MIN_METER_SECONDS * rate:
        return loudness_lufs(audio, rate)
    import pyloudnorm

    value = pyloudnorm.Meter(rate, filter_class=LOUDNESS_FILTER).integrated_loudness(audio.astype(np.float64))
    return float(value) if np.isfinite(value) else loudness_lufs(audio, rate)


def noise_margin_db(audio: np.ndarray, rate: int) -> float:
    """How far the noise floor of mono `[S]` sits under its speech, in dB (see `NOISY_MARGIN_DB`)."""
    size, step = int(FRAME_SECONDS * rate), int(FRAME_STEP_SECONDS * rate)
    if audio.size < size:
        return float("inf")
    starts = np.arange(0, audio.size - size + 1, step)
    cumulative = np.concatenate([[0.0], np.cumsum(audio.astype(np.float64) ** 2)])
    level = 10 * np.log10(np.maximum((cumulative[starts + size] - cumulative[starts]) / size, RMS_FLOOR**2))
    return float(np.percentile(level, LOUD_PERCENTILE) - np.percentile(level, FLOOR_PERCENTILE))


def denoise(audio: np.ndarray, rate: int) -> np.ndarray:
    """Light stationary spectral gating (`noisereduce`), float32 `[S]`."""
    try:
        import noisereduce
    except ImportError:
        raise AudioError("denoising needs the noisereduce package (pip install noisereduce)") from None
    out = noisereduce.reduce_noise(y=audio, sr=rate, stationary=True, prop_decrease=DENOISE_STRENGTH)
    return np.asarray(out, dtype=np.float32)


def clean(audio: np.ndarray, rate: int, options: AudioOptions, clipped: float = 0.0,
          input_seconds: float | None = None) -> tuple[np.ndarray, CleanupReport]:
    """Mono float32 `[S]` at `rate` -> (cleaned `[S']`, report). `clipped`: `clipped_share` of the input as
    decoded (before resampling, which smears the flat tops). Raises `AudioError` for silent or too short
    audio."""
    seconds = input_seconds if input_seconds is not None else audio.size / rate
    if options.denoise not in DENOISE_MODES:
        raise ValueError(f"denoise must be one of {DENOISE_MODES}, got {options.denoise!r}")
    margin = noise_margin_db(audio, rate)
    denoised = audio.size >= MIN_DENOISE_SECONDS * rate and (
        options.denoise == "always" or (options.denoise == "auto" and margin < NOISY_MARGIN_DB))
    if denoised:
        audio = denoise(audio, rate)
    speech = _speech_frames(audio, rate)
    if not speech.any():
        raise AudioError("the audio is silent")
    before = audio.size
    start = end = 0.0
    if options.trim_silence:
        trimmed = _trim(audio, rate, speech, options.trim_margin_seconds)
        first = int(np.flatnonzero(speech)[0]) if trimmed.size else 0
        head = max(0, first * int(FRAME_STEP_SECONDS * rate) - int(options.trim_margin_seconds * rate))
        start, end = head / rate, (before - head - trimmed.size) / rate
        audio = trimmed
    if audio.size < options.min_speech_seconds * rate:
        raise AudioError(f"the audio holds less than {options.min_speech_seconds:g} s of sound")
    peak = float(np.abs(audio).max())
    ceiling = 10 ** (options.peak_dbfs / 20)
    loud_before = loud_after = None
    limited = False
    if options.normalize_loudness:
        loud_before = measure_lufs(audio, rate)
        wanted = 10 ** ((options.target_lufs - loud_before) / 20)
        gain = min(wanted, ceiling / peak)
        limited = gain < wanted
        loud_after = loud_before + 20 * np.log10(gain)
    else:
        # Float input beyond full scale would clip once written as PCM: bring its peak down only.
        gain = min(1.0, ceiling / peak) if peak > 1.0 else 1.0
    out = np.ascontiguousarray(audio * np.float32(gain), dtype=np.float32)
    report = CleanupReport(round(seconds, 3), round(out.size / rate, 3), round(start, 3), round(end, 3),
                           None if loud_before is None else round(loud_before, 2),
                           None if loud_after is None else round(float(loud_after), 2),
                           limited, round(clipped, 5), denoised, round(margin, 1) if np.isfinite(margin) else None)
    return out, report
