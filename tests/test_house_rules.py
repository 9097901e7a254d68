"""The house rules of issue 25 (CONTRIBUTING.md, "Where things live"), checked over the whole of
``utils/`` and ``solutions/``: no module over :data:`MAX_MODULE_LINES` lines, ``__all__`` in every
public module (and every name in it defined), and no notebook reaching into a private name of the
engine. This file is the one place these rules are stated as numbers."""
from __future__ import annotations

import ast
import importlib
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parents[1]
UTILS = REPO / "utils"
#: The longest a module may grow; split a longer one by concern (not by line count).
MAX_MODULE_LINES = 400


def _modules() -> list[Path]:
    return sorted(p for p in UTILS.rglob("*.py") if "__pycache__" not in p.parts)


def _is_public(path: Path) -> bool:
    """``utils/x.py`` and package ``__init__``s are public; ``_x.py``, ``__main__.py`` and anything
    inside a ``_package/`` are not."""
    parts = path.relative_to(REPO).parts
    return not any(p.startswith("_") for p in parts[:-1]) and (
        parts[-1] == "__init__.py" or not parts[-1].startswith("_"))


def _dotted(path: Path) -> str:
    rel = path.relative_to(REPO).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def long_modules(limit: int = MAX_MODULE_LINES) -> dict[str, int]:
    """Every module of ``utils/`` over ``limit`` lines -> its line count."""
    counts = {str(p.relative_to(REPO)): len(p.read_text(encoding="utf-8").splitlines()) for p in _modules()}
    return {k: n for k, n in counts.items() if n > limit}


def test_no_module_over_the_limit():
    offenders = long_modules()
    assert not offenders, (f"modules over {MAX_MODULE_LINES} lines (split each by concern, as utils/fuse/ "
                           "and utils/distill/ are): " + ", ".join(f"{k} ({n})" for k, n in sorted(offenders.items())))


def test_the_line_count_sees_long_modules():
    """The rule above must be able to fail: with a limit of 10 lines, most modules are offenders."""
    assert len(long_modules(10)) > len(_modules()) // 2


def _all_problems(dotted: str) -> str | None:
    try:
        module = importlib.import_module(dotted)
    except Exception as exc:  # noqa: BLE001 - reported with the others
        return f"{dotted}: does not import ({type(exc).__name__}: {exc})"
    names = vars(module).get("__all__")
    if names is None:
        return f"{dotted}: no __all__"
    if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names):
        return f"{dotted}: __all__ is not a list of strings"
    missing = [n for n in names if not hasattr(module, n)]
    if missing:
        return f"{dotted}: __all__ names {missing}, which the module does not define"
    if len(set(names)) != len(names):
        return f"{dotted}: __all__ repeats {sorted({n for n in names if list(names).count(n) > 1})}"
    return None


def test_every_public_module_declares_its_public_names():
    public = [_dotted(p) for p in _modules() if _is_public(p)]
    assert "utils.distill" in public and "utils.course.book" in public
    problems = [msg for msg in map(_all_problems, public) if msg]
    assert not problems, ("every public module lists its public names in __all__ (issue 25):\n  "
                          + "\n  ".join(problems))


# --------------------------------------------------------------------------- private names in notebooks
def _code(source: str) -> str:
    """A code cell's source as Python: IPython magics and shell escapes become plain Python."""
    from IPython.core.inputtransformer2 import TransformerManager
    return TransformerManager().transform_cell(source)


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _own_attributes(trees) -> set[str]:
    """Private attributes the notebook defines itself: ``obj._x = ...`` or a method ``_x`` of a
    class written in the notebook."""
    own = set()
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                own.add(node.attr)
            elif isinstance(node, ast.ClassDef):
                own |= {b.name for b in node.body if isinstance(b, (ast.FunctionDef, ast.AsyncFunctionDef))}
    return own


def _foreign_roots(trees) -> set[str]:
    """Names bound by importing a package other than ``utils`` (``torch``, ``np``, ...): private
    attributes of those are not this rule's business."""
    roots = set()
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                roots |= {(a.asname or a.name).split(".")[0] for a in node.names
                          if a.name.split(".")[0] != "utils"}
            elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] != "utils" \
                    and not node.level:
                roots |= {a.asname or a.name for a in node.names}
    return roots


def _root(node: ast.AST) -> str | None:
    while isinstance(node, (ast.Attribute, ast.Call, ast.Subscript)):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node.id if isinstance(node, ast.Name) else None


def private_uses(cells: list[tuple[str, str]]) -> list[str]:
    """``(cell id, source)`` of one notebook -> ``"cell ID: what"`` for each private name of
    ``utils`` it uses: ``from utils... import _x``, ``import utils._x``, or ``obj._x`` where
    ``obj`` is not the notebook's own (its own ``_REF``-style locals are names, not attributes,
    and are fine)."""
    trees = [(cid, ast.parse(_code(src))) for cid, src in cells]
    own, foreign = _own_attributes(t for _, t in trees), _foreign_roots(t for _, t in trees)
    found = []
    for cid, tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "utils":
                bad = [a.name for a in node.names if _private(a.name)]
                bad += [p for p in node.module.split(".") if _private(p)]
                found += [f"cell {cid}: from {node.module} import {b}" for b in bad]
            elif isinstance(node, ast.Import):
                found += [f"cell {cid}: import {a.name}" for a in node.names
                          if a.name.split(".")[0] == "utils" and any(map(_private, a.name.split(".")))]
            elif isinstance(node, ast.Attribute) and _private(node.attr) and node.attr not in own \
                    and _root(node.value) not in foreign:
                found.append(f"cell {cid}: {ast.unparse(node)}")
    return sorted(set(found))


def _chapters() -> list[Path]:
    return sorted((REPO / "solutions").glob("*/*.ipynb"))


def test_the_private_name_scan_sees_each_kind():
    cells = [("a", "from utils.meta import _Learner\nimport torch\n_REF = 1\nx = torch._C\n"),
             ("b", "%matplotlib inline\nz = pm._embed(x)\nimport utils.course._tool\n"),
             ("c", "class Mine:\n    def _helper(self):\n        return self._state\n"
                   "    def go(self):\n        self._state = 1\n        return self._helper()\n")]
    assert private_uses(cells) == ["cell a: from utils.meta import _Learner", "cell b: import utils.course._tool",
                                   "cell b: pm._embed"]


def test_no_notebook_uses_a_private_name_of_utils():
    assert len(_chapters()) >= 7
    offenders = []
    for path in _chapters():
        nb = nbformat.read(path, as_version=4)
        cells = [(c.get("id", f"#{i}"), c.source) for i, c in enumerate(nb.cells) if c.cell_type == "code"]
        offenders += [f"{path.parent.name} {u}" for u in private_uses(cells)]
    assert not offenders, ("notebooks reach into private names of utils (make the name public, or use a "
                           "public one):\n  " + "\n  ".join(offenders))
