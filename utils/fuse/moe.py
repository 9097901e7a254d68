"""Mixtures of experts (chapter 06, § 4): the fusion is learned.

A gating network maps each input to weights over ``E`` expert networks (Jacobs et al. 1991),
softly or sparsely with top-k gating and a load-balancing term (Shazeer et al. 2017).
:class:`MixtureOfExperts`, :func:`top_k_gating`, :func:`load_balancing_loss`,
:func:`routing_table`, :func:`specialization`, :func:`fit_regression`.

Shapes: ``B`` examples, ``E`` experts, ``D`` output features.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn
from torch.nn import functional as F

from ..errors import course_error
from ..runtime import pick_device

__all__ = ["top_k_gating", "load_balancing_loss", "MoEOutput", "MixtureOfExperts", "routing_table",
           "specialization", "fit_regression"]

# =============================================================================== mixture of experts
def top_k_gating(logits: torch.Tensor, k: int, renormalize: bool = True) -> torch.Tensor:
    """Sparse gates: each row keeps its ``k`` largest logits, exactly 0 elsewhere.

    ``renormalize=True`` (Shazeer et al. 2017): ``G(x) = softmax(KeepTopK(H(x), k))`` with the
    others set to −∞; every row has exactly ``k`` non-zeros summing to 1. Gradients reach only
    the kept logits, and only through their *relative* size — so with ``k = 1`` the gate is
    the constant 1 and the gate network gets **no gradient at all** from the task loss.
    ``renormalize=False`` (the Switch Transformer's choice for ``k = 1``, Fedus et al. 2021):
    the full softmax's values at the top-k positions, zeros elsewhere; rows sum to less than 1,
    but the kept probability still depends on every logit, so the gate keeps learning.
    ``logits`` ``(B, E)`` → gates ``(B, E)``.

    Taught in chapter 06, § Sparse gating and load balancing.
    """
    if logits.dim() != 2:
        raise course_error("gate logits", "a (B, E) tensor", str(tuple(logits.shape)), "flatten the batch first")
    E = logits.shape[1]
    if int(k) != k or not 1 <= k <= E:
        raise course_error("top_k", f"an integer between 1 and the number of experts ({E})", repr(k),
                           "pick k, e.g. 1 or 2")
    top, idx = logits.topk(int(k), dim=1)
    if not renormalize:
        probs = logits.softmax(1)
        return torch.zeros_like(probs).scatter(1, idx, probs.gather(1, idx))
    masked = torch.full_like(logits, float("-inf")).scatter(1, idx, top)
    return masked.softmax(1)


def load_balancing_loss(gates: torch.Tensor) -> torch.Tensor:
    """Shazeer et al. (2017)'s importance loss: the squared coefficient of variation of the
    experts' importance over a batch,

        importance_e = sum_b gates[b, e],    loss = Var_e(importance) / Mean_e(importance)^2

    (population variance over the ``E`` experts). 0 when every expert receives the same total
    gate weight; ``E - 1`` when one expert receives all of it. Multiply by a weight
    (Shazeer et al. use ``w_importance = 0.1``) and add it to the task loss. Shazeer et al. also
    add a second, *load* term built from the gating noise; this course uses only the importance
    term, which is what the toy experiments need.

    Taught in chapter 06, § Sparse gating and load balancing.
    """
    if gates.dim() != 2:
        raise course_error("gates", "a (B, E) tensor of gate weights", str(tuple(gates.shape)),
                           "pass the gates MixtureOfExperts returned")
    imp = gates.sum(0)
    return imp.var(unbiased=False) / (imp.mean() ** 2 + 1e-10)


class MoEOutput(NamedTuple):
    """``output`` ``(B, D)``; ``gates`` ``(B, E)`` (rows sum to 1, except top-k without
    renormalisation); ``expert_outputs`` ``(B, E, D)``."""
    output: torch.Tensor
    gates: torch.Tensor
    expert_outputs: torch.Tensor


class MixtureOfExperts(nn.Module):
    """A gate network weighting ``E`` expert networks per input (Jacobs et al. 1991).

    ``gates = softmax(gate(x))`` (soft, ``top_k=None``) or :func:`top_k_gating` (sparse);
    ``output = sum_e gates[:, e] * expert_e(x)``.

    Args:
        experts: ``E`` modules mapping ``(B, ...)`` to ``(B, D)``.
        gate: a module mapping ``(B, ...)`` to logits ``(B, E)``.
        top_k: ``None`` for soft gating, or the number of experts each input uses.
        noise_std: in training mode, Gaussian noise of this scale is added to the gate logits
            before the top-k (a fixed-scale version of Shazeer et al.'s noisy gating; it lets
            experts outside the top-k get tried, and so get gradient). 0 disables it.
        renormalize: see :func:`top_k_gating` (only used with ``top_k``).
    For clarity this toy evaluates every expert on every input; a real sparse MoE dispatches
    each input only to its ``k`` experts, which is where its compute saving comes from.
    ``forward`` returns a :class:`MoEOutput` ``(output, gates, expert_outputs)``.

    Taught in chapter 06, § 4 · Mixtures of experts: learning who handles what.
    """

    def __init__(self, experts, gate: nn.Module, top_k: int | None = None, noise_std: float = 0.0,
                 renormalize: bool = True):
        super().__init__()
        self.experts = nn.ModuleList(experts)
        if len(self.experts) < 1:
            raise course_error("experts", "at least one expert", "none", "pass a list of modules")
        if top_k is not None and (int(top_k) != top_k or not 1 <= top_k <= len(self.experts)):
            raise course_error("top_k", f"None or an integer in 1..{len(self.experts)}", repr(top_k),
                               "pick how many experts each input uses")
        self.gate = gate
        self.top_k = top_k
        self.noise_std = float(noise_std)
        self.renormalize = bool(renormalize)

    @property
    def n_experts(self) -> int:
        return len(self.experts)

    def gate_weights(self, x: torch.Tensor) -> torch.Tensor:
        """Gates ``(B, E)`` for inputs ``x``."""
        logits = self.gate(x)
        if logits.dim() != 2 or logits.shape[1] != self.n_experts:
            raise course_error("gate output", f"logits (B, {self.n_experts}), one per expert",
                               str(tuple(logits.shape)), "make the gate's last layer output n_experts values")
        if self.training and self.noise_std > 0:
            logits = logits + self.noise_std * torch.randn_like(logits)
        if self.top_k is None:
            return logits.softmax(1)
        return top_k_gating(logits, self.top_k, self.renormalize)

    def forward(self, x: torch.Tensor) -> MoEOutput:
        gates = self.gate_weights(x)
        outs = torch.stack([e(x) for e in self.experts], 1)  # (B, E, D)
        return MoEOutput((gates.unsqueeze(-1) * outs).sum(1), gates, outs)


def routing_table(gates: torch.Tensor, groups: torch.Tensor, n_groups: int | None = None) -> torch.Tensor:
    """Mean gate weight per (group, expert): ``(G, E)``, each row summing to 1.

    ``groups`` ``(B,)`` labels each input with its regime / sub-task; row ``g`` says how the
    inputs of group ``g`` are shared among the experts.

    Taught in chapter 06, § 4 · Mixtures of experts: learning who handles what.
    """
    groups = torch.as_tensor(groups).long().cpu()
    gates = gates.detach().float().cpu()
    if groups.shape != gates.shape[:1]:
        raise course_error("groups", f"one group id per input ({gates.shape[0]})", str(tuple(groups.shape)),
                           "pass the regime of every input")
    G = int(groups.max()) + 1 if n_groups is None else int(n_groups)
    table = torch.zeros(G, gates.shape[1]).index_add_(0, groups, gates)
    return table / torch.bincount(groups, minlength=G).clamp_min(1).unsqueeze(1).float()


def specialization(table: torch.Tensor) -> float:
    """Mean over groups of the largest expert share in :func:`routing_table`'s rows.

    ``1/E`` when the gate ignores the regime (uniform), 1 when every regime is handled
    entirely by one expert.

    Taught in chapter 06, § 4 · Mixtures of experts: learning who handles what.
    """
    return float(table.max(1).values.mean())


def fit_regression(model: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int = 2000,
                   lr: float = 1e-2, balance_weight: float = 0.0, batch_size: int | None = None,
                   seed: int = 0, device="auto") -> dict:
    """Adam on the mean-squared error (full batch unless ``batch_size``), for a plain regressor or
    a :class:`MixtureOfExperts` (then ``balance_weight * load_balancing_loss(gates)`` is added).

    Returns ``{"mse": [...], "balance": [...]}`` per step (``balance`` empty for non-MoE models).
    """
    device = pick_device(device)
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    model.to(device).train()
    x, y = x.to(device), y.to(device)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    hist = {"mse": [], "balance": []}
    for _ in range(int(steps)):
        if batch_size:
            ix = torch.randint(0, len(x), (batch_size,), generator=g).to(device)
            xb, yb = x[ix], y[ix]
        else:
            xb, yb = x, y
        out = model(xb)
        if isinstance(out, MoEOutput):
            mse = F.mse_loss(out.output, yb)
            bal = load_balancing_loss(out.gates)
            loss = mse + balance_weight * bal
            hist["balance"].append(float(bal.detach()))
        else:
            mse = loss = F.mse_loss(out, yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        hist["mse"].append(float(mse.detach()))
    model.eval()
    return hist
