"""Dialogue scripts: every line spoken by its own voice, all lines generated as ONE batch.

    script = "Ava: Did you see the boats this morning?\\nJoe: Twelve of them. [pause 0.5] A record."
    out = tts.synthesize_dialogue(script, {"Ava": Voice.load("voices/ava_happy.safetensors"), "Joe": joe})
    out.audio            # float32 [S]: the lines in script order, `gap` seconds apart
    out.lines            # [DialogueLine(speaker, text, start, end, finished)]
    out.words            # [WordTime(word, start, end, speaker)]

Each line is split into sentences as `LinaTTS.synthesize` splits a text (pause marks included); each
sentence is one row of the batch with its speaker's initial state (Lina's voices are initial states,
so different voices share a batch). ``line_by_line=True`` also times the lines generated one request
each, as a script is spoken without this batching, for the speed-up.
"""
from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from lina.constants import SAMPLE_RATE
from lina.marks import Glossary
from lina.sampling import DEFAULT_TOP_K
from lina.timestamps import WordTime
from lina.tokenizer import TextError
from lina.rows import MAX_ROW_SECONDS, MAX_SENTENCES, join_rows
from lina.voice import Voice

__all__ = ["DEFAULT_GAP_SECONDS", "Dialogue", "DialogueLine", "parse_script", "synthesize_dialogue"]

DEFAULT_GAP_SECONDS = 0.4    # silence between two lines: a quick, natural turn-taking
MAX_GAP_SECONDS = 5.0
MAX_SPEAKER_CHARS = 40
SCRIPT_HELP = "write one line per turn as Name: text"
# "Name: text": a name of letters, digits, spaces, dots, apostrophes, hyphens or underscores.
_LINE_RE = re.compile(r"^\s*([^\W\d_][\w .'\-]{0,%d}?)\s*:\s*(.*)$" % (MAX_SPEAKER_CHARS - 1))


@dataclass(frozen=True)
class DialogueLine:
    """One turn of the script and where it is in the audio (seconds)."""

    speaker: str
    text: str
    start: float
    end: float
    finished: bool = True   # every sentence ended with EOS within its budget

    def to_dict(self) -> dict:
        return {"speaker": self.speaker, "text": self.text, "start": round(self.start, 3), "end": round(self.end, 3)}


@dataclass
class Dialogue:
    audio: np.ndarray                   # float32 [S] at sample_rate
    sample_rate: int
    lines: list[DialogueLine]
    words: list[WordTime]               # every word with its speaker, seconds from the start
    rows: int                           # rows of the one batch (sentences of all lines)
    tokens: int                         # audio tokens generated
    seconds: float                      # wall time of the batch (generation and decoding)
    line_by_line_seconds: float | None = None   # the same lines one request each, when measured

    @property
    def duration(self) -> float:
        return len(self.audio) / self.sample_rate

    @property
    def speedup(self) -> float | None:
        """Line-by-line time over the batch's: how much the shared batch saves (None if not measured)."""
        return None if self.line_by_line_seconds is None else self.line_by_line_seconds / max(self.seconds, 1e-9)


def parse_script(script: str | Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """``"Name: text"`` lines -> ``[(speaker, text)]`` (a list of pairs is checked and returned).

    Blank lines are skipped; a line without a name continues the turn before it. Raises `TextError`
    with the line number for a first line without a speaker or a turn without text.
    """
    if isinstance(script, str):
        turns: list[tuple[str, str]] = []
        for number, line in enumerate(script.splitlines(), start=1):
            if not line.strip():
                continue
            match = _LINE_RE.match(line)
            if match:
                turns.append((" ".join(match[1].split()), match[2].strip()))
            elif turns:
                turns[-1] = (turns[-1][0], f"{turns[-1][1]} {line.strip()}".strip())
            else:
                raise TextError(f"line {number} ({line.strip()[:40]!r}) names no speaker: {SCRIPT_HELP}")
    else:
        turns = [(str(speaker).strip(), str(text).strip()) for speaker, text in script]
    if not turns:
        raise TextError(f"the script is empty: {SCRIPT_HELP}")
    for number, (speaker, text) in enumerate(turns, start=1):
        if not speaker:
            raise TextError(f"turn {number} names no speaker: {SCRIPT_HELP}")
        if not any(ch.isalnum() for ch in text):
            raise TextError(f"turn {number} ({speaker}) has nothing to say: {SCRIPT_HELP}")
    return turns


def speakers(turns: Sequence[tuple[str, str]]) -> list[str]:
    """The script's speakers in order of first appearance, each once (names compare case-insensitively)."""
    seen: dict[str, str] = {}
    for speaker, _ in turns:
        seen.setdefault(speaker.lower(), speaker)
    return list(seen.values())


def synthesize_dialogue(tts, script: str | Sequence[tuple[str, str]], voices: Mapping[str, Voice | None] | None = None,
                        *, gap: float = DEFAULT_GAP_SECONDS, top_k: int = DEFAULT_TOP_K, temperature: float = 1.0,
                        seed: int | None = 0, max_seconds: float = MAX_ROW_SECONDS, glossary: Glossary | None = None,
                        line_by_line: bool = False) -> Dialogue:
    """Speaks a script (``"Name: text"`` lines, or ``(name, text)`` pairs) in one batch.

    ``voices``: speaker name (any case) -> `Voice`, or None for the untuned model; every speaker of the
    script needs an entry (``voices=None``: everyone untuned). ``gap``: silence between lines (a line that
    ends with a pause mark gets the mark's silence instead). ``line_by_line``: also generate each line as
    a request of its own (same seed), timed for `Dialogue.speedup`; its audio is discarded.
    """
    turns = parse_script(script)
    if not 0.0 <= gap <= MAX_GAP_SECONDS:
        raise TextError(f"the gap between lines must be between 0 and {MAX_GAP_SECONDS:g} seconds, got {gap}")
    by_name = {k.lower(): v for k, v in (voices or {}).items()}
    missing = [s for s in speakers(turns) if voices is not None and s.lower() not in by_name]
    if missing:
        raise TextError(f"no voice for {', '.join(map(repr, missing))}: give a voice for every speaker of the script")
    plans = [tts.plan(text) for _, text in turns]
    rows = [s for plan in plans for s in plan.sentences]
    if len(rows) > MAX_SENTENCES:
        raise TextError(f"the script has {len(rows)} sentences; the limit is {MAX_SENTENCES} per request")
    row_voices = [by_name.get(speaker.lower()) for (speaker, _), plan in zip(turns, plans) for _ in plan.sentences]
    options = dict(top_k=top_k, temperature=temperature, seed=seed, max_seconds=max_seconds, glossary=glossary)

    start = time.perf_counter()
    batch = tts.generate_rows(rows, row_voices, **options)
    # Silence after each row: within a line its sentence gaps and marks; after a line, the gap or its mark.
    pauses, lead = [], plans[0].lead
    for i, plan in enumerate(plans):
        after = list(plan.pauses)
        if i + 1 < len(plans):
            after[-1] = (after[-1] or gap) + plans[i + 1].lead
        pauses += after
    audio, starts = join_rows(batch.waves, pauses, lead)
    audio = tts.mark(audio)   # the watermark, as on every output of LinaTTS (off with watermark=False)
    seconds = time.perf_counter() - start

    lines, words, row = [], [], 0
    for (speaker, text), plan in zip(turns, plans):
        n = len(plan.sentences)
        end = starts[row + n - 1] + len(batch.waves[row + n - 1]) / SAMPLE_RATE
        lines.append(DialogueLine(speaker, text, starts[row], end, all(batch.finished[row:row + n])))
        words += [w.shifted(starts[r], speaker) for r in range(row, row + n) for w in batch.words[r]]
        row += n

    compared = None
    if line_by_line:
        begin, row = time.perf_counter(), 0
        for plan in plans:
            n = len(plan.sentences)
            tts.generate_rows(rows[row:row + n], row_voices[row:row + n], **options)
            row += n
        compared = time.perf_counter() - begin
    return Dialogue(audio, SAMPLE_RATE, lines, words, len(rows), sum(len(c) for c in batch.codes), seconds, compared)
