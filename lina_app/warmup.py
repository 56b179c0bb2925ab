"""No cold start: kernel caches on disk, and a warm-up of every shape the app runs before it says "ready".

On CUDA the first call of a kernel shape costs seconds to minutes: fla's chunked GLA kernels (prompt
prefill, voice tuning forward and backward) autotune and Triton compiles them; the decode back end
compiles its step (``torch.compile``) and captures CUDA graphs. :func:`configure_kernel_caches` points
Triton's cache (compiled kernels and, with fla's ``FLA_CACHE_RESULTS=1``, autotune timings) and
Inductor's cache (compiled steps) at one folder that outlives the process, so a fresh process (a
ZeroGPU worker, a restarted Space) loads them instead of redoing them; :func:`warm_up` then runs the
app's endpoints on small inputs, once per shape class, while the page is not yet served.

Variable lengths are bucketed so shapes repeat: text positions of the decode back ends
(`lina.backends.cuda.TEXT_BUCKET`), voice-tuning clips (`lina.ist.IST_BUCKET` frames).
"""
from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import numpy as np

from lina_app.settings import REPO_ROOT

log = logging.getLogger("lina_app")

CACHE_ENV_VAR = "LINA_KERNEL_CACHE"
PERSISTENT_STORAGE = Path("/data")            # a Space's persistent storage, where enabled
SHIPPED_CACHE = REPO_ROOT / "kernel-cache"   # a cache committed with the Space (built on its GPU class)
WARMUP_BATCHES = (1, 2, 4, 8)                 # decode batch classes (candidates x sentences)
WARMUP_TEXT = "Warming up the decoder."
WARMUP_PROMPT_SECONDS = (3.0, 10.0)           # prompt prefill shapes (clone)
WARMUP_CLIP_SECONDS = (4.0, 8.0)              # voice-tuning clip shapes (forward + backward)
WARMUP_TUNING_STEPS = 2
WARMUP_MAX_SECONDS = 1.0                      # audio per warm-up row: shapes matter, not length


def kernel_cache_dir() -> Path:
    """``$LINA_KERNEL_CACHE``; else the Space's persistent storage (``/data``) where writable; else
    ``kernel-cache/`` in the repository (shipped with the Space)."""
    if os.environ.get(CACHE_ENV_VAR):
        return Path(os.environ[CACHE_ENV_VAR])
    if PERSISTENT_STORAGE.is_dir() and os.access(PERSISTENT_STORAGE, os.W_OK):
        return PERSISTENT_STORAGE / "lina-kernel-cache"
    return SHIPPED_CACHE


def configure_kernel_caches(folder: str | Path | None = None) -> Path:
    """Points Triton's, fla's and Inductor's on-disk caches at ``folder`` (default
    :func:`kernel_cache_dir`), unless the environment already names them. Call before the first
    kernel is compiled (at start-up, before the model is loaded)."""
    root = Path(folder) if folder else kernel_cache_dir()
    root.mkdir(parents=True, exist_ok=True)
    defaults = {
        "TRITON_CACHE_DIR": root / "triton",            # compiled Triton kernels + autotune results
        "FLA_CACHE_RESULTS": "1",                        # fla 0.6: keep autotune timings in Triton's cache
        "TORCHINDUCTOR_CACHE_DIR": root / "inductor",   # torch.compile's generated code and FX graphs
        "TORCHINDUCTOR_FX_GRAPH_CACHE": "1",
        "TORCHINDUCTOR_AUTOGRAD_CACHE": "1",
    }
    for name, value in defaults.items():
        os.environ.setdefault(name, str(value))
    return root


def _tone(seconds: float, rate: int, freq: float = 180.0) -> tuple[int, np.ndarray]:
    t = np.arange(int(seconds * rate)) / rate
    wave = 0.3 * np.sin(2 * np.pi * freq * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))
    return rate, wave.astype(np.float32)


def warm_up(tts, tuning: bool = True) -> dict[str, float]:
    """Runs each endpoint's shapes once through ``tts`` (a :class:`lina.tts.LinaTTS`); returns the
    seconds each part took. On the CPU only the decode back end is readied (the C step built)."""
    times: dict[str, float] = {}

    def timed(name, fn):
        start = time.perf_counter()
        fn()
        times[name] = round(time.perf_counter() - start, 2)

    timed("backend", lambda: tts.backend.warm_up(WARMUP_BATCHES))
    if tts.device.type != "cuda":
        return times
    rate = tts.sample_rate
    for batch in WARMUP_BATCHES:  # text encoder, decode, codec batch decode at each batch class
        sentences = " ".join([WARMUP_TEXT] * max(1, batch // 2))
        timed(f"synthesize_{batch}", lambda s=sentences, b=batch: tts.synthesize(
            s, candidates=2 if b > 1 else 1, max_seconds=WARMUP_MAX_SECONDS))
    for seconds in WARMUP_PROMPT_SECONDS:
        timed(f"clone_{seconds:g}s", lambda s=seconds: tts.clone(WARMUP_TEXT, _tone(s, rate), "a warm up clip",
                                                                 max_seconds=WARMUP_MAX_SECONDS))
    timed("stream", lambda: [None for _ in tts.stream(WARMUP_TEXT)])
    if tuning:
        clips = [(_tone(s, rate, 150 + 40 * i), "a warm up clip") for i, s in enumerate(WARMUP_CLIP_SECONDS * 2)]
        timed("tune_voice", lambda: tts.tune_voice(clips, steps=WARMUP_TUNING_STEPS))
    import torch
    torch.cuda.synchronize(tts.device)
    log.info("warm-up done: %s", times)
    return times
