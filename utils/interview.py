"""Interview practice: the question bank, flashcards and a timed mock interview.

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

import html
import math
import random
import re
import time
from dataclasses import dataclass
from pathlib import Path

from .chapters import CHAPTERS, CHAPTER_LINK_RE
from .errors import CourseError, course_error, read_json_file

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
BANK_PATH = Path(__file__).with_name("question_bank.json")

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


def _entry_error(i: int, entry, field_name: str, expected: str, found: str, fix: str) -> CourseError:
    has_id = isinstance(entry, dict) and isinstance(entry.get("id"), str)
    name = f"#{i} ({entry['id']!r})" if has_id else f"#{i}"
    return course_error(f"question bank entry {name}, field {field_name!r}", expected, found, fix)


def _short(x, n: int = 60) -> str:
    s = repr(x)
    return s if len(s) <= n else s[:n - 3] + "..."


def validate_entry(entry: dict, i: int = 0) -> Question:
    """Check one raw entry and turn it into a :class:`Question`; raise a clear CourseError if malformed."""
    if not isinstance(entry, dict):
        raise course_error(f"question bank entry #{i}", "a JSON object with the fields "
                           + ", ".join(_REQUIRED), type(entry).__name__, "write the entry as {...}")
    unknown = sorted(set(entry) - set(_REQUIRED) - set(_OPTIONAL))
    if unknown:
        raise _entry_error(i, entry, unknown[0], "one of " + ", ".join(_REQUIRED + _OPTIONAL),
                           "an unknown field", "fix the field's spelling or remove it")
    for key in _REQUIRED:
        value = entry.get(key)
        if not isinstance(value, str) or not value.strip():
            found = "nothing (missing)" if key not in entry else _short(value)
            raise _entry_error(i, entry, key, "a non-empty string", found, f"write the {key}")
    if not _ID_RE.match(entry["id"]):
        raise _entry_error(i, entry, "id", "lowercase words joined by '-' (e.g. 'alg-reptile')",
                           _short(entry["id"]), "rename the entry")
    if entry["topic"] not in TOPICS:
        raise _entry_error(i, entry, "topic", "one of " + ", ".join(TOPICS), _short(entry["topic"]),
                           "pick a topic from utils.interview.TOPICS")
    if not _CJK_RE.search(entry["question_zh"]):
        raise _entry_error(i, entry, "question_zh", "the question in Chinese (CJK characters)",
                           _short(entry["question_zh"]), "write the Chinese version")
    if _CJK_RE.search(entry["question_en"]) or not re.search(r"[A-Za-z]{3}", entry["question_en"]):
        raise _entry_error(i, entry, "question_en", "the question in English (no CJK characters)",
                           _short(entry["question_en"]), "write the English version")
    for zh, en in ZH_FIELDS.items():
        if entry[zh].strip() == entry[en].strip() or not is_mostly_chinese(entry[zh]):
            raise _entry_error(i, entry, zh, f"the {en} in Chinese (at least {MIN_CHINESE_SHARE:.0%} "
                               "Chinese: CJK characters against Latin words)",
                               f"{_short(entry[zh])} (Chinese share {chinese_share(entry[zh]):.0%})",
                               f"write the {en} in Chinese, keeping English only for terms and formulas")
    m = CHAPTER_LINK_RE.match(entry["chapter_link"])
    if not m or m.group(1) != m.group(2) or m.group(1) not in CHAPTERS:
        raise _entry_error(i, entry, "chapter_link",
                           "chapters/NN_name/NN_name.ipynb#Section-title with NN_name one of "
                           + ", ".join(CHAPTERS), _short(entry["chapter_link"]),
                           "link the chapter and the section that teaches the question")

    kind = entry.get("kind")
    drill = entry.get("drill")
    if kind is not None and kind not in KINDS:
        raise _entry_error(i, entry, "kind", "one of " + ", ".join(KINDS), _short(kind),
                           "pick a kind or leave it out for a plain flashcard")
    if drill is not None:
        if not isinstance(drill, str) or not _ID_RE.match(drill):
            raise _entry_error(i, entry, "drill", "the grade_id of the chapter-06 test cell (e.g. "
                               "'test-drill-reptile')", _short(drill), "name the test cell")
        if kind is None:
            raise _entry_error(i, entry, "kind", "a kind for a graded drill", "nothing",
                               "add kind: mc, numeric, short or written")
        present = [k for k in _ANSWER_FIELDS if k in entry]
        if present:
            raise _entry_error(i, entry, present[0], "no answer in the bank for a graded drill "
                               "(learners can read this file)", "an answer field",
                               "move the answer into the drill's hidden test in the chapter-06 notebook")
        for key, hidden in (("model_answer", HIDDEN_ANSWER), ("common_wrong_answer", HIDDEN_ANSWER),
                            ("model_answer_zh", HIDDEN_ANSWER_ZH),
                            ("common_wrong_answer_zh", HIDDEN_ANSWER_ZH)):
            if entry[key] != hidden:
                name = "HIDDEN_ANSWER_ZH" if key.endswith("_zh") else "HIDDEN_ANSWER"
                raise _entry_error(i, entry, key, f"utils.interview.{name} for a graded drill",
                                   _short(entry[key]), "put the explanation in the drill's hidden test")

    options = entry.get("options")
    if kind == "mc":
        if (not isinstance(options, list) or not 2 <= len(options) <= len(_LETTERS)
                or not all(isinstance(o, str) and o.strip() for o in options)
                or len(set(options)) != len(options)):
            raise _entry_error(i, entry, "options", f"a list of 2 to {len(_LETTERS)} distinct non-empty strings",
                               _short(options), "write the options of the multiple-choice question")
    elif options is not None:
        raise _entry_error(i, entry, "options", "options only on kind 'mc'", _short(options),
                           "set kind to 'mc' or remove the options")

    answer = value = tolerance = None
    accepted: tuple = ()
    if drill is None:
        if kind == "mc":
            answer = entry.get("answer")
            if isinstance(answer, bool) or not isinstance(answer, int) or not 0 <= answer < len(options):
                raise _entry_error(i, entry, "answer", f"the index (0 to {len(options) - 1}) of the right option",
                                   _short(answer), "write the right option's 0-based index")
        elif kind == "numeric":
            value, tolerance = entry.get("value"), entry.get("tolerance", 0)
            for key, v in (("value", value), ("tolerance", tolerance)):
                if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                    raise _entry_error(i, entry, key, "a finite number", _short(v), f"write the {key}")
            if tolerance < 0:
                raise _entry_error(i, entry, "tolerance", "a number >= 0", _short(tolerance),
                                   "write how far from value an answer may be")
            value, tolerance = float(value), float(tolerance)
        elif kind == "short":
            acc = entry.get("accepted")
            if (not isinstance(acc, list) or not acc
                    or not all(isinstance(a, str) and normalize_answer(a) for a in acc)):
                raise _entry_error(i, entry, "accepted", "a non-empty list of accepted answers (strings)",
                                   _short(acc), "list the answers that count as right")
            accepted = tuple(dict.fromkeys(a.strip() for a in acc))
        present = [k for k in _ANSWER_FIELDS if k in entry and not (
            (kind == "mc" and k == "answer") or (kind == "numeric" and k in ("value", "tolerance"))
            or (kind == "short" and k == "accepted"))]
        if present:
            raise _entry_error(i, entry, present[0], f"no {present[0]!r} on an entry of kind {kind!r}",
                               "a stray answer field", "remove it or fix the kind")
    return Question(id=entry["id"], topic=entry["topic"], question_en=entry["question_en"].strip(),
                    question_zh=entry["question_zh"].strip(), model_answer=entry["model_answer"].strip(),
                    follow_up=entry["follow_up"].strip(),
                    common_wrong_answer=entry["common_wrong_answer"].strip(),
                    chapter_link=entry["chapter_link"],
                    model_answer_zh=entry["model_answer_zh"].strip(),
                    follow_up_zh=entry["follow_up_zh"].strip(),
                    common_wrong_answer_zh=entry["common_wrong_answer_zh"].strip(), kind=kind,
                    options=tuple(options) if options else (), answer=answer, value=value,
                    tolerance=tolerance, accepted=accepted, drill=drill)


def validate_bank(data, source: str = "<memory>") -> QuestionBank:
    """Validate a parsed bank (``{"entries": [...]}`` or a bare list of entries)."""
    entries = data.get("entries") if isinstance(data, dict) else data
    if not isinstance(entries, list):
        raise course_error(f"question bank {source}", 'a JSON object {"entries": [...]}',
                           type(data).__name__ if not isinstance(data, dict) else "no 'entries' list",
                           "write the entries as a list under the key 'entries'")
    questions, seen_ids, seen_drills = [], {}, {}
    for i, entry in enumerate(entries):
        q = validate_entry(entry, i)
        if q.id in seen_ids:
            raise course_error(f"question bank entry {q.id!r}", "a unique id",
                               f"the same id as entry #{seen_ids[q.id]}", "rename one of them")
        if q.drill is not None and q.drill in seen_drills:
            raise course_error(f"question bank entry {q.id!r}, field 'drill'", "one entry per test cell",
                               f"{q.drill!r} also used by {seen_drills[q.drill]!r}", "fix the grade_id")
        seen_ids[q.id] = i
        if q.drill is not None:
            seen_drills[q.drill] = q.id
        questions.append(q)
    return QuestionBank(questions, source)


def load_bank(path: str | Path | None = None) -> QuestionBank:
    """Read and validate the question bank (default: the course's ``utils/question_bank.json``)."""
    path = BANK_PATH if path is None else Path(path)
    data = read_json_file(path, "question bank", "pass the path of a question bank, or none for the course's own")
    return validate_bank(data, str(path))


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


# --------------------------------------------------------------------------- rendering
def _inline(text: str) -> str:
    """Escape HTML and turn `code` spans into <code> elements."""
    out = html.escape(text)
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", out)


def _answer_line(q: Question) -> str:
    if q.kind == "mc" and q.answer is not None:
        return f"({q.letters()[q.answer]}) {q.options[q.answer]} — "
    if q.kind == "numeric" and q.value is not None:
        return f"{q.value:g}" + (f" (± {q.tolerance:g})" if q.tolerance else "") + " — "
    if q.kind == "short" and q.accepted:
        return f"{q.accepted[0]} — "
    return ""


#: Labels of a revealed card, per language.
LABELS = {
    "en": {"model_answer": "Model answer.", "follow_up": "Follow-up.",
           "common_wrong_answer": "Common wrong answer.", "taught": "Taught in", "graded": "Graded in",
           "drill": "graded drill", "hidden": HIDDEN_ANSWER},
    "zh": {"model_answer": "参考答案：", "follow_up": "追问：", "common_wrong_answer": "常见错误回答：",
           "taught": "讲解章节：", "graded": "评分章节：", "drill": "自动评分练习", "hidden": HIDDEN_ANSWER_ZH},
}


def _langs(lang: str) -> tuple[str, ...]:
    """The languages shown for ``lang`` ("both": English first, then Chinese)."""
    return ("en", "zh") if _check_lang(lang) == "both" else (lang,)


def card_html(q: Question, reveal: bool = False, lang: str = "both") -> str:
    """One card as HTML: the question (English, Chinese or both), options, and, when
    ``reveal``, the model answer, the follow-up, the common wrong answer (in the same language or
    languages) and the chapter link. A drill's answers stay hidden in every language."""
    langs = _langs(lang)
    parts = [f"<div style='border:1px solid #bbb;border-radius:6px;padding:8px 12px;margin:6px 0'>",
             f"<div style='color:#666;font-size:85%'>{html.escape(q.topic)} · <code>{html.escape(q.id)}</code>"
             + (" · graded drill" if q.is_drill else "") + "</div>"]
    if lang in ("en", "both"):
        parts.append(f"<div style='font-weight:bold;margin-top:4px'>{_inline(q.question_en)}</div>")
    if lang in ("zh", "both"):
        parts.append(f"<div style='margin-top:2px'>{_inline(q.question_zh)}</div>")
    if q.options:
        parts.append("<ol type='a' style='margin:4px 0'>" + "".join(
            f"<li>{_inline(o)}</li>" for o in q.options) + "</ol>")
    if reveal:
        if q.is_drill:
            parts += [f"<div><i>{_inline(LABELS[x]['hidden'])}</i></div>" for x in langs]
        else:
            for i, field in enumerate(("model_answer", "follow_up", "common_wrong_answer")):
                for x in langs:
                    head = _inline(_answer_line(q)) if field == "model_answer" else ""
                    style = " style='margin-top:6px'" if i == 0 and x == langs[0] else ""
                    parts.append(f"<div{style} lang='{x}'><b>{LABELS[x][field]}</b> {head}"
                                 f"{_inline(q.text(field, x))}</div>")
        where = " / ".join(LABELS[x]["graded" if q.is_drill else "taught"] for x in langs)
        parts.append(f"<div style='font-size:85%'>{where} "
                     f"<a href='{html.escape(q.relative_link)}'>"
                     f"{html.escape(q.chapter)} — {html.escape(q.section)}</a></div>")
    parts.append("</div>")
    return "".join(parts)


def question_markdown(q: Question, lang: str = "both") -> str:
    """The question as Markdown (for a drill: question, options as letters, answer format)."""
    _check_lang(lang)
    lines = [f"**`{q.id}`** ({q.topic})", ""]
    if lang in ("en", "both"):
        lines.append(q.question_en)
    if lang in ("zh", "both"):
        lines += ["", q.question_zh]
    if q.options:
        lines.append("")
        lines += [f"- **{letter}**) {opt}" for letter, opt in zip(q.letters(), q.options)]
    fmt = {"mc": "one letter, e.g. `\"a\"`", "numeric": "a number", "short": "a short text",
           "written": "a few sentences (graded by hand)"}.get(q.kind or "")
    fmt_zh = {"mc": "一个字母作答，例如 `\"a\"`", "numeric": "一个数字作答", "short": "简短文字作答",
              "written": "几句话作答（人工评分）"}.get(q.kind or "")
    if fmt and lang in ("en", "both"):
        lines += ["", f"*Answer with {fmt}.*"]
    if fmt_zh and lang in ("zh", "both"):
        lines += ["", f"*请用{fmt_zh}。*"]
    return "\n".join(lines)


# --------------------------------------------------------------------------- practice sheet
_SHEET = {
    "en": {"title": "Interview practice sheet", "topics": "Topics: {t} · {n} questions", "questions": "Questions",
           "answers": "Answers", "follow_up": "Follow-up", "wrong": "Common wrong answer",
           "taught": "Taught in", "hint": "Answer aloud first; the answers are at the end."},
    "zh": {"title": "面试练习题单", "topics": "主题：{t} · 共 {n} 题", "questions": "题目", "answers": "答案",
           "follow_up": "追问", "wrong": "常见错误回答", "taught": "讲解章节",
           "hint": "先自己口头作答，答案在最后。"},
}


def practice_sheet(bank: QuestionBank | None = None, topics=None, lang: str = "both") -> str:
    """A Markdown practice sheet: the questions of ``topics`` (default all) numbered, then their
    answers at the end (model answer, follow-up, common wrong answer, chapter section), in
    ``lang`` (``"en"``, ``"zh"`` or ``"both"``). Drills are included; their answers stay hidden.
    """
    langs = _langs(lang)
    bank = bank or load_bank()
    questions = bank.select(topics, include_drills=True)
    chosen = [t for t in TOPICS if t in _check_topics(topics)]
    L = {k: " · ".join(_SHEET[x][k] for x in langs) for k in _SHEET["en"]}
    colon = {"en": ":", "zh": "："}
    out = [f"# {L['title']}", "", L["topics"].format(t=", ".join(chosen), n=len(questions)), "",
           f"*{L['hint']}*", "", f"## {L['questions']}", ""]
    for n, q in enumerate(questions, 1):
        body = question_markdown(q, lang).split("\n", 1)[1].strip("\n")  # drop the id line
        out += [f"### {n}. `{q.id}`", "", body, ""]
    out += ["---", "", f"## {L['answers']}", ""]
    for n, q in enumerate(questions, 1):
        out += [f"### {n}. `{q.id}`", ""]
        for x in langs:
            if q.is_drill:
                out += [f"*{LABELS[x]['hidden']}*", ""]
                continue
            out += [f"**{LABELS[x]['model_answer']}** {_answer_line(q)}{q.text('model_answer', x)}", "",
                    f"**{_SHEET[x]['follow_up']}{colon[x]}** {q.text('follow_up', x)}", "",
                    f"**{_SHEET[x]['wrong']}{colon[x]}** {q.text('common_wrong_answer', x)}", ""]
        out += [f"{L['taught']}{colon[langs[-1]]} [{q.chapter} — {q.section}]({q.chapter_link})", ""]
    return "\n".join(out).rstrip() + "\n"


# --------------------------------------------------------------------------- glossary terms
def _zh_forms(chinese: str) -> tuple[str, ...]:
    """The Chinese names a glossary term may appear as: the whole name, and for a name like
    ``"模型无关元学习（MAML）"`` the part before the bracket (spaces ignored)."""
    name = re.sub(r"\s+", "", chinese)
    core = re.split(r"[（(]", name, 1)[0]
    return tuple(dict.fromkeys(f for f in (name, core) if f))


def used_terms(text: str, glossary=None) -> list:
    """Glossary entries ``text`` (English) uses: the entry's term or one of its aliases as a whole
    word (hyphens and letters are word characters, so "multi-task" does not use "task"),
    case-insensitive, optionally plural (``-s``/``-es``). A match inside a longer match is not
    counted ("first-order MAML" uses first-order MAML, not MAML)."""
    from .glossary import load_glossary

    glossary = load_glossary() if glossary is None else glossary
    found = []
    for entry in glossary:
        for name in (entry.term, *entry.aliases):
            pat = r"(?<![\w-])" + re.escape(name) + r"(?:s|es)?(?![\w-])"
            found += [(m.start(), m.end(), entry) for m in re.finditer(pat, text, re.IGNORECASE)]
    found.sort(key=lambda m: (m[0], -(m[1] - m[0])))
    kept, end = [], -1
    for start, stop, entry in found:
        if start >= end:
            kept.append(entry)
            end = stop
        elif stop > end:  # overlapping but not inside: keep it too
            kept.append(entry)
            end = stop
    return list(dict.fromkeys(kept))


def missing_glossary_terms(q: Question, fields=("model_answer",), glossary=None) -> dict[str, list[str]]:
    """For each English ``field`` of ``q``: the glossary terms it uses (:func:`used_terms`) whose
    Chinese name (:func:`_zh_forms`) is absent from the field's Chinese twin (``field + "_zh"``).
    Drills are skipped for their hidden fields. Returns ``{field: ["term → 中文", ...]}`` (only
    fields that miss something)."""
    from .glossary import load_glossary

    glossary = load_glossary() if glossary is None else glossary
    missing = {}
    for field in fields:
        zh = re.sub(r"\s+", "", q.text(field, "zh"))
        miss = [f"{e.term} → {e.chinese}" for e in used_terms(q.text(field, "en"), glossary)
                if not any(f in zh for f in _zh_forms(e.chinese))]
        if miss:
            missing[field] = miss
    return missing


def show_question(question, bank: QuestionBank | None = None, lang: str = "both") -> Question:
    """Display one question (an id or a :class:`Question`) as Markdown; return the Question."""
    q = question if isinstance(question, Question) else (bank or load_bank())[question]
    try:
        from IPython.display import Markdown, display
        display(Markdown(question_markdown(q, lang)))
    except ImportError:  # pragma: no cover - IPython ships with the course
        print(question_markdown(q, lang))
    return q


def _fmt_seconds(s: float) -> str:
    s = max(0, int(round(s)))
    return f"{s // 60}:{s % 60:02d}"


def summary_html(summary: dict) -> str:
    """A flashcard or mock-interview summary (the dict of ``.summary()``) as an HTML table."""
    rows = []
    if "known" in summary:  # flashcards
        head = (f"<b>Flashcards:</b> {summary['known']} known, {summary['unknown']} not yet, "
                f"{summary['remaining']} left of {summary['total']}")
        for topic, c in summary["by_topic"].items():
            rows.append(f"<tr><td>{html.escape(topic)}</td><td>{c['cards']}</td><td>{c['known']}</td>"
                        f"<td>{c['unknown']}</td></tr>")
        table = ("<table><tr><th>topic</th><th>cards</th><th>known</th><th>not yet</th></tr>"
                 + "".join(rows) + "</table>")
        todo = summary["unknown_ids"]
    else:  # mock interview
        head = (f"<b>Mock interview:</b> {summary['answered']} of {summary['total']} answered, "
                f"score {summary['score']} / {summary['max_score']}, total time "
                f"{_fmt_seconds(summary['total_seconds'])}, {summary['over_time']} over the "
                f"{_fmt_seconds(summary['seconds_per_question'])} budget")
        for r in summary["questions"]:
            rows.append(f"<tr><td><code>{html.escape(r['id'])}</code></td><td>{html.escape(r['topic'])}</td>"
                        f"<td>{'—' if r['seconds'] is None else _fmt_seconds(r['seconds'])}</td>"
                        f"<td>{'—' if r['score'] is None else SCORES[r['score']]}</td></tr>")
        table = ("<table><tr><th>question</th><th>topic</th><th>time</th><th>self-score</th></tr>"
                 + "".join(rows) + "</table>")
        todo = summary["to_review"]
    review = ("<div>Revisit: " + ", ".join(f"<code>{html.escape(i)}</code>" for i in todo) + "</div>") if todo else ""
    return f"<div>{head}{table}{review}</div>"


# --------------------------------------------------------------------------- flashcards
class FlashcardSession:
    """A pass through a deck: reveal the answer, mark the card known or unknown, next card.

    Args:
        questions: the cards (e.g. ``bank.select(...)`` or ``bank.draw(...)``).
        seed: shuffles the deck (``None`` keeps the given order).
    """

    def __init__(self, questions, seed: int | None = 0):
        cards = list(questions)
        if not cards:
            raise course_error("questions", "at least one card", "an empty deck",
                               "choose other topics or more questions")
        if seed is not None:
            random.Random(seed).shuffle(cards)
        self.cards = cards
        self.index = 0
        self.revealed = False
        self.marks: dict[str, bool] = {}

    @property
    def done(self) -> bool:
        return self.index >= len(self.cards)

    @property
    def current(self) -> Question | None:
        """The card shown now (``None`` when the deck is finished)."""
        return None if self.done else self.cards[self.index]

    def reveal(self) -> Question:
        """Show the current card's answer."""
        self._need_card("reveal")
        self.revealed = True
        return self.cards[self.index]

    def mark(self, known: bool) -> None:
        """Record the current card as known (``True``) or not yet (``False``), go to the next one."""
        self._need_card("mark")
        if not isinstance(known, bool):
            raise course_error("known", "True or False", _short(known), "mark the card known or unknown")
        self.marks[self.cards[self.index].id] = known
        self.index += 1
        self.revealed = False

    def _need_card(self, action: str) -> None:
        if self.done:
            raise course_error(f"flashcards: {action}", "a card left in the deck",
                               f"all {len(self.cards)} cards done", "look at summary() or retry_unknown()")

    def summary(self) -> dict:
        """Counts (total, known, unknown, remaining), per topic (cards in the deck, known, not
        yet), and the ids to revisit."""
        by_topic: dict[str, dict[str, int]] = {}
        for q in self.cards:
            c = by_topic.setdefault(q.topic, {"cards": 0, "known": 0, "unknown": 0})
            c["cards"] += 1
            if q.id in self.marks:
                c["known" if self.marks[q.id] else "unknown"] += 1
        known = sum(self.marks.values())
        return {"total": len(self.cards), "seen": self.index, "known": known,
                "unknown": self.index - known, "remaining": len(self.cards) - self.index,
                "by_topic": by_topic,
                "known_ids": [i for i, k in self.marks.items() if k],
                "unknown_ids": [i for i, k in self.marks.items() if not k]}

    def retry_unknown(self, seed: int | None = 0) -> "FlashcardSession":
        """A new session over the cards marked unknown."""
        unknown = [q for q in self.cards if self.marks.get(q.id) is False]
        if not unknown:
            raise course_error("retry_unknown", "at least one card marked unknown", "none",
                               "well done — start a new deck instead")
        return FlashcardSession(unknown, seed)


# --------------------------------------------------------------------------- mock interview
#: Self-scores in a mock interview.
SCORES = {2: "answered well", 1: "partly", 0: "missed"}


class MockInterview:
    """A timed mock interview: one question at a time, each timed against a budget.

    Args:
        questions: the questions, in order (e.g. ``bank.draw(5, seed)``).
        seconds_per_question: the time budget per answer.
        clock: a function returning seconds (injectable for tests; default ``time.monotonic``).
    """

    def __init__(self, questions, seconds_per_question: float = 180, clock=time.monotonic):
        self.questions = list(questions)
        if not self.questions:
            raise course_error("questions", "at least one question", "none", "draw some questions")
        if not (isinstance(seconds_per_question, (int, float)) and seconds_per_question > 0):
            raise course_error("seconds_per_question", "a positive number of seconds",
                               _short(seconds_per_question), "pass e.g. 180")
        self.seconds_per_question = float(seconds_per_question)
        self.clock = clock
        self.index = 0
        self.started_at: float | None = None
        self.records: list[dict] = []

    @property
    def started(self) -> bool:
        return self.started_at is not None

    @property
    def done(self) -> bool:
        return self.index >= len(self.questions)

    @property
    def current(self) -> Question | None:
        return None if self.done else self.questions[self.index]

    def start(self) -> Question:
        """Start the clock on the first question (or restart it on the current one)."""
        if self.done:
            raise course_error("mock interview", "a question left", "all answered", "see summary()")
        self.started_at = self.clock()
        return self.questions[self.index]

    def elapsed(self) -> float:
        """Seconds spent on the current question so far (0 before :meth:`start`)."""
        return 0.0 if self.started_at is None or self.done else self.clock() - self.started_at

    def remaining(self) -> float:
        """Seconds left in the current question's budget (negative when over time)."""
        return self.seconds_per_question - self.elapsed()

    def answer(self, score: int) -> None:
        """Close the current question with a self-score (2 well, 1 partly, 0 missed); the next
        question's clock starts at once."""
        if not self.started:
            raise course_error("mock interview", "start() before the first answer", "not started",
                               "call start() (or press Start)")
        if self.done:
            raise course_error("mock interview", "a question left", "all answered", "see summary()")
        if score not in SCORES or isinstance(score, bool):
            raise course_error("score", "2 (answered well), 1 (partly) or 0 (missed)", _short(score),
                               "score your answer")
        now = self.clock()
        q = self.questions[self.index]
        secs = now - self.started_at
        self.records.append({"id": q.id, "topic": q.topic, "seconds": secs, "score": int(score),
                             "over_time": secs > self.seconds_per_question})
        self.index += 1
        self.started_at = now

    def summary(self) -> dict:
        """Per question (time, self-score, over time?), totals, and the ids to review."""
        rows = list(self.records) + [{"id": q.id, "topic": q.topic, "seconds": None, "score": None,
                                      "over_time": False} for q in self.questions[len(self.records):]]
        answered = len(self.records)
        total_s = sum(r["seconds"] for r in self.records)
        return {"total": len(self.questions), "answered": answered,
                "score": sum(r["score"] for r in self.records), "max_score": 2 * len(self.questions),
                "total_seconds": total_s, "mean_seconds": total_s / answered if answered else 0.0,
                "seconds_per_question": self.seconds_per_question,
                "over_time": sum(r["over_time"] for r in self.records), "questions": rows,
                "to_review": [r["id"] for r in self.records if r["score"] < 2 or r["over_time"]]}


# --------------------------------------------------------------------------- widgets
def _display(*objs) -> None:
    from IPython.display import display
    display(*objs)


def _language_toggle(app):
    """Toggle buttons English / 中文 / both that set ``app.lang`` and re-render the app live."""
    import ipywidgets as W

    toggle = W.ToggleButtons(options=[("English", "en"), ("中文", "zh"), ("Both · 双语", "both")],
                             value=app.lang, description="language",
                             style={"button_width": "auto"})

    def switch(change):
        app.lang = change["new"]
        app._render()

    toggle.observe(switch, names="value")
    return toggle


class FlashcardApp:
    """ipywidgets front end of a :class:`FlashcardSession` (``.widget`` is the box to display).

    Buttons: *Reveal answer*, *I knew it*, *Not yet*, and at the end *Retry the 'not yet'
    cards*. Self-study cards of kind mc / numeric / short also get an answer box and *Check*.
    A toggle (``.language``: English / 中文 / both) switches the card's language live.
    """

    def __init__(self, questions, seed: int | None = 0, lang: str = "both"):
        import ipywidgets as W

        self.session = FlashcardSession(questions, seed)
        self.lang = _check_lang(lang)
        self.language = _language_toggle(self)
        self.card = W.HTML()
        self.progress = W.IntProgress(min=0, max=len(self.session.cards), description="cards")
        self.reveal_button = W.Button(description="Reveal answer", icon="eye")
        self.known_button = W.Button(description="I knew it", button_style="success", icon="check")
        self.unknown_button = W.Button(description="Not yet", button_style="warning", icon="repeat")
        self.retry_button = W.Button(description="Retry the 'not yet' cards", icon="refresh")
        self.response = W.Text(placeholder="your answer (letter, number or word)")
        self.check_button = W.Button(description="Check")
        self.feedback = W.HTML()
        self.summary = W.HTML()
        self.reveal_button.on_click(lambda _: self._do(self.session.reveal))
        self.known_button.on_click(lambda _: self._do(lambda: self.session.mark(True)))
        self.unknown_button.on_click(lambda _: self._do(lambda: self.session.mark(False)))
        self.retry_button.on_click(lambda _: self._retry())
        self.check_button.on_click(lambda _: self._check())
        self.answer_row = W.HBox([self.response, self.check_button, self.feedback])
        self.widget = W.VBox([self.language, self.progress, self.card, self.answer_row,
                              W.HBox([self.reveal_button, self.known_button, self.unknown_button,
                                      self.retry_button]), self.summary])
        self._render()

    def _do(self, action) -> None:
        if not self.session.done:
            action()
        self.feedback.value = ""
        self.response.value = ""
        self._render()

    def _retry(self) -> None:
        if self.session.summary()["unknown"]:
            self.session = self.session.retry_unknown()
            self.progress.max = len(self.session.cards)
        self._render()

    def _check(self) -> None:
        q = self.session.current
        if q is None or q.kind not in ("mc", "numeric", "short") or q.is_drill:
            return
        try:
            ok = check_answer(q, self.response.value)
            self.feedback.value = "✅ right" if ok else "❌ not quite — reveal the answer"
        except CourseError as exc:
            self.feedback.value = html.escape(str(exc))

    def _render(self) -> None:
        s = self.session
        self.progress.value = s.index
        q = s.current
        checkable = q is not None and not q.is_drill and q.kind in ("mc", "numeric", "short")
        self.answer_row.layout.display = None if checkable else "none"
        if q is None:
            self.card.value = "<div><b>Deck finished.</b></div>"
        else:
            self.card.value = (f"<div style='color:#666'>card {s.index + 1} of {len(s.cards)}</div>"
                               + card_html(q, reveal=s.revealed, lang=self.lang))
        self.reveal_button.disabled = q is None or s.revealed
        self.known_button.disabled = self.unknown_button.disabled = q is None
        self.retry_button.layout.display = None if s.done and s.summary()["unknown"] else "none"
        self.summary.value = summary_html(s.summary()) if s.index else ""

    def static_html(self, n_cards: int = 3) -> str:
        """What a headless run shows: the first ``n_cards`` cards with answers, and the summary."""
        cards = "".join(card_html(q, reveal=True, lang=self.lang) for q in self.session.cards[:n_cards])
        return (f"<div><b>Flashcards</b> (static view: {min(n_cards, len(self.session.cards))} of "
                f"{len(self.session.cards)} cards shown with their answers)</div>"
                + cards + summary_html(self.session.summary()))


def flashcards(bank: QuestionBank | None = None, topics=None, n: int | None = None, seed: int = 0,
               lang: str = "both", preview: int = 3) -> FlashcardApp:
    """Display a flashcard deck over the bank's self-study questions; return the app.

    Args:
        topics: restrict to these topics (default all); n: draw this many cards (default all).
        lang: ``"en"``, ``"zh"`` or ``"both"``. preview: cards shown by the headless static view.
    """
    from .widgets import is_headless

    bank = bank or load_bank()
    cards = bank.draw(n, seed, topics) if n else bank.select(topics)
    app = FlashcardApp(cards, seed=seed, lang=lang)
    _display(app.widget)
    if is_headless():
        from IPython.display import HTML
        _display(HTML(app.static_html(preview)))
    return app


class MockInterviewApp:
    """ipywidgets front end of a :class:`MockInterview` (``.widget`` is the box to display).

    *Start* starts the clock; a ``Play`` widget ticks once a second (in the browser, so the
    kernel stays free) and refreshes the elapsed / remaining time, which turns red over budget.
    *Reveal model answer* shows the card's answer; *Answered well* / *Partly* / *Missed* score
    the answer and move on; the summary appears at the end. A toggle (``.language``) switches
    the card's language live; it changes what is shown, never the clock or the scores.
    """

    def __init__(self, questions, seconds_per_question: float = 180, lang: str = "both",
                 clock=time.monotonic):
        import ipywidgets as W

        self.session = MockInterview(questions, seconds_per_question, clock)
        self.lang = _check_lang(lang)
        self.language = _language_toggle(self)
        self.revealed = False
        self.tick = W.Play(interval=1000, min=0, max=10**7, step=1, show_repeat=False,
                           description="timer")
        self.tick.layout.display = "none"
        self.timer = W.HTML()
        self.card = W.HTML()
        self.start_button = W.Button(description="Start", button_style="primary", icon="play")
        self.reveal_button = W.Button(description="Reveal model answer", icon="eye")
        self.score_buttons = {
            2: W.Button(description="Answered well", button_style="success"),
            1: W.Button(description="Partly", button_style="info"),
            0: W.Button(description="Missed", button_style="warning"),
        }
        self.summary = W.HTML()
        self.start_button.on_click(lambda _: self._start())
        self.reveal_button.on_click(lambda _: self._reveal())
        for score, b in self.score_buttons.items():
            b.on_click(lambda _, s=score: self._answer(s))
        self.tick.observe(lambda _: self._render_timer(), names="value")
        self.widget = W.VBox([self.language, W.HBox([self.start_button, self.timer, self.tick]), self.card,
                              W.HBox([self.reveal_button, *self.score_buttons.values()]), self.summary])
        self._render()

    def _start(self) -> None:
        if not self.session.started and not self.session.done:
            self.session.start()
            self.tick.value = 0
            self.tick.playing = True
        self._render()

    def _reveal(self) -> None:
        self.revealed = True
        self._render()

    def _answer(self, score: int) -> None:
        if self.session.started and not self.session.done:
            self.session.answer(score)
            self.revealed = False
            if self.session.done:
                self.tick.playing = False
        self._render()

    def _render_timer(self) -> None:
        s = self.session
        if not s.started or s.done:
            self.timer.value = (f"<span>budget {_fmt_seconds(s.seconds_per_question)} per question</span>"
                                if not s.done else "<span>finished</span>")
            return
        over = s.remaining() < 0
        color = "#c00" if over else "#333"
        left = ("over by " + _fmt_seconds(-s.remaining())) if over else (_fmt_seconds(s.remaining()) + " left")
        self.timer.value = (f"<span style='color:{color};font-family:monospace'>⏱ "
                            f"{_fmt_seconds(s.elapsed())} elapsed · {left}</span>")

    def _render(self) -> None:
        s = self.session
        q = s.current
        if not s.started:
            self.card.value = (f"<div>{len(s.questions)} questions, "
                               f"{_fmt_seconds(s.seconds_per_question)} each. Answer aloud, then score "
                               "yourself. Press <b>Start</b>.</div>")
        elif q is None:
            self.card.value = "<div><b>Interview finished.</b></div>"
        else:
            self.card.value = (f"<div style='color:#666'>question {s.index + 1} of {len(s.questions)}</div>"
                               + card_html(q, reveal=self.revealed, lang=self.lang))
        active = s.started and not s.done
        self.start_button.disabled = s.started
        self.reveal_button.disabled = not active or self.revealed
        for b in self.score_buttons.values():
            b.disabled = not active
        self.summary.value = summary_html(s.summary()) if s.records else ""
        self._render_timer()

    def static_html(self) -> str:
        """What a headless run shows: the drawn questions with their answers and the summary table."""
        s = self.session
        cards = "".join(card_html(q, reveal=True, lang=self.lang) for q in s.questions)
        return (f"<div><b>Mock interview</b> (static view): {len(s.questions)} questions, "
                f"{_fmt_seconds(s.seconds_per_question)} each.</div>" + cards + summary_html(s.summary()))


def mock_interview(bank: QuestionBank | None = None, n: int = 5, minutes: float = 3.0, seed: int = 0,
                   topics=None, lang: str = "both") -> MockInterviewApp:
    """Display a timed mock interview of ``n`` questions spread over topics; return the app."""
    from .widgets import is_headless

    bank = bank or load_bank()
    if not (isinstance(minutes, (int, float)) and minutes > 0):
        raise course_error("minutes", "a positive number of minutes per question", _short(minutes),
                           "pass e.g. 3")
    app = MockInterviewApp(bank.draw(n, seed, topics), seconds_per_question=60 * minutes, lang=lang)
    _display(app.widget)
    if is_headless():
        from IPython.display import HTML
        _display(HTML(app.static_html()))
    return app
