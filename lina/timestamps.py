"""Word timestamps from the model's own text-audio alignment (the cross-attention the alignment view draws).

Three mappings, each its own function:

1. audio frame -> text token: the first cross-attention of each decoding step (``[T, Tx]``) is read as the
   token the frame speaks (argmax), made monotonic (the position net only moves forward; a stray
   backwards glance is ignored): :func:`frame_tokens`.
2. text token -> characters of the normalized text: the tokenizer's own offsets (`token_spans`).
3. characters of the normalized text -> the user's words: each word's end in the normalized text is
   where the normalization of the text up to that word ends (:func:`word_char_spans`), so "1990" read
   "nineteen ninety" is one word on screen, and a glossary respelling keeps the written word.

A word's start is the first frame that reads one of its tokens, its end the first frame that reads a
token after it (the next word's first sound), so words tile the sentence's audio.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from lina.constants import FRAME_RATE
from lina.marks import Glossary
from lina.text import normalize_text

__all__ = ["WordTime", "frame_tokens", "frame_tokens_reference", "row_words", "word_char_spans", "word_times"]

# Frames by which the position attention runs ahead of the sound: the model reads a token a little before
# it is heard (it plans the next sound). Calibrated against Whisper's word times on held-out sentences
# (lab/eval/word_times.py, lina-mini: our boundaries were 137 ms early on the dev half; docs/dialogue_subtitles.md).
ALIGNMENT_LAG_FRAMES = 10.0


@dataclass(frozen=True)
class WordTime:
    """One written word of the input and when it is heard: seconds from the start of the audio."""

    word: str
    start: float
    end: float
    speaker: str = ""

    def to_dict(self) -> dict:
        data = asdict(self)
        data["start"], data["end"] = round(self.start, 3), round(self.end, 3)
        if not self.speaker:
            data.pop("speaker")
        return data

    def shifted(self, seconds: float, speaker: str | None = None) -> WordTime:
        return WordTime(self.word, self.start + seconds, self.end + seconds,
                        self.speaker if speaker is None else speaker)


def frame_tokens_reference(alignment: np.ndarray) -> np.ndarray:
    """The loop :func:`frame_tokens` is checked against: ``[T, Tx]`` -> ``[T]`` int token per frame."""
    out = np.zeros(len(alignment), dtype=np.int64)
    best = 0
    for t, row in enumerate(alignment):
        best = max(best, int(np.argmax(row)))
        out[t] = best
    return out


def frame_tokens(alignment: np.ndarray) -> np.ndarray:
    """``alignment [T, Tx]`` (weights of one row) -> ``[T]`` the text token each frame reads, monotonic."""
    if len(alignment) == 0:
        return np.zeros(0, dtype=np.int64)
    return np.maximum.accumulate(np.asarray(alignment).argmax(axis=1))


def word_char_spans(words: Sequence[str], normalize: Callable[[str], str]) -> list[tuple[int, int]]:
    """Each written word's ``(start, end)`` characters in ``normalize(" ".join(words))``.

    A word ends where the normalization of the words up to it ends (its common prefix with the whole
    normalization, so a rule that reads a phrase differently from its start cannot push a word past the
    text). Spans are monotonic and tile the normalized text; a word normalized to nothing (a lone "-")
    gets an empty span.
    """
    full = normalize(" ".join(words))
    spans, start = [], 0
    for i in range(len(words)):
        prefix = normalize(" ".join(words[: i + 1]))
        same = 0
        limit = min(len(prefix), len(full))
        while same < limit and prefix[same] == full[same]:
            same += 1
        end = len(full) if i == len(words) - 1 else max(start, same)
        spans.append((start, end))
        start = end
    return spans


def _tokens_of(span: tuple[int, int], token_spans: Sequence[tuple[int, int]], text: str) -> tuple[int, int]:
    """Token range ``[a, b)`` whose characters overlap ``span`` (letters and digits only count: a space
    or comma token between words belongs to neither). ``(0, 0)`` when none does."""
    start, end = span
    inside = [i for i, (s, e) in enumerate(token_spans)
              if s < end and e > start and any(c.isalnum() for c in text[max(s, start):min(e, end)])]
    return (inside[0], inside[-1] + 1) if inside else (0, 0)


def word_times(words: Sequence[str], alignment: np.ndarray, text: str, token_spans: Sequence[tuple[int, int]],
               char_spans: Sequence[tuple[int, int]], frames: int | None = None,
               frame_rate: float = FRAME_RATE, lag_frames: float = ALIGNMENT_LAG_FRAMES) -> list[WordTime]:
    """Start/end seconds of each word of one row (one sentence).

    ``alignment``: ``[T, Tx]`` the row's cross-attention; ``text``: the normalized text; ``token_spans``: ``[Tx]`` characters of each
    text token in the normalized text (BOS/EOS: empty spans); ``char_spans``: each word's characters
    (:func:`word_char_spans`); ``frames``: the row's audio length in frames (default ``T``).
    Times are monotonic and within ``[0, frames / frame_rate]``; a word with no tokens gets the
    boundary where it stands (zero length).
    """
    frames = len(alignment) if frames is None else frames
    reads = frame_tokens(alignment[:frames])
    limit = frames / frame_rate

    def first_frame(token: int) -> float:
        """First frame reading ``token`` or later (``frames`` if none)."""
        at = int(np.searchsorted(reads, token, side="left"))
        return float(min(frames, at))

    def seconds(frame: float) -> float:
        return float(np.clip((frame + lag_frames) / frame_rate, 0.0, limit))

    out: list[WordTime] = []
    last = 0.0
    for word, span in zip(words, char_spans):
        a, b = _tokens_of(span, token_spans, text)
        if a == b:  # nothing spoken for this word (a lone "-"): a point where it stands
            start = end = last
        else:  # the end: the first frame reading what follows (a space, a comma, the next word, EOS)
            start = max(last, seconds(first_frame(a)))
            end = max(start, seconds(first_frame(b)))
        out.append(WordTime(word, start, end))
        last = end
    return out


def row_words(sentence: str, prefix: str, alignment: np.ndarray, spoken: str, tokenizer,
              glossary: Glossary | None = None) -> list[WordTime]:
    """Word times of one generated row: ``sentence`` as written, read after ``prefix`` (a clone prompt's
    transcript, whose words are not returned), with the glossary and normalization `prepare_text` applied;
    ``spoken`` is the text the model read and ``alignment [T, Tx]`` the row's cross-attention."""
    respell = (glossary or Glossary()).apply

    def normalize(text: str) -> str:
        plain = normalize_text(respell(text), tokenizer.alphabet, lowercase=tokenizer.lowercases, warn=False).text
        return tokenizer.strip_special_tokens(plain)

    before, words = prefix.split(), sentence.split()
    if not words:
        return []
    spans = word_char_spans(before + words, normalize)[len(before):]
    return word_times(words, alignment, spoken, tokenizer.token_spans(spoken), spans)
