"""Speaker similarity: cosine of resemblyzer (GE2E) embeddings, offline (the encoder ships in the wheel).

NOT comparable with the WavLM-TDNN "Sim-O" numbers of papers: GE2E scores are higher and compressed
(synthetic voices: same speaker ~0.85, different ~0.55). Every place that shows the number says so,
with ``SIMILARITY_LABEL``. Compare our models with each other, never with published tables.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lab.eval.audio import METRIC_RATE, resample
from lab.eval.tools import ToolUnavailable, shared_tool
from lina.constants import SAMPLE_RATE

SIMILARITY_LABEL = "resemblyzer cosine, not comparable with WavLM Sim-O"
# Shorter audio gives no usable embedding.
MIN_SPEECH_SECONDS = 0.3


@shared_tool
def encoder():
    """The shared resemblyzer VoiceEncoder on CPU (loaded once)."""
    try:
        from resemblyzer import VoiceEncoder
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ToolUnavailable(f"speaker similarity needs resemblyzer ({e}); "
                              "pip install -r requirements-eval.txt") from e
    return VoiceEncoder("cpu", verbose=False)


def speaker_embedding(audio, sr: int) -> np.ndarray | None:
    """L2-normalized 256-d GE2E embedding; None only for empty or all-zero audio (under 0.3 s)."""
    enc = encoder()  # raises ToolUnavailable when resemblyzer is missing
    from resemblyzer import preprocess_wav

    x = resample(audio, sr, METRIC_RATE)
    if x.size < MIN_SPEECH_SECONDS * METRIC_RATE or not np.any(x):
        return None
    from resemblyzer.audio import normalize_volume
    from resemblyzer.hparams import audio_norm_target_dBFS

    trimmed = preprocess_wav(x.astype(np.float32), source_sr=None)  # volume normalization + VAD trimming
    if trimmed.size < MIN_SPEECH_SECONDS * METRIC_RATE:
        # The VAD found (almost) no speech: embed the whole clip, so that noise or mumbling scores low
        # instead of dropping out of the mean (which would flatter a model that often fails).
        trimmed = normalize_volume(x.astype(np.float32), audio_norm_target_dBFS, increase_only=True)
    emb = enc.embed_utterance(trimmed.astype(np.float32))
    return (emb / max(float(np.linalg.norm(emb)), 1e-12)).astype(np.float32)


def mean_embedding(embeddings: Sequence[np.ndarray | None]) -> np.ndarray | None:
    """Speaker embedding from several clips: normalized mean of the clip embeddings (None if none)."""
    kept = [e for e in embeddings if e is not None]
    if not kept:
        return None
    m = np.mean(kept, axis=0)
    return (m / max(float(np.linalg.norm(m)), 1e-12)).astype(np.float32)


def cosine(a: np.ndarray | None, b: np.ndarray | None) -> float | None:
    if a is None or b is None:
        return None
    return float(np.dot(a, b) / max(float(np.linalg.norm(a) * np.linalg.norm(b)), 1e-12))


def speaker_similarity(a, b, sr: int = SAMPLE_RATE, sr_b: int | None = None) -> float | None:
    """Cosine of the embeddings of two clips (``SIMILARITY_LABEL``); None when one holds no speech.

    ``a`` at ``sr`` (the model's 24 kHz by default), ``b`` at ``sr_b`` (default: ``sr``). For
    precomputed embeddings use ``cosine``.
    """
    return cosine(speaker_embedding(a, sr), speaker_embedding(b, sr_b or sr))
