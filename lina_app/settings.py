"""Limits and defaults of the app, in one place so the UI, the API checks and the tests agree."""
from __future__ import annotations

from pathlib import Path

from lina.audio import DEFAULT_OPTIONS, AudioOptions
from lina.tts import MAX_PROMPT_SECONDS, MAX_ROW_SECONDS

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_VOICES_DIR = REPO_ROOT / "voices"
EMBEDDED_MODEL_DIR = REPO_ROOT / "assets" / "lina-mini"

# Text: one request stays well inside lina's 64-sentence batch and a visitor's patience.
MAX_TEXT_CHARS = 2000
MAX_TRANSCRIPT_CHARS = 1000   # one transcript: the clone clip's, or one line / .txt file per tuning clip

# Audio limits: each is the one lina enforces, named here so the page's labels state the same number.
MAX_UPLOAD_SECONDS = DEFAULT_OPTIONS.max_input_seconds   # any clip longer is refused before decoding
MAX_CLONE_CLIP_SECONDS = MAX_PROMPT_SECONDS              # prompt continuation's clip, after trimming silence
BEST_CLONE_CLIP_SECONDS = (3, 10)                        # advice, not a check: what continues best
MAX_TUNING_CLIP_SECONDS = MAX_ROW_SECONDS                # each tuning clip, after trimming silence

# How the app reads prompt and tuning clips (lina.reference): lina's clean-up (silence trimmed, loudness
# normalized, clipping reported) plus the light denoise of clips whose noise floor is high, which helped
# cloning from noisy clips (docs/reliability.md "Reference clean-up").
APP_AUDIO_OPTIONS = AudioOptions(denoise="auto")

# Sampling controls (UI sliders and server-side checks of API calls).
TOP_K_RANGE = (1, 1000)
DEFAULT_TOP_K = 100
TEMPERATURE_RANGE = (0.1, 2.0)
DEFAULT_TEMPERATURE = 1.0
SEED_RANGE = (0, 2**31 - 1)
DEFAULT_SEED = 0
MAX_CANDIDATES = 4          # candidates are generated as one batch and shown side by side

# Initial-State Tuning controls.
STEPS_RANGE = (1, 1000)
DEFAULT_STEPS = 100
RANK_RANGE = (1, 8)
DEFAULT_RANK = 1
LEARNING_RATE_RANGE = (1e-4, 1.0)
DEFAULT_LEARNING_RATE = 0.05
TUNING_BATCH_SIZE = 8
MAX_TUNING_CLIPS = 64
DEFAULT_PREVIEW_TEXT = "Hello! This is my new voice, built from a few short clips."
MAX_VOICE_NAME_CHARS = 60

# Queue: a long tuning job has its own group of one so it cannot starve short synthesis requests.
QUEUE_MAX_SIZE = 32
SYNTHESIS_CONCURRENCY = 2
TUNING_CONCURRENCY = 1
SYNTHESIS_GROUP = "synthesis"
TUNING_GROUP = "tuning"

# ZeroGPU time requested per call (seconds), sized to the request and capped. H200, released size
# (lab/bench/results/space_path_h200.json): steady synthesis 0.45 s (1 row) to 1.8 s (32 rows of 8 s), clone
# 1.0 s; a first call on an EMPTY kernel cache 15 s (compiling the decode step for a batch class). The
# base covers that, so a fresh worker is covered even where the cache is missing; the warm-up at start-up
# (and the on-disk caches) make the usual first call far cheaper.
GPU_BASE_SECONDS = 20
GPU_SECONDS_PER_CHAR = 0.05
GPU_SECONDS_PER_TUNING_STEP = 0.3
GPU_MAX_SECONDS = 120
# The start-up warm-up on an empty cache: decode compiles (~15 s per batch class), fla's prefill kernels
# autotune (81 s measured), its tuning kernels forward + backward (minutes); from the disk cache, seconds.
GPU_WARMUP_SECONDS = 480

# Streaming: chunks are gathered to about this much audio before being sent (fewer, larger pieces).
STREAM_CHUNK_SECONDS = 1.0

# Generated files are kept this long in the output folder, then pruned.
OUTPUT_TTL_SECONDS = 3600

# Model choice: a quick probe of the Hub, so an offline start is not held up.
HUB_PROBE_TIMEOUT_SECONDS = 3.0
