"""The lab's scripts (lab/scripts/) as modules for tests (they are programs, not part of the package)."""
from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

SCRIPTS = Path(__file__).resolve().parents[1] / "lab" / "scripts"


def load_script(name: str) -> ModuleType:
    """lab/scripts/<name>.py, executed as a fresh module."""
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
