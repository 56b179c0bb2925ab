"""The three wings: the library (`lina/`) and the Space (`app.py`, `lina_app/`) never import the lab (`lab/`).

The Space ships `lina` and `lina_app` only, and `pip install .` ships `lina` only (tests/test_packaging.py), so an
import of the lab from either would fail where they run. Every import counts, as in tests/test_import_graph.py:
at the top, inside a function, under `if TYPE_CHECKING:`, and `importlib.import_module("lab...")` by name.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAB = "lab"
SHIPPED = ("lina", "lina_app", "app.py")  # what the Space and the wheel carry


def _is_lab(module: str) -> bool:
    return module == LAB or module.startswith(LAB + ".")


def lab_imports(source: str, filename: str = "<string>") -> list[tuple[int, str]]:
    """(line, module) of every import of the lab in `source`. Relative imports stay inside their own package,
    so only absolute ones can reach the lab."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names if _is_lab(alias.name)]
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module and _is_lab(node.module):
            found.append((node.lineno, node.module))
        elif (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)
              and isinstance(node.args[0].value, str) and _is_lab(node.args[0].value)
              and getattr(node.func, "attr", getattr(node.func, "id", None)) in ("import_module", "__import__")):
            found.append((node.lineno, node.args[0].value))
    return found


def shipped_files() -> list[Path]:
    files = []
    for name in SHIPPED:
        path = ROOT / name
        files += sorted(path.rglob("*.py")) if path.is_dir() else [path]
    return files


def test_the_checker_finds_each_kind_of_lab_import():
    source = ("import lab\nimport os, lab.eval.asr as asr\nfrom lab.training.lm import data\n"
              "def late():\n    from lab import bench\n    return importlib.import_module('lab.eval')\n"
              "from .lab import x\nimport label\nfrom laboratory import y\nimport_module('lina.tts')\n")
    assert lab_imports(source) == [(1, "lab"), (2, "lab.eval.asr"), (3, "lab.training.lm"), (5, "lab"),
                                   (6, "lab.eval")]


def test_library_and_space_never_import_the_lab():
    files = shipped_files()
    assert len(files) > 60 and ROOT / "app.py" in files and ROOT / "lina" / "tts.py" in files
    offending = [f"{path.relative_to(ROOT)}:{line} imports {module}"
                 for path in files for line, module in lab_imports(path.read_text(), str(path))]
    if offending:
        pytest.fail("the library and the Space must not import the lab:\n" + "\n".join(offending))


def test_the_lab_is_outside_the_library():
    assert (ROOT / LAB / "training").is_dir() and (ROOT / LAB / "eval").is_dir()
    # Sources only: a checkout from before the move may keep ignored __pycache__ folders under lina/.
    left = [path for name in ("training", "eval") for path in (ROOT / "lina" / name).rglob("*.py")]
    assert not left and not (ROOT / "lina" / "evaluate.py").exists()
