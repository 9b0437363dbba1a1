"""Each package reads one way: no import cycle among the modules of ``auxir.data`` or ``auxir.retrieval``.

Imports are read with :mod:`ast`, at module level and inside functions alike, since a deferred import
still ties the two modules together.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import auxir

SRC = Path(auxir.__file__).resolve().parent


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, known: set[str]) -> set[str]:
    """The modules of ``known`` that ``path`` imports anywhere (``from pkg import mod`` counts as ``pkg.mod``)."""
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    [*package.split(".")[: len(package.split(".")) - node.level + 1], base]
                ).strip(".")
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found & known


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every elementary cycle reachable by depth-first search, each once, as ``[a, b, ..., a]``."""
    cycles: list[list[str]] = []
    seen: set[frozenset[str]] = set()

    def visit(node: str, stack: list[str]) -> None:
        for target in sorted(graph[node]):
            if target in stack:
                cycle = stack[stack.index(target) :] + [target]
                if frozenset(cycle) not in seen:
                    seen.add(frozenset(cycle))
                    cycles.append(cycle)
            else:
                visit(target, [*stack, target])

    for start in sorted(graph):
        visit(start, [start])
    return cycles


def import_graph(package: str) -> dict[str, set[str]]:
    files = sorted((SRC / package.split(".", 1)[1]).glob("*.py"))
    # The package's __init__ only re-exports; an edge to it is not a layer, so it is left out.
    files = [f for f in files if f.name != "__init__.py"]
    names = {module_name(f) for f in files}
    return {module_name(f): imported_modules(f, names) - {module_name(f)} for f in files}


def test_find_cycles_reports_each_cycle() -> None:
    graph = {"a": {"b"}, "b": {"a", "c"}, "c": {"d"}, "d": {"c"}, "e": {"a"}}
    assert find_cycles(graph) == [["a", "b", "a"], ["c", "d", "c"]]


@pytest.mark.parametrize("package", ["auxir.data", "auxir.retrieval"])
def test_package_has_no_import_cycle(package: str) -> None:
    graph = import_graph(package)
    assert len(graph) > 3, f"{package}: found only {sorted(graph)}"
    cycles = find_cycles(graph)
    assert cycles == [], f"{package} import cycles: " + "; ".join(" -> ".join(c) for c in cycles)
