"""The notebook conventions every chapter follows (issue 15), stated once, checked by
``tests/test_conventions.py``.

* :func:`setup_source` — the text of the ``setup`` cell: one ``start_chapter(...)`` call
  (:mod:`utils.chapter`) that starts the chapter's clock, resolves FAST, picks the device, applies
  the thread policy and seeds everything. Chapter-specific imports go in the next cell (``imports``).
* no cell imports a private name from ``utils`` (``from utils.x import _y``).
* :data:`KNOBS_ID` — chapters whose sizes depend on FAST gather every ``x if FAST else y`` in one
  cell with this id, right after ``setup`` (or after the ``imports`` cell that follows it), each knob commented with its unit or meaning.
* :data:`MAX_CODE_LINES` — a code cell longer than this is split into measure / plot / assert
  cells (locked nbgrader test cells are exempt: their text is what the graders run).
* cell ids are unique within a notebook.
"""
from __future__ import annotations

import re

__all__ = [
    "SETUP_TEMPLATE", "SETUP_ID", "KNOBS_ID", "IMPORTS_ID", "BIND_ID", "MAX_CODE_LINES",
    "setup_source", "fast_dependent_cells", "convention_problems", "title_problem",
]

#: The ``setup`` cell of every chapter, exactly (:func:`setup_source` fills in the chapter's name):
#: one :func:`utils.chapter.start_chapter` call and its import. Chapters whose parameters cell has
#: a ``CPU_THREADS`` knob pass it as ``threads``.
SETUP_TEMPLATE = """\
from utils.chapter import start_chapter
ch = start_chapter("{chapter}", FAST=FAST, DEVICE=DEVICE, SEED=SEED{threads}, language=LANGUAGE)
FAST, device = ch.fast, ch.device   # FAST is forced under autograde / COURSE_FAST=1"""
_SETUP_NAME_RE = re.compile(r'start_chapter\("(\d{2}_[a-z0-9_]+)"')


def setup_source(chapter: str, threads: bool = False) -> str:
    """The ``setup`` cell of ``chapter``; ``threads``: the parameters cell has ``CPU_THREADS``."""
    return SETUP_TEMPLATE.format(chapter=chapter, threads=", threads=CPU_THREADS" if threads else "")


def _private_utils_names(source: str) -> list[str]:
    """Private names a cell imports from ``utils`` (``from utils.x import _y``) or uses from the
    old setup (``_chapter_start``); notebooks use only public names."""
    import ast
    try:
        tree = ast.parse(source)
    except SyntaxError:          # magics (``%time``): not Python, nothing to check
        return []
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "utils":
            found += [f"{node.module}.{a.name}" for a in node.names if a.name.startswith("_")]
        if isinstance(node, ast.Name) and node.id == "_chapter_start":
            found.append(node.id)
    return found


SETUP_ID = "setup"
KNOBS_ID = "knobs"
IMPORTS_ID = "imports"
BIND_ID = "integrity-bind"
MAX_CODE_LINES = 40

#: A FAST-dependent size: an assignment ``N = 3 if FAST else 30`` or a keyword argument
#: ``iters=150 if FAST else 2000``. Assertion bounds (``assert gap < (0.5 if FAST else 0.1)``) and
#: messages (``f"{'FAST' if FAST else 'full'}"``) are not sizes and may stay where they are used.
_FAST_SIZE_RE = re.compile(r"^(?!\s*assert\b)[^#\n]*?(?<![=!<>])=(?!=)\s*[\w.(),\[\]+\-* ]+?\s+if FAST else\b", re.M)


def _nbgrader(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {}) or {}


def _is_test_cell(cell) -> bool:
    nbg = _nbgrader(cell)
    return bool(nbg.get("grade")) and bool(nbg.get("locked")) and not nbg.get("solution")


def _index(nb, cell_id: str) -> int | None:
    return next((i for i, c in enumerate(nb.cells) if c.get("id") == cell_id), None)


def fast_dependent_cells(nb) -> list[str]:
    """Ids of the code cells (other than ``knobs``) holding a FAST-dependent size."""
    return [c.get("id") for c in nb.cells
            if c.cell_type == "code" and c.get("id") != KNOBS_ID and _FAST_SIZE_RE.search(c.source)]


def convention_problems(nb) -> list[str]:
    """What ``nb`` (a chapter's solution notebook) does against the conventions; ``[]`` when none."""
    problems = []
    ids = [c.get("id") for c in nb.cells]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        problems.append(f"cell ids used more than once: {dupes}")
    setup = _index(nb, SETUP_ID)
    if setup is None:
        problems.append(f"no cell with id {SETUP_ID!r}")
    else:
        found = _SETUP_NAME_RE.search(nb.cells[setup].source)
        chapter = found.group(1) if found else "NN_name"
        if nb.cells[setup].source.strip() not in (setup_source(chapter), setup_source(chapter, True)):
            problems.append(f"the {SETUP_ID!r} cell differs from utils.course.conventions.setup_source({chapter!r})")
        knobs = _index(nb, KNOBS_ID)
        imports = _index(nb, IMPORTS_ID)
        allowed = {setup + 1} | ({setup + 2} if imports == setup + 1 else set())
        if knobs is not None and knobs not in allowed:
            problems.append(f"the {KNOBS_ID!r} cell is cell {knobs}, not right after {SETUP_ID!r} (cell {setup}) "
                            f"or after the {IMPORTS_ID!r} cell that follows it")
    scattered = fast_dependent_cells(nb)
    if scattered:
        problems.append(f"FAST-dependent sizes outside the {KNOBS_ID!r} cell, in: {scattered}")
    bind = _index(nb, BIND_ID)
    if bind is not None:
        answers = [i for i, c in enumerate(nb.cells) if _nbgrader(c).get("solution")]
        if answers and bind > min(answers):
            problems.append(f"{BIND_ID!r} comes after the first answer cell")
        if setup is not None and bind < setup:
            problems.append(f"{BIND_ID!r} comes before {SETUP_ID!r}")
    for c in nb.cells:
        if c.cell_type == "code" and _private_utils_names(c.source):
            problems.append(f"cell {c.get('id')!r} uses private names: {_private_utils_names(c.source)}")
        n = len(c.source.splitlines())
        if c.cell_type == "code" and n > MAX_CODE_LINES and not _is_test_cell(c):
            problems.append(f"code cell {c.get('id')!r} has {n} lines (at most {MAX_CODE_LINES}: "
                            "split it into measure / plot / assert cells)")
    return problems


def title_problem(nb, chapter: str) -> str | None:
    """``None`` when ``nb``'s first cell is the title of ``chapter`` (``"04_distillation"``): a
    markdown cell starting ``# 04 · ``, the number taken from the chapter's folder (the book's
    sidebar shows it); else what is wrong."""
    number = chapter.split("_")[0]
    first = nb.cells[0] if nb.cells else None
    if first is None or first.cell_type != "markdown":
        return f"{chapter}: the first cell is not the markdown title '# {number} · ...'"
    line = first.source.splitlines()[0] if first.source else ""
    if not line.startswith(f"# {number} · "):
        return f"{chapter}: title {line!r} does not start with '# {number} · ' (the number of its folder)"
    return None

