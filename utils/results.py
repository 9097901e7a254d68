"""Results that present themselves: a figure with its interval and what the interval covers.

:class:`MetaResult` is what every meta-evaluation returns (:mod:`utils.learners.evaluate`): the mean query
figure over test tasks, its 95 % CI half-width, the per-task values and what the interval is over
(``covers``: ``"600 test episodes"`` by default, or e.g. ``"3 training seeds"``). Over test episodes
the interval is the normal one (:func:`utils.stats.mean_ci95`); over training seeds it is Student's t
(:func:`utils.stats.seed_interval` builds such a result, ``covers="3 training seeds"``). It prints itself
(``str``, :meth:`MetaResult.format`), shows itself in a notebook (``_repr_html_``) and gives a table
row (:meth:`MetaResult.row`, which :func:`utils.tables.show_table` uses).

Taught in chapter 01, § How meta-learning is judged.
"""
from __future__ import annotations

import html
from dataclasses import dataclass, field

from .errors import course_error
from .language import t

__all__ = ["MetaResult", "RESULT_HEADER"]

#: The column names of :meth:`MetaResult.row` (after the row's name column).
RESULT_HEADER = ("metric", "mean ± 95% CI", "over")


@dataclass
class MetaResult:
    """Mean query figure over test tasks with its 95% CI half-width; ``values`` per task.

    ``metric`` names the figure (``"accuracy"`` prints as a percentage); ``covers`` says what the
    interval is over. Left empty it is read from ``values``: ``"600 test episodes"`` for 600 values.
    Constructed positionally as ``MetaResult(metric, mean, ci95, values)`` everywhere in the engine.

    Taught in chapter 01, § How meta-learning is judged.
    """
    metric: str
    mean: float
    ci95: float
    values: list
    covers: str = field(default="", kw_only=True)

    def __post_init__(self):
        self.covers = self.covers or self._default_covers()

    def _default_covers(self) -> str:
        n = len(self.values) if self.values is not None else 0
        return f"{n} test episode{'s' if n != 1 else ''}" if n else "an unknown number of samples"

    @property
    def over(self) -> str:
        """What the interval covers (also for results pickled before ``covers`` existed)."""
        return getattr(self, "covers", "") or self._default_covers()

    @property
    def percent(self) -> bool:
        """Whether the figure prints as a percentage (accuracies)."""
        return self.metric == "accuracy"

    def scaled(self) -> tuple[float, float]:
        """``(mean, ci95)`` in the units the result prints in (×100 for accuracies)."""
        k = 100.0 if self.percent else 1.0
        return k * float(self.mean), k * float(self.ci95)

    def format(self, digits: int | None = None, covers: bool = False) -> str:
        """``"48.20 ± 1.10% accuracy"`` (``digits`` decimals: 2 for percentages, 3 otherwise);
        with ``covers=True`` adds ``" (95% CI over 600 test episodes)"``."""
        if digits is not None and (not isinstance(digits, int) or digits < 0):
            raise course_error("digits", "a non-negative int (decimals to print)", repr(digits),
                               "pass e.g. digits=1, or leave it out")
        mean, half = self.scaled()
        d = (2 if self.percent else 3) if digits is None else digits
        mean, half = f"{mean:.{d}f}", f"{half:.{d}f}"
        text = (t("{mean} ± {half}% accuracy", mean=mean, half=half) if self.percent
                else t("{mean} ± {half} {metric}", mean=mean, half=half, metric=t(self.metric)))
        return text + (t(" ({label})", label=self.interval_label()) if covers else "")

    def interval_label(self) -> str:
        """``"95% CI over 600 test episodes"``: the label an interval is drawn or printed with."""
        return t("95% CI over {covers}", covers=t(self.over))

    def row(self, name: str | None = None, digits: int | None = None) -> list:
        """A table row ``[name,] metric, "mean ± half", covers`` (columns :data:`RESULT_HEADER`)."""
        mean, half = self.scaled()
        d = (2 if self.percent else 3) if digits is None else digits
        cells = [t(self.metric) + (" (%)" if self.percent else ""), f"{mean:.{d}f} ± {half:.{d}f}", t(self.over)]
        return ([name] if name is not None else []) + cells

    def __str__(self) -> str:
        return self.format()

    def _repr_html_(self) -> str:
        return (f"<span title='{html.escape(self.interval_label())}'><b>{html.escape(self.format())}</b>"
                f" <small>({html.escape(self.interval_label())})</small></span>")
