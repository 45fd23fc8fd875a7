"""The layout as the README states it: which subpackage of ``upseg`` may import which, no import cycle anywhere (a
function-level import counts: it holds a cycle open just as well), and no entry point imported as a library.

Imports are read from the source (AST), not by importing, so a cycle that Python would tolerate at run time through
an import inside a function still fails here."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "src" / "upseg"

# What each part of upseg may import of upseg (besides itself), lowest first; the README's "Layout" says the same.
MAY_IMPORT = {
    "errors": set(),
    "upsample": set(),
    "models": {"upsample", "errors"},
    "losses": {"errors"},
    "metrics": {"errors"},
    "data": {"errors"},
    "cli": {"models", "upsample", "errors"},
    "analysis": {"metrics", "models", "upsample", "errors"},
    "inference": {"errors"},
    "planning": {"data", "models", "cli", "errors"},
    "training": {"models", "losses", "metrics", "data", "inference", "analysis", "planning", "cli", "errors"},
    "evaluation": {"training", "models", "metrics", "data", "inference", "cli", "errors"},
    "prediction": {"training", "inference", "data", "metrics", "models", "cli", "errors"},
    "peer": {"training", "planning", "data", "metrics", "analysis", "cli", "errors"},
    "__init__": {"training", "prediction"},
}


def module_name(path: Path) -> str:
    parts = ["upseg", *path.relative_to(PACKAGE).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(source: str, package: str, modules: set[str]) -> set[str]:
    """The upseg modules a module's ``source`` imports anywhere in it (``from a.b import c`` counts ``a.b.c`` when that
    is a module, else ``a.b``); relative imports are resolved against ``package``, the package it is in."""
    tree = ast.parse(source)
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else [])
                )
            names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
        else:
            continue
        found.update(name for name in names if name == "upseg" or name.startswith("upseg."))
    return found


def import_graph() -> dict[str, set[str]]:
    files = sorted(PACKAGE.rglob("*.py"))
    modules = {module_name(path) for path in files}
    graph = {}
    for path in files:
        name = module_name(path)
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        graph[name] = imported_modules(path.read_text(), package, modules) & modules
    return graph


def part(module: str) -> str:
    """The subpackage (or top-level module) of upseg a module belongs to."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module, or a module importing itself (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1 or node in graph.get(node, ()):
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_package_has_no_import_cycle():
    assert cycles(import_graph()) == []


def test_the_cycle_finder_finds_a_cycle_held_open_by_a_function_level_import():
    graph = {"upseg.a": {"upseg.b"}, "upseg.b": {"upseg.c"}, "upseg.c": {"upseg.a"}, "upseg.d": {"upseg.a"}}
    assert cycles(graph) == [["upseg.a", "upseg.b", "upseg.c"]]
    assert cycles({"upseg.a": {"upseg.a"}}) == [["upseg.a"]]
    # And it reads imports inside functions (the compare ↔ plots cycle was held open that way) and relative ones.
    source = "def f():\n    from upseg.training import module\n\nfrom . import sweep\n"
    modules = {"upseg.training", "upseg.training.module", "upseg.analysis.sweep"}
    assert imported_modules(source, "upseg.analysis", modules) == {"upseg.training.module", "upseg.analysis.sweep"}


def test_every_part_imports_only_what_the_layout_allows():
    assert {part(module) for module in import_graph()} == set(MAY_IMPORT), "a new subpackage needs a row in MAY_IMPORT"
    breaches = sorted(
        f"{module} imports {target}"
        for module, targets in import_graph().items()
        for target in targets
        if part(target) != part(module) and part(target) not in MAY_IMPORT[part(module)]
    )
    assert breaches == []


ENTRY_POINTS = {path.stem for path in (REPO / "scripts").glob("*.py")}


@pytest.mark.parametrize("folder", ["src", "tests", "scripts"])
def test_no_entry_point_is_imported_as_a_library(folder):
    offenders = []
    for path in (REPO / folder).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom) and not node.level
                else []
            )
            offenders += [f"{path}: {name}" for name in names if name.split(".")[0] in {"scripts", *ENTRY_POINTS}]
    assert offenders == []
