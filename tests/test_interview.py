"""The interview question bank, its validation, and the flashcard / mock-interview logic and widgets."""
from __future__ import annotations

import copy
import html
import json
import re
from pathlib import Path

import pytest

from utils import interview
from utils.errors import CourseError
from utils.interview import (HIDDEN_ANSWER, HIDDEN_ANSWER_ZH, TOPICS, FlashcardSession, MockInterview,
                             check_answer, load_bank, normalize_answer, validate_bank)

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "solutions" / "07_interview" / "07_interview.ipynb"


@pytest.fixture(scope="module")
def bank():
    return load_bank()


@pytest.fixture(scope="module")
def raw():
    return json.loads(interview.BANK_PATH.read_text(encoding="utf-8"))


def _good_entry(**changes) -> dict:
    entry = {
        "id": "test-entry", "topic": "algorithms",
        "question_en": "What does Reptile do?", "question_zh": "Reptile 做什么？",
        "model_answer": "It moves the initialization towards the adapted weights.",
        "follow_up": "And with one inner step?", "common_wrong_answer": "It is MAML.",
        "chapter_link": "chapters/02_maml_vs_transfer/02_maml_vs_transfer.ipynb#Reptile",
        "model_answer_zh": "它把初始化参数朝适应后的权重挪一步。", "follow_up_zh": "只走一步内循环呢？",
        "common_wrong_answer_zh": "认为它就是 MAML。",
    }
    entry.update(changes)
    return {k: v for k, v in entry.items() if v is not None}


# --------------------------------------------------------------------------- the bank itself
def test_bank_validates_and_has_enough_entries(bank):
    assert len(bank) >= 40
    assert len(bank.self_study()) >= 40, "at least 40 entries with their full answers"
    assert len(set(bank.ids())) == len(bank)


def test_every_topic_is_covered(bank):
    coverage = bank.coverage(include_drills=False)
    assert list(coverage) == list(TOPICS)
    thin = {t: n for t, n in coverage.items() if n < 3}
    assert not thin, f"topics with fewer than 3 self-study entries: {thin}"


@pytest.mark.parametrize("subject", [
    "transfer", "multi-task", "inner loop", "sample-efficient", "generaliz", "expensive", "task design",
    "confidence interval", "optimization-based", "metric-based", "model-based", "MAML", "Reptile",
    "Prototypical", "mixture of experts", "vision", "language", "reinforcement", "distill", "prun",
    "quantiz", "soup", "ensemble", "memorization"])
def test_subjects_of_the_issue_are_asked_about(bank, subject):
    text = " ".join(q.question_en + " " + q.model_answer for q in bank.self_study()).lower()
    assert subject.lower() in text, f"no self-study question covers {subject!r}"


def test_both_languages_present(bank):
    for q in bank:
        assert re.search(r"[\u4e00-\u9fff]", q.question_zh), q.id
        assert not re.search(r"[\u4e00-\u9fff]", q.question_en), q.id


def test_links_name_a_chapter_and_a_section(bank):
    for q in bank:
        assert q.chapter in interview.CHAPTERS, q.id
        assert q.chapter_link.startswith(f"chapters/{q.chapter}/{q.chapter}.ipynb#"), q.id
        assert q.section, q.id
    assert {q.chapter for q in bank} >= {"01_mapping", "02_maml_vs_transfer", "04_distillation",
                                         "05_compression", "06_fusion"}


def test_self_study_entries_are_complete(bank):
    for q in bank.self_study():
        assert len(q.model_answer) > 40 and q.follow_up and q.common_wrong_answer, q.id
        assert HIDDEN_ANSWER not in (q.model_answer, q.common_wrong_answer), q.id
    kinds = {q.kind for q in bank.self_study()}
    assert {"mc", "numeric", "short"} <= kinds, "self-study entries of every checkable kind"


def test_graded_drills_keep_their_answers_out_of_the_bank(bank, raw):
    drills = bank.drills()
    assert {q.kind for q in drills} >= {"mc", "numeric", "short", "written"}
    for entry in raw["entries"]:
        if "drill" in entry:
            assert not set(entry) & {"answer", "value", "tolerance", "accepted"}, entry["id"]
            assert entry["model_answer"] == entry["common_wrong_answer"] == HIDDEN_ANSWER, entry["id"]


@pytest.mark.skipif(not NOTEBOOK.exists(), reason="chapter 07 notebook not written yet")
def test_drills_are_graded_in_the_chapter(bank):
    from utils.course.notebooks import nbgrader_meta, read_notebook

    nb = read_notebook(NOTEBOOK)
    graded = {nbgrader_meta(c).get("grade_id") for c in nb.cells if nbgrader_meta(c).get("grade")}
    for q in bank.drills():
        assert q.drill in graded, f"{q.id}: no graded cell {q.drill!r} in the chapter"
    shown = set(re.findall(r'show_question\("([a-z0-9-]+)"', "\n".join(c.source for c in nb.cells)))
    assert shown == {q.id for q in bank.drills()}, "every drill is shown once, and only drills"


# --------------------------------------------------------------------------- bad entries
@pytest.mark.parametrize("changes, field", [
    ({"question_zh": None}, "question_zh"),
    ({"model_answer": "  "}, "model_answer"),
    ({"topic": "astrology"}, "topic"),
    ({"id": "Bad Id"}, "id"),
    ({"question_zh": "What does Reptile do?"}, "question_zh"),
    ({"question_en": "Reptile 做什么？"}, "question_en"),
    ({"chapter_link": "chapters/02_maml/02_maml.ipynb#Reptile"}, "chapter_link"),
    ({"chapter_link": "chapters/02_maml_vs_transfer/02_maml_vs_transfer.ipynb"}, "chapter_link"),
    ({"kind": "essay"}, "kind"),
    ({"kind": "mc", "options": ["a", "b"], "answer": 2}, "answer"),
    ({"kind": "mc", "options": ["same", "same"], "answer": 0}, "options"),
    ({"kind": "mc", "options": ["x", "y"], "answer": True}, "answer"),
    ({"kind": "numeric", "value": "seven"}, "value"),
    ({"kind": "numeric", "value": 1.0, "tolerance": -1}, "tolerance"),
    ({"kind": "short", "accepted": []}, "accepted"),
    ({"options": ["x", "y"]}, "options"),
    ({"answer": 1}, "answer"),
    ({"anwser": 1}, "anwser"),
    ({"kind": "mc", "options": ["x", "y"], "answer": 0, "drill": "test-x",
      "model_answer": HIDDEN_ANSWER, "common_wrong_answer": HIDDEN_ANSWER}, "answer"),
    ({"kind": "mc", "options": ["x", "y"], "drill": "test-x"}, "model_answer"),
    ({"drill": "test-x", "model_answer": HIDDEN_ANSWER, "common_wrong_answer": HIDDEN_ANSWER}, "kind"),
    # the Chinese answers: required, Chinese, not a copy; a drill hides them too
    ({"model_answer_zh": None}, "model_answer_zh"),
    ({"follow_up_zh": "   "}, "follow_up_zh"),
    ({"common_wrong_answer_zh": "It is MAML."}, "common_wrong_answer_zh"),
    ({"model_answer_zh": "It moves the initialization towards the adapted weights（初始化）."}, "model_answer_zh"),
    ({"kind": "mc", "options": ["x", "y"], "drill": "test-x", "model_answer": HIDDEN_ANSWER,
      "common_wrong_answer": HIDDEN_ANSWER, "common_wrong_answer_zh": HIDDEN_ANSWER_ZH}, "model_answer_zh"),
    ({"kind": "mc", "options": ["x", "y"], "drill": "test-x", "model_answer": HIDDEN_ANSWER,
      "common_wrong_answer": HIDDEN_ANSWER, "model_answer_zh": HIDDEN_ANSWER_ZH}, "common_wrong_answer_zh"),
])
def test_bad_entries_raise_a_clear_error(changes, field):
    with pytest.raises(CourseError) as exc:
        validate_bank({"entries": [_good_entry(**changes)]})
    msg = str(exc.value)
    assert "entry #0" in msg, msg
    assert f"'{field}'" in msg and "expected" in msg and "What to do" in msg, msg


def test_good_entry_and_duplicates():
    bank = validate_bank({"entries": [_good_entry()]})
    assert bank["test-entry"].topic == "algorithms"
    with pytest.raises(CourseError, match="unique id"):
        validate_bank({"entries": [_good_entry(), _good_entry()]})
    with pytest.raises(CourseError, match="entries"):
        validate_bank({"questions": []})
    with pytest.raises(CourseError, match="JSON object"):
        validate_bank({"entries": ["just a string"]})


def test_load_bank_file_errors(tmp_path):
    with pytest.raises(CourseError, match="no such file"):
        load_bank(tmp_path / "missing.json")
    broken = tmp_path / "broken.json"
    broken.write_text('{"entries": [ {"id": "x",} ]}', encoding="utf-8")
    with pytest.raises(CourseError, match="valid JSON"):
        load_bank(broken)
    ok = tmp_path / "ok.json"
    ok.write_text(json.dumps({"entries": [_good_entry()]}, ensure_ascii=False), encoding="utf-8")
    assert len(load_bank(ok)) == 1


def test_unknown_id_lookup_raises(bank):
    with pytest.raises(CourseError, match="no such entry"):
        bank["alg-does-not-exist"]


# --------------------------------------------------------------------------- answers
def test_normalize_answer():
    assert normalize_answer("  `Top-K` gating. ") == "top-k gating"
    assert normalize_answer('"Reptile"') == "reptile"
    assert normalize_answer("F.kl_div()") == "f.kl_div"
    assert normalize_answer("the   head") == "the head"


def test_check_answer_for_self_study_kinds(bank):
    mc = bank["eval-val-split"]
    assert check_answer(mc, "b") and check_answer(mc, "B)") and check_answer(mc, 1)
    assert not check_answer(mc, "a")
    with pytest.raises(CourseError):
        check_answer(mc, "z")
    num = bank["comp-lowrank"]
    assert check_answer(num, 8) and check_answer(num, "8.005") and not check_answer(num, 16)
    with pytest.raises(CourseError, match="a number"):
        check_answer(num, "eight")
    short = bank["alg-metasgd"]
    assert check_answer(short, " Meta-SGD. ") and not check_answer(short, "MAML++")
    with pytest.raises(CourseError, match="graded drill"):
        check_answer(bank.drills()[0], "a")
    with pytest.raises(CourseError, match="model answer"):
        check_answer(bank["alg-reptile"], "anything")


def test_draw_spreads_topics_and_is_seeded(bank):
    drawn = bank.draw(len(TOPICS), seed=3)
    assert len({q.topic for q in drawn}) == len(TOPICS)
    assert [q.id for q in bank.draw(7, seed=3)] == [q.id for q in bank.draw(7, seed=3)]
    assert [q.id for q in bank.draw(7, seed=3)] != [q.id for q in bank.draw(7, seed=4)]
    assert not any(q.is_drill for q in bank.draw(len(bank.self_study()), seed=0))
    assert {q.topic for q in bank.draw(3, seed=0, topics=["fusion"])} == {"fusion"}
    with pytest.raises(CourseError, match="questions available"):
        bank.draw(10_000)
    with pytest.raises(CourseError, match="topics"):
        bank.draw(2, topics=["astrology"])


# --------------------------------------------------------------------------- flashcards
def test_flashcard_session_counts_and_summary(bank):
    cards = bank.draw(5, seed=0)
    s = FlashcardSession(cards, seed=None)
    assert s.current is cards[0] and not s.revealed
    assert s.reveal() is cards[0] and s.revealed
    s.mark(True)
    assert s.current is cards[1] and not s.revealed
    s.mark(False)
    s.mark(False)
    summary = s.summary()
    assert (summary["total"], summary["seen"], summary["known"], summary["unknown"], summary["remaining"]) \
        == (5, 3, 1, 2, 2)
    assert summary["known_ids"] == [cards[0].id]
    assert summary["unknown_ids"] == [cards[1].id, cards[2].id]
    assert sum(c["known"] + c["unknown"] for c in summary["by_topic"].values()) == 3
    s.mark(True)
    s.mark(True)
    assert s.done and s.current is None and s.summary()["known"] == 3
    with pytest.raises(CourseError, match="cards done"):
        s.mark(True)
    with pytest.raises(CourseError, match="cards done"):
        s.reveal()
    retry = s.retry_unknown(seed=None)
    assert [q.id for q in retry.cards] == [cards[1].id, cards[2].id]


def test_flashcard_session_errors(bank):
    with pytest.raises(CourseError, match="empty deck"):
        FlashcardSession([])
    s = FlashcardSession(bank.draw(2, seed=0))
    with pytest.raises(CourseError, match="True or False"):
        s.mark("yes")
    s.mark(True)
    s.mark(True)
    with pytest.raises(CourseError, match="unknown"):
        s.retry_unknown()
    shuffled = FlashcardSession(bank.select(), seed=1)
    assert [q.id for q in shuffled.cards] != [q.id for q in bank.select()]


# --------------------------------------------------------------------------- mock interview
class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_mock_interview_timing_and_summary(bank):
    clock = FakeClock()
    qs = bank.draw(3, seed=1)
    m = MockInterview(qs, seconds_per_question=60, clock=clock)
    assert m.elapsed() == 0.0 and not m.started
    with pytest.raises(CourseError, match="start"):
        m.answer(2)
    m.start()
    clock.now = 45.0
    assert m.elapsed() == 45.0 and m.remaining() == 15.0
    m.answer(2)
    clock.now = 45.0 + 90.0
    assert m.remaining() == -30.0
    m.answer(1)
    with pytest.raises(CourseError, match="score"):
        m.answer(5)
    summary = m.summary()
    assert (summary["answered"], summary["score"], summary["max_score"], summary["over_time"]) == (2, 3, 6, 1)
    assert summary["questions"][2]["seconds"] is None
    assert summary["to_review"] == [qs[1].id]
    clock.now += 10.0
    m.answer(0)
    summary = m.summary()
    assert m.done and summary["total_seconds"] == 145.0 and summary["to_review"] == [qs[1].id, qs[2].id]
    with pytest.raises(CourseError, match="all answered"):
        m.answer(2)
    with pytest.raises(CourseError, match="positive"):
        MockInterview(qs, seconds_per_question=0)


# --------------------------------------------------------------------------- rendering and widgets
def test_card_html_escapes_and_reveals(bank):
    q = bank["alg-reptile"]
    hidden = interview.card_html(q, reveal=False)
    assert q.question_zh in hidden and "Model answer" not in hidden
    shown = interview.card_html(q, reveal=True, lang="en")
    assert "Model answer" in shown and q.question_zh not in shown and "02_maml_vs_transfer" in shown
    evil = validate_bank({"entries": [_good_entry(question_en="Is <script>alert(1)</script> ok?")]})["test-entry"]
    assert "<script>" not in interview.card_html(evil)
    drill = bank.drills()[0]
    assert html.escape(HIDDEN_ANSWER) in interview.card_html(drill, reveal=True)
    with pytest.raises(CourseError, match="lang"):
        interview.card_html(q, lang="fr")
    md = interview.question_markdown(bank["drill-soup"])
    assert "- **a**)" in md and "one letter" in md


def test_flashcard_widget_buttons_drive_the_session(bank):
    app = interview.FlashcardApp(bank.draw(3, seed=0), seed=None)
    first = app.session.current
    assert first.question_en.split()[0] in app.card.value
    app.reveal_button.click()
    assert app.session.revealed and "Model answer" in app.card.value and app.reveal_button.disabled
    app.known_button.click()
    app.unknown_button.click()
    assert app.progress.value == 2 and "1 known, 1 not yet" in app.summary.value
    app.unknown_button.click()
    assert app.session.done and app.known_button.disabled
    app.retry_button.click()
    assert len(app.session.cards) == 2 and app.session.index == 0
    page = app.static_html(2)
    assert "Flashcards" in page and page.count("Model answer") == 2


def test_flashcard_widget_checks_answers(bank):
    app = interview.FlashcardApp([bank["comp-lowrank"]], seed=None)
    app.response.value = "8"
    app.check_button.click()
    assert "right" in app.feedback.value
    app.response.value = "16"
    app.check_button.click()
    assert "not quite" in app.feedback.value


def test_mock_interview_widget(bank):
    clock = FakeClock()
    app = interview.MockInterviewApp(bank.draw(2, seed=0), seconds_per_question=30, clock=clock)
    assert app.score_buttons[2].disabled and "Start" in app.card.value
    app.start_button.click()
    assert app.session.started and app.tick.playing
    clock.now = 40.0
    app.tick.value = 40                       # what the browser's Play widget does every second
    assert "over by 0:10" in app.timer.value and "#c00" in app.timer.value
    app.reveal_button.click()
    assert "Model answer" in app.card.value
    app.score_buttons[2].click()
    clock.now = 50.0
    app.score_buttons[0].click()
    assert app.session.done and not app.tick.playing
    assert "score 2 / 4" in app.summary.value
    assert "Mock interview" in app.static_html()


def test_headless_widgets_render_a_static_view(bank, monkeypatch):
    shown = []
    monkeypatch.setattr(interview.apps, "_display", lambda *objs: shown.extend(objs))
    monkeypatch.setenv("COURSE_HEADLESS", "1")
    deck = interview.flashcards(bank, n=4, seed=0, preview=2)
    mock = interview.mock_interview(bank, n=3, minutes=2, seed=0)
    htmls = [o.data for o in shown if hasattr(o, "data")]
    assert len(htmls) == 2, "headless: one static HTML view per widget"
    assert deck.session.cards[0].question_en.split()[0] in htmls[0]
    assert all(q.id in htmls[1] for q in mock.session.questions)
    monkeypatch.setenv("COURSE_HEADLESS", "0")
    monkeypatch.delenv("COURSE_FAST", raising=False)
    shown.clear()
    interview.flashcards(bank, n=2)
    assert not any(hasattr(o, "data") for o in shown), "live: the widget only"
    with pytest.raises(CourseError, match="minutes"):
        interview.mock_interview(bank, minutes=0)


def test_bank_is_not_modified_by_sessions(bank):
    before = copy.deepcopy([q.id for q in bank])
    s = FlashcardSession(bank.select(), seed=0)
    s.mark(True)
    assert [q.id for q in bank] == before


def test_links_open_a_real_section_of_the_chapter(bank):
    """Every ``chapter_link`` names a heading that exists in that chapter (JupyterLab anchor)."""
    from utils.chapters import find_chapters, heading_anchors, solution_path
    from utils.course.notebooks import read_notebook

    repo = Path(__file__).resolve().parents[1]
    available = find_chapters(repo)
    anchors = {ch: heading_anchors(read_notebook(solution_path(repo, ch))) for ch in available}
    broken = [f"{q.id}: {q.chapter_link}" for q in bank
              if q.chapter in anchors and q.chapter_link.split("#", 1)[1] not in anchors[q.chapter]]
    assert not broken, "links to headings that do not exist:\n" + "\n".join(broken)
    assert {q.chapter for q in bank} <= set(available) or not available


def test_heading_anchors_follow_jupyterlab():
    from nbformat.v4 import new_markdown_cell, new_notebook

    from utils.chapters import heading_anchors

    nb = new_notebook(cells=[new_markdown_cell("## 2 · Output ensembles\ntext\n```\n# not a heading\n```\n"
                                               "### 4.1 The results table ##")])
    assert heading_anchors(nb) == {"2-·-Output-ensembles", "4.1-The-results-table"}
