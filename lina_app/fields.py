"""Typed inputs of the endpoints: each one builds its widget and checks what an API caller sends, from the
same label, bounds and default, so the page and the server-side check cannot disagree.

`Field` is an input whose widget its tab builds (a clip, a file list, a dropdown) and whose check lives
in its handler; `Number` and `Text` build and check themselves.
"""
from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from lina.dialogue import DEFAULT_GAP_SECONDS, MAX_GAP_SECONDS
from lina.speed import MAX_SPEED, MIN_SPEED
from lina_app.inputs import check_number, check_text
from lina_app.settings import (DEFAULT_LEARNING_RATE, DEFAULT_RANK, DEFAULT_SEED, DEFAULT_STEPS, DEFAULT_TEMPERATURE,
                               DEFAULT_TOP_K, LEARNING_RATE_RANGE, MAX_CANDIDATES, MAX_TEXT_CHARS, RANK_RANGE,
                               SEED_RANGE, STEPS_RANGE, TEMPERATURE_RANGE, TOP_K_RANGE)

SPEED_NOTE = "applied after generation: the audio is time-stretched (WSOLA), its pitch kept"


@dataclass(frozen=True)
class Field:
    """An endpoint input by its handler parameter's name; its tab builds the widget."""

    name: str

    def check(self, value):
        return value


@dataclass(frozen=True)
class Number(Field):
    """A number within `bounds` (inclusive): a slider, or a number box (`slider=False`) that states the upper
    bound only if `capped`. `what`: how an error names it (default: the label)."""

    label: str = ""
    bounds: tuple[float, float] = (0, 1)
    default: float = 0
    integer: bool = False
    step: float | None = None
    info: str | None = None
    slider: bool = True
    capped: bool = True
    what: str | None = None

    def check(self, value) -> int | float:
        return check_number(self.what or self.label, value, self.bounds, integer=self.integer)

    def widget(self, elem_id: str, **overrides) -> gr.Slider | gr.Number:
        """The widget (inside the caller's layout); `overrides`: keyword arguments of the component."""
        if self.slider:
            options = dict(value=self.default, step=self.step, label=self.label, info=self.info, elem_id=elem_id)
            return gr.Slider(*self.bounds, **{**options, **overrides})
        options = dict(value=self.default, precision=0 if self.integer else None, minimum=self.bounds[0],
                       maximum=self.bounds[1] if self.capped else None, label=self.label, info=self.info,
                       elem_id=elem_id)
        return gr.Number(**{**options, **overrides})


@dataclass(frozen=True)
class Text(Field):
    """Text that must not be blank, at most `limit` characters; `what` names it in errors."""

    label: str = ""
    value: str = ""
    lines: int = 1
    what: str = "text to speak"
    limit: int = MAX_TEXT_CHARS

    def check(self, value) -> str:
        return check_text(value, self.what, self.limit)

    def widget(self, elem_id: str, **overrides) -> gr.Textbox:
        return gr.Textbox(**{**dict(value=self.value, label=self.label, lines=self.lines, elem_id=elem_id),
                             **overrides})


# ---- the inputs several endpoints share ------------------------------------------------------------
TOP_K = Number("top_k", "Top-k", TOP_K_RANGE, DEFAULT_TOP_K, integer=True, step=1,
               info="sample among the k likeliest tokens")
TEMPERATURE = Number("temperature", "Temperature", TEMPERATURE_RANGE, DEFAULT_TEMPERATURE, step=0.05,
                     info="lower: steadier, higher: more varied")
SEED = Number("seed", "Seed", SEED_RANGE, DEFAULT_SEED, integer=True, slider=False, capped=False,
              info="change it for another take")
SAMPLING = (TOP_K, TEMPERATURE, SEED)
CANDIDATES = Number("candidates", "Candidates", (1, MAX_CANDIDATES), 1, integer=True, step=1,
                    info="generated together, as one batch", what="Number of candidates")
SPEED = Number("speed", "Speed", (MIN_SPEED, MAX_SPEED), 1.0, step=0.05, info=SPEED_NOTE)
GLOSSARY = Field("glossary")
STEPS = Number("steps", "Steps", STEPS_RANGE, DEFAULT_STEPS, integer=True, step=1)
RANK = Number("rank", "Rank", RANK_RANGE, DEFAULT_RANK, integer=True, step=1)
LEARNING_RATE = Number("learning_rate", "Learning rate", LEARNING_RATE_RANGE, DEFAULT_LEARNING_RATE, slider=False)
GAP = Number("gap", "Gap between lines (s)", (0, MAX_GAP_SECONDS), DEFAULT_GAP_SECONDS, step=0.05,
             what="Gap between lines")
EXAMPLE_TEXT = "The quick brown fox jumps over the lazy dog. Then it takes a well deserved nap."
EXAMPLE_SCRIPT = ("Ava: Did you see the boats come in this morning?\n"
                  "Leo: Twelve of them. [pause 0.5] A record for this time of year.\n"
                  "Mia: I counted eleven, but I was late.")
TEXT = Text("text", f"Text to speak (up to {MAX_TEXT_CHARS} characters)", EXAMPLE_TEXT, lines=4)
SCRIPT = Text("script", f"Script (up to {MAX_TEXT_CHARS} characters)", EXAMPLE_SCRIPT, lines=6, what="script")
