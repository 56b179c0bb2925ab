"""How a voice tuning request runs on this machine: batch size and crop that bound its memory, an
estimate of its time shown before it starts, a hard cap checked before any work, and memory handed
back to the system afterwards.

Memory and time of one tuning step grow with the audio it reads (batch x clip length); the number of
clips only changes which clips a step draws. So a step reads at most `frames_per_step` codes: clips are
cut to their first `crop_seconds` (a prefix: the state is tuned for the start of a reading) and the
batch holds as many as fit. On a GPU whole clips are read, in batches of `TUNING_BATCH_SIZE`.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import gc
from dataclasses import dataclass

from lina.constants import FRAME_RATE
from lina_app.settings import TUNING_BATCH_SIZE

# CPU: ~1 minute at the default steps on a 2-core machine (measured: 2.8 ms per code
# frame per step, 12.5 s a step for 8 clips of ~7.5 s).
CPU_CROP_SECONDS = 6.0           # each clip's first 6 s in a step
CPU_SECONDS_PER_STEP = 12.0      # audio one step reads at most: 2 crops
CPU_DEFAULT_STEPS = 20
CPU_SECONDS_PER_FRAME = 0.0028   # one step, per code frame read (forward + backward), 2 idle cores
CPU_ENCODE_REAL_TIME = 0.15      # codec encoding of the clips, seconds per second of audio
CPU_MAX_ESTIMATE_SECONDS = 600   # a request estimated longer is refused before any work
GPU_SECONDS_PER_FRAME = 0.00005
GPU_ENCODE_REAL_TIME = 0.005
GPU_MAX_ESTIMATE_SECONDS = 900


@dataclass(frozen=True)
class TuningPlan:
    """What one request will do: `batch_size` clips per step, each cut to `crop_seconds` (0: whole)."""

    device: str
    batch_size: int
    crop_seconds: float
    frames_per_step: int
    estimate_seconds: float
    limit_seconds: float

    @property
    def too_long(self) -> bool:
        return self.estimate_seconds > self.limit_seconds

    def describe(self, steps: int) -> str:
        crop = f"the first {self.crop_seconds:g} s of each clip" if self.crop_seconds else "whole clips"
        return (f"about {_duration(self.estimate_seconds)} on this {self.device.upper()} ({steps} steps, "
                f"{self.batch_size} clip(s) a step, {crop})")


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"


def default_steps(device: str, gpu_default: int) -> int:
    """The page's default number of steps: fewer on a CPU, so the default finishes in about a minute."""
    return CPU_DEFAULT_STEPS if device == "cpu" else gpu_default


def tuning_hint(device: str) -> str:
    """The line under the steps slider: what a request costs here, before it is sent."""
    if device == "cpu":
        example = plan([CPU_CROP_SECONDS] * 4, CPU_DEFAULT_STEPS, device)
        return (f"On this CPU a step reads at most {CPU_SECONDS_PER_STEP:g} s of audio (the first "
                f"{CPU_CROP_SECONDS:g} s of each clip): {CPU_DEFAULT_STEPS} steps take "
                f"{_duration(example.estimate_seconds)}; the time is estimated when you start")
    return "100+ steps for a closer voice; the time is estimated when you start"


def plan(clip_seconds: list[float], steps: int, device: str) -> TuningPlan:
    """`clip_seconds`: each clip's length after trimming (what the codec encodes)."""
    longest = max(clip_seconds, default=0.0)
    if device == "cpu":
        crop = CPU_CROP_SECONDS if longest > CPU_CROP_SECONDS else 0.0
        read = min(longest, CPU_CROP_SECONDS)
        batch = max(1, min(TUNING_BATCH_SIZE, len(clip_seconds), int(CPU_SECONDS_PER_STEP // max(read, 1e-3))))
        per_frame, encode, limit = CPU_SECONDS_PER_FRAME, CPU_ENCODE_REAL_TIME, CPU_MAX_ESTIMATE_SECONDS
    else:
        crop, read = 0.0, longest
        batch = max(1, min(TUNING_BATCH_SIZE, len(clip_seconds)))
        per_frame, encode, limit = GPU_SECONDS_PER_FRAME, GPU_ENCODE_REAL_TIME, GPU_MAX_ESTIMATE_SECONDS
    frames = int(batch * read * FRAME_RATE)
    estimate = encode * sum(clip_seconds) + steps * frames * per_frame
    return TuningPlan(device, batch, crop, frames, estimate, limit)


def time_left(elapsed: float, done: int, steps: int) -> str:
    """'about 40 s left' from the pace so far."""
    if done <= 0:
        return ""
    return f"about {_duration(elapsed / done * (steps - done))} left"


def release_memory() -> None:
    """After a tuning: drop its tensors and hand freed heap back to the system (glibc keeps freed
    blocks in its arenas otherwise, and the idle app would stay at its peak)."""
    gc.collect()
    name = ctypes.util.find_library("c")
    if not name:
        return
    try:
        ctypes.CDLL(name).malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to trim
        pass
