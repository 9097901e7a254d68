"""Attacks a learner could try to get points without the work, against a small toy chapter.

The tests write the toy chapter ``99_toy`` themselves (two exercises, 3 points, and a final
``integrity-check`` cell), generate its student version with nbgrader, fill in the right
answers and then replace one answer with an attack. Each attack must gain no points (the
exercise it targets scores what an honest wrong answer scores, or the whole chapter 0 when the
kernel was tampered with), the report must say what happened, and the learner's file must be
byte-for-byte unchanged.

The toy chapter's tests use the protection pattern the real chapters use (references bound in
a locked cell before any learner code runs, exact type checks, a call-recording delegation
check, a final locked integrity check); the grader adds what only the outside can do (the
sandbox, the kernel-machinery watch after every cell, scores computed from the executed cells).
"""
from __future__ import annotations

import copy
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell

from conftest import REPO, _answer, _notebook, _params, _test, set_answer
from utils.course.notebooks import (fill_answers, nbgrader_meta, read_notebook, release_path,
                             solution_path, write_notebook)
from utils.course.sandbox import sandbox_status

CHAPTER = "99_toy"
POINTS = {"test-mean": 2, "test-square": 1, "integrity-check": 0}
HONEST = {"test-mean": 2, "test-square": 1}
needs_sandbox = pytest.mark.skipif(not sandbox_status()[0],
                                   reason=f"no sandbox here: {sandbox_status()[1]}")

BIND_REFERENCES = '''\
# Locked: the references the tests compare with, bound before any answer runs.
import math, statistics, sys, types
_refs = types.ModuleType("_toy_refs")
_refs.isclose, _refs.float, _refs.int, _refs.type = math.isclose, float, int, type
_refs.reference_code = statistics.fmean.__code__


def _calls_reference(fn, *args):
    """fn(*args), and whether the reference statistics.fmean ran meanwhile (any alias)."""
    hits = []

    def watch(frame, event, arg):
        if event == "call" and frame.f_code is _refs.reference_code:
            hits.append(1)
    sys.setprofile(watch)
    try:
        return fn(*args), bool(hits)
    finally:
        sys.setprofile(None)


_refs.calls_reference = _calls_reference
sys.modules["_toy_refs"] = _refs
_isclose, _float, _int, _type = math.isclose, float, int, type'''

INTEGRITY = '''\
import math, sys
_r = sys.modules.get("_toy_refs")
assert _r is not None, "the bound references were removed"
assert (_isclose, _float, _int, _type, _calls_reference) == (
    _r.isclose, _r.float, _r.int, _r.type, _r.calls_reference), "a bound reference was replaced"
assert math.isclose is _r.isclose, "math.isclose was replaced"
assert sys.gettrace() is None and sys.getprofile() is None, "a trace or profile hook is set"'''


def toy_solution():
    bind = new_code_cell(BIND_REFERENCES, id="bind-references", metadata={"nbgrader": dict(
        schema_version=3, task=False, grade=False, solution=False, locked=True,
        grade_id="bind-references")})
    return _notebook([
        new_markdown_cell("# Toy chapter for the attack tests", id="title"),
        _params(),
        bind,
        _answer("ex-mean-answer", "ex-mean",
                "def mean(xs):\n    \"\"\"The average of a list of numbers, as a float.\"\"\"\n"
                "    ### BEGIN SOLUTION\n    return sum(xs) / len(xs)\n    ### END SOLUTION"),
        _test("test-mean", POINTS["test-mean"],
              "assert mean([1.0, 2.0]) == 1.5\n### BEGIN HIDDEN TESTS\n"
              "_r, _delegated = _calls_reference(mean, [1.0, 2.0, 4.0])\n"
              "assert not _delegated, (\"this exercise asks you to write mean yourself; calling \"\n"
              "                        \"statistics.fmean is not allowed here\")\n"
              "assert _type(_r) is _float, f\"mean must return a float, found {_type(_r).__name__}\"\n"
              "assert _isclose(_r, 7 / 3), \"mean([1, 2, 4]) should be 7/3\"\n### END HIDDEN TESTS"),
        _answer("ex-square-answer", "ex-square",
                "def square(x):\n    ### BEGIN SOLUTION\n    return x * x\n    ### END SOLUTION"),
        _test("test-square", POINTS["test-square"],
              "assert square(2) == 4\n### BEGIN HIDDEN TESTS\n_r = square(-3)\n"
              "assert _type(_r) is _int and _r == 9, \"square(-3) should be the int 9\"\n"
              "### END HIDDEN TESTS"),
        _test("integrity-check", POINTS["integrity-check"], INTEGRITY),
    ])


# --------------------------------------------------------------------------- the attacks
ATTACK_MARK = "toy-attack-detached-7f3a"

SEARCH = '''\
import os


def _secret_files():
    """Files a grader must hide: gradebooks, solution notebooks, the learner's other files."""
    hits = []
    for top in ("/", "/tmp", os.path.expanduser("~")):
        for d, dirs, files in os.walk(top):
            if d.startswith(("/proc", "/sys", "/dev", "/usr", "/lib", "/etc")) or \\
                    "site-packages" in d or ".pyenv" in d:
                dirs[:] = []
                continue
            for f in files:
                p = os.path.join(d, f)
                if f in ("gradebook.db", "my_other_work.txt") or (
                        f.endswith(".ipynb") and "solutions" in p):
                    hits.append(p)
    return hits
'''

DETACHED = '''
import os, sqlite3, sys, time
end = time.time() + 40
while time.time() < end:
    for top in ("/", "/tmp"):
        for d, dirs, files in os.walk(top):
            if d.startswith(("/proc", "/sys", "/dev", "/usr")) or "site-packages" in d:
                dirs[:] = []
                continue
            if "gradebook.db" in files:
                try:
                    db = sqlite3.connect(os.path.join(d, "gradebook.db"))
                    db.execute("update grade set auto_score = 99")
                    db.commit()
                except Exception:
                    pass
    time.sleep(0.5)
'''

#: attack name -> (source of the ex-mean answer cell, expected points, words the report must show)
ATTACKS = {
    "delegation": (
        "import statistics\n\ndef mean(xs, _f=statistics.fmean):\n    return _f(xs)",
        {"test-mean": 0, "test-square": 1}, "this exercise asks you to write mean yourself"),
    "transformer": (
        "def _blank_tests(lines):\n    return ['pass\\n'] if any('assert' in ln for ln in lines) else lines\n"
        "get_ipython().input_transformers_cleanup.append(_blank_tests)\n\n"
        "def mean(xs):\n    return 0.0",
        {"test-mean": 0, "test-square": 0}, "integrity check failed"),
    "monkeypatch": (
        "import math\nmath.isclose = lambda *a, **k: True\n_isclose = math.isclose\n\n"
        "def mean(xs):\n    return 1.5  # right for the visible test only",
        {"test-mean": 0, "test-square": 0}, "integrity check failed"),
    "always_equal": (
        "class _Yes(float):\n    def __eq__(self, other):\n        return True\n\n"
        "def mean(xs):\n    return _Yes(0.0)",
        {"test-mean": 0, "test-square": 1}, "mean must return a float"),
    "read_secrets": (
        SEARCH + "SECRETS = _secret_files()\n\n\ndef mean(xs):\n"
        "    if SECRETS:  # the hidden tests and answers are readable: copy the answer\n"
        "        return sum(xs) / len(xs)\n"
        "    raise NotImplementedError('nothing to copy')",
        {"test-mean": 0, "test-square": 1}, "not answered yet"),
    "detached_rewrite": (
        f"import subprocess, sys\nsubprocess.Popen([sys.executable, '-c', {DETACHED!r}, "
        f"{ATTACK_MARK!r}],\n                 start_new_session=True, stdout=subprocess.DEVNULL, "
        "stderr=subprocess.DEVNULL)\n\ndef mean(xs):\n    return 1.5",
        {"test-mean": 0, "test-square": 1}, "mean([1, 2, 4]) should be 7/3"),
    "os_exit": (
        "import os\nos._exit(0)",
        {"test-mean": 0, "test-square": 1}, "'ex-mean' ended the kernel"),
    "ignore_interrupt": (
        "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass",
        {"test-mean": 0, "test-square": 1}, "'ex-mean' ran past the time limit"),
}


@pytest.fixture(scope="module")
def toy_attack_root(tmp_path_factory):
    from utils.course.sync import sync

    root = tmp_path_factory.mktemp("attack-course")
    write_notebook(toy_solution(), solution_path(root, CHAPTER))
    sync(root)
    return root


def _correct(root):
    return fill_answers(read_notebook(release_path(root, CHAPTER)),
                        read_notebook(solution_path(root, CHAPTER)))


def _duplicated(root):
    """The square answer cell pasted twice (same grade id)."""
    nb = _correct(root)
    i = next(i for i, c in enumerate(nb.cells) if nbgrader_meta(c).get("grade_id") == "ex-square")
    copy_cell = copy.deepcopy(nb.cells[i])
    copy_cell["id"] = "pasted-copy"
    nb.cells.insert(i + 1, copy_cell)
    return nb


@pytest.fixture(scope="module")
def attack_reports(toy_attack_root, tmp_path_factory):
    """kind -> GradeReport for every attack (one grading run) plus the honest notebook;
    ``_bytes``/``_files``: the learners' files before grading and their paths."""
    from utils.course.grading import grade_notebooks

    folder = tmp_path_factory.mktemp("attack-learners")
    notebooks = {"honest": _correct(toy_attack_root), "duplicated": _duplicated(toy_attack_root)}
    for kind, (source, _, _) in ATTACKS.items():
        notebooks[kind] = set_answer(_correct(toy_attack_root), "ex-mean", source)
    files = {}
    for kind, nb in notebooks.items():
        files[kind] = folder / kind / f"{CHAPTER}.ipynb"
        write_notebook(nb, files[kind])
        (files[kind].parent / "my_other_work.txt").write_text("the learner's other files\n")
    before = {k: p.read_bytes() for k, p in files.items()}
    reports = grade_notebooks([files[k] for k in notebooks], root=toy_attack_root, timeout=20)
    out = dict(zip(notebooks, reports))
    out["_bytes"], out["_files"] = before, files
    return out


def _auto(report):
    return {e.grade_id: e.points for e in report.autograded if e.grade_id != "integrity-check"}


def _text(report):
    return report.format()


@needs_sandbox
def test_honest_notebook_scores_full_points_in_the_sandbox(attack_reports):
    report = attack_reports["honest"]
    assert _auto(report) == HONEST, _text(report)
    assert report.sandboxed is True and "sandboxed" in report.format().splitlines()[0]
    assert not any("UNSANDBOXED" in n or "tamper" in n for n in report.notes), report.notes


@needs_sandbox
@pytest.mark.parametrize("attack", list(ATTACKS))
def test_attack_gains_no_points_and_is_reported(attack, attack_reports):
    report = attack_reports[attack]
    expected, words = ATTACKS[attack][1], ATTACKS[attack][2]
    assert _auto(report) == expected, _text(report)
    assert words in _text(report), _text(report)


@needs_sandbox
def test_duplicated_answer_cell_is_named_and_the_rest_is_graded(attack_reports):
    report = attack_reports["duplicated"]
    assert _auto(report) == HONEST, _text(report)
    assert any("'ex-square' appears 2 times" in n for n in report.notes), report.notes


@needs_sandbox
def test_attacks_leave_the_learners_files_unchanged(attack_reports):
    for kind, path in attack_reports["_files"].items():
        assert path.read_bytes() == attack_reports["_bytes"][kind], f"{kind}: notebook modified"
        assert (path.parent / "my_other_work.txt").read_text() == "the learner's other files\n"


@needs_sandbox
def test_nothing_detached_survives_grading(attack_reports):
    time.sleep(1)
    proc = subprocess.run(["pgrep", "-f", ATTACK_MARK], capture_output=True, text=True)
    assert proc.stdout.strip() == "", f"a process started by an answer cell survived: {proc.stdout}"


# --------------------------------------------------------------------------- instructor autograde
def _course_dir(root, tmp_path, submissions: dict):
    """A real nbgrader course folder (kept), with ``submissions`` (student -> notebook) collected."""
    from utils.course.nbgrader_course import TempCourse

    course = TempCourse(root, workdir=tmp_path / "course")
    course.add_chapter(CHAPTER)
    course.generate(db=True)
    for student, nb in submissions.items():
        course.submit(student, CHAPTER, nb)
    return course.path


def _gradebook_scores(course_dir, student):
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course_dir / 'gradebook.db'}") as gb:
        sub = gb.find_submission_notebook(CHAPTER, CHAPTER, student)
        return {g.name: g.auto_score for g in sub.grades if g.name != "integrity-check"}


@needs_sandbox
def test_instructor_autograde_is_sandboxed_and_the_gradebook_cannot_be_rewritten(toy_attack_root, tmp_path):
    honest = _correct(toy_attack_root)
    rewrite = set_answer(_correct(toy_attack_root), "ex-mean", ATTACKS["detached_rewrite"][0])
    transformer = set_answer(_correct(toy_attack_root), "ex-mean", ATTACKS["transformer"][0])
    course_dir = _course_dir(toy_attack_root, tmp_path,
                             {"ann": honest, "bob": rewrite, "cy": transformer})
    submitted = {s: (course_dir / "submitted" / s / CHAPTER / f"{CHAPTER}.ipynb").read_bytes()
                 for s in ("ann", "bob", "cy")}
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, "-m", "utils.course", "autograde", CHAPTER,
                           "--course-dir", str(course_dir), "--timeout", "20"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    time.sleep(3)  # a detached rewriter, had it survived, would have struck by now
    assert _gradebook_scores(course_dir, "ann") == {"test-mean": 2, "test-square": 1}
    assert _gradebook_scores(course_dir, "bob") == {"test-mean": 0, "test-square": 1}
    assert _gradebook_scores(course_dir, "cy") == {"test-mean": 0, "test-square": 0}
    assert "integrity check failed" in proc.stdout, proc.stdout
    assert subprocess.run(["pgrep", "-f", ATTACK_MARK], capture_output=True).stdout == b""
    for s, data in submitted.items():
        assert (course_dir / "submitted" / s / CHAPTER / f"{CHAPTER}.ipynb").read_bytes() == data


def test_instructor_autograde_refuses_to_run_unsandboxed(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO), COURSE_SANDBOX="off")
    proc = subprocess.run([sys.executable, "-m", "utils.course", "autograde", CHAPTER,
                           "--course-dir", str(tmp_path)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "sandbox" in proc.stderr and "--unsafe" in proc.stderr, proc.stderr


# --------------------------------------------------------------------------- nbgrader's own autograde
ESCAPE_MARK = "toy-attack-escape-91c2"


def _escape(course_dir):
    """An answer that looks for the gradebook and solutions (to copy the answer) and tries to
    leave files in the course folder, the submissions, the home folder and /tmp."""
    targets = [str(course_dir), str(course_dir / "submitted"), "~", "/tmp", "/srv"]
    return (SEARCH + f"for t in {targets!r}:\n    try:\n"
            f"        with open(os.path.join(os.path.expanduser(t), {ESCAPE_MARK + '.txt'!r}), 'w') as f:\n"
            "            f.write('pwned')\n    except OSError:\n        pass\n"
            "SECRETS = _secret_files()\n\n\ndef mean(xs):\n    if SECRETS:\n"
            "        return sum(xs) / len(xs)\n    raise NotImplementedError('nothing to copy')")


FORMGRADER_BUTTON = '''
import json, os, sys
from nbgrader.apps import NbGrader
from nbgrader.apps.api import NbGraderAPI
from nbgrader.coursedir import CourseDirectory
app = NbGrader()                      # what the formgrader extension loads: ./nbgrader_config.py
app.load_cwd_config = True
app.load_config_file()
api = NbGraderAPI(CourseDirectory(parent=app), parent=app)  # as BaseHandler.api builds it
print(json.dumps(api.autograde(sys.argv[1], sys.argv[2])))  # what AutogradeHandler returns
'''


def _escaped_files(course_dir):
    import tempfile

    places = [course_dir, Path(os.path.expanduser("~")), Path(tempfile.gettempdir()), Path("/srv")]
    return [str(p) for place in places if place.is_dir()
            for p in (place.rglob(f"{ESCAPE_MARK}*") if place == course_dir else place.glob(f"{ESCAPE_MARK}*"))]


@needs_sandbox
def test_nbgraders_own_autograde_and_formgraders_button_run_learner_code_sandboxed(toy_attack_root, tmp_path):
    """No unsandboxed path by default: plain `nbgrader autograde` on the command line and the call
    Formgrader's Autograde button makes both execute through the course's nbgrader_config.py."""
    course_dir = tmp_path / "course"
    course_dir.mkdir()
    hostile = set_answer(_correct(toy_attack_root), "ex-mean", _escape(course_dir))
    _course_dir(toy_attack_root, tmp_path, {"eve": hostile, "fay": hostile, "gus": _correct(toy_attack_root)})
    env = {k: v for k, v in os.environ.items() if k != "COURSE_SANDBOX"}
    env["PYTHONPATH"] = str(REPO)
    cli = subprocess.run([sys.executable, "-m", "nbgrader", "autograde", CHAPTER, "--force", "--student=eve"],
                         cwd=course_dir, env=env, capture_output=True, text=True, timeout=600)
    assert cli.returncode == 0, cli.stdout + cli.stderr
    for student in ("fay", "gus"):
        button = subprocess.run([sys.executable, "-c", FORMGRADER_BUTTON, CHAPTER, student], cwd=course_dir,
                                env=env, capture_output=True, text=True, timeout=600)
        assert button.returncode == 0 and '"success": true' in button.stdout, button.stdout + button.stderr
    assert _gradebook_scores(course_dir, "eve") == {"test-mean": 0, "test-square": 1}
    assert _gradebook_scores(course_dir, "fay") == {"test-mean": 0, "test-square": 1}
    assert _gradebook_scores(course_dir, "gus") == {"test-mean": 2, "test-square": 1}
    assert _escaped_files(course_dir) == []


def test_nbgraders_own_autograde_refuses_without_bubblewrap_and_says_what_to_do(toy_attack_root, tmp_path):
    _course_dir(toy_attack_root, tmp_path, {"eve": _correct(toy_attack_root)})
    env = {k: v for k, v in os.environ.items() if k != "COURSE_SANDBOX"}
    env.update(PYTHONPATH=str(REPO), PATH=os.path.dirname(sys.executable))  # no bwrap on PATH
    proc = subprocess.run([sys.executable, "-m", "nbgrader", "autograde", CHAPTER, "--force"],
                          cwd=tmp_path / "course", env=env, capture_output=True, text=True, timeout=600)
    text = proc.stdout + proc.stderr
    assert proc.returncode != 0, text
    assert "bubblewrap is not installed" in text and "COURSE_SANDBOX=off" in text, text


def test_the_course_config_puts_the_sandboxed_executor_in_place():
    from traitlets.config.loader import PyFileConfigLoader

    from utils.course.nbgrader_sandbox import PREPROCESSORS

    cfg = PyFileConfigLoader("nbgrader_config.py", path=str(REPO)).load_config()
    assert list(cfg.Autograde.autograde_preprocessors) == PREPROCESSORS
    assert cfg.SandboxedExecute.sandbox == "require"
