"""The question bank: topics, the entry schema, the bank's look-ups and draws, and answer checking
(chapter 07); the validator and loader are in :mod:`utils.interview.validate`. See :mod:`utils.interview` for the fields of an entry and where drill answers live.
"""
from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import course_error

__all__ = [
    "TOPICS", "KINDS", "HIDDEN_ANSWER", "HIDDEN_ANSWER_ZH", "LANGUAGES", "BANK_PATH", "ZH_FIELDS",
    "MIN_CHINESE_SHARE", "chinese_share", "is_mostly_chinese", "Question", "QuestionBank",
    "normalize_answer", "check_answer",
]


#: The bank's topics and what each covers (every topic must have entries).
TOPICS: dict[str, str] = {
    "foundations": "what meta-learning is; how it differs from transfer and multi-task learning",
    "adaptation": "the adaptation process: inner loop, support and query sets",
    "meta-strategies": "what is meta-learned: initializations, metrics, update rules",
    "challenges": "sample efficiency, generalization, compute cost, task design",
    "evaluation": "how to evaluate few-shot learners and report the result",
    "algorithms": "optimization-, metric- and model-based families: MAML, Reptile, ProtoNet, MoE",
    "applications": "vision, language and reinforcement learning",
    "distillation": "knowledge distillation: soft targets, temperature, the KD loss",
    "compression": "pruning, quantization, low-rank factorization",
    "fusion": "ensembles, weight averaging (soups), mixtures of experts",
}


#: Machine-checkable answer kinds (``written`` is graded by a person).
KINDS = ("mc", "numeric", "short", "written")

#: What drill entries hold in ``model_answer`` and ``common_wrong_answer``.
HIDDEN_ANSWER = ("Hidden: this question is an autograded drill of chapter 07. Its model answer "
                 "is in the drill's hidden test and appears in your grading feedback.")

#: The same placeholder in Chinese (``model_answer_zh`` and ``common_wrong_answer_zh`` of drills).
HIDDEN_ANSWER_ZH = ("已隐藏：本题是第 07 章的自动评分练习（autograded drill），参考答案放在该练习的"
                    "隐藏测试里，评分反馈中会给出答案和讲解。")

#: The display languages: English, Chinese, or both (English first).
LANGUAGES = ("en", "zh", "both")

#: The default bank file, shipped with the package.
BANK_PATH = Path(__file__).parent.parent / "question_bank.json"

_REQUIRED = ("id", "topic", "question_en", "question_zh", "model_answer", "follow_up",
             "common_wrong_answer", "chapter_link", "model_answer_zh", "follow_up_zh",
             "common_wrong_answer_zh")
#: Each Chinese answer field and its English twin.
ZH_FIELDS = {"model_answer_zh": "model_answer", "follow_up_zh": "follow_up",
             "common_wrong_answer_zh": "common_wrong_answer"}
_ANSWER_FIELDS = ("answer", "value", "tolerance", "accepted")
_OPTIONAL = ("kind", "options", "drill", *_ANSWER_FIELDS)
_ID_RE = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
_CJK_RE = re.compile(r"[\u4e00-\u9fff]")
_LATIN_WORD_RE = re.compile(r"[A-Za-z]+")
_LETTERS = "abcdefgh"

#: Least share of Chinese in a Chinese field: CJK characters / (CJK characters + Latin words).
MIN_CHINESE_SHARE = 0.5


def chinese_share(text: str) -> float:
    """CJK characters / (CJK characters + Latin words) of ``text`` (0 when it has neither).

    A Latin word counts once, like one Chinese character, so an answer that keeps formulas and
    bracketed English terms still counts as Chinese; an English copy scores 0.
    """
    cjk = len(_CJK_RE.findall(text))
    words = len(_LATIN_WORD_RE.findall(text))
    return cjk / (cjk + words) if cjk + words else 0.0


def is_mostly_chinese(text: str) -> bool:
    """Whether ``text`` is written in Chinese (:func:`chinese_share` >= :data:`MIN_CHINESE_SHARE`)."""
    return chinese_share(text) >= MIN_CHINESE_SHARE


def _check_lang(lang) -> str:
    if lang not in LANGUAGES:
        raise course_error("lang", "'en', 'zh' or 'both'", _short(lang),
                           "pick a language: 'en' (English), 'zh' (中文) or 'both'")
    return lang


# --------------------------------------------------------------------------- the bank
@dataclass(frozen=True)
class Question:
    """One bank entry (see the module docstring for the fields)."""
    id: str
    topic: str
    question_en: str
    question_zh: str
    model_answer: str
    follow_up: str
    common_wrong_answer: str
    chapter_link: str
    model_answer_zh: str
    follow_up_zh: str
    common_wrong_answer_zh: str
    kind: str | None = None
    options: tuple = ()
    answer: int | None = None
    value: float | None = None
    tolerance: float | None = None
    accepted: tuple = ()
    drill: str | None = None

    @property
    def is_drill(self) -> bool:
        """True for questions graded in chapter 07 (their answers are not in the bank)."""
        return self.drill is not None

    @property
    def chapter(self) -> str:
        """The chapter folder of ``chapter_link`` (e.g. ``"02_maml_vs_transfer"``)."""
        return self.chapter_link.split("/")[1]

    @property
    def relative_link(self) -> str:
        """``chapter_link`` as seen from a notebook in ``chapters/07_interview/`` (``../NN_name/…``)."""
        return "../" + self.chapter_link.split("/", 1)[1]

    @property
    def section(self) -> str:
        """The section title of ``chapter_link`` (hyphens read as spaces)."""
        return self.chapter_link.split("#", 1)[1].replace("-", " ")

    def text(self, field: str, lang: str) -> str:
        """A field in one language: ``q.text("model_answer", "zh")`` is ``q.model_answer_zh``;
        ``question`` reads ``question_en`` / ``question_zh``."""
        if field == "question":
            return self.question_zh if lang == "zh" else self.question_en
        return getattr(self, field + "_zh") if lang == "zh" else getattr(self, field)

    def letters(self) -> list[str]:
        """The option letters ``["a", "b", ...]`` of a multiple-choice question."""
        return list(_LETTERS[:len(self.options)])


class QuestionBank:
    """A validated list of :class:`Question` s with look-ups and seeded draws."""

    def __init__(self, questions: list[Question], source: str = "<memory>"):
        self.questions = list(questions)
        self.source = source
        self._by_id = {q.id: q for q in self.questions}

    def __len__(self) -> int:
        return len(self.questions)

    def __iter__(self):
        return iter(self.questions)

    def __getitem__(self, key) -> Question:
        """``bank["alg-reptile"]`` by id, or ``bank[3]`` by position."""
        if isinstance(key, int):
            return self.questions[key]
        if key not in self._by_id:
            close = [i for i in self._by_id if key.split("-")[0] in i][:5]
            raise course_error(f"question id {key!r}", "an id from the bank",
                               "no such entry", "pick one of e.g. " + ", ".join(close or list(self._by_id)[:5]))
        return self._by_id[key]

    def ids(self) -> list[str]:
        return [q.id for q in self.questions]

    def coverage(self, include_drills: bool = True) -> dict[str, int]:
        """Number of entries per topic, in :data:`TOPICS` order."""
        counts = {t: 0 for t in TOPICS}
        for q in self.questions:
            if include_drills or not q.is_drill:
                counts[q.topic] += 1
        return counts

    def self_study(self) -> list[Question]:
        """Entries with their answers in the bank (not chapter-06 drills)."""
        return [q for q in self.questions if not q.is_drill]

    def drills(self) -> list[Question]:
        """Entries graded in chapter 07 (answers hidden)."""
        return [q for q in self.questions if q.is_drill]

    def select(self, topics=None, include_drills: bool = False) -> list[Question]:
        """Entries of the given topics (default: all), without drills unless asked."""
        topics = _check_topics(topics)
        return [q for q in self.questions
                if q.topic in topics and (include_drills or not q.is_drill)]

    def draw(self, n: int, seed: int = 0, topics=None, include_drills: bool = False) -> list[Question]:
        """``n`` distinct questions spread over topics: topics in a seeded random order, one
        question from each in turn (a mock interview does not ask five questions on one topic)."""
        pool = self.select(topics, include_drills)
        if int(n) != n or n < 1 or n > len(pool):
            raise course_error("n", f"an integer from 1 to {len(pool)} (the questions available)",
                               repr(n), "ask for fewer questions or allow more topics")
        rng = random.Random(seed)
        groups: dict[str, list[Question]] = {}
        for q in pool:
            groups.setdefault(q.topic, []).append(q)
        order = sorted(groups)
        rng.shuffle(order)
        for t in order:
            rng.shuffle(groups[t])
        drawn: list[Question] = []
        while len(drawn) < n:
            for t in order:
                if groups[t] and len(drawn) < n:
                    drawn.append(groups[t].pop())
        return drawn


def _check_topics(topics) -> set[str]:
    if topics is None:
        return set(TOPICS)
    topics = {topics} if isinstance(topics, str) else set(topics)
    unknown = sorted(topics - set(TOPICS))
    if unknown:
        raise course_error("topics", "names from " + ", ".join(TOPICS), repr(unknown),
                           "pick topics from utils.interview.TOPICS")
    return topics


def _short(x, n: int = 60) -> str:
    s = repr(x)
    return s if len(s) <= n else s[:n - 3] + "..."



# --------------------------------------------------------------------------- answers
def normalize_answer(text) -> str:
    """Lower-case, trim, drop backticks, quotes, a trailing ``()`` or full stop, collapse spaces.

    ``normalize_answer("  `Top-K` gating. ") == "top-k gating"``.
    """
    s = str(text).strip().lower()
    s = s.replace("`", "").replace('"', "").replace("'", "")
    s = re.sub(r"\s+", " ", s).strip()
    s = re.sub(r"(\(\))?[.!]*$", "", s).strip()
    return s


def check_answer(question: Question, response) -> bool:
    """Whether ``response`` answers a self-study ``question`` correctly.

    mc: a letter (``"b"``) or a 0-based index; numeric: a number within ``tolerance``;
    short: text equal to an accepted answer after :func:`normalize_answer`. Drills (answers
    hidden) and written questions cannot be checked here and raise a CourseError.
    """
    if question.is_drill:
        raise course_error(f"question {question.id!r}", "a self-study question",
                           "a graded drill (its answer is hidden)", "answer it in chapter 07 and grade the notebook")
    if question.kind == "mc":
        if isinstance(response, str):
            r = response.strip().lower().rstrip(")")
            if r not in question.letters():
                raise course_error("response", "one of the letters " + ", ".join(question.letters()),
                                   _short(response), "answer with one letter")
            return question.letters().index(r) == question.answer
        if isinstance(response, int) and not isinstance(response, bool):
            return response == question.answer
        raise course_error("response", "a letter or an option index", _short(response), "answer with one letter")
    if question.kind == "numeric":
        try:
            x = float(str(response).replace(",", "")) if isinstance(response, str) else float(response)
        except (TypeError, ValueError):
            raise course_error("response", "a number", _short(response), "answer with a number") from None
        return math.isfinite(x) and abs(x - question.value) <= question.tolerance + 1e-12 * abs(question.value)
    if question.kind == "short":
        return normalize_answer(response) in {normalize_answer(a) for a in question.accepted}
    raise course_error(f"question {question.id!r}", "a question of kind mc, numeric or short",
                       f"kind {question.kind!r}", "compare your answer with the model answer yourself")
