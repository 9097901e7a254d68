"""How a question is shown: a card as HTML, a question as Markdown, the offline practice sheet, and
the check that a Chinese answer uses the glossary's Chinese names (chapter 07).
"""
from __future__ import annotations

import html
import re

from .bank import HIDDEN_ANSWER, HIDDEN_ANSWER_ZH, TOPICS, Question, QuestionBank, _check_lang, _check_topics
from .validate import load_bank

__all__ = [
    "LABELS", "card_html", "question_markdown", "practice_sheet", "used_terms",
    "missing_glossary_terms", "show_question",
]


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
    from ..glossary import load_glossary

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
    from ..glossary import load_glossary

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
