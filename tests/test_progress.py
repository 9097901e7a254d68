"""``python -m utils.course progress``: the learner's dashboard over every chapter notebook.

A toy course with three chapters (written by the tests, so grading stays cheap) and a
learner's folder holding a mix: one chapter partly done (one exercise wrong, the written answer
written), one complete, one untouched, and one chapter whose notebook is missing. The
dashboard must give each chapter's exact points, the exercises left and the written answers
waiting for a person, grading two chapters at a time.
"""
from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys

import pytest

from conftest import REPO, other_solution, set_answer, write_toy_course
from utils.course.notebooks import fill_answers, read_notebook, solution_path, write_notebook
from utils.course.progress import ChapterProgress, format_progress


def _renamed(nb, suffix: str):
    """A copy of a toy chapter whose grade ids and cell ids carry ``suffix`` (a distinct chapter)."""
    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader")
        if meta and "grade_id" in meta:
            meta["grade_id"] += suffix
        cell.id = f"{cell.id}{suffix}"
    return nb


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """(course root, learner folder) with chapters 01_toy, 02_other, 03_more and 04_gone."""
    from utils.course.sync import sync

    root = write_toy_course(tmp_path_factory.mktemp("progress-course"))
    write_notebook(_renamed(other_solution(), "-3"), solution_path(root, "03_more"))
    write_notebook(_renamed(other_solution(), "-4"), solution_path(root, "04_gone"))
    sync(root)
    mine = tmp_path_factory.mktemp("learner") / "chapters"
    shutil.copytree(root / "chapters", mine)

    def work(ch, change):
        path = mine / ch / f"{ch}.ipynb"
        write_notebook(change(read_notebook(path), read_notebook(solution_path(root, ch))), path)

    # 01_toy: everything answered, the written answer too, but square is wrong (3 of 6 points)
    work("01_toy", lambda nb, sol: set_answer(fill_answers(nb, sol), "ex-square",
                                              "def square(x):\n    return 2 * x"))
    work("02_other", lambda nb, sol: fill_answers(nb, sol))  # complete; 03_more stays untouched
    (mine / "04_gone" / "04_gone.ipynb").unlink()
    return root, mine


def _progress(*args, timeout=900):
    env = dict(os.environ, COURSE_FAST="1", OMP_NUM_THREADS="1")
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    return subprocess.run([sys.executable, "-m", "utils.course", *map(str, args)], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def dashboard(course):
    root, mine = course
    proc = _progress("--root", root, "progress", "--chapters", mine, "--jobs", 2, "--json")
    return proc, {r["chapter"]: r for r in json.loads(proc.stdout)}


def test_every_chapter_has_a_row_with_exact_points(dashboard):
    proc, rows = dashboard
    assert list(rows) == ["01_toy", "02_other", "03_more", "04_gone"], proc.stdout
    assert (rows["01_toy"]["points"], rows["01_toy"]["max_points"]) == (3, 6)
    assert (rows["02_other"]["points"], rows["02_other"]["max_points"]) == (2, 2)
    assert (rows["03_more"]["points"], rows["03_more"]["max_points"]) == (0, 2)


def test_exercises_left_and_written_answers(dashboard):
    _, rows = dashboard
    assert rows["01_toy"]["exercises_left"] == ["test-square"]
    assert rows["01_toy"]["written_to_review"] == ["written-why"]
    assert rows["01_toy"]["written_missing"] == []
    assert rows["02_other"]["exercises_left"] == []
    assert rows["03_more"]["exercises_left"] == ["test-mul-3"]


def test_missing_notebook_is_a_row_not_a_crash(dashboard):
    proc, rows = dashboard
    assert proc.returncode == 1, proc.stderr  # something could not be graded
    assert "no notebook" in rows["04_gone"]["error"]
    assert all(not rows[ch]["error"] for ch in ("01_toy", "02_other", "03_more"))


def test_untouched_written_answer_counts_as_not_written(course):
    """The released (untouched) 01_toy graded alone: its written answer is 'not yet', 0 points."""
    root, _ = course
    proc = _progress("--root", root, "progress", "--only", "01", "--json")
    assert proc.returncode == 0, proc.stderr
    (row,) = json.loads(proc.stdout)
    assert row["chapter"] == "01_toy" and row["points"] == 0
    assert row["written_missing"] == ["written-why"] and row["written_to_review"] == []
    assert row["exercises_left"] == ["test-add", "test-q1", "test-square"]


def test_table_format():
    rows = [ChapterProgress("01_a", "a.ipynb", 3, 6, ["test-x"], ["written-y"], []),
            ChapterProgress("02_b", "b.ipynb", 2, 2, [], [], ["written-z"]),
            ChapterProgress("03_c", "c.ipynb", error="no notebook")]
    lines = format_progress(rows).splitlines()
    assert lines[0].split()[:2] == ["chapter", "points"]
    assert lines[2].split()[:5] == ["01_a", "3/6", "1:", "test-x", "1:"]
    assert lines[3].split()[:3] == ["02_b", "2/2", "-"]
    assert lines[4].split()[:3] == ["03_c", "error", "no"]
    assert lines[5].split()[:5] == ["total", "5/8", "1", "1", "1"]


def test_bad_folder_is_a_clear_error(tmp_path):
    proc = _progress("progress", "--chapters", tmp_path / "nowhere")
    assert proc.returncode == 2
    assert "no such folder" in proc.stderr and "What to do" in proc.stderr, proc.stderr
