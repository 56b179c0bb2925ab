"""Voice tuning that fits the machine: the plan (batch and crop) bounds a step's audio whatever the number
of clips, the estimate and the hard cap come before any work, and the app's memory goes back down after.

The memory test runs the app's tuning path (`lina_app.engine.Engine.tune` with `lina_app.tuning.plan`) with the
embedded model in a child process, so its peak (VmHWM) and idle RSS are its own. Linux only (/proc).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lina_app.settings import EMBEDDED_MODEL_DIR
from lina_app.tuning import (CPU_CROP_SECONDS, CPU_DEFAULT_STEPS, CPU_MAX_ESTIMATE_SECONDS, CPU_SECONDS_PER_STEP,
                             default_steps, plan, time_left)

REPO_ROOT = Path(__file__).resolve().parents[1]
CLIP_SECONDS = 8.0            # longer than the CPU crop: each step reads the first 6 s of 2 clips
FEW, MANY = 2, 6
IDLE_MARGIN_MIB = 200         # idle RSS after a tuning, above the RSS before it
PEAK_GROWTH_FACTOR = 1.5      # 3x the clips may cost at most 1.5x the peak growth (linear would be 3x)

# The child: the embedded model, N clips of CLIP_SECONDS cut from the shipped example clips, one tuning
# through the app's engine as the handler runs it; prints RSS before, peak and idle (MiB).
CHILD = r"""
import json, sys
import numpy as np
from lina.audio import load_audio
from lina.tts import LinaTTS
from lina_app.engine import Engine
from lina_app.tuning import plan
n, seconds = int(sys.argv[1]), float(sys.argv[2])
def mib(key):
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith(key)) / 1024
engine = Engine(LinaTTS.from_pretrained("assets/lina-mini"))
parts = [load_audio(f"assets/examples/joe_tune_{i}.flac") for i in range(1, 5)]
words = [open(f"assets/examples/joe_tune_{i}.txt").read().strip() for i in range(1, 5)]
clips = []
for c in range(n):
    order = [(c + k) % 4 for k in range(4)]
    audio = np.concatenate([parts[i] for i in order])[: int(seconds * 24000)]
    clips.append(((24000, audio), " ".join(words[i] for i in order)))
how = plan([seconds] * n, 1, "cpu")
before = mib("VmRSS")
events = list(engine.tune(clips, 1, 1, 0.05, 0, "t", "", how.batch_size, how.crop_seconds))
assert type(events[-1]).__name__ == "TuningDone", events[-1]
print(json.dumps({"before": before, "peak": mib("VmHWM"), "idle": mib("VmRSS"), "batch": how.batch_size}))
"""


def test_plan_bounds_a_steps_audio_whatever_the_clip_count():
    steps = CPU_DEFAULT_STEPS
    plans = [plan([40.0] * n, steps, "cpu") for n in (1, 4, 8)]
    assert [p.crop_seconds for p in plans] == [CPU_CROP_SECONDS] * 3
    assert [p.batch_size for p in plans] == [1, 2, 2]
    assert max(p.frames_per_step for p in plans) <= CPU_SECONDS_PER_STEP * 75
    short = plan([3.0] * 8, steps, "cpu")  # short clips: no crop, more of them in a step
    assert short.crop_seconds == 0 and short.batch_size == 4 and short.frames_per_step == 4 * 3 * 75
    # The CPU default finishes in about a minute (4 clips of 6 s, the default steps).
    assert 30 <= plan([6.0] * 4, steps, "cpu").estimate_seconds <= 90
    assert plan([40.0] * 64, 1000, "cpu").too_long and not plan([40.0] * 8, steps, "cpu").too_long
    assert plan([40.0] * 8, 1000, "cpu").estimate_seconds > CPU_MAX_ESTIMATE_SECONDS
    gpu = plan([40.0] * 8, 100, "cuda")
    assert gpu.crop_seconds == 0 and gpu.batch_size == 8
    assert default_steps("cpu", 100) == CPU_DEFAULT_STEPS and default_steps("cuda", 100) == 100
    assert time_left(10.0, 5, 20) == "about 30 s left" and time_left(0.0, 0, 20) == ""


def test_a_request_over_the_cap_is_refused_before_any_work(monkeypatch):
    """The handler refuses with the estimate before the engine is called."""
    import gradio as gr

    from lina_app import handlers

    calls = []
    from lina.reference import CleanupReport

    monkeypatch.setattr(handlers, "check_clips_audio", lambda pairs: [CleanupReport(40.0, 40.0)] * len(pairs))
    monkeypatch.setattr(handlers, "pair_clips", lambda clips, text, *_: [(f"c{i}.wav", "words") for i in range(40)])

    class Fake:
        tts = type("T", (), {"device": type("D", (), {"type": "cpu"})(), "name": "m"})()
        engine = type("E", (), {"tune": lambda *a, **k: calls.append(a) or iter(())})()

    with pytest.raises(gr.Error, match="would take about .* the limit here is 10 min"):
        list(handlers.Handlers.tune_voice.__wrapped__(Fake(), ["x"], "", steps=1000, progress=lambda *a, **k: None))
    assert not calls


def _child(n: int) -> dict:
    done = subprocess.run([sys.executable, "-c", CHILD, str(n), str(CLIP_SECONDS)], cwd=REPO_ROOT, check=True,
                          capture_output=True, text=True, timeout=600,
                          env=os.environ | {"HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "2"})
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads memory from /proc (Linux)")
@pytest.mark.skipif(not (EMBEDDED_MODEL_DIR / "config.json").is_file(), reason="the embedded model is not here")
def test_peak_memory_grows_sub_linearly_with_clips_and_idle_returns():
    few, many = _child(FEW), _child(MANY)
    print(f"tuning memory MiB: {FEW} clips {few}, {MANY} clips {many}")
    assert few["batch"] == many["batch"] == 2
    assert many["peak"] - many["before"] <= PEAK_GROWTH_FACTOR * (few["peak"] - few["before"]), (few, many)
    for run in (few, many):
        assert run["idle"] - run["before"] <= IDLE_MARGIN_MIB, run
