"""Word and character error rates on normalized text (jiwer).

Both sides go through ``normalize_for_scoring``: numbers, money, times, symbols read as words with our
own front end (``lina.text.normalize_text``, the one the model reads), lowercase, punctuation out,
hyphens and slashes as spaces, apostrophes kept inside words ("don't") and dropped at their edges.
"""
from __future__ import annotations

import re
import string
import warnings
from collections.abc import Sequence

from lina.text import TextNormalizationWarning, normalize_text

# Letters, digits (expanded to words by normalize_text anyway) and punctuation kept until the last
# step, so that "word,word" becomes two words instead of one.
_ALPHABET = frozenset(string.ascii_lowercase + string.digits + " '" + string.punctuation)
_NON_WORD = re.compile(r"[^a-z0-9' ]+")
_EDGE_APOSTROPHES = re.compile(r"(?<![a-z0-9])'+|'+(?![a-z0-9])")
_SPACES = re.compile(r"\s+")


def normalize_for_scoring(text: str) -> str:
    """``"It costs $5, Mr. O'Neil!"`` -> ``"it costs five dollars mr o'neil"``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TextNormalizationWarning)
        text = normalize_text(text or "", _ALPHABET).text
    text = _NON_WORD.sub(" ", text.lower())
    text = _EDGE_APOSTROPHES.sub(" ", text)
    return _SPACES.sub(" ", text).strip()


def _pairs(ref: str | Sequence[str], hyp: str | Sequence[str]) -> tuple[list[str], list[str]]:
    refs = [ref] if isinstance(ref, str) else list(ref)
    hyps = [hyp] if isinstance(hyp, str) else list(hyp)
    if len(refs) != len(hyps):
        raise ValueError(f"{len(refs)} references for {len(hyps)} hypotheses")
    refs, hyps = [normalize_for_scoring(r) for r in refs], [normalize_for_scoring(h) for h in hyps]
    if not any(refs):
        raise ValueError("the reference text is empty after normalization")
    # jiwer refuses empty strings; an empty side is scored as all deletions (or insertions).
    keep = [i for i, r in enumerate(refs) if r]
    return [refs[i] for i in keep], [hyps[i] for i in keep]


def _rate(kind: str, refs: list[str], hyps: list[str]) -> float:
    import jiwer

    if kind == "word":
        out = jiwer.process_words(refs, [h or "" for h in hyps])
        n = sum(len(r.split()) for r in refs)
    else:
        out = jiwer.process_characters(refs, [h or "" for h in hyps])
        n = sum(len(r) for r in refs)
    return (out.substitutions + out.deletions + out.insertions) / max(n, 1)


def wer(ref: str | Sequence[str], hyp: str | Sequence[str]) -> float:
    """Word error rate (corpus level for lists: total edits / total reference words). Can exceed 1."""
    return _rate("word", *_pairs(ref, hyp))


def cer(ref: str | Sequence[str], hyp: str | Sequence[str]) -> float:
    """Character error rate on the normalized texts (spaces count as characters)."""
    return _rate("char", *_pairs(ref, hyp))
