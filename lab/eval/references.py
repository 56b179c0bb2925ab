"""Reference speech regenerated from a recipe: flite or espeak-ng, deterministic, cached on disk.

A recipe is a small dict, e.g. ``{"engine": "flite", "voice": "slt"}`` or
``{"engine": "espeak-ng", "voice": "en-us", "rate": 160}``; with the text it fully decides the audio
(both engines are deterministic). The file is written once into the cache folder under a name
derived from the engine's version, the recipe and the text, so a new engine build never reuses
stale audio. Debian: ``apt-get install flite espeak-ng``.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from functools import cache
from pathlib import Path

ENGINES = ("flite", "espeak-ng")
FLITE_VOICES = ("slt", "rms", "awb", "kal16", "kal", "awb_time")
TIMEOUT_SECONDS = 60
DEFAULT_CACHE = Path(os.environ.get("LINA_EVAL_CACHE", Path.home() / ".cache" / "lina-eval"))


class ReferenceError(RuntimeError):
    """A reference clip cannot be made (engine missing, bad recipe); the message says why."""


def engine_available(engine: str) -> bool:
    return shutil.which(engine) is not None


@cache
def engine_version(engine: str) -> str:
    """First version line of the engine (part of the cache key and of results.json)."""
    if not engine_available(engine):
        return "missing"
    flag = "--version"
    out = subprocess.run([engine, flag], capture_output=True, text=True, timeout=TIMEOUT_SECONDS, check=False)
    lines = [ln.strip() for ln in (out.stdout + out.stderr).splitlines() if "version" in ln.lower() or "espeak" in ln.lower()]
    return lines[0] if lines else "unknown"


def _command(recipe: dict, text: str, out: Path) -> list[str]:
    engine, voice = recipe.get("engine"), recipe.get("voice")
    if engine == "flite":
        voice = voice or "slt"
        if voice not in FLITE_VOICES:
            raise ReferenceError(f"unknown flite voice {voice!r}; known: {', '.join(FLITE_VOICES)}")
        cmd = ["flite", "-voice", voice, "-t", text, "-o", str(out)]
        if "stretch" in recipe:  # duration stretch: > 1 slower
            cmd[1:1] = ["--setf", f"duration_stretch={float(recipe['stretch'])}"]
        return cmd
    if engine == "espeak-ng":
        cmd = ["espeak-ng", "-v", str(voice or "en-us"), "-w", str(out)]
        if "rate" in recipe:
            cmd += ["-s", str(int(recipe["rate"]))]
        if "pitch" in recipe:
            cmd += ["-p", str(int(recipe["pitch"]))]
        return cmd + ["--", text]
    raise ReferenceError(f"unknown engine {engine!r} in recipe {recipe}; known: {', '.join(ENGINES)}")


def cache_key(recipe: dict, text: str) -> str:
    blob = json.dumps({"recipe": recipe, "text": text, "version": engine_version(str(recipe.get("engine")))},
                      sort_keys=True)
    return hashlib.sha1(blob.encode()).hexdigest()[:16]


def render(recipe: dict, text: str, cache_dir: str | Path = DEFAULT_CACHE) -> Path:
    """The WAV file of ``text`` spoken as ``recipe`` says (made once, then read from the cache)."""
    engine = str(recipe.get("engine"))
    if engine not in ENGINES:
        raise ReferenceError(f"unknown engine {engine!r}; known: {', '.join(ENGINES)}")
    if not engine_available(engine):
        raise ReferenceError(f"{engine} is not installed (Debian: apt-get install {engine})")
    cache = Path(cache_dir)
    name = f"{engine}-{recipe.get('voice', 'default')}-{cache_key(recipe, text)}.wav"
    path = cache / name
    if path.is_file() and path.stat().st_size > 44:
        return path
    cache.mkdir(parents=True, exist_ok=True)
    # Written beside the target then renamed: concurrent runs never read a half-written file.
    fd, tmp = tempfile.mkstemp(suffix=".wav", dir=cache)
    os.close(fd)
    try:
        proc = subprocess.run(_command(recipe, text, Path(tmp)), capture_output=True, text=True,
                              timeout=TIMEOUT_SECONDS, check=False)
        if proc.returncode != 0 or Path(tmp).stat().st_size <= 44:
            raise ReferenceError(f"{engine} failed ({proc.returncode}): {proc.stderr.strip()[:300]}")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path
