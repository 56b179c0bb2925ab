"""Round-trip quality of a codec on clips: PESQ-wb, STOI, SNR, log-mel distance, voicing, codebook usage.

PESQ wide-band is defined at 16 kHz: both signals are resampled (soxr) before scoring. STOI runs at
the clip's rate (pystoi resamples to 10 kHz inside). `pesq` has no wheels for every Python; without it
the PESQ column is None rather than an error. Voicing is the share of 10 ms frames where Praat finds
an F0 (parselmouth; None without it): a codec that makes voices buzzy or breathy moves it.
"""
from __future__ import annotations

import math

import numpy as np
import soxr
import torch

from lina.codec.codec import Codec

PESQ_RATE = 16_000
# Praat pitch search range (the corpus renderer's, lab.training.corpus.generate) and frame step.
PITCH_FLOOR_HZ, PITCH_CEILING_HZ = 60.0, 500.0
PITCH_STEP_S = 0.01
METRICS = ("pesq_wb", "stoi", "snr_db", "mel_l1", "voicing", "voicing_ref")


def _pesq(reference: np.ndarray, degraded: np.ndarray, rate: int) -> float | None:
    try:
        from pesq import pesq
    except ImportError:
        return None
    ref, deg = (soxr.resample(x, rate, PESQ_RATE) for x in (reference, degraded))
    try:
        return float(pesq(PESQ_RATE, ref, deg, "wb"))
    except Exception:  # noqa: BLE001 (pesq raises its own types on silent input)
        return None


def _stoi(reference: np.ndarray, degraded: np.ndarray, rate: int) -> float:
    from pystoi import stoi

    return float(stoi(reference, degraded, rate, extended=False))


def _log_mel_distance(reference: np.ndarray, degraded: np.ndarray) -> float:
    from lab.training.codec.losses import MelLoss

    loss = MelLoss()
    return float(loss(torch.from_numpy(degraded)[None], torch.from_numpy(reference)[None]))


def voicing_share(audio: np.ndarray, rate: int) -> float | None:
    """Share of frames with an F0 (Praat autocorrelation pitch, 10 ms steps) in `audio [S]`."""
    try:
        import parselmouth
    except ImportError:
        return None
    sound = parselmouth.Sound(audio.astype(np.float64), rate)
    f0 = sound.to_pitch(time_step=PITCH_STEP_S, pitch_floor=PITCH_FLOOR_HZ,
                        pitch_ceiling=PITCH_CEILING_HZ).selected_array["frequency"]
    return float(np.mean(f0 > 0)) if len(f0) else 0.0


def score_pair(reference: np.ndarray, degraded: np.ndarray, rate: int) -> dict:
    """Scores of `degraded [S]` against `reference [S]` (same length, same rate)."""
    noise = float(np.sum((reference - degraded) ** 2))
    snr = 10 * math.log10(max(float(np.sum(reference**2)), 1e-12) / max(noise, 1e-12))
    return {"pesq_wb": _pesq(reference, degraded, rate), "stoi": _stoi(reference, degraded, rate),
            "snr_db": snr, "mel_l1": _log_mel_distance(reference, degraded), "voicing": voicing_share(degraded, rate),
            "voicing_ref": voicing_share(reference, rate), "seconds": len(reference) / rate}


def mean_scores(per_clip: dict[str, dict]) -> dict:
    """Mean of each metric over the clips that have it (None when none has)."""
    mean = {}
    for key in METRICS:
        values = [s[key] for s in per_clip.values() if s.get(key) is not None]
        mean[key] = round(float(np.mean(values)), 4) if values else None
    return mean


@torch.inference_mode()
def round_trip(codec: Codec, audio: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`audio [S]` float32 at the codec's rate -> (decoded `[S]`, codes `[T]`)."""
    codes = codec.encode(torch.from_numpy(audio)[None])
    decoded = codec.decode(codes)[0, : len(audio)].float().cpu().numpy()
    return decoded, codes[0].cpu().numpy()


def score_clip(codec: Codec, audio: np.ndarray) -> tuple[dict, np.ndarray]:
    """Scores of one clip and its codes."""
    decoded, codes = round_trip(codec, audio)
    return score_pair(audio, decoded, codec.sample_rate), codes


def evaluate_clips(codec: Codec, clips: dict[str, np.ndarray]) -> dict:
    """Per-clip scores, their means, and the share of codebook entries used over all clips."""
    per_clip, all_codes = {}, []
    for name, audio in clips.items():
        per_clip[name], codes = score_clip(codec, audio)
        all_codes.append(codes)
    mean = mean_scores(per_clip)
    used = np.unique(np.concatenate(all_codes)).size if all_codes else 0
    mean["usage"] = round(used / codec.quantizer.bins, 4)
    mean["clips"] = len(clips)
    return {"mean": mean, "clips": per_clip}
