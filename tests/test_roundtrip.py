"""nbgrader round trip in a temporary course and gradebook.

The solution notebook scores full autograded points, the untouched student notebook scores
zero without crashing the grader, and a notebook with one answer left as the stub loses
exactly the points of that answer's test cells. Checked for every real chapter and for the
toy chapter the tests write themselves, and for every chapter's Chinese edition (``chapters_zh/``):
its solution, untouched and one-wrong notebooks, graded in the same nbgrader run as the English
ones, score exactly what the English ones score, test cell by test cell (the catalogue of wrong
answers in both editions: ``tests/test_wrong_answers.py``).
"""
from __future__ import annotations

import pytest

from conftest import TOY_POINTS, chapter_params
from utils.course.grading import GradeReport


def _check_roundtrip(solution: GradeReport, untouched: GradeReport, one_wrong: GradeReport,
                     lost: list[str], name: str) -> None:
    auto = {e.grade_id: e for e in solution.autograded}
    assert auto, f"{name}: no autograded test cells found"
    assert solution.total == solution.max_total > 0, \
        f"{name}: the solution notebook must get full points:\n{solution.format()}"

    assert {e.grade_id for e in untouched.autograded} == set(auto), \
        f"{name}: every test cell must be graded for the untouched notebook"
    assert untouched.total == 0, \
        f"{name}: the untouched student notebook must get 0 points:\n{untouched.format()}"

    assert lost, f"{name}: the first answer cell has no test cell after it"
    expected = {gid: (0.0 if gid in lost else e.max_points) for gid, e in auto.items()}
    got = {e.grade_id: e.points for e in one_wrong.autograded}
    assert got == expected, (f"{name}: leaving only the first answer as the stub must cost exactly "
                             f"the points of {lost}:\n{one_wrong.format()}")


@pytest.mark.parametrize("chapter", chapter_params())
def test_chapter_roundtrip(chapter, roundtrip):
    r = roundtrip(chapter)
    _check_roundtrip(r["solution"], r["untouched"], r["one_wrong"], r["lost"], chapter)
    assert all(rep.chapter == chapter for rep in (r["solution"], r["untouched"], r["one_wrong"]))


@pytest.mark.parametrize("chapter", chapter_params())
def test_chapter_written_answers_are_not_autograded(chapter, roundtrip):
    r = roundtrip(chapter)
    for e in r["solution"].exercises:
        if e.status == "manual":
            assert e.points is None
    for e in r["untouched"].exercises:
        assert e.status != "manual" or e.points is None


def test_toy_roundtrip(toy_reports, toy_notebooks):
    assert toy_notebooks["one_wrong_lost"] == ["test-add"]
    _check_roundtrip(toy_reports["solution"], toy_reports["untouched"], toy_reports["one_wrong"],
                     toy_notebooks["one_wrong_lost"], "toy")
    assert toy_reports["solution"].max_total == sum(TOY_POINTS.values())


def test_toy_written_answer_is_graded_by_hand(toy_reports):
    for kind in ("solution", "untouched", "correct"):
        written = [e for e in toy_reports[kind].exercises if e.grade_id == "written-why"]
        assert len(written) == 1 and written[0].status == "manual" and written[0].points is None
        assert written[0].max_points == 2


def _points(report: GradeReport) -> dict:
    return {e.grade_id: (e.points, e.max_points) for e in report.autograded}


@pytest.mark.parametrize("chapter", chapter_params())
def test_chapter_roundtrip_in_chinese_grades_as_in_english(chapter, roundtrip):
    r = roundtrip(chapter)
    _check_roundtrip(r["zh_solution"], r["zh_untouched"], r["zh_one_wrong"], r["lost"], f"{chapter} (zh)")
    for kind in ("solution", "untouched", "one_wrong"):
        en, zh = r[kind], r[f"zh_{kind}"]
        assert zh.chapter == en.chapter == chapter, f"{chapter} (zh) {kind}: graded as {zh.chapter}"
        assert _points(zh) == _points(en), (f"{chapter} {kind}: the Chinese notebook must score what the "
                                            f"English one scores:\n{en.format()}\n{zh.format()}")

