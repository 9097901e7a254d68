"""MAML's meta-batch folded into channel groups: one grouped convolution for all tasks (chapter 02).

``torch.func.vmap`` runs a convolution network once per task under the hood on a CPU (the
batching rules of convolution, max-pooling and batch statistics reshape, copy and fill
task-sized buffers at every layer, forward and double backward). Here the ``T`` tasks of a
meta-batch become ``T`` *groups* of one ordinary network instead:

* images of every task are laid side by side along the channel axis, ``(B, T*C, H, W)``;
* a convolution with per-task weights ``(T, C_out, C_in, k, k)`` is ONE grouped convolution
  with weight ``(T*C_out, C_in, k, k)`` and ``groups=T`` (each group sees only its own task);
* batch statistics per task and channel are per-channel statistics of that wide image, so the
  norm, ReLU and max-pooling run once on the whole meta-batch;
* a linear layer with per-task weights ``(T, out, in)`` is one batched matrix product.

The inner gradient of the summed support losses with respect to the per-task copies of θ is
each task's own gradient (tasks do not share a group), so ``torch.autograd.grad`` with
``create_graph=True`` gives second-order MAML exactly as the per-task loop
(:func:`utils.learners.inner_loop.loop_meta_loss`) does; ``tests/test_folded.py`` checks forward values
and meta-gradients against that loop.

Only networks built from ``Conv2d`` (zero padding, ``groups=1``), ``BatchStatNorm``, ``ReLU``,
``MaxPool2d``, ``Flatten`` and ``Linear`` (in ``nn.Sequential``, ``MLP``, ``ConvBackbone`` or
``Classifier``) fold; :func:`supports` says whether a model does.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .inner_loop import Adaptation, Params, _settings, run_inner_loop
from ..models import BatchStatNorm, Classifier
from ..runtime import reuse_freed_memory

__all__ = ["supports", "forward", "folded_meta_loss"]

_LEAVES = (nn.Conv2d, BatchStatNorm, nn.ReLU, nn.MaxPool2d, nn.Flatten, nn.Linear)


def supports(model: nn.Module) -> bool:
    """``True`` when every layer of ``model`` has a folded form (see the module docstring)."""
    if any(True for _ in model.buffers()) or any(m._forward_hooks or m._forward_pre_hooks for m in model.modules()):
        return False  # running statistics, pruning masks, hooks: only the module's own forward knows
    if isinstance(model, nn.Sequential):
        return all(supports(m) for m in model)
    if isinstance(model, Classifier):
        return type(model).forward is Classifier.forward and supports(model.features) and supports(model.head)
    if isinstance(model, nn.Conv2d):
        return type(model) is nn.Conv2d and model.groups == 1 and model.padding_mode == "zeros" \
            and not isinstance(model.padding, str)
    if isinstance(model, nn.Flatten):
        return model.start_dim == 1 and model.end_dim == -1
    if isinstance(model, nn.MaxPool2d):
        return not model.return_indices
    return type(model) in _LEAVES


class _Folded:
    """An activation of ``T`` tasks: ``img`` ``(B, T*C, H, W)`` or ``vec`` ``(T, B, D)``."""

    def __init__(self, x: torch.Tensor, tasks: int, image: bool):
        self.x, self.tasks, self.image = x, tasks, image


def _vec(a: _Folded) -> torch.Tensor:
    if not a.image:
        return a.x
    B, TC = a.x.shape[:2]
    return a.x.reshape(B, a.tasks, TC // a.tasks, *a.x.shape[2:]).flatten(2).transpose(0, 1)


def _layer(m: nn.Module, p: Params, prefix: str, a: _Folded, normed: bool = False) -> _Folded:
    T = a.tasks
    if isinstance(m, (nn.Sequential, Classifier)):
        children = [("features", m.features), ("head", m.head)] if isinstance(m, Classifier) \
            else list(m.named_children())
        for i, (name, child) in enumerate(children):
            nxt = children[i + 1][1] if i + 1 < len(children) else None
            a = _layer(child, p, f"{prefix}{name}.", a, isinstance(nxt, BatchStatNorm))
        return a
    if isinstance(m, nn.Conv2d):
        w = p[prefix + "weight"]  # (T, C_out, C_in, k, k)
        # a bias right before batch statistics is cancelled by the mean subtraction: leave it out
        # (its gradient is exactly zero; tests/test_folded.py compares against the full network)
        b = None if normed else p.get(prefix + "bias")
        y = F.conv2d(a.x, w.reshape(-1, *w.shape[2:]), None if b is None else b.reshape(-1),
                     m.stride, m.padding, m.dilation, groups=T)
        return _Folded(y, T, True)
    if isinstance(m, BatchStatNorm):
        x = a.x
        if not a.image:  # (T, B, D): statistics over B for each task and feature
            mean = x.mean(1, keepdim=True)
            xc = x - mean
            var = (xc * xc).mean(1, keepdim=True)
            return _Folded(xc * torch.rsqrt(var + m.eps) * p[prefix + "weight"].unsqueeze(1)
                           + p[prefix + "bias"].unsqueeze(1), T, False)
        # per (task, channel) statistics = per-channel statistics of the wide image; outside
        # vmap the fused kernel's double backward is right (tests/test_folded.py checks it)
        # In channels-last memory the image is a (B*H*W, C) table: normalize that (a free view).
        # The kernel's double backward sums over dim 0 first, ~10x slower on a channels-last 4-d
        # tensor than on the table.
        B, C, H, W = x.shape
        table = x.permute(0, 2, 3, 1).reshape(B * H * W, C)
        y = F.batch_norm(table, None, None, p[prefix + "weight"].reshape(-1), p[prefix + "bias"].reshape(-1),
                         True, 0.0, m.eps)
        return _Folded(y.reshape(B, H, W, C).permute(0, 3, 1, 2), T, True)
    if isinstance(m, nn.ReLU):
        return _Folded(F.relu(a.x), T, a.image)
    if isinstance(m, nn.MaxPool2d):
        return _Folded(F.max_pool2d(a.x, m.kernel_size, m.stride, m.padding, m.dilation, m.ceil_mode), T, True)
    if isinstance(m, nn.Flatten):
        return _Folded(_vec(a), T, False)
    if isinstance(m, nn.Linear):
        x = _vec(a)  # (T, B, in)
        w, b = p[prefix + "weight"], p.get(prefix + "bias")  # (T, out, in), (T, out)
        y = torch.bmm(x, w.transpose(1, 2)) if b is None else torch.baddbmm(b.unsqueeze(1), x, w.transpose(1, 2))
        return _Folded(y, T, False)
    raise TypeError(f"no folded form for {type(m).__name__}; check utils.learners.folded.supports(model) first")


def forward(model: nn.Module, params: Params, x: torch.Tensor) -> torch.Tensor:
    """Outputs of ``model`` for ``T`` tasks at once, each with its own parameters.

    ``params``: name → ``(T, *shape)`` per-task tensors. ``x``: ``(T, B, ...)`` per-task inputs
    (images ``(T, B, C, H, W)`` or vectors ``(T, B, D)``). Returns ``(T, B, out)``.
    """
    T, B = x.shape[:2]
    if x.dim() == 5:
        wide = x.transpose(0, 1).reshape(B, T * x.shape[2], *x.shape[3:])
        # channels-last: max-pooling T*C channels is ~8x faster than in NCHW on a CPU
        a = _Folded(wide.contiguous(memory_format=torch.channels_last), T, True)
    else:
        a = _Folded(x, T, False)
    out = _layer(model, params, "", a)
    return _vec(out) if out.image else out.x


def _per_task_loss(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Loss of each task: ``(T, B, out)`` outputs and ``(T, B)``/``(T, B, d)`` targets → ``(T,)``."""
    T = outputs.shape[0]
    if targets.dtype in (torch.int64, torch.int32):
        return F.cross_entropy(outputs.flatten(0, 1), targets.flatten(), reduction="none").view(T, -1).mean(1)
    return F.mse_loss(outputs, targets, reduction="none").flatten(1).mean(1)


def folded_meta_loss(model: nn.Module, params: Params, batch: tuple, *, steps: int | None = None, lr=None,
                     first_order: bool | None = None, adapt_names=None, adaptation: Adaptation | None = None,
                     chunk_size: int | None = None):
    """Same contract and figures as :func:`utils.learners.inner_loop.vmap_meta_loss` (query losses
    and accuracies ``(T,)`` after ``steps`` inner steps from θ = ``params`` on ``batch`` =
    ``(support_x, support_y, query_x, query_y)``), computed on the folded network with the one
    :func:`~utils.learners.inner_loop.run_inner_loop`. Second order unless ``first_order``; ``lr`` a float
    or a dict of per-parameter rates (Meta-SGD); ``adapt_names`` the adapted parameters (default all;
    ANIL: the head); ``chunk_size`` folds that many tasks at a time (less memory, more, smaller kernels).

    Taught in chapter 02, § 7 · Under the hood: the inner loop as a pure function, vectorized over tasks.
    """
    support_x, support_y, query_x, query_y = batch
    T = support_x.shape[0]
    kw = dict(steps=steps, lr=lr, first_order=first_order, adapt_names=adapt_names, adaptation=adaptation)
    if chunk_size is not None and chunk_size < T:
        parts = [folded_meta_loss(model, params, tuple(t[i:i + chunk_size] for t in batch), **kw)
                 for i in range(0, T, chunk_size)]
        return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])
    reuse_freed_memory()
    steps, lr, first_order, names = _settings(adaptation, steps, lr, first_order, adapt_names)
    fast = {k: v.unsqueeze(0).expand(T, *v.shape) for k, v in params.items()}
    fast = run_inner_loop(lambda p: _per_task_loss(forward(model, p, support_x), support_y).sum(), fast,
                      steps=steps, step_sizes=lr, first_order=first_order, names=names, backend="autograd")
    out = forward(model, fast, query_x)
    losses = _per_task_loss(out, query_y)
    if query_y.dtype in (torch.int64, torch.int32):
        accs = (out.argmax(-1) == query_y).float().mean(1)
    else:
        accs = torch.full((T,), float("nan"), device=out.device)
    return losses, accs
