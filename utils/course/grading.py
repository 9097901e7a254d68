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
"""
from __future__ import annotations

import copy
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from nbformat import NotebookNode

from .notebooks import PROJECT_ROOT
from ..errors import course_error
from .nbgrader_course import DEFAULT_CELL_TIMEOUT, TempCourse
from .notebooks import (CHAPTER_RE, cell_by_grade_id, find_chapters, grade_ids, is_answer_cell,
                        is_manual_cell, is_test_cell, nbgrader_meta, read_notebook, solution_path)

_ANSI_RE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_TIMEOUT_ENAMES = {"CellTimeoutError", "KeyboardInterrupt", "TimeoutError"}


@dataclass
class ExerciseResult:
    """One graded cell. ``points`` is ``None`` for answers graded by hand (written answers)."""

    grade_id: str
    points: float | None
    max_points: float
    status: str  # "passed", "partial", "failed", "timeout" or "manual"
    message: str = ""


@dataclass
class GradeReport:
    """Everything ``course grade`` prints about one notebook."""

    notebook: str
    chapter: str
    timeout: int
    exercises: list[ExerciseResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: whether the learner's code ran in the sandbox (None: not known, e.g. an old report)
    sandboxed: bool | None = None

    @property
    def autograded(self) -> list[ExerciseResult]:
        return [e for e in self.exercises if e.status != "manual"]

    @property
    def total(self) -> float:
        """Autograded points scored (written answers excluded)."""
        return sum(e.points or 0.0 for e in self.autograded)

    @property
    def max_total(self) -> float:
        """Autograded points available (written answers excluded)."""
        return sum(e.max_points for e in self.autograded)

    def points(self) -> dict[str, float | None]:
        """grade_id -> points, for tests and scripts."""
        return {e.grade_id: e.points for e in self.exercises}

    def to_dict(self) -> dict:
        d = asdict(self)
        d.update(total=self.total, max_total=self.max_total)
        return d

    def format(self) -> str:
        """The human-readable report printed by the CLI."""
        where = {True: ", sandboxed", False: ", UNSANDBOXED"}.get(self.sandboxed, "")
        lines = [f"Chapter {self.chapter}: {self.notebook} (per-cell time limit {self.timeout} s{where})"]
        lines += [f"  note: {n}" for n in self.notes]
        width = max([len(e.grade_id) for e in self.exercises] + [8])
        lines.append(f"  {'exercise'.ljust(width)}  {'points':>7}  result")
        for e in self.exercises:
            pts = "-" if e.points is None else _num(e.points)
            result = e.status + (f": {e.message}" if e.message else "")
            lines.append(f"  {e.grade_id.ljust(width)}  {pts + '/' + _num(e.max_points):>7}  {result}")
        lines.append(f"Autograded total: {_num(self.total)}/{_num(self.max_total)}")
        n_manual = len(self.exercises) - len(self.autograded)
        if n_manual:
            lines.append(f"Written answers graded by hand: {n_manual} (compare yours with the model "
                         f"answers in solutions/{self.chapter}/)")
        return "\n".join(lines)


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:.2f}"


# --------------------------------------------------------------------------- which chapter
def _chapter_from_name(path: Path, chapters: list[str]) -> str | None:
    """The chapter a file name points to (``02_maml_vs_transfer-Copy1.ipynb`` -> ``02_...``)."""
    for name in (path.stem, path.parent.name):
        for ch in chapters:
            if name == ch or name.startswith(ch):
                return ch
        if CHAPTER_RE.match(name) or re.match(r"^\d{2}_", name):
            hits = [ch for ch in chapters if ch[:3] == name[:3]]
            if len(hits) == 1:
                return hits[0]
    return None


def identify_chapter(nb: NotebookNode, path: Path, root: Path,
                     chapter: str | None = None) -> tuple[str, list[str]]:
    """Decide which chapter ``nb`` belongs to; return it and notes for the learner.

    The exercises' grade ids decide (the chapter sharing most of them wins); the file name
    breaks ties and triggers a note when it disagrees. Raises a CourseError when no chapter
    shares any exercise with the notebook.
    """
    chapters = find_chapters(root)
    if not chapters:
        raise course_error(f"{root / 'solutions'}", "chapter sources solutions/NN_name/NN_name.ipynb",
                           "no chapters", "grade from a checkout of the course that has solutions/")
    if chapter is not None and chapter not in chapters:
        hits = [c for c in chapters if c[:2] == chapter[:2]]
        if len(hits) != 1:
            raise course_error(f"--chapter {chapter}", "one of " + ", ".join(chapters), repr(chapter),
                               "pass a chapter name from python -m utils.course list")
        chapter = hits[0]
    ids = set(grade_ids(nb))
    overlap = {ch: len(ids & set(grade_ids(read_notebook(solution_path(root, ch))))) for ch in chapters}
    by_name = _chapter_from_name(path, chapters)
    notes = []
    if chapter is not None:
        if overlap[chapter] == 0:
            raise course_error(f"notebook {path}", f"the exercise cells of chapter {chapter}",
                               "none of them", f"start from chapters/{chapter}/{chapter}.ipynb")
        return chapter, notes
    best = max(chapters, key=lambda ch: (overlap[ch], ch == by_name))
    if overlap[best] == 0:
        expected = f"the exercise cells of chapter {by_name}" if by_name else \
            "the exercise cells (nbgrader grade ids) of one of the chapters " + ", ".join(chapters)
        raise course_error(f"notebook {path}", expected,
                           "no exercise of any chapter" if ids else "no nbgrader exercise cells at all",
                           "grade the notebook you worked in, which started as "
                           "chapters/NN_name/NN_name.ipynb (cells copied into a new notebook lose "
                           "their grading metadata)")
    if by_name is None:
        notes.append(f"{path.name} is not named after a chapter; its exercises are those of "
                     f"{best}, so it is graded as {best}.")
    elif by_name != best:
        notes.append(f"{path.name} is named like chapter {by_name}, but its exercises belong to "
                     f"chapter {best}; it is graded as {best}.")
    unknown = ids - set(grade_ids(read_notebook(solution_path(root, best))))
    if unknown:
        notes.append(f"cells with grade ids not in {best} are graded as ordinary cells: "
                     + ", ".join(sorted(unknown)))
    return best, notes


# --------------------------------------------------------------------------- locked cells
def check_locked_cells(learner: NotebookNode, release: NotebookNode,
                       source: NotebookNode) -> tuple[NotebookNode, list[str]]:
    """Compare the learner's locked cells with the released ones.

    Returns the notebook to submit and notes. Edited locked cells are left for nbgrader, which
    puts the original back (its checksum check) before running them; deleted ones are put
    back here, after the nearest cell that precedes them in the release. A locked cell equal
    to the instructor source (the solutions notebook itself) is not an edit.
    """
    out = copy.deepcopy(learner)
    notes = []
    have = cell_by_grade_id(out)
    src = cell_by_grade_id(source)
    order = [nbgrader_meta(c).get("grade_id") for c in release.cells]
    for i, cell in enumerate(release.cells):
        m = nbgrader_meta(cell)
        gid = m.get("grade_id")
        if not (gid and m.get("locked")):
            continue
        mine = have.get(gid)
        if mine is None:
            before = [g for g in order[:i] if g and g in have]
            at = out.cells.index(have[before[-1]]) + 1 if before else 0
            out.cells.insert(at, copy.deepcopy(cell))
            have[gid] = out.cells[at]
            notes.append(f"locked cell {gid!r} is missing from your notebook; the grader put the "
                         "original back (your file is unchanged).")
        elif mine.source != cell.source and (gid not in src or mine.source != src[gid].source):
            notes.append(f"locked cell {gid!r} was edited; nbgrader graded with the original "
                         "test instead (your file keeps your edit).")
    return out, notes


# --------------------------------------------------------------------------- explaining results
def _first_lines(text: str, n: int = 2, width: int = 200) -> str:
    lines = [ln.strip() for ln in _ANSI_RE.sub("", text).strip().splitlines() if ln.strip()]
    out = " / ".join(lines[:n])
    return out if len(out) <= width else out[: width - 3] + "..."


def _failing_line(traceback: list[str]) -> str:
    """The source line an IPython traceback points at (``----> 3 assert ...``) in the cell's frame."""
    for frame in traceback[1:] or traceback:
        for line in _ANSI_RE.sub("", frame).splitlines():
            m = re.match(r"^-*>\s*\d+\s(.*)$", line.strip())
            if m:
                return m.group(1).strip()
    return ""


def _error_of(cell) -> dict | None:
    """The first error output of a code cell (or ``None``)."""
    for out in cell.get("outputs", []) if cell.cell_type == "code" else []:
        if out.get("output_type") == "error":
            return out
    return None


def _describe_error(err: dict, timeout: int) -> tuple[str, str]:
    """(status, message) for an error output."""
    ename = err.get("ename", "Error")
    if ename in _TIMEOUT_ENAMES:
        return "timeout", f"interrupted after the per-cell time limit of {timeout} s (an endless loop?)"
    if ename == "NotImplementedError":
        return "failed", "not answered yet (a stub still raises NotImplementedError)"
    msg = _first_lines(err.get("evalue", ""))
    if not msg:
        line = _failing_line(err.get("traceback", []))
        msg = f"failed at `{line}`" if line else "no message"
    return "failed", f"{ename}: {msg}"


def _explain_test(graded: NotebookNode, test_id: str, timeout: int) -> tuple[str, str]:
    """Why test cell ``test_id`` lost points, looking at it and at the answer cells before it."""
    cells = graded.cells
    idx = next((i for i, c in enumerate(cells) if nbgrader_meta(c).get("grade_id") == test_id), None)
    if idx is None:
        return "failed", "the test cell was not found in the graded notebook"
    status, message = "failed", ""
    err = _error_of(cells[idx])
    if err is not None:
        status, message = _describe_error(err, timeout)
    else:
        for out in cells[idx].get("outputs", []):
            if out.get("output_type") == "stream" and out.get("name") == "stderr":
                message = ("the cell wrote to stderr, which nbgrader scores as a failure: "
                           + _first_lines(out.get("text", ""), 1))
                break
    # the answer cells this test depends on: back to the previous test cell
    j = idx - 1
    while j >= 0 and not is_test_cell(cells[j]):
        if is_answer_cell(cells[j]):
            aerr = _error_of(cells[j])
            if aerr is not None:
                astatus, amsg = _describe_error(aerr, timeout)
                gid = nbgrader_meta(cells[j]).get("grade_id")
                if astatus == "timeout":
                    status = "timeout"
                prefix = f"your answer cell {gid!r}: {amsg}"
                if "not answered" in amsg or not message:
                    message = prefix  # the test's own error (a NameError, say) adds nothing
                else:
                    message = f"{prefix}; then {message}"
                break
        j -= 1
    return status, message or "no error shown (the cell printed a partial score?)"


def _other_problems(graded: NotebookNode, timeout: int) -> list[str]:
    """Notes about cells outside the exercises that timed out or raised."""
    notes = []
    for cell in graded.cells:
        if is_test_cell(cell) or is_answer_cell(cell) or is_manual_cell(cell):
            continue
        err = _error_of(cell)
        if err is not None:
            status, msg = _describe_error(err, timeout)
            what = "ran past the time limit and was interrupted" if status == "timeout" else f"raised {msg}"
            notes.append(f"cell {cell.get('id')!r} (not an exercise) {what}.")
    return notes[:5]


def _results(release: NotebookNode, graded: NotebookNode, scores: dict, timeout: int) -> list[ExerciseResult]:
    results = []
    for cell in release.cells:
        gid = nbgrader_meta(cell).get("grade_id")
        if gid not in scores:
            continue
        score, max_score = scores[gid]
        if is_manual_cell(cell):
            results.append(ExerciseResult(gid, None, max_score, "manual",
                                          "graded by hand; compare with the model answer"))
            continue
        score = score or 0.0
        if score >= max_score:
            results.append(ExerciseResult(gid, score, max_score, "passed"))
            continue
        status, message = _explain_test(graded, gid, timeout)
        if score > 0 and status == "failed":
            status = "partial"
        results.append(ExerciseResult(gid, score, max_score, status, message))
    return results


# --------------------------------------------------------------------------- duplicates
def dedupe_grade_ids(nb: NotebookNode) -> tuple[NotebookNode, list[str]]:
    """Keep the nbgrader metadata of the first cell with each grade id; later copies (a pasted
    answer cell) become ordinary cells that still run. Returns the notebook and notes."""
    out = copy.deepcopy(nb)
    seen, dupes = set(), {}
    for cell in out.cells:
        gid = nbgrader_meta(cell).get("grade_id")
        if not gid:
            continue
        if gid in seen:
            dupes[gid] = dupes.get(gid, 1) + 1
            cell.metadata.pop("nbgrader", None)
        seen.add(gid)
    notes = [f"cell {gid!r} appears {n} times in your notebook; the first copy was graded and the "
             "others ran as ordinary cells (delete the extra copies)." for gid, n in dupes.items()]
    return out, notes


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


def _answers_that_failed_but_passed(graded: NotebookNode, scores: dict, timeout: int) -> list[str]:
    """Notes for answer cells that raised or timed out while every test after them passed."""
    notes = []
    cells = graded.cells
    for i, cell in enumerate(cells):
        if not is_answer_cell(cell) or cell.cell_type != "code":
            continue
        err = _error_of(cell)
        if err is None:
            continue
        tests = []
        for c in cells[i + 1:]:
            if is_test_cell(c):
                tests.append(nbgrader_meta(c).get("grade_id"))
            elif tests or is_answer_cell(c):
                break
        if tests and all(scores.get(t, (0, 1))[0] is not None and scores[t][0] >= scores[t][1] > 0
                         for t in tests):
            _, msg = _describe_error(err, timeout)
            notes.append(f"your answer cell {nbgrader_meta(cell).get('grade_id')!r} raised or was "
                         f"stopped ({msg}), yet its test passed: check the answer cell.")
    return notes


# --------------------------------------------------------------------------- grading
def grade_notebooks(paths: list[str | Path], *, root: str | Path | None = None,
                    chapter: str | None = None,
                    timeout: int = DEFAULT_CELL_TIMEOUT,
                    sandbox: bool | None = None) -> list[GradeReport]:
    """Grade several learner notebooks (one nbgrader run per chapter); one report each, in order.

    ``root`` is the course checkout holding ``solutions/`` (default: this project). ``chapter``
    forces the chapter instead of detecting it. ``timeout`` is the per-cell limit in seconds.
    ``sandbox``: learner code runs in the sandbox of :mod:`utils.course.sandbox` when available
    (``None``), must (``True``) or must not (``False``). The learners' files are only read.
    Scores are computed here from the executed notebooks, cross-checked with nbgrader's gradebook.
    """
    root = Path(root or PROJECT_ROOT).resolve()
    items = []
    for p in paths:
        p = Path(p)
        nb = read_notebook(p)
        ch, notes = identify_chapter(nb, p, root, chapter)
        items.append((p, nb, ch, notes))

    reports = []
    with TempCourse(root, timeout=timeout, sandbox=sandbox) as course:
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
                   timeout: int = DEFAULT_CELL_TIMEOUT, sandbox: bool | None = None) -> GradeReport:
    """Grade one learner notebook; see :func:`grade_notebooks`."""
    return grade_notebooks([path], root=root, chapter=chapter, timeout=timeout, sandbox=sandbox)[0]
