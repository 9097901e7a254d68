"""Summary statistics the course reports.

* :func:`mean_ci95` — mean ± 95% CI over test episodes, NORMAL quantile z = 1.96: right when n is
  large (hundreds of test episodes), the uncertainty from SAMPLING TEST EPISODES for one trained
  model (another draw of 600 episodes would move the mean by about this);
* :func:`mean_ci95_t` — mean ± 95% CI with Student's t quantile (n − 1 degrees of freedom): the
  interval for SMALL samples, used for every interval over training seeds (n = 3: t = 4.303, 2.2×
  wider than z); :func:`seed_interval` gives it as a :class:`utils.results.MetaResult` that says
  "over 3 training seeds";
* :func:`seed_spread` — spread over meta-training seeds: the uncertainty from TRAINING, which the
  episode CI does not contain (chapter 02 shows both side by side);
* :func:`select_on_validation` — choose a hyperparameter on validation data, never on test data;
* :func:`ranking_holds` — does one method beat another on every seed?
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .errors import course_error

__all__ = [
    "mean_ci95", "mean_ci95_t", "t_quantile95", "seed_interval", "format_ci", "Selection", "select_on_validation", "SeedSpread", "seed_spread",
    "ranking_holds",
]


def _finite_series(values, expected: str, too_few_fix: str, nan_fix: str) -> np.ndarray:
    """``values`` as a 1-D float64 array of at least 2 finite numbers, else a CourseError."""
    arr = np.asarray([float(v) for v in values], dtype=np.float64)
    if arr.ndim != 1 or arr.size < 2:
        raise course_error("values", expected, f"{arr.size} value(s)", too_few_fix)
    if not np.all(np.isfinite(arr)):
        raise course_error("values", "finite numbers", "NaN or inf", nan_fix)
    return arr


def mean_ci95(values) -> tuple[float, float]:
    """Mean and half-width of the 95% confidence interval of the mean, NORMAL quantile (large n).

    Uses the normal approximation ``1.96 * std / sqrt(n)`` with the sample standard deviation
    (``ddof=1``), as the few-shot literature does over hundreds of test episodes. For a few
    values (training seeds) it is too narrow (2.2× at n = 3): use :func:`mean_ci95_t` there.

    Args:
        values: a 1-D sequence of per-episode figures (accuracies in [0, 1], MSEs, ...).
    Returns:
        ``(mean, half_width)``; report as ``mean ± half_width``.

    Taught in chapter 01, § One episode means little.
    """
    arr = _finite_series(values, "a 1-D sequence of at least 2 per-episode figures",
                         "evaluate on more episodes (600 is standard)", "check the evaluation loop")
    half = 1.96 * arr.std(ddof=1) / math.sqrt(arr.size)
    return float(arr.mean()), float(half)


def t_quantile95(n: int) -> float:
    """Two-sided 95% Student's t quantile for the mean of ``n`` values (``n - 1`` degrees of freedom).

    ``scipy.stats.t.ppf(0.975, n - 1)``: 12.706 for n = 2, 4.303 for n = 3, 2.010 for n = 50; it
    tends to the normal 1.960 as n grows. Taught in chapter 01, § One episode means little.
    """
    from scipy.stats import t
    if int(n) < 2:
        raise course_error("n", "at least 2 values (a t interval needs n - 1 >= 1)", repr(n),
                           "measure more seeds, e.g. SEEDS = (0, 1, 2)")
    return float(t.ppf(0.975, int(n) - 1))


def mean_ci95_t(values) -> tuple[float, float]:
    """Mean and half-width of the 95% CI of the mean with Student's t: for SMALL samples (seeds).

    ``t_{0.975, n-1} * std / sqrt(n)`` with the sample standard deviation (``ddof=1``). Use it for
    every interval over meta-training seeds (n = 3: ``4.303 * s / sqrt(3)``); over hundreds of test
    episodes it equals :func:`mean_ci95` to three digits.

    Args:
        values: a 1-D sequence, one figure per seed (each seed's mean accuracy, MSE, paired gain, ...).
    Returns:
        ``(mean, half_width)`` in the units of ``values``.

    Taught in chapter 01, § One episode means little; used in chapters 03 and 05 over seeds.
    """
    arr = _finite_series(values, "a 1-D sequence of at least 2 figures (one per seed)",
                         "train with more seeds, e.g. SEEDS = (0, 1, 2)", "check the training run of each seed")
    half = t_quantile95(arr.size) * arr.std(ddof=1) / math.sqrt(arr.size)
    return float(arr.mean()), float(half)


def seed_interval(values, metric: str = "accuracy"):
    """One figure per training seed as a :class:`utils.results.MetaResult` with the t interval.

    ``covers`` reads ``"3 training seeds"``, so the result prints ``... (95% CI over 3 training
    seeds)``. ``metric="accuracy"`` prints as a percentage. Taught in chapter 03, § 6 · All families on the same episodes.
    """
    from .results import MetaResult
    values = [float(v) for v in values]
    mean, half = mean_ci95_t(values)
    n = len(values)
    return MetaResult(metric, mean, half, values,
                      covers=f"{n} training seed{'s' if n != 1 else ''}")


def format_ci(mean: float, half: float, percent: bool = False, digits: int = 2) -> str:
    """Format ``mean ± half`` (as percentages when ``percent``).

    Taught in chapter 01, § One episode means little.
    """
    if percent:
        return f"{100 * mean:.{digits}f} ± {100 * half:.{digits}f}%"
    return f"{mean:.{digits + 1}f} ± {half:.{digits + 1}f}"


# ----------------------------------------------------------------------------- choosing and ranking
@dataclass
class Selection:
    """What :func:`select_on_validation` chose: the best candidate and every candidate's score.

    ``split`` names the data the scores come from (``"validation"``), so that a table can say it.
    """
    best: object
    scores: dict
    split: str = "validation"

    def __str__(self) -> str:
        shown = ", ".join(f"{k}: {v:.4g}" for k, v in self.scores.items())
        return f"chosen on {self.split}: {self.best!r} ({shown})"


def select_on_validation(candidates, score, *, higher_is_better: bool = True,
                         split: str = "validation") -> Selection:
    """Pick the hyperparameter value whose ``score(value)`` on VALIDATION data is best.

    The course's rule (chapters 01, 02, 04): step sizes, step counts, temperatures, sparsities and
    ranks are chosen on meta-validation classes or a validation split, never on the test data
    the chapter reports. This helper only makes the choice explicit and recorded; ``score``
    must evaluate on validation data.

    Args:
        candidates: the values to try, in order (ties go to the earliest).
        score: ``score(value) -> float`` on validation data (accuracy, or an error with
            ``higher_is_better=False``). ``nan``/``inf`` count as the worst possible score
            (a diverged run is never chosen).
        higher_is_better: ``True`` for accuracies, ``False`` for errors (MSE, loss).
        split: name of the data the scores come from, kept in the result.
    Returns:
        a :class:`Selection` with ``best`` and ``scores`` (``{value: score}`` in candidate order).

    Taught in chapter 02, § 2 · Five ways to meet a new task.
    """
    values = list(candidates)
    if not values:
        raise course_error("candidates", "at least one value to choose from", "an empty sequence",
                           "pass e.g. [0.003, 0.01, 0.03]")
    scores = {}
    for v in values:
        s = float(score(v))
        scores[v] = s
    sign = 1.0 if higher_is_better else -1.0
    finite = [v for v in values if math.isfinite(scores[v])]
    if not finite:
        raise course_error("score", "a finite score for at least one candidate",
                           f"only nan/inf for {values}", "lower the step sizes, or check the evaluation")
    best = max(finite, key=lambda v: (sign * scores[v], -values.index(v)))
    return Selection(best, scores, split)


@dataclass
class SeedSpread:
    """A figure measured once per meta-training seed: mean, sample std, min and max over seeds.

    This is the uncertainty from TRAINING (another seed: other initial weights, other training
    tasks), which the episode CI of one trained model does not contain. ``std`` is a spread, not
    an interval; :attr:`ci95` is the Student's t 95% CI half-width of the mean over the seeds.
    """
    values: list
    mean: float
    std: float
    low: float
    high: float

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def ci95(self) -> float:
        """Student's t 95% CI half-width of the mean over the seeds (:func:`mean_ci95_t`)."""
        return mean_ci95_t(self.values)[1]

    def format(self, percent: bool = False, digits: int = 3) -> str:
        """``mean ± std over n seeds (min–max)``."""
        f = 100.0 if percent else 1.0
        unit = "%" if percent else ""
        return (f"{f * self.mean:.{digits}f}{unit} ± {f * self.std:.{digits}f} sd over {self.n} seeds "
                f"({f * self.low:.{digits}f}–{f * self.high:.{digits}f})")


def seed_spread(values) -> SeedSpread:
    """Summarize one figure measured for several meta-training seeds (at least 2; rank on >= 3).

    Args:
        values: one finite number per seed (e.g. each seed's mean test accuracy).

    Taught in chapter 02, § 4 · MSE vs number of steps, over many test tasks.
    """
    arr = _finite_series(values, "one figure per meta-training seed, at least 2 (3 to rank methods)",
                         "train with more seeds, e.g. SEEDS = (0, 1, 2)", "check the training run of each seed")
    return SeedSpread(arr.tolist(), float(arr.mean()), float(arr.std(ddof=1)), float(arr.min()), float(arr.max()))


def ranking_holds(better, worse, *, higher_is_better: bool = True) -> bool:
    """True when method ``better`` beats ``worse`` for EVERY seed (paired by position).

    ``better`` and ``worse`` are per-seed figures of the two methods, in the same seed order
    (at least 3 seeds, as the course requires for a ranking).

    Taught in chapter 02, § 4 · MSE vs number of steps, over many test tasks.
    """
    a, b = [float(v) for v in better], [float(v) for v in worse]
    if len(a) != len(b) or len(a) < 3:
        raise course_error("better / worse", "per-seed figures of two methods, same seeds, at least 3",
                           f"{len(a)} and {len(b)} values", "train every method with SEEDS = (0, 1, 2)")
    return all((x > y) if higher_is_better else (x < y) for x, y in zip(a, b))
