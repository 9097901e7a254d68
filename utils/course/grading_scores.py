"""The points, computed from the executed notebook that comes back (which test cells raised), never
from a file the kernel could write; the integrity rule; the comparison with nbgrader's gradebook
(see :mod:`utils.course.grading`)."""
from __future__ import annotations

import copy

from nbformat import NotebookNode

from .grading_report import _error_of, _first_lines, _num
from .notebooks import cell_by_grade_id, nbgrader_meta

__all__ = ["INTEGRITY_ID", "graded_cells", "scores_from_notebook", "integrity_failure",
           "compare_with_gradebook"]


# --------------------------------------------------------------------------- scores
#: grade id of the locked test cell that ends every chapter and checks nothing was tampered with.
INTEGRITY_ID = "integrity-check"


def graded_cells(source: NotebookNode) -> dict[str, tuple[float, bool]]:
    """grade_id -> (max points, autograded?) for every graded cell of the instructor's notebook."""
    out = {}
    for cell in source.cells:
        m = nbgrader_meta(cell)
        if m.get("grade"):
            auto = cell.cell_type == "code" and not m.get("solution")
            out[m["grade_id"]] = (float(m.get("points", 0)), auto)
    return out


def scores_from_notebook(graded: NotebookNode, source: NotebookNode | dict) -> dict[str, tuple[float | None, float]]:
    """grade_id -> (score, max score) computed from the executed notebook ``graded``.

    Points come from the instructor's ``source`` notebook (or a :func:`graded_cells` dict);
    the rule is nbgrader's (an error or stderr output scores 0, a number shown as the cell's
    result is partial credit, anything else full points). A test cell missing from ``graded``
    scores 0. Written answers and code graded by hand: ``None``.
    """
    from nbgrader.utils import determine_grade

    cells = graded_cells(source) if isinstance(source, NotebookNode) else source
    have = cell_by_grade_id(graded)
    out = {}
    for gid, (max_points, auto) in cells.items():
        mine = have.get(gid)
        if not auto:
            out[gid] = (None, max_points)
        elif mine is None or mine.cell_type != "code":
            out[gid] = (0.0, max_points)
        else:
            probe = copy.deepcopy(mine)
            probe.metadata["nbgrader"] = dict(nbgrader_meta(mine), grade=True, solution=False,
                                              points=max_points)
            out[gid] = (float(determine_grade(probe)[0]), max_points)
    return out


def integrity_failure(graded: NotebookNode, source: NotebookNode | dict) -> str | None:
    """Why the chapter's ``integrity-check`` cell failed (its error, or that it is missing);
    ``None`` when it passed or the chapter has none."""
    if INTEGRITY_ID not in (cell_by_grade_id(source) if isinstance(source, NotebookNode) else source):
        return None
    cell = cell_by_grade_id(graded).get(INTEGRITY_ID)
    if cell is None:
        return "the integrity check did not run (its cell is missing)"
    err = _error_of(cell)
    if err is None:
        return None
    return f"{err.get('ename', 'Error')}: {_first_lines(err.get('evalue', ''), 3, 300) or 'no message'}"


def compare_with_gradebook(mine: dict, gradebook: dict) -> list[str]:
    """Notes for every exercise where nbgrader's gradebook disagrees with the scores computed
    from the executed notebook (someone changed one of them: tampering)."""
    notes = []
    for gid, (score, _) in mine.items():
        theirs = gradebook.get(gid, (None, None))[0]
        if score is None or (theirs is not None and abs(theirs - score) < 1e-9):
            continue
        notes.append(f"tampering: the gradebook says {theirs} for {gid!r} but the executed notebook "
                     f"gives {_num(score)}; the report uses the executed notebook.")
    return notes
