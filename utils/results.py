"""Results that present themselves: a figure with its interval and what the interval covers.

:class:`MetaResult` is what every meta-evaluation returns (:mod:`utils.learners.evaluate`): the mean query
figure over test tasks, its 95 % CI half-width and the per-task values.

Taught in chapter 01, § How meta-learning is judged.
"""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["MetaResult"]


@dataclass
class MetaResult:
    """Mean query figure over test tasks with its 95% CI half-width; ``values`` per task."""
    metric: str
    mean: float
    ci95: float
    values: list

    def __str__(self) -> str:
        if self.metric == "accuracy":
            return f"{100 * self.mean:.2f} ± {100 * self.ci95:.2f}% accuracy"
        return f"{self.mean:.3f} ± {self.ci95:.3f} {self.metric}"
