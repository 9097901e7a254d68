"""The English term in parentheses at the first use of a glossary concept in Chinese text.

The course's Chinese texts (the question bank's ``*_zh`` fields, every Chinese string a learner
meets) follow one rule, checked by ``tests/test_glossary_zh.py``: in a unit a learner reads on its
own (one question-bank entry, its Chinese fields read in order), the **first** time the Chinese term
of a glossary concept appears it is followed by the English term in full-width parentheses,
``情景（episode）``, ``元学习器（meta-learner）``; later uses in the same unit stay bare.

* The Chinese term is the glossary's ``chinese`` field up to its first bracket
  (``"情景（小样本任务）"`` → ``情景``); a term that is English itself (``"ANIL（几乎无内循环）"``,
  ``"Meta-SGD（…）"``) needs nothing, since the reader already sees the English.
* The English in the parentheses is the entry's ``term`` or one of its ``aliases``
  (case-insensitive, an ``s`` plural allowed), as their first clause: ``情景（episode，小样本任务）``
  passes, ``情景（task）`` and ``原型网络（Snell 等，2017）`` do not. A longer phrase glossed whole
  introduces its term too (``无监督元学习（unsupervised meta-learning）``), and so does the English
  written first with its Chinese in the brackets (``episode（情景任务）``).
* Overlapping terms: at each place the longest Chinese term wins, so ``元学习器`` is a use of
  meta-learner, not of meta-learning (``元学习``), and ``任务分布`` is not a use of ``任务``.
* The parentheses after a term belong to it: a term inside them (``情景（episode，小样本任务）``) is
  part of the gloss, not a use. A word of :data:`NOT_A_USE` (``非结构化剪枝``) is never a use.

:func:`term_uses` finds the uses in one text, :func:`gloss_problems` applies the rule to a unit
(a sequence of texts read in order), :func:`bank_gloss_problems` to every entry of the question
bank, and :func:`add_glosses` rewrites a unit so that it follows the rule (the script that fixed
the bank; its output is read by a person before it is committed).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

from .errors import read_json_file
from .glossary import GlossaryEntry, load_glossary

__all__ = [
    "BANK_PATH", "ZH_FIELD_ORDER", "NOT_A_USE", "ZhUse", "ZhTermProblem", "chinese_head", "term_uses",
    "gloss_problems", "bank_entry_texts", "bank_gloss_problems", "add_glosses",
]

#: The question bank shipped with the package (read as plain JSON: no dependency on the interview kit).
BANK_PATH = Path(__file__).with_name("question_bank.json")
#: The order in which a learner reads a bank entry's Chinese fields; other ``*_zh`` fields follow.
ZH_FIELD_ORDER = ("question_zh", "model_answer_zh", "follow_up_zh", "common_wrong_answer_zh")

_CJK = re.compile(r"[\u4e00-\u9fff]")
_OPEN, _CLOSE = "（(", "）)"


def chinese_head(entry: GlossaryEntry) -> str:
    """The Chinese term of ``entry`` as texts write it: its ``chinese`` field up to the first bracket,
    spaces removed (``"情景（小样本任务）"`` → ``"情景"``); ``""`` when that part has no Chinese
    character (``"ANIL（几乎无内循环）"``: the text writes the English term itself)."""
    head = re.sub(r"\s+", "", re.split(r"[（(]", entry.chinese, 1)[0])
    return head if _CJK.search(head) else ""


def _pattern(head: str) -> str:
    """``head`` as a regex that allows spaces where Chinese meets Latin (``一阶MAML`` ~ ``一阶 MAML``)."""
    out = ""
    for prev, ch in zip(" " + head, head):
        if out and bool(_CJK.match(prev)) != bool(_CJK.match(ch)):
            out += r"\s*"
        out += re.escape(ch)
    return out


@dataclass(frozen=True)
class ZhUse:
    """One use of a glossary concept's Chinese term: ``text[start:end]`` is the term; ``gloss`` is the
    content of the parentheses right after it (``None`` when none follow), ``gloss_span`` their
    ``(start, end)`` in the text, brackets included. ``english_first``: written ``episode（情景）``,
    the English term before its Chinese gloss (then ``start``/``end`` span the brackets and
    ``gloss_span`` the English)."""
    entry: GlossaryEntry
    start: int
    end: int
    gloss: str | None = None
    gloss_span: tuple[int, int] | None = None
    english_first: bool = False

    def english_in_gloss(self, compound: bool = True) -> str | None:
        """The term or alias the gloss names (``None`` when it names neither): its first clause
        (up to ``，`` ``,`` ``；`` ``：``) is that name (``episode，小样本任务``) or, with
        ``compound=True``, ends with it after a space (``unsupervised meta-learning`` for the 元学习
        of 无监督元学习: the gloss of a longer phrase); case-insensitive, an ``s`` plural allowed."""
        if self.gloss is None:
            return None
        clause = re.split(r"[，,；;：:]", self.gloss, 1)[0].strip()
        for name in sorted((self.entry.term, *self.entry.aliases), key=len, reverse=True):
            word = r"\s*".join(map(re.escape, name.split())) + r"(?:e?s)?"
            if re.fullmatch(word, clause, re.IGNORECASE) or \
                    compound and re.search(r"\s" + word + "$", clause, re.IGNORECASE):
                return name
        return None


#: Words that contain a glossary term but name another concept: never a use of that term.
NOT_A_USE = ("非结构化剪枝",   # unstructured pruning is not structured pruning (结构化剪枝)
             "向量化", "矢量化", "批量化")   # vectorized, batched: not quantization (量化)


def _matcher(glossary: Sequence[GlossaryEntry]):
    """One regex over every Chinese term (and :data:`NOT_A_USE`), longest first, and the entry of
    each alternative (``None`` for a word of :data:`NOT_A_USE`)."""
    heads = {w: None for w in NOT_A_USE}
    for e in glossary:
        if chinese_head(e):
            heads.setdefault(chinese_head(e), e)
    order = sorted(heads, key=len, reverse=True)  # the alternation tries the longest term first
    return re.compile("|".join(f"({_pattern(h)})" for h in order)), [heads[h] for h in order]


def _paren_after(text: str, pos: int) -> tuple[int, int] | None:
    """The span of a bracket group opening at ``pos`` (after optional spaces and closing quotes:
    ``“模式寻求”（mode-seeking）``), nesting counted."""
    i = pos
    while i < len(text) and text[i] in " ”’」":
        i += 1
    if i >= len(text) or text[i] not in _OPEN:
        return None
    depth = 0
    for j in range(i, len(text)):
        depth += text[j] in _OPEN
        depth -= text[j] in _CLOSE
        if depth == 0:
            return i, j + 1
    return None


def _english_first(text: str, glossary: Sequence[GlossaryEntry]) -> list[ZhUse]:
    """Uses written English first, ``episode（情景任务）`` or ``MAML（模型无关元学习）``: an English
    term or alias followed by brackets that open with Chinese. The brackets are its Chinese gloss;
    the use counts as introduced (``gloss`` is the English name, ``gloss_span`` where it stands)."""
    found = []
    for e in glossary:
        for name in (e.term, *e.aliases):
            pat = r"(?<![A-Za-z0-9-])" + r"\s*".join(map(re.escape, name.split())) + r"(?:e?s)?(?![A-Za-z0-9-])"
            for m in re.finditer(pat, text, re.IGNORECASE):
                span = _paren_after(text, m.end())
                if span and _CJK.match(text, span[0] + 1):
                    found.append(ZhUse(e, span[0], span[1], m.group(0), (m.start(), m.end()), True))
    found.sort(key=lambda u: (u.gloss_span[0], -u.gloss_span[1]))
    kept = []
    for u in found:  # "first-order MAML（…）" is not also a use of "MAML（…）"
        if not kept or u.gloss_span[0] >= kept[-1].end:
            kept.append(u)
    return kept


def term_uses(text: str, glossary: Sequence[GlossaryEntry] | None = None) -> list[ZhUse]:
    """Every use of a glossary concept's Chinese term in ``text``, left to right.

    At each place the longest term wins, and a term that a longer one starting inside it would cut
    does not count (``基于模型的元学习器`` is a use of 元学习器, not of 基于模型的元学习). The
    brackets after a term are its gloss and are not searched; so are the Chinese brackets after an
    English term (:func:`_english_first`)."""
    glossary = load_glossary() if glossary is None else glossary
    regex, entries = _matcher(glossary)
    english = _english_first(text, glossary)
    uses, pos = list(english), 0
    while (m := regex.search(text, pos)):
        inside = next((u for u in english if u.gloss_span[0] <= m.start() < u.end), None)
        if inside is not None:
            pos = inside.end
            continue
        longer = any((n := regex.match(text, p)) and n.end() > m.end() for p in range(m.start() + 1, m.end()))
        if longer:
            pos = m.start() + 1
            continue
        entry = entries[m.lastindex - 1]
        span = _paren_after(text, m.end())
        if entry is not None:
            gloss = text[span[0] + 1:span[1] - 1].strip() if span else None
            uses.append(ZhUse(entry, m.start(), m.end(), gloss, span))
        pos = span[1] if span and entry is not None else m.end()
    return sorted(uses, key=lambda u: u.start if not u.english_first else u.gloss_span[0])


@dataclass(frozen=True)
class ZhTermProblem:
    """A use that breaks the rule. ``kind``: ``"bare"`` (first use without the English term),
    ``"wrong"`` (first use glossed, but not with the entry's term or an alias) or ``"again"``
    (a later use glossed once more). ``where`` names the text (a field name or an index)."""
    where: str
    kind: str
    use: ZhUse
    snippet: str

    def __str__(self) -> str:
        e, head = self.use.entry, chinese_head(self.use.entry)
        what = {"bare": f"first use of {head!r} without the English term: write {head}（{e.term}）",
                "wrong": f"first use of {head!r} glossed as （{self.use.gloss}）: the English term is "
                         + " / ".join((e.term, *e.aliases)),
                "again": f"{head!r} is glossed again after its first use: leave this one bare"}[self.kind]
        return f"{self.where}: {what} … {self.snippet} …"


def _named(texts) -> list[tuple[str, str]]:
    if isinstance(texts, str):
        return [("text", texts)]
    if isinstance(texts, Mapping):
        return [(str(k), v) for k, v in texts.items()]
    return [(str(i), t) for i, t in enumerate(texts)]


def gloss_problems(texts: str | Sequence[str] | Mapping[str, str],
                   glossary: Sequence[GlossaryEntry] | None = None) -> list[ZhTermProblem]:
    """Apply the rule to one unit: ``texts`` read in order (a string, a sequence, or a mapping from
    field name to text, in reading order). Returns the problems in reading order; ``[]`` when every
    concept's first use carries its English term and no later use repeats it."""
    glossary = load_glossary() if glossary is None else glossary
    seen, problems = set(), []
    for where, text in _named(texts):
        for use in term_uses(text, glossary):
            snippet = text[max(0, use.start - 8):(use.gloss_span or (0, use.end))[1] + 8]
            if use.entry.term not in seen:
                seen.add(use.entry.term)
                if use.english_in_gloss() is None:
                    # no brackets, or brackets that explain in Chinese only: bare; other English: wrong
                    bare = use.gloss is None or bool(_CJK.match(use.gloss))
                    problems.append(ZhTermProblem(where, "bare" if bare else "wrong", use, snippet))
            elif not use.english_first and use.english_in_gloss(compound=False) is not None:
                # a later use glossed once more (the gloss of a longer phrase is its own: fine)
                problems.append(ZhTermProblem(where, "again", use, snippet))
    return problems


def bank_entry_texts(entry: Mapping) -> dict[str, str]:
    """A raw bank entry's Chinese fields in reading order (:data:`ZH_FIELD_ORDER`, then any other
    ``*_zh`` field in file order)."""
    names = [k for k in ZH_FIELD_ORDER if k in entry]
    names += [k for k in entry if k.endswith("_zh") and k not in names]
    return {k: entry[k] for k in names if isinstance(entry[k], str)}


def bank_gloss_problems(path: str | Path | None = None,
                        glossary: Sequence[GlossaryEntry] | None = None) -> dict[str, list[ZhTermProblem]]:
    """:func:`gloss_problems` of every question-bank entry (each entry is one unit), as
    ``{entry id: problems}`` for the entries that have any."""
    path = Path(path) if path is not None else BANK_PATH
    bank = read_json_file(path, "question bank", "reinstall the course package or pass the right path")
    glossary = load_glossary() if glossary is None else glossary
    out = {}
    for raw in bank["entries"]:
        problems = gloss_problems(bank_entry_texts(raw), glossary)
        if problems:
            out[raw["id"]] = problems
    return out


def add_glosses(texts: Sequence[str], glossary: Sequence[GlossaryEntry] | None = None) -> list[str]:
    """``texts`` (one unit, in reading order) rewritten to follow the rule: the English term goes in
    （…） after each concept's first use (into its brackets, ``（episode，…）``, when a Chinese
    explanation already follows), and an exact gloss repeated later is taken out (the English it
    used moves to the first use). A first use glossed with other English or a citation
    (``原型网络（Snell 等，2017）``) is left for a person: :func:`gloss_problems` still names it."""
    glossary = load_glossary() if glossary is None else glossary
    texts = list(texts)
    uses = [(i, u) for i, t in enumerate(texts) for u in term_uses(t, glossary)]
    first, english, edits = {}, {}, {i: [] for i in range(len(texts))}
    for i, u in uses:
        first.setdefault(u.entry.term, (i, u))
        english.setdefault(u.entry.term, u.english_in_gloss(compound=False))
        english[u.entry.term] = english[u.entry.term] or u.english_in_gloss(compound=False)
    for i, u in uses:
        if u.english_first:
            continue
        if first[u.entry.term] == (i, u):
            if u.english_in_gloss() is None and (u.gloss is None or _CJK.match(u.gloss)):
                say = english[u.entry.term] or u.entry.term
                if u.gloss is not None:
                    edits[i].append((u.gloss_span[0] + 1, u.gloss_span[0] + 1, f"{say}，"))
                else:  # the full-width brackets stand for the space a Latin word would need
                    skip = 1 if re.match(r" \w", texts[i][u.end:u.end + 2]) else 0
                    edits[i].append((u.end, u.end + skip, f"（{say}）"))
        elif u.english_in_gloss(compound=False) is not None:
            rest = u.gloss
            while (name := ZhUse(u.entry, 0, 0, rest).english_in_gloss(compound=False)) is not None:
                rest = re.sub(r"^\s*" + r"\s*".join(map(re.escape, name.split())) + r"(?:e?s)?\s*[，,、；;]?\s*",
                              "", rest, flags=re.IGNORECASE)
            edits[i].append((*u.gloss_span, f"（{rest}）" if rest else ""))
    for i, todo in edits.items():
        for a, b, new in sorted(todo, reverse=True):
            texts[i] = texts[i][:a] + new + texts[i][b:]
    return texts
