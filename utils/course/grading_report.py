"""The grade report and why a test failed: :class:`GradeReport` (the points of every exercise and the
notes), built from the autograded notebook by reading which cells raised and what they printed
(see :mod:`utils.course.grading`)."""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

from nbformat import NotebookNode

from ..language import notebook_language, t
from ..tables import display_width, pad

from .notebooks import is_answer_cell, is_manual_cell, is_test_cell, nbgrader_meta

__all__ = ["ExerciseResult", "GradeReport"]


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

    def format(self, language: str | None = None) -> str:
        """The human-readable report printed by the CLI, in ``language`` (default: the graded
        notebook's edition, :func:`utils.language.notebook_language`: ``"zh"`` for the Chinese one)."""
        lang = language or notebook_language(self.notebook)
        where = {True: t(", sandboxed", lang), False: t(", UNSANDBOXED", lang)}.get(self.sandboxed, "")
        lines = [t("Chapter {chapter}: {notebook} (per-cell time limit {timeout} s{where})", lang,
                    chapter=self.chapter, notebook=self.notebook, timeout=self.timeout, where=where)]
        lines += [t("  note: {note}", lang, note=t(n, lang)) for n in self.notes]
        head = [t("exercise", lang), t("points", lang), t("result", lang)]
        width = max([display_width(e.grade_id) for e in self.exercises] + [8, display_width(head[0])])
        lines.append(f"  {pad(head[0], width)}  {pad(head[1], 7, right=True)}  {head[2]}")
        for e in self.exercises:
            pts = "-" if e.points is None else _num(e.points)
            result = t(e.status, lang) + (t(": {message}", lang, message=t(e.message, lang))
                                                  if e.message else "")
            lines.append(f"  {e.grade_id.ljust(width)}  {pts + '/' + _num(e.max_points):>7}  {result}")
        lines.append(t("Autograded total: {total}/{max_total}", lang, total=_num(self.total),
                        max_total=_num(self.max_total)))
        n_manual = len(self.exercises) - len(self.autograded)
        if n_manual:
            lines.append(t("Written answers graded by hand: {n} (compare yours with the model "
                            "answers in solutions/{chapter}/)", lang, n=n_manual, chapter=self.chapter))
        return "\n".join(lines)


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:.2f}"


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
