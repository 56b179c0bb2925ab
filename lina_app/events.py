"""What the engine's long calls report as they go: a tuning's steps and end, a stream's pieces and end.

A tuning runs in a thread and hands its events to the request's generator through a queue; `TuningStopped`
and `TuningFailed` stay between the two (the generator returns, or raises the error): consumers see
`TuningStep` and `TuningDone`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lina.tts import Synthesis
from lina.voice import Voice


@dataclass(frozen=True)
class TuningStep:
    """A tuning step ended: `step` counts from 0, `loss` is its training loss."""

    step: int
    loss: float


@dataclass(frozen=True)
class TuningDone:
    """The tuning ended with `voice` (the best state; early if a stop was asked) and every step's loss."""

    voice: Voice
    losses: list[float]


@dataclass(frozen=True)
class TuningStopped:
    """The tuning's consumer went away (visitor left, generator closed): nothing more comes."""


@dataclass(frozen=True)
class TuningFailed:
    """The tuning raised `error`: the consumer raises it again."""

    error: BaseException


@dataclass(frozen=True)
class StreamAudio:
    """A piece of a stream: float32 samples at the model's rate, marked."""

    samples: np.ndarray


@dataclass(frozen=True)
class StreamDone:
    """A stream ended: its `Synthesis` (the words `synthesize` says for the same inputs, the stream's timings)."""

    result: Synthesis


TuningEvent = TuningStep | TuningDone
StreamEvent = StreamAudio | StreamDone
