"""Bad submissions in a class (``course autograde``): each is named, nothing else is lost.

One real nbgrader course folder with the toy chapter 01_toy (add 2 points, q1 1, square 3) and a
class of eight: an honest learner, a cell that sleeps past the per-cell limit, invalid JSON, the
notebook of another chapter, edited and deleted locked cells, duplicated cell ids with a pasted
answer cell, a 200 MB notebook and a notebook handed in under a name with spaces and non-ASCII
characters. The first grading run is killed halfway (during the second learner): the gradebook
must hold the first learner complete and nothing of the second. The rerun grades everyone.
"""
from __future__ import annotations

import copy
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO, set_answer
from utils.course.notebooks import (fill_answers, nbgrader_meta, read_notebook, release_path,
                                    solution_path, write_notebook)
from utils.course.sandbox import sandbox_status

pytestmark = pytest.mark.skipif(not sandbox_status()[0], reason=f"no sandbox here: {sandbox_status()[1]}")
CH = "01_toy"
FULL = {"test-add": 2, "test-q1": 1, "test-square": 3}
ODD_NAME = "01 toy – copie ü.ipynb"


def _huge(path: Path, megabytes: int = 200) -> None:
    """A valid notebook of ``megabytes`` MB (one enormous markdown cell), written in chunks."""
    chunk = "a" * (1 << 20)
    with open(path, "w") as f:
        f.write('{"cells": [{"cell_type": "markdown", "id": "big", "metadata": {}, "source": "')
        for _ in range(megabytes):
            f.write(chunk)
        f.write('"}], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}\n')


def _class(toy_root) -> dict:
    sol, rel = read_notebook(solution_path(toy_root, CH)), read_notebook(release_path(toy_root, CH))
    correct = fill_answers(rel, sol)
    sleeper = set_answer(fill_answers(rel, sol), "ex-add", "import time\ntime.sleep(60)\ndef add(a, b):\n"
                                                             "    return a + b")
    locked = fill_answers(rel, sol)
    set_answer(locked, "ex-add", "def add(a, b):\n    return a - b")
    set_answer(locked, "test-add", "pass  # no tests here")
    locked.cells = [c for c in locked.cells if nbgrader_meta(c).get("grade_id") != "test-square"]
    dup = fill_answers(rel, sol)
    i = next(i for i, c in enumerate(dup.cells) if nbgrader_meta(c).get("grade_id") == "ex-square")
    dup.cells.insert(i + 1, copy.deepcopy(dup.cells[i]))           # pasted answer, same cell id too
    other = fill_answers(read_notebook(release_path(toy_root, "02_other")),
                         read_notebook(solution_path(toy_root, "02_other")))
    return {"a_honest": correct, "b_sleeper": sleeper, "c_bad_json": "{ this is not json",
            "d_other": other, "e_locked": locked, "f_dup": dup, "g_huge": "huge", "h_named": correct}


#: student -> expected gradebook points (None: not graded) and words its result must show
EXPECTED = {
    "a_honest": (FULL, ""),
    "b_sleeper": ({"test-add": 0, "test-q1": 1, "test-square": 3}, ""),
    "c_bad_json": (None, "invalid JSON"),
    "d_other": (None, "no exercise of any chapter"),
    "e_locked": ({"test-add": 0, "test-q1": 1, "test-square": 3}, "'test-square' is missing"),
    "f_dup": (FULL, "was used by several cells"),
    "g_huge": (None, "at most 64 MiB"),
    "h_named": (FULL, f"handed in as {ODD_NAME!r}"),
}


def _gradebook(course: Path) -> dict:
    """student -> {grade id: auto score} of every submission in the gradebook (plain SQL)."""
    with sqlite3.connect(course / "gradebook.db") as db:
        rows = db.execute("select student.id, base_cell.name, grade.auto_score from grade "
                          "join base_cell on grade.cell_id = base_cell.id "
                          "join submitted_notebook on grade.notebook_id = submitted_notebook.id "
                          "join submitted_assignment on submitted_notebook.assignment_id = submitted_assignment.id "
                          "join student on submitted_assignment.student_id = student.id").fetchall()
    out: dict = {}
    for student, cell, score in rows:
        if cell.startswith("test-"):
            out.setdefault(student, {})[cell] = score
    return out


@pytest.fixture(scope="module")
def graded_class(toy_root, tmp_path_factory):
    from utils.course.autograde import autograde_course
    from utils.course.nbgrader_course import TempCourse

    base = tmp_path_factory.mktemp("bad-class")
    course = TempCourse(toy_root, workdir=base / "course", timeout=8)
    course.add_chapter(CH)
    course.generate(db=True)
    learners = _class(toy_root)
    for student, nb in learners.items():
        target = course.submit(student, CH, learners["a_honest"])
        if isinstance(nb, str) and nb == "huge":
            _huge(target)
        elif isinstance(nb, str):
            target.write_text(nb)
        elif student == "f_dup":
            target.write_text(json.dumps(nb))  # raw: nbformat would rename the duplicated id
        else:
            write_notebook(nb, target)
        if student == "h_named":
            target.rename(target.with_name(ODD_NAME))
    path = course.path
    submitted = {p: p.read_bytes() for p in (path / "submitted").rglob("*.ipynb") if p.stat().st_size < 1e7}

    # 1. a run killed while it grades the second learner
    tmp = base / "tmp"
    tmp.mkdir()
    env = dict(os.environ, PYTHONPATH=str(REPO), TMPDIR=str(tmp))
    proc = subprocess.Popen([sys.executable, "-m", "utils.course", "autograde", CH, "--course-dir", str(path),
                             "--timeout", "8"], cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    end = time.monotonic() + 300
    while not list(tmp.glob("course-autograde-*/submitted/b_sleeper")) and proc.poll() is None \
            and time.monotonic() < end:
        time.sleep(0.2)
    time.sleep(2)  # the second learner's notebook is running now (its first answer sleeps)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    after_kill = _gradebook(path)

    # 2. the rerun
    results = autograde_course(path, CH, timeout=8)
    yield {"path": path, "after_kill": after_kill, "results": {r.student: r for r in results},
           "gradebook": _gradebook(path), "submitted": submitted}
    shutil.rmtree(base, ignore_errors=True)  # the 200 MB notebook goes with it


def test_a_run_killed_halfway_leaves_each_submission_as_it_was_or_complete(graded_class):
    after = graded_class["after_kill"]
    assert after.get("a_honest") == FULL, after
    assert "b_sleeper" not in after, after


@pytest.mark.parametrize("student", list(EXPECTED))
def test_each_bad_submission_is_named_and_the_rest_is_graded(student, graded_class):
    points, words = EXPECTED[student]
    result = graded_class["results"][student]
    text = result.format()
    assert result.graded is (points is not None), text
    assert graded_class["gradebook"].get(student) == points, (graded_class["gradebook"], text)
    assert words in text, text


def test_the_learners_files_are_left_as_they_were(graded_class):
    for path, data in graded_class["submitted"].items():
        assert path.read_bytes() == data, path
    assert not list(graded_class["path"].glob(".gradebook.db.autograde-*"))


def test_learner_self_grading_refuses_a_huge_notebook_before_reading_it(toy_root, tmp_path):
    from utils.course.grading import grade_notebooks
    from utils.errors import CourseError

    path = tmp_path / f"{CH}.ipynb"
    _huge(path, 70)
    try:
        with pytest.raises(CourseError, match="at most 64 MiB.*What to do"):
            grade_notebooks([path], root=toy_root)
    finally:
        path.unlink()
