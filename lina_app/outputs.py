"""Files the app hands back (24 kHz int16 WAV, voice files, plots) and the info line under the audio."""
from __future__ import annotations

import re
import shutil
import tempfile
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import soundfile

from lina.audio import to_int16
from lina.tts import Synthesis
from lina_app.settings import OUTPUT_TTL_SECONDS

PRUNE_EVERY_SECONDS = 60


def slug(text: str, default: str = "voice") -> str:
    """A file-name-safe form of a display name ('Ava — happy!' -> 'ava-happy')."""
    cleaned = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40]
    return cleaned or default


class OutputDir:
    """A private folder under the system temp dir (Gradio serves from there); old files are pruned.

    Every file gets its own sub-folder so downloads keep a readable name without collisions.
    """

    def __init__(self, root: str | Path | None = None, ttl: float = OUTPUT_TTL_SECONDS):
        self.root = Path(root or tempfile.mkdtemp(prefix="lina-app-"))
        self.root.mkdir(parents=True, exist_ok=True)
        self.ttl = ttl
        self._lock = threading.Lock()
        self._last_prune = 0.0

    def new_path(self, name: str) -> Path:
        self._prune()
        folder = self.root / uuid.uuid4().hex[:12]
        folder.mkdir()
        return folder / name

    def _prune(self) -> None:
        now = time.time()
        with self._lock:
            if now - self._last_prune < PRUNE_EVERY_SECONDS:
                return
            self._last_prune = now
        for folder in self.root.iterdir():
            try:
                if now - folder.stat().st_mtime > self.ttl:
                    shutil.rmtree(folder, ignore_errors=True)
            except OSError:
                pass  # removed meanwhile by another request

    def wav(self, audio: np.ndarray, sample_rate: int, name: str) -> str:
        """Float audio -> a 16-bit PCM WAV file; returns its path."""
        path = self.new_path(f"{slug(name, 'audio')}.wav")
        soundfile.write(str(path), to_int16(audio), sample_rate, subtype="PCM_16")
        return str(path)


MAX_SHOWN_DROPPED = 12


def info_line(model_name: str, result: Synthesis, extra: str = "", dropped: tuple[str, ...] = ()) -> str:
    """'Model · audio length · generation time · real-time factor · tokens/s', then warnings (`dropped`:
    characters of the text that could not be read, e.g. emoji)."""
    count = len(result.audio)
    lengths = " + ".join(f"{len(audio) / result.sample_rate:.1f}" for audio in result.audio)
    parts = [f"Model: {model_name}",
             f"{count} candidate{'s' if count > 1 else ''}, {lengths} s of audio",
             f"generated in {result.seconds:.2f} s",
             f"real-time factor {result.real_time_factor:.2f}",
             f"{result.tokens_per_second:.0f} tokens/s",
             f"{len(result.text)} sentence{'s' if len(result.text) > 1 else ''} in one batch"]
    if extra:
        parts.insert(1, extra)
    line = " · ".join(parts)
    unfinished = [str(i + 1) for i, done in enumerate(result.finished) if not done]
    if unfinished:
        line += (f"\n⚠️ candidate {', '.join(unfinished)} reached the length limit before the end of speech "
                 "(try another seed or a lower temperature).")
    if dropped:
        shown = " ".join(dropped[:MAX_SHOWN_DROPPED]) + (" …" if len(dropped) > MAX_SHOWN_DROPPED else "")
        line += f"\n⚠️ left out, the model cannot read them: {shown}"
    return line
