"""Round-trip quality of a codec on clips: PESQ-wb, STOI, SNR, log-mel distance and codebook usage.

PESQ wide-band is defined at 16 kHz: both signals are resampled (soxr) before scoring. STOI runs at
the clip's rate (pystoi resamples to 10 kHz inside). `pesq` has no wheels for every Python; without it
the PESQ column is None rather than an error.
"""
from __future__ import annotations

import math

import numpy as np
import soxr
import torch

from lina.codec.codec import Codec

PESQ_RATE = 16_000


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
    from lina.training.codec.losses import MelLoss

    loss = MelLoss()
    return float(loss(torch.from_numpy(degraded)[None], torch.from_numpy(reference)[None]))


@torch.inference_mode()
def round_trip(codec: Codec, audio: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`audio [S]` float32 at the codec's rate -> (decoded `[S]`, codes `[T]`)."""
    codes = codec.encode(torch.from_numpy(audio)[None])
    decoded = codec.decode(codes)[0, : len(audio)].float().cpu().numpy()
    return decoded, codes[0].cpu().numpy()


def score_clip(codec: Codec, audio: np.ndarray) -> tuple[dict, np.ndarray]:
    """Scores of one clip and its codes."""
    decoded, codes = round_trip(codec, audio)
    noise = float(np.sum((audio - decoded) ** 2))
    snr = 10 * math.log10(float(np.sum(audio**2)) / max(noise, 1e-12))
    scores = {"pesq_wb": _pesq(audio, decoded, codec.sample_rate), "stoi": _stoi(audio, decoded, codec.sample_rate),
              "snr_db": snr, "mel_l1": _log_mel_distance(audio, decoded), "seconds": len(audio) / codec.sample_rate}
    return scores, codes


def evaluate_clips(codec: Codec, clips: dict[str, np.ndarray]) -> dict:
    """Per-clip scores, their means, and the share of codebook entries used over all clips."""
    per_clip, all_codes = {}, []
    for name, audio in clips.items():
        per_clip[name], codes = score_clip(codec, audio)
        all_codes.append(codes)
    keys = ("pesq_wb", "stoi", "snr_db", "mel_l1")
    mean = {}
    for key in keys:
        values = [s[key] for s in per_clip.values() if s[key] is not None]
        mean[key] = round(float(np.mean(values)), 4) if values else None
    used = np.unique(np.concatenate(all_codes)).size if all_codes else 0
    mean["usage"] = round(used / codec.quantizer.bins, 4)
    mean["clips"] = len(clips)
    return {"mean": mean, "clips": per_clip}
