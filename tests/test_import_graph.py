"""No import cycle anywhere in ``utils`` (issue 25): every module under ``utils/`` is parsed with ``ast``,
its imports of other ``utils`` modules (absolute ``utils.…`` and relative ``from . / from ..``,
including imports inside functions) become edges, and any cycle is named."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
UTILS = ROOT / "utils"


def module_name(path: Path, root: Path = ROOT) -> str:
    """``utils/learners/maml.py`` → ``utils.learners.maml``; a package's ``__init__.py`` → the package."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve(name: str, modules: set[str]) -> str | None:
    """The longest prefix of ``name`` that is a module of ``utils`` (``utils.a.b.func`` → ``utils.a.b``)."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def import_edges(path: Path, modules: set[str], root: Path = ROOT) -> set[str]:
    """The ``utils`` modules that the module at ``path`` imports (anywhere in its body, functions too)."""
    me = module_name(path, root)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                stem = ".".join(base + ([node.module] if node.module else []))
            else:
                stem = node.module or ""
            # ``from pkg import mod`` imports the module pkg.mod; ``from mod import name``, the module mod
            targets = [f"{stem}.{a.name}" for a in node.names]
        else:
            continue
        found |= {hit for hit in (_resolve(t, modules) for t in targets) if hit and hit != me}
    return found


def import_graph() -> dict[str, set[str]]:
    files = sorted(UTILS.rglob("*.py"))
    modules = {module_name(f) for f in files}
    return {module_name(f): import_edges(f, modules) for f in files}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as ``[a, b, …, a]``, or ``None`` (depth-first search, three colours)."""
    state, stack = {}, []

    def visit(node):
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_the_walk_sees_the_engine():
    graph = import_graph()
    assert len(graph) > 40, f"only {len(graph)} modules found under {UTILS}: the walk is broken"
    assert "utils.learners.base" in graph["utils.learners.maml"]          # relative, module level
    assert "utils.learners" in graph["utils.sinusoid_lab"]                 # relative, inside a function
    assert any(edges for name, edges in graph.items() if name.startswith("utils.course."))


def test_find_cycle_names_a_cycle_and_accepts_a_tree():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


@pytest.mark.parametrize("source, expected", [
    ("from .base import Learner", "utils.learners.base"),
    ("from . import folded", "utils.learners.folded"),
    ("from ..errors import course_error", "utils.errors"),
    ("def f():\n    import utils.learners.metric as m", "utils.learners.metric"),
    ("def f():\n    from utils.errors import course_error", "utils.errors"),
])
def test_import_edges_reads_every_form(tmp_path, source, expected):
    pkg = tmp_path / "utils" / "learners"
    pkg.mkdir(parents=True)
    for path in (tmp_path / "utils" / "__init__.py", tmp_path / "utils" / "errors.py",
                 *(pkg / f"{name}.py" for name in ("__init__", "base", "folded", "metric"))):
        path.write_text("")
    (pkg / "maml.py").write_text(source + "\n")
    modules = {module_name(f, tmp_path) for f in (tmp_path / "utils").rglob("*.py")}
    assert import_edges(pkg / "maml.py", modules, tmp_path) == {expected}


def test_no_import_cycle_in_utils():
    cycle = find_cycle(import_graph())
    assert cycle is None, ("import cycle in utils: " + " -> ".join(cycle)
                           + "; move what both need into a module of its own that imports neither "
                           "(as utils.learners.base does for the learners); an import inside a function counts too")
