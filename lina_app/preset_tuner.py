"""Makes every preset of the manifest speakable with the loaded model, tuning what has no state yet.

A preset's state comes from, in this order: this process's memory, the state shipped for this model
id (`voices/presets.json` `states`, trusted only under the key it records), the disk cache
(`lina_app.preset_cache`), else a tuning from its clips. Modes (`LINA_PRESET_TUNING`):

* ``background`` (default on a dedicated GPU): after start-up one thread tunes every missing preset,
  one at a time; visitors use the app meanwhile, and a request for a preset not ready yet is answered
  with its status and the expected wait;
* ``first-use`` (default on ZeroGPU and on a CPU): a preset is tuned inside the first request that
  needs it (on ZeroGPU in that request's GPU slot);
* ``off``: only shipped or cached states are used.

Concurrent requests for one preset tune it once: the second waits for the first's result. On a CPU
a tuning is bounded as the app's *Build a voice* tab is (`lina_app.tuning`): fewer steps and cropped
clips, which makes another key than the manifest's full settings, so a state shipped or cached with the
full settings is preferred when there is one.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import soundfile

from lina.tts import LinaTTS
from lina.voice import Voice
from lina_app.preset_cache import PresetCache
from lina_app.preset_manifest import ManifestError, PresetSpec, TuningSettings, clip_path, preset_key, read_manifest
from lina_app.tuning import CPU_DEFAULT_STEPS, plan, release_memory

log = logging.getLogger("lina_app")

MODE_ENV_VAR = "LINA_PRESET_TUNING"
BACKGROUND, FIRST_USE, OFF = "background", "first-use", "off"
MODES = (BACKGROUND, FIRST_USE, OFF)
READY, TUNING, QUEUED, ON_FIRST_USE, FAILED, UNAVAILABLE = (
    "ready", "tuning", "queued", "on_first_use", "failed", "unavailable")

PACE_RANGE = (0.05, 20.0)   # bounds of the measured/estimated time ratio applied to later estimates

# tune_fn(clips as (path, transcript), settings, spec, on_step) -> Voice
TuneFn = Callable[[list[tuple[str, str]], TuningSettings, PresetSpec, Callable[[int, float], None] | None], Voice]


def on_zero_gpu() -> bool:
    return os.environ.get("SPACES_ZERO_GPU", "").lower() in {"1", "true", "yes", "on"}


def default_mode(device: str) -> str:
    """Background tuning where a GPU is ours for good; elsewhere inside the request that needs it."""
    wanted = os.environ.get(MODE_ENV_VAR, "").strip().lower()
    if wanted in MODES:
        return wanted
    return BACKGROUND if device == "cuda" and not on_zero_gpu() else FIRST_USE


def _duration(seconds: float) -> str:
    return f"{max(seconds, 1):.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"


@dataclass
class PresetStatus:
    state: str
    estimate_seconds: float = 0.0   # a whole tuning, as planned
    step: int = 0
    steps: int = 0
    started: float = 0.0            # time.monotonic() when its tuning began
    wait_seconds: float = 0.0       # till ready (queued: includes the presets before it)
    problem: str = ""
    source: str = ""                # ready: "shipped", "cache" or "tuned"

    def text(self) -> str:
        """One plain line for the page and the API."""
        if self.state == READY:
            return {"shipped": "ready", "cache": "ready (tuned earlier, cached)"}.get(self.source, "ready (tuned here)")
        if self.state == TUNING:
            where = f"step {self.step}/{self.steps}" if self.step else "starting"
            return f"tuning for this model: {where}, about {_duration(self.wait_seconds)} left"
        if self.state == QUEUED:
            return f"waiting to be tuned for this model: ready in about {_duration(self.wait_seconds)}"
        if self.state == ON_FIRST_USE:
            return f"will be tuned for this model on first use (about {_duration(self.estimate_seconds)})"
        if self.state == FAILED:
            return f"could not be tuned for this model: {self.problem}"
        return f"not available with this model: {self.problem}"

    def public(self) -> dict:
        progress = self.step / self.steps if self.state == TUNING and self.steps else float(self.state == READY)
        return {"status": self.state, "status_text": self.text(), "progress": round(progress, 3),
                "wait_seconds": round(self.wait_seconds if self.state in (TUNING, QUEUED) else
                                      self.estimate_seconds if self.state == ON_FIRST_USE else 0.0, 1)}


class PresetNotReady(Exception):
    """A request asked for a preset that is not ready and is not tuned inside requests; the message says
    where it stands and how long to wait."""


class PresetTuner:
    """The manifest's presets for one loaded model: their states, statuses and tunings."""

    def __init__(self, tts: LinaTTS, folder: str | Path | None, cache: PresetCache | None = None,
                 mode: str | None = None, tune_fn: TuneFn | None = None):
        self.tts = tts
        self.folder = Path(folder) if folder else None
        self.cache = cache or PresetCache()
        self.device = tts.device.type
        self.mode = mode or default_mode(self.device)
        self.tune_fn = tune_fn or self._tune_here
        self.tunings = 0                    # tunings run by this process (tests count them)
        self._pace = 1.0                    # last tuning's time / its estimate: this machine now (a busy CPU)
        self._lock = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}
        self._voices: dict[str, Voice] = {}
        self._status: dict[str, PresetStatus] = {}
        self._queue: list[str] = []
        self._thread: threading.Thread | None = None
        try:
            self.specs = {s.id: s for s in read_manifest(self.folder)} if self.folder else {}
            self.problem = ""
        except ManifestError as error:
            log.warning("preset manifest ignored: %s", error)
            self.specs, self.problem = {}, str(error)
        for spec in self.specs.values():
            self._status[spec.id] = self._initial_status(spec)

    # ---- keys and plans -------------------------------------------------------------------------
    def clip_pairs(self, spec: PresetSpec) -> list[tuple[str, str]]:
        return [(str(clip_path(c, self.folder)), c.text) for c in spec.clips]

    def run_settings(self, spec: PresetSpec, seconds: list[float]) -> tuple[TuningSettings, float, float]:
        """(settings this machine tunes with, estimated seconds, limit): the manifest's own on a GPU;
        on a CPU bounded like the Build-a-voice tab (at most its default steps, cropped clips)."""
        steps = spec.tuning.steps if self.device != "cpu" else min(spec.tuning.steps, CPU_DEFAULT_STEPS)
        how = plan(seconds, steps, self.device)
        settings = replace(spec.tuning, steps=steps, batch_size=how.batch_size, crop_seconds=how.crop_seconds)
        if self.device != "cpu":
            settings = replace(settings, batch_size=spec.tuning.batch_size, crop_seconds=0.0)
        return settings, how.estimate_seconds, how.limit_seconds

    def clip_seconds(self, spec: PresetSpec) -> list[float]:
        return [soundfile.info(path).duration for path, _ in self.clip_pairs(spec)]

    def _initial_status(self, spec: PresetSpec) -> PresetStatus:
        try:
            voice, source = self._stored(spec)
            if voice is not None:
                self._voices[spec.id] = voice
                return PresetStatus(READY, source=source)
            settings, estimate, limit = self.run_settings(spec, self.clip_seconds(spec))
        except (OSError, ValueError, RuntimeError, ManifestError) as error:
            return PresetStatus(UNAVAILABLE, problem=f"its clips cannot be read ({error})")
        if estimate > limit:
            return PresetStatus(UNAVAILABLE, estimate, problem=f"tuning it here would take about "
                                f"{_duration(estimate)}, over this machine's limit of {_duration(limit)}")
        if self.mode == OFF:
            return PresetStatus(UNAVAILABLE, estimate, problem="no state for this model, and tuning is off")
        return PresetStatus(QUEUED if self.mode == BACKGROUND else ON_FIRST_USE, estimate, steps=settings.steps)

    def _stored(self, spec: PresetSpec) -> tuple[Voice | None, str]:
        """A state shipped for this model, else a cached one, under the key of the manifest's settings or
        (on a CPU) of this machine's bounded settings: the full one first."""
        model_id, cfg = self.tts.model_id, self.tts.model.cfg
        keys = [preset_key(spec, self.folder, model_id, spec.tuning.as_dict())]
        shipped = spec.states.get(model_id)
        for n in range(2 if self.device == "cpu" else 1):
            if n:  # read the clips' lengths only when the full key found nothing
                keys.append(self.key(spec, self.run_settings(spec, self.clip_seconds(spec))[0]))
            if shipped and shipped["key"] == keys[n]:
                voice = load_trusted_shipped(self.folder / shipped["file"], cfg)
                if voice is not None:
                    return voice, "shipped"
            voice = self.cache.load(model_id, spec.id, keys[n], cfg)
            if voice is not None:
                return voice, "cache"
        return None, ""

    def key(self, spec: PresetSpec, settings: TuningSettings) -> str:
        return preset_key(spec, self.folder, self.tts.model_id, settings.as_dict())

    # ---- status -----------------------------------------------------------------------------------
    def status(self, preset_id: str) -> PresetStatus:
        """Its status now; times scaled by how fast the last tuning here went against its estimate."""
        with self._lock:
            status = replace(self._status[preset_id])
            status.estimate_seconds *= self._pace
            if status.state == TUNING:
                elapsed = time.monotonic() - status.started
                per_step = elapsed / status.step if status.step else status.estimate_seconds / max(status.steps, 1)
                status.wait_seconds = max(per_step * (status.steps - status.step), 0.0)
            elif status.state == QUEUED:
                ahead = self._queue[: self._queue.index(preset_id)] if preset_id in self._queue else []
                running = [s for s in self._status.values() if s.state == TUNING]
                status.wait_seconds = status.estimate_seconds + self._pace * sum(
                    self._status[i].estimate_seconds for i in ahead)
                if running:  # the one under way: its time left
                    left = running[0].estimate_seconds * self._pace - (time.monotonic() - running[0].started)
                    status.wait_seconds += max(left, 0.0)
            return status

    def summary(self) -> str:
        """'46 presets: 12 ready, 1 tuning, 33 waiting' for the page."""
        with self._lock:
            states = [s.state for s in self._status.values()]
        words = [(READY, "ready"), (TUNING, "tuning"), (QUEUED, "waiting to be tuned"),
                 (ON_FIRST_USE, "tuned on first use"), (FAILED, "failed"), (UNAVAILABLE, "unavailable")]
        parts = [f"{states.count(state)} {word}" for state, word in words if states.count(state)]
        return f"{len(states)} presets: " + ", ".join(parts) if states else ""

    def all_ready(self) -> bool:
        with self._lock:
            return all(s.state in (READY, FAILED, UNAVAILABLE) for s in self._status.values())

    # ---- tuning -----------------------------------------------------------------------------------
    def voice(self, preset_id: str) -> Voice:
        """The preset's state for the loaded model; tuned now in first-use mode (once, however many
        requests ask at the same time); else PresetNotReady with its status (in background mode the preset
        asked for moves to the front of the queue first)."""
        if preset_id in self._voices:
            return self._voices[preset_id]
        with self._lock:
            if preset_id in self._queue:  # asked for: it goes next (the one under way has left the queue)
                self._queue.remove(preset_id)
                self._queue.insert(0, preset_id)
        status = self.status(preset_id)
        if self.mode != FIRST_USE or status.state == UNAVAILABLE:
            raise PresetNotReady(f"Preset voice '{preset_id}' is not ready yet: {status.text()}.")
        return self.ensure(preset_id)

    def ensure(self, preset_id: str) -> Voice:
        spec = self.specs[preset_id]
        with self._lock:
            lock = self._locks.setdefault(preset_id, threading.Lock())
        with lock:  # a second request for the same preset waits here, then finds it ready
            if preset_id in self._voices:
                return self._voices[preset_id]
            try:
                voice, source = self._stored(spec)  # another process may have filled the cache meanwhile
                if voice is None:
                    voice, source = self._tune(spec), "tuned"
            except Exception as error:  # noqa: BLE001 - any failure becomes the preset's status, in words
                problem = plain_problem(error)
                with self._lock:
                    self._status[preset_id] = PresetStatus(FAILED, problem=problem)
                log.warning("preset %s not tuned: %s", preset_id, problem)
                raise PresetNotReady(f"Preset voice '{preset_id}' could not be tuned for this model: {problem}.") \
                    from None
            with self._lock:
                self._voices[preset_id] = voice
                self._status[preset_id] = PresetStatus(READY, source=source)
            return voice

    def _tune(self, spec: PresetSpec) -> Voice:
        pairs = self.clip_pairs(spec)
        settings, estimate, _ = self.run_settings(spec, self.clip_seconds(spec))
        key = self.key(spec, settings)
        with self._lock:
            self._status[spec.id] = PresetStatus(TUNING, estimate, 0, settings.steps, time.monotonic())
            if spec.id in self._queue:
                self._queue.remove(spec.id)

        def on_step(step: int, loss: float) -> None:
            with self._lock:
                self._status[spec.id].step = step + 1

        started = time.perf_counter()
        voice = self.tune_fn(pairs, settings, spec, on_step)
        self.tunings += 1
        with self._lock:
            self._pace = min(max((time.perf_counter() - started) / max(estimate, 1e-3), PACE_RANGE[0]), PACE_RANGE[1])
        voice.extra = {**voice.extra, "preset": spec.id, "steps": settings.steps, "rank": settings.rank,
                       "learning_rate": settings.learning_rate, "seed": settings.seed,
                       "batch_size": settings.batch_size, "crop_seconds": settings.crop_seconds,
                       "tuning_seconds": round(time.perf_counter() - started, 2)}
        self.cache.save(self.tts.model_id, spec.id, key, voice)
        log.info("preset %s tuned for %s in %.1f s", spec.id, self.tts.model_id, time.perf_counter() - started)
        return voice

    def _tune_here(self, pairs, settings: TuningSettings, spec: PresetSpec, on_step) -> Voice:
        return tune_with(self.tts, pairs, settings, spec, on_step)

    def start_background(self) -> threading.Thread | None:
        """Tunes every missing preset in a daemon thread, one after another (background mode only)."""
        if self.mode != BACKGROUND or self._thread is not None:
            return self._thread
        with self._lock:
            self._queue = [i for i, s in self._status.items() if s.state == QUEUED]
        self._thread = threading.Thread(target=self._work, name="lina-presets", daemon=True)
        self._thread.start()
        return self._thread

    def _work(self) -> None:
        while True:
            with self._lock:
                if not self._queue:
                    return
                preset_id = self._queue[0]
            try:
                self.ensure(preset_id)
            except PresetNotReady:
                pass  # its status says why
            with self._lock:
                if preset_id in self._queue:
                    self._queue.remove(preset_id)


def tune_with(tts: LinaTTS, pairs, settings: TuningSettings, spec: PresetSpec, on_step=None) -> Voice:
    """`spec` tuned from `pairs` with `settings` on `tts`; the memory goes back to the system after."""
    try:
        voice, _ = tts.tune_voice(list(pairs), steps=settings.steps, rank=settings.rank,
                                  learning_rate=settings.learning_rate, batch_size=settings.batch_size,
                                  seed=settings.seed, crop_seconds=settings.crop_seconds, on_step=on_step,
                                  name=spec.name, style=spec.style, description=spec.description)
    finally:
        release_memory()
    return voice


def load_trusted_shipped(path: Path, cfg) -> Voice | None:
    """A shipped state: the manifest vouches for its key, so only its loading and fit are checked."""
    if not path.is_file():
        return None
    try:
        voice = Voice.load(path)
        voice.check(cfg)
    except Exception as error:  # noqa: BLE001 - a broken shipped file is skipped, the preset then tunes
        log.warning("ignoring shipped preset state %s: %s", path, error)
        return None
    return voice


def plain_problem(error: Exception) -> str:
    """An error's own words, never its class name or a trace."""
    text = str(error).strip().rstrip(".")
    return text or "the tuning failed"
