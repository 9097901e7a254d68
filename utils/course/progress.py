"""A learner's dashboard: every chapter notebook graded, one table of where they stand.

``python -m utils.course progress`` grades each ``chapters/NN_name/NN_name.ipynb`` (the
learner's working copies) against the hidden tests with :func:`utils.course.grading.grade_notebooks`
(the same grader as ``course grade``: a throw-away nbgrader course, FAST mode, per-cell time
limit; the learner's files are only read) and prints, per chapter: autograded points, the
exercises still to do, and the written answers that wait for a human (a model answer to
compare with in ``solutions/``) or are not written yet.

Chapters are graded in parallel, at most ``jobs`` at a time (default: half the CPU cores, at
least one), each in its own nbgrader run.
"""
from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..errors import course_error
from ..language import notebook_language, t
from ..tables import display_width, pad
from .grading import DEFAULT_CELL_TIMEOUT, GradeReport, grade_notebooks
from .notebooks import (PROJECT_ROOT, find_chapters, is_manual_cell, nbgrader_meta, read_notebook,
                        release_path, select_chapters)

__all__ = ["ChapterProgress", "default_jobs", "course_progress", "format_progress", "progress_json"]


@dataclass
class ChapterProgress:
    """One row of the dashboard."""

    chapter: str
    notebook: str
    points: float = 0.0
    max_points: float = 0.0
    exercises_left: list[str] = field(default_factory=list)   # autograded tests not at full points
    written_to_review: list[str] = field(default_factory=list)  # written answers a human must read
    written_missing: list[str] = field(default_factory=list)    # written answers still blank
    error: str = ""  # why the chapter could not be graded (missing file, broken notebook)


def default_jobs() -> int:
    """How many chapters to grade at once: half the CPU cores (each runs a kernel), at least 1."""
    return max(1, (os.cpu_count() or 2) // 2)


def _written_answers(learner, release) -> tuple[list[str], list[str]]:
    """(written answers the learner changed, written answers still as released), by grade_id."""
    released = {nbgrader_meta(c).get("grade_id"): c.source for c in release.cells if is_manual_cell(c)}
    review, missing = [], []
    for cell in learner.cells:
        gid = nbgrader_meta(cell).get("grade_id")
        if gid in released:
            (missing if cell.source.strip() == released[gid].strip() else review).append(gid)
    return review, missing


def _row(chapter: str, path: Path, report: GradeReport, release) -> ChapterProgress:
    review, missing = _written_answers(read_notebook(path), release)
    return ChapterProgress(
        chapter=chapter, notebook=str(path), points=report.total, max_points=report.max_total,
        exercises_left=[e.grade_id for e in report.autograded if (e.points or 0) < e.max_points],
        written_to_review=review, written_missing=missing)


def _grade_one(root: Path, chapter: str, path: Path, timeout: int) -> ChapterProgress:
    if not path.is_file():
        return ChapterProgress(chapter, str(path), error="no notebook (copy it from chapters/ in "
                                                         "a fresh clone)")
    try:
        report = grade_notebooks([path], root=root, chapter=chapter, timeout=timeout)[0]
    except Exception as exc:  # one broken notebook must not hide the others' rows
        return ChapterProgress(chapter, str(path), error=str(exc).splitlines()[0][:200])
    release = read_notebook(release_path(root, chapter))
    return _row(chapter, path, report, release)


def course_progress(root: str | Path | None = None, *, chapters_dir: str | Path | None = None,
                    only: list[str] | None = None, jobs: int | None = None,
                    timeout: int = DEFAULT_CELL_TIMEOUT) -> list[ChapterProgress]:
    """Grade the learner's notebook of every chapter (``chapters_dir/NN/NN.ipynb``); one row each.

    ``root`` is the checkout with ``solutions/`` (the hidden tests) and the released
    ``chapters/`` (to tell a blank written answer from a written one); ``chapters_dir`` is where
    the learner's copies are (default: ``root/chapters``); ``only`` selects chapters (numbers or
    names); ``jobs`` chapters are graded at a time (default :func:`default_jobs`).
    """
    root = Path(root or PROJECT_ROOT).resolve()
    available = find_chapters(root)
    if not available:
        raise course_error(f"{root / 'solutions'}", "chapter sources solutions/NN_name/NN_name.ipynb",
                           "no chapters", "run progress from a checkout of the course")
    chapters = select_chapters(available, only)
    folder = Path(chapters_dir) if chapters_dir else root / "chapters"
    if not folder.is_dir():
        raise course_error(f"--chapters {folder}", "a folder holding NN_name/NN_name.ipynb notebooks",
                           "no such folder", "pass the folder you work in, e.g. chapters/")
    jobs = max(1, int(jobs or default_jobs()))
    paths = [folder / ch / f"{ch}.ipynb" for ch in chapters]
    with ThreadPoolExecutor(max_workers=min(jobs, len(chapters))) as pool:  # each runs nbgrader
        return list(pool.map(lambda cp: _grade_one(root, cp[0], cp[1], timeout),
                             zip(chapters, paths)))


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:.2f}"


def _ids(ids: list[str], limit: int = 3) -> str:
    if not ids:
        return "-"
    shown = ", ".join(ids[:limit])
    return f"{len(ids)}: {shown}" + (", ..." if len(ids) > limit else "")


def format_progress(rows: list[ChapterProgress], language: str | None = None) -> str:
    """The dashboard as a plain-text table, with totals, in ``language`` (default: the edition of
    the learner's notebooks, :func:`utils.language.notebook_language`; English if they differ)."""
    if language is None:
        found = {notebook_language(r.notebook) for r in rows}
        language = found.pop() if len(found) == 1 else "en"
    header = tuple(t(h, language) for h in ("chapter", "points", "exercises left", "written: to review",
                                   "written: not yet"))
    body = []
    for r in rows:
        if r.error:
            body.append((r.chapter, t("error", language), t(r.error, language), "", ""))
        else:
            body.append((r.chapter, f"{_num(r.points)}/{_num(r.max_points)}", _ids(r.exercises_left),
                         _ids(r.written_to_review), _ids(r.written_missing)))
    ok = [r for r in rows if not r.error]
    body.append((t("total", language), f"{_num(sum(r.points for r in ok))}/{_num(sum(r.max_points for r in ok))}",
                 str(sum(len(r.exercises_left) for r in ok)),
                 str(sum(len(r.written_to_review) for r in ok)),
                 str(sum(len(r.written_missing) for r in ok))))
    widths = [max(display_width(str(row[i])) for row in [header, *body]) for i in range(len(header))]
    fmt = lambda row: "  ".join(pad(str(v), w) for v, w in zip(row, widths)).rstrip()  # noqa: E731
    lines = [fmt(header), fmt(["-" * w for w in widths])] + [fmt(row) for row in body]
    lines.append(t("Points are autograded (FAST mode); written answers are graded by a person: "
                    "compare yours with the model answers in solutions/.", language))
    return "\n".join(lines)


def progress_json(rows: list[ChapterProgress]) -> str:
    return json.dumps([asdict(r) for r in rows], indent=2)
