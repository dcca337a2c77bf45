"""The import contract (pyproject.toml, [tool.importlinter]) holds, and no module imports its way
back to itself.

import-linter checks the declared contracts: the core never imports the window, the command line or
Qt; the command line sits over the window, the window over the core; siblings in any package form no
cycle. On top of that, the module graph itself (every import, lazy ones inside functions included)
has no cycle at all, so an import can never find a module half-initialised.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[1]


def module_cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    cycles: list[list[str]] = []
    counter = 0
    for root in sorted(graph.modules):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.find_modules_directly_imported_by(child)))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        cycles.append(sorted(component))
    return cycles


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph("explorer", cache_dir=None)


def test_the_declared_contracts_are_kept():
    # in a process of its own: import-linter sets up logging as it runs, which would silence the app's
    # loggers for the tests after this one
    r = subprocess.run([sys.executable, "-c", "from importlinter.cli import lint_imports_command; lint_imports_command()",
                        "--config", "pyproject.toml", "--no-cache"], cwd=ROOT, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "4 kept, 0 broken" in r.stdout, r.stdout


def test_no_module_imports_its_way_back_to_itself(graph):
    assert module_cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle(graph):
    """The check above bites: one added import back from the engine's session to the window."""
    graph.add_import(importer="explorer.core.engine.session", imported="explorer.gui.app")
    try:
        cycles = module_cycles(graph)
    finally:
        graph.remove_import(importer="explorer.core.engine.session", imported="explorer.gui.app")
    assert cycles and any("explorer.core.engine.session" in c and "explorer.gui.app" in c for c in cycles)


def test_the_core_never_imports_qt_even_lazily(graph):
    qt = {"PySide6", "shiboken6", "pyqtgraph"}
    offenders = [
        (m, imported)
        for m in graph.find_descendants("explorer.core") | {"explorer.core"}
        for imported in graph.find_modules_directly_imported_by(m)
        if imported.split(".")[0] in qt or imported.startswith(("explorer.gui", "explorer.cli"))
    ]
    assert offenders == []
