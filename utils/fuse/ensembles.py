"""Output ensembles (chapter 06 §2): ``M`` models become one predictor that combines their outputs.

Average the probabilities (the usual "deep ensemble"), average the logits, or take a majority
vote. Costs ``M`` forward passes; works for any models, related or not. :func:`member_logits`,
:func:`ensemble_predict`, :class:`VmapEnsemble` (all members in one ``torch.func.vmap`` call),
:func:`loop_ensemble_logits` (the reference loop), :func:`time_ensembles`.

Shapes: ``M`` members, ``B`` examples, ``C`` classes.
"""
from __future__ import annotations

import copy
import math
import statistics
import time
from typing import Sequence

import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap
from torch.nn import functional as F

from ..errors import course_error
from ..runtime import pick_device, synchronize
from ..vocab import Network
from .averaging import check_compatible

__all__ = ["ENSEMBLE_METHODS", "member_logits", "ensemble_predict", "ensemble_log_probs", "Ensemble",
           "loop_ensemble_logits", "VmapEnsemble", "time_ensembles"]

ENSEMBLE_METHODS = ("prob", "logit", "vote")

# =============================================================================== output ensembles
def _stack_logits(logits) -> torch.Tensor:
    """Accept a list of ``(B, C)`` tensors or one ``(M, B, C)`` tensor; return ``(M, B, C)``."""
    if isinstance(logits, (list, tuple)):
        if not logits:
            raise course_error("logits", "at least one member's logits", "an empty list",
                               "pass one (B, C) tensor per member")
        shapes = {tuple(t.shape) for t in logits}
        if len(shapes) != 1:
            raise course_error("logits", "every member's logits with the same (B, C) shape",
                               f"shapes {sorted(shapes)}", "predict every member on the same inputs")
        logits = torch.stack(list(logits))
    if not isinstance(logits, torch.Tensor) or logits.dim() != 3:
        found = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise course_error("logits", "a (M, B, C) tensor of member logits (or a list of (B, C))",
                           str(found), "stack the members' logits with torch.stack")
    if not logits.is_floating_point():
        raise course_error("logits", "floating-point logits", str(logits.dtype), "pass raw model outputs")
    return logits


@torch.no_grad()
def member_logits(models: Sequence[Network], x: torch.Tensor, device="auto", batch_size: int = 512) -> torch.Tensor:
    """Every member's logits on ``x`` in eval mode: ``(M, B, C)`` on the CPU.

    Taught in chapter 06, § 2 · Output ensembles.
    """
    from ..training import predict_logits
    if not models:
        raise course_error("models", "at least one model", "an empty list", "pass the ensemble's members")
    return torch.stack([predict_logits(m, x, device, batch_size) for m in models])


def ensemble_predict(logits, method: str = "prob") -> torch.Tensor:
    """Combine members' logits ``(M, B, C)`` into one predictive distribution ``(B, C)``.

    ``method``:
        ``"prob"``  mean of the members' softmax probabilities (the deep-ensemble rule);
        ``"logit"`` softmax of the mean logits (a geometric mean of the probabilities,
        renormalised; sharper than ``"prob"`` when members disagree);
        ``"vote"``  fraction of members whose argmax is each class (majority vote; ties go
        to the lowest class id under ``argmax``).
    Every row sums to 1, so accuracy, log-loss and calibration are computed the same way for all.

    Taught in chapter 06, § 2 · Output ensembles.
    """
    logits = _stack_logits(logits)
    if method == "prob":
        return logits.softmax(-1).mean(0)
    if method == "logit":
        return logits.mean(0).softmax(-1)
    if method == "vote":
        votes = F.one_hot(logits.argmax(-1), logits.shape[-1]).to(logits.dtype)
        return votes.mean(0)
    raise course_error("method", "one of " + ", ".join(map(repr, ENSEMBLE_METHODS)), repr(method),
                       "pick how the members' outputs are combined")


def ensemble_log_probs(logits, T: float = 1.0) -> torch.Tensor:
    """``log(mean_m softmax(z_m / T))`` of members' logits ``(M, B, C)`` (or a list of ``(B, C)``):
    the log of :func:`ensemble_predict`'s ``"prob"`` rule at temperature ``T``, computed in log
    space (``logsumexp``), so confident members do not underflow to ``log 0``. Returns ``(B, C)``,
    valid logits of the averaged distribution."""
    z = _stack_logits(logits).float()
    return torch.logsumexp(F.log_softmax(z / T, dim=-1), dim=0) - math.log(len(z))


class Ensemble(nn.Module):
    """Several classifiers as one module: outputs ``log(mean_k softmax(f_k(x)))`` (valid logits;
    :func:`ensemble_log_probs` at ``T = 1``), so ``evaluate`` / ``predict_logits`` work on it like
    on any model. Chapter 04's teachers use it; distillation at a temperature ``T`` averages the
    members' probabilities *at* ``T`` instead (:func:`utils.distill.ensemble_logits`).

    Taught in chapter 04, § 4. Does it work? Several seeds, paired comparisons.
    """

    def __init__(self, models: Sequence[Network]):
        super().__init__()
        models = list(models)
        if not models:
            raise course_error("models", "at least one model", "none", "pass a list of trained models")
        self.members = nn.ModuleList(models)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return ensemble_log_probs([m(x) for m in self.members])


@torch.no_grad()
def loop_ensemble_logits(models, x: torch.Tensor) -> torch.Tensor:
    """Reference: each member in turn (eval mode), ``(M, B, C)``. ``x`` must be on the models' device.

    Taught in chapter 06, § One call for all members: `vmap`.
    """
    out = []
    for m in models:
        was = m.training
        m.eval()
        out.append(m(x))
        m.train(was)
    return torch.stack(out)


class VmapEnsemble:
    """All members of an ensemble in one vectorized call (``torch.func``).

    ``stack_module_state`` stacks every parameter and buffer of the ``M`` members along a new
    leading dimension; ``vmap`` then runs one ``functional_call`` of a weightless copy of the
    architecture over that dimension, so ``M`` small matrix products become one batched product.
    Members are evaluated in eval mode (BatchNorm uses its running statistics).

    Args:
        models: ``M`` modules of one architecture (checked with :func:`check_compatible`).
        device: where the stacked weights live.
    Call with inputs ``(B, ...)``; returns logits ``(M, B, C)``.

    Taught in chapter 06, § One call for all members: `vmap`.
    """

    def __init__(self, models, device="auto"):
        models = list(models)
        if not models:
            raise course_error("models", "at least one model", "an empty list", "pass the members")
        for i, m in enumerate(models[1:], 1):
            check_compatible(models[0], m, names=("member 0", f"member {i}"))
        self.device = pick_device(device)
        copies = [copy.deepcopy(m).to(self.device).eval() for m in models]
        params, buffers = stack_module_state(copies)
        self.params = {k: v.detach() for k, v in params.items()}
        self.buffers = {k: v.detach() for k, v in buffers.items()}
        self.base = copy.deepcopy(copies[0]).to("meta").eval()
        self.n_members = len(models)

    def _one(self, params, buffers, x):
        return functional_call(self.base, (params, buffers), (x,))

    @torch.no_grad()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return vmap(self._one, in_dims=(0, 0, None))(self.params, self.buffers, x.to(self.device))


def time_ensembles(models, x: torch.Tensor, repeats: int = 20, device="auto") -> dict:
    """Median wall time of one ensemble forward pass, loop vs vmap, on ``x``.

    Returns ``{"loop_s", "vmap_s", "speedup", "max_abs_diff"}``; ``max_abs_diff`` is the largest
    difference between the two methods' logits (they compute the same function).

    Taught in chapter 06, § One call for all members: `vmap`.
    """
    device = pick_device(device)
    members = [copy.deepcopy(m).to(device).eval() for m in models]
    ens = VmapEnsemble(members, device)
    x = x.to(device)
    a, b = loop_ensemble_logits(members, x), ens(x)  # warm-up, and the equality check
    diff = float((a - b).abs().max())

    def median_time(fn):
        times = []
        for _ in range(max(1, int(repeats))):
            synchronize(device)
            t0 = time.perf_counter()
            fn()
            synchronize(device)
            times.append(time.perf_counter() - t0)
        return statistics.median(times)

    loop_s = median_time(lambda: loop_ensemble_logits(members, x))
    vmap_s = median_time(lambda: ens(x))
    return {"loop_s": loop_s, "vmap_s": vmap_s, "speedup": loop_s / vmap_s, "max_abs_diff": diff}


