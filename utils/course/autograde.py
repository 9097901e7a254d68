"""``python -m utils.course autograde``: the instructor's sandboxed autograde of a real nbgrader course.

Runs ``nbgrader autograde`` on ``<course>/submitted/<student>/<assignment>/`` with the
learners' code in the sandbox (:mod:`utils.course.nbgrader_sandbox`), then, outside the sandbox,
recomputes every score from the executed notebooks nbgrader wrote to ``autograded/``:

* where the gradebook disagrees with the executed notebook, the gradebook is corrected and the
  difference is reported as tampering;
* where the chapter's locked ``integrity-check`` cell raised (or is missing), every autograded
  score of that submission is set to 0 in the gradebook, with the check's message;
* cells that ended the kernel or ignored the interrupt are named (they cost only their exercise).

Each submission is first checked and prepared in a private copy
(:func:`utils.course.grading_intake.prepare_submission`): one that cannot be graded (too large,
not a notebook, a notebook of another chapter, none at all) is named in the results and the rest
of the class is graded; deleted locked cells are put back, duplicated ids resolved. Each
submission is graded against a copy of the gradebook, which replaces ``gradebook.db`` in one
atomic rename once its scores are checked: a run killed halfway leaves every submission as it
was or complete, and running it again finishes the rest.

Refuses to run without the sandbox unless ``unsafe=True`` (``--unsafe``).
"""
from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import CourseError, course_error
from ..runtime import GRADING_NOTES_ENV, SANDBOX_ENV
from .grading import INTEGRITY_ID, compare_with_gradebook, integrity_failure, scores_from_notebook
from .grading_intake import MAX_NOTEBOOK_BYTES, prepare_submission
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
    #: False: the submission could not be graded (the first note says why); the gradebook is as it was
    graded: bool = True

    def format(self) -> str:
        if not self.graded:
            return "\n".join([f"  {self.student}  {self.notebook}  NOT GRADED"] +
                             [f"      note: {n}" for n in self.notes])
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


def check_gradebook(course: Path, assignment: str, student: str, notes_dir: Path,
                    db: Path | None = None, intake: list[str] = ()) -> list[SubmissionResult]:
    """Recompute ``student``'s scores from ``autograded/`` and correct the gradebook ``db``
    (default ``<course>/gradebook.db``) where needed; ``intake``: notes from the intake checks."""
    import json

    from nbgrader.api import Gradebook

    results = []
    folder = course / "autograded" / student / assignment
    with Gradebook(f"sqlite:///{db or course / 'gradebook.db'}") as gb:
        for path in sorted(folder.glob("*.ipynb")):
            nb_id = path.stem
            cells = _gradebook_cells(gb, assignment, nb_id)
            graded = read_notebook(path)
            mine = scores_from_notebook(graded, cells)
            sub = gb.find_submission_notebook(nb_id, assignment, student)
            stored = {g.name: (None if g.auto_score is None else float(g.auto_score), float(g.max_score))
                      for g in sub.grades}
            notes = list(intake)
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


def _copy_db(src: Path, dst: Path) -> None:
    """A consistent copy of the SQLite gradebook (its backup API, safe while others read it)."""
    if dst.exists():
        dst.unlink()
    with sqlite3.connect(src) as a, sqlite3.connect(dst) as b:
        a.backup(b)
    b.close()
    a.close()


def _remove_stale_copies(course: Path) -> None:
    """Gradebook copies left by a run that was killed (its process is gone): never used again."""
    for p in course.glob(".gradebook.db.autograde-*"):
        pid = p.name.rsplit("-", 1)[-1]
        try:
            os.kill(int(pid), 0)
        except (ValueError, ProcessLookupError):
            p.unlink(missing_ok=True)
        except PermissionError:
            pass


def _release_and_source(course: Path, assignment: str):
    from .notebooks import read_notebook

    paths = [course / "chapters" / assignment / f"{assignment}.ipynb",
             course / "solutions" / assignment / f"{assignment}.ipynb"]
    if not all(p.is_file() for p in paths):
        return None, None
    return read_notebook(paths[0]), read_notebook(paths[1])


def autograde_course(course: str | Path, assignment: str, *, students: list[str] | None = None,
                     timeout: int | None = None, unsafe: bool = False,
                     max_bytes: int = MAX_NOTEBOOK_BYTES) -> list[SubmissionResult]:
    """Autograde ``assignment`` in the nbgrader course folder ``course``, sandboxed.

    ``students``: only these (default: every collected submission). ``timeout``: per-cell limit
    in seconds (default: the course's ``c.Execute.timeout``). ``unsafe``: run learner code
    unsandboxed when no sandbox is available (otherwise a CourseError says why not).
    ``max_bytes``: larger notebooks are refused. The resource bounds are the course's
    (``c.SandboxedExecute.*_limit`` in its ``nbgrader_config.py``).
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
    release, source = _release_and_source(course, assignment)
    results = []
    with tempfile.TemporaryDirectory(prefix="course-autograde-") as tmp:
        notes_dir, prepared = Path(tmp) / "notes", Path(tmp) / "submitted"
        env = course_env(extra={SANDBOX_ENV: "require" if ok else "off",
                                GRADING_NOTES_ENV: str(notes_dir)})
        db, db_copy = course / "gradebook.db", course / f".gradebook.db.autograde-{os.getpid()}"
        _remove_stale_copies(course)
        try:
            for student in who:
                try:
                    intake = prepare_submission(course / "submitted" / student / assignment,
                                                prepared / student / assignment, assignment,
                                                source, release, course_root=course, max_bytes=max_bytes)
                except CourseError as exc:
                    results.append(SubmissionResult(student, f"{assignment}.ipynb", 0.0, 0.0,
                                                    [f"not graded: {exc}"], graded=False))
                    continue
                _copy_db(db, db_copy)
                cmd = [sys.executable, "-m", "utils.course.nbgrader_sandbox", "autograde", assignment,
                       "--force", f"--student={student}",
                       f"--CourseDirectory.submitted_directory={prepared}",
                       f"--CourseDirectory.db_url=sqlite:///{db_copy}"]
                if timeout:
                    cmd.append(f"--Execute.timeout={int(timeout)}")
                proc = subprocess.run(cmd, cwd=course, env=env, capture_output=True, text=True)
                if proc.returncode != 0:
                    results.append(SubmissionResult(
                        student, f"{assignment}.ipynb", 0.0, 0.0, intake + [
                            f"not graded: nbgrader autograde failed (exit code {proc.returncode}): "
                            + _tail(proc.stderr + proc.stdout, 6).replace("\n", " / ")], graded=False))
                    continue
                results += check_gradebook(course, assignment, student, notes_dir, db_copy, intake)
                os.replace(db_copy, db)  # this submission's scores, all at once
        finally:
            if db_copy.exists():
                db_copy.unlink()
    return results
