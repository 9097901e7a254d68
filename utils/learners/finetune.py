"""The transfer baseline every meta-learner is compared with: pre-train one model on all
meta-training data, fine-tune it on each new support set (behind the learner protocol of
:mod:`utils.learners.base`).
"""
from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn import functional as F

from . import inner_loop as Fn
from .base import Learner
from ..errors import course_error
from ..runtime import pick_device

__all__ = ["FineTuneBaseline", "adam_linear_head"]


class FineTuneBaseline(Learner):
    """Pre-train one model on all meta-training data, then fine-tune it on each new support set.

    * Regression (sinusoid): :meth:`meta_train` fits the model to points of many tasks at once
      (it can only learn their average function); :meth:`evaluate_task` fine-tunes all weights.
    * Classification: :meth:`pretrain_classes` trains ``model`` (a Classifier over all
      meta-training classes) with ordinary supervised learning; :meth:`evaluate_task` puts a fresh
      N-way linear head on the frozen features (``finetune="head"``, as Chen et al. 2019's
      Baseline) or fine-tunes everything (``"all"``).
    """

    def __init__(self, model: nn.Module, lr: float = 1e-3, finetune_lr: float = 0.01,
                 finetune_steps: int = 10, finetune: str = "all", device="auto"):
        self.device = pick_device(device)
        self.model = model.to(self.device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=lr)
        self.finetune_lr, self.finetune_steps, self.finetune = finetune_lr, finetune_steps, finetune
        if finetune not in ("all", "head"):
            raise course_error("finetune", "'all' or 'head'", repr(finetune), "pick one")
        self.history = None

    def meta_loss(self, sx, sy, qx, qy):
        x, y = torch.cat([sx, qx], 1).flatten(0, 1), torch.cat([sy, qy], 1).flatten(0, 1)
        return Fn.loss_and_accuracy(self.model(x), y)

    def pretrain_classes(self, images, labels, epochs: int = 5, batch_size: int = 128,
                         progress: bool = True, seed: int = 0):
        """Supervised pre-training on meta-training images with labels remapped to ``0..C-1``."""
        from ..training import fit
        return fit(self.model, (images, labels), epochs=epochs, batch_size=batch_size,
                   device=self.device, progress=progress, seed=seed)

    def evaluate_task(self, support_x, support_y, query_x, query_y, steps: int | None = None):
        steps = self.finetune_steps if steps is None else steps
        sx, sy = support_x.to(self.device), support_y.to(self.device)
        qx, qy = query_x.to(self.device), query_y.to(self.device)
        if sy.dtype in (torch.int64, torch.int32):
            return self._finetune_classifier(sx, sy, qx, qy, steps)
        model = copy.deepcopy(self.model)
        _gradient_steps(model, torch.optim.SGD(model.parameters(), lr=self.finetune_lr), F.mse_loss, sx, sy, steps)
        return _query_figures(model, qx, qy)

    def _finetune_classifier(self, sx, sy, qx, qy, steps):
        n_way = int(sy.max()) + 1
        model = copy.deepcopy(self.model)
        model.eval()  # frozen BatchNorm statistics from pre-training
        head = nn.Linear(model.head.in_features, n_way).to(self.device)
        nn.init.zeros_(head.weight), nn.init.zeros_(head.bias)
        model.head = head
        if self.finetune == "head":   # frozen features: the head's Adam steps, without autograd
            with torch.no_grad():
                adam_linear_head(head, model.features(sx), sy, steps=steps, lr=self.finetune_lr)
        else:
            _gradient_steps(model, torch.optim.Adam(model.parameters(), lr=self.finetune_lr), F.cross_entropy,
                            sx, sy, steps)
        return _query_figures(model, qx, qy)


def _gradient_steps(model, opt, loss_fn, x, y, steps: int) -> None:
    """``steps`` full-batch steps of ``opt`` on ``loss_fn(model(x), y)`` (the fine-tuning of a task)."""
    for _ in range(steps):
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()


def _query_figures(model, qx, qy) -> tuple[float, float]:
    """Query ``(loss, accuracy)`` of the fine-tuned ``model``, without gradients."""
    with torch.no_grad():
        loss, acc = Fn.loss_and_accuracy(model(qx), qy)
    return float(loss), float(acc)


def adam_linear_head(head: nn.Linear, features: torch.Tensor, labels: torch.Tensor, *, steps: int,
                     lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> nn.Linear:
    """Train ``head`` in place: ``steps`` Adam steps on ``F.cross_entropy(head(features), labels)``.

    The fine-tuning baseline's head training (not a meta-learning inner loop: Adam, no meta-gradient
    flows through it, and nothing of :class:`~utils.learners.inner_loop.Adaptation` applies to it):
    a fresh linear head on frozen features ``(S, D)`` of a support set with labels ``(S,)`` in
    ``0..C-1``. It makes the same updates as ``torch.optim.Adam`` driven by autograd (bitwise equal on
    this course's CPU; ``tests/test_adam_head.py`` checks them to 1e-6), with the gradient of softmax cross-entropy written
    out: ``(softmax(z) - onehot(y)) / S`` for the logits ``z``, through ``log_softmax``'s own backward
    kernel. Without autograd and an optimizer object, a step on the course's small heads costs a
    fraction of the generic loop's Python overhead, and chapters run thousands of them.

    Taught in chapter 02, § 2 · Five ways to meet a new task.
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
