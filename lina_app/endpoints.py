"""The app's named endpoints, each declared once: its API name, the handler method behind it, its inputs in
order (typed: `lina_app.fields`, which build the widgets and the checks), its queue, its public description
and the GPU time its model call asks ZeroGPU for. app.py wires the page and the API from this table, and
`lina_app.engine` sizes its `spaces.GPU` calls with the estimates below.

The inputs' order is the API's (`gradio_client` callers pass them by position): append, never reorder.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import gradio as gr

from lina_app.fields import (CANDIDATES, GAP, GLOSSARY, LEARNING_RATE, RANK, SAMPLING, SCRIPT, SPEED, STEPS,
                             TEXT, Field)
from lina_app.settings import (GPU_BASE_SECONDS, GPU_MAX_SECONDS, GPU_SECONDS_PER_CHAR,
                               GPU_SECONDS_PER_TUNING_STEP, SYNTHESIS_CONCURRENCY, SYNTHESIS_GROUP,
                               TUNING_CONCURRENCY, TUNING_GROUP)
from lina_app.tool_docs import CLONE, LIST_VOICES, SPEAK, TRANSCRIBE, VOICE_FROM_HUB, documented

# Queues: a long tuning has its own group of one so it cannot starve synthesis; speech recognition of a
# clip runs one at a time, apart from synthesis.
QUEUES = {
    "synthesis": dict(concurrency_id=SYNTHESIS_GROUP, concurrency_limit=SYNTHESIS_CONCURRENCY),
    "tuning": dict(concurrency_id=TUNING_GROUP, concurrency_limit=TUNING_CONCURRENCY),
    "asr": dict(concurrency_id="asr", concurrency_limit=1),
    "unlimited": dict(concurrency_limit=None),
    "default": {},
}


# ---- GPU seconds: functions of the model call's arguments, by name (`Engine` binds them) -------------------
def _capped(seconds: float) -> int:
    return int(min(GPU_MAX_SECONDS, GPU_BASE_SECONDS + seconds))


def synthesis_seconds(*, text: str, candidates: int = 1, **_) -> int:
    return _capped(GPU_SECONDS_PER_CHAR * len(text) * max(1, int(candidates)))


def clone_seconds(*, text: str, transcript: str = "", candidates: int = 1, **_) -> int:
    """As speaking the transcript and the text: the prompt's transcript is read too."""
    return synthesis_seconds(text=text + transcript, candidates=candidates)


def tuning_seconds(*, steps: int = 100, **_) -> int:
    return _capped(GPU_SECONDS_PER_TUNING_STEP * int(steps))


def stream_seconds(*, text: str, **_) -> int:
    """As speaking one candidate (a stream has no candidates parameter)."""
    return synthesis_seconds(text=text)


def dialogue_seconds(*, turns=(), line_by_line: bool = False, **_) -> int:
    return _capped(GPU_SECONDS_PER_CHAR * sum(len(text) for _, text in turns) * (2 if line_by_line else 1))


def preset_seconds(*, settings=None, **_) -> int:
    return tuning_seconds(steps=getattr(settings, "steps", 100))


@dataclass(frozen=True)
class Endpoint:
    """One named endpoint. `handler`: the method's name on the tab's handlers object (its parameters are
    `inputs`' names, in order); `tab`: where an API-only endpoint (no widgets) is registered; `doc` and
    `tool`: its public description and MCP tool name; `gpu_seconds`: the estimate of its model call."""

    api_name: str
    handler: str
    inputs: tuple[Field, ...] = ()
    queue: str = "default"
    doc: str | None = None
    tool: str | None = None
    gpu_seconds: Callable[..., int] | None = None
    tab: str | None = None

    @property
    def names(self) -> list[str]:
        return [field.name for field in self.inputs]

    def function(self, handlers) -> Callable:
        method = getattr(handlers, self.handler)
        return documented(method, self.doc, self.tool) if self.doc else method

    def listen(self, event: Callable, handlers, widgets: dict, outputs, **options):
        """`event(fn, inputs, outputs, ...)` (a trigger such as `button.click` or a chain's `.success`) with
        `widgets` by input name, put in the endpoint's order. -> the event's dependency, to chain on."""
        missing = [name for name in self.names if name not in widgets]
        if missing:
            raise ValueError(f"/{self.api_name}: no widget for {', '.join(missing)}")
        return event(self.function(handlers), [widgets[name] for name in self.names], outputs,
                     api_name=self.api_name, **QUEUES[self.queue], **options)

    def serve(self, handlers) -> None:
        """An API-only endpoint (inside the Blocks): its inputs come from the handler's type hints."""
        gr.api(self.function(handlers), api_name=self.api_name, **QUEUES[self.queue])


_VOICE = (TEXT, Field("preset"), Field("voice_file"), *SAMPLING)

ENDPOINTS = {e.api_name: e for e in (
    Endpoint("clone", "clone", (TEXT, Field("prompt_audio"), Field("transcript"), *SAMPLING, CANDIDATES),
             "synthesis", CLONE, gpu_seconds=clone_seconds),
    Endpoint("transcribe", "transcribe", (Field("clip"),), "asr", TRANSCRIBE, tab="clone"),
    Endpoint("tune_voice", "tune_voice", (Field("clips"), Field("transcripts"), STEPS, RANK, LEARNING_RATE,
                                          Field("name"), Field("preview_text")), "tuning",
             gpu_seconds=tuning_seconds),
    Endpoint("speak", "speak", (*_VOICE, GLOSSARY, SPEED), "synthesis", SPEAK, gpu_seconds=synthesis_seconds),
    Endpoint("speak_stream", "speak_stream", (*_VOICE, GLOSSARY), "synthesis", gpu_seconds=stream_seconds),
    Endpoint("voice_from_hub", "voice_from_hub", (Field("repo_id"),), doc=VOICE_FROM_HUB),
    Endpoint("voices", "voices", (), "unlimited", LIST_VOICES, "list_voices", tab="presets"),
    Endpoint("dialogue", "dialogue", (SCRIPT, Field("voices"), Field("voice_files"), Field("clip"),
                                      Field("transcript"), GAP, GLOSSARY, SPEED, *SAMPLING, Field("line_by_line")),
             "synthesis", gpu_seconds=dialogue_seconds),
)}


def api_only(tab: str) -> list[Endpoint]:
    """The endpoints without widgets that `tab` registers (in the table's order)."""
    return [e for e in ENDPOINTS.values() if e.tab == tab]
