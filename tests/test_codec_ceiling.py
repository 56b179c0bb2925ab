"""Codec v2 lab pieces: the fixed held-out manifest and its clips, the ceiling variants, voicing."""
from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
import torch

from lab.training.codec.ceiling import VARIANTS, ceiling, stft_same, table
from lab.training.codec.configs import TINY
from lab.training.codec.evaluate import voicing_share
from lab.training.codec.heldout import (
    CLIPS_JSON,
    HELDOUT_MANIFEST,
    clips_fingerprint,
    load_clips,
    render_heldout,
)
from lab.training.corpus.manifest import read_jsonl, write_jsonl
from lina.codec.codec import Codec
from lina.codec.istft_head import istft_same

RATE = 24_000


def _tone(seconds: float, f0: float, seed: int = 0) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    rng = np.random.default_rng(seed)
    return (0.3 * sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 6)) + 0.001 * rng.standard_normal(len(t))).astype(np.float32)


def _tiny_codec() -> Codec:
    torch.manual_seed(0)
    codec = Codec(TINY).eval()
    codec.quantizer.codebook.data.normal_()
    return codec


def test_heldout_manifest_is_small_fixed_and_renderable_row_by_row():
    rows = read_jsonl(HELDOUT_MANIFEST)
    assert HELDOUT_MANIFEST.stat().st_size <= 100_000
    assert len(rows) == 32 and len({r["id"] for r in rows}) == 32 and len({r["text"] for r in rows}) == 32
    assert {r["engine"] for r in rows} == {"piper", "espeak", "flite", "kokoro"}
    for row in rows:  # every row carries what render_row needs
        assert row["spk"]["engine"] == row["engine"] and row["style"] == "neutral" and isinstance(row["seed"], int)


def test_rebuilding_the_manifest_gives_the_committed_file(tmp_path):
    import subprocess
    import sys

    out = tmp_path / "h.jsonl"
    subprocess.run([sys.executable, "lab/scripts/codec_heldout_build.py", "--out", str(out)], check=True, capture_output=True)
    assert out.read_bytes() == HELDOUT_MANIFEST.read_bytes()


def test_render_is_deterministic_and_fingerprinted(tmp_path):
    from lab.training.corpus.engines import available

    if not available("flite"):
        pytest.skip("flite is not installed (scripts/corpus_setup.sh --tests)")
    rows = [r for r in read_jsonl(HELDOUT_MANIFEST) if r["engine"] == "flite"][:1]
    write_jsonl(tmp_path / "m.jsonl", rows)
    first = render_heldout(tmp_path / "a", tmp_path / "m.jsonl", log=lambda _: None)
    second = render_heldout(tmp_path / "b", tmp_path / "m.jsonl", log=lambda _: None)
    assert first["fingerprint"] == second["fingerprint"] and list(first["clips"]) == [rows[0]["id"]]
    clips = load_clips(tmp_path / "a")
    assert clips_fingerprint(clips) == json.loads((tmp_path / "a" / CLIPS_JSON).read_text())["fingerprint"]
    assert 2.0 < len(clips[rows[0]["id"]]) / RATE < 7.0


def test_load_clips_rejects_other_rates(tmp_path):
    sf.write(str(tmp_path / "x.wav"), np.zeros(1600, np.float32), 16_000)
    with pytest.raises(ValueError, match="24000 Hz"):
        load_clips(tmp_path)


@pytest.mark.parametrize("length", [320 * 7, 320 * 7 + 123])
def test_stft_same_inverts_through_the_head_synthesis(length):
    wav = torch.randn(2, length)
    window = torch.hann_window(1280)
    spec = stft_same(wav, window, 320)
    assert spec.shape == (2, 641, -(-length // 320))
    back = istft_same(spec, window, 320)[:, :length]
    assert torch.allclose(back, wav, atol=1e-5)


def test_voicing_share_tells_a_tone_from_noise():
    tone = _tone(1.0, 150.0)
    noise = (0.3 * np.random.default_rng(0).standard_normal(RATE)).astype(np.float32)
    assert voicing_share(tone, RATE) > 0.9
    assert voicing_share(noise, RATE) < 0.1


def test_ceiling_scores_every_variant_and_groups():
    codec = _tiny_codec()
    clips = {"a": _tone(1.0, 120.0), "b": _tone(1.2, 210.0, seed=1)}
    report = ceiling(codec, clips, {"a": "x", "b": "y"})
    for variant in VARIANTS:
        assert report["clips"]["a"][variant]["seconds"] == pytest.approx(1.0)
    # The analysis/synthesis of the head's own STFT is (numerically) the input.
    assert report["mean"]["istft"]["snr_db"] > 80 and report["mean"]["istft"]["stoi"] > 0.99
    assert report["mean"]["istft"]["mel_l1"] < 1e-3
    # A random tiny codec is nowhere near.
    assert report["mean"]["codec"]["snr_db"] < 10
    assert 0 <= report["mean"]["rel_quant_error"] and 0 < report["mean"]["usage"] <= 1
    assert set(report["by_group"]) == {"x", "y"} and report["by_group"]["x"]["clips"] == 1
    markdown = table(report)
    assert markdown.count("\n") == 1 + 3 * 3 and "| all (2) | istft |" in markdown
