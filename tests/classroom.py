"""The instructor's side of a classroom, for the exchange and JupyterHub tests.

A temporary nbgrader course (built from the repository's ``solutions/`` with
:class:`utils.course.nbgrader_course.TempCourse`, so it loads the project's ``nbgrader_config.py``)
plus a temporary exchange folder, and the nbgrader commands an instructor types, in the order
INSTRUCTORS.md gives them: generate_assignment, release_assignment, collect, autograde,
generate_feedback, release_feedback, export.

Learners are simulated by :func:`learner_config`: a folder of their own whose
``nbgrader_config.py`` names the exchange, the course and their student id.
"""
from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

from utils.course.nbgrader_course import TempCourse, course_env
from utils.course.notebooks import find_chapters, read_notebook, test_points

REPO = Path(__file__).resolve().parents[1]
COURSE_ID = "everything-is-a-mapping"

#: The chapter the classroom tests hand out: the real chapter that autogrades fastest in FAST
#: mode on the CI host (each submission runs the whole chapter once).
CLASSROOM_CHAPTER = "04_distillation"


def classroom_chapter() -> str:
    """:data:`CLASSROOM_CHAPTER` if this checkout has it, else the first chapter found."""
    chapters = find_chapters(REPO)
    return CLASSROOM_CHAPTER if CLASSROOM_CHAPTER in chapters else chapters[0]


def run_nbgrader(cwd: Path, *args: str, env: dict | None = None, timeout: float = 300,
                 ) -> subprocess.CompletedProcess:
    """``nbgrader ARGS`` in ``cwd`` (which holds the nbgrader_config.py in force); fail loudly."""
    proc = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=cwd,
                          env=env or course_env(), capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, (f"nbgrader {' '.join(args)} (in {cwd}) exited "
                                  f"{proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def _autograde(course_dir: Path, assignment: str, timeout: float = 1500) -> None:
    """Autograde every collected submission of ``assignment`` in the course at ``course_dir``.

    Every autograde of the classroom tests goes through here: the course's sandboxed
    ``python -m utils.course autograde`` (learner code in bubblewrap, scores recomputed outside
    the kernel), exactly as INSTRUCTORS.md tells an instructor to run it.
    """
    proc = subprocess.run([sys.executable, "-m", "utils.course", "autograde", assignment,
                           "--course-dir", str(course_dir)], cwd=REPO, env=course_env(),
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, (f"course autograde {assignment} (course {course_dir}) exited "
                                  f"{proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")


def make_exchange(path: Path) -> Path:
    """An exchange folder as INSTRUCTORS.md sets it up: world-writable with the sticky bit."""
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o1777)
    return path


class Instructor:
    """A temporary course with ``chapter`` generated into its gradebook, wired to ``exchange``."""

    def __init__(self, folder: Path, exchange: Path, chapter: str, timeout: int = 120):
        self.chapter = chapter
        self.tc = TempCourse(REPO, timeout=timeout, workdir=folder)
        self.path = self.tc.path
        with open(self.path / "nbgrader_config.py", "a") as f:
            f.write(f"c.Exchange.root = {str(exchange)!r}\n"
                    f"c.CourseDirectory.course_id = {COURSE_ID!r}\n")
        self.tc.add_chapter(chapter)
        self.nbgrader("generate_assignment", chapter, "--force")  # records it in gradebook.db

    def nbgrader(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        return run_nbgrader(self.path, *args, timeout=timeout)

    def release(self) -> None:
        self.nbgrader("release_assignment", self.chapter, "--force")

    def collect(self) -> None:
        self.nbgrader("collect", self.chapter)

    def autograde(self) -> None:
        _autograde(self.path, self.chapter)

    def generate_and_release_feedback(self) -> None:
        self.nbgrader("generate_feedback", self.chapter, "--force")
        self.nbgrader("release_feedback", self.chapter)

    def export_csv(self) -> list[dict]:
        out = self.path / "grades.csv"
        self.nbgrader("export", "--to", str(out))
        with open(out, newline="") as f:
            return list(csv.DictReader(f))

    def scores(self, student: str) -> dict[str, tuple[float | None, float]]:
        return self.tc.scores(self.chapter, student)

    def release_notebook(self):
        return read_notebook(self.path / "chapters" / self.chapter / f"{self.chapter}.ipynb")

    def solution_notebook(self):
        return read_notebook(self.path / "solutions" / self.chapter / f"{self.chapter}.ipynb")

    def autograded_points(self) -> dict[str, float]:
        """grade_id -> points of every autograded test cell of the chapter."""
        return test_points(self.release_notebook())


def learner_config(home: Path, exchange: Path, student: str) -> Path:
    """A learner's working folder with the nbgrader config their Jupyter server would load.

    On a hub where every learner is an OS user nbgrader takes the student id from the user
    name; here every learner runs as the same OS user, so the id is set explicitly
    (``CourseDirectory.student_id``), as is the fetch/submit cache (per learner).
    """
    home.mkdir(parents=True, exist_ok=True)
    (home / "nbgrader_config.py").write_text(
        "c = get_config()\n"
        f"c.Exchange.root = {str(exchange)!r}\n"
        f"c.Exchange.cache = {str(home / '.nbgrader-cache')!r}\n"
        f"c.CourseDirectory.course_id = {COURSE_ID!r}\n"
        f"c.CourseDirectory.student_id = {student!r}\n")
    return home


def learner_env(home: Path) -> dict:
    """The environment of a learner's nbgrader commands: their own HOME and no course root."""
    env = course_env(extra={"HOME": str(home)})
    env.pop("JUPYTER_CONFIG_DIR", None)
    return env
