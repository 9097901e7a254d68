"""The practice sessions as plain Python (testable without a browser): flashcards, the timed mock
interview, and their summaries as HTML (chapter 07).
"""
from __future__ import annotations

import html
import random
import time

from ..errors import course_error
from .bank import Question, _short

__all__ = ["summary_html", "FlashcardSession", "SCORES", "MockInterview"]


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


class _InOrder:
    """A list of questions gone through in order: the list is the attribute named ``_ITEMS``,
    ``index`` the position reached."""
    _ITEMS = "questions"
    index: int

    @property
    def done(self) -> bool:
        return self.index >= len(getattr(self, self._ITEMS))

    @property
    def current(self) -> Question | None:
        """The question shown now (``None`` when all are done)."""
        return None if self.done else getattr(self, self._ITEMS)[self.index]


# --------------------------------------------------------------------------- flashcards
class FlashcardSession(_InOrder):
    """A pass through a deck: reveal the answer, mark the card known or unknown, next card.

    Args:
        questions: the cards (e.g. ``bank.select(...)`` or ``bank.draw(...)``).
        seed: shuffles the deck (``None`` keeps the given order).
    """

    _ITEMS = "cards"

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


class MockInterview(_InOrder):
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
