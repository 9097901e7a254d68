"""Summary statistics the course reports: means with 95% confidence intervals."""
from __future__ import annotations

import math

import numpy as np

from .errors import course_error


def mean_ci95(values) -> tuple[float, float]:
    """Mean and half-width of the 95% confidence interval of the mean.

    Uses the normal approximation ``1.96 * std / sqrt(n)`` with the sample standard deviation
    (``ddof=1``), as the few-shot literature does over hundreds of test episodes.

    Args:
        values: a 1-D sequence of per-episode figures (accuracies in [0, 1], MSEs, ...).
    Returns:
        ``(mean, half_width)``; report as ``mean ± half_width``.
    """
    arr = np.asarray([float(v) for v in values], dtype=np.float64)
    if arr.ndim != 1 or arr.size < 2:
        raise course_error("values", "a 1-D sequence of at least 2 per-episode figures",
                           f"{arr.size} value(s)", "evaluate on more episodes (600 is standard)")
    if not np.all(np.isfinite(arr)):
        raise course_error("values", "finite numbers", "NaN or inf", "check the evaluation loop")
    half = 1.96 * arr.std(ddof=1) / math.sqrt(arr.size)
    return float(arr.mean()), float(half)


def format_ci(mean: float, half: float, percent: bool = False, digits: int = 2) -> str:
    """Format ``mean ± half`` (as percentages when ``percent``)."""
    if percent:
        return f"{100 * mean:.{digits}f} ± {100 * half:.{digits}f}%"
    return f"{mean:.{digits + 1}f} ± {half:.{digits + 1}f}"
