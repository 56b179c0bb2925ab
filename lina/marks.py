"""Inline marks of the text: pauses (``[pause 0.5]``, SSML ``<break time="500ms"/>``) and a pronunciation
glossary (word -> respelling), both read before the text is normalized.

    chunks = split_pauses("Hello there. [pause 1.5] Shall we begin?")
    -> [Chunk("Hello there.", 1.5), Chunk("Shall we begin?", 0.0)]
    Glossary.parse("Lina = Leena\\nGLA = G L A").apply("Lina uses GLA.") -> "Leena uses G L A."

A pause mark cuts the text where it stands: the speech before and after it are generated as separate
rows of one batch and joined with exactly that much silence (`lina.tts`). Marks that look like a pause but
do not parse are refused with a sentence saying how to write them, never read aloud.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from lina.tokenizer import TextError

__all__ = ["Chunk", "Glossary", "MAX_PAUSE_SECONDS", "split_pauses", "strip_marks"]

MAX_PAUSE_SECONDS = 10.0   # one mark's silence; longer is a mistake (or an attempt to make huge files)
MAX_GLOSSARY_ENTRIES = 200
MAX_GLOSSARY_CHARS = 100   # one word or respelling
PAUSE_HELP = 'write pauses as [pause 0.5] (seconds) or <break time="500ms"/>'
GLOSSARY_HELP = "write one entry per line as: word = respelling"

_NUMBER = r"(\d+(?:\.\d*)?|\.\d+)"
_PAUSE_RE = re.compile(rf"\[\s*pause\s+{_NUMBER}\s*(s|sec|seconds?|ms)?\s*\]", re.I)
_BREAK_RE = re.compile(rf"<\s*break\s+time\s*=\s*([\"']){_NUMBER}\s*(s|ms)\1\s*/?\s*>", re.I)
# Anything that starts like a mark: what is left of these after the valid marks are taken out is malformed.
_MARK_LIKE_RE = re.compile(r"\[\s*pause\b[^\]]*\]?|<\s*/?\s*break\b[^>]*>?", re.I)
_GLOSSARY_LINE_RE = re.compile(r"^\s*(.+?)\s*(?:=|->|→|:)\s*(.+?)\s*$")


@dataclass(frozen=True)
class Chunk:
    """Text between pause marks and the silence that follows it (seconds; 0 = the usual sentence gap)."""

    text: str
    pause: float = 0.0


def _seconds(value: str, unit: str | None, mark: str) -> float:
    seconds = float(value) / (1000.0 if (unit or "").lower() == "ms" else 1.0)
    if not 0.0 < seconds <= MAX_PAUSE_SECONDS:
        raise TextError(f"the pause {mark!r} must last more than 0 and at most {MAX_PAUSE_SECONDS:g} seconds")
    return seconds


def _marks(text: str) -> list[tuple[int, int, float]]:
    """``(start, end, seconds)`` of every valid mark, in order; raises for a malformed one."""
    found = [(m.start(), m.end(), _seconds(m[1], m[2], m[0])) for m in _PAUSE_RE.finditer(text)]
    found += [(m.start(), m.end(), _seconds(m[2], m[3], m[0])) for m in _BREAK_RE.finditer(text)]
    found.sort()
    covered = [False] * len(text)
    for start, end, _ in found:
        covered[start:end] = [True] * (end - start)
    for m in _MARK_LIKE_RE.finditer(text):
        if not covered[m.start()]:
            raise TextError(f"the pause mark {m[0][:40]!r} is not understood: {PAUSE_HELP}")
    return found


def split_pauses(text: str) -> list[Chunk]:
    """``text`` cut at its pause marks: ``[Chunk]`` in order, each with the silence after it.

    Consecutive marks add up; a mark at the start gives a first chunk with empty text (leading
    silence). Text with no marks is one chunk with ``pause`` 0. Raises `TextError` for a malformed mark
    (``[pause]``, ``[pause x]``, ``<break time="soon"/>``) or a length out of (0, 10] s.
    """
    chunks: list[Chunk] = []
    cursor = 0
    for start, end, seconds in _marks(text):
        piece = text[cursor:start].strip()
        if piece or not chunks:
            chunks.append(Chunk(piece, seconds))
        else:  # two marks in a row: one longer silence
            chunks[-1] = Chunk(chunks[-1].text, chunks[-1].pause + seconds)
        cursor = end
    chunks.append(Chunk(text[cursor:].strip(), 0.0))
    if len(chunks) > 1 and not chunks[-1].text:
        chunks.pop()  # a mark at the very end: the silence belongs to the chunk before it
    return chunks


def strip_marks(text: str) -> str:
    """``text`` with its valid pause marks replaced by spaces (what remains is read)."""
    for start, end, _ in reversed(_marks(text)):
        text = f"{text[:start]} {text[end:]}"
    return text


def describe_pauses(chunks: Iterable[Chunk]) -> str:
    """'2 pauses (1.5 s, 0.5 s)' for the info line; '' without any."""
    pauses = [c.pause for c in chunks if c.pause > 0]
    if not pauses:
        return ""
    return f"{len(pauses)} pause{'s' if len(pauses) > 1 else ''} ({', '.join(f'{p:g} s' for p in pauses)})"


@dataclass(frozen=True)
class Glossary:
    """Pronunciations: whole words (or phrases), matched case-insensitively, replaced by a respelling
    before normalization ("Nguyen" -> "win", "SQL" -> "sequel"). Longer entries win over shorter ones."""

    entries: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.entries) > MAX_GLOSSARY_ENTRIES:
            raise TextError(f"the glossary has {len(self.entries)} entries; the limit is {MAX_GLOSSARY_ENTRIES}")
        for word, spoken in self.entries.items():
            if not word.strip() or not spoken.strip() or not any(c.isalnum() for c in word):
                raise TextError(f"the glossary entry {word!r} = {spoken!r} is incomplete: {GLOSSARY_HELP}")
            if len(word) > MAX_GLOSSARY_CHARS or len(spoken) > MAX_GLOSSARY_CHARS:
                raise TextError(f"the glossary entry {word[:30]!r} is longer than {MAX_GLOSSARY_CHARS} characters")
            if _MARK_LIKE_RE.search(spoken):
                raise TextError(f"the respelling of {word!r} may not contain a pause mark")

    @classmethod
    def parse(cls, text: str | None) -> Glossary:
        """One ``word = respelling`` per line (``->``, ``→`` and ``:`` work too); blank lines and lines
        starting with ``#`` are skipped. Raises `TextError` naming a line that does not parse."""
        entries: dict[str, str] = {}
        for number, line in enumerate((text or "").splitlines(), start=1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            match = _GLOSSARY_LINE_RE.match(line)
            if match is None:
                raise TextError(f"glossary line {number} ({line.strip()[:40]!r}) is not understood: {GLOSSARY_HELP}")
            entries[" ".join(match[1].split())] = " ".join(match[2].split())
        return cls(entries)

    @classmethod
    def load(cls, path: str | Path) -> Glossary:
        """A glossary saved with `save` (the same text format as `parse`); an absent file is empty."""
        path = Path(path)
        return cls.parse(path.read_text(encoding="utf-8")) if path.is_file() else cls()

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_text(), encoding="utf-8")

    def to_text(self) -> str:
        return "".join(f"{word} = {spoken}\n" for word, spoken in self.entries.items())

    def merged(self, other: Glossary) -> Glossary:
        """This glossary with ``other``'s entries added; ``other`` wins on the same word (any case)."""
        keys = {w.lower() for w in other.entries}
        return Glossary({**{w: s for w, s in self.entries.items() if w.lower() not in keys}, **other.entries})

    def __len__(self) -> int:
        return len(self.entries)

    def apply(self, text: str) -> str:
        """``text`` with every glossary word replaced (whole words only: "cat" leaves "category" alone)."""
        if not self.entries:
            return text
        by_key = {w.lower(): s for w, s in self.entries.items()}
        words = sorted(by_key, key=len, reverse=True)
        pattern = re.compile(r"(?<!\w)(" + "|".join(re.escape(w) for w in words) + r")(?!\w)", re.I)
        return pattern.sub(lambda m: by_key[m[0].lower()], text)

    def used_in(self, text: str) -> list[str]:
        """The entries (words) that occur in ``text``: for the info line."""
        return [w for w in self.entries if re.search(rf"(?<!\w){re.escape(w)}(?!\w)", text, re.I)]
