"""lina-mini training (lab/training/lm): tokenizer, bucketing, loss, exact resume, shards, export, curves.

Runs on a fake codes folder whose codec ids are a deterministic function of the text (two frames per
character), with the `tiny` preset, in well under a minute on two CPU cores.
"""
from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from tokenizers import Tokenizer

from lab.training.corpus.texts import ALPHABET
from lab.training.lm import checkpoint
from lab.training.lm.__main__ import main
from lab.training.lm.codes_folder import read_manifest
from lab.training.lm.configs import TINY
from lab.training.lm.data import CodesSplit, EpochLoader, pair_rows, plan_batches, repeat_styled
from lab.training.lm.export import export
from lab.training.lm.tokenizer import train_tokenizer
from lab.training.lm.train import LOG_NAME, RunOptions, train
from lina.constants import BOS_ID, EOS_ID, N_SPECIAL_TOKENS, PAD_ID, TEXT_PAD_ID
from lina.pretrained import tiny_random
from lina.tokenizer import prepare_text

WORDS = ["the", "a", "of", "and", "to", "in", "is", "was", "he", "she", "it", "they", "we", "you", "that", "with", "for", "on", "as", "at", "by", "from", "this", "have", "not", "but", "speech", "model", "voice", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "morning", "news", "river", "mountain", "light", "house", "children", "garden", "winter", "summer", "music", "water", "friend", "letter", "window", "story"]
FRAMES_PER_CHAR = 2
# A small budget so that the fake splits make many batches (a real run uses 60,000).
BATCH_FRAMES = 1_500
TINY_SETTINGS = {"config": "tiny", "steps": 6, "lr": 3e-3, "warmup": 2, "batch_frames": BATCH_FRAMES,
                 "max_frames": 600, "seed": 0}


def sentences(n: int, seed: int) -> list[str]:
    """Normalized sentences that use every character of the corpus alphabet between them."""
    rng = random.Random(seed)
    marks = [c for c in sorted(ALPHABET) if not c.isalnum() and c != " "]
    rows = []
    for i in range(n):
        words = rng.sample(WORDS, rng.randint(4, 12))
        words[rng.randrange(len(words))] += marks[i % len(marks)]
        rows.append(" ".join(words) + ".")
    letters = "".join(c for c in sorted(ALPHABET) if c.isalpha())
    rows[0] = f"spell {letters} now."
    return rows


def fake_codes_dir(root: Path, n_train: int = 240, n_eval: int = 16) -> Path:
    """``root/{split}.jsonl.gz`` + ``{split}.codes.npy``: each character becomes two codec frames."""
    for split, n, seed in (("train", n_train, 0), ("validation", n_eval, 1), ("test", n_eval, 2)):
        rows, codes, offset = [], [], 0
        for i, text in enumerate(sentences(n, seed)):
            ids = np.repeat([ord(c) % TINY.n_codebook for c in text], FRAMES_PER_CHAR).astype(np.uint16)
            rows.append({"id": f"{split}-{i}", "speaker": f"spk{i % 3}", "style": "neutral", "text": text,
                         "offset": offset, "frames": len(ids)})
            codes.append(ids)
            offset += len(ids)
        with gzip.open(root / f"{split}.jsonl.gz", "wt") as f:
            f.writelines(json.dumps(r) + "\n" for r in rows)
        np.save(root / f"{split}.codes.npy", np.concatenate(codes))
    return root


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One intra-op thread: tiny matrices gain nothing from two, and a shared CPU makes two threads wait."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def codes_dir(tmp_path_factory) -> Path:
    return fake_codes_dir(tmp_path_factory.mktemp("codes"))


@pytest.fixture(scope="module")
def full_run(codes_dir, tmp_path_factory) -> Path:
    """Six steps in one call, logged at every step."""
    run = tmp_path_factory.mktemp("full")
    train(codes_dir, run, TINY_SETTINGS, RunOptions(log_every=1, val_every=0, device="cpu"))
    return run


def train_losses(run: Path) -> dict[int, float]:
    return {e["step"]: e["loss"] for e in map(json.loads, (run / LOG_NAME).read_text().splitlines()) if "loss" in e}


def test_tokenizer_covers_alphabet_round_trips_and_is_deterministic():
    texts = sentences(300, seed=3)
    tok = train_tokenizer(texts)
    assert tok.vocab_size <= TINY.n_text_vocab
    assert (tok.pad_id, tok.bos_id, tok.eos_id) == (TEXT_PAD_ID, BOS_ID, EOS_ID)
    assert set(ALPHABET) <= tok.alphabet and tok.lowercases
    assert tok.vocab_size > len(ALPHABET) + 3  # merges were learned
    raw = Tokenizer.from_str(tok.to_str())
    for text in texts[:50] + ["".join(sorted(ALPHABET))]:
        ids = tok.encode(text)
        assert ids[0] == tok.bos_id and ids[-1] == tok.eos_id
        assert "".join(raw.id_to_token(i) for i in ids[1:-1]) == text
    assert prepare_text("Hello, World! 42 times.", tok).text == "hello, world! forty-two times."
    assert train_tokenizer(list(reversed(texts))).to_str() == tok.to_str()


def test_bucketing_respects_the_budget_and_covers_every_utterance_once():
    frames = np.random.default_rng(0).integers(10, 400, size=500)
    budget = 2_000
    plans = [plan_batches(frames, budget, seed=0, epoch=e) for e in (0, 1)]
    for batches in plans:
        assert sorted(i for b in batches for i in b) == list(range(len(frames)))
        assert all(len(b) * (frames[b].max() + 2) <= budget for b in batches)
        assert np.mean([len(b) * (frames[b].max() + 2) for b in batches]) > 0.8 * budget  # little waste
    assert plans[0] != plans[1]  # reshuffled per epoch
    assert plan_batches(frames, budget, seed=0, epoch=1) == plans[1]  # from the seed only
    with pytest.raises(ValueError):
        plan_batches(np.array([budget]), budget, seed=0, epoch=0)


def test_collate_builds_rows_as_the_model_expects(codes_dir):
    tok = train_tokenizer(sentences(240, 0))
    split = CodesSplit(codes_dir, "train", tok, max_frames=600, n_codebook=TINY.n_codebook, max_text_len=256)
    assert len(split) + split.skipped == 240
    loader = EpochLoader(split, BATCH_FRAMES, seed=0)
    batch = loader.next()
    assert batch.audio.shape[0] * batch.audio.shape[1] <= BATCH_FRAMES
    for row in range(batch.audio.shape[0]):
        n = int(batch.audio_len[row])
        assert batch.audio[row, 0] == BOS_ID and batch.audio[row, n - 1] == EOS_ID
        assert (batch.audio[row, n:] == PAD_ID).all() and (batch.audio[row, 1:n - 1] >= N_SPECIAL_TOKENS).all()
        assert (batch.text[row, int(batch.text_len[row]):] == TEXT_PAD_ID).all()
    assert loader.position.batch == 1


def test_paired_rows_join_two_readings_of_one_speaker(codes_dir):
    rows = read_manifest(codes_dir, "train")
    pairs = pair_rows(rows, 0.25, seed=0)
    assert len(pairs) == 60 and pairs == pair_rows(rows, 0.25, seed=0) and pairs != pair_rows(rows, 0.25, seed=1)
    by_id = {r["id"]: r for r in rows}
    used = [i for p in pairs for i in p["id"].split("+")]
    assert len(used) == len(set(used))  # each source row at most once
    tok = train_tokenizer(sentences(240, 0))
    split = CodesSplit(codes_dir, "train", tok, max_frames=600, n_codebook=TINY.n_codebook, max_text_len=256,
                       pair_fraction=0.25, seed=0)
    plain = CodesSplit(codes_dir, "train", tok, max_frames=600, n_codebook=TINY.n_codebook, max_text_len=256)
    index = {u: i for i, u in enumerate(plain.ids)}
    for pair in pairs[:5]:
        a, b = (by_id[i] for i in pair["id"].split("+"))
        assert a["speaker"] == b["speaker"] == pair["speaker"] and pair["text"] == f"{a['text']} {b['text']}"
        j = split.ids.index(pair["id"])
        assert np.array_equal(split.codes(j), np.concatenate([plain.codes(index[a["id"]]), plain.codes(index[b["id"]])]))
    assert len(split) == len(plain) + len(pairs) - (split.skipped - plain.skipped)


def test_styled_rows_repeat(codes_dir, tmp_path):
    rows = [{"id": "a", "style": "neutral"}, {"id": "b", "style": "sad"}, {"id": "c", "style": "whisper"}, {"id": "d"}]
    assert repeat_styled(rows, 1) == []
    assert [r["id"] for r in repeat_styled(rows, 3)] == ["b#1", "c#1", "b#2", "c#2"]
    with pytest.raises(ValueError, match="styled_repeat"):
        repeat_styled(rows, 0)
    styled = tmp_path / "styled"  # the fake corpus with every third row sad
    styled.mkdir()
    for split in ("train", "validation", "test"):
        manifest = read_manifest(codes_dir, split)
        with gzip.open(styled / f"{split}.jsonl.gz", "wt") as f:
            f.writelines(json.dumps({**r, "style": "sad" if i % 3 == 0 else r["style"]}) + "\n"
                         for i, r in enumerate(manifest))
        (styled / f"{split}.codes.npy").write_bytes((codes_dir / f"{split}.codes.npy").read_bytes())
    tok = train_tokenizer(sentences(240, 0))
    kw = {"max_frames": 600, "n_codebook": TINY.n_codebook, "max_text_len": 256}
    plain, twice = CodesSplit(styled, "train", tok, **kw), CodesSplit(styled, "train", tok, styled_repeat=2, **kw)
    extra = [u for u in twice.ids if "#" in u]
    assert len(twice) == len(plain) + len(extra) and len(extra) == sum(int(u.split("-")[1]) % 3 == 0 for u in plain.ids)
    j, k = twice.ids.index(extra[0]), plain.ids.index(extra[0].split("#")[0])
    assert np.array_equal(twice.codes(j), plain.codes(k)) and twice.texts[j] == plain.texts[k]


def test_loss_drops_on_learnable_codes(codes_dir, tmp_path):
    settings = {**TINY_SETTINGS, "steps": 30, "warmup": 3, "lr": 1e-2}
    result = train(codes_dir, tmp_path, settings, RunOptions(log_every=5, val_every=0, device="cpu"))
    losses = train_losses(tmp_path)
    assert result["step"] == 30 and len(losses) == 6
    assert losses[30] < 0.7 * losses[5], losses
    log = [json.loads(x) for x in (tmp_path / LOG_NAME).read_text().splitlines()]
    vals = [e["val_loss"] for e in log if "val_loss" in e]
    assert len(vals) == 2 and vals[1] < vals[0]  # step-0 baseline and the end


def test_two_calls_equal_one_call_and_shards_resume(codes_dir, full_run, tmp_path):
    half = tmp_path / "half"
    first = train(codes_dir, half, TINY_SETTINGS, RunOptions(log_every=1, val_every=0, stop_at=3, device="cpu"))
    assert first["step"] == 3
    shards = tmp_path / "shards"
    small = 64 * 1024  # forces several files and split tensors
    paths = checkpoint.save_shards(checkpoint.load(half), shards, max_bytes=small)
    assert len(paths) > 3 and all(p.stat().st_size <= small for p in paths if p.suffix == ".safetensors")
    (shards / LOG_NAME).write_text((half / LOG_NAME).read_text())

    copied = tmp_path / "copied"  # a fresh folder continued from the shards (the GPU host's case)
    train(codes_dir, copied, {}, RunOptions(log_every=1, val_every=0, device="cpu"), resume_from=shards)
    train(codes_dir, half, {}, RunOptions(log_every=1, val_every=0, device="cpu"))  # a plain rerun
    expected = train_losses(full_run)
    assert sorted(expected) == list(range(1, 7))
    for run in (half, copied):
        got = train_losses(run)
        assert sorted(got) == sorted(expected)
        assert all(abs(got[s] - expected[s]) < 1e-6 for s in expected), (got, expected)
        a, b = checkpoint.load(run)["model"], checkpoint.load(full_run)["model"]
        assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    with pytest.raises(ValueError, match="other settings"):
        train(codes_dir, half, {"lr": 1.0}, RunOptions(device="cpu"))


def test_time_budget_stops_cleanly(codes_dir, tmp_path):
    result = train(codes_dir, tmp_path, {**TINY_SETTINGS, "steps": 10_000},
                   RunOptions(max_seconds=6, val_every=0, device="cpu"))
    assert 0 < result["step"] < 10_000 and result["seconds_this_call"] < 6
    assert checkpoint.load(tmp_path)["step"] == result["step"]


def test_export_loads_in_linatts_and_speaks(full_run, tmp_path):
    from lina.tts import LinaTTS

    codec_dir = tmp_path / "codec"
    tiny_random().codec.save_pretrained(codec_dir)
    out = tmp_path / "lina-mini"
    assert main(["export", "--run", str(full_run), "--codec", str(codec_dir), "--out", str(out)]) == 0
    with safe_open(str(out / "model.safetensors"), "pt") as f:
        assert {f.get_tensor(k).dtype for k in f.keys()}  # noqa: SIM118 - safe_open is no dict == {torch.float16}
    card = json.loads((out / "card.json").read_text())
    assert card["model_id"].startswith("lina-mini-v1-") and card["training"]["steps"] == 6
    tts = LinaTTS.from_pretrained(str(out), device="cpu")
    assert tts.model_id == card["model_id"] and tts.model.dtype == torch.float32
    speech = tts.synthesize("Hello there, world.", max_seconds=0.2, seed=0)
    assert speech.tokens > 0 and len(speech.audio[0]) > 0
    # The id is the fp16 weights' hash: the same from the fp16 weights-only shards a GPU call sends back.
    lean = tmp_path / "lean"
    checkpoint.save_shards(checkpoint.weights_only(checkpoint.load(full_run), torch.float16), lean)
    assert export(lean, codec_dir, tmp_path / "again") == card["model_id"]
    with pytest.raises(ValueError, match="weights only"):
        train(tmp_path, tmp_path / "run", {}, RunOptions(device="cpu"), resume_from=lean)


def test_curves_png(full_run, tmp_path):
    png = tmp_path / "curves.png"
    assert main(["curves", "--run", str(full_run), "--out", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_model_remembers_which_codec_made_its_codes(tmp_path):
    """An LM trained on one codec's codes is refused an export with a codec that makes other codes, and
    a run is refused a continuation on another codec's codes (both would speak noise without an error)."""
    import copy

    from lab.training.codec.freeze import codes_id, write_codes_json

    made = tiny_random().codec
    other = copy.deepcopy(made)
    with torch.no_grad():
        next(other.encoder.parameters()).add_(0.01)  # another encoder: other codes
    assert codes_id(made) != codes_id(other)
    (tmp_path / "codes" / "codec").mkdir(parents=True)
    codes = fake_codes_dir(tmp_path / "codes", n_train=24, n_eval=4)
    write_codes_json(made, codes / "codec")  # what render_codes / codec encode leave beside the codes
    run = tmp_path / "run"
    train(codes, run, {**TINY_SETTINGS, "steps": 1}, RunOptions(val_every=0, device="cpu"))
    assert checkpoint.load(run)["codes_id"] == codes_id(made)
    made.save_pretrained(tmp_path / "made")
    other.save_pretrained(tmp_path / "other")
    assert export(run, tmp_path / "made", tmp_path / "ok").startswith("lina-mini-v1-")
    assert json.loads((tmp_path / "ok" / "card.json").read_text())["codes_id"] == codes_id(made)
    with pytest.raises(ValueError, match="learned the codes of codec"):
        export(run, tmp_path / "other", tmp_path / "bad")
    write_codes_json(other, codes / "codec")
    with pytest.raises(ValueError, match="continue it on its own codes"):
        train(codes, run, {**TINY_SETTINGS, "steps": 2}, RunOptions(val_every=0, device="cpu"))


def test_an_empty_validation_split_logs_no_validation_loss(tmp_path, capsys):
    """What a render stopped before any validation row leaves (finalize writes the split empty): the run
    says so once and logs no val_loss; a loss of 0.0 read as a perfect model for a whole run."""
    codes = fake_codes_dir(tmp_path, n_train=24, n_eval=4)
    with gzip.open(codes / "validation.jsonl.gz", "wt") as f:
        f.write("")
    np.save(codes / "validation.codes.npy", np.zeros(0, np.uint16))
    run = tmp_path / "run"
    result = train(codes, run, {**TINY_SETTINGS, "steps": 3}, RunOptions(val_every=1, device="cpu"))
    log = [json.loads(line) for line in (run / LOG_NAME).read_text().splitlines()]
    assert not [e for e in log if "val_loss" in e]
    assert log[0]["start"]["validation_utterances"] == 0 and result["step"] == 3
    assert result["val_loss"] != result["val_loss"]  # NaN: no loss, not 0.0
    assert capsys.readouterr().err.count("the validation split has no usable rows") == 1
