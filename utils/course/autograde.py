"""``python -m utils.course autograde``: the instructor's sandboxed autograde of a real nbgrader course.

Runs ``nbgrader autograde`` on ``<course>/submitted/<student>/<assignment>/`` with the
learners' code in the sandbox (:mod:`utils.course.nbgrader_sandbox`), then, outside the sandbox,
recomputes every score from the executed notebooks nbgrader wrote to ``autograded/``:

* where the gradebook disagrees with the executed notebook, the gradebook is corrected and the
  difference is reported as tampering;
* where the chapter's locked ``integrity-check`` cell raised (or is missing), every autograded
  score of that submission is set to 0 in the gradebook, with the check's message;
* cells that ended the kernel or ignored the interrupt are named (they cost only their exercise).

Refuses to run without the sandbox unless ``unsafe=True`` (``--unsafe``).
"""
from __future__ import annotations

import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import CourseError, course_error
from ..runtime import GRADING_NOTES_ENV, SANDBOX_ENV
from .grading import INTEGRITY_ID, compare_with_gradebook, integrity_failure, scores_from_notebook
from .grading_report import _num
from .nbgrader_course import _tail, course_env
from .notebooks import read_notebook
from .sandbox import sandbox_status

__all__ = ["SubmissionResult", "check_gradebook", "autograde_course"]


@dataclass
class SubmissionResult:
    """One student's autograded notebook, as checked after nbgrader stored it."""

    student: str
    notebook: str
    score: float
    max_score: float
    notes: list[str] = field(default_factory=list)

    def format(self) -> str:
        lines = [f"  {self.student}  {self.notebook}  {_num(self.score)}/{_num(self.max_score)}"]
        return "\n".join(lines + [f"      note: {n}" for n in self.notes])


def _students(course: Path, assignment: str, wanted: list[str] | None) -> list[str]:
    sub = course / "submitted"
    have = sorted(d.name for d in sub.iterdir() if (d / assignment).is_dir()) if sub.is_dir() else []
    if not have:
        raise course_error(f"{sub}/*/{assignment}", "collected submissions (nbgrader collect)",
                           "none", f"run `nbgrader collect {assignment}` in the course folder first")
    if wanted:
        missing = [s for s in wanted if s not in have]
        if missing:
            raise course_error("--student", "students with a submission: " + ", ".join(have),
                               ", ".join(missing), "check the student ids (folder names under submitted/)")
        return list(wanted)
    return have


def _gradebook_cells(gb, assignment: str, notebook: str) -> dict[str, tuple[float, bool]]:
    """grade_id -> (max points, autograded?) as recorded by generate_assignment."""
    nb = gb.find_notebook(notebook, assignment)
    solution_ids = {c.name for c in nb.solution_cells}
    return {c.name: (float(c.max_score), c.cell_type == "code" and c.name not in solution_ids)
            for c in nb.grade_cells}


def check_gradebook(course: Path, assignment: str, student: str, notes_dir: Path) -> list[SubmissionResult]:
    """Recompute ``student``'s scores from ``autograded/`` and correct the gradebook where needed."""
    import json

    from nbgrader.api import Gradebook

    results = []
    folder = course / "autograded" / student / assignment
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        for path in sorted(folder.glob("*.ipynb")):
            nb_id = path.stem
            cells = _gradebook_cells(gb, assignment, nb_id)
            graded = read_notebook(path)
            mine = scores_from_notebook(graded, cells)
            sub = gb.find_submission_notebook(nb_id, assignment, student)
            stored = {g.name: (None if g.auto_score is None else float(g.auto_score), float(g.max_score))
                      for g in sub.grades}
            notes = []
            run_path = notes_dir / student / assignment / f"{nb_id}.json"
            run = json.loads(run_path.read_text()) if run_path.exists() else {}
            if run.get("sandbox_note"):
                notes.append(run["sandbox_note"])
            notes += run.get("notes", [])
            notes += compare_with_gradebook(mine, stored)
            broken = integrity_failure(graded, cells) if INTEGRITY_ID in cells else None
            if broken:
                notes.append(f"integrity check failed, every autograded exercise scores 0: {broken}")
                mine = {g: ((0.0 if s is not None else None), m) for g, (s, m) in mine.items()}
            for g in sub.grades:
                score = mine.get(g.name, (None,))[0]
                if score is not None and (g.auto_score is None or abs(g.auto_score - score) > 1e-9):
                    g.auto_score = score
            gb.db.commit()
            auto = [v for v in mine.values() if v[0] is not None]
            results.append(SubmissionResult(student, path.name, sum(s for s, _ in auto),
                                            sum(m for _, m in auto), notes))
    return results


def autograde_course(course: str | Path, assignment: str, *, students: list[str] | None = None,
                     timeout: int | None = None, unsafe: bool = False) -> list[SubmissionResult]:
    """Autograde ``assignment`` in the nbgrader course folder ``course``, sandboxed.

    ``students``: only these (default: every collected submission). ``timeout``: per-cell limit
    in seconds (default: the course's ``c.Execute.timeout``). ``unsafe``: run learner code
    unsandboxed when no sandbox is available (otherwise a CourseError says why not).
    """
    ok, why = sandbox_status()
    if not ok and not unsafe:
        raise course_error("the grading sandbox", "bubblewrap able to isolate learner code",
                           why, "install bubblewrap (apt-get install bubblewrap) on the Linux "
                           "host, or pass --unsafe to autograde without isolation")
    course = Path(course).resolve()
    if not (course / "gradebook.db").exists():
        raise course_error(f"course folder {course}", "an nbgrader course with gradebook.db",
                           "no gradebook.db", "pass --course-dir (the folder holding "
                           "nbgrader_config.py, submitted/ and gradebook.db)")
    who = _students(course, assignment, students)
    results = []
    with tempfile.TemporaryDirectory(prefix="course-autograde-") as tmp:
        notes_dir = Path(tmp)
        env = course_env(extra={SANDBOX_ENV: "require" if ok else "off",
                                GRADING_NOTES_ENV: str(notes_dir)})
        for student in who:
            cmd = [sys.executable, "-m", "utils.course.nbgrader_sandbox", "autograde", assignment,
                   "--force", f"--student={student}"]
            if timeout:
                cmd.append(f"--Execute.timeout={int(timeout)}")
            proc = subprocess.run(cmd, cwd=course, env=env, capture_output=True, text=True)
            if proc.returncode != 0:
                raise CourseError(f"nbgrader autograde {assignment} --student={student}: expected exit "
                                  f"code 0, found {proc.returncode}. Its last messages:\n"
                                  f"{_tail(proc.stderr + proc.stdout)}\n"
                                  "What to do: fix the problem it names and run again.")
            results += check_gradebook(course, assignment, student, notes_dir)
    return results
