"""The house plan (CONTRIBUTING.md, "Where things live"), checked: the module index is complete,
the engine never imports the course's machinery, and the chapter facts have one home. The size and
naming rules (no module over 400 lines, ``__all__``, no private names in notebooks) are in
``tests/test_house_rules.py``."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

import utils
import utils.course

REPO = Path(__file__).resolve().parents[1]
UTILS = REPO / "utils"


def _engine_files() -> dict[str, list[Path]]:
    """Engine module name -> its source files (one file, or every file of a package)."""
    out = {}
    for p in sorted(UTILS.iterdir()):
        if p.name == "course" or p.name.startswith(("_", ".")):
            continue
        if p.suffix == ".py":
            out[p.stem] = [p]
        elif p.is_dir() and (p / "__init__.py").is_file():
            out[p.name] = sorted(p.rglob("*.py"))
    return out


def _imports(path: Path) -> list[tuple[int, str]]:
    """Every module ``path`` imports, absolute (``utils.x.y``), with its line number; relative
    imports are resolved against the file's package."""
    rel = path.relative_to(REPO).with_suffix("")
    package = list(rel.parts[:-1]) if rel.name != "__init__" else list(rel.parts[:-1])
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            found.append((node.lineno, mod))
            found += [(node.lineno, f"{mod}.{a.name}") for a in node.names]
    return found


def test_the_engine_index_lists_every_module():
    on_disk = set(_engine_files())
    listed = set(utils.ENGINE_MODULES)
    assert on_disk - listed == set(), f"add to utils.ENGINE_MODULES and utils/__init__.py: {sorted(on_disk - listed)}"
    assert listed - on_disk == set(), f"listed but not in utils/: {sorted(listed - on_disk)}"
    for name in on_disk:
        assert f":mod:`utils.{name}`" in utils.__doc__, f"describe utils.{name} in utils/__init__.py's index"
    assert set(utils.KIT_MODULES) <= listed


def test_the_machinery_index_lists_every_module():
    on_disk = {p.stem for p in (UTILS / "course").glob("*.py") if not p.name.startswith("_")}
    assert on_disk == set(utils.course.MODULES), (
        f"utils.course.MODULES is out of date: missing {sorted(on_disk - set(utils.course.MODULES))}, "
        f"stale {sorted(set(utils.course.MODULES) - on_disk)}")
    for name in on_disk:
        assert f":mod:`utils.course.{name}`" in utils.course.__doc__, f"describe utils.course.{name}"


@pytest.mark.parametrize("module", sorted(_engine_files()))
def test_the_engine_never_imports_the_machinery(module):
    for path in _engine_files()[module]:
        bad = [(n, m) for n, m in _imports(path) if m == "utils.course" or m.startswith("utils.course.")]
        assert not bad, (f"{path.relative_to(REPO)} imports the course machinery at line(s) "
                         f"{[n for n, _ in bad]}: engine and chapter kits must not depend on utils.course; "
                         "move the shared piece into the engine")


def test_the_import_scan_sees_relative_imports(tmp_path):
    """The layer test above must be able to fail: a relative import of the machinery is found."""
    probe = UTILS / "_layout_probe_tmp.py"
    probe.write_text("from .course import cli\nfrom . import course\n", encoding="utf-8")
    try:
        mods = [m for _, m in _imports(probe)]
    finally:
        probe.unlink()
    assert "utils.course" in mods and "utils.course.cli" in mods


def test_chapter_facts_have_one_home():
    """The chapter list is defined in utils.chapters only; every other module imports it."""
    from utils import chapters
    assert chapters.CHAPTERS == tuple(sorted(chapters.CHAPTERS))
    assert all(chapters.CHAPTER_RE.match(c) for c in chapters.CHAPTERS)
    for path in list(UTILS.rglob("*.py")) + list((REPO / "tests").glob("*.py")):
        if path.name == "chapters.py" or path == Path(__file__):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "CHAPTERS" for t in node.targets):
                assert not isinstance(node.value, (ast.Tuple, ast.List)), (
                    f"{path.relative_to(REPO)}:{node.lineno} spells out the chapter list: import utils.chapters.CHAPTERS")


def test_solutions_hold_exactly_the_listed_chapters():
    from utils.chapters import CHAPTERS, find_chapters
    assert tuple(find_chapters(REPO)) == CHAPTERS
