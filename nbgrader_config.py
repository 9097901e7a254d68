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

# ---- learners' code runs in the course's sandbox, under bounded resources (INSTRUCTORS.md,
# "Sandboxed autograding"): every `nbgrader autograde`, from the command line or from Formgrader's
# Autograde button, executes submissions through utils.course.nbgrader_sandbox.SandboxedExecute
# instead of nbgrader's own Execute. Where bubblewrap cannot run, grading refuses and says why.
# The explicit opt-out: c.SandboxedExecute.sandbox = "off" here, or COURSE_SANDBOX=off in the
# environment (learner code then runs with your account's rights; every notebook logs a warning).
c.Autograde.autograde_preprocessors = [
    "utils.course.nbgrader_sandbox.SandboxedExecute", "nbgrader.preprocessors.IgnorePattern",
    "nbconvert.preprocessors.ClearMetadataPreprocessor", "nbgrader.preprocessors.LimitOutput",
    "nbgrader.preprocessors.SaveAutoGrades", "nbgrader.preprocessors.AssignLatePenalties",
    "nbgrader.preprocessors.CheckCellMetadata"]  # = utils.course.nbgrader_sandbox.PREPROCESSORS
c.SandboxedExecute.timeout = c.Execute.timeout
c.SandboxedExecute.sandbox = "require"
# Bounds per submission (defaults in utils/course/sandbox_limits.py; sizes like "4G", "512M"):
# c.SandboxedExecute.memory_limit = "4G"      # per process, and for the whole sandbox where a
#                                             # cgroup can be made (default: RAM / 4, >= 2 GiB)
# c.SandboxedExecute.process_limit = 256      # processes and threads
# c.SandboxedExecute.file_size_limit = "512M" # the largest file a cell may write
# c.SandboxedExecute.scratch_limit = "1G"     # working folder + home + /tmp (and /dev/shm again)
# c.SandboxedExecute.cpu_limit = 1800         # CPU seconds of the kernel per notebook
# c.SandboxedExecute.output_limit = "1M"      # outputs kept per cell in the graded notebook

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
