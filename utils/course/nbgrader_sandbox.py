"""nbgrader's autograde with the learner's code run in the sandbox (:mod:`utils.course.sandbox`).

nbgrader itself never executes learner code here: :class:`SandboxedExecute` takes the place
of nbgrader's ``Execute`` preprocessor in ``Autograde.autograde_preprocessors``. nbgrader still
sanitizes the submission (clears outputs, restores locked cells from its gradebook), and still
stores the scores (``SaveAutoGrades``) from the executed cells that come back from the sandbox.

``python -m utils.course.nbgrader_sandbox autograde ARGS`` is ``nbgrader autograde ARGS`` with that
change; ``course grade`` (through :class:`utils.course.nbgrader_course.TempCourse`) and the
instructor's ``course autograde`` both use it. Environment:

* ``COURSE_SANDBOX``: ``require`` (refuse to run without the sandbox), ``off`` (run without it),
  anything else: use it when available;
* ``COURSE_GRADING_NOTES``: a folder where each graded notebook's notes are written as
  ``<student>/<assignment>/<notebook>.json`` (sandboxed or not, cells that broke the kernel).
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Integer

from ..runtime import GRADING_NOTES_ENV, SANDBOX_ENV

__all__ = ["PREPROCESSORS", "SandboxedExecute", "main"]

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

    def preprocess(self, nb, resources):
        from .sandbox import execute_notebook

        mode = os.environ.get(SANDBOX_ENV, "").lower()
        sandbox = True if mode == "require" else False if mode in ("off", "0", "no") else None
        folder = resources.get("metadata", {}).get("path") or None
        ex = execute_notebook(nb, timeout=self.timeout, files_from=folder, sandbox=sandbox)
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
