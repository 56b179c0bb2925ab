"""The phoneme front end's tokenizer: normalized text -> gruut phonemes -> ids (``LinaConfig.text_frontend
== "phonemes"``). The BPE front end is `lina.tokenizer.TextTokenizer`; both offer what `prepare_text`
and the training data use (``encode``, ``decode``, ``alphabet``, ``lowercases``, special ids).

Ids: ``[PAD]`` = 0, ``[BOS]`` = 1, ``[EOS]`` = 2 (as the BPE tokenizers), then the word boundary " ",
the punctuation marks, the stress marks ("ˈ", "ˌ", each before the vowel it stresses), then the 40
phonemes of gruut's en-us inventory. The vocabulary is saved beside the weights (``phonemes.json``),
with the G2P version that made it; a model always reads with the vocabulary it was trained with.

Sequence of "hello, world." : ``[BOS] h ɛ l ˈ oʊ , ␣ w ˈ ɚ l d . [EOS]`` (␣ = the boundary " ").
Symbols the vocabulary lacks (another gruut version) are dropped with a `PhonemeWarning` naming them.
"""
from __future__ import annotations

import json
import string
import warnings
from collections.abc import Sequence
from os import PathLike
from pathlib import Path


from lina.constants import TEXT_BOS, TEXT_EOS, TEXT_PAD_ID

__all__ = ["FORMAT", "PHONEMES", "PhonemeTokenizer", "PhonemeWarning"]

FORMAT, VERSION = "lina-phonemes", 1
TEXT_PAD = "[PAD]"
SPECIALS = (TEXT_PAD, TEXT_BOS, TEXT_EOS)  # ids 0, 1, 2
WORD_BOUNDARY = " "
# What normalize_text keeps for this front end: the corpus alphabet (lab.training.corpus.texts.ALPHABET);
# "/" and "'" reach gruut ("/" is dropped there, "'" is part of words: "wasn't").
PUNCTUATION = tuple('!"(),-.:;?')
ALPHABET = frozenset(string.ascii_lowercase + " '/" + "".join(PUNCTUATION))
STRESS = ("ˈ", "ˌ")  # primary, secondary
# gruut-lang-en 2.0.1's inventory: every phoneme of its lexicon and of its CRF guesser (the same 40).
PHONEMES = (
    "aɪ", "aʊ", "b", "d", "d͡ʒ", "eɪ", "f", "h", "i", "j", "k", "l", "m", "n", "oʊ", "p", "s", "t", "t͡ʃ", "u",
    "v", "w", "z", "æ", "ð", "ŋ", "ɑ", "ɔ", "ɔɪ", "ə", "ɚ", "ɛ", "ɡ", "ɪ", "ɹ", "ʃ", "ʊ", "ʌ", "ʒ", "θ",
)
DEFAULT_SYMBOLS = (WORD_BOUNDARY, *PUNCTUATION, *STRESS, *PHONEMES)


class PhonemeWarning(UserWarning):
    """Phoneme symbols outside the model's vocabulary were dropped (once per `encode` call)."""


class PhonemeTokenizer:
    """``symbols``: the vocabulary after the three specials, in id order; ``g2p``: the G2P that made it."""

    lowercases = True  # the corpus texts the models learn from are lowercase
    alphabet = ALPHABET

    def __init__(self, symbols: Sequence[str] = DEFAULT_SYMBOLS, g2p: str = "") -> None:
        symbols = tuple(symbols)
        if len(set(symbols)) != len(symbols) or set(symbols) & set(SPECIALS):
            raise ValueError("phoneme symbols must be distinct and not special tokens")
        if WORD_BOUNDARY not in symbols:
            raise ValueError("the phoneme vocabulary lacks the word boundary ' '")
        self.symbols = symbols
        self.g2p_name = g2p
        self._ids = {s: i for i, s in enumerate((*SPECIALS, *symbols))}
        self._by_id = {i: s for s, i in self._ids.items()}
        self.pad_id, self.bos_id, self.eos_id = (self._ids[s] for s in SPECIALS)
        self.boundary_id = self._ids[WORD_BOUNDARY]
        assert self.pad_id == TEXT_PAD_ID  # the text embedding treats id 0 as padding

    @classmethod
    def default(cls) -> PhonemeTokenizer:
        """The vocabulary a new phoneme model gets (records the installed G2P version)."""
        from lina.g2p import g2p_version

        return cls(DEFAULT_SYMBOLS, g2p_version())

    # ---- storage ---------------------------------------------------------------------------
    def to_str(self) -> str:
        return json.dumps({"format": FORMAT, "version": VERSION, "g2p": self.g2p_name,
                           "specials": list(SPECIALS), "symbols": list(self.symbols)}, ensure_ascii=False, indent=1)

    @classmethod
    def from_str(cls, data: str) -> PhonemeTokenizer:
        try:
            obj = json.loads(data)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not a phoneme vocabulary (JSON error: {exc})") from None
        if not isinstance(obj, dict) or obj.get("format") != FORMAT:
            raise ValueError(f"not a phoneme vocabulary: expected format {FORMAT!r}")
        if obj.get("version") != VERSION or obj.get("specials") != list(SPECIALS):
            raise ValueError(f"unsupported phoneme vocabulary (version {obj.get('version')}, specials "
                             f"{obj.get('specials')}); this code reads version {VERSION} with {list(SPECIALS)}")
        return cls(obj["symbols"], obj.get("g2p", ""))

    @classmethod
    def from_file(cls, path: str | PathLike[str]) -> PhonemeTokenizer:
        return cls.from_str(Path(path).read_text(encoding="utf-8"))

    @property
    def vocab_size(self) -> int:
        return len(self._ids)

    # ---- text -> symbols -> ids ------------------------------------------------------------
    def phonemize(self, text: str) -> list[str]:
        """Symbols of already-normalized ``text`` (no BOS/EOS), before the vocabulary check."""
        from lina.g2p import G2P

        symbols: list[str] = []
        for token in G2P.shared().words(text):
            if token.is_word:
                if symbols and symbols[-1] not in ("(", '"'):
                    symbols.append(WORD_BOUNDARY)
                for phoneme in token.phonemes:
                    base = phoneme.lstrip("".join(STRESS))
                    symbols += [*phoneme[: len(phoneme) - len(base)], base]
            else:  # punctuation: kept where the vocabulary has it ("..." is three ".")
                symbols += [ch for ch in token.text if ch in PUNCTUATION]
        return symbols

    def encode(self, text: str) -> list[int]:
        """``[BOS] + ids of text + [EOS]``; symbols outside the vocabulary are dropped (`PhonemeWarning`)."""
        ids, unknown = [self.bos_id], {}
        for symbol in self.phonemize(text):
            if symbol in self._ids:
                ids.append(self._ids[symbol])
            else:
                unknown[symbol] = None
        if unknown:
            warnings.warn(f"dropped {len(unknown)} phoneme symbol(s) this model's vocabulary lacks: "
                          f"{', '.join(map(repr, unknown))} (G2P {self.g2p_name or 'unknown'} made the "
                          "vocabulary; is another gruut installed?)", PhonemeWarning, stacklevel=2)
        return ids + [self.eos_id]

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        """``(start, end)`` characters of ``text`` behind each id of ``encode(text)``: a word's phonemes all
        span that word, a boundary or a mark its own place (BOS/EOS: empty spans at the ends)."""
        from lina.g2p import G2P

        spans: list[tuple[int, int]] = [(0, 0)]
        cursor, previous = 0, None
        for token in G2P.shared().words(text):
            found = text.find(token.text, cursor)
            start, end = (found, found + len(token.text)) if found >= 0 else (cursor, cursor)
            cursor = max(cursor, end)
            if token.is_word:
                if previous is not None and previous not in ("(", '"'):
                    spans.append((start, start))  # the boundary before the word
                for phoneme in token.phonemes:
                    base = phoneme.lstrip("".join(STRESS))
                    symbols = [*phoneme[: len(phoneme) - len(base)], base]
                    spans += [(start, end)] * sum(s in self._ids for s in symbols)
                previous = "word"
            else:
                marks = [ch for ch in token.text if ch in PUNCTUATION]
                spans += [(start, end)] * sum(m in self._ids for m in marks)
                previous = marks[-1] if marks else previous
        spans.append((len(text), len(text)))
        return spans

    def decode(self, ids: Sequence[int]) -> str:
        """The symbols of ``ids`` joined (boundaries are spaces), specials removed: for logs and tests."""
        return "".join(self._by_id[i] for i in ids if int(i) >= len(SPECIALS) and int(i) in self._by_id)

    def strip_special_tokens(self, text: str) -> str:
        """``text`` unchanged: special tokens never come from text here (ids come from the G2P only)."""
        return text
