"""The text tokenizer of a run (`make_tokenizer`): a character-seeded BPE with the released bpe256.json
conventions (``text_frontend="bpe"``), or the fixed phoneme vocabulary (``"phonemes"``,
`lina.phoneme_tokenizer`; the texts' phonemes: `lab.training.lm.phonemes`).

Conventions copied from the released tokenizer (what `lina.tokenizer.TextTokenizer` expects):
  * added special tokens "[PAD]" = 0, "[BOS]" = 1, "[EOS]" = 2 (the text embedding treats 0 as padding);
  * a `Lowercase` normalizer;
  * pre-tokenizer `Sequence([Punctuation("isolated"), Split(" ", "isolated")])`: merges never cross a
    space or a punctuation mark, and the space is a token of its own;
  * a BPE model whose unknown token "[UNK]" is not in the vocabulary (so unknown characters raise
    instead of being silently mapped), no byte fallback, no word prefixes or suffixes;
  * ids: the specials, then the single characters sorted, then the merges in the order learned.
The base alphabet is exactly the corpus alphabet (`lab.training.corpus.texts.ALPHABET`): every character
`normalize_text` can output for it is a token, whatever the training texts contain.
"""
from __future__ import annotations

from collections.abc import Iterable, Set
from pathlib import Path

from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

from lab.training.corpus.texts import ALPHABET
from lab.training.lm.phonemes import load_cache
from lina.constants import TEXT_BOS, TEXT_EOS
from lina.phoneme_tokenizer import ALPHABET as PHONEME_ALPHABET
from lina.phoneme_tokenizer import PhonemeTokenizer
from lina.text_frontend import AnyTokenizer
from lina.tokenizer import TEXT_PAD, TextTokenizer

VOCAB_SIZE = 256          # specials + alphabet + merges, as the released bpe256.json
SPECIAL_TOKENS = [TEXT_PAD, TEXT_BOS, TEXT_EOS]  # in id order: PAD must be 0
UNK_TOKEN = "[UNK]"       # named by the model but absent from the vocabulary, as released
MIN_PAIR_FREQUENCY = 2    # a pair seen once is noise, not a unit worth a token
# The phoneme front end reads what the corpus texts are written in: its normalizer keeps the same alphabet.
assert PHONEME_ALPHABET == ALPHABET, "phoneme front end and corpus texts disagree on the alphabet"


def empty_bpe() -> Tokenizer:
    """An untrained BPE with the released normalizer and pre-tokenizer."""
    tok = Tokenizer(models.BPE(unk_token=UNK_TOKEN))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Punctuation("isolated"),
                                                 pre_tokenizers.Split(" ", "isolated")])
    return tok


def train_tokenizer(texts: Iterable[str], vocab_size: int = VOCAB_SIZE,
                    alphabet: Set[str] = ALPHABET) -> TextTokenizer:
    """BPE of at most ``vocab_size`` ids (specials included) learned from ``texts``; deterministic.

    ``texts`` are normalized already (lowercase, ``alphabet`` only); characters outside ``alphabet`` are
    left out of the vocabulary (``limit_alphabet``), so encoding them later raises, as with bpe256.
    """
    if vocab_size < len(SPECIAL_TOKENS) + len(alphabet):
        raise ValueError(f"vocab_size {vocab_size} cannot hold {len(SPECIAL_TOKENS)} specials and "
                         f"{len(alphabet)} characters")
    tok = empty_bpe()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=MIN_PAIR_FREQUENCY,
                                  special_tokens=SPECIAL_TOKENS, initial_alphabet=sorted(alphabet),
                                  limit_alphabet=len(alphabet), show_progress=False)
    # Sorted input: the word counts, hence the merges and their tie-breaks, never depend on file order.
    tok.train_from_iterator(sorted(texts), trainer=trainer)
    wrapped = TextTokenizer(tok)
    missing = sorted(set(alphabet) - wrapped.alphabet)
    if missing:  # limit_alphabet keeps the initial alphabet first; guard against a library change
        raise RuntimeError(f"trained tokenizer cannot spell {missing}")
    return wrapped


def make_tokenizer(frontend: str, texts: Iterable[str], vocab_size: int = VOCAB_SIZE,
                   codes: str | Path | None = None) -> AnyTokenizer:
    """A new run's tokenizer: BPE learned from ``texts`` (``"bpe"``) or the phoneme vocabulary (``"phonemes"``,
    fixed: it depends on the G2P only, not on the texts): the one of the ``codes`` folder's phoneme cache
    when it has one (no G2P needed), else the installed G2P's."""
    if frontend == "bpe":
        return train_tokenizer(texts, vocab_size)
    if frontend == "phonemes":
        cached = load_cache(codes) if codes is not None else None
        return cached[0] if cached else PhonemeTokenizer.default()
    raise ValueError(f"unknown text front end {frontend!r}; expected 'bpe' or 'phonemes'")
