"""Low-rank factorization of Linear layers from the SVD (chapter 05).
"""
from __future__ import annotations


import torch
from torch import nn

from ..errors import course_error
from .pruning import _check_tensor, effective_tensor

__all__ = ["low_rank_factors", "low_rank_params", "low_rank_linear"]


# =============================================================================== low rank
def _check_rank(rank, shape) -> int:
    limit = min(shape)
    if isinstance(rank, bool) or int(rank) != rank or not 1 <= rank <= limit:
        raise course_error("rank", f"an integer in [1, {limit}] for a {shape[0]}×{shape[1]} matrix",
                           repr(rank), f"pick a rank between 1 and {limit}")
    return int(rank)


def low_rank_factors(weight: torch.Tensor, rank: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Best rank-``r`` factorization ``weight ≈ A @ B`` from the SVD (Eckart–Young).

    ``weight`` ``(m, n)`` → ``A`` ``(m, r) = U_r diag(sqrt σ_r)``, ``B`` ``(r, n) = diag(sqrt σ_r) V_rᵀ``.
    The Frobenius error is ``sqrt(σ_{r+1}² + ...)``, the smallest of any rank-r matrix.

    Taught in chapter 05, § 5. Low-rank factorization.
    """
    w = _check_tensor("weight", weight).detach()
    if w.dim() != 2:
        raise course_error("weight", "a 2-D matrix (out, in)", f"shape {tuple(w.shape)}",
                           "flatten conv kernels to (out, in*kh*kw) first")
    r = _check_rank(rank, w.shape)
    U, S, Vh = torch.linalg.svd(w.float(), full_matrices=False)
    root = S[:r].sqrt()
    return U[:, :r] * root, root[:, None] * Vh[:r]


def low_rank_params(out_features: int, in_features: int, rank: int, bias: bool = True) -> int:
    """Parameters of the factorized layer: ``rank * (in + out)`` (+ ``out`` for the bias)."""
    return rank * (in_features + out_features) + (out_features if bias else 0)


def low_rank_linear(linear: nn.Linear, rank: int) -> nn.Sequential:
    """``nn.Sequential(Linear(in, r, bias=False), Linear(r, out))`` computing ``x ↦ A(Bx) + b``.

    Fewer parameters than the original only when ``rank * (in + out) < in * out``.
    At ``rank = min(in, out)`` it reproduces the layer up to float rounding.

    Taught in chapter 05, § 5. Low-rank factorization.
    """
    if not isinstance(linear, nn.Linear):
        raise course_error("linear", "an nn.Linear", type(linear).__name__, "pass one Linear layer")
    A, B = low_rank_factors(effective_tensor(linear), rank)
    r = A.shape[1]
    first = nn.Linear(linear.in_features, r, bias=False)
    second = nn.Linear(r, linear.out_features, bias=linear.bias is not None)
    with torch.no_grad():
        first.weight.copy_(B)
        second.weight.copy_(A)
        if linear.bias is not None:
            second.bias.copy_(effective_tensor(linear, "bias"))
    return nn.Sequential(first, second).to(linear.weight.device)
