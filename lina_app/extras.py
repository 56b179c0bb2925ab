"""What every synthesis endpoint can add: a pronunciation glossary (the request's entries over the saved
default), a speed (time-stretched after generation), and the word timestamps as JSON, SRT and WebVTT files;
with the info-line words that echo them."""
from __future__ import annotations

import os
import threading
from collections import OrderedDict
from pathlib import Path

import gradio as gr
import numpy as np

from lina.constants import SAMPLE_RATE
from lina.marks import Glossary
from lina.speed import change_speed
from lina.subtitles import group_words, to_srt, to_vtt
from lina.timestamps import WordTime
from lina.watermark import apply_watermark
from lina_app.fields import SPEED, SPEED_NOTE
from lina_app.outputs import OutputDir
from lina_app.settings import REPO_ROOT

GLOSSARY_ENV_VAR = "LINA_GLOSSARY"
DEFAULT_GLOSSARY_FILE = REPO_ROOT / "glossary.txt"   # the Space's saved default (one "word = respelling" a line)
MAX_GLOSSARY_TEXT_CHARS = 5000
GLOSSARY_PLACEHOLDER = "one per line, e.g.\nNguyen = win\nSQL = sequel"
SHOWN_ENTRIES = 4
LAST_WORDS_SESSIONS = 1000


def default_glossary() -> Glossary:
    """The saved default glossary: $LINA_GLOSSARY, else glossary.txt beside app.py (absent: empty)."""
    return Glossary.load(os.environ.get(GLOSSARY_ENV_VAR) or DEFAULT_GLOSSARY_FILE)


def request_glossary(text) -> Glossary:
    """The saved default with the request's entries over it (raises `TextError` for a malformed line)."""
    text = text if isinstance(text, str) else ""
    if len(text) > MAX_GLOSSARY_TEXT_CHARS:
        raise gr.Error(f"The glossary is {len(text)} characters long; the limit is {MAX_GLOSSARY_TEXT_CHARS}.",
                       print_exception=False)
    return default_glossary().merged(Glossary.parse(text))


def glossary_note(glossary: Glossary, text: str) -> str:
    """'glossary: Lina → Leena, GLA → G L A' for the entries the text uses ('' for none)."""
    used = glossary.used_in(text)
    if not used:
        return ""
    shown = ", ".join(f"{w} → {glossary.entries[w]}" for w in used[:SHOWN_ENTRIES])
    return f"glossary: {shown}" + (f" (+{len(used) - SHOWN_ENTRIES} more)" if len(used) > SHOWN_ENTRIES else "")


def speed_note(speed: float, seconds: float | None = None) -> str:
    """'speed 1.25x (...), 8.1 s' for the info line ('' at 1x); ``seconds``: the audio's length after it."""
    if speed == 1.0:
        return ""
    return f"speed {speed:g}x ({SPEED_NOTE})" + (f", {seconds:.1f} s" if seconds is not None else "")


def at_speed(audio: np.ndarray, words: list[WordTime], speed: float) -> tuple[np.ndarray, list[WordTime]]:
    """Audio and its word times after the speed change (times divided by the factor)."""
    if speed == 1.0:
        return audio, words
    # Marked again after the stretch: the mark survived 0.7-1.5x in our checks, but every audio the app
    # returns must carry it, not probably carry it.
    stretched = apply_watermark(change_speed(audio, speed), SAMPLE_RATE)
    return stretched, [WordTime(w.word, w.start / speed, w.end / speed, w.speaker) for w in words]


def words_json(words: list[WordTime]) -> list[dict]:
    """What the API returns: ``[{"word", "start", "end"(, "speaker")}]``, seconds rounded to the millisecond."""
    return [w.to_dict() for w in words]


def subtitle_files(out: OutputDir, words: list[WordTime], name: str) -> list[str]:
    """``name.srt`` and ``name.vtt`` of the words (one folder each, downloadable names)."""
    cues = group_words(words)
    paths = []
    for suffix, text in ((".srt", to_srt(cues)), (".vtt", to_vtt(cues))):
        path = out.new_path(f"{name}{suffix}")
        Path(path).write_text(text, encoding="utf-8")
        paths.append(str(path))
    return paths


# ---- UI pieces shared by the tabs --------------------------------------------------------------------
def speech_options(prefix: str) -> tuple[gr.Textbox, gr.Slider]:
    """The pronunciation box and the speed slider (inside the caller's layout)."""
    saved = len(default_glossary())
    glossary = gr.Textbox("", label="Pronunciations: word = respelling, one a line"
                          + (f" (over the saved default's {saved} entries)" if saved else ""), lines=2,
                          placeholder=GLOSSARY_PLACEHOLDER, elem_id=f"{prefix}-glossary")
    speed = SPEED.widget(f"{prefix}-speed")
    return glossary, speed


def subtitle_outputs(prefix: str) -> tuple[gr.File, gr.JSON]:
    files = gr.File(label="Subtitles (SRT, WebVTT)", file_count="multiple", interactive=False,
                    elem_id=f"{prefix}-subtitles")
    with gr.Accordion("Word timestamps (JSON)", open=False):  # long for a long text: folded
        words = gr.JSON(label="Word timestamps", elem_id=f"{prefix}-words")
    return files, words


class LastWords:
    """The word timestamps of each visitor's last speech (by session; the oldest dropped beyond
    ``limit``), for the subtitle files the page shows after it: the endpoint's API result stays as it was."""

    def __init__(self, limit: int = LAST_WORDS_SESSIONS) -> None:
        self._words: OrderedDict[str, list[WordTime]] = OrderedDict()
        self._lock = threading.Lock()
        self.limit = limit

    def put(self, session: str, words: list[WordTime]) -> None:
        with self._lock:
            self._words[session] = words
            self._words.move_to_end(session)
            while len(self._words) > self.limit:
                self._words.popitem(last=False)

    def get(self, session: str) -> list[WordTime] | None:
        with self._lock:
            return self._words.get(session)
