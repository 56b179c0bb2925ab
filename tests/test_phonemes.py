"""The phoneme front end: G2P (gruut, fast path vs gruut as shipped), the phoneme tokenizer,
``LinaConfig.text_frontend``, model folders, LinaTTS on hostile text, and a tiny LM trained on phonemes.

Needs gruut + gruut-lang-en (requirements.txt); skipped with that reason where they are absent.
"""
from __future__ import annotations

import dataclasses
import json
import warnings
from pathlib import Path

import pytest
import torch

pytest.importorskip("gruut", reason="the phoneme front end needs gruut (requirements.txt)")

from test_lm_training import TINY_SETTINGS, fake_codes_dir  # noqa: E402  # isort: skip

from lab.training.lm import phonemes as lm_phonemes  # noqa: E402
from lab.training.lm.__main__ import main  # noqa: E402
from lab.training.lm.checkpoint import load as load_checkpoint  # noqa: E402
from lab.training.lm.train import RunOptions, train  # noqa: E402
from lina.config import LinaConfig  # noqa: E402
from lina.g2p import G2P  # noqa: E402
from lina.phoneme_tokenizer import DEFAULT_SYMBOLS, PHONEMES, PhonemeTokenizer, PhonemeWarning  # noqa: E402
from lina.pretrained import character_tokenizer, load_folder, save_folder, tiny_random  # noqa: E402
from lina.text_frontend import tokenizer_from_str  # noqa: E402
from lina.tokenizer import TextError, TextTokenizer, prepare_text  # noqa: E402

ASSETS = Path(__file__).resolve().parents[1] / "assets" / "lina-mini"
# Known words -> what gruut-lang-en 2.0.1 reads (its lexicon; "read" by part of speech).
KNOWN = {
    "hello, world.": "hɛlˈoʊ, wˈɚld.",
    "the cat sat on the mat!": "ðə kˈæt sˈæt ˈɔn ðə mˈæt!",
    "i'll read; you read.": "ˈaɪl ɹˈid; jˈu ɹˈɛd.",
    "thinking of judge george?": "θˈɪŋkɪŋ əv d͡ʒˈʌd͡ʒ d͡ʒˈɔɹd͡ʒ?",
}
SENTENCES = ["the quick brown fox jumps over the lazy dog, and then it read a book about tardigrades.",
             "wollongong's mayor said the blicket was fresher than zoombombing, wasn't it?",
             '"quoted" (parenthesis) ... and a - dash; well-known: yes!']


@pytest.fixture(scope="module")
def tok() -> PhonemeTokenizer:
    return PhonemeTokenizer.default()


def test_fast_g2p_equals_gruut_as_shipped():
    fast, reference = G2P.shared(), G2P(fast=False)
    for text in [*SENTENCES, *KNOWN]:
        assert fast.words(text) == reference.words(text), text
    assert fast.words("   ") == [] and fast.words("") == []


def test_known_words_round_trip(tok):
    for text, phonemes in KNOWN.items():
        ids = tok.encode(text)
        assert ids[0] == tok.bos_id == 1 and ids[-1] == tok.eos_id == 2 and tok.pad_id == 0
        assert tok.decode(ids) == phonemes
    # Stress is its own id, before the vowel: "cat" = k ˈ æ t.
    cat = tok.encode("cat")[1:-1]
    assert [tok.symbols[i - 3] for i in cat] == ["k", "ˈ", "æ", "t"]


def test_vocabulary_layout_and_storage(tok):
    assert tok.vocab_size == 3 + len(DEFAULT_SYMBOLS) == 56 and len(PHONEMES) == 40
    assert tok.symbols[0] == " " and tok.g2p_name.startswith("gruut 2.4.0")
    again = PhonemeTokenizer.from_str(tok.to_str())
    assert again.symbols == tok.symbols and again.g2p_name == tok.g2p_name
    assert again.encode(SENTENCES[0]) == tok.encode(SENTENCES[0])
    assert isinstance(tokenizer_from_str("phonemes", tok.to_str()), PhonemeTokenizer)
    for bad in ("{", "[]", json.dumps({"format": "other"}), tok.to_str().replace('"version": 1', '"version": 9')):
        with pytest.raises(ValueError, match="phoneme vocabulary"):
            PhonemeTokenizer.from_str(bad)
    with pytest.raises(ValueError, match="word boundary"):
        PhonemeTokenizer(("a", "b"))


def test_symbols_outside_the_vocabulary_are_dropped_with_a_reason():
    small = PhonemeTokenizer([s for s in DEFAULT_SYMBOLS if s != "θ"], g2p="test")
    with pytest.warns(PhonemeWarning, match="'θ'"):
        ids = small.encode("three")
    assert small.decode(ids) == "ɹˈi"


def test_config_round_trip(tmp_path):
    cfg = LinaConfig(d_model=64, n_layer=1, n_heads=2, text_layers=1, text_heads=2, text_frontend="phonemes")
    cfg.save(tmp_path / "config.json")
    assert json.loads((tmp_path / "config.json").read_text())["text_frontend"] == "phonemes"
    assert LinaConfig.load(tmp_path / "config.json") == cfg
    assert LinaConfig().text_frontend == "bpe"
    # lina-mini v1's config.json predates the field: it reads as BPE, unchanged.
    assert "text_frontend" not in json.loads((ASSETS / "config.json").read_text())
    assert LinaConfig.load(ASSETS / "config.json").text_frontend == "bpe"
    with pytest.raises(ValueError, match="text_frontend"):
        LinaConfig(text_frontend="characters")


def test_model_folder_keeps_its_front_end(tmp_path):
    bundle = tiny_random("phonemes")
    save_folder(bundle, tmp_path / "ph")
    assert (tmp_path / "ph" / "phonemes.json").exists() and not (tmp_path / "ph" / "tokenizer.json").exists()
    loaded = load_folder(tmp_path / "ph")
    assert isinstance(loaded.tokenizer, PhonemeTokenizer) and loaded.model.cfg.text_frontend == "phonemes"
    assert loaded.tokenizer.symbols == bundle.tokenizer.symbols
    (tmp_path / "ph" / "phonemes.json").unlink()
    with pytest.raises(Exception, match="phonemes.json"):
        load_folder(tmp_path / "ph")
    with pytest.raises(ValueError, match="tokenizer is 'bpe'"):  # a phoneme model with a BPE tokenizer
        save_folder(dataclasses.replace(bundle, tokenizer=character_tokenizer()), tmp_path / "bad")
    bpe = tiny_random()
    save_folder(bpe, tmp_path / "bpe")
    assert isinstance(load_folder(tmp_path / "bpe").tokenizer, TextTokenizer)


def test_a_phoneme_model_without_gruut_fails_at_load_in_plain_words(tmp_path, monkeypatch):
    import lina.g2p

    save_folder(tiny_random("phonemes"), tmp_path / "ph")

    def missing(*_):
        raise lina.g2p.G2PError(lina.g2p._missing_message(ImportError("No module named 'gruut'")))
    monkeypatch.setattr(lina.g2p.G2P, "shared", classmethod(missing))
    with pytest.raises(lina.g2p.G2PError, match="pip install gruut==2.4.0"):
        load_folder(tmp_path / "ph")


HOSTILE = ["Dr. O'Neill paid $1,234.56 on 3/4/2021 at 10:30pm — 50% off!", "naïve café Ærøskøbing Straße",
           "日本語 and English 🙂", "[BOS] hello [EOS] [PAD]", "a\x00b\u200bc\ttab\nnew line", "A" * 300,
           "wug" * 40, "C++ & C# @home #1", "¿¡Qué?!", "x"]


def test_linatts_on_a_tiny_phoneme_model_and_hostile_text():
    from lina.tts import LinaTTS

    tts = LinaTTS(tiny_random("phonemes"), device="cpu")
    out = tts.synthesize("Zelensky met the quokka in Wollongong.", max_seconds=0.3, seed=0)
    assert out.tokens > 0 and len(out.audio[0]) > 0 and out.text == ["zelensky met the quokka in wollongong."]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # dropped characters are warned about; that is tested in test_text
        for text in HOSTILE:
            prepared = prepare_text(text, tts.tokenizer)
            assert prepared.ids[0] == 1 and prepared.ids[-1] == 2 and len(prepared.ids) > 2, text
            assert all(3 <= i < tts.tokenizer.vocab_size for i in prepared.ids[1:-1])
        for nothing in ["🙂🙂", "...", "   ", "\u200b", "!?", "日本語", "'''\"\"\"((()))"]:
            with pytest.raises(TextError):
                tts.synthesize(nothing, max_seconds=0.1)
        with pytest.raises(TextError, match="tokens long"):
            prepare_text("hello " * 50, tts.tokenizer, max_tokens=64)
        out = tts.synthesize(" ".join(HOSTILE[:3]), max_seconds=0.2, seed=0)
        assert out.tokens > 0


@pytest.mark.slow  # two worker processes, each importing torch and gruut
def test_parallel_encoding_equals_the_reference(tok, monkeypatch):
    texts = [*SENTENCES, *KNOWN, SENTENCES[0]]
    monkeypatch.setattr(lm_phonemes, "PARALLEL_MIN_TEXTS", 1)
    monkeypatch.setattr(lm_phonemes, "CHUNK_TEXTS", 3)
    assert lm_phonemes.encode_texts(tok, texts, workers=2) == [tok.encode(t) for t in texts]


@pytest.fixture(scope="module")
def phoneme_run(tmp_path_factory) -> tuple[Path, Path]:
    codes = fake_codes_dir(tmp_path_factory.mktemp("codes"), n_train=60, n_eval=8)
    run = tmp_path_factory.mktemp("run")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train(codes, run, {**TINY_SETTINGS, "text_frontend": "phonemes"},
              RunOptions(log_every=1, val_every=0, stop_at=3, device="cpu"))
    finally:
        torch.set_num_threads(threads)
    return codes, run


def test_tiny_lm_trains_resumes_and_exports_with_phonemes(phoneme_run, tmp_path):
    from lina.tts import LinaTTS

    codes, run = phoneme_run
    ckpt = load_checkpoint(run)
    assert ckpt["config"]["text_frontend"] == "phonemes" and ckpt["settings"]["text_frontend"] == "phonemes"
    assert PhonemeTokenizer.from_str(ckpt["tokenizer"]).symbols == DEFAULT_SYMBOLS
    assert train(codes, run, {}, RunOptions(log_every=1, val_every=0, stop_at=4, device="cpu"))["step"] == 4
    with pytest.raises(ValueError, match="other settings"):
        train(codes, run, {"text_frontend": "bpe"}, RunOptions(device="cpu"))
    codec_dir, out = tmp_path / "codec", tmp_path / "model"
    tiny_random().codec.save_pretrained(codec_dir)
    assert main(["export", "--run", str(run), "--codec", str(codec_dir), "--out", str(out)]) == 0
    assert json.loads((out / "card.json").read_text())["text_frontend"] == "phonemes"
    tts = LinaTTS.from_pretrained(str(out), device="cpu")
    assert isinstance(tts.tokenizer, PhonemeTokenizer) and tts.model.cfg.text_frontend == "phonemes"
    assert tts.synthesize("Hello there, world.", max_seconds=0.2, seed=0).tokens > 0


def test_a_run_from_the_phoneme_cache_needs_no_g2p(tok, tmp_path, monkeypatch):
    import lina.g2p
    from lab.training.lm.codes_folder import read_manifest
    from lab.training.lm.data import CodesSplit

    (tmp_path / "codes").mkdir()
    codes = fake_codes_dir(tmp_path / "codes", n_train=24, n_eval=4)
    assert main(["phonemize", "--codes", str(codes), "--workers", "1"]) == 0
    vocabulary, texts = lm_phonemes.load_cache(codes)
    rows = [r for split in ("train", "validation", "test") for r in read_manifest(codes, split)]
    assert vocabulary.symbols == tok.symbols and set(texts) == {r["text"] for r in rows}
    assert all(texts[r["text"]] == tok.encode(r["text"]) for r in rows[:6])

    def no_g2p(*_):
        raise lina.g2p.G2PError("no gruut here (the GPU host)")
    monkeypatch.setattr(lina.g2p.G2P, "shared", classmethod(no_g2p))
    monkeypatch.setattr(lina.g2p, "g2p_version", no_g2p)
    split = CodesSplit(codes, "train", vocabulary, max_frames=600, n_codebook=256, max_text_len=256,
                       pair_fraction=0.5, seed=0)
    j = next(i for i, u in enumerate(split.ids) if "+" in u)  # a pair: its two sentences, a boundary between
    a, b = (texts[next(r["text"] for r in rows if r["id"] == u)] for u in split.ids[j].split("+"))
    assert split.texts[j] == a[:-1] + [tok.boundary_id] + b[1:]
    run = train(codes, tmp_path / "run", {**TINY_SETTINGS, "steps": 2, "pair_fraction": 0.5,
                                          "text_frontend": "phonemes"}, RunOptions(val_every=0, device="cpu"))
    assert run["step"] == 2
    (codes / lm_phonemes.CACHE_NAME).unlink()  # without the cache, the missing G2P is named
    with pytest.raises(lina.g2p.G2PError, match="gruut"):
        CodesSplit(codes, "train", vocabulary, max_frames=600, n_codebook=256, max_text_len=256)


def test_phonemize_reuse_extends_an_earlier_cache(tok, tmp_path, monkeypatch):
    from lab.training.corpus.manifest import write_jsonl

    (tmp_path / "codes").mkdir()
    codes = fake_codes_dir(tmp_path / "codes", n_train=8, n_eval=2)
    assert main(["phonemize", "--codes", str(codes), "--workers", "1"]) == 0
    old = lm_phonemes.load_cache(codes)[1]
    more = tmp_path / "chunk1_train.jsonl"
    write_jsonl(more, [{"text": t} for t in SENTENCES[:2]] + [{"text": next(iter(old))}])
    encoded = []
    real = lm_phonemes.encode_texts
    monkeypatch.setattr(lm_phonemes, "encode_texts", lambda t, texts, w=None: encoded.extend(texts) or real(t, texts, w))
    args = ["phonemize", "--codes", str(tmp_path / "v3"), "--workers", "1", "--texts", str(more)]
    assert main([*args, "--reuse", str(codes / lm_phonemes.CACHE_NAME)]) == 0
    assert sorted(encoded) == sorted(SENTENCES[:2])  # only the new texts went through the G2P
    vocabulary, table = lm_phonemes.load_cache(tmp_path / "v3")
    assert vocabulary.symbols == tok.symbols and set(table) == set(old) | set(SENTENCES[:2])
    assert all(table[t] == ids for t, ids in old.items()) and table[SENTENCES[0]] == tok.encode(SENTENCES[0])
    with pytest.raises(FileNotFoundError, match="no phoneme cache"):
        main([*args, "--reuse", str(tmp_path / "nowhere")])


def test_cli_takes_the_front_end(tmp_path):
    (tmp_path / "codes").mkdir()
    codes = fake_codes_dir(tmp_path / "codes", n_train=12, n_eval=4)
    args = ["train", "--codes", str(codes), "--run", str(tmp_path / "run"), "--config", "tiny", "--steps", "1",
            "--batch-frames", "1500", "--max-frames", "600", "--text-frontend", "phonemes", "--device", "cpu",
            "--no-initial-val"]
    assert main(args) == 0
    assert load_checkpoint(tmp_path / "run")["config"]["text_frontend"] == "phonemes"
