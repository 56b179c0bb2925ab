"""The import graphs of the `lina` library and of the `lab` (training, evaluation, benchmarks) have no cycles.

Every import counts: at the top of a module, inside a function (a late import is still a dependency) and under
`if TYPE_CHECKING:` (a type hint that needs the other module is one too). A circle means two modules cannot be
read, tested or moved one without the other; the usual mend is to move the shared piece into the lower module.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("lina", "lab")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def library_modules(package: str = "lina") -> dict[str, Path]:
    """Dotted name -> file, for every module of `package`."""
    return {module_name(path): path for path in sorted((REPO / package).rglob("*.py"))}


def _resolve(importer: str, is_package: bool, node: ast.ImportFrom) -> str:
    """The absolute module a `from ... import` reads from (relative imports resolved against `importer`)."""
    if not node.level:
        return node.module or ""
    base = importer.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imported_modules(name: str, path: Path, known: set[str]) -> set[str]:
    """The library modules `name` imports, anywhere in its file."""
    found: set[str] = set()
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            source = _resolve(name, is_package, node)
            # `from lina.codec import streaming` reads a submodule; `from lina.codec import Codec` the package.
            targets = [f"{source}.{alias.name}" if f"{source}.{alias.name}" in known else source
                       for alias in node.names]
        else:
            continue
        for target in targets:
            # `import lina.codec.codec` names the module itself; a name we do not know is outside the library.
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def import_graph(package: str = "lina") -> dict[str, set[str]]:
    modules = library_modules(package)
    known = set(modules)
    return {name: imported_modules(name, path, known) & known for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm, iterative), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_cycle_finder_on_known_graphs():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []
    assert cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]
    assert sorted(cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"e"}, "e": {"d"}})) == [["a", "b", "c"],
                                                                                         ["d", "e"]]


def test_the_graph_sees_late_and_type_checking_imports():
    graph = import_graph()
    assert "lina.codec.codec" in graph["lina.codec"]          # a package's own import
    assert "lina.tts" in graph["lina"]                        # imported inside a function
    assert len(graph) > 40


def test_the_lab_graph_sees_its_packages():
    graph = import_graph("lab")
    assert "lab.training.lm.codes_folder" in graph["lab.training.lm.phonemes"]
    assert "lab.training.corpus.kokoro_batch" in graph["lab.training.corpus.kokoro_torch"]  # `from . import x`
    assert len(graph) > 100


@pytest.mark.parametrize("package", PACKAGES)
def test_no_import_cycles(package):
    found = cycles(import_graph(package))
    if found:
        pytest.fail(f"import cycles in {package}/: " + "; ".join(" <-> ".join(c) for c in found))
