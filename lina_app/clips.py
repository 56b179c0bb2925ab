"""Pairs the clips uploaded to build a voice with their transcripts.

Two ways, mixable: `name.wav` + `name.txt` uploaded together (paired by file name), and a textbox
with one transcript per line for the remaining clips, in upload order. An empty box with a speech
recognizer at hand: the remaining clips are transcribed (lina_app/transcriber.py).
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import gradio as gr

from lina_app.settings import MAX_TRANSCRIPT_CHARS, MAX_TUNING_CLIPS

TRANSCRIPT_SUFFIX = ".txt"
MAX_TRANSCRIPT_FILE_BYTES = 64 * 1024


def _read_transcript(path: Path) -> str:
    if path.stat().st_size > MAX_TRANSCRIPT_FILE_BYTES:
        raise gr.Error(f"Transcript file {path.name} is too large for a transcript.", print_exception=False)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise gr.Error(f"Transcript file {path.name} is not UTF-8 text.", print_exception=False) from None
    text = " ".join(text.split())
    if not text:
        raise gr.Error(f"Transcript file {path.name} is empty.", print_exception=False)
    if len(text) > MAX_TRANSCRIPT_CHARS:
        raise gr.Error(f"Transcript file {path.name} is {len(text)} characters long; the limit is "
                       f"{MAX_TRANSCRIPT_CHARS}.", print_exception=False)
    return text


def _split(files) -> tuple[list[Path], dict[str, Path]]:
    """-> (audio clips in upload order, transcript files by stem)."""
    paths = [Path(f) for f in (files or []) if f]
    audio = [p for p in paths if p.suffix.lower() != TRANSCRIPT_SUFFIX]
    return audio, {p.stem: p for p in paths if p.suffix.lower() == TRANSCRIPT_SUFFIX}


def _recognize_each(clips: list[Path], recognize: Callable[[str], str]) -> list[str]:
    """One recognized line per clip; a failure names its clip (the uploads stay: the visitor can type)."""
    lines = []
    for number, path in enumerate(clips, start=1):
        try:
            lines.append(" ".join(recognize(str(path)).split()))
        except gr.Error as error:
            raise gr.Error(f"Clip {number} ({path.name}): {error.message}", print_exception=False) from None
    return lines


def recognized_lines(files) -> list[str]:
    """The recognizer's line for every uploaded clip that has no clip.txt, in upload order."""
    from lina_app.transcriber import transcribe
    audio, texts = _split(files)
    return _recognize_each([p for p in audio[:MAX_TUNING_CLIPS] if p.stem not in texts], transcribe)


def pair_clips(files, transcripts: str | None, recognize: Callable[[str], str] | None = None) -> list[tuple[str, str]]:
    """-> `[(audio path, transcript)]` in upload order, or a `gr.Error` that says what is missing. With
    `recognize` (path -> words), an empty box is filled by it for the clips without a clip.txt."""
    audio, texts = _split(files)
    if not audio:
        raise gr.Error("Please upload at least one audio clip of the voice, with its transcript.",
                       print_exception=False)
    if len(audio) > MAX_TUNING_CLIPS:
        raise gr.Error(f"{len(audio)} clips uploaded; the limit is {MAX_TUNING_CLIPS}.", print_exception=False)
    orphans = sorted(name + TRANSCRIPT_SUFFIX for name in set(texts) - {p.stem for p in audio})
    if orphans:
        raise gr.Error(f"No audio clip matches the transcript file(s) {', '.join(orphans)}: "
                       "name each transcript like its clip (clip.wav + clip.txt).", print_exception=False)
    lines = [" ".join(line.split()) for line in (transcripts or "").splitlines()]
    lines = [line for line in lines if line]
    unpaired = [p for p in audio if p.stem not in texts]
    if not lines and unpaired and recognize is not None:
        lines = _recognize_each(unpaired, recognize)
    if len(lines) != len(unpaired):
        names = ", ".join(p.name for p in unpaired[:5]) + (", ..." if len(unpaired) > 5 else "")
        if not lines:
            raise gr.Error(f"Transcripts are missing for {len(unpaired)} clip(s) ({names}): write one line per "
                           "clip in the transcript box, in upload order, or upload clip.txt beside clip.wav.",
                           print_exception=False)
        raise gr.Error(f"{len(unpaired)} clip(s) need a transcript from the box ({names}), but it has "
                       f"{len(lines)} line(s): write exactly one line per clip, in upload order.",
                       print_exception=False)
    too_long = [line for line in lines if len(line) > MAX_TRANSCRIPT_CHARS]
    if too_long:
        raise gr.Error(f"A transcript line is {len(too_long[0])} characters long; the limit is "
                       f"{MAX_TRANSCRIPT_CHARS}.", print_exception=False)
    from_box = iter(lines)
    return [(str(p), _read_transcript(texts[p.stem]) if p.stem in texts else next(from_box)) for p in audio]
