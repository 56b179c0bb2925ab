"""The disk cache of preset states tuned by the app: one safetensors file per (preset, key).

Where: `$LINA_PRESET_CACHE` when set, else the Space's persistent storage `/data` when it is there
(it outlives restarts), else the user cache folder (`platformdirs`, e.g. ~/.cache/lina-speech). A
file is trusted only when it loads as a voice (safetensors: tensors and text, nothing executed; the
tensors' SHA-256 checked by `lina.voice.Voice.load`), fits the loaded model and records the very key
asked for; anything else is ignored (and later overwritten), never an error for the visitor.
"""
from __future__ import annotations

import logging
import os
import re
import tempfile
from pathlib import Path

from lina.config import LinaConfig
from lina.voice import Voice, VoiceError

log = logging.getLogger("lina_app")

CACHE_ENV_VAR = "LINA_PRESET_CACHE"
SPACE_STORAGE = Path("/data")
APP_NAME = "lina-speech"
SUBDIR = "presets"
KEY_FIELD = "preset_key"         # in the voice's `extra`: the key the state was tuned for
KEY_CHARS_IN_NAME = 16           # a file name carries a key prefix; the full key is checked inside


def cache_root() -> Path:
    if os.environ.get(CACHE_ENV_VAR):
        return Path(os.environ[CACHE_ENV_VAR])
    if SPACE_STORAGE.is_dir() and os.access(SPACE_STORAGE, os.W_OK):
        return SPACE_STORAGE / APP_NAME / SUBDIR
    try:
        import platformdirs
    except ImportError:  # a bare GPU image running the maintainer command: the XDG convention
        return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / APP_NAME / SUBDIR
    return Path(platformdirs.user_cache_dir(APP_NAME)) / SUBDIR


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text)[:80] or "_"


class PresetCache:
    """States by (model id, preset id, key) under `root`."""

    def __init__(self, root: str | Path | None = None):
        self.root = Path(root) if root else cache_root()

    def path(self, model_id: str, preset_id: str, key: str) -> Path:
        return self.root / _safe(model_id) / f"{_safe(preset_id)}-{key[:KEY_CHARS_IN_NAME]}.safetensors"

    def load(self, model_id: str, preset_id: str, key: str, cfg: LinaConfig) -> Voice | None:
        """The cached state for exactly this key, or None (absent, corrupt, another key or model)."""
        return load_trusted(self.path(model_id, preset_id, key), key, cfg)

    def save(self, model_id: str, preset_id: str, key: str, voice: Voice) -> Path | None:
        """Written to a temporary file then renamed: a crash mid-write leaves no half file under the name.
        A cache that cannot be written (read-only disk) only costs a re-tune on the next start."""
        path = self.path(model_id, preset_id, key)
        voice.extra = {**voice.extra, KEY_FIELD: key}
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
            os.close(fd)
            voice.save(tmp)
            os.replace(tmp, path)
            return path
        except OSError as error:
            log.warning("preset cache not written (%s): %s", path, error)
            return None


def load_trusted(path: Path, key: str, cfg: LinaConfig) -> Voice | None:
    """`path` as a voice if it records `key` and fits `cfg`; None otherwise (logged, never raised)."""
    if not path.is_file():
        return None
    try:
        voice = Voice.load(path)
        voice.check(cfg)
    except (VoiceError, OSError, ValueError) as error:
        log.warning("ignoring preset state %s: %s", path, error)
        return None
    if voice.extra.get(KEY_FIELD) != key:
        log.info("ignoring preset state %s: tuned for other clips, settings or model", path)
        return None
    return voice
