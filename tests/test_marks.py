"""Pause marks and the pronunciation glossary: parsing, plain refusals, exact silences, respelled tokens."""
import numpy as np
import pytest

from lina.constants import SAMPLE_RATE
from lina.marks import Chunk, Glossary, split_pauses
from lina.tokenizer import TextError
from lina.tts import PAUSE_SECONDS, LinaTTS

LONG_A = "The first sentence is long enough to stand alone."
LONG_B = "The second sentence is also long enough to stand alone."


@pytest.fixture(scope="module")
def tts():
    return LinaTTS.from_pretrained("tiny-random", device="cpu")


def test_split_pauses():
    assert split_pauses("Hello there.") == [Chunk("Hello there.", 0.0)]
    assert split_pauses("A. [pause 1.5] B.") == [Chunk("A.", 1.5), Chunk("B.", 0.0)]
    assert split_pauses('A <break time="500ms"/> B <BREAK time=\'2s\'> C') == [
        Chunk("A", 0.5), Chunk("B", 2.0), Chunk("C", 0.0)]
    assert split_pauses("[pause 1] A [pause 0.25][Pause 0.25s] B [pause 300 ms]") == [
        Chunk("", 1.0), Chunk("A", 0.5), Chunk("B", 0.3)]


@pytest.mark.parametrize("text", ["A [pause] B", "A [pause x] B", "A [pause 1", 'A <break time="soon"/> B',
                                  "A <break/> B", "A [pause 0] B", "A [pause 99] B", "A </break> B"])
def test_malformed_marks_are_refused_in_plain_words(text):
    with pytest.raises(TextError, match=r"pause") as error:
        split_pauses(text)
    assert "Error" not in str(error.value) and ("[pause 0.5]" in str(error.value) or "seconds" in str(error.value))


@pytest.mark.parametrize("mark, seconds", [("[pause 0.8]", 0.8), ('<break time="500ms"/>', 0.5),
                                           ("[pause 1.2] [pause 0.3]", 1.5)])
def test_a_mark_is_that_much_silence(tts, mark, seconds):
    plain = tts.synthesize(f"{LONG_A} {LONG_B}", top_k=1, max_seconds=2)
    marked = tts.synthesize(f"{LONG_A} {mark} {LONG_B}", top_k=1, max_seconds=2)
    (_, end), (start, _) = marked.spans[0]
    assert start - end == pytest.approx(seconds, abs=0.02)
    assert not marked.audio[0][round(end * SAMPLE_RATE):round(start * SAMPLE_RATE)].any()
    # Same rows, same tokens: the mark adds exactly its silence in place of the usual gap.
    added = (len(marked.audio[0]) - len(plain.audio[0])) / SAMPLE_RATE
    assert added == pytest.approx(seconds - PAUSE_SECONDS, abs=0.02)
    assert marked.marks.startswith(f"{1} pause")


def test_leading_and_trailing_marks(tts):
    out = tts.synthesize(f"[pause 0.4] {LONG_A} [pause 0.6]", top_k=1, max_seconds=2)
    start, end = out.spans[0][0]
    assert start == pytest.approx(0.4, abs=0.001) and not out.audio[0][: int(0.4 * SAMPLE_RATE)].any()
    assert len(out.audio[0]) / SAMPLE_RATE - end == pytest.approx(0.6, abs=0.001)


def test_glossary_parse_apply_merge_save(tmp_path):
    g = Glossary.parse("# names\nLina = Leena\nGLA -> gee el ay\n\nNew York: noo york")
    assert g.apply("Lina, lina's GLA in new york; Linear!") == "Leena, Leena's gee el ay in noo york; Linear!"
    assert g.used_in("I like GLA.") == ["GLA"]
    g.save(tmp_path / "g.txt")
    assert Glossary.load(tmp_path / "g.txt").entries == g.entries and len(Glossary.load(tmp_path / "no.txt")) == 0
    assert g.merged(Glossary({"lina": "Lynn-a"})).apply("Lina") == "Lynn-a"
    for bad in ("just a word", "= nothing", "word = [pause 1]"):
        with pytest.raises(TextError, match="glossary|respelling"):
            Glossary.parse(bad)


def test_a_glossary_entry_changes_the_tokens_fed_to_the_model(tts, monkeypatch):
    seen = []
    real = tts.backend.model.encode_text
    monkeypatch.setattr(tts.backend.model, "encode_text", lambda ids, lengths: seen.append(ids.clone()) or
                        real(ids, lengths))
    tts.synthesize("Lina reads it.", top_k=1, max_seconds=1)
    out = tts.synthesize("Lina reads it.", top_k=1, max_seconds=1, glossary=Glossary({"lina": "leena"}))
    assert out.text == ["leena reads it."] and not np.array_equal(seen[0].numpy(), seen[1].numpy())
    assert seen[1][0].tolist()[: len(seen[1][0]) - int((seen[1][0] == 0).sum())] == tts.tokenizer.encode("leena reads it.")
    assert [w.word for w in out.words[0]] == ["Lina", "reads", "it."]  # the written words stay
