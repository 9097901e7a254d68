"""Notebook plumbing for the course tooling: find chapters, read, strip, compare, look for leaks.

Everything here works on ``nbformat`` notebook objects and plain paths; nothing runs a kernel.
The CLI (:mod:`utils.course`), the grader (:mod:`utils.course.grading`) and the tests share it, so
"what counts as stripped", "what is an answer cell" and "what is a leak" are defined once.
"""
from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import nbformat
from nbformat import NotebookNode

from ..chapters import (CHAPTER_RE, find_chapters, heading_anchors, heading_texts,  # noqa: F401
                        release_path, select_chapters, solution_path)
from ..errors import course_error

__all__ = [
    "PROJECT_ROOT", "CELL_ID_RE", "STRIP_KEYS", "MIN_SECRET_CHARS", "read_notebook",
    "notebook_text", "write_notebook", "strip_notebook", "ensure_cell_ids", "unstripped_problems",
    "nbgrader_meta", "is_answer_cell", "is_test_cell", "is_manual_cell", "grade_ids",
    "cell_by_grade_id", "tests_of_answer", "test_points", "remove_marker_lines", "fill_answers",
    "secret_lines", "find_leaks", "marker_lines", "compare_notebooks",
]

#: The repository root (the folder holding ``utils/``). Same as ``utils.cache.PROJECT_ROOT``,
#: defined here too so the command line starts without importing torch.
PROJECT_ROOT = Path(__file__).resolve().parents[2]

#: Cell ids the conventions allow (lowercase letters, digits and ``-``).
CELL_ID_RE = re.compile(r"^[a-z0-9-]+$")

#: Metadata that ``nbstripout`` removes by default; we remove the same (and keep cell ids).
STRIP_KEYS = [
    "metadata.signature",
    "metadata.widgets",
    "cell.metadata.collapsed",
    "cell.metadata.ExecuteTime",
    "cell.metadata.execution",
    "cell.metadata.heading_collapsed",
    "cell.metadata.hidden",
    "cell.metadata.scrolled",
]

#: nbgrader's region markers, as they appear on a line of their own (after ``#`` for code).
SOLUTION_BEGIN, SOLUTION_END = "BEGIN SOLUTION", "END SOLUTION"
HIDDEN_BEGIN, HIDDEN_END = "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"
_MARKER_RE = re.compile(r"^\s*(#+\s*)?(BEGIN|END) (SOLUTION|HIDDEN TESTS)\s*$")

#: Lines shorter than this (ignoring spaces) are too generic to call a leak (``pass``, ``)``).
MIN_SECRET_CHARS = 8


# --------------------------------------------------------------------------- reading / writing
def read_notebook(path: str | Path) -> NotebookNode:
    """Read a notebook (nbformat 4), with a clear :class:`CourseError` for every way it can go wrong."""
    path = Path(path)
    if not path.exists():
        raise course_error(f"notebook {path}", "an existing .ipynb file", "no such file",
                           "check the path (e.g. chapters/01_mapping/01_mapping.ipynb)")
    if path.is_dir():
        raise course_error(f"notebook {path}", "a .ipynb file", "a folder",
                           f"pass the notebook inside it, e.g. {path / (path.name + '.ipynb')}")
    text = path.read_text(encoding="utf-8", errors="replace")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise course_error(f"notebook {path}", "a Jupyter notebook (JSON)",
                           f"text that is not JSON ({exc.msg} at line {exc.lineno})",
                           "pass the .ipynb file saved by Jupyter, not a script or export") from None
    if not isinstance(data, dict) or "cells" not in data or "nbformat" not in data:
        raise course_error(f"notebook {path}", "a Jupyter notebook with 'cells' and 'nbformat'",
                           "JSON of another kind", "pass the .ipynb file saved by Jupyter")
    return nbformat.reads(text, as_version=4)


def notebook_text(nb: NotebookNode) -> str:
    """The exact text :func:`write_notebook` writes (nbformat's layout plus a final newline)."""
    text = nbformat.writes(nb)
    return text if text.endswith("\n") else text + "\n"


def write_notebook(nb: NotebookNode, path: str | Path) -> bool:
    """Write ``nb`` to ``path`` only when its text changes; return whether it changed."""
    path = Path(path)
    text = notebook_text(nb)
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return True


# --------------------------------------------------------------------------- stripping
def strip_notebook(nb: NotebookNode) -> NotebookNode:
    """A copy of ``nb`` without outputs, execution counts or widget state; cell ids kept.

    Same rules as ``nbstripout --keep-id`` with its default extra keys (:data:`STRIP_KEYS`).
    """
    from nbstripout import strip_output  # local: only the tooling needs nbstripout

    out = copy.deepcopy(nb)
    out = strip_output(out, keep_output=False, keep_count=False, keep_id=True, extra_keys=STRIP_KEYS)
    for cell in out.cells:  # nbstripout keeps "keep_output"-tagged outputs; the course never does
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    return out


def ensure_cell_ids(nb: NotebookNode) -> list[str]:
    """Give every cell without an id a stable one (its grade_id, else ``cell-<n>``); return those added."""
    used = {c.get("id") for c in nb.cells if c.get("id")}
    added = []
    for i, cell in enumerate(nb.cells):
        if cell.get("id"):
            continue
        base = nbgrader_meta(cell).get("grade_id") or f"cell-{i}"
        new, k = base, 1
        while new in used:
            k += 1
            new = f"{base}-{k}"
        cell["id"] = new
        used.add(new)
        added.append(new)
    if added and (nb.nbformat, nb.nbformat_minor) < (4, 5):
        nb.nbformat_minor = 5
    return added


def unstripped_problems(nb: NotebookNode) -> list[str]:
    """What keeps ``nb`` from being commit-ready: outputs, execution counts, widget state, missing ids."""
    problems = []
    if "widgets" in nb.metadata:
        problems.append("notebook metadata holds widget state (metadata.widgets)")
    for i, cell in enumerate(nb.cells):
        name = cell.get("id") or f"#{i}"
        if not cell.get("id"):
            problems.append(f"cell #{i} has no id")
        if cell.cell_type == "code":
            if cell.get("outputs"):
                problems.append(f"cell {name} has outputs")
            if cell.get("execution_count") is not None:
                problems.append(f"cell {name} has an execution count")
    return problems


# --------------------------------------------------------------------------- nbgrader cells
def nbgrader_meta(cell) -> dict:
    """The cell's ``metadata.nbgrader`` dict (empty when it has none)."""
    return dict(cell.get("metadata", {}).get("nbgrader", {}) or {})


def is_answer_cell(cell) -> bool:
    """A learner's code answer: nbgrader ``solution`` without ``grade`` (tested by the next test cells)."""
    m = nbgrader_meta(cell)
    return cell.cell_type == "code" and bool(m.get("solution")) and not m.get("grade")


def is_test_cell(cell) -> bool:
    """An autograded test cell: nbgrader ``grade`` without ``solution`` (code)."""
    m = nbgrader_meta(cell)
    return cell.cell_type == "code" and bool(m.get("grade")) and not m.get("solution")


def is_manual_cell(cell) -> bool:
    """A hand-graded answer (written markdown, or a code cell with ``grade`` and ``solution``)."""
    m = nbgrader_meta(cell)
    return bool(m.get("grade")) and bool(m.get("solution"))


def grade_ids(nb: NotebookNode) -> list[str]:
    """grade_ids of all nbgrader cells, in notebook order."""
    return [m["grade_id"] for m in (nbgrader_meta(c) for c in nb.cells) if m.get("grade_id")]


def cell_by_grade_id(nb: NotebookNode) -> dict:
    """Map grade_id -> cell."""
    return {nbgrader_meta(c)["grade_id"]: c for c in nb.cells if nbgrader_meta(c).get("grade_id")}


def tests_of_answer(nb: NotebookNode, answer_id: str) -> list[str]:
    """grade_ids of the test cells that follow answer cell ``answer_id`` up to the next answer cell.

    That is which points a wrong answer may cost, under the convention that a test cell depends
    only on the answer cell right before it.
    """
    found, tests = False, []
    for cell in nb.cells:
        gid = nbgrader_meta(cell).get("grade_id")
        if is_answer_cell(cell):
            if found:
                break
            found = gid == answer_id
        elif found and is_test_cell(cell):
            tests.append(gid)
    return tests


def test_points(nb: NotebookNode) -> dict[str, float]:
    """Points of every autograded test cell, by grade_id."""
    return {nbgrader_meta(c)["grade_id"]: float(nbgrader_meta(c).get("points", 0))
            for c in nb.cells if is_test_cell(c)}


def remove_marker_lines(source: str) -> str:
    """``source`` without the ``### BEGIN/END SOLUTION`` and hidden-test marker lines."""
    return "\n".join(line for line in source.split("\n") if not _MARKER_RE.match(line))


def fill_answers(release_nb: NotebookNode, solution_nb: NotebookNode,
                 leave_stub: set[str] | frozenset = frozenset()) -> NotebookNode:
    """A copy of the student notebook with every answer cell holding the reference answer.

    Answer cells whose grade_id is in ``leave_stub`` keep their stub. This is what a learner who
    got everything right (or all but those exercises) would hand in.
    """
    out = copy.deepcopy(release_nb)
    reference = cell_by_grade_id(solution_nb)
    for cell in out.cells:
        m = nbgrader_meta(cell)
        gid = m.get("grade_id")
        if m.get("solution") and gid not in leave_stub and gid in reference:
            cell.source = remove_marker_lines(reference[gid].source)
    return out


# --------------------------------------------------------------------------- secrets and leaks
def _regions(source: str) -> tuple[list[str], list[str]]:
    """Split ``source`` lines into (inside solution/hidden regions, outside), marker lines dropped."""
    inside, outside, depth = [], [], 0
    for line in source.split("\n"):
        m = _MARKER_RE.match(line)
        if m:
            depth = max(0, depth + (1 if m.group(2) == "BEGIN" else -1))
            continue
        (inside if depth else outside).append(line)
    return inside, outside


def secret_lines(solution_nb: NotebookNode) -> set[str]:
    """Non-trivial lines that only appear inside solution or hidden-test regions.

    Lines also written outside those regions in the same notebook (a visible assert repeated in
    the hidden part, say) are public anyway and not counted.
    """
    inside, outside = set(), set()
    for cell in solution_nb.cells:
        ins, outs = _regions(cell.source)
        inside.update(line.strip() for line in ins)
        outside.update(line.strip() for line in outs)
    return {s for s in inside - outside if len(s.replace(" ", "")) >= MIN_SECRET_CHARS}


def find_leaks(solution_nb: NotebookNode, release_nb: NotebookNode) -> list[str]:
    """Secret lines of ``solution_nb`` that appear in ``release_nb``, as ``"cell <id>: <line>"``."""
    secrets = secret_lines(solution_nb)
    leaks = []
    for cell in release_nb.cells:
        for line in cell.source.split("\n"):
            if line.strip() in secrets:
                leaks.append(f"cell {cell.get('id')}: {line.strip()}")
    return leaks


def marker_lines(nb: NotebookNode) -> list[str]:
    """Cells of ``nb`` that still contain a BEGIN/END SOLUTION or HIDDEN TESTS marker."""
    return [f"cell {c.get('id')}" for c in nb.cells
            if any(_MARKER_RE.match(line) for line in c.source.split("\n"))]


# --------------------------------------------------------------------------- comparing
def _cell_view(cell) -> dict:
    meta = {k: v for k, v in cell.get("metadata", {}).items()
            if f"cell.metadata.{k}" not in STRIP_KEYS}
    return {"cell_type": cell.cell_type, "id": cell.get("id"), "source": cell.source, "metadata": meta}


def compare_notebooks(expected: NotebookNode, found: NotebookNode) -> list[str]:
    """Differences that matter between two notebooks: cell types, ids, sources, metadata (nbgrader too).

    Returns human-readable lines (empty when they agree); outputs and counts are ignored.
    """
    diffs = []
    exp_meta = {k: v for k, v in expected.metadata.items() if f"metadata.{k}" not in STRIP_KEYS}
    got_meta = {k: v for k, v in found.metadata.items() if f"metadata.{k}" not in STRIP_KEYS}
    if exp_meta != got_meta:
        diffs.append("notebook metadata differs")
    exp_cells = [_cell_view(c) for c in expected.cells]
    got_cells = [_cell_view(c) for c in found.cells]
    if [c["id"] for c in exp_cells] != [c["id"] for c in got_cells]:
        diffs.append(f"cell ids differ: expected {[c['id'] for c in exp_cells]}, "
                     f"found {[c['id'] for c in got_cells]}")
    for e, g in zip(exp_cells, got_cells):
        for key in ("cell_type", "source", "metadata"):
            if e[key] != g[key]:
                diffs.append(f"cell {e['id']}: {key} differs")
    return diffs
