"""Multiple choice must not have a tell (issue 12, item 5).

Every multiple-choice question of the course (notebook cells of ``solutions/``, with the right letter
read from their hidden tests, and the question bank's ``kind: "mc"`` entries) is parsed by
:mod:`utils.course.mc_fairness`; two blind strategies, "always pick the longest option" and "always pick
letter X", must not beat chance (the mean of 1 / n_options) by more than 10 percentage points.
A question that looks like multiple choice but cannot be parsed fails the test, so new questions
are covered as they are written.
"""
import pytest

from utils.course import mc_fairness as mc
from utils.course import mc_tells as tells_mod
from utils.course.notebooks import PROJECT_ROOT


@pytest.fixture(scope="module")
def questions():
    return mc.all_questions(PROJECT_ROOT)


def test_every_chapter_question_is_found(questions):
    where = {q.where.split()[0] for q in questions}
    # the chapters that ask multiple-choice questions today, and the bank's self-study entries
    assert {"01_mapping", "02_maml_vs_transfer", "04_distillation", "07_interview", "question"} <= where
    assert len(questions) >= 20
    for q in questions:
        assert len(q.options) >= 2 and 0 <= q.answer < len(q.options), q


def test_longest_option_does_not_pay(questions, capsys):
    score, base = mc.longest_score(questions), mc.chance(questions)
    print(f"always the longest option: {score:.1%} over {len(questions)} questions (chance {base:.1%})")
    assert score <= base + mc.MAX_ADVANTAGE, mc.report(questions)


def test_same_letter_does_not_pay(questions):
    base = mc.chance(questions)
    scores = mc.letter_scores(questions)
    print("always the same letter: " + ", ".join(f"{k} {v:.1%}" for k, v in scores.items())
          + f" (chance {base:.1%})")
    for letter, score in scores.items():
        assert score <= base + mc.MAX_ADVANTAGE, f"always answering {letter!r}: {score:.1%}\n" + mc.report(questions)


def test_strategies_on_a_biased_set():
    """The scorer itself: a set where the right option is always the longest, always 'b'."""
    qs = [mc.MCQuestion(f"q{i}", ("x", "the long right one", "y", "z"), 1) for i in range(4)]
    assert mc.longest_score(qs) == 1.0 and mc.letter_scores(qs)["b"] == 1.0
    assert mc.chance(qs) == 0.25
    tie = [mc.MCQuestion("t", ("same", "same", "s"), 0)]
    assert mc.longest_score(tie) == 0.5


@pytest.mark.parametrize("text, expected", [
    ("* (a) one\n* (b) two\n", ("one", "two")),
    ("* **a.** one\n  more\n* **b.** two\n", ("one more", "two")),
    ("- **a**) one\n- **b**) two\n", ("one", "two")),
    ("```python\n# a\nx = 1\n\n# b\nx = 2\n```\n", ("x = 1", "x = 2")),
])
def test_option_formats(text, expected):
    assert mc.parse_options(text, "t") == expected


def test_unparseable_question_fails_loudly(tmp_path):
    with pytest.raises(mc.MCParseError, match="no lettered options"):
        mc.parse_options("Pick one: yes or no.", "somewhere")
    with pytest.raises(mc.MCParseError, match="lettered"):
        mc.parse_options("* (a) one\n* (c) two\n", "somewhere")
    with pytest.raises(mc.MCParseError, match="hidden test"):
        mc._right_letter('assert ANSWER_X in ("a", "b")', "ANSWER_X", "somewhere")


def test_a_new_question_without_options_is_reported(tmp_path):
    """A chapter whose multiple-choice answer has no options before it makes the scan fail."""
    import nbformat
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

    ch = tmp_path / "solutions" / "01_toy"
    ch.mkdir(parents=True)
    (tmp_path / "utils").mkdir()
    (tmp_path / "utils" / "question_bank.json").write_text('{"entries": []}')
    meta = lambda gid, **kw: {"nbgrader": {"grade_id": gid, "schema_version": 3, **kw}}
    nb = new_notebook(cells=[
        new_markdown_cell("Which is right? Set ANSWER_Q."),
        new_code_cell('### BEGIN SOLUTION\nANSWER_Q = "b"\n### END SOLUTION',
                      metadata=meta("q", solution=True, grade=False, locked=False)),
        new_code_cell('assert ANSWER_Q in ("a", "b")\n### BEGIN HIDDEN TESTS\nassert ANSWER_Q == "b"\n'
                      '### END HIDDEN TESTS', metadata=meta("test-q", solution=False, grade=True, points=1)),
    ])
    nbformat.write(nb, ch / "01_toy.ipynb")
    with pytest.raises(mc.MCParseError, match="no options"):
        mc.all_questions(tmp_path)


# --------------------------------------------------------------------------- issue 24 item 5
def test_no_tell_in_any_subset_a_learner_meets(questions):
    """Longest option, absolute/hedged wording and stem overlap, in each chapter, topic, and the
    spot-the-bug questions: no blind strategy beats chance by more than 10 points, no stem gives the key away."""
    print(tells_mod.subset_report(questions))
    assert "spot-the-bug" in tells_mod.subsets(questions) and len(tells_mod.subsets(questions)["spot-the-bug"]) >= 10
    found = tells_mod.tells(questions)
    assert not found, "multiple-choice tells:\n" + "\n".join(found)


def test_wording_and_stem_strategies_on_biased_sets():
    """The scorers themselves: keys hedged, distractors absolute, stems echoing the key."""
    absolute = [mc.MCQuestion(f"q{i}", ("It always diverges.", "It may overfit the support set.",
                                         "Nothing changes.", "Only when T = 1."), 1) for i in range(4)]
    assert tells_mod.avoid_absolute_score(absolute) == 1.0 and tells_mod.prefer_hedged_score(absolute) == 1.0
    echo = mc.MCQuestion("e", ("The labels are fixed.", "The byte count stays unchanged with float32.",
                               "The loss is noisy.", "The teacher is wrong."), 1,
                         stem="The byte count is unchanged: why, with float32 weights?")
    assert tells_mod.stem_overlap_score([echo]) == 1.0
    assert len(tells_mod.stem_gives_away(echo)) >= tells_mod.GIVEAWAY_WORDS
    assert any("stem contains" in t for t in tells_mod.tells([echo]))
    fair = mc.MCQuestion("f", ("aaa", "bbb", "ccc", "ddd"), 2, stem="Which?")
    assert tells_mod.avoid_absolute_score([fair]) == tells_mod.prefer_hedged_score([fair]) == tells_mod.stem_overlap_score([fair]) == 0.25


def test_subsets_follow_chapters_topics_and_bugs():
    qs = [mc.MCQuestion("07_interview ex-bug1-name", ("a", "bb"), 0, topic="07_interview"),
          mc.MCQuestion("07_interview ex-soup", ("a", "bb"), 0, topic="fusion"),
          mc.MCQuestion("question bank x", ("a", "bb"), 1, topic="evaluation")]
    s = tells_mod.subsets(qs)
    assert set(s) == {"all", "chapter 07_interview", "spot-the-bug", "topic fusion", "topic evaluation", "question bank"}
    assert [q.where for q in s["spot-the-bug"]] == ["07_interview ex-bug1-name"]
