"""Written forms a person reads out differently from their characters: web addresses, e-mail addresses,
numeric dates, a month followed by a day, simple fractions. Used by `lina.text.normalize_text` before
its number rules, so that "3/4/2025" is a date, not "three four twenty twenty-five".

Each rule turns the written form into English words, digits included where a number is read as one
("id=42" -> "i d equals forty-two"), so nothing it returns is taken apart again by the number rules.
Why not a normalizer package: NeMo's (nemo-text-processing 1.2) needs pynini, transformers and a
grammar compilation at first use, too heavy for the CPU Space; these few forms are what was missing.

    expand_written_forms("Mail jane.doe@example.org by 3/4/2025.")
    -> "Mail jane dot doe at example dot org by March fourth, twenty twenty-five."
"""
from __future__ import annotations

import re

from num2words import num2words

__all__ = ["expand_written_forms"]

MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December")
_MONTH_ABBREVIATIONS = {m[:3].lower(): m for m in MONTHS} | {"sept": "September"}
# Two-digit years up to this read as 20xx ("3/4/25" -> 2025), above it as 19xx ("3/4/85" -> 1985).
TWO_DIGIT_YEAR_PIVOT = 50
# Digit runs in an address up to this length are read as a number ("page2" -> "page two"), longer as digits.
MAX_ADDRESS_NUMBER_DIGITS = 3
# Proper fractions a/b read as such ("three quarters") for denominators in this range; others "a over b".
FRACTION_DENOMINATORS = range(2, 17)
# Top-level domains that make a bare word.word an address ("lina.ai", "example.org").
IDIOMS = {(24, 7): "twenty-four seven", (9, 11): "nine eleven", (50, 50): "fifty fifty"}
TLDS = ("com", "org", "net", "edu", "gov", "io", "ai", "dev", "app", "co", "uk", "de", "fr", "eu", "info", "me")

_ADDRESS_SYMBOLS = {".": "dot", "/": "slash", "-": "dash", "_": "underscore", "@": "at", "?": "question mark",
                    "=": "equals", "&": "and", "+": "plus", "#": "hash", "~": "tilde", ":": "colon", "%": "percent"}
_TRAILING = ".,;:!?)]}'\""
_EMAIL_RE = re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_URL_RE = re.compile(rf"(?<![\w@/])(?:https?://\S+|www\.\S+|[\w-]+(?:\.[\w-]+)*\.(?:{'|'.join(TLDS)})(?![\w-])(?:/\S*)?)",
                     re.I)
# A date or fraction may end a sentence: a following "." counts as punctuation unless a digit follows it.
_ISO_DATE_RE = re.compile(r"(?<![\d./-])(\d{4})-(\d{1,2})-(\d{1,2})(?![\d/-]|\.\d)")
_NUMERIC_DATE_RE = re.compile(r"(?<![\d./])(\d{1,2})([/.])(\d{1,2})\2(\d{4}|\d{2})(?![\d/]|\.\d)")
# Capitalised month names only: "you may 5 times" is no date.
_MONTH_DAY_RE = re.compile(r"\b(" + "|".join(MONTHS) + r"|(?:Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sept?|Oct|Nov|Dec)\.?)"
                           r"\s+(\d{1,2})(?:st|nd|rd|th)?\b(?!:)")
_FRACTION_RE = re.compile(r"(?<![\w./])(\d{1,3})/(\d{1,3})(?![\w/]|\.\d)")
_PIECES_RE = re.compile(r"[A-Za-z]+|\d+|.", re.S)


def _ordinal(value: int) -> str:
    return num2words(value, to="ordinal")


def _year(value: int) -> str:
    return num2words(value, to="year")


def _date(year: int, month: int, day: int) -> str | None:
    if not (1 <= month <= 12 and 1 <= day <= 31):
        return None
    return f"{MONTHS[month - 1]} {_ordinal(day)}, {_year(year)}"


def _iso_date(match: re.Match[str]) -> str:
    return _date(int(match[1]), int(match[2]), int(match[3])) or match[0]


def _numeric_date(match: re.Match[str]) -> str:
    """M/D/Y as in the US, or D/M/Y where the first number cannot be a month."""
    first, second, year = int(match[1]), int(match[3]), int(match[4])
    if match[2] == "." and len(match[4]) == 2:
        return match[0]  # "1.2.33" is more likely a version than a date
    if len(match[4]) == 2:
        year += 2000 if year <= TWO_DIGIT_YEAR_PIVOT else 1900
    month, day = (second, first) if first > 12 else (first, second)
    return _date(year, month, day) or match[0]


def _month_day(match: re.Match[str]) -> str:
    name = match[1].rstrip(".")
    month = _MONTH_ABBREVIATIONS.get(name.lower()[:4] if name.lower().startswith("sept") else name.lower()[:3])
    day = int(match[2])
    if month is None or not 1 <= day <= 31:
        return match[0]
    return f"{month} {_ordinal(day)}"


def _fraction(match: re.Match[str]) -> str:
    top, bottom = int(match[1]), int(match[2])
    if (top, bottom) in IDIOMS:
        return IDIOMS[top, bottom]
    if bottom not in FRACTION_DENOMINATORS or top >= bottom:
        return f"{num2words(top)} over {num2words(bottom)}"
    if bottom == 2:
        unit = "half" if top == 1 else "halves"
    elif bottom == 4:
        unit = "quarter" if top == 1 else "quarters"
    else:
        unit = _ordinal(bottom) + ("" if top == 1 else "s")
    return f"{num2words(top)} {unit}"


def _spell_address(address: str) -> str:
    """Letters as words (short all-consonant runs spelled out), digits as a number or digit by digit,
    symbols by name."""
    words = []
    for piece in _PIECES_RE.findall(address):
        if piece.isdigit():
            words.append(num2words(int(piece)) if len(piece) <= MAX_ADDRESS_NUMBER_DIGITS
                         else " ".join(num2words(int(d)) for d in piece))
        elif piece.isalpha():
            spelled = len(piece) <= 3 and not re.search(r"[aeiouy]", piece, re.I)
            words.append(" ".join(piece.lower()) if spelled else piece)
        elif piece in _ADDRESS_SYMBOLS:
            words.append(_ADDRESS_SYMBOLS[piece])
    return " ".join(words)


def _split_trailing(text: str) -> tuple[str, str]:
    """A sentence's closing punctuation is not part of the address before it."""
    end = len(text)
    while end > 0 and text[end - 1] in _TRAILING:
        end -= 1
    return text[:end], text[end:]


def _email(match: re.Match[str]) -> str:
    address, tail = _split_trailing(match[0])
    return _spell_address(address) + tail


def _url(match: re.Match[str]) -> str:
    address, tail = _split_trailing(match[0])
    address = re.sub(r"^https?://", "", address, flags=re.I).rstrip("/")
    if address.lower().startswith("www."):
        address = address[4:]
        return "w w w dot " + _spell_address(address) + tail
    return _spell_address(address) + tail


def expand_written_forms(text: str) -> str:
    """Addresses, dates and simple fractions in `text` to the words a reader says (see the module doc)."""
    text = _EMAIL_RE.sub(_email, text)
    text = _URL_RE.sub(_url, text)
    text = _ISO_DATE_RE.sub(_iso_date, text)
    text = _NUMERIC_DATE_RE.sub(_numeric_date, text)
    text = _MONTH_DAY_RE.sub(_month_day, text)
    return _FRACTION_RE.sub(_fraction, text)
