"""Interview practice: the question bank, flashcards and a timed mock interview.

One module per kind: :mod:`~utils.interview.bank` (schema, look-ups, answer checks),
:mod:`~utils.interview.validate` (validation and loading),
:mod:`~utils.interview.cards` (how a question is shown), :mod:`~utils.interview.practice` (the
sessions as plain Python) and :mod:`~utils.interview.apps` (their widgets). Everything public is
re-exported here, so ``from utils.interview import load_bank`` works.

The bank is data, not prose buried in cells: ``utils/question_bank.json`` holds one entry per
question, and :func:`load_bank` reads and validates it. Every entry has

``id``, ``topic`` (one of :data:`TOPICS`), ``question_en``, ``question_zh`` (the question in
English and in Chinese), ``model_answer``, ``follow_up`` (what an interviewer asks next),
``common_wrong_answer`` and ``chapter_link`` (``chapters/NN_name/NN_name.ipynb#Section-title``,
the chapter and section that teach it). Entries that can be checked by a machine also have a
``kind``: ``"mc"`` (``options`` and the ``answer`` index), ``"numeric"`` (``value`` and
``tolerance``) or ``"short"`` (``accepted`` answers, compared after :func:`normalize_answer`);
``"written"`` marks a question answered in prose.

Every entry also carries the answers in Chinese, as its last three fields: ``model_answer_zh``,
``follow_up_zh`` and ``common_wrong_answer_zh``. They are written as a Chinese-speaking engineer
would say them (not word for word), with the glossary's Chinese terms (``utils/glossary.json``)
and the English term in brackets on first use. The validator refuses a Chinese field that is
empty, equal to the English one or not mostly Chinese (:func:`is_mostly_chinese`);
:func:`missing_glossary_terms` lists glossary terms an English answer uses whose Chinese name the
Chinese answer lacks (a test keeps that list empty).

Where the answers of graded drills live
---------------------------------------
Chapter 07 grades some bank questions with nbgrader ("drills"). A drill entry names the grade_id
of its test cell in the field ``drill``. Its answer must not be readable by the learner who is
graded on it, and this file ships with the course, so for drill entries the bank holds the
question, the options and the answer format only: the answer fields (``answer``, ``value``,
``tolerance``, ``accepted``) are refused by the validator, and ``model_answer`` and
``common_wrong_answer`` hold the placeholder :data:`HIDDEN_ANSWER` (their Chinese twins hold
:data:`HIDDEN_ANSWER_ZH`). The answers and their
explanations live inside the ``### BEGIN HIDDEN TESTS`` regions of
``solutions/07_interview/07_interview.ipynb``; a learner sees them in the grading feedback. Every
other ("self-study") entry carries its full answer, for the flashcards and the mock interview.

Practice tools
--------------
* :class:`FlashcardSession` / :func:`flashcards`: go through cards, reveal the answer, mark each
  known or unknown, get a summary (and retry the unknown ones);
* :class:`MockInterview` / :func:`mock_interview`: draw ``n`` questions spread over topics, time
  each answer against a budget, score yourself, get a summary;
* :func:`practice_sheet`: one topic's questions, then their answers, as Markdown for offline
  drilling (``python -m utils.course bank --lang zh --topic distillation``).

Languages: the widgets, the static view and the sheet take ``lang``: ``"en"``, ``"zh"`` or
``"both"`` (:data:`LANGUAGES`; default ``"both"``); the widgets also have a toggle that switches
it live. The language changes what is shown, never what is drawn or how a session is scored.

The session classes are plain Python (testable without a browser). The widget functions wrap
them in ipywidgets; headless (:func:`utils.widgets.is_headless`) they also display a static HTML
view (a few cards with their answers and the summary), so an executed notebook shows them.
"""
from __future__ import annotations

from ..chapters import CHAPTERS  # noqa: F401 - re-exported (the bank's chapter list)
from ..errors import CourseError  # noqa: F401 - re-exported (what the validator raises)
from .bank import (BANK_PATH, HIDDEN_ANSWER, HIDDEN_ANSWER_ZH, KINDS, LANGUAGES, MIN_CHINESE_SHARE, Question,
    QuestionBank, TOPICS, ZH_FIELDS, check_answer, chinese_share, is_mostly_chinese, normalize_answer)
from .validate import load_bank, validate_bank, validate_entry
from .cards import (LABELS, card_html, missing_glossary_terms, practice_sheet, question_markdown,
    show_question, used_terms)
from .practice import (FlashcardSession, MockInterview, SCORES, summary_html)
from .apps import (FlashcardApp, MockInterviewApp, flashcards, mock_interview)
from .cards import _inline  # noqa: F401 - the tests check its escaping

__all__ = [
    "BANK_PATH", "HIDDEN_ANSWER", "HIDDEN_ANSWER_ZH", "KINDS", "LANGUAGES", "MIN_CHINESE_SHARE",
    "Question", "QuestionBank", "TOPICS", "ZH_FIELDS", "check_answer", "chinese_share",
    "is_mostly_chinese", "load_bank", "normalize_answer", "validate_bank", "validate_entry", "LABELS",
    "card_html", "missing_glossary_terms", "practice_sheet", "question_markdown", "show_question",
    "used_terms", "FlashcardSession", "MockInterview", "SCORES", "summary_html", "FlashcardApp",
    "MockInterviewApp", "flashcards", "mock_interview", "CHAPTERS", "CourseError",
]
