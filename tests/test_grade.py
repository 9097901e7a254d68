"""``python -m utils.course grade``: exact points, clear messages, the learner's file untouched.

Graded on the toy chapter (correct, untouched, partly wrong, tampered locked cells, another
chapter's notebook, an endless loop) and, through the round-trip fixture, on every real chapter.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from conftest import REPO, TOY_EXPECTED, chapter_params


def _course(*args, timeout=900):
    env = dict(os.environ, COURSE_FAST="1", OMP_NUM_THREADS="2")
    return subprocess.run([sys.executable, "-m", "utils.course", *map(str, args)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("kind", list(TOY_EXPECTED))
def test_toy_grade_exact_points(kind, toy_reports):
    report = toy_reports[kind]
    got = {e.grade_id: e.points for e in report.autograded}
    assert got == TOY_EXPECTED[kind], report.format()
    assert report.total == sum(TOY_EXPECTED[kind].values())


def test_grading_never_modifies_the_learners_file(toy_reports, toy_learner_files):
    for kind, data in toy_reports["_bytes"].items():
        assert toy_learner_files[kind].read_bytes() == data, f"{kind} notebook was modified"


def test_failing_test_message_is_reported(toy_reports):
    partly = {e.grade_id: e for e in toy_reports["partly"].exercises}
    assert partly["test-square"].status == "failed"
    assert partly["test-square"].message == "AssertionError: square(-3) should be 9"
    untouched = {e.grade_id: e for e in toy_reports["untouched"].exercises}
    assert "not answered yet" in untouched["test-add"].message


def test_edited_and_deleted_locked_cells_are_reported_and_restored(toy_reports):
    report = toy_reports["tampered"]
    notes = " ".join(report.notes)
    assert "locked cell 'test-add' was edited" in notes
    assert "locked cell 'test-square' is missing" in notes
    # the original tests ran: the wrong answers lost their points, the right one kept them
    assert report.points()["test-add"] == 0 and report.points()["test-square"] == 0
    assert report.points()["test-q1"] == 1


def test_notebook_of_another_chapter_is_graded_as_that_chapter(toy_reports):
    report = toy_reports["other"]
    assert report.chapter == "02_other"
    assert any("named like chapter 01_toy" in n and "belong to chapter 02_other" in n
               for n in report.notes)


def test_report_format_and_json(toy_reports):
    report = toy_reports["partly"]
    lines = report.format().splitlines()
    assert any(ln.split()[:3] == ["test-add", "2/2", "passed"] for ln in lines), lines
    assert any(ln.split()[:2] == ["test-square", "0/3"] and "square(-3) should be 9" in ln
               for ln in lines), lines
    assert any(ln.split()[:2] == ["written-why", "-/2"] for ln in lines), lines
    assert "Autograded total: 3/6" in lines
    data = json.loads(json.dumps(report.to_dict()))
    assert (data["total"], data["max_total"], data["chapter"]) == (3, 6, "01_toy")


def test_cli_grade_endless_loop_hits_the_cell_time_limit(toy_root, toy_learner_files):
    """The CLI end to end, with a per-cell limit passed as an option: the loop is interrupted,
    reported, and the other exercises are still graded; the file is left as it was."""
    path = toy_learner_files["looping"]
    before = path.read_bytes()
    proc = _course("--root", toy_root, "grade", path, "--timeout", 10)
    assert proc.returncode == 0, proc.stderr
    rows = {ln.split()[0]: ln for ln in proc.stdout.splitlines() if ln.startswith("  test-")}
    assert rows["test-add"].split()[1:3] == ["0/2", "timeout:"], proc.stdout
    assert "per-cell time limit of 10 s" in rows["test-add"]
    assert rows["test-q1"].split()[1:3] == ["1/1", "passed"], proc.stdout
    assert rows["test-square"].split()[1:3] == ["3/3", "passed"], proc.stdout
    assert "Autograded total: 4/6" in proc.stdout
    assert path.read_bytes() == before


@pytest.mark.parametrize("content, expected", [
    (None, "no such file"),
    ("print('a script, not a notebook')\n", "not JSON"),
    ('{"just": "json"}', "JSON of another kind"),
])
def test_cli_grade_bad_files(tmp_path, toy_root, content, expected):
    path = tmp_path / "01_toy.ipynb"
    if content is not None:
        path.write_text(content)
    proc = _course("--root", toy_root, "grade", path)
    assert proc.returncode == 2
    assert expected in proc.stderr and "What to do" in proc.stderr, proc.stderr


def test_cli_grade_notebook_of_no_chapter(tmp_path, toy_root):
    from nbformat.v4 import new_code_cell, new_notebook

    from utils.course.notebooks import write_notebook

    path = tmp_path / "my_notes.ipynb"
    write_notebook(new_notebook(cells=[new_code_cell("x = 1", id="x")]), path)
    proc = _course("--root", toy_root, "grade", path)
    assert proc.returncode == 2
    assert "no nbgrader exercise cells" in proc.stderr and "What to do" in proc.stderr


@pytest.mark.parametrize("chapter", chapter_params())
def test_chapter_grade_reports_exact_points(chapter, roundtrip):
    """`course grade` (the same function) on the solution, untouched and one-wrong notebooks."""
    r = roundtrip(chapter)
    full = r["solution"].max_total
    lost = sum(e.max_points for e in r["solution"].autograded if e.grade_id in r["lost"])
    assert (r["solution"].total, r["untouched"].total, r["one_wrong"].total) == (full, 0, full - lost)
    assert all(not n.startswith("locked cell") for n in r["solution"].notes), r["solution"].notes
    failing = [e for e in r["one_wrong"].autograded if e.points == 0 and e.max_points > 0]
    assert all(e.message for e in failing), "every lost exercise must say why"
