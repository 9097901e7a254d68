"""nbgrader settings for the course (read by every ``nbgrader`` command run from this folder).

Source notebooks live in ``solutions/<NN_name>/<NN_name>.ipynb`` and the generated student
versions in ``chapters/<NN_name>/<NN_name>.ipynb``. The gradebook (``gradebook.db``) and the
``submitted/``, ``autograded/`` and ``feedback/`` folders are created next to this file and are
git-ignored. See INSTRUCTORS.md for the workflow; ``python -m utils.course sync`` regenerates
``chapters/`` and ``python -m utils.course grade`` autogrades one notebook in a throw-away copy.
"""
import os
import sys
from pathlib import Path

c = get_config()  # noqa: F821  (injected by traitlets when nbgrader loads this file)

HERE = Path(__file__).resolve().parent

# ---- where things are
c.CourseDirectory.root = str(HERE)
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "chapters"
c.CourseDirectory.course_id = "everything-is-a-mapping"  # the exchange's course name on a JupyterHub

# ---- executing notebooks while autograding / validating
# Each cell may run this many seconds; then the kernel is interrupted, the cell scores 0 and the
# rest of the notebook still runs (so one infinite loop costs one exercise, not the whole grade).
c.Execute.timeout = 120
c.Execute.interrupt_on_timeout = True

# Autograding always runs the quick version of a chapter, headless: notebooks call
# utils.runtime.resolve_fast(FAST), which honours COURSE_FAST=1. The kernel inherits this
# process's environment, so set it here (utils.runtime.headless_env) when this is an autograde run.
if "autograde" in sys.argv:
    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))
    from utils.runtime import headless_env
    os.environ.update(headless_env(fast=True))

# ---- generating the student versions
# Tag each exercise stub and autograded test cell with nbval's `raises-exception`, so that
# `pytest --nbval-lax chapters/` accepts errors there and nowhere else (utils/course/sync.py).
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))
try:
    from nbgrader.converters.generate_assignment import GenerateAssignment
    from utils.course.sync import expected_errors_preprocessor
except ImportError as exc:  # a copy of this file without the course's utils/ next to it
    print(f"nbgrader_config.py: student versions will lack the raises-exception tags ({exc}); "
          "run nbgrader from the course folder or use `python -m utils.course sync`", file=sys.stderr)
else:
    c.GenerateAssignment.preprocessors = (GenerateAssignment.preprocessors.make_dynamic_default()
                                          + [expected_errors_preprocessor()])
