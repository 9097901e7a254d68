"""Task families for regression: the sinusoid family of Finn et al. (2017, §5.1), and the
piecewise task with three regimes that chapter 06 § 4 gives to a mixture of experts (:class:`PiecewiseTask`).

A task is a function ``y = A sin(x - φ)`` with amplitude ``A ~ U[0.1, 5]`` and phase
``φ ~ U[0, π]``; inputs are drawn from ``U[-5, 5]``. A batch of tasks is returned as stacked
tensors so the meta-learners can ``vmap`` over the task dimension.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .errors import course_error
from .vocab import TaskTensors

__all__ = ["TaskBatch", "SinusoidFamily", "PiecewiseTask"]


@dataclass
class TaskBatch(TaskTensors):
    """A batch of regression tasks. ``T`` tasks, ``K`` support and ``Q`` query points each.

    Attributes:
        support_x, support_y: ``(T, K, 1)`` float tensors.
        query_x, query_y: ``(T, Q, 1)`` float tensors.
        amplitude, phase: ``(T,)`` the task parameters (for plotting the true curve).
    """
    amplitude: torch.Tensor
    phase: torch.Tensor

    def __len__(self) -> int:
        return self.support_x.shape[0]


class SinusoidFamily:
    """The sinusoid task family; ``sample`` draws a :class:`TaskBatch`.

    Args:
        amplitude: (low, high) of the uniform amplitude range.
        phase: (low, high) of the uniform phase range, radians.
        x_range: (low, high) of the uniform input range.

    Taught in chapter 02, § 1 · The sinusoid family, and what "all tasks at once" learns.
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


class PiecewiseTask:
    """A 1-D regression task with distinct regimes, for mixtures of experts.

    On ``x`` in [-3, 3]: a fast sine for ``x < -1``, a gentle line for ``-1 <= x < 1`` and an
    offset parabola for ``x >= 1`` — three functions that one smooth network must stitch
    together, while a gate can hand each regime to its own expert.

    Taught in chapter 06, § 4 · Mixtures of experts: learning who handles what.
    """
    boundaries = (-1.0, 1.0)
    x_range = (-3.0, 3.0)
    names = ("sine", "line", "parabola")

    @staticmethod
    def regime(x: torch.Tensor) -> torch.Tensor:
        """Regime id 0, 1, 2 of each input (same shape as ``x`` minus a trailing 1)."""
        x = x.reshape(x.shape[0], -1)[:, 0] if x.dim() > 1 else x
        return (x >= -1).long() + (x >= 1).long()

    @classmethod
    def f(cls, x: torch.Tensor) -> torch.Tensor:
        """Target values, same shape as ``x``."""
        sine = 1.5 * torch.sin(4 * x)
        line = 0.5 * x + 1.0
        parab = 1.5 * (x - 2) ** 2 - 2.0
        return torch.where(x < -1, sine, torch.where(x < 1, line, parab))

    @classmethod
    def sample(cls, n: int, noise: float = 0.05, generator: torch.Generator | None = None):
        """``(x (n, 1), y (n, 1), regime (n,))`` with ``x`` uniform on the range and Gaussian noise on ``y``."""
        if int(n) != n or n < 1:
            raise course_error("n", "a positive integer", repr(n), "pass the number of points")
        lo, hi = cls.x_range
        x = lo + (hi - lo) * torch.rand(int(n), 1, generator=generator)
        y = cls.f(x) + noise * torch.randn(int(n), 1, generator=generator)
        return x, y, cls.regime(x)

    @classmethod
    def grid(cls, n: int = 400):
        """Evenly spaced ``x (n, 1)``, noiseless ``y (n, 1)`` and ``regime (n,)`` for plots and tests."""
        x = torch.linspace(*cls.x_range, int(n)).unsqueeze(1)
        return x, cls.f(x), cls.regime(x)
