"""The classroom path with nbgrader's own commands, through a temporary exchange.

The instructor releases a real chapter into a temporary exchange folder; three learners (three
student ids) fetch it and submit: one with every answer right, one with the first exercise
left as its stub, one untouched. The instructor collects, autogrades, generates and releases
feedback and exports the grades to CSV. Each learner's points are checked exercise by
exercise, in the gradebook and in the CSV, and each learner fetches their feedback.

This is the sequence INSTRUCTORS.md gives, command for command.
"""
from __future__ import annotations

import shutil

import pytest

from classroom import COURSE_ID, Instructor, classroom_chapter, learner_config, learner_env, \
    make_exchange, run_nbgrader
from conftest import first_answer
from utils.course.notebooks import fill_answers, read_notebook, write_notebook
from utils.course.notebooks import tests_of_answer as answer_tests  # not collected as a test


LEARNERS = ("ada", "ben", "cleo")  # correct, first exercise left as the stub, untouched


@pytest.fixture(scope="module")
def classroom(tmp_path_factory):
    """The whole round trip, once; yields what the tests inspect."""
    root = tmp_path_factory.mktemp("classroom")
    chapter = classroom_chapter()
    exchange = make_exchange(root / "exchange")
    teacher = Instructor(root / "course", exchange, chapter)
    teacher.release()

    release, solution = teacher.release_notebook(), teacher.solution_notebook()
    stub = first_answer(release)
    work = {"ada": lambda nb: fill_answers(nb, solution),
            "ben": lambda nb: fill_answers(nb, solution, leave_stub={stub}),
            "cleo": lambda nb: nb}
    homes, listed = {}, {}
    for student in LEARNERS:
        home = homes[student] = learner_config(root / "home" / student, exchange, student)
        env = learner_env(home)
        shown = run_nbgrader(home, "list", env=env)
        listed[student] = shown.stdout + shown.stderr
        run_nbgrader(home, "fetch_assignment", chapter, env=env)
        mine = home / chapter / f"{chapter}.ipynb"
        write_notebook(work[student](read_notebook(mine)), mine)
        run_nbgrader(home, "submit", chapter, env=env)

    teacher.collect()
    teacher.autograde()
    teacher.generate_and_release_feedback()
    for student in LEARNERS:
        run_nbgrader(homes[student], "fetch_feedback", chapter, env=learner_env(homes[student]))
    rows = teacher.export_csv()
    yield {"teacher": teacher, "chapter": chapter, "homes": homes, "listed": listed, "rows": rows,
           "lost": answer_tests(release, stub), "stub": stub}
    shutil.rmtree(root, ignore_errors=True)


def test_learners_see_the_released_chapter(classroom):
    for student, text in classroom["listed"].items():
        assert COURSE_ID in text and classroom["chapter"] in text, (student, text)


def test_each_learner_gets_exact_points(classroom):
    teacher, lost = classroom["teacher"], classroom["lost"]
    points = teacher.autograded_points()
    assert points and lost, "the chapter needs autograded tests after its first answer"
    expected = {"ada": points,
                "ben": {gid: (0.0 if gid in lost else p) for gid, p in points.items()},
                "cleo": {gid: 0.0 for gid in points}}
    for student in LEARNERS:
        got = {gid: auto for gid, (auto, _) in teacher.scores(student).items() if gid in points}
        assert got == expected[student], f"{student}: {got} != {expected[student]}"
    assert sum(expected["ben"].values()) < sum(points.values())


def test_collected_submissions_are_the_learners(classroom):
    teacher, chapter = classroom["teacher"], classroom["chapter"]
    for student in LEARNERS:
        handed_in = read_notebook(classroom["homes"][student] / chapter / f"{chapter}.ipynb")
        collected = read_notebook(teacher.path / "submitted" / student / chapter / f"{chapter}.ipynb")
        assert [c.source for c in collected.cells] == [c.source for c in handed_in.cells], student


def test_feedback_is_generated_and_reaches_each_learner(classroom):
    teacher, chapter = classroom["teacher"], classroom["chapter"]
    for student in LEARNERS:
        html = teacher.path / "feedback" / student / chapter / f"{chapter}.html"
        assert html.is_file() and html.stat().st_size > 10_000, html
        fetched = list((classroom["homes"][student] / chapter / "feedback").glob(f"*/{chapter}.html"))
        assert len(fetched) == 1, f"{student} did not receive their feedback"
        assert fetched[0].read_bytes() == html.read_bytes()


def test_csv_matches_the_gradebook(classroom):
    teacher, rows = classroom["teacher"], classroom["rows"]
    by_student = {r["student_id"]: r for r in rows if r["assignment"] == classroom["chapter"]}
    assert set(by_student) == set(LEARNERS), rows
    max_score = sum(m for _, m in teacher.scores("ada").values())  # autograded + written answers
    for student in LEARNERS:
        auto = sum(a or 0.0 for a, _ in teacher.scores(student).values())
        row = by_student[student]
        assert float(row["raw_score"]) == float(row["score"]) == auto, row
        assert float(row["max_score"]) == max_score, row
    scores = {s: float(by_student[s]["score"]) for s in LEARNERS}
    assert scores["ada"] == sum(teacher.autograded_points().values())
    assert scores["ada"] > scores["ben"] > scores["cleo"] == 0
