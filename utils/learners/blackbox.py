"""Model-based ("black-box") meta-learners (chapter 03 §2): a network reads the whole support set
and outputs the predictor — no gradient step at test time.

* :class:`CNP` — a Conditional Neural Process (Garnelo et al. 2018) for regression: an encoder
  maps each support pair ``(x, y)`` to ``r_i``, :func:`mean_aggregate` averages them into one task
  representation ``r`` (invariant to the order of the support set, and defined for any K), a
  decoder maps ``(r, x*)`` to a Gaussian ``N(μ, σ²)`` over ``y*``. Trained with
  :func:`gaussian_nll`.
* :class:`SupportAttention` — few-shot classification with the labels fed as inputs: queries
  attend to the support set (one Transformer-style cross-attention block; keys are the support
  images' embeddings, values their embeddings plus their label's embedding), a linear layer
  reads the class out of what the attention carried. Also order-invariant in the support.

Learners :class:`CNPLearner` and :class:`AttentionLearner` follow :mod:`utils.learners`'s interface
(``meta_train``, ``evaluate_task``, :func:`utils.learners.evaluate.meta_evaluate`); both are vectorised over
the tasks of a meta-batch by construction (a leading task dimension).
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from .base import Learner
from ..errors import course_error
from ..models import MLP
from ..runtime import pick_device

__all__ = ["MIN_STD", "mean_aggregate", "gaussian_nll", "CNP", "SupportAttention", "CNPLearner", "AttentionLearner"]

#: Floor of the predicted standard deviation (keeps the likelihood finite early in training).
MIN_STD = 0.01


def mean_aggregate(r: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean of per-example representations ``r`` ``(..., K, H)`` over K → ``(..., H)``.

    ``mask`` ``(..., K)`` (1 = present) averages only over the present examples, so tasks with
    different K can share a batch. A sum would grow with K; a mean keeps the scale fixed.
    """
    if mask is None:
        return r.mean(-2)
    m = mask.to(r.dtype).unsqueeze(-1)
    return (r * m).sum(-2) / m.sum(-2).clamp_min(1)


def gaussian_nll(mean: torch.Tensor, std: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Negative log-likelihood of ``y`` under ``N(mean, std²)``, element-wise (nats):
    ``log σ + (y - μ)² / (2σ²) + ½ log 2π``."""
    if (std <= 0).any():
        raise course_error("std", "positive standard deviations", f"min {float(std.min()):.3g}",
                           "pass softplus(raw) + a floor, not the raw output")
    return torch.log(std) + (y - mean) ** 2 / (2 * std ** 2) + 0.5 * math.log(2 * math.pi)


class CNP(nn.Module):
    """Conditional Neural Process for ``x ∈ R^dx``, ``y ∈ R^dy``.

    ``forward(support_x (B, K, dx), support_y (B, K, dy), query_x (B, M, dx))`` → ``(mean, std)``
    each ``(B, M, dy)``. ``std = MIN_STD + (1 - MIN_STD) · softplus(raw)``.
    """

    def __init__(self, dx: int = 1, dy: int = 1, hidden: int = 64, r_dim: int = 64):
        super().__init__()
        self.encoder = MLP([dx + dy, hidden, hidden, r_dim])
        self.decoder = MLP([r_dim + dx, hidden, hidden, 2 * dy])

    def represent(self, support_x, support_y, mask=None) -> torch.Tensor:
        """The task representation ``r`` ``(B, r_dim)``."""
        return mean_aggregate(self.encoder(torch.cat([support_x, support_y], -1)), mask)

    def forward(self, support_x, support_y, query_x, mask=None):
        r = self.represent(support_x, support_y, mask)
        r = r.unsqueeze(-2).expand(*query_x.shape[:-1], r.shape[-1])
        mean, raw = self.decoder(torch.cat([r, query_x], -1)).chunk(2, -1)
        return mean, MIN_STD + (1 - MIN_STD) * F.softplus(raw)


class SupportAttention(nn.Module):
    """Queries attend to labelled support tokens; labels are inputs, not targets.

    Args:
        encoder: images → embeddings ``(B, D)``; ``dim``: its output size D.
        n_way: classes per episode; ``heads``: attention heads.
    ``forward(support_x (B, S, C, H, W), support_y (B, S), query_x (B, M, C, H, W))`` → logits ``(B, M, N)``.
    """

    def __init__(self, encoder: nn.Module, dim: int, n_way: int = 5, heads: int = 4):
        super().__init__()
        self.encoder, self.n_way = encoder, int(n_way)
        self.label = nn.Embedding(n_way + 1, dim)            # the last row: "label unknown" (queries)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.ff = MLP([dim, 2 * dim, dim])
        self.out = nn.Linear(dim, n_way)

    def forward(self, support_x, support_y, query_x):
        B, S, M = support_x.shape[0], support_x.shape[1], query_x.shape[1]
        if int(support_y.max()) >= self.n_way:
            raise course_error("support_y", f"labels in 0..{self.n_way - 1}", f"max {int(support_y.max())}",
                               f"build the model with n_way={int(support_y.max()) + 1}")
        emb = self.encoder(torch.cat([support_x.flatten(0, 1), query_x.flatten(0, 1)]))
        keys = emb[:B * S].view(B, S, -1)                     # what a support image looks like
        values = keys + self.label(support_y)                 # ... and which label it carries
        q = emb[B * S:].view(B, M, -1)
        h = self.norm1(q + self.label.weight[-1] + self.attn(q, keys, values, need_weights=False)[0])
        return self.out(self.norm2(h + self.ff(h)))


class CNPLearner(Learner):
    """Meta-train a :class:`CNP` on a task source (``source(B)`` → a :class:`utils.tasks.TaskBatch`)
    by the Gaussian NLL of the query points given the support points. ``evaluate_task`` returns
    the query MSE of the predicted mean (the figure MAML is judged by) and ``nan``."""

    def __init__(self, model: CNP | None = None, lr: float = 1e-3, device="auto"):
        self.device = pick_device(device)
        self.model = (model or CNP()).to(self.device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=lr)
        self.history = None

    def meta_loss(self, sx, sy, qx, qy):
        mean, std = self.model(sx, sy, qx)
        return gaussian_nll(mean, std, qy).mean(), torch.tensor(float("nan"))

    def predict(self, support_x, support_y, query_x):
        """``(mean, std)`` for one task (``(K, 1)`` inputs) or a batch (``(B, K, 1)``), no graph."""
        one = support_x.dim() == 2
        args = [t.to(self.device)[None] if one else t.to(self.device) for t in (support_x, support_y, query_x)]
        with torch.no_grad():
            mean, std = self.model(*args)
        return (mean[0], std[0]) if one else (mean, std)

    def evaluate_task(self, support_x, support_y, query_x, query_y, steps=None):
        mean, _ = self.predict(support_x, support_y, query_x)
        return float(F.mse_loss(mean, query_y.to(self.device))), float("nan")


class AttentionLearner(Learner):
    """Meta-train a :class:`SupportAttention` model on episodes by the query cross-entropy."""

    def __init__(self, model: SupportAttention, lr: float = 1e-3, device="auto"):
        self.device = pick_device(device)
        self.model = model.to(self.device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=lr)
        self.history = None

    def logits(self, sx, sy, qx, n_way=None, steps=None):
        """Batched query logits ``(B, M, N)``; ``n_way`` and ``steps`` are accepted and unused
        (no gradient steps), so :func:`utils.learners.metric.evaluate_batched` applies."""
        return self.model(sx, sy, qx)

    def meta_loss(self, sx, sy, qx, qy):
        logits = self.model(sx, sy, qx)
        loss = F.cross_entropy(logits.flatten(0, 1), qy.flatten())
        return loss, (logits.argmax(-1) == qy).float().mean()

    def evaluate_task(self, support_x, support_y, query_x, query_y, steps=None):
        self.train_mode(False)
        with torch.no_grad():
            logits = self.model(support_x.to(self.device)[None], support_y.to(self.device)[None],
                                query_x.to(self.device)[None])[0]
            qy = query_y.to(self.device)
            return float(F.cross_entropy(logits, qy)), float((logits.argmax(-1) == qy).float().mean())
