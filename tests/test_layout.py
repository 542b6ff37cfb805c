"""The package's layout: no import circle between its modules, and no module too long to read.

The import graph is read from the source with :mod:`ast` (nothing is imported): an edge
``a -> b`` for every ``import``/``from ... import`` at the top level of module ``a`` (also
inside a top-level ``if`` or ``try``, never under ``if TYPE_CHECKING``) naming a module
``b`` of the package. ``from pkg import name`` points at the submodule ``pkg.name`` when
there is one, else at ``pkg`` itself. Imports inside functions run on first use, after every
module has loaded, so a circle through one does not break loading; it still ties a lower
layer to a higher one, so a second test counts them too, with the one known exception.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "nsm_sim"

#: No module above this many lines (issue 11: "no module over about 500 lines").
MAX_LINES = 500


def module_files(root: Path = PACKAGE) -> dict[str, Path]:
    """Return every module of the package by dotted name (a package by its ``__init__``)."""
    modules = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


@functools.cache
def _parsed(path: Path) -> ast.Module:
    """Parse a module once for every graph the tests build from it."""
    return ast.parse(path.read_text(encoding="utf-8"))


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _top_level_imports(body: list[ast.stmt]) -> list[ast.Import | ast.ImportFrom]:
    found: list[ast.Import | ast.ImportFrom] = []
    for node in body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        elif isinstance(node, ast.If) and not _is_type_checking(node.test):
            found += _top_level_imports(node.body) + _top_level_imports(node.orelse)
        elif isinstance(node, ast.Try):
            for block in (node.body, node.orelse, node.finalbody, *(h.body for h in node.handlers)):
                found += _top_level_imports(block)
    return found


def _all_imports(body: list[ast.stmt]) -> list[ast.Import | ast.ImportFrom]:
    return [
        n for stmt in body for n in ast.walk(stmt) if isinstance(n, ast.Import | ast.ImportFrom)
    ]


def import_graph(modules: dict[str, Path], *, everywhere: bool = False) -> dict[str, set[str]]:
    """Return, per module, the package's modules it imports (at its top level, or anywhere)."""
    imports = _all_imports if everywhere else _top_level_imports
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        here = name if is_package else name.rpartition(".")[0]
        targets: set[str] = set()
        for node in imports(_parsed(path).body):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
                continue
            base = node.module or ""
            if node.level:
                anchor = here.split(".")[: len(here.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                targets.add(sub if sub in modules else base)
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Return the strongly connected groups of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return groups


def test_the_graph_sees_the_imports_it_must():
    graph = import_graph(module_files())
    # a plain import of a sibling module, an alias of one, and a name from a package
    assert "nsm_sim.simulate.chunk" in graph["nsm_sim.simulate.kernel"]
    assert "nsm_sim.events.within_sql" in graph["nsm_sim.events.within"]
    assert "nsm_sim.spec" in graph["nsm_sim.serve.planner"]
    # an import inside a function is not a top-level edge
    assert "nsm_sim.models.inference" not in graph["nsm_sim.serve.fit_model"]


def test_a_circle_is_found(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from pkg.sub import b\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "b.py").write_text("from .c import x\n")
    (pkg / "sub" / "c.py").write_text("import pkg.a\nx = 1\n")
    (pkg / "d.py").write_text("def f():\n    from pkg import a\n")
    graph = import_graph(module_files(pkg))
    assert import_cycles(graph) == [["pkg.a", "pkg.sub.b", "pkg.sub.c"]]
    assert graph["pkg.d"] == set()
    assert import_graph(module_files(pkg), everywhere=True)["pkg.d"] == {"pkg.a"}


def test_no_import_circle():
    cycles = import_cycles(import_graph(module_files()))
    assert cycles == [], f"modules that import each other at load time: {cycles}"


#: Imports on first use that close a circle, and why they stay.
KNOWN_LATE_EDGES = {
    # SimulationResult.simulate_set runs the simulator again for a set of its initiatives
    ("nsm_sim.simulate.results", "nsm_sim.simulate.run"),
}


def test_no_import_circle_through_imports_on_first_use():
    graph = import_graph(module_files(), everywhere=True)
    for a, b in KNOWN_LATE_EDGES:
        assert b in graph[a], f"{a} no longer imports {b}: drop it from KNOWN_LATE_EDGES"
        graph[a].discard(b)
    cycles = import_cycles(graph)
    assert cycles == [], f"modules that import each other (some on first use): {cycles}"


def test_no_module_over_the_limit():
    lines = {
        name: len(path.read_text(encoding="utf-8").splitlines())
        for name, path in module_files().items()
    }
    assert len(lines) > 100  # the whole package was read
    too_long = {name: n for name, n in lines.items() if n > MAX_LINES}
    assert too_long == {}, f"split these along a seam (limit {MAX_LINES} lines): {too_long}"
