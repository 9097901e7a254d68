"""What teaches: ensembles of teachers at a temperature, a teacher's logits on a data set, the
dark-knowledge probe, and an adapted meta-learner frozen into a teacher (chapter 04, §§ 3, 4, 7)."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ..errors import course_error
from ..fuse.ensembles import ensemble_log_probs
from ..training import predict_logits
from ..vocab import Network
from .loss import _check_temperature, soft_targets

__all__ = ["ensemble_logits", "teacher_logits", "same_group_soft_mass", "AdaptedPrototypes"]


# --------------------------------------------------------------------------- ensembles of teachers
def ensemble_logits(logits_list, T: float = 1.0) -> torch.Tensor:
    """Logits whose temperature-``T`` softmax is the **average of the teachers' temperature-``T``
    probabilities**: ``T * log(mean_k softmax(z_k / T))`` (chapter 06's probability average,
    :func:`utils.fuse.ensemble_log_probs`, at temperature ``T``).

    Feed the result to :func:`kd_loss` with the *same* ``T``; ``softmax(result / T)`` equals the
    averaged soft targets exactly. Args: a list (or ``(K, B, C)`` tensor) of teacher logits.
    Returns ``(B, C)``.

    Taught in chapter 04, § 4. Does it work? Several seeds, paired comparisons.
    """
    if not isinstance(logits_list, torch.Tensor):
        logits_list = [a.float() for a in logits_list]
    T = _check_temperature(T)
    return T * ensemble_log_probs(logits_list, T)


def _as_teacher_list(teachers):
    if isinstance(teachers, nn.Module):
        return [teachers]
    teachers = list(teachers)
    if not teachers or not all(isinstance(t, nn.Module) for t in teachers):
        raise course_error("teachers", "a trained nn.Module or a non-empty list of them",
                           repr(type(teachers)), "pass teacher or [teacher_1, teacher_2, ...]")
    return teachers


def teacher_logits(teachers: Network | Sequence[Network], x: torch.Tensor, T: float = 1.0, device="auto") -> torch.Tensor:
    """Teacher logits on ``x`` (eval mode, no gradients), on the CPU: ``(M, C)``.

    One teacher: its raw logits. Several: :func:`ensemble_logits` at temperature ``T``.

    Taught in chapter 04, § 3. The loss, written correctly.
    """
    teachers = _as_teacher_list(teachers)
    outs = [predict_logits(t, x, device) for t in teachers]
    return outs[0] if len(outs) == 1 else ensemble_logits(outs, T)


# --------------------------------------------------------------------------- dark-knowledge probe
@torch.no_grad()
def same_group_soft_mass(logits: torch.Tensor, labels: torch.Tensor, group_of_class: torch.Tensor,
                         T: float = 1.0) -> float:
    """Share of the teacher's *wrong-class* probability that lands on classes of the true class's
    group (e.g. other characters of the same alphabet), averaged over examples.

    Compare with the share a uniform spread would give, ``(n_same_group - 1) / (C - 1)``: a larger
    value means the near-misses the teacher ranks high are the look-alikes, the "dark knowledge".
    """
    p = soft_targets(logits, T)
    group_of_class = group_of_class.to(p.device)
    same = group_of_class[None, :] == group_of_class[labels][:, None]         # (M, C)
    wrong = torch.ones_like(same)
    wrong[torch.arange(len(labels)), labels] = False
    num = (p * (same & wrong)).sum(1)
    den = (p * wrong).sum(1).clamp_min(1e-30)
    return float((num / den).mean())


# --------------------------------------------------------------------------- adapted meta-learners as teachers
class AdaptedPrototypes(nn.Module):
    """A prototypical network adapted to one task, frozen into a model that can teach (chapter 04, §7).

    Adapting a ProtoNet to a task means embedding its support set; the adapted classifier returns,
    for inputs ``x`` ``(B, ...)``, the logits ``(B, N)`` of :func:`utils.learners.metric.protonet_logits`
    (negative squared distances to the ``N`` class prototypes). As an ``nn.Module`` it can be a
    teacher of :func:`distill`, alone or in a list (an ensemble of adapted meta-learners).

    Args:
        encoder: the meta-trained embedding network (shared, not copied; used in eval mode).
        support_x: ``(N*K, ...)`` support inputs; support_y: ``(N*K,)`` class ids ``0 … N-1``.

    Taught in chapter 04, § 7. Distillation as a mapping, and meta-learning.
    """

    def __init__(self, encoder: nn.Module, support_x: torch.Tensor, support_y: torch.Tensor):
        super().__init__()
        if support_y.dim() != 1 or len(support_y) != len(support_x) or support_y.dtype not in (torch.int64, torch.int32):
            raise course_error("support set", "inputs (N*K, ...) and integer class ids (N*K,)",
                               f"{tuple(support_x.shape)} and {tuple(support_y.shape)} {support_y.dtype}",
                               "pass one task's support images and their labels 0 … N-1")
        self.encoder = encoder
        self.register_buffer("support_x", support_x)
        self.register_buffer("support_y", support_y.long())
        self.n_way = int(support_y.max()) + 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from ..learners import protonet_logits
        return protonet_logits(self.encoder(self.support_x), self.support_y, self.encoder(x), self.n_way)
