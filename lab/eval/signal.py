"""Signal metrics of a codec round-trip (reference vs decoded, time-aligned): PESQ-wb, STOI, MCD.

- PESQ wide-band (ITU-T P.862.2, package ``pesq``) at 16 kHz: MOS-LQO, about 1.0 (bad) to 4.64 (same).
- STOI (package ``pystoi``) at 16 kHz (resampled to 10 kHz inside): 0..1.
- MCD (ours, numpy/scipy): mel-cepstral distance in dB between frame-aligned mel-cepstra. The
  mel-cepstrum is the real cepstrum of the log amplitude spectrum resampled on the all-pass warped
  frequency axis (alpha 0.42 at 16 kHz, as SPTK uses; spectra floored 80 dB under their peak), coefficients 1..24 (c0, the energy, excluded),
  25 ms Hann frames every 5 ms, frames where the reference is quiet (40 dB under its loudest frame)
  excluded. Frame-aligned, no DTW: meant for round-trips, not for unrelated utterances. Values
  follow the usual scale (identical 0; good vocoders 2-4 dB; different speakers 7+ dB) but are not
  bit-equal with SPTK's iterative ``mcep``.
"""
from __future__ import annotations

import numpy as np

from lab.eval.asr import ToolUnavailable
from lab.eval.audio import METRIC_RATE, resample

MCD_ALPHA = 0.42          # all-pass warping constant for 16 kHz (mel scale approximation)
MCD_ORDER = 24            # cepstral coefficients compared (c1..c24)
MCD_FRAME_S, MCD_HOP_S = 0.025, 0.005
MCD_N_FFT = 1024
MCD_QUIET_DB = 40.0       # frames this far below the loudest reference frame are not compared
_MCD_SCALE = 10.0 / np.log(10.0) * np.sqrt(2.0)
MCD_FLOOR_DB = 80.0       # spectra are floored this far below the loudest bin of the signal


def _aligned(ref, deg, sr: int) -> tuple[np.ndarray, np.ndarray]:
    r, d = resample(ref, sr, METRIC_RATE), resample(deg, sr, METRIC_RATE)
    n = min(r.size, d.size)
    if n < METRIC_RATE // 4:
        raise ValueError(f"need at least 0.25 s of both signals, got {r.size} and {d.size} samples at 16 kHz")
    return r[:n].astype(np.float64), d[:n].astype(np.float64)


def pesq_wb(ref, deg, sr: int) -> float:
    """Wide-band PESQ of ``deg`` against ``ref`` (both at ``sr``; trimmed to the shorter)."""
    try:
        from pesq import pesq
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ToolUnavailable(f"PESQ needs the pesq package ({e})") from e
    r, d = _aligned(ref, deg, sr)
    return float(pesq(METRIC_RATE, r, d, "wb"))


def stoi(ref, deg, sr: int, extended: bool = False) -> float:
    """Short-time objective intelligibility of ``deg`` against ``ref`` (0..1)."""
    try:
        from pystoi import stoi as _stoi
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ToolUnavailable(f"STOI needs the pystoi package ({e})") from e
    r, d = _aligned(ref, deg, sr)
    return float(_stoi(r, d, METRIC_RATE, extended=extended))


def _warped_grid(n_bins: int, alpha: float) -> np.ndarray:
    """Linear frequencies (rad) whose warped frequencies are evenly spaced on [0, pi]."""
    w = np.linspace(0.0, np.pi, n_bins)
    # Inverse of the all-pass warping w~ = w + 2 atan(a sin w / (1 - a cos w)) is the same map with -a.
    return w - 2.0 * np.arctan(alpha * np.sin(w) / (1.0 + alpha * np.cos(w)))


def mel_cepstrum(x: np.ndarray, sr: int = METRIC_RATE, order: int = MCD_ORDER,
                 alpha: float = MCD_ALPHA) -> tuple[np.ndarray, np.ndarray]:
    """Frames of ``x`` -> (mel-cepstra ``[F, order + 1]``, frame energies in dB ``[F]``)."""
    frame, hop = int(MCD_FRAME_S * sr), int(MCD_HOP_S * sr)
    x = np.asarray(x, dtype=np.float64)
    if x.size < frame:
        x = np.pad(x, (0, frame - x.size))
    frames = np.lib.stride_tricks.sliding_window_view(x, frame)[::hop] * np.hanning(frame)
    spec = np.abs(np.fft.rfft(frames, MCD_N_FFT, axis=1))
    energy_db = 10 * np.log10((frames ** 2).mean(axis=1) + 1e-12)
    n_bins = spec.shape[1]
    grid = _warped_grid(n_bins, alpha) / np.pi * (n_bins - 1)      # fractional bin positions
    lo = np.clip(np.floor(grid).astype(int), 0, n_bins - 2)
    frac = grid - lo
    floor = max(float(spec.max()), 1e-12) * 10 ** (-MCD_FLOOR_DB / 20)
    log_amp = np.log(np.maximum(spec, floor))
    warped = log_amp[:, lo] * (1 - frac) + log_amp[:, lo + 1] * frac
    # Real cepstrum of an even spectrum: inverse real FFT of the log amplitude on the warped axis.
    cep = np.fft.irfft(warped, axis=1)[:, : order + 1]
    cep[:, 1:] *= 2.0  # one-sided cepstrum (c_k for k >= 1 counts both symmetric halves)
    return cep, energy_db


def mcd(ref, deg, sr: int) -> float:
    """Mel-cepstral distance in dB (frame-aligned, speech frames of the reference only)."""
    r, d = _aligned(ref, deg, sr)
    cr, er = mel_cepstrum(r)
    cd, _ = mel_cepstrum(d)
    keep = er > er.max() - MCD_QUIET_DB
    diff = cr[keep, 1:] - cd[keep, 1:]
    return float(_MCD_SCALE * np.mean(np.sqrt((diff ** 2).sum(axis=1))))


def codec_roundtrip_metrics(ref, deg, sr: int) -> dict[str, float | None]:
    """``{"pesq_wb", "stoi", "mcd"}`` of a decoded signal against its input; a missing tool gives None."""
    out: dict[str, float | None] = {}
    for name, fn in (("pesq_wb", pesq_wb), ("stoi", stoi), ("mcd", mcd)):
        try:
            out[name] = fn(ref, deg, sr)
        except ToolUnavailable:
            out[name] = None
    return out
