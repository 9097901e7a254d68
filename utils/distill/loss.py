"""The distillation loss and its input checks (chapter 04, §§ 2-3); see :mod:`utils.distill`
for the formula and the reduction."""
from __future__ import annotations

import torch
from torch.nn import functional as F

from ..errors import check_number, course_error

__all__ = ["soft_targets", "kd_loss"]


# --------------------------------------------------------------------------- input checks
def _check_temperature(T) -> float:
    return check_number(T, "T (temperature)", "a positive finite number such as 4.0",
                        "pass T > 0 (T = 1 is the ordinary softmax; distillation uses 2-20)", low=0.0, low_open=True)


def _check_kd_weight(alpha) -> float:
    return check_number(alpha, "alpha", "a number in [0, 1] (weight of the soft-target term)",
                        "pass e.g. alpha = 0.9; alpha = 0 is plain cross-entropy", low=0.0, high=1.0)


def _check_logits(student_logits, teacher_logits, labels, alpha: float):
    for name, z in (("student_logits", student_logits), ("teacher_logits", teacher_logits)):
        if not isinstance(z, torch.Tensor):
            raise course_error(name, "a tensor of logits (B, C)", type(z).__name__,
                               "pass the model's raw outputs (before any softmax)")
        if z.dim() != 2:
            raise course_error(f"shape of {name}", "(B, C): a batch of class logits", str(tuple(z.shape)),
                               "flatten extra dimensions or add the batch dimension with .unsqueeze(0)")
    if student_logits.shape != teacher_logits.shape:
        raise course_error("teacher_logits vs student_logits",
                           f"the same shape as student_logits {tuple(student_logits.shape)}",
                           str(tuple(teacher_logits.shape)),
                           "teacher and student must score the same classes for the same batch "
                           "(check the teachers' n_classes and that both saw the same inputs)")
    if labels is None:
        if alpha < 1:
            raise course_error("labels", "class ids (B,) when alpha < 1", "None",
                               "pass the labels, or alpha = 1 to train on soft targets only")
        return
    if not isinstance(labels, torch.Tensor) or labels.dtype not in (torch.int64, torch.int32):
        found = f"dtype {labels.dtype}" if isinstance(labels, torch.Tensor) else type(labels).__name__
        raise course_error("labels", "an integer tensor of class ids (B,)", found,
                           "pass labels as torch.long class indices, not one-hot or float")
    B, C = student_logits.shape
    if tuple(labels.shape) != (B,):
        raise course_error("shape of labels", f"({B},): one class id per row of the logits",
                           str(tuple(labels.shape)), "pass the batch's labels, not one-hot vectors")
    if B and (int(labels.min()) < 0 or int(labels.max()) >= C):
        raise course_error("labels", f"class ids in 0..{C - 1}",
                           f"values in {int(labels.min())}..{int(labels.max())}",
                           "relabel the classes to 0..C-1 or give the model more outputs")


def _reduce(per_example: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "batchmean":
        return per_example.mean()
    if reduction == "none":
        return per_example
    raise course_error("reduction", "'batchmean' or 'none'", repr(reduction),
                       "use 'batchmean' (sum over classes, mean over the batch)")


def _prepare(student_logits, teacher_logits, labels, T, alpha, reduction):
    T = _check_temperature(T)
    alpha = _check_kd_weight(alpha)
    _check_logits(student_logits, teacher_logits, labels, alpha)
    if reduction not in ("batchmean", "none"):
        _reduce(student_logits, reduction)  # raises the error
    return student_logits.float(), teacher_logits.detach().float(), T, alpha


def _hard_term(student_logits, labels, alpha):
    if alpha == 1.0 and labels is None:
        return torch.zeros(len(student_logits), device=student_logits.device)
    return F.cross_entropy(student_logits, labels.long(), reduction="none")


# --------------------------------------------------------------------------- the loss
def soft_targets(teacher_logits: torch.Tensor, T: float = 1.0) -> torch.Tensor:
    """The teacher's softened distribution ``softmax(teacher_logits / T)``: ``(B, C)`` rows summing to 1.

    Taught in chapter 04, § 2. Soft targets and temperature.
    """
    T = _check_temperature(T)
    if not isinstance(teacher_logits, torch.Tensor) or teacher_logits.dim() < 1:
        raise course_error("teacher_logits", "a tensor of logits (..., C)", repr(type(teacher_logits)),
                           "pass the model's raw outputs")
    return F.softmax(teacher_logits.float() / T, dim=-1)


def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor | None,
            T: float = 4.0, alpha: float = 0.9, reduction: str = "batchmean") -> torch.Tensor:
    """Distillation loss ``alpha * T**2 * KL(teacher_T || student_T) + (1 - alpha) * CE(student, labels)``.

    Args:
        student_logits: ``(B, C)`` raw student outputs (gradients flow through them).
        teacher_logits: ``(B, C)`` raw teacher outputs; detached (the teacher is not trained).
        labels: ``(B,)`` int64 class ids in ``0..C-1``; may be ``None`` only when ``alpha == 1``.
        T: temperature > 0 applied to **both** teacher and student in the KL term; the hard
            cross-entropy uses the student's plain (``T = 1``) logits.
        alpha: weight in [0, 1] of the soft term; ``alpha = 0`` is ordinary cross-entropy.
        reduction: ``"batchmean"`` (KL summed over classes, everything averaged over the batch)
            or ``"none"`` (per-example losses ``(B,)``).
    Returns:
        A scalar (or ``(B,)``) tensor. ``T**2 * KL`` tends to ``sum_c (d_c - mean(d))**2 / (2 C)``
        with ``d = z_s - z_t`` as ``T -> inf``: logit matching is the high-temperature limit.
    Raises:
        CourseError: on logits that are not ``(B, C)``, teacher/student shape mismatch, labels of
        the wrong shape, dtype or range, ``T <= 0``, ``alpha`` outside [0, 1], unknown reduction.

    Taught in chapter 04, § 3. The loss, written correctly.
    """
    s, t, T, alpha = _prepare(student_logits, teacher_logits, labels, T, alpha, reduction)
    log_q = F.log_softmax(s / T, dim=1)                      # student log-probabilities at T
    p = F.softmax(t / T, dim=1)                              # teacher probabilities at T
    soft = F.kl_div(log_q, p, reduction="none").sum(1)       # KL(p || q) per example, (B,)
    per_example = alpha * T * T * soft + (1 - alpha) * _hard_term(s, labels, alpha)
    return _reduce(per_example, reduction)
