"""The model calls of the app, each wrapped in `@spaces.GPU` with a duration sized to the request.

On a ZeroGPU Space a GPU is attached only while one of these functions runs; elsewhere the
decorator returns the function unchanged. The functions take plain arguments (text, file paths,
numbers, `Voice`) because ZeroGPU may run them in a worker process; the model itself is the
module-level one set by `use()` at start-up, as ZeroGPU expects.
"""
from __future__ import annotations

import contextlib
import queue
import threading
from collections import Counter
from typing import Iterator, Sequence

import numpy as np

from lina.tts import LinaTTS, Synthesis
from lina.voice import Voice
from lina_app import gate, warmup
from lina_app.preset_tuner import tune_with
from lina_app.streaming import BatchStream
from lina_app.tuning import release_memory
from lina_app.settings import (GPU_BASE_SECONDS, GPU_MAX_SECONDS, GPU_SECONDS_PER_CHAR,
                               GPU_SECONDS_PER_TUNING_STEP, GPU_WARMUP_SECONDS, STREAM_CHUNK_SECONDS,
                               TUNING_BATCH_SIZE)

try:  # `spaces` is a no-op off Hugging Face Spaces; the app also runs without the package.
    import spaces

    gpu = spaces.GPU
except ImportError:  # pragma: no cover - exercised only where `spaces` is not installed
    def gpu(task=None, **_):
        return task if callable(task) else (lambda fn: fn)

_model: LinaTTS | None = None


class _Stop(Exception):
    """Raised inside the tuning loop when the consumer went away (visitor left, request cancelled)."""


class Activity:
    """Model work in progress and how each piece ended: "finished", "stopped" (its consumer went away
    before the end: visitor left, job cancelled) or "error".

    A visitor who closes the page must not leave a generation running unseen; these counters make that
    checkable (tests/test_faults.py). Cheap: a lock and two Counters.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.running: Counter = Counter()   # kind -> pieces of work under way
        self.ended: Counter = Counter()     # (kind, outcome) -> count

    @contextlib.contextmanager
    def track(self, kind: str):
        """Counts the work in its `with` block; inside a generator, a close() counts as "stopped"."""
        with self._lock:
            self.running[kind] += 1
        outcome = "error"
        try:
            yield
            outcome = "finished"
        except (GeneratorExit, _Stop):
            outcome = "stopped"
            raise
        finally:
            with self._lock:
                self.running[kind] -= 1
                self.ended[kind, outcome] += 1

    def snapshot(self) -> dict:
        with self._lock:
            return {"running": {k: n for k, n in self.running.items() if n},
                    "ended": {f"{kind}:{outcome}": n for (kind, outcome), n in self.ended.items()}}


activity = Activity()


def use(tts: LinaTTS) -> None:
    """Sets the model every call below uses (once, at start-up)."""
    global _model
    _model = tts


def model() -> LinaTTS:
    if _model is None:
        raise RuntimeError("no model: call lina_app.engine.use(tts) first")
    return _model


def _capped(seconds: float) -> int:
    return int(min(GPU_MAX_SECONDS, GPU_BASE_SECONDS + seconds))


def _synthesis_seconds(text: str, voice=None, top_k=0, temperature=0.0, seed=0, candidates: int = 1,
                       glossary=None) -> int:
    return _capped(GPU_SECONDS_PER_CHAR * len(text) * max(1, int(candidates)))


def _clone_seconds(text: str, prompt_audio=None, transcript: str = "", top_k=0, temperature=0.0, seed=0,
                   candidates: int = 1) -> int:
    return _capped(GPU_SECONDS_PER_CHAR * (len(text) + len(transcript)) * max(1, int(candidates)))


def _tuning_seconds(clips: Sequence = (), steps: int = 100, *args, **kwargs) -> int:
    return _capped(GPU_SECONDS_PER_TUNING_STEP * int(steps))


def _stream_seconds(text: str, *args, **kwargs) -> int:
    return _capped(GPU_SECONDS_PER_CHAR * len(text))


@gpu(duration=GPU_WARMUP_SECONDS)
def warm_up() -> dict[str, float]:
    """Runs every kernel shape of the endpoints below once (`lina_app.warmup`), before "ready"."""
    with activity.track("warm_up"):
        return warmup.warm_up(model())


# The calls the handlers and the HTTP API make: each waits for a slot of the shared synthesis gate
# (`lina_app.gate`) and then runs the GPU function below it.
def synthesize(text: str, voice: Voice | None, top_k: int, temperature: float, seed: int,
               candidates: int = 1, glossary=None) -> Synthesis:
    """Text (split into sentences, one batch) spoken with `voice` (None: the untuned model); `glossary`:
    a `lina.marks.Glossary` of pronunciations."""
    with gate.synthesis.slot():
        return _synthesize(text, voice, top_k, temperature, seed, candidates, glossary)


def dialogue(turns: Sequence[tuple[str, str]], voices: dict, gap: float, top_k: int, temperature: float, seed: int,
             glossary=None, line_by_line: bool = False):
    """A script's lines, each with its speaker's voice, in one batch (`lina.dialogue`)."""
    with gate.synthesis.slot():
        return _dialogue(turns, voices, gap, top_k, temperature, seed, glossary, line_by_line)


def clone(text: str, prompt_audio: str, transcript: str, top_k: int, temperature: float, seed: int,
          candidates: int = 1) -> Synthesis:
    """Prompt continuation from a clip and its transcript."""
    with gate.synthesis.slot():
        return _clone(text, prompt_audio, transcript, top_k, temperature, seed, candidates)


def stream(text: str, voice: Voice | None, top_k: int, temperature: float, seed: int,
           glossary=None) -> Iterator[tuple]:
    """`_stream`, holding a slot of the shared gate until the stream ends or is closed."""
    with gate.synthesis.slot(), contextlib.closing(_stream(text, voice, top_k, temperature, seed, glossary)) as events:
        yield from events


@gpu(duration=_synthesis_seconds)
def _synthesize(text: str, voice: Voice | None, top_k: int, temperature: float, seed: int,
                candidates: int = 1, glossary=None) -> Synthesis:
    with activity.track("synthesize"):
        return model().synthesize(text, voice, top_k=top_k, temperature=temperature, seed=seed,
                                  candidates=candidates, glossary=glossary)


def _dialogue_seconds(turns: Sequence[tuple[str, str]] = (), voices=None, gap=0.0, top_k=0, temperature=0.0,
                      seed=0, glossary=None, line_by_line: bool = False) -> int:
    return _capped(GPU_SECONDS_PER_CHAR * sum(len(text) for _, text in turns) * (2 if line_by_line else 1))


@gpu(duration=_dialogue_seconds)
def _dialogue(turns: Sequence[tuple[str, str]], voices: dict, gap: float, top_k: int, temperature: float, seed: int,
              glossary=None, line_by_line: bool = False):
    with activity.track("dialogue"):
        return model().synthesize_dialogue(turns, voices, gap=gap, top_k=top_k, temperature=temperature, seed=seed,
                                           glossary=glossary, line_by_line=line_by_line)


@gpu(duration=_clone_seconds)
def _clone(text: str, prompt_audio: str, transcript: str, top_k: int, temperature: float, seed: int,
           candidates: int = 1) -> Synthesis:
    with activity.track("clone"):
        return model().clone(text, prompt_audio, transcript, top_k=top_k, temperature=temperature, seed=seed,
                             candidates=candidates)


@gpu(duration=_tuning_seconds)
def tune(clips: Sequence[tuple[str, str]], steps: int, rank: int, learning_rate: float, seed: int = 0,
         name: str = "", description: str = "", batch_size: int = TUNING_BATCH_SIZE,
         crop_seconds: float = 0.0, key: str = "") -> Iterator[tuple]:
    """Initial-State Tuning; yields `("step", step, loss)` as it goes, then `("done", voice, losses)`.

    The tuning runs in a thread so each step can be reported while it happens; closing the
    generator stops the tuning at the next step instead of letting it run on unseen. `batch_size` and
    `crop_seconds` bound a step's memory (`lina_app.tuning.plan`); the memory goes back to the system after.
    `request_stop(key)` ends the tuning at its next step with the best voice so far (a "done" event).
    """
    events: queue.Queue = queue.Queue()
    stop = threading.Event()
    finish_early = _early_stops.setdefault(key, threading.Event()) if key else threading.Event()
    finish_early.clear()

    def on_step(step: int, loss: float) -> bool:
        if stop.is_set():
            raise _Stop
        events.put(("step", step, loss))
        return finish_early.is_set()

    def work() -> None:
        # Tracked in the thread itself: the tuning counts as running until it has really stopped.
        try:
            with activity.track("tune"):
                voice, losses = model().tune_voice(list(clips), steps=steps, rank=rank,
                                                   learning_rate=learning_rate, batch_size=batch_size,
                                                   seed=seed, on_step=on_step, name=name, description=description,
                                                   crop_seconds=crop_seconds)
            finish(("done", voice, losses))
        except _Stop:
            finish(("stopped",))
        except BaseException as error:  # noqa: BLE001 - handed to the consumer, which raises it
            finish(("error", error))

    def finish(event: tuple) -> None:
        # Memory first: once the consumer has the last event, the app counts as idle again.
        release_memory()
        events.put(event)

    worker = threading.Thread(target=work, name="lina-tune", daemon=True)
    worker.start()
    try:
        while True:
            event = events.get()
            if event[0] == "error":
                raise event[1]
            if event[0] == "stopped":
                return
            yield event
            if event[0] == "done":
                return
    finally:
        stop.set()
        if key:
            _early_stops.pop(key, None)


def _preset_seconds(clips: Sequence = (), settings=None, *args, **kwargs) -> int:
    return _capped(GPU_SECONDS_PER_TUNING_STEP * int(getattr(settings, "steps", 100)))


@gpu(duration=_preset_seconds)
def tune_preset(clips: Sequence[tuple[str, str]], settings, spec, on_step=None) -> Voice:
    """One preset voice tuned from its clips (`lina_app.preset_tuner`): in the request's GPU slot on
    ZeroGPU, where `on_step` is None (a callback does not cross to the GPU worker)."""
    with activity.track("tune_preset"):
        return tune_with(model(), clips, settings, spec, on_step)


_early_stops: dict[str, threading.Event] = {}   # tuning key (the visitor's session) -> "stop, keep the best"


def request_stop(key: str) -> bool:
    """Asks the tuning running under `key` to stop at its next step and keep its best state so far."""
    event = _early_stops.get(key)
    if event is not None:
        event.set()
    return event is not None


@gpu(duration=_stream_seconds)
def _stream(text: str, voice: Voice | None, top_k: int, temperature: float, seed: int,
            glossary=None) -> Iterator[tuple]:
    """Yields `("audio", float32 piece)` of about `STREAM_CHUNK_SECONDS` (the first as soon as it is
    decoded), then `("done", Synthesis)`: the words `synthesize` says for the same inputs
    (`lina_app.streaming`), with the stream's own timings.

    Closing this generator (the handler does when the visitor leaves) stops the generation at the next
    chunk: no further token is generated.
    """
    tts = model()
    wanted = int(STREAM_CHUNK_SECONDS * tts.sample_rate)
    pending: list[np.ndarray] = []
    size = 0
    first = True
    pieces = BatchStream(tts, text, voice, top_k, temperature, seed, glossary=glossary)
    with activity.track("stream"), contextlib.closing(iter(pieces)) as chunks:
        for chunk in chunks:
            pending.append(chunk)
            size += len(chunk)
            # The first piece goes out at once: it is what makes streaming worth having.
            if first or size >= wanted:
                # Each piece is marked on its own (`LinaTTS.mark`): a visitor who keeps only part of a
                # stream still holds marked audio.
                yield "audio", tts.mark(np.concatenate(pending))
                pending, size, first = [], 0, False
        if pending:
            yield "audio", tts.mark(np.concatenate(pending))
    yield "done", pieces.result
