"""The question bank in Chinese: the Chinese answer fields, the glossary-term check, the language
knob of the flashcards / mock interview / static view, and the `bank` practice-sheet command."""
from __future__ import annotations

import re

import pytest

from utils import interview
from utils.course import cli as course
from utils.glossary import load_glossary
from utils.interview import (HIDDEN_ANSWER, HIDDEN_ANSWER_ZH, ZH_FIELDS, MockInterview, chinese_share,
                             is_mostly_chinese, load_bank, missing_glossary_terms, used_terms)


@pytest.fixture(scope="module")
def bank():
    return load_bank()


@pytest.fixture(scope="module")
def glossary():
    return load_glossary()


def _esc(text: str) -> str:
    return interview._inline(text)


# --------------------------------------------------------------------------- the Chinese fields
def test_every_entry_has_its_answers_in_chinese(bank):
    assert len(bank) >= 75
    for q in bank:
        for zh, en in ZH_FIELDS.items():
            text = getattr(q, zh)
            assert text.strip(), f"{q.id}: {zh} is empty"
            assert text != getattr(q, en), f"{q.id}: {zh} is a copy of {en}"
            assert is_mostly_chinese(text), f"{q.id}: {zh} is not mostly Chinese ({chinese_share(text):.0%})"
        if q.is_drill:
            assert q.model_answer_zh == q.common_wrong_answer_zh == HIDDEN_ANSWER_ZH, q.id
        else:
            assert HIDDEN_ANSWER_ZH not in (q.model_answer_zh, q.common_wrong_answer_zh), q.id
            assert len(q.model_answer_zh) > 30, f"{q.id}: a Chinese model answer of a few words"


def test_chinese_share_tells_chinese_from_english():
    assert chinese_share("The student matches the teacher.") == 0.0
    assert chinese_share("学生模型（student model）拟合教师模型的输出分布。") > 0.7
    assert is_mostly_chinese("φ = θ − α ∇θ L_support(θ)，即在支持集上走一步梯度下降。")
    assert not is_mostly_chinese("Meta-SGD learns a step size per entry（步长）.")
    assert chinese_share("1.96 × 0.08 / √600") == 0.0


# --------------------------------------------------------------------------- glossary terms
def test_used_terms_whole_words_plurals_and_nesting(glossary):
    terms = lambda text: {e.term for e in used_terms(text, glossary)}  # noqa: E731
    assert terms("Tasks are sampled; each TASK has a support set.") == {"task", "support set"}
    assert "task" not in terms("multi-task learning"), "a hyphenated compound is another word"
    assert terms("first-order MAML drops the Hessian") == {"first-order MAML"}, "nested match not counted"
    assert terms("MAML and first-order MAML") == {"MAML", "first-order MAML"}
    assert terms("ProtoNet averages prototypes") == {"prototypical network", "prototype"}, "aliases count"
    assert terms("taskmaster prototyping") == set(), "whole words only"


def test_every_glossary_term_of_an_english_answer_is_in_the_chinese_answer(bank, glossary):
    """Used = the glossary's English term or an alias as a whole word (case-insensitive, plural
    allowed) in ``model_answer``; present = its Chinese name (or the part before a bracket, e.g.
    模型无关元学习 of 模型无关元学习（MAML）) in ``model_answer_zh``, spaces ignored."""
    missing = {q.id: m for q in bank.self_study() if (m := missing_glossary_terms(q, glossary=glossary))}
    assert not missing, f"Chinese answers without the glossary's Chinese term: {missing}"
    checked = sum(bool(used_terms(q.model_answer, glossary)) for q in bank.self_study())
    assert checked >= 0.8 * len(bank.self_study()), "the check must actually bite on most answers"


def test_glossary_check_catches_a_missing_term(bank, glossary):
    q = bank["adapt-inner-outer"]
    bad = interview.Question(**{**q.__dict__, "model_answer_zh": q.model_answer_zh.replace("内循环", "里层")})
    assert missing_glossary_terms(bad, glossary=glossary) == {"model_answer": ["inner loop → 内循环"]}


# --------------------------------------------------------------------------- cards and widgets
def test_card_in_each_language_shows_the_answers_in_that_language(bank):
    q = bank["dist-kl-direction"]
    en = interview.card_html(q, reveal=True, lang="en")
    zh = interview.card_html(q, reveal=True, lang="zh")
    both = interview.card_html(q, reveal=True, lang="both")
    for field in ("model_answer", "follow_up", "common_wrong_answer"):
        assert _esc(q.text(field, "en")) in en and _esc(q.text(field, "zh")) not in en
        assert _esc(q.text(field, "zh")) in zh and _esc(q.text(field, "en")) not in zh
        assert _esc(q.text(field, "en")) in both and _esc(q.text(field, "zh")) in both
    assert "参考答案" in zh and "Model answer" not in zh and "Model answer" in both
    assert q.question_zh in zh and q.question_en not in zh
    with pytest.raises(interview.CourseError, match="lang"):
        interview.card_html(q, lang="中文")


@pytest.mark.parametrize("lang", ["en", "zh", "both"])
def test_drill_answers_stay_hidden_in_every_language(bank, lang):
    for q in bank.drills():
        page = interview.card_html(q, reveal=True, lang=lang)
        shown = {"en": [HIDDEN_ANSWER], "zh": [HIDDEN_ANSWER_ZH], "both": [HIDDEN_ANSWER, HIDDEN_ANSWER_ZH]}[lang]
        assert all(_esc(h) in page for h in shown), q.id
        assert "<b>参考答案：</b>" not in page and "<b>Model answer.</b>" not in page, q.id


@pytest.mark.parametrize("lang", ["en", "zh", "both"])
def test_headless_static_views_in_each_language(bank, monkeypatch, lang):
    shown = []
    monkeypatch.setattr(interview.apps, "_display", lambda *objs: shown.extend(objs))
    monkeypatch.setenv("COURSE_HEADLESS", "1")
    deck = interview.flashcards(bank, n=4, seed=0, lang=lang, preview=2)
    mock = interview.mock_interview(bank, n=3, minutes=2, seed=0, lang=lang)
    flash_html, mock_html = [o.data for o in shown if hasattr(o, "data")]
    for page, questions in ((flash_html, deck.session.cards[:2]), (mock_html, mock.session.questions)):
        for q in questions:
            has_en, has_zh = _esc(q.model_answer) in page, _esc(q.model_answer_zh) in page
            assert (has_en, has_zh) == {"en": (True, False), "zh": (False, True), "both": (True, True)}[lang], q.id
            assert (q.question_zh in page) == (lang != "en"), q.id
    assert deck.language.value == mock.language.value == lang


def test_flashcard_toggle_switches_language_live(bank):
    q = bank["fuse-soups"]
    app = interview.FlashcardApp([q, bank["alg-reptile"]], seed=None, lang="en")
    app.reveal_button.click()
    assert _esc(q.model_answer) in app.card.value and q.question_zh not in app.card.value
    app.language.value = "zh"
    assert app.lang == "zh" and _esc(q.model_answer_zh) in app.card.value
    assert _esc(q.model_answer) not in app.card.value and app.session.revealed
    app.known_button.click()
    assert bank["alg-reptile"].question_zh in app.card.value and "参考答案" not in app.card.value
    assert "1 known" in app.summary.value
    assert _esc(q.model_answer_zh) in app.static_html(1)


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def _run_mock(bank, lang: str, switch_to: str | None = None) -> dict:
    """One scripted timed interview; ``switch_to``: flip the toggle after the first answer."""
    clock = FakeClock()
    app = interview.MockInterviewApp(bank.draw(3, seed=5), seconds_per_question=60, lang=lang, clock=clock)
    app.start_button.click()
    for i, (seconds, score) in enumerate([(45.0, 2), (75.0, 1), (30.0, 0)]):
        clock.now += seconds
        app.tick.value += 1
        app.reveal_button.click()
        assert _esc(app.session.current.text("model_answer", "zh" if app.lang == "zh" else "en")) in app.card.value
        app.score_buttons[score].click()
        if i == 0 and switch_to:
            app.language.value = switch_to
    return app.session.summary()


def test_mock_interview_scores_the_same_in_every_language(bank):
    summaries = {lang: _run_mock(bank, lang) for lang in ("en", "zh", "both")}
    summaries["en→zh"] = _run_mock(bank, "en", switch_to="zh")
    reference = summaries["en"]
    assert (reference["score"], reference["over_time"], reference["total_seconds"]) == (3, 1, 150.0)
    for lang, summary in summaries.items():
        assert summary == reference, f"the mock interview in {lang!r} scored differently"
    # and the plain session ignores the language entirely: same draw, same records
    assert [q.id for q in bank.draw(3, seed=5)] == [r["id"] for r in reference["questions"]]
    assert isinstance(MockInterview(bank.draw(1, seed=5)).summary(), dict)


# --------------------------------------------------------------------------- the practice sheet
@pytest.mark.parametrize("lang", ["en", "zh", "both"])
def test_bank_command_prints_a_sheet_in_each_language(bank, capsys, lang):
    assert course.main(["bank", "--lang", lang, "--topic", "distillation"]) == 0
    sheet = capsys.readouterr().out
    questions = bank.select("distillation", include_drills=True)
    assert len(questions) >= 6
    head, answers = sheet.split("\n---\n", 1)
    for n, q in enumerate(questions, 1):
        assert f"### {n}. `{q.id}`" in head and f"### {n}. `{q.id}`" in answers
        assert (q.question_en in head) == (lang != "zh") and (q.question_zh in head) == (lang != "en")
        assert q.model_answer not in head and q.model_answer_zh not in head, "answers only at the end"
        if q.is_drill:
            assert q.drill not in sheet
            continue
        assert (q.model_answer in answers) == (lang != "zh"), q.id
        assert (q.model_answer_zh in answers) == (lang != "en"), q.id
        assert (q.follow_up_zh in answers) == (lang != "en"), q.id
    assert not any(q.topic != "distillation" and f"`{q.id}`" in sheet for q in bank)
    if lang == "zh":
        assert "面试练习题单" in sheet and "Model answer" not in sheet


def test_bank_command_writes_markdown(tmp_path, capsys):
    out = tmp_path / "distillation_zh.md"
    assert course.main(["bank", "--lang", "zh", "--topic", "distillation", "--out", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    assert text.startswith("# 面试练习题单") and "## 答案" in text and str(out) in capsys.readouterr().out
    assert re.search(r"\[04_distillation — .+\]\(chapters/04_distillation/04_distillation\.ipynb#", text)
    assert course.main(["bank", "--topic", "fusion", "--topic", "compression", "--lang", "en",
                        "--out", str(out)]) == 0
    assert "`fuse-soups`" in out.read_text(encoding="utf-8") and "`comp-lowrank`" in out.read_text(encoding="utf-8")


@pytest.mark.parametrize("argv, field, found", [
    (["bank", "--topic", "distilation"], "--topic", "'distilation'"),
    (["bank", "--lang", "fr", "--topic", "distillation"], "--lang", "'fr'"),
    (["bank", "--lang", "zh", "--out", "/no/such/folder/sheet.md"], "--out", "no folder"),
])
def test_bank_command_errors_are_clear(capsys, argv, field, found):
    assert course.main(argv) == 2
    err = capsys.readouterr().err
    assert field in err and "expected" in err and found in err and "What to do" in err, err
