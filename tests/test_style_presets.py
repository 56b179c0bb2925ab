"""Style recognition of preset voices over several sentences (lab/eval/style_presets.py), on the tiny random
model: the per-voice decision, the JSON's structure, and that a voice of another model is skipped."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from lab.eval import style_presets
from lab.eval.style import STYLES


def _p(**probs) -> dict:
    return {s: probs.get(s, 0.0) for s in STYLES}


def test_voice_decision_is_the_argmax_of_mean_probabilities():
    clips = [  # voice a: two clips say sad (0.5, 0.45) but one is very sure of happy: the mean picks happy
        {"voice": "a", "intended": "happy", "model": "relative", "predicted": "sad", "p": _p(sad=0.5, happy=0.3, calm=0.2)},
        {"voice": "a", "intended": "happy", "model": "relative", "predicted": "sad", "p": _p(sad=0.45, happy=0.4, calm=0.15)},
        {"voice": "a", "intended": "happy", "model": "relative", "predicted": "happy", "p": _p(happy=0.95, sad=0.05)},
        {"voice": "b", "intended": "calm", "model": "absolute", "predicted": "neutral", "p": _p(neutral=0.5, calm=0.5)},
    ]
    a, b = style_presets.voice_decisions(clips)
    assert a["voice"] == "a" and a["n"] == 3 and a["hits"] == 1 and a["predicted"] == "happy"
    assert a["p_mean"]["happy"] == pytest.approx(0.55, abs=1e-4) and a["p_mean"]["sad"] == pytest.approx(1 / 3, abs=1e-4)
    assert sum(a["p_mean"].values()) == pytest.approx(1.0, abs=1e-3)
    assert b["predicted"] == "neutral" and b["models"] == ["absolute"]  # a tie goes to the first in STYLES order
    # majority vote would say "sad" for a; the decision is not a vote
    summary = style_presets.summarize(clips)
    assert summary["per_clip"]["n"] == 4 and summary["per_clip"]["accuracy"] == pytest.approx(0.25)
    assert summary["per_voice"]["n"] == 2 and summary["per_voice"]["accuracy"] == pytest.approx(0.5)
    assert summary["recall"]["per_clip"]["happy"] == pytest.approx(1 / 3, abs=1e-4) and summary["recall"]["per_voice"]["sad"] is None


def test_run_writes_json_and_skips_foreign_voices(tmp_path, capsys):
    from lina.tts import LinaTTS
    from lina.voice import Voice

    torch.set_num_threads(1)
    tts = LinaTTS.from_pretrained("tiny-random", device="cpu")
    cfg = tts.model.cfg
    gen = torch.Generator().manual_seed(0)
    shape_k = (cfg.n_tunable_layers, 1, cfg.n_heads, cfg.head_k_dim)
    shape_v = (cfg.n_tunable_layers, 1, cfg.n_heads, cfg.head_v_dim)
    voices = tmp_path / "voices"
    voices.mkdir()
    for st in ("neutral", "happy"):
        Voice(torch.randn(shape_k, generator=gen), torch.randn(shape_v, generator=gen), name=f"Spk {st}", style=st,
              model_id=tts.model_id, extra={"speaker": "spk"}).save(voices / f"spk_{st}.safetensors")
    Voice(torch.randn(shape_k, generator=gen), torch.randn(shape_v, generator=gen), name="Lone", style="sad",
          model_id=tts.model_id).save(voices / "lone_sad.safetensors")  # no speaker: the absolute model
    Voice(torch.zeros(shape_k), torch.zeros(shape_v), style="happy", model_id="someone/other-model").save(voices / "foreign.safetensors")
    Voice(torch.zeros(3, 1, 2, 8), torch.zeros(3, 1, 2, 8), style="happy").save(voices / "wrong_dims.safetensors")
    Voice(torch.zeros(shape_k), torch.zeros(shape_v), style="sleepy", model_id=tts.model_id).save(voices / "odd_style.safetensors")

    out = tmp_path / "out"
    result = style_presets.run(tts, voices, out, n_sentences=2, max_seconds=1.0, log=lambda m: None)
    saved = json.loads((out / "style_presets.json").read_text())
    assert saved["model_id"] == tts.model_id and saved["n_sentences"] == 2 and saved["sentences"] == list(style_presets.SENTENCES[:2])
    assert set(saved["modes"]) == {"auto", "absolute"} and saved["mode"] == "auto"
    notes = " ".join(saved["notes"])
    assert all(f"{n}.safetensors: skipped" in notes for n in ("foreign", "wrong_dims", "odd_style"))
    main = saved["modes"]["auto"]
    assert [s["voice"] for s in saved["synthesis"]] == ["lone_sad", "spk_happy", "spk_neutral"]
    assert len(main["clips"]) == 6 and all((out / c["wav"]).exists() for c in main["clips"])
    assert {c["voice"]: c["model"] for c in main["clips"]} == {"lone_sad": "absolute", "spk_happy": "relative",
                                                                "spk_neutral": "relative"}
    assert main["per_clip"]["n"] == 6 and main["per_voice"]["n"] == 3 and set(main["recall"]["per_voice"]) == set(STYLES)
    for v in main["voices"]:  # each decision is the argmax of the mean of its clips' probabilities
        mean = np.mean([[c["p"][s] for s in STYLES] for c in main["clips"] if c["voice"] == v["voice"]], axis=0)
        assert v["predicted"] == STYLES[int(np.argmax(mean))] and v["n"] == 2
    assert all(c["model"] == "absolute" for c in saved["modes"]["absolute"]["clips"])
    table = style_presets.report(result)
    assert "per voice (auto" in table and "of 3 voices" in table and "| lone_sad | - | sad |" in table and "foreign" in table


def test_synthesis_failure_skips_the_voice(tmp_path):
    class Broken:
        def synthesize(self, text, voice, seed, max_seconds):
            raise RuntimeError("boom")

    voices = [{"id": "x", "file": "x.safetensors", "voice": None, "name": "X", "style": "sad", "speaker": None}]
    items, spoken, notes = style_presets.synthesize(Broken(), voices, ["a b c."], tmp_path, log=lambda m: None)
    assert items == [] and spoken == [] and "x.safetensors: skipped (synthesis failed: RuntimeError: boom)" in notes[0]
