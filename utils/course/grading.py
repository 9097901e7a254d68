"""Self-grading: autograde a learner's own notebook against the hidden tests, without touching it.

:func:`grade_notebook` (and :func:`grade_notebooks` for several at once) copies the learner's
notebook into a throw-away nbgrader course built from ``solutions/`` (see
:mod:`utils.course.nbgrader_course`), autogrades it with a per-cell time limit, the learner's code
running in the sandbox of :mod:`utils.course.sandbox` where one is available, and returns a
:class:`GradeReport` with the points of every exercise and why a test failed.
``python -m utils.course grade PATH`` prints that report.

The points are computed here from the executed notebook that comes back (which test cells
raised: :func:`scores_from_notebook`), never from a file the kernel could write, and compared
with nbgrader's gradebook (a difference is reported as tampering). When the chapter's locked
``integrity-check`` cell raised or is missing, every autograded exercise scores 0.

What the learner handed in is checked first, and each problem becomes a note in the report
rather than a crash: a notebook from another chapter (decided by its exercises' grade ids),
locked test cells that were edited (nbgrader restores them from its gradebook) or deleted
(put back), cells that ran past the time limit (interrupted; the rest still runs), a pasted
copy of an answer cell (graded once), a cell that ended the kernel (run again without it).

The code, by concern: :mod:`.grading_intake` (what was handed in), :mod:`.grading_scores` (the
points), :mod:`.grading_report` (the report and its explanations) and this module (the run).
"""
from __future__ import annotations

from pathlib import Path

from .grading_intake import MAX_NOTEBOOK_BYTES, check_locked_cells, dedupe_grade_ids, identify_chapter, read_submission
from .grading_report import (ExerciseResult, GradeReport, _answers_that_failed_but_passed, _other_problems,
                             _results)
from .grading_scores import (INTEGRITY_ID, compare_with_gradebook, graded_cells, integrity_failure,
                             scores_from_notebook)
from .nbgrader_course import DEFAULT_CELL_TIMEOUT, TempCourse
from .notebooks import PROJECT_ROOT, read_notebook

#: The run is this module's own; the report, the intake checks and the scores are re-exported from
#: the modules they live in, where callers have always found them.
__all__ = [
    "grade_notebook", "grade_notebooks", "DEFAULT_CELL_TIMEOUT", "ExerciseResult", "GradeReport",
    "identify_chapter", "check_locked_cells", "dedupe_grade_ids", "INTEGRITY_ID", "graded_cells",
    "scores_from_notebook", "integrity_failure", "compare_with_gradebook",
]


# --------------------------------------------------------------------------- grading
def grade_notebooks(paths: list[str | Path], *, root: str | Path | None = None,
                    chapter: str | None = None,
                    timeout: int = DEFAULT_CELL_TIMEOUT,
                    sandbox: bool | None = None, limits=None,
                    max_bytes: int = MAX_NOTEBOOK_BYTES) -> list[GradeReport]:
    """Grade several learner notebooks (one nbgrader run per chapter); one report each, in order.

    ``root`` is the course checkout holding ``solutions/`` (default: this project). ``chapter``
    forces the chapter instead of detecting it. ``timeout`` is the per-cell limit in seconds.
    ``sandbox``: learner code runs in the sandbox of :mod:`utils.course.sandbox` when available
    (``None``), must (``True``) or must not (``False``). The learners' files are only read.
    Scores are computed here from the executed notebooks, cross-checked with nbgrader's gradebook.
    ``limits``: the resource bounds (:class:`~utils.course.sandbox_limits.Limits`, default the
    course's); a notebook over ``max_bytes`` is refused before it is read.
    """
    root = Path(root or PROJECT_ROOT).resolve()
    items = []
    for p in paths:
        p = Path(p)
        if p.is_file() and p.stat().st_size > max_bytes:
            read_submission(p, max_bytes)  # raises: too large
        nb = read_notebook(p)
        ch, notes = identify_chapter(nb, p, root, chapter)
        items.append((p, nb, ch, notes))

    reports = []
    with TempCourse(root, timeout=timeout, sandbox=sandbox, limits=limits) as course:
        releases, sources = {}, {}
        chapters = list(dict.fromkeys(it[2] for it in items))
        for ch in chapters:
            course.add_chapter(ch)
        rel_dir = course.generate(db=True)
        for ch in chapters:
            releases[ch] = read_notebook(rel_dir / ch / f"{ch}.ipynb")
            sources[ch] = read_notebook(course.path / "solutions" / ch / f"{ch}.ipynb")
        students = []
        for k, (p, nb, ch, notes) in enumerate(items):
            student = "self" if len(items) == 1 else f"self{k}"
            prepared, more = dedupe_grade_ids(nb)
            notes.extend(more)
            prepared, more = check_locked_cells(prepared, releases[ch], sources[ch])
            notes.extend(more)
            course.submit(student, ch, prepared)
            students.append(student)
        course.autograde()
        for (p, nb, ch, notes), student in zip(items, students):
            graded = course.autograded_notebook(ch, student)
            run = course.grading_notes(ch, student)
            report = GradeReport(notebook=str(p), chapter=ch, timeout=timeout,
                                 sandboxed=run.get("sandboxed"))
            if run.get("sandbox_note"):
                report.notes.append(run["sandbox_note"])
            report.notes.extend(notes + run.get("notes", []))
            scores = scores_from_notebook(graded, sources[ch])
            report.notes.extend(compare_with_gradebook(scores, course.scores(ch, student)))
            report.exercises = _results(releases[ch], graded, scores, timeout)
            report.notes.extend(_answers_that_failed_but_passed(graded, scores, timeout))
            broken = integrity_failure(graded, sources[ch])
            if broken:
                report.notes.append(f"integrity check failed, so every autograded exercise of this "
                                    f"chapter scores 0: {broken}")
                for e in report.autograded:
                    if e.points:
                        e.points, e.status = 0.0, "failed"
                        e.message = "0 because the chapter's integrity check failed (see the notes)"
            report.notes.extend(_other_problems(graded, timeout))
            reports.append(report)
    return reports


def grade_notebook(path: str | Path, *, root: str | Path | None = None, chapter: str | None = None,
                   timeout: int = DEFAULT_CELL_TIMEOUT, sandbox: bool | None = None,
                   limits=None) -> GradeReport:
    """Grade one learner notebook; see :func:`grade_notebooks`."""
    return grade_notebooks([path], root=root, chapter=chapter, timeout=timeout, sandbox=sandbox,
                           limits=limits)[0]
