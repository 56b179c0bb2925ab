"""Text normalization for the BPE tokenizer: numbers and symbols to words, unsupported characters out.

The released tokenizer (bpe256.json) knows only lowercase letters, space, some punctuation and a few
accented letters; any other character raises an unknown-token error deep inside `tokenizers`. So user
text goes through `normalize_text` first, which never raises and whose output only contains characters
of the given alphabet. Long text is cut into speakable pieces with `split_sentences` *before* that.
"""
from __future__ import annotations

import re
import unicodedata
import warnings
from collections.abc import Callable, Set
from dataclasses import dataclass

from num2words import num2words

from lina.text_forms import expand_written_forms

__all__ = [
    "NormalizedText",
    "TextNormalizationWarning",
    "normalize_text",
    "split_sentences",
    "DEFAULT_MAX_CHARS",
    "DEFAULT_MIN_CHARS",
]

# Integers longer than this (card numbers, ids) are read digit by digit rather than as "quadrillions".
MAX_CARDINAL_DIGITS = 15
# Four-digit numbers in this range are read as years ("nineteen eighty-four"), the common case in prose.
YEAR_RANGE = range(1100, 2100)
# Dropped characters listed in one warning message (the rest is counted).
MAX_REPORTED_CHARS = 10
# Unicode categories removed without a report: combining marks (diacritics we fold anyway), invisible
# format characters (zero-width joiners, BOM, soft hyphen) and control characters carry no speech.
SILENT_CATEGORIES = frozenset({"Mn", "Me", "Cf", "Cc"})

# Characters mapped before NFKC, which would turn "½" into "1⁄2" (then read "one/two").
_FRACTIONS = {"½": " one half ", "⅓": " one third ", "⅔": " two thirds ", "¼": " one quarter ", "¾": " three quarters "}
# Typographic punctuation to ASCII; applied only to characters the alphabet lacks (bpe256 keeps "—").
_PUNCTUATION = {
    **dict.fromkeys("‘’‚‛′`´‹›", "'"), **dict.fromkeys("“”„‟″«»", '"'),
    **dict.fromkeys("‐‑‒–—―−", "-"), "…": "...", "•": ", ", "·": " ", "_": " ", "|": " ", "\\": "/",
    **dict.fromkeys("*^~¡¿", ""),  # markup and inverted marks: no sound, dropped without a report
}
# Symbols read as words; also only where the alphabet lacks them.
_SYMBOL_WORDS = {
    "&": "and", "%": "percent", "‰": "per mille", "+": "plus", "@": "at", "=": "equals", "°": "degrees",
    "×": "times", "÷": "divided by", "±": "plus or minus", "<": "less than", ">": "greater than",
    "§": "section", "©": "copyright", "$": "dollars", "€": "euros", "£": "pounds", "¥": "yen",
}
# Letters without a Unicode decomposition that still have an obvious ASCII spelling.
_LATIN_FOLDS = {
    "ß": "ss", "ẞ": "SS", "ø": "o", "Ø": "O", "ł": "l", "Ł": "L", "đ": "d", "Đ": "D", "ð": "d", "Ð": "D",
    "þ": "th", "Þ": "TH", "æ": "ae", "Æ": "AE", "œ": "oe", "Œ": "OE", "ı": "i", "ŋ": "n", "Ŋ": "N", "ħ": "h",
    "Ħ": "H", "ſ": "s",
}
_DIGIT_WORDS = tuple(num2words(d) for d in range(10))
# Currency symbol -> (unit, units, subunit, subunits).
_CURRENCIES = {
    "$": ("dollar", "dollars", "cent", "cents"), "€": ("euro", "euros", "cent", "cents"),
    "£": ("pound", "pounds", "penny", "pence"), "¥": ("yen", "yen", "sen", "sen"),
}
_SCALES = r"thousand|million|billion|trillion"
_AMOUNT = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"  # with or without thousands separators
_AMPM = r"(?:\s?([ap])\.?m(?![a-z]))"

_RANGE_DASH_RE = re.compile(r"(?<=\d)\s?[–—]\s?(?=\d)")  # "1990–1995": an en/em dash between numbers
_NEGATIVE_RE = re.compile(r"(?<![\w.])-(?=[$€£¥]?\d)")
_CURRENCY_PREFIX_RE = re.compile(rf"([$€£¥])\s?({_AMOUNT})(?:\s?({_SCALES})\b)?", re.I)
_CURRENCY_SUFFIX_RE = re.compile(rf"(?<![\w.])({_AMOUNT})\s?([$€£¥])")
_TIME_RE = re.compile(rf"(?<![\d:])(\d{{1,2}}):(\d{{2}})(?::(\d{{2}}))?(?![\d:]){_AMPM}?", re.I)
_HOUR_AMPM_RE = re.compile(rf"(?<![\w.:])(\d{{1,2}}){_AMPM}", re.I)
_ORDINAL_RE = re.compile(r"(?<![\w.])(\d+)(st|nd|rd|th)(?![a-z])", re.I)
_DECADE_RE = re.compile(r"(?<![\w.])(?:(1\d|20)(\d0)|'?([1-9]0))s(?![a-z])", re.I)
_DOTTED_RE = re.compile(r"(?<![\d.])\d+(?:\.\d+){2,}")  # versions, IP addresses
# "555-1234", "555-555-1234": read digit by digit, before the hyphen between numbers becomes "to".
_PHONE_RE = re.compile(r"(?<![\d-])(?:\d{3}-){1,2}\d{4}(?![\d-])")
_NUMBER_RANGE_RE = re.compile(r"(?<![\d-])(\d+)-(?=\d+(?![\d-]))")  # "10-20", "1990-1995", "3-2"
_YEAR_RE = re.compile(r"(?<![\d.,])(\d{4})(?!\d|[.,]\d)")
_NUMBER_RE = re.compile(r"(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?|\.(\d+)")
_HASH_NUMBER_RE = re.compile(r"#(?=\s?\d)")
_SPACES_RE = re.compile(r"\s+")
_MULTI_SPACE_RE = re.compile(r" {2,}")
_MIXED_FRACTION_RE = re.compile(r"(?<=\d)(?=[½⅓⅔¼¾])")  # "1½" -> "1 and one half"


@dataclass(frozen=True)
class NormalizedText:
    """Result of `normalize_text`: the speakable text and the characters that had to be dropped."""

    text: str
    dropped: tuple[str, ...] = ()

    @property
    def is_empty(self) -> bool:
        """True when nothing but spaces remains (the caller decides whether that is an error)."""
        return not self.text.strip()


class TextNormalizationWarning(UserWarning):
    """Emitted (once per `normalize_text` call) when characters were dropped."""


def _digits(digits: str) -> str:
    """Digit-by-digit reading: "007" -> "zero zero seven"."""
    return " ".join(_DIGIT_WORDS[int(d)] for d in digits)


def _cardinal(digits: str) -> str:
    """Cardinal words for a digit string; zero-padded or very long strings are read digit by digit."""
    digits = digits.replace(",", "")
    if len(digits) > MAX_CARDINAL_DIGITS or (len(digits) > 1 and digits[0] == "0"):
        return _digits(digits)
    # num2words puts commas between groups ("one million, two hundred"): they would read as pauses.
    return num2words(int(digits)).replace(",", "")


def _decimal(whole: str | None, fraction: str | None) -> str:
    """ "3.14" -> "three point one four"; ".5" -> "point five"."""
    words = [_cardinal(whole)] if whole else []
    if fraction:
        words += ["point", _digits(fraction)]
    return " ".join(words)


def _year(value: int) -> str:
    return num2words(value, to="year").replace(",", "")


def _plural(words: str) -> str:
    """Plural of a number's last word, for decades: "nineteen eighty" -> "nineteen eighties"."""
    return words[:-1] + "ies" if words.endswith("y") else words + "s"


def _currency(amount: str, symbol: str, scale: str | None = None) -> str:
    unit, units, sub, subs = _CURRENCIES[symbol]
    amount = amount.replace(",", "")
    whole, _, fraction = amount.partition(".")
    if scale:  # "$1.5 million" -> "one point five million dollars"
        return f"{_decimal(whole, fraction)} {scale.lower()} {units}"
    if len(fraction) > 2:  # not a cents amount: read as a decimal
        return f"{_decimal(whole, fraction)} {units}"
    cents = int(fraction.ljust(2, "0")) if fraction else 0
    parts = [] if whole.strip("0") == "" and cents else [f"{_cardinal(whole)} {unit if int(whole) == 1 else units}"]
    if cents:
        parts.append(f"{_cardinal(str(cents))} {sub if cents == 1 else subs}")
    return " and ".join(parts)


def _ampm(letter: str | None) -> str:
    return f" {letter.lower()} m" if letter else ""


def _time(match: re.Match[str]) -> str | None:
    hour, minute = int(match[1]), int(match[2])
    second = int(match[3]) if match[3] else 0
    if hour > 24 or minute > 59 or second > 59:
        return None  # not a clock time (a score, a ratio): the generic rules read it
    if minute == 0:
        words = num2words(hour) + ("" if match[4] else " o'clock" if 0 < hour <= 12 else " hundred")
    else:
        words = f"{num2words(hour)} {'oh ' if minute < 10 else ''}{num2words(minute)}"
    if second:
        words += f" and {num2words(second)} second{'s' if second > 1 else ''}"
    return words + _ampm(match[4])


def _decade(match: re.Match[str]) -> str:
    if match[1]:  # "1990s" -> "nineteen nineties"
        return _plural(_year(int(match[1] + match[2])))
    return _plural(num2words(int(match[3])))  # "80s", "'80s" -> "eighties"


def _year_or_number(match: re.Match[str]) -> str:
    value = int(match[1])
    return _year(value) if value in YEAR_RANGE else _cardinal(match[1])


def _spoken_sub(
    pattern: re.Pattern[str],
    convert: Callable[[re.Match[str]], str | None],
    text: str,
    touching: Callable[[str], bool] = str.isalnum,
) -> str:
    """`pattern.sub` whose words get a space where they would touch a `touching` character.

    By default letters and digits ("mp3" -> "mp three"), not punctuation ("1984," stays tight).
    """

    def replace(match: re.Match[str]) -> str:
        words = convert(match)
        if words is None:
            return match[0]
        start, end = match.span()
        left = " " if start > 0 and touching(text[start - 1]) else ""
        right = " " if end < len(text) and touching(text[end]) else ""
        return f"{left}{words}{right}"

    return pattern.sub(replace, text)


def _expand_numbers(text: str) -> str:
    """Every ASCII digit to words; the order matters: specific shapes (money, times) before plain numbers."""
    text = _NEGATIVE_RE.sub("minus ", text)
    text = _spoken_sub(_CURRENCY_PREFIX_RE, lambda m: _currency(m[2], m[1], m[3]), text)
    text = _spoken_sub(_CURRENCY_SUFFIX_RE, lambda m: _currency(m[1], m[2]), text)
    text = _spoken_sub(_TIME_RE, _time, text)
    text = _spoken_sub(_HOUR_AMPM_RE, lambda m: num2words(int(m[1])) + _ampm(m[2]), text)
    text = _spoken_sub(_ORDINAL_RE, lambda m: _ordinal(m[1]), text)
    text = _spoken_sub(_DECADE_RE, _decade, text)
    text = _spoken_sub(_DOTTED_RE, lambda m: " dot ".join(_cardinal(p) for p in m[0].split(".")), text)
    text = _spoken_sub(_PHONE_RE, lambda m: ", ".join(_digits(g) for g in m[0].split("-")), text)
    text = _NUMBER_RANGE_RE.sub(r"\1 to ", text)
    text = _spoken_sub(_YEAR_RE, _year_or_number, text)
    text = _spoken_sub(_NUMBER_RE, lambda m: _decimal(m[1], m[2] or m[3]), text)
    return text


def _ordinal(digits: str) -> str:
    if len(digits) > MAX_CARDINAL_DIGITS:
        return _digits(digits)
    return num2words(int(digits), to="ordinal").replace(",", "")


def _to_ascii_digits(text: str) -> str:
    """Other scripts' decimal digits ("٣", "३") to ASCII, so the number rules see them."""
    return "".join(str(unicodedata.decimal(ch)) if ch.isdecimal() and not ch.isascii() else ch for ch in text)


def _fold(ch: str, alphabet: Set[str]) -> str:
    """The spelling of `ch` in the alphabet: itself, its accent-free form, or "" when it has none."""
    folded = _LATIN_FOLDS.get(ch)
    if folded is None:
        folded = "".join(c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c))
    kept = "".join(c for c in folded if c in alphabet)
    if not kept and ch.lower() != ch:  # a cased alphabet without this capital: use the small letter
        kept = "".join(c if c in alphabet else _fold(c, alphabet) for c in ch.lower())
    return kept


def normalize_text(text: str, alphabet: Set[str], *, lowercase: bool = True, warn: bool = True) -> NormalizedText:
    """Rewrite `text` so that every character is in `alphabet`, reading numbers and symbols as words.

    Steps: NFKC; typographic punctuation to ASCII; whitespace runs to one space; numbers (money, times,
    ordinals, years, decades, decimals, negatives) and symbols (& % + @ = ...) to English words;
    lowercase (when `lowercase`, as the released tokenizer does anyway); accents folded when the
    alphabet lacks the accented letter; anything else dropped, listed in `.dropped` and warned about
    once (`TextNormalizationWarning`; not when `warn` is False). Web and e-mail addresses, numeric dates,
    "March 4" and simple fractions are read as a person reads them first (`lina.text_forms`).
    Never raises for any string; the result may be empty.
    """
    if not isinstance(text, str):
        raise TypeError(f"normalize_text expects str, got {type(text).__name__}")
    text = "".join(_FRACTIONS.get(ch, ch) for ch in _MIXED_FRACTION_RE.sub(" and", text))
    text = _to_ascii_digits(unicodedata.normalize("NFKC", text))
    text = expand_written_forms(text)  # before the number rules: "3/4/2025" is a date, not three numbers
    text = _RANGE_DASH_RE.sub(" to ", text)  # before the dashes become "-" (which would read as minus)
    text = text.translate(str.maketrans({k: v for k, v in _PUNCTUATION.items() if k not in alphabet}))
    text = _SPACES_RE.sub(" ", text)
    text = _spoken_sub(_HASH_NUMBER_RE, lambda m: "number", text)
    text = _expand_numbers(text)
    symbols = {k: v for k, v in _SYMBOL_WORDS.items() if k not in alphabet}
    if symbols:
        symbol_re = re.compile("[" + re.escape("".join(symbols)) + "]")
        # Symbols also keep apart from each other: "c++" -> "c plus plus".
        text = _spoken_sub(symbol_re, lambda m: symbols[m[0]], text, lambda c: c.isalnum() or c in symbols)
    if lowercase:
        text = text.lower()

    kept: list[str] = []
    dropped: dict[str, None] = {}  # ordered set
    for ch in text:
        if ch in alphabet:
            kept.append(ch)
        elif folded := _fold(ch, alphabet):
            kept.append(folded)
        elif ch.isspace() or unicodedata.category(ch) in SILENT_CATEGORIES:
            continue
        else:
            dropped[ch] = None
    result = _MULTI_SPACE_RE.sub(" ", "".join(kept)).strip(" ")
    if dropped and warn:
        shown = ", ".join(f"{ch!r} (U+{ord(ch):04X})" for ch in list(dropped)[:MAX_REPORTED_CHARS])
        more = len(dropped) - MAX_REPORTED_CHARS
        warnings.warn(
            f"dropped {len(dropped)} unsupported character(s): {shown}{f' and {more} more' if more > 0 else ''}",
            TextNormalizationWarning,
            stacklevel=2,
        )
    return NormalizedText(result, tuple(dropped))


# ---------------------------------------------------------------------------------------------- sentences
# Pieces longer than this are cut (raw characters; about 20 s of speech, far below the token limit).
DEFAULT_MAX_CHARS = 300
# Pieces shorter than this are merged with a neighbour: a lone "Yes." or "Chapter 1" sounds clipped.
DEFAULT_MIN_CHARS = 20
# Words that end with "." without ending a sentence (compared lowercase, without the final ".").
_ABBREVIATIONS = frozenset(
    "mr mrs ms dr prof sr jr st mt vs fig no nos vol ch sec p pp ed eds approx dept est inc ltd co corp "
    "jan feb mar apr jun jul aug sep sept oct nov dec gen col lt sgt capt cf al".split()
)
_BOUNDARY_RE = re.compile(r"[.!?;]+[\"')\]}’”]*(?=\s)")  # terminal marks, closing quotes, then a space
_DOTTED_ABBREVIATION_RE = re.compile(r"(?:[a-z]\.)+[a-z]")  # "e.g", "i.e", "u.s"
_SOFT_BREAKS = (", ", "; ", ": ", " — ", " – ", " - ")  # preferred cut points of an over-long piece


def _ends_sentence(text: str, boundary: re.Match[str]) -> bool:
    """Whether the marks at `boundary` end a sentence (not "Mr.", "e.g.", "J. K. Rowling")."""
    if boundary[0] != ".":
        return True  # "!", "?", ";", "...", '."' all end one
    # The word before the period (whitespace is single spaces here); rfind keeps this linear overall.
    end = boundary.start()
    token = text[text.rfind(" ", 0, end) + 1 : end].lstrip("\"'([{‘“").lower()
    is_initial = len(token) == 1 and token.isalpha()
    return not (is_initial or token in _ABBREVIATIONS or _DOTTED_ABBREVIATION_RE.fullmatch(token))


def _sentences(line: str) -> list[str]:
    pieces, start = [], 0
    for boundary in _BOUNDARY_RE.finditer(line):
        if _ends_sentence(line, boundary):
            pieces.append(line[start : boundary.end()].strip())
            start = boundary.end()
    pieces.append(line[start:].strip())
    return [p for p in pieces if p]


def _hard_split(piece: str, max_chars: int) -> list[str]:
    """Cut `piece` into parts of at most `max_chars`, at a comma-like break, else a space, else anywhere."""
    parts = []
    while len(piece) > max_chars:
        window = piece[: max_chars + 1]
        # A soft break in the first third would leave a tiny head and a long tail: prefer a space then.
        cut = max((window.rfind(b) + 1 for b in _SOFT_BREAKS), default=0)
        if cut < max_chars // 3:
            cut = window.rfind(" ")
        if cut <= 0:
            cut = max_chars
        parts.append(piece[:cut].strip())
        piece = piece[cut:].strip()
    parts.append(piece)
    return [p for p in parts if p]


def _merge_short(pieces: list[str], min_chars: int, max_chars: int) -> list[str]:
    """Join pieces shorter than `min_chars` with the next one (the last with the previous), within `max_chars`."""
    merged: list[str] = []
    for piece in pieces:
        if merged and len(merged[-1]) < min_chars and len(merged[-1]) + 1 + len(piece) <= max_chars:
            merged[-1] = f"{merged[-1]} {piece}"
        else:
            merged.append(piece)
    if len(merged) > 1 and len(merged[-1]) < min_chars and len(merged[-2]) + 1 + len(merged[-1]) <= max_chars:
        merged[-2:] = [f"{merged[-2]} {merged[-1]}"]
    return merged


def split_sentences(text: str, max_chars: int = DEFAULT_MAX_CHARS, min_chars: int = DEFAULT_MIN_CHARS) -> list[str]:
    """Split raw text into pieces to synthesize one by one, each of at most `max_chars` characters.

    Cuts at newlines and after . ! ? ; (followed by a space), but not after abbreviations ("Mr.",
    "e.g."), initials ("J. K.") or inside decimals ("3.14"); merges pieces shorter than `min_chars`
    with a neighbour; cuts pieces longer than `max_chars` at a comma, else a space. Whitespace runs
    become single spaces; blank text gives []. Run it before `normalize_text` (which removes newlines).
    """
    if max_chars < 1:
        raise ValueError(f"max_chars must be positive, got {max_chars}")
    pieces = []
    for line in text.splitlines():
        line = _SPACES_RE.sub(" ", line).strip()
        for sentence in _sentences(line):
            pieces += _hard_split(sentence, max_chars)
    return _merge_short(pieces, min_chars, max_chars)
