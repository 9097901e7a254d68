"""A throw-away nbgrader course: generate student versions, submit notebooks, autograde, read scores.

``course sync``, ``course grade`` and the tests all go through :class:`TempCourse`, so they
use nbgrader exactly the way an instructor does (its command line, the repository's
``nbgrader_config.py``) but never touch the repository's own gradebook or folders::

    with TempCourse(root) as tc:
        tc.add_chapter("01_mapping")
        tc.generate(db=True)                 # every chapter added, one nbgrader run
        tc.submit("alice", "01_mapping", notebook)
        tc.autograde()                       # every submission

        tc.scores("01_mapping", "alice")     # {"test-sampler": (2.0, 2.0), ...}
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from .notebooks import PROJECT_ROOT
from ..errors import CourseError, course_error
from ..runtime import FIGURES_DIR_ENV, GRADING_NOTES_ENV, SANDBOX_ENV, headless_env
from .notebooks import read_notebook, solution_path, strip_notebook, write_notebook

__all__ = ["DEFAULT_CELL_TIMEOUT", "course_env", "TempCourse"]

#: Per-cell time limit (seconds) for autograding; an infinite loop is interrupted after it.
DEFAULT_CELL_TIMEOUT = 120


def course_env(*, fast: bool = True, extra: dict | None = None) -> dict:
    """Environment for the subprocesses the tooling starts (nbgrader, kernels).

    :func:`utils.runtime.headless_env` (headless; FAST unless ``fast=False``; BLAS/OpenMP at two
    threads unless the caller chose otherwise), plus this interpreter's ``bin/`` first on PATH
    (nbgrader calls ``alembic`` by bare name) and the project importable from any folder.
    """
    env = headless_env(fast)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env["PYTHONPATH"] = str(PROJECT_ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")  # keeps a debugger notice off stderr
    env.pop(FIGURES_DIR_ENV, None)  # grading must not write the run table's figures
    env.update(extra or {})
    return env


def _tail(text: str, n: int = 15) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return "\n".join(lines[-n:])


class TempCourse:
    """An nbgrader course in a temporary folder, seeded from ``<root>/solutions``.

    Layout inside ``self.path``: ``solutions/`` (source), ``chapters/`` (release),
    ``submitted/``, ``autograded/``, ``gradebook.db`` and an ``nbgrader_config.py`` that loads
    the project's config and then points the course root here and sets the per-cell timeout.
    """

    def __init__(self, root: str | Path, *, timeout: int = DEFAULT_CELL_TIMEOUT,
                 workdir: str | Path | None = None, sandbox: bool | None = None, limits=None):
        self.root = Path(root).resolve()
        self.timeout = int(timeout)
        #: resource bounds (:class:`utils.course.sandbox_limits.Limits`; None: the course's own)
        self.limits = limits
        #: learner code in the sandbox: None when available, True required, False never
        self.sandbox = sandbox
        self._own_tmp = workdir is None
        self.path = Path(tempfile.mkdtemp(prefix="course-nbgrader-")) if workdir is None else Path(workdir)
        self.path.mkdir(parents=True, exist_ok=True)
        self._write_config()

    # context manager: the folder goes away with the block when we created it
    def __enter__(self) -> "TempCourse":
        return self

    def __exit__(self, *exc) -> None:
        self.cleanup()

    def cleanup(self) -> None:
        """Remove the temporary folder (only when this object created it)."""
        if self._own_tmp:
            shutil.rmtree(self.path, ignore_errors=True)

    def _write_config(self) -> None:
        project_config = PROJECT_ROOT / "nbgrader_config.py"
        lines = ["c = get_config()"]
        if project_config.exists():
            lines.append(f"load_subconfig({str(project_config)!r})")
        lines += [
            f"c.CourseDirectory.root = {str(self.path)!r}",
            'c.CourseDirectory.source_directory = "solutions"',
            'c.CourseDirectory.release_directory = "chapters"',
            f"c.Execute.timeout = {self.timeout}",
            f"c.SandboxedExecute.timeout = {self.timeout}",
            "c.Execute.interrupt_on_timeout = True",
            'c.NbGrader.logfile = ""',
        ]
        if self.limits is not None:
            lim = self.limits
            lines += [f"c.SandboxedExecute.memory_limit = '{lim.memory}'",
                      f"c.SandboxedExecute.process_limit = {lim.processes}",
                      f"c.SandboxedExecute.file_size_limit = '{lim.file_size}'",
                      f"c.SandboxedExecute.scratch_limit = '{lim.scratch}'",
                      f"c.SandboxedExecute.cpu_limit = {lim.cpu}",
                      f"c.SandboxedExecute.output_limit = '{lim.output}'"]
        (self.path / "nbgrader_config.py").write_text("\n".join(lines) + "\n")

    # ------------------------------------------------------------------ building the course
    def add_chapter(self, chapter: str) -> Path:
        """Copy ``<root>/solutions/<chapter>/`` into the course, notebooks stripped; return the copy."""
        src_dir = solution_path(self.root, chapter).parent
        if not src_dir.is_dir():
            raise course_error(f"chapter {chapter!r}", f"a folder {src_dir}", "none",
                               "check the chapter name (python -m utils.course list)")
        dst_dir = self.path / "solutions" / chapter
        if dst_dir.exists():
            shutil.rmtree(dst_dir)
        shutil.copytree(src_dir, dst_dir, ignore=shutil.ignore_patterns(
            ".ipynb_checkpoints", "__pycache__"))
        for nb_path in dst_dir.glob("*.ipynb"):
            write_notebook(strip_notebook(read_notebook(nb_path)), nb_path)
        return dst_dir

    def nbgrader(self, *args: str, timeout: float | None = None,
                 module: str = "nbgrader") -> subprocess.CompletedProcess:
        """Run ``python -m nbgrader ARGS`` in the course folder; raise a CourseError on failure.

        ``module="utils.course.nbgrader_sandbox"`` runs the sandboxed autograde instead.
        """
        cmd = [sys.executable, "-m", module, *args]
        extra = {GRADING_NOTES_ENV: str(self.path / "grading-notes"),
                 SANDBOX_ENV: {True: "require", False: "off", None: "auto"}[self.sandbox]}
        env = course_env(extra=extra)
        try:
            proc = subprocess.run(cmd, cwd=self.path, env=env, capture_output=True,
                                  text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise course_error(f"nbgrader {args[0]}", f"to finish within {timeout:.0f} s",
                               "it was still running", "look for a cell that never ends") from None
        if proc.returncode != 0:
            raise CourseError(f"nbgrader {' '.join(args)}: expected exit code 0, found "
                              f"{proc.returncode}. Its last messages:\n{_tail(proc.stderr + proc.stdout)}\n"
                              "What to do: fix the notebook metadata or cell it names.")
        return proc

    def generate(self, chapter: str = "*", *, db: bool = False) -> Path:
        """``nbgrader generate_assignment`` for ``chapter`` (``"*"``: every chapter added, in one run).

        ``db=True`` records the assignments in the course's gradebook (needed to autograde).
        Returns the release folder (``chapters/``) of the course.
        """
        args = ["generate_assignment", chapter, "--force"]
        if not db:
            args.append("--no-db")
        self.nbgrader(*args)
        return self.path / "chapters"

    def submit(self, student: str, chapter: str, notebook, extra_files: bool = True) -> Path:
        """Place ``notebook`` (a path or NotebookNode) as ``student``'s submission of ``chapter``.

        With ``extra_files``, the release folder's other files (data the notebook reads) are copied too.
        """
        dst = self.path / "submitted" / student / chapter
        if dst.exists():
            shutil.rmtree(dst)
        release = self.path / "chapters" / chapter
        if extra_files and release.is_dir():
            shutil.copytree(release, dst)
            for nb_path in dst.glob("*.ipynb"):
                nb_path.unlink()
        dst.mkdir(parents=True, exist_ok=True)
        target = dst / f"{chapter}.ipynb"
        if isinstance(notebook, (str, Path)):
            shutil.copyfile(notebook, target)
        else:
            write_notebook(notebook, target)
        return target

    def autograde(self, chapter: str = "*", student: str | None = None, *, n_cells: int = 200) -> None:
        """``nbgrader autograde`` for ``chapter`` (``"*"``: all) and every submitted student, or ``student``.

        Learner code runs in the sandbox (:mod:`utils.course.nbgrader_sandbox`; ``COURSE_SANDBOX=off``
        runs it without). A generous overall limit (per-cell limit x cells x submissions) guards against a
        kernel that nbgrader cannot interrupt.
        """
        args = ["autograde", chapter, "--force"]
        if student:
            args.append(f"--student={student}")
        sub = self.path / "submitted"
        n_subs = max(1, sum(1 for _ in sub.glob("*/*"))) if sub.is_dir() else 1
        self.nbgrader(*args, timeout=300 + n_subs * n_cells * (self.timeout + 5),
                      module="utils.course.nbgrader_sandbox")

    def students(self, chapter: str) -> list[str]:
        """Students with a submission of ``chapter`` in this course."""
        sub = self.path / "submitted"
        return sorted(d.name for d in sub.iterdir() if (d / chapter).is_dir()) if sub.is_dir() else []

    # ------------------------------------------------------------------ results
    def autograded_notebook(self, chapter: str, student: str):
        """The executed, autograded copy of ``student``'s notebook."""
        return read_notebook(self.path / "autograded" / student / chapter / f"{chapter}.ipynb")

    def grading_notes(self, chapter: str, student: str) -> dict:
        """What the sandboxed execution of ``student``'s ``chapter`` reported (see
        :mod:`utils.course.nbgrader_sandbox`): ``sandboxed``, ``sandbox_note``, ``notes``, ``stopped``."""
        path = self.path / "grading-notes" / student / chapter / f"{chapter}.json"
        return json.loads(path.read_text()) if path.exists() else {}

    def scores(self, chapter: str, student: str) -> dict[str, tuple[float | None, float]]:
        """grade_id -> (auto score or ``None`` if it needs a human, max score), from the gradebook."""
        from nbgrader.api import Gradebook  # local: importing nbgrader is slow

        with Gradebook(f"sqlite:///{self.path / 'gradebook.db'}") as gb:
            sub = gb.find_submission_notebook(chapter, chapter, student)
            return {g.name: (None if g.auto_score is None else float(g.auto_score), float(g.max_score))
                    for g in sub.grades}
