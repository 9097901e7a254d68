"""The hidden tests catch the catalogued wrong answers (issue 12, item 6).

``tests/wrong_answers/<chapter>.py`` lists, for every autograded exercise, at least three plausible
wrong answers; :func:`utils.course.check_tests.check_chapter` autogrades them (a few notebooks per chapter,
one nbgrader run) and checks that each loses exactly its test cells' points while every other
exercise keeps full points; in both editions (the Chinese student version ``chapters_zh/`` must
grade every row exactly as the English one). The same check is ``python -m utils.course
check-tests NN [--lang zh]``.
"""
import ast

import pytest

from utils.course.check_tests import (MIN_PER_EXERCISE, WrongAnswer, autograded_answers, check_chapter,
                               load_catalogue, plan_batches)
from utils.course.notebooks import PROJECT_ROOT, find_chapters

CHAPTERS = find_chapters(PROJECT_ROOT)


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_catalogue_covers_every_exercise(chapter):
    rows = load_catalogue(PROJECT_ROOT, chapter)          # raises on unknown cells or malformed rows
    for answer in autograded_answers(PROJECT_ROOT, chapter):
        mine = [r for r in rows if r.answer_id == answer]
        assert len(mine) >= MIN_PER_EXERCISE, f"{chapter} {answer}: {len(mine)} wrong answers catalogued"
        assert len({r.source.strip() for r in mine}) == len(mine), f"{chapter} {answer}: duplicate rows"
    for r in rows:
        ast.parse(r.source)   # a wrong answer, not a syntax error (that would prove nothing)
    # a few notebooks per chapter keep CI time bounded
    assert len(plan_batches(rows)) <= 4, f"{chapter}: {len(plan_batches(rows))} notebooks to grade"


def test_plan_batches_one_wrong_answer_per_exercise():
    row = lambda a, s, solo=False: WrongAnswer("c", a, s, s, ("t",), solo)
    rows = [row("x", "1"), row("x", "2"), row("y", "3"), row("y", "4", True), row("z", "5"), row("x", "6")]
    batches = plan_batches(rows)
    assert [[r.label for r in b] for b in batches] == [["1", "3", "5"], ["2"], ["4"], ["6"]]
    for b in batches:
        assert len({r.answer_id for r in b}) == len(b)


@pytest.mark.parametrize("lang", ["en", "zh"])
@pytest.mark.parametrize("chapter", CHAPTERS)
def test_hidden_tests_catch_every_catalogued_wrong_answer(chapter, lang, tmp_path):
    """Every row caught, nothing else lost, in both editions: the Chinese student version has the
    same code cells and grade ids, so the same wrong answers must grade exactly as in English."""
    result = check_chapter(PROJECT_ROOT, chapter, workdir=tmp_path, lang=lang)
    print(result.format())
    assert result.ok, result.format()
