"""Task families for regression meta-learning: the sinusoid family of Finn et al. (2017, §5.1).

A task is a function ``y = A sin(x - φ)`` with amplitude ``A ~ U[0.1, 5]`` and phase
``φ ~ U[0, π]``; inputs are drawn from ``U[-5, 5]``. A batch of tasks is returned as stacked
tensors so the meta-learners can ``vmap`` over the task dimension.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .errors import course_error


@dataclass
class TaskBatch:
    """A batch of regression tasks. ``T`` tasks, ``K`` support and ``Q`` query points each.

    Attributes:
        support_x, support_y: ``(T, K, 1)`` float tensors.
        query_x, query_y: ``(T, Q, 1)`` float tensors.
        amplitude, phase: ``(T,)`` the task parameters (for plotting the true curve).
    """
    support_x: torch.Tensor
    support_y: torch.Tensor
    query_x: torch.Tensor
    query_y: torch.Tensor
    amplitude: torch.Tensor
    phase: torch.Tensor

    def to(self, device) -> "TaskBatch":
        """Move every tensor to ``device``."""
        return TaskBatch(*(getattr(self, f).to(device) for f in self.__dataclass_fields__))

    def __len__(self) -> int:
        return self.support_x.shape[0]


class SinusoidFamily:
    """The sinusoid task family; ``sample`` draws a :class:`TaskBatch`.

    Args:
        amplitude: (low, high) of the uniform amplitude range.
        phase: (low, high) of the uniform phase range, radians.
        x_range: (low, high) of the uniform input range.
    """

    def __init__(self, amplitude=(0.1, 5.0), phase=(0.0, math.pi), x_range=(-5.0, 5.0)):
        for name, (lo, hi) in (("amplitude", amplitude), ("phase", phase), ("x_range", x_range)):
            if not lo < hi:
                raise course_error(name, "a (low, high) pair with low < high", f"({lo}, {hi})",
                                   "swap or widen the bounds")
        self.amplitude, self.phase, self.x_range = amplitude, phase, x_range

    def sample(self, n_tasks: int, k_support: int, k_query: int = 10,
               generator: torch.Generator | None = None) -> TaskBatch:
        """Draw ``n_tasks`` tasks with ``k_support`` support and ``k_query`` query points each."""
        for name, v in (("n_tasks", n_tasks), ("k_support", k_support), ("k_query", k_query)):
            if int(v) != v or v < 1:
                raise course_error(name, "a positive integer", repr(v), f"pass {name} >= 1")
        g = generator
        amp = self._uniform(self.amplitude, (n_tasks,), g)
        ph = self._uniform(self.phase, (n_tasks,), g)
        xs = self._uniform(self.x_range, (n_tasks, k_support, 1), g)
        xq = self._uniform(self.x_range, (n_tasks, k_query, 1), g)
        return TaskBatch(xs, self.evaluate(xs, amp, ph), xq, self.evaluate(xq, amp, ph), amp, ph)

    @staticmethod
    def evaluate(x: torch.Tensor, amplitude: torch.Tensor, phase: torch.Tensor) -> torch.Tensor:
        """True ``y`` for inputs ``x`` of shape ``(T, M, 1)`` and task parameters of shape ``(T,)``."""
        return amplitude.view(-1, 1, 1) * torch.sin(x - phase.view(-1, 1, 1))

    @staticmethod
    def _uniform(bounds, shape, g):
        lo, hi = bounds
        return lo + (hi - lo) * torch.rand(shape, generator=g)
