"""Metric-based meta-learners, together: ProtoNet (chapters 01-02), matching networks and ProtoMAML (chapter 03 §1).

All follow the learner protocol of :mod:`utils.learners.base` (``meta_train(source, iterations, meta_batch)``,
``evaluate_task(support_x, support_y, query_x, query_y)``, and :func:`utils.learners.evaluate.meta_evaluate`
for the mean ± 95% CI) and are vectorised over the tasks of a meta-batch with batched matrix
products (no Python loop over tasks).

* :func:`cosine_attention` — a matching network's classifier (Vinyals et al. 2016): each query
  attends to every support example with a softmax over scaled cosine similarities, and its class
  probabilities are the attention-weighted one-hot support labels.
* :func:`protomaml_head` — ProtoMAML's output layer (Triantafillou et al. 2020): ``W_k = 2 c_k``,
  ``b_k = -||c_k||²`` from the prototypes ``c_k``, so that before any step the logits are
  ProtoNet's ``-||z - c_k||²`` plus ``||z||²``, the same for every class (the same softmax).
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .base import Learner
from .evaluate import meta_evaluate
from .inner_loop import loss_and_accuracy, run_inner_loop
from ..errors import course_error
from ..results import MetaResult
from ..runtime import pick_device
from ..stats import mean_ci95
from ..vocab import TaskSource, split_batch

__all__ = ["prototypes", "protonet_logits", "ProtoNet", "cosine_attention", "matching_log_probs",
           "protomaml_head", "MatchingNet", "ProtoMAML", "evaluate_batched"]


def prototypes(support_emb: torch.Tensor, support_y: torch.Tensor, n_way: int) -> torch.Tensor:
    """Class means of the support embeddings: ``(N*K, D)`` and labels ``(N*K,)`` → ``(N, D)``.

    Taught in chapter 02, § 8 · Few-shot classification on glyphs.
    """
    one_hot = F.one_hot(support_y, n_way).to(support_emb.dtype)  # (N*K, N)
    return (one_hot.T @ support_emb) / one_hot.sum(0).clamp_min(1).unsqueeze(1)


def protonet_logits(support_emb, support_y, query_emb, n_way: int) -> torch.Tensor:
    """Prototypical-network logits: negative squared Euclidean distance of each query embedding
    ``(M, D)`` to each class prototype → ``(M, N)``.

    Taught in chapter 01, § Everything is a mapping.
    """
    protos = prototypes(support_emb, support_y, n_way)
    return -((query_emb.unsqueeze(1) - protos.unsqueeze(0)) ** 2).sum(-1)


class ProtoNet(Learner):
    """Prototypical Networks (Snell et al., 2017): classify by distance to class-mean embeddings.

    Args:
        encoder: maps images ``(B, C, H, W)`` to embeddings ``(B, D)`` (e.g. a ConvBackbone).
        lr: Adam step size.

    Taught in chapter 01, § Learner and meta-learner.
    """

    def __init__(self, encoder: nn.Module, lr: float = 1e-3, device="auto"):
        self.device = pick_device(device)
        self.model = encoder.to(self.device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=lr)
        self.history = None

    def meta_loss(self, sx, sy, qx, qy):
        B, NK = sy.shape
        n_way = int(sy.max()) + 1
        emb = self.model(torch.cat([sx.flatten(0, 1), qx.flatten(0, 1)]))
        es, eq = emb[:B * NK].view(B, NK, -1), emb[B * NK:].view(B, qy.shape[1], -1)
        logits = torch.stack([protonet_logits(es[b], sy[b], eq[b], n_way) for b in range(B)])
        loss = F.cross_entropy(logits.flatten(0, 1), qy.flatten())
        acc = (logits.argmax(-1) == qy).float().mean()
        return loss, acc

    def evaluate_task(self, support_x, support_y, query_x, query_y, steps=None):
        self.train_mode(False)
        with torch.no_grad():
            sx, sy = support_x.to(self.device), support_y.to(self.device)
            qx, qy = query_x.to(self.device), query_y.to(self.device)
            logits = protonet_logits(self.model(sx), sy, self.model(qx), int(sy.max()) + 1)
            loss, acc = loss_and_accuracy(logits, qy)
        return float(loss), float(acc)


def _check_labels(support_y: torch.Tensor, n_way: int) -> None:
    if support_y.dtype not in (torch.int64, torch.int32):
        raise course_error("support_y", "integer class labels", str(support_y.dtype), "pass int64 labels 0..N-1")
    if support_y.numel() and (int(support_y.min()) < 0 or int(support_y.max()) >= n_way):
        raise course_error("support_y", f"labels in 0..{n_way - 1}",
                           f"labels {int(support_y.min())}..{int(support_y.max())}", "relabel the episode's classes 0..N-1")


def cosine_attention(support_emb: torch.Tensor, support_y: torch.Tensor, query_emb: torch.Tensor,
                     n_way: int, scale: float = 10.0) -> torch.Tensor:
    """Matching-network class probabilities.

    Args:
        support_emb: ``(..., S, D)`` support embeddings; ``support_y``: ``(..., S)`` ints in ``0..n_way-1``.
        query_emb: ``(..., M, D)``; leading dimensions (tasks) are broadcast.
        scale: inverse temperature multiplying the cosine similarities (a cosine lies in [-1, 1],
            too flat a range for a softmax on its own).
    Returns:
        ``(..., M, n_way)`` probabilities: ``a(q, s) = softmax_s(scale · cos(q, s))`` and
        ``p(k | q) = Σ_s a(q, s) [y_s = k]``. Invariant to the order of the support set.
    """
    _check_labels(support_y, n_way)
    s = F.normalize(support_emb, dim=-1)
    q = F.normalize(query_emb, dim=-1)
    attn = torch.softmax(scale * q @ s.transpose(-1, -2), dim=-1)       # (..., M, S)
    return attn @ F.one_hot(support_y, n_way).to(attn.dtype)           # (..., M, N)


def matching_log_probs(support_emb, support_y, query_emb, n_way: int, scale: float = 10.0) -> torch.Tensor:
    """``log`` of :func:`cosine_attention` (clamped away from 0): what the cross-entropy reads."""
    return cosine_attention(support_emb, support_y, query_emb, n_way, scale).clamp_min(1e-8).log()


def protomaml_head(protos: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """ProtoMAML's initial linear head from prototypes ``(..., N, D)``: ``W = 2c`` ``(..., N, D)``
    and ``b = -||c||²`` ``(..., N)``."""
    return 2 * protos, -(protos ** 2).sum(-1)


def _batched_prototypes(emb: torch.Tensor, y: torch.Tensor, n_way: int) -> torch.Tensor:
    """Class means for a batch of tasks: ``(B, S, D)``, ``(B, S)`` → ``(B, N, D)``."""
    one_hot = F.one_hot(y, n_way).to(emb.dtype)                          # (B, S, N)
    return one_hot.transpose(1, 2) @ emb / one_hot.sum(1).clamp_min(1).unsqueeze(-1)


class _EpisodeLearner(Learner):
    """Shared plumbing: embed support and query images of a meta-batch in one encoder pass."""

    def __init__(self, encoder: nn.Module, lr: float, device):
        self.device = pick_device(device)
        self.model = encoder.to(self.device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=lr)
        self.history = None

    def embed(self, sx, qx):
        """Support and query embeddings of a meta-batch in one encoder pass: ``sx`` ``(B, S, C, H, W)``,
        ``qx`` ``(B, M, C, H, W)`` → ``(B, S, D)``, ``(B, M, D)``.

        Taught in chapter 03, § 1 · Metric-based learners: compare, do not optimize.
        """
        B, S, M = sx.shape[0], sx.shape[1], qx.shape[1]
        emb = self.model(torch.cat([sx.flatten(0, 1), qx.flatten(0, 1)]))
        return emb[:B * S].view(B, S, -1), emb[B * S:].view(B, M, -1)

    def logits(self, sx, sy, qx, n_way: int, steps: int | None = None) -> torch.Tensor:
        raise NotImplementedError

    def meta_loss(self, sx, sy, qx, qy):
        n_way = int(sy.max()) + 1
        logits = self.logits(sx, sy, qx, n_way)
        loss = F.cross_entropy(logits.flatten(0, 1), qy.flatten())
        return loss, (logits.argmax(-1) == qy).float().mean()

    def evaluate_task(self, support_x, support_y, query_x, query_y, steps=None):
        """Adapt to one task, return its query ``(loss, accuracy)`` as floats."""
        self.train_mode(False)
        sx, sy = support_x.to(self.device)[None], support_y.to(self.device)[None]
        qx, qy = query_x.to(self.device)[None], query_y.to(self.device)
        logits = self.logits(sx, sy, qx, int(sy.max()) + 1, steps)[0].detach()
        return float(F.cross_entropy(logits, qy)), float((logits.argmax(-1) == qy).float().mean())


class MatchingNet(_EpisodeLearner):
    """Matching networks (Vinyals et al. 2016) without the full-context embeddings: an encoder and
    :func:`cosine_attention`. No gradient step at test time.

    Args:
        encoder: images ``(B, C, H, W)`` → embeddings ``(B, D)``; ``scale``: see :func:`cosine_attention`.
    """

    def __init__(self, encoder: nn.Module, lr: float = 1e-3, scale: float = 10.0, device="auto"):
        super().__init__(encoder, lr, device)
        self.scale = float(scale)

    def logits(self, sx, sy, qx, n_way, steps=None):
        es, eq = self.embed(sx, qx)
        return matching_log_probs(es, sy, eq, n_way, self.scale)


class ProtoMAML(_EpisodeLearner):
    """ProtoMAML (Triantafillou et al. 2020), head-only variant: the head is initialised from the
    prototypes (:func:`protomaml_head`), then ``inner_steps`` gradient steps of size ``inner_lr``
    on the support cross-entropy adapt the head of every task at once (batched ``(B, N, D)``
    weights). The meta-gradient flows through the steps (second order unless ``first_order``) and
    through the prototypes into the encoder. With 0 steps it is ProtoNet.
    """

    def __init__(self, encoder: nn.Module, inner_lr: float = 0.1, inner_steps: int = 1,
                 eval_steps: int | None = None, first_order: bool = False, lr: float = 1e-3, device="auto"):
        super().__init__(encoder, lr, device)
        self.inner_lr, self.inner_steps = float(inner_lr), int(inner_steps)
        self.eval_steps = self.inner_steps if eval_steps is None else int(eval_steps)
        self.first_order = bool(first_order)

    def adapt_head(self, es, sy, n_way: int, steps: int):
        """Head ``(W (B, N, D), b (B, N))`` after ``steps`` steps on support embeddings ``es`` ``(B, S, D)``,
        by the one :func:`~utils.learners.inner_loop.run_inner_loop` (the tasks' heads do not share entries,
        so the gradient of the summed per-task losses is each task's own)."""
        w, b = protomaml_head(_batched_prototypes(es, sy, n_way))

        def support_loss(head):   # sum over tasks of each task's mean loss
            logits = es @ head["w"].transpose(1, 2) + head["b"][:, None]
            return F.cross_entropy(logits.flatten(0, 1), sy.flatten(), reduction="none").view(sy.shape).mean(1).sum()

        head = run_inner_loop(support_loss, {"w": w, "b": b}, steps=steps, step_sizes=self.inner_lr,
                          first_order=self.first_order, backend="autograd")
        return head["w"], head["b"]

    def logits(self, sx, sy, qx, n_way, steps=None):
        steps = self.inner_steps if torch.is_grad_enabled() and steps is None else steps
        steps = self.eval_steps if steps is None else int(steps)
        es, eq = self.embed(sx, qx)
        w, b = self.adapt_head(es, sy, n_way, steps)
        return eq @ w.transpose(1, 2) + b[:, None]

    def evaluate_task(self, support_x, support_y, query_x, query_y, steps=None):
        with torch.no_grad():
            return super().evaluate_task(support_x, support_y, query_x, query_y,
                                         self.eval_steps if steps is None else steps)


def evaluate_batched(learner, source: TaskSource, n_tasks: int = 600, steps: int | None = None, batch: int = 50) -> MetaResult:
    """Query accuracy ± 95% CI over ``n_tasks`` episodes, ``batch`` episodes per forward pass.

    For any learner with a batched ``logits(sx, sy, qx, n_way, steps)`` (this module's learners,
    :class:`utils.learners.blackbox.AttentionLearner`); the same figures as :func:`utils.learners.evaluate.meta_evaluate`
    with the learner's own ``evaluate_task``, faster. Other learners (e.g. :class:`utils.learners.metric.ProtoNet`)
    are handed to :func:`utils.learners.evaluate.meta_evaluate`.
    """
    if int(n_tasks) != n_tasks or n_tasks < 2:
        raise course_error("n_tasks", "an integer >= 2 (600 is standard)", repr(n_tasks), "evaluate on more tasks")
    if not hasattr(learner, "logits"):
        return meta_evaluate(learner, source, n_tasks=n_tasks, steps=steps, batch=batch)
    learner.train_mode(False)
    values, done = [], 0
    with torch.no_grad():
        while done < n_tasks:
            sx, sy, qx, qy = split_batch(source(min(batch, n_tasks - done)), learner.device)
            logits = learner.logits(sx, sy, qx, int(sy.max()) + 1, steps)
            values += (logits.argmax(-1) == qy).float().mean(1).tolist()
            done += sx.shape[0]
    return MetaResult("accuracy", *mean_ci95(values), values)
