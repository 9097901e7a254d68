"""Do the hidden tests catch plausible wrong answers? The wrong-answer catalogue and its runner.

``tests/wrong_answers/<chapter>.py`` (one plain module per chapter, e.g. ``01_mapping.py``) defines::

    WRONG_ANSWERS = [
        (answer_grade_id, "short label", '''source of the whole answer cell''', ["test grade id", ...]),
        # a 5th element True (``solo``) grades that row in a notebook of its own, for a wrong answer
        # that would also break a later exercise built on it
        ...
    ]

:func:`check_chapter` builds the notebooks an honest learner would hand in — the student release
``chapters/NN/NN.ipynb`` with every answer cell filled from ``solutions/`` — then swaps in wrong
answers, at most one per exercise per notebook (so a chapter needs as many notebooks as its
longest list of wrong answers for one exercise, plus one per ``solo`` row), grades them all in one
nbgrader run with :func:`utils.course.grading.grade_notebooks` and checks that

* each wrong answer loses ALL the points of the test cells its row names ("caught"; else it is
  "LET THROUGH": the hidden tests accept that wrong answer), and
* every other test cell of the notebook keeps its full points (else the row or the batch is
  reported as "interference": a wrong answer also broke another exercise, so it must be ``solo``,
  or the reference answer itself does not pass).

``python -m utils.course check-tests NN`` prints the verdict of every row and exits 1 if any wrong
answer is let through (or interferes); ``tests/test_wrong_answers.py`` runs it for every chapter.
"""
from __future__ import annotations

import copy
import importlib.util
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import course_error
from .notebooks import (PROJECT_ROOT, cell_by_grade_id, fill_answers, is_answer_cell, is_test_cell,
                        nbgrader_meta, read_notebook, release_path, remove_marker_lines, solution_path,
                        test_points, tests_of_answer, write_notebook)

__all__ = [
    "CATALOGUE_DIR", "MIN_PER_EXERCISE", "WrongAnswer", "Verdict", "ChapterCheck", "catalogue_path",
    "load_catalogue", "autograded_answers", "plan_batches", "check_chapter",
]

CATALOGUE_DIR = Path("tests") / "wrong_answers"
#: How many wrong answers every autograded exercise needs at least.
MIN_PER_EXERCISE = 3


@dataclass(frozen=True)
class WrongAnswer:
    """One row of a chapter's catalogue."""

    chapter: str
    answer_id: str
    label: str
    source: str
    loses: tuple[str, ...]
    solo: bool = False

    @property
    def name(self) -> str:
        return f"{self.answer_id}: {self.label}"


@dataclass
class Verdict:
    """What grading did to one wrong answer."""

    row: WrongAnswer
    status: str                       # "caught", "LET THROUGH" or "interference"
    detail: str = ""
    batch: int = 0


@dataclass
class ChapterCheck:
    chapter: str
    verdicts: list[Verdict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    n_notebooks: int = 0

    @property
    def caught(self) -> int:
        return sum(v.status == "caught" for v in self.verdicts)

    @property
    def ok(self) -> bool:
        return bool(self.verdicts) and self.caught == len(self.verdicts) and not self.notes

    def format(self) -> str:
        lines = [f"Chapter {self.chapter}: {len(self.verdicts)} catalogued wrong answers, "
                 f"graded in {self.n_notebooks} notebooks (one nbgrader run)"]
        width = max([len(v.row.name) for v in self.verdicts] + [10])
        for v in self.verdicts:
            lines.append(f"  {v.status:<12} {v.row.name.ljust(width)}" + (f"  ({v.detail})" if v.detail else ""))
        lines += [f"  note: {n}" for n in self.notes]
        let = [v for v in self.verdicts if v.status != "caught"]
        lines.append(f"{self.chapter}: {self.caught}/{len(self.verdicts)} caught"
                     + (f", {len(let)} let through or interfering" if let else ""))
        return "\n".join(lines)


# --------------------------------------------------------------------------- the catalogue
def catalogue_path(root: str | Path, chapter: str) -> Path:
    return Path(root) / CATALOGUE_DIR / f"{chapter}.py"


def load_catalogue(root: str | Path, chapter: str) -> list[WrongAnswer]:
    """The rows of ``tests/wrong_answers/<chapter>.py``, checked against the chapter's cells."""
    path = catalogue_path(root, chapter)
    if not path.exists():
        raise course_error(f"chapter {chapter}", f"a wrong-answer catalogue {CATALOGUE_DIR}/{chapter}.py",
                           "no such file", f"write one: see the module docstring of {__name__}")
    spec = importlib.util.spec_from_file_location(f"wrong_answers_{chapter}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    raw = getattr(module, "WRONG_ANSWERS", None)
    if not isinstance(raw, (list, tuple)):
        raise course_error(str(path), "a list WRONG_ANSWERS", type(raw).__name__, "define WRONG_ANSWERS = [...]")
    sol = read_notebook(solution_path(root, chapter))
    cells = cell_by_grade_id(sol)
    answers = {g for g, c in cells.items() if is_answer_cell(c)}
    tests = {g for g, c in cells.items() if is_test_cell(c)}
    rows = []
    for i, item in enumerate(raw):
        where = f"{path.name} row {i}"
        if not isinstance(item, (list, tuple)) or len(item) not in (4, 5):
            raise course_error(where, "(answer_id, label, source, [test ids]) or with a 5th element solo",
                               repr(item)[:80], "fix the row")
        answer_id, label, source, loses = item[:4]
        solo = bool(item[4]) if len(item) == 5 else False
        if answer_id not in answers:
            raise course_error(where, f"an answer cell of {chapter}: " + ", ".join(sorted(answers)),
                               repr(answer_id), "use the grade_id of the answer cell the row replaces")
        if isinstance(loses, str):
            loses = [loses]
        bad = [t for t in loses if t not in tests]
        if not loses or bad:
            raise course_error(where, "test cell grade ids: " + ", ".join(sorted(tests)), repr(list(loses)),
                               "name the test cells that must lose their points")
        if not isinstance(source, str) or not source.strip():
            raise course_error(where, "the source of the whole answer cell", repr(source)[:60], "write it")
        if source.strip() == remove_marker_lines(cells[answer_id].source).strip():
            raise course_error(where, "a wrong answer", "the reference answer itself", "change the answer")
        rows.append(WrongAnswer(chapter, answer_id, str(label), source, tuple(loses), solo))
    return rows


def autograded_answers(root: str | Path, chapter: str) -> list[str]:
    """grade_ids of the chapter's answer cells that some test cell grades."""
    sol = read_notebook(solution_path(root, chapter))
    return [nbgrader_meta(c)["grade_id"] for c in sol.cells
            if is_answer_cell(c) and tests_of_answer(sol, nbgrader_meta(c)["grade_id"])]


def plan_batches(rows: list[WrongAnswer]) -> list[list[WrongAnswer]]:
    """Group rows into notebooks: at most one wrong answer per exercise each; ``solo`` rows alone."""
    batches: list[list[WrongAnswer]] = []
    for row in rows:
        if row.solo:
            batches.append([row])
            continue
        for batch in batches:
            if not batch[0].solo and all(r.answer_id != row.answer_id for r in batch):
                batch.append(row)
                break
        else:
            batches.append([row])
    return batches


# --------------------------------------------------------------------------- running
def _set_answer(nb, grade_id: str, source: str):
    for cell in nb.cells:
        if nbgrader_meta(cell).get("grade_id") == grade_id:
            cell.source = source
            return
    raise KeyError(grade_id)


def check_chapter(root: str | Path | None, chapter: str, *, timeout: int | None = None,
                  workdir: str | Path | None = None, lang: str = "en") -> ChapterCheck:
    """Grade every catalogued wrong answer of ``chapter``; see the module docstring. ``lang``: the
    edition handed in (``"zh"``: the Chinese student version ``chapters_zh/NN/NN.ipynb``, the same
    code cells and grade ids, so the same rows apply and must be caught the same way)."""
    from .grading import DEFAULT_CELL_TIMEOUT, grade_notebooks
    from .sync import edition_dir

    root = Path(root or PROJECT_ROOT).resolve()
    rows = load_catalogue(root, chapter)
    sol = read_notebook(solution_path(root, chapter))
    student = release_path(root, chapter)
    if lang != "en":
        student = edition_dir(student.parent.parent, lang) / chapter / student.name
        if not student.is_file():
            raise course_error(f"the {lang} student version of {chapter}", f"a notebook at {student}", "none",
                               "run `python -m utils.course sync` (it writes every edition)")
    filled = fill_answers(read_notebook(student), sol)
    points = test_points(sol)
    batches = plan_batches(rows)
    result = ChapterCheck(chapter, n_notebooks=len(batches))
    with tempfile.TemporaryDirectory(prefix="check-tests-", dir=workdir) as tmp:
        paths = []
        for k, batch in enumerate(batches):
            nb = copy.deepcopy(filled)
            for row in batch:
                _set_answer(nb, row.answer_id, row.source)
            paths.append(Path(tmp) / f"batch{k:02d}" / f"{chapter}.ipynb")
            write_notebook(nb, paths[-1])
        reports = grade_notebooks(paths, root=root, chapter=chapter,
                                  timeout=timeout or DEFAULT_CELL_TIMEOUT)
    index = {id(row): i for i, row in enumerate(rows)}
    for k, (batch, report) in enumerate(zip(batches, reports)):
        got = {e.grade_id: e for e in report.exercises}
        claimed = {t for row in batch for t in row.loses}
        collateral = [t for t in points if t not in claimed and t in got
                      and (got[t].points or 0.0) < points[t]]
        for row in batch:
            kept = [t for t in row.loses if (got[t].points or 0.0) > 0]
            if kept:
                v = Verdict(row, "LET THROUGH", "kept the points of " + ", ".join(kept), k)
            elif collateral:
                v = Verdict(row, "interference", "its notebook also lost " + ", ".join(collateral)
                            + (": mark the culprit solo" if len(batch) > 1 else ""), k)
            else:
                v = Verdict(row, "caught", "", k)
            result.verdicts.append(v)
    result.verdicts.sort(key=lambda v: index[id(v.row)])   # catalogue order
    missing = [a for a in autograded_answers(root, chapter)
               if sum(r.answer_id == a for r in rows) < MIN_PER_EXERCISE]
    if missing:
        result.notes.append(f"fewer than {MIN_PER_EXERCISE} wrong answers catalogued for: " + ", ".join(missing))
    return result
