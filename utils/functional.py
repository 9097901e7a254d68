"""The inner loop as a pure function of a parameter dict, vectorized over tasks with ``torch.func``.

``adapt`` takes parameters ``θ`` (a dict name → tensor), a task's support set and returns the
adapted parameters ``φ = θ - α ∇θ L_support(θ)`` after ``steps`` steps. Because it is a pure
function, ``torch.func.vmap`` runs it for a whole meta-batch of tasks at once, and ordinary
autograd differentiates through it (second-order MAML) unless ``first_order`` cuts the graph.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn
from torch.func import functional_call, grad, vmap
from torch.nn import functional as F

Params = dict[str, torch.Tensor]


def detached(params: Params) -> Params:
    """The same dict with every tensor detached (constants for autograd; no copies)."""
    return {k: v.detach() for k, v in params.items()}


def _step_size(lr: float | Params, name: str):
    """The inner step size of parameter ``name``: a scalar α, or Meta-SGD's per-parameter tensor."""
    return lr[name] if isinstance(lr, dict) else lr


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


def adapt(model: nn.Module, params: Params, buffers: Params, x: torch.Tensor, y: torch.Tensor,
          steps: int, lr: float | Params, first_order: bool = False,
          adapt_names: list[str] | None = None, loss_fn: Callable = task_loss) -> Params:
    """Gradient-descent adaptation on one task's support set; returns the full adapted dict.

    Args:
        params: all parameters θ; only ``adapt_names`` (default: all) are updated.
        x, y: the support set of ONE task, e.g. ``(N*K, C, H, W)`` and ``(N*K,)``.
        steps: number of inner gradient steps (0 returns ``params``).
        lr: a scalar step size α, or a dict name → tensor of per-parameter step sizes (Meta-SGD).
        first_order: treat the inner gradients as constants (first-order MAML), so the outer
            gradient skips the second-derivative terms.

    Taught in chapter 02, § 7 · Under the hood: the inner loop as a pure function, vectorized over tasks.
    """
    names = list(params) if adapt_names is None else list(adapt_names)
    fixed = {k: v for k, v in params.items() if k not in names}
    fast = {k: params[k] for k in names}

    def support_loss(fast_params):
        return loss_fn(forward(model, {**fixed, **fast_params}, buffers, x), y)

    for _ in range(steps):
        grads = grad(support_loss)(fast)
        if first_order:
            grads = {k: g.detach() for k, g in grads.items()}
        fast = {k: fast[k] - _step_size(lr, k) * grads[k] for k in names}
    return {**fixed, **fast}


def vmap_meta_loss(model: nn.Module, params: Params, buffers: Params, support_x, support_y,
                   query_x, query_y, steps: int, lr, first_order: bool = False,
                   adapt_names=None, chunk_size: int | None = None):
    """Query loss and accuracy after adaptation, for a meta-batch of ``T`` tasks at once.

    Inputs are stacked over tasks: ``support_x`` ``(T, N*K, ...)``, ``query_x`` ``(T, N*Q, ...)``.
    ``chunk_size`` processes that many tasks at a time inside ``vmap`` to bound memory.
    Returns ``(losses (T,), accuracies (T,))``; the mean loss is the MAML meta-objective.

    Taught in chapter 02, § 7 · Under the hood: the inner loop as a pure function, vectorized over tasks.
    """
    def one_task(sx, sy, qx, qy):
        fast = adapt(model, params, buffers, sx, sy, steps, lr, first_order, adapt_names)
        return loss_and_accuracy(forward(model, fast, buffers, qx), qy)

    return vmap(one_task, randomness="different", chunk_size=chunk_size)(
        support_x, support_y, query_x, query_y)


def loop_meta_loss(model: nn.Module, params: Params, buffers: Params, support_x, support_y,
                   query_x, query_y, steps: int, lr, first_order: bool = False, adapt_names=None):
    """Reference implementation of :func:`vmap_meta_loss`: a Python loop over tasks with
    ``torch.autograd.grad(create_graph=not first_order)``. Slower; used by tests and benchmarks.

    Taught in chapter 02, § 7 · Under the hood: the inner loop as a pure function, vectorized over tasks.
    """
    names = list(params) if adapt_names is None else list(adapt_names)
    losses, accs = [], []
    for t in range(support_x.shape[0]):
        fast = dict(params)
        for _ in range(steps):
            out = forward(model, fast, buffers, support_x[t])
            loss = task_loss(out, support_y[t])
            grads = torch.autograd.grad(loss, [fast[k] for k in names], create_graph=not first_order)
            fast.update({k: fast[k] - _step_size(lr, k) * g for k, g in zip(names, grads)})
        l, a = loss_and_accuracy(forward(model, fast, buffers, query_x[t]), query_y[t])
        losses.append(l)
        accs.append(a)
    return torch.stack(losses), torch.stack(accs)


def adam_linear_head(head: nn.Linear, features: torch.Tensor, labels: torch.Tensor, steps: int,
                     lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> nn.Linear:
    """Train ``head`` in place: ``steps`` Adam steps on ``F.cross_entropy(head(features), labels)``.

    The fine-tuning baseline's inner loop (chapter 01, § Learner and meta-learner; chapter 02, § 2):
    a fresh linear head on frozen features ``(S, D)`` of a support set with labels ``(S,)`` in
    ``0..C-1``. It makes the same updates as ``torch.optim.Adam`` driven by autograd (bitwise equal on
    this course's CPU; ``tests/test_adam_head.py`` checks them to 1e-6), with the gradient of softmax cross-entropy written
    out: ``(softmax(z) - onehot(y)) / S`` for the logits ``z``, through ``log_softmax``'s own backward
    kernel. Without autograd and an optimizer object, a step on the course's small heads costs a
    fraction of the generic loop's Python overhead, and chapters run thousands of them.
    """
    if features.dim() != 2 or labels.shape != features.shape[:1]:
        raise ValueError(f"features (S, D) and labels (S,) expected, found {tuple(features.shape)} "
                         f"and {tuple(labels.shape)}: pass one support set's features and labels")
    beta1, beta2 = betas
    params = (head.weight, head.bias)
    exp_avg = [torch.zeros_like(p) for p in params]
    exp_avg_sq = [torch.zeros_like(p) for p in params]
    with torch.no_grad():
        d_logp = torch.zeros(len(labels), head.out_features, dtype=features.dtype, device=features.device)
        d_logp[torch.arange(len(labels), device=labels.device), labels] = -1.0 / len(labels)   # mean NLL
        for step in range(1, steps + 1):
            logp = torch.log_softmax(F.linear(features, head.weight, head.bias), 1)
            d_logits = torch._log_softmax_backward_data(d_logp, logp, 1, logp.dtype)
            grads = (d_logits.t().mm(features), d_logits.sum(0))
            bias_correction2_sqrt = (1 - beta2 ** step) ** 0.5
            step_size = lr / (1 - beta1 ** step)
            for p, g, m, v in zip(params, grads, exp_avg, exp_avg_sq):   # torch.optim.Adam's arithmetic
                m.lerp_(g, 1 - beta1)
                v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
                p.addcdiv_(m, (v.sqrt() / bias_correction2_sqrt).add_(eps), value=-step_size)
    return head
