"""Is multiple choice fair? Find every multiple-choice question and score two blind strategies.

A multiple-choice question is fair when nothing but knowing the answer helps: the right option is
not the longest (a tell that "pick the longest option" exploits) and the right letter is spread
over a, b, c, d (or "always answer c" would pay). This module finds every multiple-choice question
of the course, in the chapters' notebooks (``solutions/``, the instructor source) and in the question
bank (``utils/question_bank.json``), and computes the score of those two strategies against chance.
``tests/test_mc_fairness.py`` fails when either beats chance by more than 10 percentage points.

Where the questions are found
  * notebooks: an autograded answer cell that sets ``ANSWER_X = "<letter>"``, or whose test cell
    checks ``ANSWER_X in ("a", "b", ...)``, is a multiple-choice question. Its options are the
    lettered list items (``* (a) ...``, ``* **a.** ...``, ``- **a**) ...``) or lettered code blocks
    (``# a``) of the closest markdown cell before it; for a chapter-06 drill (a code cell that calls
    ``interview.show_question("drill-...")``), the bank entry's options. The right letter is the
    one the hidden test compares with (``ANSWER_X... == "<letter>"``).
  * the bank: entries with ``kind: "mc"``; the answer is ``answer`` (0-based) or, for a graded drill,
    the notebook's hidden test.

Anything that looks like multiple choice but cannot be parsed raises :class:`MCParseError`, so a new
question is never silently left out.

``python -m utils.course.mc_fairness`` prints every question and the two scores; ``python -m
utils.course.mc_tells`` the finer scan (wording, stems, every subset a learner meets).
"""
from __future__ import annotations

import json
import re
import string
from dataclasses import dataclass
from pathlib import Path

from .notebooks import (PROJECT_ROOT, find_chapters, is_answer_cell, is_test_cell, nbgrader_meta,
                        read_notebook, solution_path)

__all__ = [
    "LETTERS", "MAX_ADVANTAGE", "MCParseError", "MCQuestion", "parse_options", "load_bank_entries",
    "notebook_questions", "bank_questions", "all_questions", "longest_score", "letter_scores",
    "chance", "report", "main",
]

LETTERS = string.ascii_lowercase
#: How far above chance a blind strategy may score before the questions count as unfair.
MAX_ADVANTAGE = 0.10


class MCParseError(ValueError):
    """A question looks like multiple choice but its options or its answer could not be read."""


@dataclass(frozen=True)
class MCQuestion:
    """One multiple-choice question: where it is, its options (in letter order), the right index."""

    where: str
    options: tuple[str, ...]
    answer: int
    stem: str = ""      # the question's text before its options
    topic: str = ""     # the bank topic (drills, self-study) or the chapter

    @property
    def letter(self) -> str:
        return LETTERS[self.answer]


# --------------------------------------------------------------------------- parsing options
_MC_ASSIGN_RE = re.compile(r'^\s*(ANSWER_\w+)\s*=\s*["\']([a-z])["\']\s*$', re.M)
_LETTER_TUPLE_RE = re.compile(r'\b(ANSWER_\w+)\b[^\n]*\bin\s*\(\s*["\']a["\']\s*,\s*["\']b["\']')
# list items: "* (a) text", "* **a.** text", "- **a**) text", "* **(a)** text", "- a) text"
_ITEM_RE = re.compile(r'^[ \t]*[-*+][ \t]+(?:\*\*)?\(?([a-h])(?:\*\*)?[).:](?:\*\*)?[).]?(?:\*\*)?[ \t]+(.*)$')
_CODE_OPTION_RE = re.compile(r'^\s*#\s*\(?([a-h])\)?\s*$')
_SHOW_RE = re.compile(r'show_question\(\s*["\']([\w-]+)["\']')


def _options_from_list(text: str) -> list[tuple[str, str]]:
    """Lettered list items with their continuation lines, in order: [(letter, text), ...]."""
    items: list[list[str]] = []
    for line in text.splitlines():
        m = _ITEM_RE.match(line)
        if m:
            items.append([m.group(1), m.group(2).strip()])
        elif items and line.strip() and (line.startswith("  ") or line.startswith("\t")):
            items[-1][1] += " " + line.strip()          # an indented continuation line
        elif items and not line.strip():
            items.append(None)                          # a blank line ends the current item
    out = [(a, b) for a, b in (i for i in items if i is not None)]
    return out


def _options_from_code(text: str) -> list[tuple[str, str]]:
    """Options written as code snippets in a fenced block, each headed by a ``# a`` comment."""
    out: list[list[str]] = []
    in_fence = False
    for line in text.splitlines():
        if line.strip().startswith("```"):
            in_fence = not in_fence
            continue
        if not in_fence:
            continue
        m = _CODE_OPTION_RE.match(line)
        if m:
            out.append([m.group(1), ""])
        elif out and line.strip():
            out[-1][1] += ("\n" if out[-1][1] else "") + line.strip()
    return [(a, b) for a, b in out]


def _stem_of(text: str) -> str:
    """The question itself: the markdown between its last heading and its first lettered option (or
    fenced block); the section's teaching prose above the heading is not the stem."""
    lines = []
    for line in text.splitlines():
        if _ITEM_RE.match(line) or line.strip().startswith("```"):
            break
        lines = [] if line.lstrip().startswith("#") else lines + [line]
    return "\n".join(lines).strip()


def parse_options(text: str, where: str) -> tuple[str, ...]:
    """The options of a question's markdown, in letter order; raise if they are not a, b, c, ...."""
    for found in (_options_from_list(text), _options_from_code(text)):
        if len(found) >= 2:
            letters = [a for a, _ in found]
            if letters != list(LETTERS[:len(letters)]):
                raise MCParseError(f"{where}: options lettered {letters}, expected a, b, c, ... in order")
            if not all(b.strip() for _, b in found):
                raise MCParseError(f"{where}: an empty option among {letters}")
            return tuple(b.strip() for _, b in found)
    raise MCParseError(f"{where}: no lettered options found (expected list items like '* (a) ...' "
                       "or '- **a**) ...', or a code block with '# a' headers)")


def _right_letter(test_source: str, var: str, where: str) -> str:
    """The letter the hidden test of ``var`` compares with."""
    hidden = test_source.split("### BEGIN HIDDEN TESTS", 1)
    if len(hidden) != 2:
        raise MCParseError(f"{where}: the test cell has no hidden test holding the right letter")
    letters = set(re.findall(rf'\b{var}\b[^\n]*?==\s*["\']([a-z])["\']', hidden[1]))
    letters |= set(re.findall(rf'["\']([a-z])["\']\s*==\s*[^\n]*\b{var}\b', hidden[1]))
    if len(letters) != 1:
        raise MCParseError(f"{where}: expected one `{var} == \"x\"` in the hidden test, found {sorted(letters)}")
    return letters.pop()


def load_bank_entries(root: Path) -> list[dict]:
    data = json.loads((Path(root) / "utils" / "question_bank.json").read_text(encoding="utf-8"))
    return data["entries"] if isinstance(data, dict) else data


# --------------------------------------------------------------------------- collecting questions
def notebook_questions(root: str | Path = PROJECT_ROOT, bank: list[dict] | None = None) -> list[MCQuestion]:
    """Every multiple-choice question of the chapters' instructor notebooks."""
    root = Path(root)
    bank = load_bank_entries(root) if bank is None else bank
    by_id = {e.get("id"): e for e in bank}
    out = []
    for ch in find_chapters(root):
        nb = read_notebook(solution_path(root, ch))
        cells = nb.cells
        for i, cell in enumerate(cells):
            if not is_answer_cell(cell):
                continue
            gid = nbgrader_meta(cell).get("grade_id")
            where = f"{ch} {gid}"
            nxt = next((c for c in cells[i + 1:] if is_test_cell(c) or is_answer_cell(c)), None)
            test = nxt if nxt is not None and is_test_cell(nxt) else None
            assigns = _MC_ASSIGN_RE.findall(cell.source)
            checked = _LETTER_TUPLE_RE.findall(test.source) if test is not None else []
            if not assigns and not checked:
                continue
            var = (checked or [a for a, _ in assigns])[0]
            if test is None:
                raise MCParseError(f"{where}: a multiple-choice answer ({var}) without a test cell after it")
            right = _right_letter(test.source, var, where)
            options = None
            for prev in reversed(cells[:i]):
                if prev.cell_type == "code" and _SHOW_RE.search(prev.source):
                    qid = _SHOW_RE.search(prev.source).group(1)
                    if qid not in by_id or not by_id[qid].get("options"):
                        raise MCParseError(f"{where}: shows bank question {qid!r}, which has no options")
                    options, stem = tuple(by_id[qid]["options"]), by_id[qid].get("question_en", "")
                    topic = by_id[qid].get("topic", ch)
                    break
                if prev.cell_type == "markdown" and (_options_from_list(prev.source)
                                                     or _options_from_code(prev.source)):
                    options, stem, topic = parse_options(prev.source, where), _stem_of(prev.source), ch
                    break
                if is_test_cell(prev) or is_answer_cell(prev):
                    break
            if options is None:
                raise MCParseError(f"{where}: no options found between the previous exercise and {var}")
            if LETTERS.index(right) >= len(options):
                raise MCParseError(f"{where}: right letter {right!r} but only {len(options)} options")
            out.append(MCQuestion(where, options, LETTERS.index(right), stem, topic))
    return out


def bank_questions(root: str | Path = PROJECT_ROOT, bank: list[dict] | None = None) -> list[MCQuestion]:
    """The question bank's self-study multiple-choice entries (drills are counted in their notebook)."""
    bank = load_bank_entries(Path(root)) if bank is None else bank
    out = []
    for e in bank:
        if e.get("kind") != "mc":
            continue
        where = f"question bank {e.get('id')}"
        opts = e.get("options")
        if not isinstance(opts, list) or len(opts) < 2:
            raise MCParseError(f"{where}: kind 'mc' without a list of options")
        if e.get("drill"):
            continue  # graded in chapter 07: the notebook question carries these options
        ans = e.get("answer")
        if not isinstance(ans, int) or isinstance(ans, bool) or not 0 <= ans < len(opts):
            raise MCParseError(f"{where}: 'answer' must be the right option's 0-based index, found {ans!r}")
        out.append(MCQuestion(where, tuple(opts), ans, e.get("question_en", ""), e.get("topic", "")))
    return out


def all_questions(root: str | Path = PROJECT_ROOT) -> list[MCQuestion]:
    """Notebook questions (chapter-06 drills with their bank options) and self-study bank entries."""
    bank = load_bank_entries(Path(root))
    questions = notebook_questions(root, bank)
    drills = {e["id"] for e in bank if e.get("kind") == "mc" and e.get("drill")}
    shown = set()
    for ch in find_chapters(Path(root)):
        shown |= set(_SHOW_RE.findall("\n".join(c.source for c in read_notebook(solution_path(root, ch)).cells)))
    missing = drills - shown
    if missing:
        raise MCParseError(f"bank drills {sorted(missing)} are not shown in any notebook, so their right "
                           "answer cannot be found")
    return questions + bank_questions(root, bank)


# --------------------------------------------------------------------------- strategies
def longest_score(questions: list[MCQuestion]) -> float:
    """Expected fraction right when always picking the longest option (length in characters,
    whitespace collapsed; a tie between k longest options is broken at random: 1/k of a point)."""
    hits = 0.0
    for q in questions:
        lengths = [len(" ".join(o.split())) for o in q.options]
        longest = [k for k, n in enumerate(lengths) if n == max(lengths)]
        hits += (q.answer in longest) / len(longest)
    return hits / len(questions)


def letter_scores(questions: list[MCQuestion]) -> dict[str, float]:
    """Letter -> fraction right when always answering that letter."""
    n_max = max(len(q.options) for q in questions)
    return {LETTERS[k]: sum(q.answer == k for q in questions) / len(questions) for k in range(n_max)}


def chance(questions: list[MCQuestion]) -> float:
    """Expected score of a blind guess: the mean of 1 / (number of options)."""
    return sum(1 / len(q.options) for q in questions) / len(questions)


def report(questions: list[MCQuestion]) -> str:
    lines = [f"{len(questions)} multiple-choice questions"]
    for q in questions:
        lengths = [len(" ".join(o.split())) for o in q.options]
        lines.append(f"  {q.where:45s} right {q.letter}  lengths {lengths}")
    letters = letter_scores(questions)
    lines.append(f"chance (mean 1/n_options): {chance(questions):.1%}")
    lines.append(f"always the longest option: {longest_score(questions):.1%} "
                 f"({longest_score(questions) * len(questions):g}/{len(questions)})")
    lines.append("always the same letter: " + ", ".join(f"{k} {v:.1%}" for k, v in letters.items()))
    return "\n".join(lines)


def main() -> int:
    qs = all_questions()
    print(report(qs))
    worst = max([longest_score(qs)] + list(letter_scores(qs).values()))
    return int(worst > chance(qs) + MAX_ADVANTAGE)


if __name__ == "__main__":
    raise SystemExit(main())
