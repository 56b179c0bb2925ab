"""Word timestamps from the cross-attention, mapped through normalization back to the written words, and
the SRT/WebVTT files made from them."""
from pathlib import Path

import numpy as np
import pytest

from lina.subtitles import group_words, parse_srt, parse_vtt, to_srt, to_vtt
from lina.text import normalize_text
from lina.timestamps import WordTime, frame_tokens, frame_tokens_reference, word_char_spans
from lina.tts import LinaTTS

ROOT = Path(__file__).resolve().parents[1]
TEXT = "In 1990, Dr. Smith paid $5.50 for 3 apples! Then he walked home, slowly."


@pytest.fixture(scope="module")
def tts():
    return LinaTTS.from_pretrained("tiny-random", device="cpu")


@pytest.fixture(scope="module")
def mini():
    return LinaTTS.from_pretrained(str(ROOT / "assets" / "lina-mini"), device="cpu")


def test_frame_tokens_matches_its_reference():
    rng = np.random.default_rng(0)
    for steps, tokens in ((0, 5), (1, 3), (57, 12)):
        a = rng.random((steps, tokens))
        assert np.array_equal(frame_tokens(a), frame_tokens_reference(a))
        assert (np.diff(frame_tokens(a)) >= 0).all()


def test_a_number_read_as_several_words_is_one_word():
    alphabet = set("abcdefghijklmnopqrstuvwxyz ,.!?'-")
    norm = lambda t: normalize_text(t, alphabet).text  # noqa: E731
    words = "In 1990, we paid $5.50 for 3 apples".split()
    full = norm(" ".join(words))
    spans = word_char_spans(words, norm)
    pieces = [full[a:b].strip() for a, b in spans]
    assert pieces == ["in", "nineteen ninety,", "we", "paid", "five dollars and fifty cents", "for", "three", "apples"]
    assert spans[0][0] == 0 and spans[-1][1] == len(full)


def _check_words(out, text, duration):
    words = out.words[0]
    assert [w.word for w in words] == text.replace("[pause 0.5] ", "").split()  # every written word, in order
    times = [t for w in words for t in (w.start, w.end)]
    assert times == sorted(times) and times[0] >= 0 and times[-1] <= duration + 1e-6


def test_words_cover_every_word_and_subtitles_round_trip(tts):
    out = tts.synthesize(TEXT, top_k=1, max_seconds=3, candidates=2)
    assert len(out.words) == 2
    _check_words(out, TEXT, out.duration)
    cues = group_words(out.words[0])
    for parse, write in ((parse_srt, to_srt), (parse_vtt, to_vtt)):
        back = parse(write(cues))
        assert " ".join(c.text for c in back).split() == [w.word for w in out.words[0]]
        assert [round(c.start, 3) for c in back] == [round(c.start, 3) for c in cues]


def test_dialogue_subtitles_name_the_speakers():
    words = [WordTime("Hi", 0.0, 0.3, "Ava"), WordTime("there.", 0.3, 0.7, "Ava"), WordTime("Hello!", 1.1, 1.6, "Joe")]
    for parse, write in ((parse_srt, to_srt), (parse_vtt, to_vtt)):
        back = parse(write(group_words(words)))
        assert [(c.speaker, c.text) for c in back] == [("Ava", "Hi there."), ("Joe", "Hello!")]
        assert back[1].start == pytest.approx(1.1) and back[1].end == pytest.approx(1.6)


def test_embedded_model_words_follow_the_speech(mini):
    text = "The kettle is on. [pause 0.5] Bread will be ready in 10 minutes."
    out = mini.synthesize(text, seed=0)
    _check_words(out, text, out.duration)
    words = out.words[0]
    # Words land in their own sentence's audio, and most words take time (the alignment moves).
    (s0, e0), (s1, e1) = out.spans[0]
    assert all(s0 <= w.start and w.end <= e0 + 1e-6 for w in words[:4])
    assert all(s1 <= w.start and w.end <= e1 + 1e-6 for w in words[4:])
    assert sum(w.end - w.start > 0.05 for w in words) >= len(words) - 2
    ten = next(w for w in words if w.word == "10")  # "ten": one written word
    assert ten.end > ten.start


def test_phoneme_token_spans_match_the_ids():
    from lina.phoneme_tokenizer import PhonemeTokenizer

    tok = PhonemeTokenizer.default()
    for text in ("hello, world.", 'in nineteen ninety, (we) wasn\'t "there" ok'):
        spans = tok.token_spans(text)
        assert len(spans) == len(tok.encode(text)) and spans[0] == (0, 0) and spans[-1] == (len(text), len(text))
        assert [a for a, _ in spans] == sorted(a for a, _ in spans)


def test_clone_returns_the_words_of_the_text_not_of_the_prompt(tts):
    rate = 24_000
    tone = (rate, (0.3 * np.sin(2 * np.pi * 220 * np.arange(2 * rate) / rate)).astype(np.float32))
    out = tts.clone("Speak these 3 words.", tone, "the transcript of the prompt", top_k=1, max_seconds=2)
    _check_words(out, "Speak these 3 words.", out.duration)
