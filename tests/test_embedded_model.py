"""The shipped embedded models (assets/lina-mini: the LM and lina-codec-mini) load offline and work."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soxr
import torch

from lina.codec.codec import Codec
from lina.constants import SAMPLE_RATE

ASSETS = Path(__file__).resolve().parents[1] / "assets" / "lina-mini"
# Measured on 45 test-split clips of unseen speakers (model card): STOI 0.78, log-mel L1 0.59.
# The bounds leave room for one clip's spread; a broken or mismatched codec gives STOI ~0.2-0.4.
MIN_STOI = 0.6
MAX_MEL_L1 = 0.9


@pytest.fixture(scope="module")
def flite_clip() -> np.ndarray:
    from lab.training.corpus import engines

    audio, rate = engines.flite("the shipped codec must keep this sentence easy to understand.", "slt")
    return soxr.resample(np.asarray(audio, dtype=np.float32), rate, SAMPLE_RATE).astype(np.float32)


def test_shipped_codec_round_trips_an_unseen_voice(flite_clip):
    from lab.training.codec.evaluate import score_clip

    codec = Codec.from_pretrained(ASSETS / "codec")
    assert codec.quantizer.bins == 4096 and codec.hop_length == 320
    scores, codes = score_clip(codec, flite_clip)
    assert scores["stoi"] >= MIN_STOI, scores
    assert scores["mel_l1"] <= MAX_MEL_L1, scores
    assert len(np.unique(codes)) > 20  # not collapsed onto a few entries


def test_lina_mini_loads_offline_and_speaks():
    from lina.tts import LinaTTS

    tts = LinaTTS.from_pretrained(str(ASSETS))
    assert tts.model.cfg.model_id.startswith("lina-mini-")
    assert all(p.dtype == torch.float32 for p in tts.model.parameters())  # fp16 on disk, fp32 to compute
    out = tts.synthesize("it was a bright cold day in april.", seed=0)
    audio = np.asarray(out.audio if not isinstance(out.audio, list) else out.audio[0], dtype=np.float32)
    assert all(out.finished)  # stopped on EOS, not on the length cap
    assert 0.8 < len(audio) / SAMPLE_RATE < 6.0
    assert float(np.sqrt(np.mean(audio**2))) > 0.01  # not silent
