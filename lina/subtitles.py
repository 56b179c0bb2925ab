"""Subtitles from word timestamps: SRT (with `srt`) and WebVTT (with `webvtt-py`), both maintained writers
and readers; the same cues for both.

    cues = group_words(out.words[0])           # [Cue(start, end, text, speaker)]
    to_srt(cues), to_vtt(cues)                 # the files' text

A cue is at most ``MAX_CUE_CHARS`` characters (about one line, as subtitle guidelines ask) and
``MAX_CUE_SECONDS`` long, and ends at the end of a sentence or a change of speaker. In a dialogue the
speaker is named: WebVTT's voice tag (``<v Ava>``), ``Ava: `` at the start of an SRT cue.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from lina.timestamps import WordTime

__all__ = ["Cue", "group_words", "parse_srt", "parse_vtt", "to_srt", "to_vtt"]

MAX_CUE_CHARS = 42
MAX_CUE_SECONDS = 5.0
MAX_SPEAKER_CHARS = 40
MIN_CUE_SECONDS = 0.05   # a cue must last: players drop zero-length ones
SENTENCE_END = (".", "!", "?", ";", ".\"", "!\"", "?\"")


@dataclass(frozen=True)
class Cue:
    start: float
    end: float
    text: str
    speaker: str = ""


def group_words(words: Sequence[WordTime]) -> list[Cue]:
    """Consecutive words -> cues (see the module doc); every word lands in exactly one cue, in order."""
    cues: list[Cue] = []
    current: list[WordTime] = []

    def close() -> None:
        if current:
            start, end = current[0].start, max(current[-1].end, current[0].start + MIN_CUE_SECONDS)
            if cues and start < cues[-1].end:  # a lone zero-length word must not overlap the cue before
                start = cues[-1].end
                end = max(end, start + MIN_CUE_SECONDS)
            cues.append(Cue(start, end, " ".join(w.word for w in current), current[0].speaker))
            current.clear()

    for word in words:
        if current:
            text = " ".join(w.word for w in current) + " " + word.word
            if (word.speaker != current[0].speaker or len(text) > MAX_CUE_CHARS
                    or word.end - current[0].start > MAX_CUE_SECONDS):
                close()
        current.append(word)
        if word.word.endswith(SENTENCE_END):
            close()
    close()
    return cues


def _delta(seconds: float) -> timedelta:
    return timedelta(milliseconds=round(seconds * 1000))


def _vtt_time(seconds: float) -> str:
    ms = round(seconds * 1000)
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d}.{ms % 1000:03d}"


def to_srt(cues: Sequence[Cue]) -> str:
    """SubRip text of the cues (numbered from 1)."""
    import srt

    return srt.compose([srt.Subtitle(i, _delta(c.start), _delta(c.end), f"{c.speaker}: {c.text}" if c.speaker else c.text)
                        for i, c in enumerate(cues, start=1)])


def to_vtt(cues: Sequence[Cue]) -> str:
    """WebVTT text of the cues (a dialogue's speakers as voice tags)."""
    from webvtt import Caption, WebVTT

    captions = [Caption(_vtt_time(c.start), _vtt_time(c.end), f"<v {c.speaker}>{c.text}" if c.speaker else c.text)
                for c in cues]
    return WebVTT(captions=captions).content


def parse_srt(text: str) -> list[Cue]:
    """Cues of an SRT file (a leading "Name: " is read as the speaker): to check a file round-trips."""
    import srt

    cues = []
    for sub in srt.parse(text):
        speaker, sep, rest = sub.content.partition(": ")
        plain = not sep or len(speaker) > MAX_SPEAKER_CHARS or any(c in speaker for c in ".,!?;")
        cues.append(Cue(sub.start.total_seconds(), sub.end.total_seconds(), sub.content if plain else rest,
                        "" if plain else speaker))
    return cues


def parse_vtt(text: str) -> list[Cue]:
    """Cues of a WebVTT file (voice tags read as the speaker)."""
    from webvtt import WebVTT

    return [Cue(_seconds(c.start), _seconds(c.end), c.text, getattr(c, "voice", None) or "")
            for c in WebVTT.from_string(text).captions]


def _seconds(stamp: str) -> float:
    """'01:02:03.456' (or '02:03.456') -> seconds."""
    total = 0.0
    for part in stamp.split(":"):
        total = total * 60 + float(part)
    return total
