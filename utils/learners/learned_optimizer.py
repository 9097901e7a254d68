"""A learned optimiser (chapter 03 §3): "learning to learn by gradient descent by gradient descent"
(Andrychowicz et al. 2016), small enough for a CPU.

The update rule is a small LSTM applied to every coordinate of the parameter vector separately
(*coordinatewise*, 逐坐标): coordinate ``i`` reads only its own gradient features and its own LSTM
state, and all coordinates share the LSTM's weights — so one rule works for any number of
parameters, and permuting the parameters permutes the updates. It is meta-trained by unrolling
it on problems of a family (random quadratics ``f(θ) = mean((Wθ − y)²)``, Andrychowicz et al.'s
first experiment) and back-propagating the sum of the losses along the unroll into the rule's
weights; the optimisee's gradients are treated as inputs (no second derivatives, as in the paper).

A *problem batch* (:class:`Quadratics`, :class:`LogisticProblems`) holds ``B`` problems and offers
``loss(theta (B, d)) → (B,)`` and ``init(generator) → theta0 (B, d)``. :func:`run_rule` runs any
update rule (the learned one, :func:`sgd_rule`, :func:`adam_rule`) on them and records the losses.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from .base import MetaHistory
from ..errors import course_error
from ..results import MetaResult
from ..runtime import pick_device
from ..stats import mean_ci95
from ..vocab import TaskSource

__all__ = ["Quadratics", "sample_quadratics", "LogisticProblems", "sample_logistic", "gradient_features",
           "LSTMRule", "sgd_rule", "adam_rule", "run_rule", "LearnedOptimizer", "final_loss"]


# ----------------------------------------------------------------------------- problem families
@dataclass
class Quadratics:
    """``B`` problems ``f(θ) = mean_rows((W θ − y)²)``; ``W`` ``(B, n, d)``, ``y`` ``(B, n)``."""
    W: torch.Tensor
    y: torch.Tensor

    def loss(self, theta: torch.Tensor) -> torch.Tensor:
        return ((self.W @ theta.unsqueeze(-1)).squeeze(-1) - self.y).pow(2).mean(-1)

    def init(self, generator=None) -> torch.Tensor:
        return torch.zeros(self.W.shape[0], self.W.shape[2], dtype=self.W.dtype)

    def to(self, device) -> "Quadratics":
        return Quadratics(self.W.to(device), self.y.to(device))


def sample_quadratics(n: int, dim: int = 10, generator: torch.Generator | None = None) -> Quadratics:
    """The training family: ``W`` and ``y`` with standard normal entries, ``dim × dim``."""
    return Quadratics(torch.randn(n, dim, dim, generator=generator), torch.randn(n, dim, generator=generator))


@dataclass
class LogisticProblems:
    """Out-of-family problems: logistic regression, ``X`` ``(B, n, d)``, labels ``t`` ``(B, n)`` in {0, 1};
    ``f(θ)`` = mean binary cross-entropy of ``sigmoid(X θ)``."""
    X: torch.Tensor
    t: torch.Tensor

    def loss(self, theta: torch.Tensor) -> torch.Tensor:
        z = (self.X @ theta.unsqueeze(-1)).squeeze(-1)
        return F.binary_cross_entropy_with_logits(z, self.t, reduction="none").mean(-1)

    def init(self, generator=None) -> torch.Tensor:
        return torch.zeros(self.X.shape[0], self.X.shape[2], dtype=self.X.dtype)

    def to(self, device) -> "LogisticProblems":
        return LogisticProblems(self.X.to(device), self.t.to(device))


def sample_logistic(n: int, dim: int = 20, points: int = 50, generator=None) -> LogisticProblems:
    """Two Gaussian classes per problem, separated along a random direction (noisy labels)."""
    X = torch.randn(n, points, dim, generator=generator)
    w = torch.randn(n, dim, generator=generator)
    p = torch.sigmoid((X @ w.unsqueeze(-1)).squeeze(-1))
    return LogisticProblems(X, (torch.rand(n, points, generator=generator) < p).float())


# ----------------------------------------------------------------------------- update rules
def gradient_features(grad: torch.Tensor, p: float = 10.0) -> torch.Tensor:
    """Andrychowicz et al.'s preprocessing, per coordinate: ``(log|g| / p, sign g)`` if
    ``|g| ≥ e^-p``, else ``(−1, e^p g)``. ``(...,)`` → ``(..., 2)``; scale-free inputs for the LSTM."""
    big = grad.abs() >= math.exp(-p)
    first = torch.where(big, grad.abs().clamp_min(1e-30).log() / p, torch.full_like(grad, -1.0))
    second = torch.where(big, grad.sign(), math.exp(p) * grad)
    return torch.stack([first, second], -1)


class LSTMRule(nn.Module):
    """Coordinatewise LSTM update rule: ``(grad (P,), state) → (update (P,), state)``.

    Every coordinate is one row of the LSTM's batch; ``out_scale`` multiplies the output (0.1 in
    the paper) so early updates are small.
    """

    def __init__(self, hidden: int = 20, out_scale: float = 0.1):
        super().__init__()
        self.hidden, self.out_scale = int(hidden), float(out_scale)
        self.cell = nn.LSTMCell(2, hidden)
        self.head = nn.Linear(hidden, 1)

    def init_state(self, n_coords: int, device=None):
        z = torch.zeros(n_coords, self.hidden, device=device)
        return (z, z.clone())

    def forward(self, grad: torch.Tensor, state):
        if grad.dim() != 1:
            raise course_error("grad", "a flat vector of per-coordinate gradients (P,)",
                               f"shape {tuple(grad.shape)}", "flatten the gradients first")
        h, c = self.cell(gradient_features(grad), state)
        return self.out_scale * self.head(h).squeeze(-1), (h, c)


def sgd_rule(lr: float):
    """Plain gradient descent as an update rule (stateless)."""
    return lambda grad, state: (-lr * grad, state)


def adam_rule(lr: float, betas=(0.9, 0.999), eps: float = 1e-8):
    """Adam (Kingma & Ba 2015) as an update rule; its state is ``(m, v, t)``, created on first use."""
    def rule(grad, state):
        m, v, t = state if state is not None else (torch.zeros_like(grad), torch.zeros_like(grad), 0)
        t += 1
        m = betas[0] * m + (1 - betas[0]) * grad
        v = betas[1] * v + (1 - betas[1]) * grad ** 2
        step = lr * (m / (1 - betas[0] ** t)) / ((v / (1 - betas[1] ** t)).sqrt() + eps)
        return -step, (m, v, t)
    return rule


def run_rule(rule, problems, steps: int, state=None, theta=None, keep_graph: bool = False):
    """Run ``rule`` for ``steps`` steps on a problem batch from its ``init``.

    Returns ``(losses (steps + 1, B), theta, state)``; ``losses[0]`` is at the start. The
    optimisee's gradients enter the rule detached (first-order, as Andrychowicz et al.); with
    ``keep_graph`` the losses keep the graph back to the rule's weights (meta-training).
    """
    theta = problems.init() if theta is None else theta
    B, d = theta.shape
    losses = []
    for _ in range(steps):
        if not theta.requires_grad:
            theta = theta.detach().requires_grad_()
        with torch.enable_grad():
            loss = problems.loss(theta)
            grad = torch.autograd.grad(loss.sum(), theta, retain_graph=keep_graph)[0].detach()
        losses.append(loss if keep_graph else loss.detach())
        update, state = rule(grad.flatten(), state)
        theta = theta + update.view(B, d)
        if not keep_graph:
            theta = theta.detach()
    with torch.set_grad_enabled(keep_graph):
        losses.append(problems.loss(theta))
    return torch.stack(losses), theta, state


class LearnedOptimizer:
    """Meta-train an :class:`LSTMRule` on a problem source ``source(B)`` (e.g.
    ``lambda B: sample_quadratics(B, generator=g)``).

    ``meta_train(source, iterations, meta_batch)`` runs ``horizon`` optimisation steps per
    iteration in truncated unrolls of ``unroll`` steps; the meta-loss of an unroll is the mean of
    ``log`` of the losses along it (the log puts problems of very different scales on one footing).
    """

    def __init__(self, rule: LSTMRule | None = None, lr: float = 3e-3, unroll: int = 10, horizon: int = 50,
                 device="auto"):
        self.device = pick_device(device)
        self.model = (rule or LSTMRule()).to(self.device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=lr)
        self.unroll, self.horizon = int(unroll), int(horizon)
        self.history = None

    def rule(self):
        """The learned rule as a function ``(grad, state) → (update, state)`` (state made on first use)."""
        def step(grad, state):
            state = self.model.init_state(grad.numel(), grad.device) if state is None else state
            return self.model(grad, state)
        return step

    def meta_train(self, source: TaskSource, iterations: int, meta_batch: int = 16, progress: bool = False) -> MetaHistory:
        import time
        hist = self.history or MetaHistory()
        self.history, start, offset = hist, time.perf_counter(), hist.total_seconds
        for _ in range(iterations):
            problems = source(meta_batch).to(self.device)
            theta, state, total = None, None, []
            for _ in range(self.horizon // self.unroll):
                losses, theta, state = run_rule(self.rule(), problems, self.unroll, state, theta, keep_graph=True)
                meta_loss = losses[1:].clamp_min(1e-12).log().mean()
                self.optimizer.zero_grad(set_to_none=True)
                meta_loss.backward()
                nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
                self.optimizer.step()
                theta, state = theta.detach(), tuple(s.detach() for s in state)
                total.append(float(meta_loss.detach()))
            hist.loss.append(sum(total) / len(total))
            hist.accuracy.append(float("nan"))
            hist.seconds.append(offset + time.perf_counter() - start)
        return hist

    def evaluate(self, problems, steps: int) -> MetaResult:
        """Final loss after ``steps`` learned steps on each problem: mean ± 95% CI (no graph)."""
        return final_loss(self.rule(), problems.to(self.device), steps)


def final_loss(rule, problems, steps: int) -> MetaResult:
    """Mean ± 95% CI over problems of the loss after ``steps`` steps of ``rule``; a rule that
    diverged on any problem gets mean ``inf`` (so :func:`utils.stats.select_on_validation` never
    picks it) and CI ``nan``."""
    with torch.no_grad():
        losses, _, _ = run_rule(rule, problems, steps)
    values = losses[-1].tolist()
    if not all(math.isfinite(v) for v in values):
        return MetaResult("final loss", float("inf"), float("nan"), values)
    return MetaResult("final loss", *mean_ci95(values), values)
