"""The model calls of the app, each GPU one wrapped in `@spaces.GPU` with a duration sized to the request.

On a ZeroGPU Space a GPU is attached only while one of these functions runs; elsewhere the
decorator returns the function unchanged. An `Engine` holds its app's model: two apps built in one process
each speak with their own. Each engine wraps its own bound methods at construction (`on_gpu`), so the
calls take plain arguments (text, file paths, numbers, `Voice`) and the model never crosses to ZeroGPU's
worker as an argument: the worker is a fork of this process and finds the engine, model included, in it.
"""
from __future__ import annotations

import contextlib
import inspect
import queue
import threading
from typing import Callable, Iterator, Sequence

import numpy as np

from lina.tts import LinaTTS, Synthesis
from lina.voice import Voice
from lina_app import gate, warmup
from lina_app.activity import Activity, Stopped
from lina_app.events import (StreamAudio, StreamDone, StreamEvent, TuningDone, TuningEvent, TuningFailed,
                             TuningStep, TuningStopped)
from lina_app.endpoints import ENDPOINTS, preset_seconds
from lina_app.preset_tuner import tune_with
from lina_app.tuning import release_memory
from lina_app.settings import GPU_WARMUP_SECONDS, STREAM_CHUNK_SECONDS, TUNING_BATCH_SIZE

try:  # `spaces` is a no-op off Hugging Face Spaces; the app also runs without the package.
    import spaces

    gpu = spaces.GPU
except ImportError:  # pragma: no cover - exercised only where `spaces` is not installed
    def gpu(task=None, **_):
        return task if callable(task) else (lambda fn: fn)


def on_gpu(duration: int | Callable[..., int]):
    """Marks an `Engine` method as a GPU call of `duration` seconds, or of a function of the call's arguments
    by name (`lina_app.endpoints`' estimates); `Engine.__init__` wraps the engine's bound method with `gpu`."""
    def mark(method):
        method.gpu_duration = duration
        return method
    return mark


def by_name(method: Callable, duration: int | Callable[..., int]) -> int | Callable[..., int]:
    """`duration` as `spaces.GPU` calls it (with the call's arguments as passed), given to the estimate by name:
    the estimate depends on no argument's position."""
    if not callable(duration):
        return duration
    signature = inspect.signature(method)

    def seconds(*args, **kwargs) -> int:
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        return duration(**bound.arguments)
    return seconds


class Engine:
    """The model calls of one app, bound to its model `tts`; `activity` counts its work, `request_stop` reaches
    its tunings. The public calls wait for a slot of the shared synthesis gate (`lina_app.gate`: one GPU,
    however many apps) and then run the GPU method below them."""

    def __init__(self, tts: LinaTTS) -> None:
        self.tts = tts
        self.activity = Activity()
        self._early_stops: dict[str, threading.Event] = {}   # tuning key (a visitor's session) -> "stop, keep the best"
        for name in dir(type(self)):
            duration = getattr(getattr(type(self), name), "gpu_duration", None)
            if duration is not None:
                method = getattr(self, name)
                setattr(self, name, gpu(duration=by_name(method, duration))(method))

    @on_gpu(GPU_WARMUP_SECONDS)
    def warm_up(self) -> dict[str, float]:
        """Runs every kernel shape of the endpoints below once (`lina_app.warmup`), before "ready"."""
        with self.activity.track("warm_up"):
            return warmup.warm_up(self.tts)

    def synthesize(self, text: str, voice: Voice | None, top_k: int, temperature: float, seed: int,
                   candidates: int = 1, glossary=None) -> Synthesis:
        """Text (split into sentences, one batch) spoken with `voice` (None: the untuned model); `glossary`:
        a `lina.marks.Glossary` of pronunciations."""
        with gate.synthesis.slot():
            return self._synthesize(text, voice, top_k, temperature, seed, candidates, glossary)

    def dialogue(self, turns: Sequence[tuple[str, str]], voices: dict, gap: float, top_k: int, temperature: float,
                 seed: int, glossary=None, line_by_line: bool = False):
        """A script's lines, each with its speaker's voice, in one batch (`lina.dialogue`)."""
        with gate.synthesis.slot():
            return self._dialogue(turns, voices, gap, top_k, temperature, seed, glossary, line_by_line)

    def clone(self, text: str, prompt_audio: str, transcript: str, top_k: int, temperature: float, seed: int,
              candidates: int = 1) -> Synthesis:
        """Prompt continuation from a clip and its transcript."""
        with gate.synthesis.slot():
            return self._clone(text, prompt_audio, transcript, top_k, temperature, seed, candidates)

    def stream(self, text: str, voice: Voice | None, top_k: int, temperature: float, seed: int,
               glossary=None) -> Iterator[StreamEvent]:
        """`_stream`, holding a slot of the shared gate until the stream ends or is closed."""
        with gate.synthesis.slot(), \
                contextlib.closing(self._stream(text, voice, top_k, temperature, seed, glossary)) as events:
            yield from events

    @on_gpu(ENDPOINTS["speak"].gpu_seconds)
    def _synthesize(self, text: str, voice: Voice | None, top_k: int, temperature: float, seed: int,
                    candidates: int = 1, glossary=None) -> Synthesis:
        with self.activity.track("synthesize"):
            return self.tts.synthesize(text, voice, top_k=top_k, temperature=temperature, seed=seed,
                                       candidates=candidates, glossary=glossary)

    @on_gpu(ENDPOINTS["dialogue"].gpu_seconds)
    def _dialogue(self, turns: Sequence[tuple[str, str]], voices: dict, gap: float, top_k: int, temperature: float,
                  seed: int, glossary=None, line_by_line: bool = False):
        with self.activity.track("dialogue"):
            return self.tts.synthesize_dialogue(turns, voices, gap=gap, top_k=top_k, temperature=temperature,
                                                seed=seed, glossary=glossary, line_by_line=line_by_line)

    @on_gpu(ENDPOINTS["clone"].gpu_seconds)
    def _clone(self, text: str, prompt_audio: str, transcript: str, top_k: int, temperature: float, seed: int,
               candidates: int = 1) -> Synthesis:
        with self.activity.track("clone"):
            return self.tts.clone(text, prompt_audio, transcript, top_k=top_k, temperature=temperature, seed=seed,
                                  candidates=candidates)

    @on_gpu(ENDPOINTS["tune_voice"].gpu_seconds)
    def tune(self, clips: Sequence[tuple[str, str]], steps: int, rank: int, learning_rate: float, seed: int = 0,
             name: str = "", description: str = "", batch_size: int = TUNING_BATCH_SIZE,
             crop_seconds: float = 0.0, key: str = "") -> Iterator[TuningEvent]:
        """Initial-State Tuning; yields a `TuningStep` per step as it goes, then a `TuningDone`.

        The tuning runs in a thread so each step can be reported while it happens; closing the
        generator stops the tuning at the next step instead of letting it run on unseen. `batch_size` and
        `crop_seconds` bound a step's memory (`lina_app.tuning.plan`); the memory goes back to the system after.
        `request_stop(key)` ends the tuning at its next step with the best voice so far (a `TuningDone`).
        """
        events: queue.Queue = queue.Queue()
        stop = threading.Event()
        finish_early = self._early_stops.setdefault(key, threading.Event()) if key else threading.Event()
        finish_early.clear()

        def on_step(step: int, loss: float) -> bool:
            if stop.is_set():
                raise Stopped
            events.put(TuningStep(step, loss))
            return finish_early.is_set()

        def work() -> None:
            # Tracked in the thread itself: the tuning counts as running until it has really stopped.
            try:
                with self.activity.track("tune"):
                    voice, losses = self.tts.tune_voice(list(clips), steps=steps, rank=rank,
                                                        learning_rate=learning_rate, batch_size=batch_size,
                                                        seed=seed, on_step=on_step, name=name,
                                                        description=description, crop_seconds=crop_seconds)
                finish(TuningDone(voice, losses))
            except Stopped:
                finish(TuningStopped())
            except BaseException as error:  # noqa: BLE001 - handed to the consumer, which raises it
                finish(TuningFailed(error))

        def finish(event: TuningDone | TuningStopped | TuningFailed) -> None:
            # Memory first: once the consumer has the last event, the app counts as idle again.
            release_memory()
            events.put(event)

        worker = threading.Thread(target=work, name="lina-tune", daemon=True)
        worker.start()
        try:
            while True:
                event = events.get()
                if isinstance(event, TuningFailed):
                    raise event.error
                if isinstance(event, TuningStopped):
                    return
                yield event
                if isinstance(event, TuningDone):
                    return
        finally:
            stop.set()
            if key:
                self._early_stops.pop(key, None)

    @on_gpu(preset_seconds)
    def tune_preset(self, clips: Sequence[tuple[str, str]], settings, spec, on_step=None) -> Voice:
        """One preset voice tuned from its clips (`lina_app.preset_tuner`): in the request's GPU slot on
        ZeroGPU, where `on_step` is None (a callback does not cross to the GPU worker)."""
        with self.activity.track("tune_preset"):
            return tune_with(self.tts, clips, settings, spec, on_step)

    def request_stop(self, key: str) -> bool:
        """Asks the tuning running under `key` to stop at its next step and keep its best state so far."""
        event = self._early_stops.get(key)
        if event is not None:
            event.set()
        return event is not None

    @on_gpu(ENDPOINTS["speak_stream"].gpu_seconds)
    def _stream(self, text: str, voice: Voice | None, top_k: int, temperature: float, seed: int,
                glossary=None) -> Iterator[StreamEvent]:
        """Yields a `StreamAudio` (float32 piece) of about `STREAM_CHUNK_SECONDS` (the first as soon as it is
        decoded), then a `StreamDone` (its `Synthesis`): the words `synthesize` says for the same inputs
        (`lina.speech_stream`), with the stream's own timings.

        Closing this generator (the handler does when the visitor leaves) stops the generation at the next
        chunk: no further token is generated.
        """
        # Pieces of about STREAM_CHUNK_SECONDS, each marked on its own (`LinaTTS.stream`): a visitor who
        # keeps only part of a stream still holds marked audio; the first goes out at once: it is what
        # makes streaming worth having.
        pieces = self.tts.stream(text, voice, top_k=top_k, temperature=temperature, seed=seed, glossary=glossary,
                                 piece_seconds=STREAM_CHUNK_SECONDS)
        with self.activity.track("stream"), contextlib.closing(pieces):
            for piece in pieces:
                yield StreamAudio(piece)
        yield StreamDone(pieces.result)
