"""A chapter starts in one line: the session object every notebook's setup cell makes.

``ch = start_chapter("03_families", FAST=FAST, DEVICE=DEVICE, SEED=SEED, threads=CPU_THREADS)``
resolves FAST (forced under autograde / ``COURSE_FAST=1``, :func:`utils.runtime.resolve_fast`),
picks the device (:func:`utils.runtime.pick_device`), seeds Python, NumPy and torch, applies the
thread policy and starts the chapter's clock. FAST then reaches the rest of the chapter through
one channel, ``ch.fast`` (``N = ch.size(fast=3, full=30)``); at the end
``ch.finish(figures={...})`` records the headline figures that ``python -m utils.course run``
prints (:func:`utils.figures.record_figures`) and reports the run's time.

Every chapter's setup cell is this one call. Taught in chapter 01, § Everything is a mapping.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch

from .chapters import CHAPTERS
from .errors import course_error
from .figures import record_figures
from .language import set_language, t
from .runtime import pick_device, resolve_fast, seed_everything

__all__ = ["Chapter", "start_chapter"]


@dataclass
class Chapter:
    """One run of one chapter: its name, FAST, device, seed and threads, and its clock.

    Made by :func:`start_chapter`; a notebook reads ``ch.fast``, ``ch.device``, ``ch.seed`` and
    ``ch.elapsed()`` and ends with :meth:`finish`.
    """
    name: str
    fast: bool
    device: torch.device
    seed: int
    threads: int | None
    language: str = "en"
    started: float = field(default_factory=time.perf_counter, repr=False)

    def size(self, *, fast, full):
        """``fast`` in FAST mode, else ``full``: one knob, both values on one line."""
        return fast if self.fast else full

    def elapsed(self) -> float:
        """Seconds since :func:`start_chapter`."""
        return time.perf_counter() - self.started

    @property
    def mode(self) -> str:
        return "FAST" if self.fast else "full"

    def t(self, english: str, **fields) -> str:
        """``english`` (a figure title, an axis label) in the chapter's language: its entry in
        ``utils/locale/<lang>/messages.po`` (:func:`utils.messages.t`), else ``english`` itself."""
        return t(english, self.language, **fields)

    def claim(self, name: str, cell: str, holds, message: str = "") -> None:
        """Check one claim of the prose: markdown cell ``cell`` carries the tag ``[✓ name]``.

        Raises ``AssertionError`` (with ``message``) when ``holds`` is false; records the claim for
        ``bench story`` (:func:`utils.story.check_claim`). Taught in chapter 01, § How
        meta-learning is judged.
        """
        from .story import check_claim
        check_claim(self.name, name, cell, holds, message)

    def ranking(self, name: str, scores: dict, *, higher_is_better: bool = True, show: bool = True,
                fast_decides: bool = True):
        """Read a ranking over training seeds (``{method: [figure per seed]}``) the way the course
        does (:func:`utils.story.read_ranking`): best first, ``>`` where a method beats the next on
        every one of at least 3 seeds, ``~`` where the seeds do not separate them.

        Records it for ``bench story``. In FAST mode a ranking that is not separated also prints
        the ranking recorded from a full-mode run of the shipped code; so does every ranking with
        ``fast_decides=False``, which a chapter passes where FAST's smaller runs are known not to
        stand for full mode's (the FAST order is printed, and labelled as not deciding). Returns the
        :class:`utils.story.Ranking`. Taught in chapter 01, § One training seed means little too.
        """
        from .story import order_text, read_ranking, record_story, recorded_rankings
        ranking = read_ranking(name, scores, higher_is_better=higher_is_better, mode=self.mode,
                               fast_decides=fast_decides)
        record_story(self.name, ranking=ranking)
        if show:
            print(ranking)
            if self.fast and not fast_decides:
                print(t("  FAST's runs are smaller than full mode's and do not decide this ranking"))
            if self.fast and (not ranking.holds or not fast_decides):
                full = recorded_rankings(self.name).get(name)
                if full:
                    print(t("  FAST cannot rank these; the recorded full-mode run ({date}, {seeds} seeds) "
                            "has: {order}", date=full.get("date", "?"), seeds=full["seeds"],
                            order=order_text(full["order"], full["separated"])))
                else:
                    print(t("  FAST cannot rank these, and no full-mode run of this ranking is recorded yet "
                            "(python -m utils.course bench story --record)"))
        return ranking

    def finish(self, figures: dict | None = None, show: bool = False) -> dict:
        """Record the chapter's headline figures (name -> number or short string), print them as
        a table with the run's time when ``show``, and return them.

        Figures are written only when ``COURSE_FIGURES_DIR`` is set (``course run`` sets it);
        otherwise they are checked and returned. A result object
        (:class:`utils.results.MetaResult`) counts as its mean.
        """
        from .results import MetaResult
        figures = dict(figures or {})
        for key, value in figures.items():
            if isinstance(value, MetaResult):
                figures[key] = round(float(value.mean), 4)
        recorded = record_figures(self.name, figures)
        if show:
            from .tables import show_table
            show_table(["figure", "value"], list(recorded.items()), floatfmt="g")
            print(t("\nthis run took {seconds} s ({mode} mode, device {device})", seconds=f"{self.elapsed():.1f}",
                    mode=t(self.mode), device=self.device))
        return recorded


def start_chapter(name: str, *, FAST: bool = False, DEVICE="auto", SEED: int = 0,
                  threads: int | None = None, language: str = "en") -> Chapter:
    """Start chapter ``name`` (a folder name from :data:`utils.chapters.CHAPTERS`).

    Resolves FAST (``COURSE_FAST=1`` forces it), picks ``DEVICE`` (``"auto"``: CUDA, MPS, then CPU),
    seeds everything with ``SEED``, sets torch's CPU threads to ``threads`` (``None``: leave torch's
    default), makes ``language`` (``"en"`` or ``"zh"``: the edition's ``LANGUAGE`` knob) the language
    of printed text (:func:`utils.language.set_language`) and starts the clock. Returns the
    :class:`Chapter`.
    """
    if name not in CHAPTERS:
        raise course_error("chapter", "one of " + ", ".join(CHAPTERS), repr(name),
                           "pass the chapter's folder name, e.g. start_chapter(\"03_families\", ...)")
    if threads is not None:
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
            raise course_error("threads", "a positive int (torch CPU threads) or None", repr(threads),
                               "set CPU_THREADS = 1 in the parameters cell, or None for torch's default")
        torch.set_num_threads(threads)
    ch = Chapter(name=name, fast=resolve_fast(FAST), device=pick_device(DEVICE), seed=int(SEED),
                 threads=threads, language=set_language(language))
    seed_everything(ch.seed)
    return ch
