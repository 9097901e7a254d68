"""The question bank's validator and loader (chapter 07): every entry is checked against the schema
of :mod:`utils.interview` and turned into a :class:`~utils.interview.bank.Question`, or a clear
CourseError names the entry, the field, what was expected and how to fix it.
"""
from __future__ import annotations

import math
import re
from pathlib import Path

from ..chapters import CHAPTERS, CHAPTER_LINK_RE
from ..errors import CourseError, course_error, read_json_file
from .bank import (_ANSWER_FIELDS, _CJK_RE, _ID_RE, _LETTERS, _OPTIONAL, _REQUIRED, BANK_PATH, HIDDEN_ANSWER,
                   HIDDEN_ANSWER_ZH, KINDS, MIN_CHINESE_SHARE, TOPICS, ZH_FIELDS, Question, QuestionBank, _short,
                   chinese_share, is_mostly_chinese, normalize_answer)

__all__ = ["validate_entry", "validate_bank", "load_bank"]


def _entry_error(i: int, entry, field_name: str, expected: str, found: str, fix: str) -> CourseError:
    has_id = isinstance(entry, dict) and isinstance(entry.get("id"), str)
    name = f"#{i} ({entry['id']!r})" if has_id else f"#{i}"
    return course_error(f"question bank entry {name}, field {field_name!r}", expected, found, fix)


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
