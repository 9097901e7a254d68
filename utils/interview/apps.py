"""The ipywidgets front ends of the practice sessions, with a static HTML view when headless
(:func:`utils.widgets.is_headless`) so an executed notebook shows them (chapter 07).
"""
from __future__ import annotations

import html
import time

from ..errors import CourseError, course_error
from ..language import t
from .bank import QuestionBank, _check_lang, _short, check_answer
from .validate import load_bank
from .cards import card_html
from .practice import FlashcardSession, MockInterview, _fmt_seconds, summary_html

__all__ = ["FlashcardApp", "flashcards", "MockInterviewApp", "mock_interview"]


# --------------------------------------------------------------------------- widgets
def _display(*objs) -> None:
    from IPython.display import display
    display(*objs)


def _language_toggle(app):
    """Toggle buttons English / 中文 / both that set ``app.lang`` and re-render the app live."""
    import ipywidgets as W

    toggle = W.ToggleButtons(options=[("English", "en"), ("中文", "zh"), ("Both · 双语", "both")],
                             value=app.lang, description=t("language"),
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
        self.progress = W.IntProgress(min=0, max=len(self.session.cards), description=t("cards"))
        self.reveal_button = W.Button(description=t("Reveal answer"), icon="eye")
        self.known_button = W.Button(description=t("I knew it"), button_style="success", icon="check")
        self.unknown_button = W.Button(description=t("Not yet"), button_style="warning", icon="repeat")
        self.retry_button = W.Button(description=t("Retry the 'not yet' cards"), icon="refresh")
        self.response = W.Text(placeholder=t("your answer (letter, number or word)"))
        self.check_button = W.Button(description=t("Check"))
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
    from ..widgets import is_headless

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
                           description=t("timer"))
        self.tick.layout.display = "none"
        self.timer = W.HTML()
        self.card = W.HTML()
        self.start_button = W.Button(description=t("Start"), button_style="primary", icon="play")
        self.reveal_button = W.Button(description=t("Reveal model answer"), icon="eye")
        self.score_buttons = {
            2: W.Button(description=t("Answered well"), button_style="success"),
            1: W.Button(description=t("Partly"), button_style="info"),
            0: W.Button(description=t("Missed"), button_style="warning"),
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
    from ..widgets import is_headless

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
