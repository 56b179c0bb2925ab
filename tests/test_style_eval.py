"""Style recognition (lab/eval/style.py): features on synthetic signals, the committed classifier on
freshly rendered espeak-ng clips of two contrasting styles, and the CLI's confusion table."""
from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
import soundfile

from lab.eval import style

SR = 24_000
SECONDS = 2.0


def _tone(f0: float = 140.0, amp: float = 0.1) -> np.ndarray:
    """A harmonic-rich voiced sound with a slow pitch wobble (Praat needs periodicity, not a pure sine)."""
    t = np.arange(int(SR * SECONDS)) / SR
    phase = 2 * np.pi * np.cumsum(f0 * (1 + 0.05 * np.sin(2 * np.pi * 3 * t))) / SR
    x = sum(np.sin(k * phase) / k for k in range(1, 12))
    return (amp * x / np.abs(x).max()).astype(np.float32)


def test_voiced_fraction_separates_tone_from_noise():
    tone = style.clip_features(_tone(), SR)
    noise = style.clip_features(np.random.default_rng(0).normal(0, 0.03, int(SR * SECONDS)).astype(np.float32), SR)
    assert tone["voiced_fraction"] > 0.9
    assert noise["voiced_fraction"] < 0.2
    assert abs(tone["f0_median_st"] - 12 * np.log2(140 / style.ST_REF_HZ)) < 1.0
    assert noise["flatness"] > tone["flatness"]


def test_level_follows_gain_and_silence_is_undefined():
    quiet, loud = style.clip_features(_tone(amp=0.05), SR), style.clip_features(_tone(amp=0.5), SR)
    assert loud["level_db"] - quiet["level_db"] == pytest.approx(20.0, abs=0.5)
    assert all(np.isnan(v) for v in style.clip_features(np.zeros(SR, np.float32), SR).values())


def test_confusion_table_and_relative_inputs():
    conf = style.confusion(["happy", "sad", "sad"], ["happy", "sad", "calm"])
    assert conf["labels"] == list(style.STYLES) and conf["matrix"][2] == [0, 0, 1, 0, 0, 1]
    assert conf["accuracy"] == pytest.approx(2 / 3)
    table = style.markdown_table(conf)
    assert "| sad | 0 | 0 | 1 | 0 | 0 | 1 | 50% |" in table and "| whisper | 0 | 0 | 0 | 0 | 0 | 0 | - |" in table
    vecs = np.arange(16, dtype=float).reshape(4, 4)
    refs = style.neutral_references(vecs[:3], ["a", "a", "b"], ["neutral", "happy", "happy"])
    assert np.array_equal(refs[1], vecs[0]) and np.isnan(refs[0]).all() and np.isnan(refs[2]).all()
    # The same sentence never serves as reference; ``n`` limits the clips that get one; ``draw`` picks one clip.
    spk, sty, txt = ["a"] * 4, ["happy", "neutral", "neutral", "neutral"], ["x", "x", "y", "z"]
    assert np.array_equal(style.neutral_references(vecs, spk, sty, txt, n=1)[0], vecs[2:].mean(axis=0))
    assert np.array_equal(style.neutral_references(vecs, spk, sty, txt, draw=1, n=1)[0], vecs[3])


def test_committed_model_matches_feature_version():
    models = style.load_models()
    assert set(models) == {"absolute", "relative"}
    assert models["relative"].coef.shape == models["absolute"].coef.shape == (len(style.STYLES), len(style.FEATURES))
    assert style.MODEL_PATH.stat().st_size < 50_000


TRAVIS = {"engine": "espeak", "family": "espeak-en-us-nyc-travis", "formant": 1.0, "id": "espeak-en-us-nyc-travis",
          "pitch": 1.0, "tempo": 0.977, "variant": "travis", "voice": "en-us-nyc"}  # a styled train speaker
TEXTS = ("the mind may be as much cramped by too much knowledge as by ignorance.",
         "she walked along the river until the light was gone.")


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """Neutral, whisper and angry espeak-ng clips of sentences the corpus does not have, rendered as it does."""
    from lab.training.corpus import engines, generate

    if not engines.available("espeak") or importlib.util.find_spec("pyworld") is None:
        pytest.skip("espeak-ng and pyworld are needed (scripts/corpus_setup.sh installs them)")
    folder = tmp_path_factory.mktemp("style")
    items = []
    for st in ("neutral", "whisper", "angry"):
        for i, text in enumerate(TEXTS):
            row = {"id": f"t{st}{i}", "spk": TRAVIS, "speaker": TRAVIS["id"], "style": st, "text": text, "seed": 7 + i}
            path = folder / f"{st}{i}.wav"
            soundfile.write(str(path), generate.render_row(row), generate.SAMPLE_RATE, subtype="FLOAT")
            items.append({"wav": path.name, "style": st, "speaker": TRAVIS["id"], "text": text})
    (folder / "clips.json").write_text(json.dumps(items))
    return folder


@pytest.mark.parametrize("mode", ["absolute", "auto"])
def test_classifier_recognizes_whisper_and_angry(rendered, mode):
    items = [dict(it, wav=rendered / it["wav"]) for it in json.loads((rendered / "clips.json").read_text())
             if mode == "auto" or it["style"] != "neutral"]
    result = style.classify(items, mode=mode)
    contrast = [c for c in result["clips"] if c["intended"] != "neutral"]
    assert [c["predicted"] for c in contrast] == [c["intended"] for c in contrast]
    # auto: each clip has the other sentence's neutral clip as reference, so the relative model is used
    assert {c["model"] for c in result["clips"]} == ({"relative"} if mode == "auto" else {"absolute"})


def test_cli_writes_table_and_json(rendered, capsys):
    out = rendered / "style.json"
    assert style.main(["eval", "--list", str(rendered / "clips.json"), "--mode", "absolute", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "| intended \\ predicted |" in printed and "| whisper |" in printed
    saved = json.loads(out.read_text())
    assert saved["overall"]["n"] == 6 and len(saved["clips"]) == 6 and saved["mode"] == "absolute"
