"""The language model's text tokenizer: a Hugging Face `tokenizers` BPE JSON read as "[BOS]" + text + "[EOS]".

`TextTokenizer.encode` reproduces the original project's ids exactly (and, like it, raises on characters
the vocabulary lacks). `prepare_text` is what the model API calls on user text: normalize, check, encode.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from os import PathLike

import torch
from tokenizers import Tokenizer

from lina.constants import TEXT_BOS, TEXT_EOS, TEXT_PAD_ID
from lina.text import normalize_text

__all__ = ["MAX_TEXT_TOKENS", "PreparedText", "TextError", "TextTokenizer", "prepare_text"]

TEXT_PAD = "[PAD]"
# The released model's convolutional position table has 2000 rows: one text, BOS/EOS included,
# can be at most that many tokens long.
MAX_TEXT_TOKENS = 2000


class TextError(ValueError):
    """User text that cannot be spoken: nothing speakable left after normalization, or too long."""


class TextTokenizer:
    """Wraps a `tokenizers.Tokenizer` with the Lina-Speech conventions (special tokens, padding, alphabet)."""

    def __init__(self, tokenizer: Tokenizer) -> None:
        self._tokenizer = tokenizer
        missing = [t for t in (TEXT_PAD, TEXT_BOS, TEXT_EOS) if tokenizer.token_to_id(t) is None]
        if missing:
            raise ValueError(f"tokenizer lacks the special token(s) {missing}; expected {TEXT_PAD}, {TEXT_BOS}, {TEXT_EOS}")
        self.pad_id: int = tokenizer.token_to_id(TEXT_PAD)
        self.bos_id: int = tokenizer.token_to_id(TEXT_BOS)
        self.eos_id: int = tokenizer.token_to_id(TEXT_EOS)
        if self.pad_id != TEXT_PAD_ID:
            # The text embedding treats id 0 as padding: another id would be embedded as a real token.
            raise ValueError(f"{TEXT_PAD} has id {self.pad_id}, the model expects {TEXT_PAD_ID}")
        self.lowercases: bool = self._normalize("ABC") == "abc"
        self.alphabet: frozenset[str] = self._spellable_characters()
        specials = sorted((t.content for t in tokenizer.get_added_tokens_decoder().values()), key=len, reverse=True)
        # User text must not smuggle in "[BOS]" and friends: they would be read as special tokens.
        self._specials_re = re.compile("|".join(map(re.escape, specials)), re.I) if specials else None

    @classmethod
    def from_file(cls, path: str | PathLike[str]) -> TextTokenizer:
        """Load a tokenizer JSON (for example the released bpe256.json) from disk."""
        return cls(Tokenizer.from_file(str(path)))

    @classmethod
    def from_str(cls, json: str) -> TextTokenizer:
        """Build from the JSON text of a tokenizer (e.g. one embedded in a checkpoint)."""
        return cls(Tokenizer.from_str(json))

    def to_str(self) -> str:
        """The tokenizer as JSON (what `from_str` reads)."""
        return self._tokenizer.to_str()

    @property
    def vocab_size(self) -> int:
        """Number of text ids, special tokens included (the text embedding's row count)."""
        return self._tokenizer.get_vocab_size(with_added_tokens=True)

    def _normalize(self, text: str) -> str:
        normalizer = self._tokenizer.normalizer
        return normalizer.normalize_str(text) if normalizer is not None else text

    def _spellable_characters(self) -> frozenset[str]:
        """Single characters whose normalized form (lowercased, for bpe256) is spelled by vocab entries.

        Every such character is safe in any context: BPE falls back to single-character tokens, so text
        made of them never reaches the unknown token (which bpe256 does not even define).
        """
        vocab_chars = {t for t in self._tokenizer.get_vocab(with_added_tokens=False) if len(t) == 1}
        candidates = vocab_chars | {c.upper() for c in vocab_chars if len(c.upper()) == 1}
        spellable = set()
        for ch in candidates:
            normalized = self._normalize(ch)
            if normalized and all(c in vocab_chars for c in normalized):
                spellable.add(ch)
        return frozenset(spellable)

    def encode(self, text: str) -> list[int]:
        """Ids of `"[BOS]" + text + "[EOS]"`, exactly as the original code; raises on unknown characters."""
        return self._tokenizer.encode(TEXT_BOS + text + TEXT_EOS).ids

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        """`(start, end)` characters of `text` each id of `encode(text)` spells (BOS/EOS: empty spans at
        the ends): how word timestamps map tokens back to words (`lina.timestamps`)."""
        shift = len(TEXT_BOS)
        spans = self._tokenizer.encode(TEXT_BOS + text + TEXT_EOS).offsets
        return [(min(max(s - shift, 0), len(text)), min(max(e - shift, 0), len(text))) for s, e in spans]

    def decode(self, ids: Sequence[int]) -> str:
        """Text of `ids`, special tokens removed (for logs and tests)."""
        return self._tokenizer.decode(list(ids), skip_special_tokens=True)

    def strip_special_tokens(self, text: str) -> str:
        """`text` with special-token strings ("[BOS]", any case) replaced by spaces."""
        if self._specials_re is None:
            return text
        stripped = text
        while (again := self._specials_re.sub(" ", stripped)) != stripped:  # "[BO[EOS]S]" takes two passes
            stripped = again
        return text if stripped == text else re.sub(" {2,}", " ", stripped).strip()


@dataclass(frozen=True)
class PreparedText:
    """What `prepare_text` made of user text: the text actually spoken, its ids, the dropped characters."""

    text: str
    ids: list[int]
    dropped: tuple[str, ...] = ()


def pad_rows(rows: Sequence[Sequence[int] | torch.Tensor], pad_id: int,
             multiple: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Token rows -> ``(ids [B, T] long, padded with pad_id; lengths [B] long)``: the one text padder of
    every batch (requests, voice tuning). ``multiple``: ``T`` rounded up to a multiple of it (fewer
    distinct shapes for compiled kernels; padding changes nothing the model reads)."""
    lengths = torch.tensor([len(r) for r in rows], dtype=torch.long)
    longest = max(lengths.tolist(), default=0)
    ids = torch.full((len(rows), longest + -longest % multiple), pad_id, dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.as_tensor(row, dtype=torch.long)
    return ids, lengths


def prepare_text(text: str, tokenizer: TextTokenizer, max_tokens: int = MAX_TEXT_TOKENS) -> PreparedText:
    """Normalize user text, check it, and encode it with BOS/EOS.

    ``tokenizer``: a `TextTokenizer` or any tokenizer with its text interface (``alphabet``, ``lowercases``,
    ``strip_special_tokens``, ``encode``), e.g. `lina.phoneme_tokenizer.PhonemeTokenizer`.
    Raises `TextError` when nothing speakable (no letter, or no id between BOS and EOS) remains, or when
    the ids, BOS and EOS included, exceed `max_tokens` (split long text with `lina.text.split_sentences`
    first). Dropped characters are warned about by `normalize_text` and listed in the result.
    """
    normalized = normalize_text(text, tokenizer.alphabet, lowercase=tokenizer.lowercases)
    spoken = tokenizer.strip_special_tokens(normalized.text)
    if not any(ch.isalpha() for ch in spoken):
        detail = f" (dropped: {''.join(normalized.dropped)!r})" if normalized.dropped else ""
        raise TextError(f"nothing speakable in the text after normalization: {text[:80]!r}{detail}")
    ids = tokenizer.encode(spoken)
    if len(ids) <= 2:  # BOS and EOS only: the front end found nothing to read
        raise TextError(f"nothing speakable in the text after normalization: {text[:80]!r}")
    if len(ids) > max_tokens:
        raise TextError(
            f"text is {len(ids)} tokens long (BOS/EOS included), the model reads at most {max_tokens}: "
            "split it into sentences (lina.text.split_sentences) and synthesize them one by one"
        )
    return PreparedText(spoken, ids, normalized.dropped)
