"""The one inner loop of the course, and the one value that describes it (issue 25, item 3).

:class:`Adaptation` says how a learner adapts to a task (steps, step size, first or second order,
learned per-parameter step sizes, which parameters move). :func:`run_inner_loop` is the only
implementation of the gradient steps ``φ ← φ - α ∇φ L_support(φ)``: the MAML family (one task at a
time, or a meta-batch with ``torch.func.vmap``), the folded conv path (:mod:`utils.learners.folded`),
ProtoMAML's head steps, the sinusoid curves of chapter 02 and the benchmarks all call it.
Because it is a pure function of a parameter dict, ``vmap`` runs it for a whole meta-batch at once
(``backend="func"``: gradients by ``torch.func.grad``), and ordinary autograd differentiates through
it (second-order MAML) unless ``first_order`` cuts the graph. ``backend="autograd"`` takes
``torch.autograd.grad`` instead, for losses summed over tasks outside ``vmap`` (folded, ProtoMAML, the
per-task reference loop).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

import torch
from torch import nn
from torch.func import functional_call, grad, vmap
from torch.nn import functional as F

from ..errors import course_error

__all__ = ["Params", "Adaptation", "run_inner_loop", "adapt", "vmap_meta_loss", "loop_meta_loss",
           "adapt_names", "detached", "loss_and_accuracy", "task_loss", "model_params", "forward"]

Params = dict[str, torch.Tensor]


@dataclass(frozen=True)
class Adaptation:
    """How a learner adapts to one task: the whole description of its inner loop.

    Args:
        steps: inner gradient steps (0: no adaptation).
        step_size: the inner step size α (Meta-SGD: the initial value of its learned sizes).
        first_order: treat inner gradients as constants (first-order MAML, Reptile).
        adapt: ``"all"`` parameters, ``"head"`` (names starting with ``head.``: ANIL), or a tuple of names.
        learned_step_sizes: learn one step size per parameter entry (Meta-SGD); the tensors live
            with the learner and are passed to :func:`run_inner_loop` as ``step_sizes``.

    ``adaptation.but(steps=10)`` is a copy with some fields changed.

    Taught in chapter 02, § 7 · Under the hood: the inner loop as a pure function, vectorized over tasks.
    """
    steps: int = 1
    step_size: float = 0.4
    first_order: bool = False
    adapt: str | tuple = "all"
    learned_step_sizes: bool = False

    def __post_init__(self):
        if int(self.steps) != self.steps or self.steps < 0:
            raise course_error("Adaptation(steps=)", "a non-negative integer", repr(self.steps), "pass e.g. steps=1")
        object.__setattr__(self, "steps", int(self.steps))
        object.__setattr__(self, "step_size", float(self.step_size))
        object.__setattr__(self, "first_order", bool(self.first_order))
        if isinstance(self.adapt, list):
            object.__setattr__(self, "adapt", tuple(self.adapt))

    def but(self, **changes) -> "Adaptation":
        """A copy with ``changes`` (field names as the constructor takes them)."""
        return replace(self, **changes)

    def names(self, model: nn.Module) -> list[str]:
        """Names of ``model``'s parameters this adaptation moves."""
        return adapt_names(model, self.adapt)


def adapt_names(model: nn.Module, adapt: str | tuple = "all") -> list[str]:
    """Names of the parameters the inner loop moves: ``"all"``, ``"head"`` (``head.*`` only: ANIL),
    or an explicit tuple of names.

    Taught in chapter 02, § 9 · What second-order gradients cost, and what first-order and ANIL trade away.
    """
    names = [k for k, _ in model.named_parameters()]
    if isinstance(adapt, (tuple, list)):
        unknown = sorted(set(adapt) - set(names))
        if unknown:
            raise course_error("adapt", f"parameter names of the model ({names[:4]}...)", repr(unknown),
                               "pass names from model.named_parameters()")
        return list(adapt)
    if adapt == "all":
        return names
    if adapt == "head":
        head = [k for k in names if k.startswith("head.")]
        if not head:
            raise course_error("adapt='head'", "a model with parameters named 'head.*'",
                               f"names {names[:4]}...", "use utils.models.Classifier or adapt='all'")
        return head
    raise course_error("adapt", "'all', 'head' or a tuple of parameter names", repr(adapt), "pick one")


def detached(params: Params) -> Params:
    """The same dict with every tensor detached (constants for autograd; no copies)."""
    return {k: v.detach() for k, v in params.items()}


def loss_and_accuracy(outputs: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Cross-entropy and accuracy for class targets (int64), MSE and ``nan`` for real targets.

    outputs ``(M, N)`` logits or ``(M, d)`` predictions; targets ``(M,)`` ints or ``(M, d)`` floats.
    """
    if targets.dtype in (torch.int64, torch.int32):
        return F.cross_entropy(outputs, targets), (outputs.argmax(-1) == targets).float().mean()
    return F.mse_loss(outputs, targets), torch.full((), float("nan"), device=outputs.device)


def task_loss(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Just the loss of :func:`loss_and_accuracy`."""
    return loss_and_accuracy(outputs, targets)[0]


def model_params(model: nn.Module) -> tuple[Params, Params]:
    """``(parameters, buffers)`` of ``model`` as dicts of its own tensors (not copies).

    Taught in chapter 02, § 7 · Under the hood: the inner loop as a pure function, vectorized over tasks.
    """
    return dict(model.named_parameters()), dict(model.named_buffers())


def forward(model: nn.Module, params: Params, buffers: Params, x: torch.Tensor) -> torch.Tensor:
    """``model(x)`` computed with the given parameters instead of the module's own.

    Taught in chapter 02, § 7 · Under the hood: the inner loop as a pure function, vectorized over tasks.
    """
    return functional_call(model, (params, buffers), (x,))


def run_inner_loop(support_loss: Callable[[Params], torch.Tensor], params: Params, *, steps: int,
               step_sizes: float | Params, first_order: bool = False, names=None,
               backend: str = "func", on_step: Callable[[int, Params], None] | None = None) -> Params:
    """THE inner loop: ``steps`` gradient steps ``φ_k ← φ_k - α_k ∇ support_loss(φ)`` on the names given.

    Args:
        support_loss: the full parameter dict → a scalar loss (one task's support loss, or a sum of
            per-task losses whose tasks do not share parameters: each gets its own gradient).
        params: the starting parameters θ (name → tensor); only ``names`` (default all) move.
        steps: number of steps (0 returns ``params``).
        step_sizes: a scalar α, or name → tensor per-parameter sizes (Meta-SGD).
        first_order: inner gradients are constants for the outer gradient (first-order MAML).
        backend: ``"func"`` (``torch.func.grad``: under ``vmap``, one task) or ``"autograd"``
            (``torch.autograd.grad``; outside ``vmap``; under ``torch.no_grad()`` it keeps no graph).
        on_step: called as ``on_step(s, φ_s)`` for ``s = 0 .. steps`` (e.g. to record a curve).
    Returns:
        the full adapted dict ``φ`` (the fixed parameters unchanged).

    Taught in chapter 02, § 7 · Under the hood: the inner loop as a pure function, vectorized over tasks.
    """
    if backend not in ("func", "autograd"):
        raise course_error("backend", "'func' or 'autograd'", repr(backend), "pick one")
    names = list(params) if names is None else list(names)
    fixed = {k: v for k, v in params.items() if k not in names}
    fast = {k: params[k] for k in names}
    outer = torch.is_grad_enabled()     # False under torch.no_grad(): adapt, keep no graph

    def rate(k):
        return step_sizes[k] if isinstance(step_sizes, dict) else step_sizes

    for s in range(steps):
        if on_step is not None:
            on_step(s, {**fixed, **fast})
        if backend == "func":
            grads = grad(lambda f: support_loss({**fixed, **f}))(fast)
            grads = [grads[k].detach() if first_order else grads[k] for k in names]
        else:
            with torch.enable_grad():
                # under torch.no_grad() every step starts from leaves (a view made there may still say
                # requires_grad without being part of any graph)
                fast = {k: v if outer and v.requires_grad else v.detach().requires_grad_() for k, v in fast.items()}
                grads = torch.autograd.grad(support_loss({**fixed, **fast}), [fast[k] for k in names],
                                            create_graph=outer and not first_order,
                                            allow_unused=True, materialize_grads=True)
        fast = {k: fast[k] - rate(k) * g for k, g in zip(names, grads)}
        if backend == "autograd" and not outer:
            fast = detached(fast)
    if on_step is not None:
        on_step(steps, {**fixed, **fast})
    return {**fixed, **fast}


def _settings(adaptation: Adaptation | None, steps, lr, first_order, names) -> tuple:
    """``(steps, step_sizes, first_order, names)`` from an :class:`Adaptation` or the keywords."""
    if adaptation is not None:
        return (adaptation.steps if steps is None else steps, adaptation.step_size if lr is None else lr,
                adaptation.first_order if first_order is None else first_order, names)
    if steps is None or lr is None:
        raise course_error("adapt(...)", "steps= and lr= (or adaptation=Adaptation(...))",
                           f"steps={steps!r}, lr={lr!r}", "pass both, e.g. steps=1, lr=0.4")
    return steps, lr, bool(first_order), names


def adapt(model: nn.Module, state: tuple[Params, Params], support: tuple, *, steps: int | None = None,
          lr: float | Params | None = None, first_order: bool | None = None, adapt_names=None,
          adaptation: Adaptation | None = None, loss_fn: Callable = None, backend: str = "func") -> Params:
    """Gradient-descent adaptation of ``model`` on ONE task's support set; the full adapted dict.

    Args:
        state: ``(params, buffers)`` dicts (see :func:`model_params`); only ``adapt_names`` (default:
            all) are updated.
        support: ``(x, y)``, the support set of ONE task, e.g. ``(N*K, C, H, W)`` and ``(N*K,)``.
        steps, lr, first_order: see :class:`Adaptation` (or pass ``adaptation=``); ``lr`` may be a
            dict name → tensor of per-parameter step sizes (Meta-SGD).
        loss_fn: ``(outputs, targets) → loss``; default :func:`task_loss`.

    Taught in chapter 02, § 7 · Under the hood: the inner loop as a pure function, vectorized over tasks.
    """
    params, buffers = state
    x, y = support
    steps, lr, first_order, adapt_names = _settings(adaptation, steps, lr, first_order, adapt_names)
    loss_fn = task_loss if loss_fn is None else loss_fn
    return run_inner_loop(lambda p: loss_fn(forward(model, p, buffers, x), y), params, steps=steps,
                      step_sizes=lr, first_order=first_order, names=adapt_names, backend=backend)


def vmap_meta_loss(model: nn.Module, state: tuple[Params, Params], batch: tuple, *, steps: int | None = None,
                   lr=None, first_order: bool | None = None, adapt_names=None,
                   adaptation: Adaptation | None = None, chunk_size: int | None = None):
    """Query loss and accuracy after adaptation, for a meta-batch of ``T`` tasks at once.

    ``batch`` is ``(support_x, support_y, query_x, query_y)`` stacked over tasks: ``support_x``
    ``(T, N*K, ...)``, ``query_x`` ``(T, N*Q, ...)``. ``chunk_size`` processes that many tasks at a
    time inside ``vmap`` to bound memory. Returns ``(losses (T,), accuracies (T,))``; the mean loss is
    the MAML meta-objective.

    Taught in chapter 02, § 7 · Under the hood: the inner loop as a pure function, vectorized over tasks.
    """
    params, buffers = state
    kw = dict(steps=steps, lr=lr, first_order=first_order, adapt_names=adapt_names, adaptation=adaptation)

    def one_task(sx, sy, qx, qy):
        fast = adapt(model, state, (sx, sy), **kw)
        return loss_and_accuracy(forward(model, fast, buffers, qx), qy)

    return vmap(one_task, randomness="different", chunk_size=chunk_size)(*batch)


def loop_meta_loss(model: nn.Module, state: tuple[Params, Params], batch: tuple, *, steps: int | None = None,
                   lr=None, first_order: bool | None = None, adapt_names=None,
                   adaptation: Adaptation | None = None):
    """Reference implementation of :func:`vmap_meta_loss`: a Python loop over tasks, the same
    :func:`run_inner_loop` with ``torch.autograd.grad(create_graph=not first_order)``. Slower; used by
    tests and benchmarks.

    Taught in chapter 02, § 7 · Under the hood: the inner loop as a pure function, vectorized over tasks.
    """
    params, buffers = state
    support_x, support_y, query_x, query_y = batch
    kw = dict(steps=steps, lr=lr, first_order=first_order, adapt_names=adapt_names, adaptation=adaptation)
    losses, accs = [], []
    for t in range(support_x.shape[0]):
        fast = adapt(model, state, (support_x[t], support_y[t]), backend="autograd", **kw)
        l, a = loss_and_accuracy(forward(model, fast, buffers, query_x[t]), query_y[t])
        losses.append(l)
        accs.append(a)
    return torch.stack(losses), torch.stack(accs)
