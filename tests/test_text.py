"""Text front end: exact ids of the released tokenizer, normalization, sentence splitting, fuzzing."""
from __future__ import annotations

import json
import string
import warnings

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lina.text import NormalizedText, TextNormalizationWarning, normalize_text, split_sentences
from lina.tokenizer import MAX_TEXT_TOKENS, TextError, TextTokenizer, pad_rows, prepare_text

# The released bpe256.json alphabet, spelled out so that normalization tests run without the fixtures.
BPE256_ALPHABET = frozenset(string.ascii_lowercase + " !\"'(),-./:;?[]{}" + "¯æèéêñôœ—")
FUZZ_EXAMPLES = 300


@pytest.fixture(scope="module")
def bpe(reference_dir) -> TextTokenizer:
    return TextTokenizer.from_file(reference_dir / "bpe256.json")


@pytest.fixture(scope="module")
def expected_cases(reference_dir) -> list[dict]:
    return json.loads((reference_dir / "bpe256_expected.json").read_text())


def norm(text: str, alphabet=BPE256_ALPHABET, **kwargs) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TextNormalizationWarning)
        return normalize_text(text, alphabet, **kwargs).text


# ------------------------------------------------------------------------------------------ tokenizer
def test_reference_ids_exact(bpe, expected_cases):
    cases = [c for c in expected_cases if "ids" in c]
    assert cases
    for case in cases:
        assert bpe.encode(case["text"]) == case["ids"], case["text"]


# What the unencodable reference texts become; each then encodes.
NORMALIZED_ERROR_CASES = {
    "Numbers like 1984 and symbols & stuff!": "numbers like nineteen eighty-four and symbols and stuff!",
    "  spaces   and\ttabs ": "spaces and tabs",
    "unicode caf\u00e9 na\u00efve": "unicode caf\u00e9 naive",
}


def test_reference_errors_raw_then_fixed_by_normalization(bpe, expected_cases):
    cases = [c for c in expected_cases if "error" in c]
    assert {c["text"] for c in cases} == set(NORMALIZED_ERROR_CASES)
    for case in cases:
        with pytest.raises(Exception, match="Unk token"):
            bpe.encode(case["text"])
        prepared = prepare_text(case["text"], bpe)
        assert prepared.text == NORMALIZED_ERROR_CASES[case["text"]]
        assert prepared.ids == bpe.encode(prepared.text)
        assert prepared.ids[0] == bpe.bos_id and prepared.ids[-1] == bpe.eos_id


def test_special_ids_vocab_and_alphabet(bpe):
    assert (bpe.pad_id, bpe.bos_id, bpe.eos_id) == (0, 1, 2)
    assert bpe.vocab_size == 256
    assert bpe.lowercases
    # Lowercase-aware: uppercase letters are spellable because the normalizer lowercases them.
    assert bpe.alphabet == BPE256_ALPHABET | set(string.ascii_uppercase) | set("ÆÈÉÊÑÔŒ")
    assert not set("0123456789&\t\n#%") & bpe.alphabet
    for ch in bpe.alphabet:
        assert bpe.encode(ch)[1:-1], repr(ch)  # never raises, never empty


def test_pad_rows_pads_with_the_pad_id(bpe):
    texts = ["hello world, this is lina.", "hi", ""]
    rows = [bpe.encode(t) for t in texts]
    ids, lengths = pad_rows(rows, bpe.pad_id)
    assert bpe.pad_id == 0 and ids.dtype == lengths.dtype == torch.long
    assert ids.shape == (3, max(map(len, rows)))
    assert lengths.tolist() == [len(r) for r in rows] and rows[2] == [1, 2]
    for i, row in enumerate(rows):
        assert ids[i, : len(row)].tolist() == row
        assert (ids[i, len(row) :] == 0).all()
    empty_ids, empty_lengths = pad_rows([], bpe.pad_id)
    assert empty_ids.shape == (0, 0) and empty_lengths.shape == (0,)


# ------------------------------------------------------------------------------------------ prepare_text
@pytest.mark.filterwarnings("ignore::lina.text.TextNormalizationWarning")
def test_prepare_text_rejects_unspeakable(bpe):
    for text in ["", "   \n\t", "😀🎉", "!!! ...", "\u200b\u0301"]:
        with pytest.raises(TextError, match="nothing speakable"):
            prepare_text(text, bpe)
    assert issubclass(TextError, ValueError)


def test_prepare_text_length_limit(bpe):
    assert MAX_TEXT_TOKENS == 2000
    limit = len(bpe.encode("ab ab ab"))
    assert prepare_text(" ab ab ab ", bpe, max_tokens=limit).ids == bpe.encode("ab ab ab")
    with pytest.raises(TextError, match="at most 5"):
        prepare_text("hello world", bpe, max_tokens=5)
    with pytest.raises(TextError, match="split"):
        prepare_text("the quick brown fox jumps. " * 300, bpe)


def test_prepare_text_reports_dropped_and_strips_special_tokens(bpe):
    with pytest.warns(TextNormalizationWarning, match="U\\+1F600"):
        prepared = prepare_text("hi 😀 there", bpe)
    assert (prepared.text, prepared.dropped) == ("hi there", ("😀",))
    prepared = prepare_text("[BOS] sneaky [EOS] [PAD]", bpe)
    assert prepared.text == "sneaky"
    assert prepared.ids.count(bpe.bos_id) == prepared.ids.count(bpe.eos_id) == 1


# ------------------------------------------------------------------------------------------ normalization
NORMALIZATION_TABLE = [
    ("Hello, World!", "hello, world!"),
    ("It costs $5.50, or €3.", "it costs five dollars and fifty cents, or three euros."),
    ("$1 and $0.99 and £2", "one dollar and ninety-nine cents and two pounds"),
    ("$1.5 million", "one point five million dollars"),
    ("£1,000,000.", "one million pounds."),
    ("5€", "five euros"),
    ("50% of 3.14", "fifty percent of three point one four"),
    ("-5 degrees, -$3", "minus five degrees, minus three dollars"),
    ("the 1st, 2nd, 3rd and 21st", "the first, second, third and twenty-first"),
    ("In 1984 and 2024", "in nineteen eighty-four and twenty twenty-four"),
    ("the 1990s and '80s", "the nineteen nineties and eighties"),
    ("1,234 people", "one thousand two hundred and thirty-four people"),
    ("1990–1995, 10-20, pages 3 - 4", "nineteen ninety to nineteen ninety-five, ten to twenty, pages three - four"),
    ("At 3:30 pm or 5pm", "at three thirty p m or five p m"),
    ("12:00, 14:00, 9:05", "twelve o'clock, fourteen hundred, nine oh five"),
    ("Call 555-1234", "call five five five, one two three four"),
    ("v2.0.1", "v two dot zero dot one"),
    ("mp3 #1 007", "mp three number one zero zero seven"),
    ("10000000000000000", "one zero zero zero zero zero zero zero zero zero zero zero zero zero zero zero zero"),
    ("Tom & Jerry, a+b=c, C++, x@y", "tom and jerry, a plus b equals c, c plus plus, x at y"),
    ("20°, 2×3", "twenty degrees, two times three"),
    ("1½ cups, ¼", "one and one half cups, one quarter"),
    ("“Quotes” ‘single’ … ellipsis", "\"quotes\" 'single' ... ellipsis"),
    ("en–dash and em—dash", "en-dash and em—dash"),  # bpe256 has "—": kept
    ("  tabs\tand\nnewlines\r\n  runs  ", "tabs and newlines runs"),
    ("café naïve Øresund straße Łódź", "café naive oresund strasse lodz"),
    ("ﬁne ＡＢＣ １２", "fine abc twelve"),  # NFKC: ligature, fullwidth
    ("٣ apples", "three apples"),  # other scripts' digits
    ("zero\u200bwidth soft\u00adhyphen", "zerowidth softhyphen"),
    ("emoji 😀 and 中文", "emoji and"),
    ("*bold* _under_ ¿qué?", "bold under qué?"),
    # Written forms (lina.text_forms): addresses, dates, fractions read as a person reads them.
    ("See https://www.example.com/docs?id=3.", "see w w w dot example dot com slash docs question mark id equals three."),
    ("Docs at lina.github.io, or http://localhost:7860/", "docs at lina dot github dot io, or localhost colon seven eight six zero"),
    ("Mail jane.doe+tts@example.org today", "mail jane dot doe plus t t s at example dot org today"),
    ("On 3/4/2025 and 2025-03-04.", "on march fourth, twenty twenty-five and march fourth, twenty twenty-five."),
    ("Born 25.12.1990, or 31/01/85", "born december twenty-fifth, nineteen ninety, or january thirty-first, nineteen eighty-five"),
    ("March 4, 2025 at 10:30 am", "march fourth, twenty twenty-five at ten thirty a m"),
    ("Sept. 21st and you may 5 times", "september twenty-first and you may five times"),
    ("Add 3/4 cup, 1/2 spoon, 2/3 of it, 24/7", "add three quarters cup, one half spoon, two thirds of it, twenty-four seven"),
    ("Up 12.5% to $1,200.50", "up twelve point five percent to one thousand two hundred dollars and fifty cents"),
    ("version 1.2.33 and e.g. the U.S.", "version one dot two dot thirty-three and e.g. the u.s."),
]


@pytest.mark.parametrize(("raw", "expected"), NORMALIZATION_TABLE)
def test_normalization_table(raw, expected):
    assert norm(raw) == expected


def test_accents_kept_or_folded_by_alphabet():
    assert norm("é è ï", BPE256_ALPHABET) == "é è i"
    ascii_only = frozenset(string.ascii_lowercase + " .,-")
    assert norm("Éé œuvre — naïve.", ascii_only) == "ee oeuvre - naive."


def test_lowercase_off_keeps_case():
    alphabet = BPE256_ALPHABET | set(string.ascii_uppercase)
    assert norm("Hi Élodie & 2 Dogs", alphabet | {"É"}, lowercase=False) == "Hi Élodie and two Dogs"
    assert norm("Élodie", alphabet, lowercase=False) == "Elodie"
    assert norm("Élodie", BPE256_ALPHABET, lowercase=False) == "élodie"  # capitals the alphabet lacks


def test_dropped_characters_reported_once():
    with pytest.warns(TextNormalizationWarning) as record:
        result = normalize_text("a😀b😀c中", BPE256_ALPHABET)
    assert len(record) == 1
    assert result == NormalizedText("abc", ("😀", "中"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        clean = normalize_text("nothing to drop, 42!", BPE256_ALPHABET)
    assert clean.dropped == () and not clean.is_empty
    assert normalize_text("", BPE256_ALPHABET).is_empty


def test_dropped_characters_without_a_warning():
    """`warn=False`: the caller reports `.dropped` itself (the app's info line)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert normalize_text("hi 😀🎉", BPE256_ALPHABET, warn=False).dropped == ("😀", "🎉")


def test_normalize_rejects_non_text():
    with pytest.raises(TypeError):
        normalize_text(None, BPE256_ALPHABET)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------ fuzzing
# Characters that exercise the number and symbol rules far more often than uniform unicode would.
_TRICKY = st.sampled_from(list("0123456789.,:;-–—$€£¥%&+@#=°½ /'\"aApPmMsStThndrx\t\n\u00a0éïß²٣😀İ[]BOSE"))
_FUZZ_TEXT = st.one_of(st.text(max_size=120), st.text(_TRICKY, max_size=60))


@settings(max_examples=FUZZ_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=_FUZZ_TEXT)
def test_fuzz_normalize_then_encode_never_raises(bpe, text):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TextNormalizationWarning)
        result = normalize_text(text, bpe.alphabet)
        assert set(result.text) <= bpe.alphabet
        assert result.text == result.text.strip() and "  " not in result.text
        assert normalize_text(result.text, bpe.alphabet).text == result.text  # idempotent
        bpe.encode(result.text)  # the real tokenizer: must not raise
        try:
            prepare_text(text, bpe)
        except TextError:
            pass


# ------------------------------------------------------------------------------------------ sentences
def test_split_sentences_basic_and_abbreviations():
    text = (
        "Hello there Mr. Smith, how are you? I am fine; thanks for asking! "
        "The value is 3.14, e.g. roughly pi. J. K. Rowling wrote it.\n\n"
        "A new paragraph without a stop\nYes. No. Maybe so, said the tall person."
    )
    assert split_sentences(text) == [
        "Hello there Mr. Smith, how are you?",
        "I am fine; thanks for asking!",
        "The value is 3.14, e.g. roughly pi.",
        "J. K. Rowling wrote it.",
        "A new paragraph without a stop",
        "Yes. No. Maybe so, said the tall person.",  # short pieces merged forward
    ]


def test_split_sentences_quotes_and_short_tail():
    assert split_sentences('She said "Stop right there." Then she left the room. Ok.') == [
        'She said "Stop right there."',
        "Then she left the room. Ok.",  # a short last piece joins the previous one
    ]


def test_split_sentences_hard_splits():
    assert split_sentences("word " * 25, max_chars=50) == ["word word word word word word word word word word"] * 2 + [
        "word word word word word"
    ]
    commas = split_sentences("one two three, four five six, seven eight nine, ten", max_chars=30)
    assert commas == ["one two three, four five six,", "seven eight nine, ten"]
    assert split_sentences("x" * 120, max_chars=50) == ["x" * 50, "x" * 50, "x" * 20]
    for piece in split_sentences("lorem ipsum dolor, sit amet. " * 40, max_chars=70):
        assert 0 < len(piece) <= 70


def test_split_sentences_edges():
    assert split_sentences("") == [] and split_sentences(" \n\n \t") == []
    assert split_sentences("  no   punctuation  here ") == ["no punctuation here"]
    text = "First sentence is here. Second one is there! Third? " * 20
    assert split_sentences(text) == split_sentences(text)  # deterministic
    assert " ".join(split_sentences(text)) == " ".join(text.split())  # nothing lost or reordered
    with pytest.raises(ValueError):
        split_sentences("text", max_chars=0)
