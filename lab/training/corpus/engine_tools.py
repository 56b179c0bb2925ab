"""Where the corpus engines' binaries live and how to call them: the system, or a folder of unpacked .deb
files named by `LINA_CORPUS_ROOT` (`lab/scripts/corpus_bundle.sh`).

Its own module so that `engines` (every engine) and `engines_kokoro` (kokoro) both take these from below
instead of from each other.
"""
from __future__ import annotations

import functools
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

SUBPROCESS_TIMEOUT_S = 120
_MULTIARCH = "x86_64-linux-gnu"


class EngineMissing(RuntimeError):
    """The engine's binary (or Python package) is not installed here."""


@dataclass(frozen=True)
class Tools:
    """Where the engines live: `root` is "/" for the system, else an unpacked .deb folder."""

    root: Path

    @property
    def bundled(self) -> bool:
        return self.root != Path("/")

    def binary(self, name: str) -> str | None:
        if self.bundled:
            path = self.root / "usr/bin" / name
            return str(path) if path.exists() else None
        return shutil.which(name)

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("ESPEAK_DATA_PATH",)}
        env["LC_ALL"] = "C.UTF-8"
        if self.bundled:
            # libpulse keeps libpulsecommon in a private folder (seen on the GPU host, whose image has no libpulse).
            libs = [self.root / p for p in (f"usr/lib/{_MULTIARCH}", f"lib/{_MULTIARCH}", "usr/lib",
                                            f"usr/lib/{_MULTIARCH}/pulseaudio")]
            old = env.get("LD_LIBRARY_PATH", "")
            env["LD_LIBRARY_PATH"] = ":".join([*map(str, libs), *([old] if old else [])])
        return env

    @property
    def espeak_data(self) -> Path:
        return self.root / f"usr/lib/{_MULTIARCH}/espeak-ng-data"

    @property
    def festival_lib(self) -> Path:
        return self.root / "usr/share/festival"


@functools.cache
def tools() -> Tools:
    root = os.environ.get("LINA_CORPUS_ROOT")
    return Tools(Path(root).resolve() if root else Path("/"))


def require(name: str) -> str:
    path = tools().binary(name)
    if path is None:
        where = f"under {tools().root}" if tools().bundled else "on PATH"
        raise EngineMissing(f"{name} not found {where} (scripts/corpus_setup.sh or lab/scripts/corpus_bundle.sh)")
    return path
