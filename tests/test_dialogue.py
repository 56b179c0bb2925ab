"""Dialogue scripts: every line its own voice, all lines one batch (one generate call), joined in order
with the gap, and a table whose boundaries are the audio's. Tiny random model for shapes and order, the
embedded model for a real three-speaker script."""
from pathlib import Path

import numpy as np
import pytest
import torch

import lina.tts
from lina.constants import SAMPLE_RATE
from lina.dialogue import parse_script
from lina.tokenizer import TextError
from lina.tts import LinaTTS
from lina.voice import Voice

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = """Ava: Did you see the boats this morning? They came in early.
Joe: Twelve of them. [pause 0.5] A record for this time of year.
Mia: I counted eleven.
Ava: Then we agree, mostly."""
GREEDY = {"top_k": 1, "max_seconds": 2}   # argmax does not depend on the batch: rows compare with lone runs


@pytest.fixture(scope="module")
def tts():
    return LinaTTS.from_pretrained("tiny-random", device="cpu")


def _voice(tts, seed):
    c, gen = tts.model.cfg, torch.Generator().manual_seed(seed)
    return Voice(torch.randn(c.n_tunable_layers, 1, c.n_heads, c.head_k_dim, generator=gen),
                 3 * torch.randn(c.n_tunable_layers, 1, c.n_heads, c.head_v_dim, generator=gen), 1.0,
                 model_id=tts.model_id)


def _count_generate(monkeypatch):
    calls = []
    real = lina.tts.generate

    def counted(model, ctx, *args, **kwargs):
        calls.append(ctx.keys.shape[0])
        return real(model, ctx, *args, **kwargs)

    monkeypatch.setattr(lina.tts, "generate", counted)
    return calls


def _check_table(out, gap):
    """Lines in script order, tiling the audio: silence exactly `gap` between lines, sound inside."""
    assert out.lines[0].start == 0.0 and out.lines[-1].end == pytest.approx(out.duration, abs=1 / SAMPLE_RATE)
    for before, after in zip(out.lines, out.lines[1:]):
        silence = out.audio[round(before.end * SAMPLE_RATE):round(after.start * SAMPLE_RATE)]
        assert len(silence) / SAMPLE_RATE == pytest.approx(gap, abs=0.002) and not silence.any()
    for line in out.lines:
        assert np.abs(out.audio[round(line.start * SAMPLE_RATE):round(line.end * SAMPLE_RATE)]).max() > 0


def test_three_speakers_one_batch_in_script_order(tts, monkeypatch):
    # The watermark is computed over each output as a whole (a line inside a dialogue and the same line
    # alone get marks that differ by ~1e-3): the batching is compared without it.
    monkeypatch.setattr(tts, "watermark", False)
    calls = _count_generate(monkeypatch)
    voices = {"ava": _voice(tts, 1), "Joe": _voice(tts, 2), "Mia": None}
    out = tts.synthesize_dialogue(SCRIPT, voices, gap=0.3, **GREEDY)
    # One generate call, one row per sentence: 1 (two short sentences merge) + 2 (cut by the mark) + 1 + 1.
    assert calls == [5]
    assert out.rows == 5 and [line.speaker for line in out.lines] == ["Ava", "Joe", "Mia", "Ava"]
    _check_table(out, 0.3)
    assert {w.speaker for w in out.words} == {"Ava", "Joe", "Mia"}
    # Each line is its own voice: Joe's line equals the same text spoken alone with Joe's voice.
    alone = tts.synthesize("Twelve of them. [pause 0.5] A record for this time of year.", voices["Joe"], **GREEDY)
    line = out.lines[1]
    got = out.audio[round(line.start * SAMPLE_RATE):round(line.end * SAMPLE_RATE)]
    assert got.shape == alone.audio[0].shape
    np.testing.assert_allclose(got, alone.audio[0], atol=1e-4)


def test_line_by_line_is_timed_and_words_follow_the_script(tts, monkeypatch):
    calls = _count_generate(monkeypatch)
    out = tts.synthesize_dialogue([("A", "One two three."), ("B", "Four five.")], None, line_by_line=True, **GREEDY)
    assert calls == [2, 1, 1] and out.speedup > 0 and out.line_by_line_seconds > 0
    assert [w.word for w in out.words] == ["One", "two", "three.", "Four", "five."]
    starts = [w.start for w in out.words]
    assert starts == sorted(starts) and out.words[3].start >= out.lines[1].start


def test_script_errors_are_sentences(tts):
    assert parse_script("Ava: Hi there.\n\n  and more.\nJoe Smith: Yes.") == [("Ava", "Hi there. and more."),
                                                                              ("Joe Smith", "Yes.")]
    with pytest.raises(TextError, match="line 1 .* names no speaker"):
        parse_script("Hello there.\nAva: Hi.")
    with pytest.raises(TextError, match="nothing to say"):
        parse_script("Ava: ...")
    with pytest.raises(TextError, match="no voice for 'Joe'"):
        tts.synthesize_dialogue("Ava: Hi.\nJoe: Hello.", {"Ava": None})
    with pytest.raises(TextError, match="pause mark"):
        tts.synthesize_dialogue("Ava: Hi [pause now].", None)


def test_embedded_three_speaker_script(monkeypatch):
    """The shipped model and presets: three voices, one batch of three rows (within the C step's batch)."""
    tts = LinaTTS.from_pretrained(str(ROOT / "assets" / "lina-mini"), device="cpu")
    calls = _count_generate(monkeypatch)
    voices = {name: Voice.load(ROOT / "voices" / f"{preset}.safetensors")
              for name, preset in (("Ava", "ava_happy"), ("Joe", "ava_calm"), ("Mia", "ava_angry"))}
    script = "Ava: Good morning, everyone.\nJoe: Morning! Who made the coffee?\nMia: I did, an hour ago."
    out = tts.synthesize_dialogue(script, voices, gap=0.4, seed=0)
    assert calls == [3] and [line.speaker for line in out.lines] == ["Ava", "Joe", "Mia"]
    assert all(line.finished for line in out.lines)
    _check_table(out, 0.4)
    words = [w.word for w in out.words]
    assert words == script.replace("Ava: ", "").replace("Joe: ", "").replace("Mia: ", "").split()
    for line in out.lines:  # every word inside its own line's span
        mine = [w for w in out.words if w.speaker == line.speaker]
        assert line.start - 1e-6 <= mine[0].start and mine[-1].end <= line.end + 1e-6
