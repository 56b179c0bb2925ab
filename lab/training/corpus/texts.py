"""English sentences from offline Debian packages, normalized the way `lina` normalizes text.

Sources (each optional; missing packages are skipped and reported):
- `sword-text-web`: the World English Bible (SWORD zText module: zlib blocks + verse index);
- `wordnet-base`: the quoted usage examples in WordNet's data files;
- `dict-gcide`: the literary quotations in the Collaborative International Dictionary of English;
- `fortunes`, `fortunes-min`: the fortune cookie files (the non-offensive set).
Every sentence goes through `lina.text.split_sentences` and `lina.text.normalize_text` with the
character model's alphabet, then a filter keeps speakable ones (length, letters, no leftovers).
"""
from __future__ import annotations

import gzip
import hashlib
import re
import struct
import warnings
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from lina.text import TextNormalizationWarning, normalize_text, split_sentences

ALPHABET = frozenset("abcdefghijklmnopqrstuvwxyz !\"'(),-./:;?")
SWORD_DIR = Path("/usr/share/sword/modules/texts/ztext/engWEB2015eb")
WORDNET_DIR = Path("/usr/share/wordnet")
GCIDE_FILE = Path("/usr/share/dictd/gcide.dict.dz")
FORTUNE_DIR = Path("/usr/share/games/fortunes")
SOURCES = ("web", "wordnet", "gcide", "fortunes")
MIN_CHARS, MAX_CHARS = 24, 220
MIN_WORDS = 5


@dataclass(frozen=True)
class Sentence:
    id: str  # source + hash of the normalized text: stable across runs and machines
    text: str
    source: str


# ------------------------------------------------------------------------------------------------ readers
def _sword_verses(directory: Path) -> Iterator[str]:
    """Verse texts of a SWORD zText module (.bzs: block offsets, .bzz: zlib blocks, .bzv: verses)."""
    for testament in ("ot", "nt"):
        bzs, bzz, bzv = (directory / f"{testament}.{ext}" for ext in ("bzs", "bzz", "bzv"))
        if not bzs.exists():
            continue
        index, packed, verses = bzs.read_bytes(), bzz.read_bytes(), bzv.read_bytes()
        blocks = []
        for i in range(len(index) // 12):
            offset, size, _ = struct.unpack_from("<III", index, i * 12)
            blocks.append(zlib.decompress(packed[offset : offset + size]))
        for i in range(len(verses) // 10):
            block, offset, size = struct.unpack_from("<IIH", verses, i * 10)
            if size:
                yield blocks[block][offset : offset + size].decode("utf-8", errors="replace")


_OSIS_DROP_RE = re.compile(r"<(note|title)\b[^>]*?(?<!/)>.*?</\1>", re.DOTALL)
_TAG_RE = re.compile(r"<[^>]+>")


def read_web() -> Iterator[str]:
    for verse in _sword_verses(SWORD_DIR):
        yield _TAG_RE.sub("", _OSIS_DROP_RE.sub(" ", verse))


def read_wordnet() -> Iterator[str]:
    for pos in ("noun", "verb", "adj", "adv"):
        path = WORDNET_DIR / f"data.{pos}"
        if not path.exists():
            continue
        for line in path.read_text(encoding="latin-1").splitlines():
            if line.startswith("  ") or "|" not in line:
                continue  # license header
            yield from re.findall(r'"([^"]+)"', line.split("|", 1)[1])


_GCIDE_AUTHOR_RE = re.compile(r"\s--\s?[A-Z][^.]*(\.[^.]*){0,3}\.?\s*$")


def read_gcide() -> Iterator[str]:
    """Quotations: blocks indented by 10+ spaces, ended by an author tag (`--Milton.`) or a source."""
    if not GCIDE_FILE.exists():
        return
    text = gzip.decompress(GCIDE_FILE.read_bytes()).decode("utf-8", errors="replace")
    block: list[str] = []
    for line in text.splitlines():
        if line.startswith(" " * 10) and not line.strip().startswith("["):
            block.append(line.strip())
            continue
        if block:
            quote = " ".join(block)
            if "--" in quote:  # attributed: a real quotation, not an indented table
                yield quote[: quote.rfind("--")].strip()
            block = []


def read_fortunes() -> Iterator[str]:
    if not FORTUNE_DIR.is_dir():
        return
    for path in sorted(FORTUNE_DIR.iterdir()):
        if path.suffix or not path.is_file():
            continue  # .dat indexes, .u8 copies
        for entry in path.read_text(encoding="utf-8", errors="replace").split("\n%\n"):
            if "\t\t--" in entry or "\n\t\t" in entry:
                entry = re.split(r"\n\s*--|\n\t\t", entry)[0]  # drop attributions
            if not re.search(r"^\s*\w+:", entry, re.MULTILINE):  # skip dialogues ("A: ... B: ...")
                yield entry


READERS = {"web": read_web, "wordnet": read_wordnet, "gcide": read_gcide, "fortunes": read_fortunes}


# ------------------------------------------------------------------------------------------------ cleaning
_NUMBERING_RE = re.compile(r"^\s*\(?(\d+|[a-z])[.)]\s+")  # "2. It is applied ...", "(a) ..."
_OK_RE = re.compile(r"^[a-z(\"'][a-z !\"'(),\-.:;?]*[a-z.!?\"')]$")
_BAD_RE = re.compile(r"(\.\s*){3,}|--|\(\s*\)|\b(\w)\s\2\s\2\b|[a-z]\?[a-z]|\bhttp|\bwww\b| [b-hj-z] [b-hj-z] ")


def clean(raw: str) -> list[str]:
    """Raw text to normalized, speakable sentences (possibly none)."""
    raw = _NUMBERING_RE.sub("", raw.replace("\n", " "))
    if re.search(r"[=<>{}\[\]|_#@*/\\]|\d{5,}|[A-Z]{5,}", raw):
        return []  # code, tables, ascii art, shouting
    out = []
    for piece in split_sentences(raw, max_chars=MAX_CHARS, min_chars=MIN_CHARS):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", TextNormalizationWarning)
            norm = normalize_text(piece, ALPHABET)
        text = norm.text
        if norm.dropped or not (MIN_CHARS <= len(text) <= MAX_CHARS):
            continue
        if len(text.split()) < MIN_WORDS or not _OK_RE.match(text) or _BAD_RE.search(text):
            continue
        if text.count('"') % 2 or text.count("(") != text.count(")"):
            continue
        if text[-1] not in ".!?\"')":
            text += "."
        out.append(text)
    return out


def sentence_id(source: str, text: str) -> str:
    return f"{source}-{hashlib.sha1(text.encode()).hexdigest()[:12]}"


def load_sentences(sources: tuple[str, ...] = SOURCES, limit_per_source: int | None = None) -> list[Sentence]:
    """Unique sentences of the installed sources, in a fixed order (source, then id)."""
    seen: set[str] = set()
    out: list[Sentence] = []
    for source in sources:
        found = []
        for raw in READERS[source]():
            for text in clean(raw):
                if text not in seen:
                    seen.add(text)
                    found.append(Sentence(sentence_id(source, text), text, source))
        found.sort(key=lambda s: s.id)
        out += found[:limit_per_source] if limit_per_source else found
    return out


def source_status() -> dict[str, bool]:
    """Which Debian text sources are installed here."""
    return {"web": SWORD_DIR.is_dir(), "wordnet": (WORDNET_DIR / "data.noun").exists(),
            "gcide": GCIDE_FILE.exists(), "fortunes": FORTUNE_DIR.is_dir()}
