"""nbgrader's autograde with the learner's code run in the sandbox (:mod:`utils.course.sandbox`).

nbgrader itself never executes learner code here: :class:`SandboxedExecute` takes the place
of nbgrader's ``Execute`` preprocessor in ``Autograde.autograde_preprocessors``. nbgrader still
sanitizes the submission (clears outputs, restores locked cells from its gradebook), and still
stores the scores (``SaveAutoGrades``) from the executed cells that come back from the sandbox.

The course's ``nbgrader_config.py`` puts :data:`PREPROCESSORS` in place for every
``nbgrader autograde`` run from the course folder, from the command line and from Formgrader's
Autograde button alike, so there is no unsandboxed path by default.
``python -m utils.course.nbgrader_sandbox autograde ARGS`` is ``nbgrader autograde ARGS`` with that
change made even without the course's config; ``course grade`` (through
:class:`utils.course.nbgrader_course.TempCourse`) and the instructor's ``course autograde`` use it.

Which mode: ``c.SandboxedExecute.sandbox`` (default ``"require"``: refuse to grade where
bubblewrap cannot run), overridden by the environment variable ``COURSE_SANDBOX``:
``require``, ``auto`` (use it when available: a learner's self-grading), ``off`` (the explicit,
loud opt-out: every graded notebook logs a warning and its notes say "ran UNSANDBOXED").
The resource bounds are the ``*_limit`` traits (:mod:`utils.course.sandbox_limits`). Environment:

* ``COURSE_GRADING_NOTES``: a folder where each graded notebook's notes are written as
  ``<student>/<assignment>/<notebook>.json`` (sandboxed or not, cells that broke the kernel).
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Integer, Unicode

from ..runtime import GRADING_NOTES_ENV, SANDBOX_ENV

__all__ = ["PREPROCESSORS", "MODES", "UNSAFE_WARNING", "SandboxedExecute", "main"]

#: sandbox mode -> the ``sandbox`` argument of :func:`utils.course.sandbox.execute_notebook`
MODES = {"require": True, "auto": None, "off": False, "0": False, "no": False}
UNSAFE_WARNING = ("!!! GRADING UNSANDBOXED: the sandbox was switched off (COURSE_SANDBOX=off or "
                  "c.SandboxedExecute.sandbox = 'off'); this learner's code runs with YOUR account's "
                  "rights, next to the gradebook and every other submission !!!")

#: nbgrader 0.9's autograde preprocessors with Execute replaced by the sandboxed one.
PREPROCESSORS = [
    "utils.course.nbgrader_sandbox.SandboxedExecute",
    "nbgrader.preprocessors.IgnorePattern",
    "nbconvert.preprocessors.ClearMetadataPreprocessor",
    "nbgrader.preprocessors.LimitOutput",
    "nbgrader.preprocessors.SaveAutoGrades",
    "nbgrader.preprocessors.AssignLatePenalties",
    "nbgrader.preprocessors.CheckCellMetadata",
]


class SandboxedExecute(NbGraderPreprocessor):
    """Execute the notebook in the sandbox; cells that break the kernel are named and skipped."""

    timeout = Integer(120, help="per-cell time limit in seconds").tag(config=True)
    sandbox = Unicode("require", help="require | auto | off (the environment's COURSE_SANDBOX wins)"
                      ).tag(config=True)
    memory_limit = Unicode("", help="memory per notebook, e.g. 4G (default: a quarter of RAM, "
                                    "at least 2 GiB)").tag(config=True)
    process_limit = Integer(0, help="processes and threads (default 256)").tag(config=True)
    file_size_limit = Unicode("", help="largest file a cell may write (default 512M)").tag(config=True)
    scratch_limit = Unicode("", help="writable scratch space (default 1G)").tag(config=True)
    cpu_limit = Integer(0, help="CPU seconds per notebook (default 1800)").tag(config=True)
    output_limit = Unicode("", help="outputs kept per cell (default 1M)").tag(config=True)

    def limits(self):
        """The :class:`~utils.course.sandbox_limits.Limits` these settings give."""
        from .sandbox_limits import default_limits

        return default_limits().with_(
            memory=self.memory_limit or None, processes=self.process_limit or None,
            file_size=self.file_size_limit or None, scratch=self.scratch_limit or None,
            cpu=self.cpu_limit or None, output=self.output_limit or None)

    def mode(self) -> bool | None:
        """True: the sandbox is required; None: used when available; False: switched off."""
        from ..errors import course_error

        mode = (os.environ.get(SANDBOX_ENV) or self.sandbox).lower()
        if mode not in MODES:
            raise course_error(f"{SANDBOX_ENV} / c.SandboxedExecute.sandbox", " or ".join(MODES),
                               repr(mode), "use require (instructors), auto (self-grading) or off")
        return MODES[mode]

    def preprocess(self, nb, resources):
        from .sandbox import execute_notebook

        sandbox = self.mode()
        if sandbox is False:
            self.log.warning(UNSAFE_WARNING)
        folder = resources.get("metadata", {}).get("path") or None
        ex = execute_notebook(nb, timeout=self.timeout, files_from=folder, sandbox=sandbox,
                              limits=self.limits())
        notes_dir = os.environ.get(GRADING_NOTES_ENV)
        info = resources.get("nbgrader", {})
        if notes_dir and info:
            path = (Path(notes_dir) / str(info.get("student")) / str(info.get("assignment"))
                    / f"{info.get('notebook')}.json")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps({"sandboxed": ex.sandboxed, "sandbox_note": ex.sandbox_note,
                                        "notes": ex.notes,
                                        "stopped": {str(k): v for k, v in ex.stopped.items()}}))
        return ex.notebook, resources


def main(argv: list[str] | None = None) -> int:
    """``python -m utils.course.nbgrader_sandbox autograde ARGS``: nbgrader autograde, sandboxed."""
    from nbgrader.apps.autogradeapp import AutogradeApp
    from traitlets.config import Config

    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] != "autograde":
        print("usage: python -m utils.course.nbgrader_sandbox autograde ASSIGNMENT [nbgrader options]",
              file=sys.stderr)
        return 2
    app = AutogradeApp.instance()
    app.initialize(argv[1:])
    cfg = Config()
    cfg.Autograde.autograde_preprocessors = PREPROCESSORS
    cfg.SandboxedExecute.timeout = int(app.config.Execute.get("timeout", None) or 120)
    app.update_config(cfg)
    app.start()
    return 0


if __name__ == "__main__":
    sys.exit(main())
