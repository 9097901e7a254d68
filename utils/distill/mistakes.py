"""The common distillation mistakes as named functions, for the measured demonstrations of
chapter 04 (§ 5): buggy losses with :func:`~utils.distill.kd_loss`'s signature, and "distilling" by
copying, slicing or averaging weights."""
from __future__ import annotations

import torch
from torch.nn import functional as F

from ..errors import course_error
from ..fuse.averaging import interpolate_models
from ..vocab import Network
from .loss import _hard_term, _prepare, _reduce

__all__ = ["kd_loss_swapped_kl", "kd_loss_softmax_input", "kd_loss_no_t2", "MISTAKES",
           "copy_weights", "slice_copy_weights", "interpolate_weights"]


# --------------------------------------------------------------------------- the common mistakes
def kd_loss_swapped_kl(student_logits, teacher_logits, labels, T: float = 4.0, alpha: float = 0.9,
                       reduction: str = "batchmean") -> torch.Tensor:
    """MISTAKE: the KL's arguments swapped, ``KL(student_T || teacher_T)``.

    Written ``F.kl_div(log_softmax(z_t / T), softmax(z_s / T))``: the reverse (mode-seeking) KL. Its
    gradient on a class is weighted by the *student's* probability there, so classes the student
    already dismisses get almost no push from the teacher: the "dark knowledge" in the teacher's
    small probabilities is mostly ignored.

    Taught in chapter 04, § 5.2 The KL's arguments swapped.
    """
    s, t, T, alpha = _prepare(student_logits, teacher_logits, labels, T, alpha, reduction)
    soft = F.kl_div(F.log_softmax(t / T, dim=1), F.softmax(s / T, dim=1), reduction="none").sum(1)
    return _reduce(alpha * T * T * soft + (1 - alpha) * _hard_term(s, labels, alpha), reduction)


def kd_loss_softmax_input(student_logits, teacher_logits, labels, T: float = 4.0, alpha: float = 0.9,
                          reduction: str = "batchmean") -> torch.Tensor:
    """MISTAKE: ``softmax`` where ``F.kl_div`` expects ``log_softmax`` for the student.

    ``F.kl_div(softmax(z_s / T), softmax(z_t / T))`` computes ``sum p log p - sum p q``: not a
    divergence (it is negative and not zero when student equals teacher), and its gradient just
    pushes up the student's probability on the teacher's top classes.

    Taught in chapter 04, § 5.1 `softmax` where `F.kl_div` wants `log_softmax`.
    """
    s, t, T, alpha = _prepare(student_logits, teacher_logits, labels, T, alpha, reduction)
    soft = F.kl_div(F.softmax(s / T, dim=1), F.softmax(t / T, dim=1), reduction="none").sum(1)
    return _reduce(alpha * T * T * soft + (1 - alpha) * _hard_term(s, labels, alpha), reduction)


def kd_loss_no_t2(student_logits, teacher_logits, labels, T: float = 4.0, alpha: float = 0.9,
                  reduction: str = "batchmean") -> torch.Tensor:
    """MISTAKE: the ``T**2`` factor dropped: ``alpha * KL + (1 - alpha) * CE``.

    The soft term's gradient then shrinks like ``1 / T**2``: at ``T = 4`` the teacher's signal is
    about 16 times weaker than ``alpha`` says, so the student mostly trains on the hard labels.

    Taught in chapter 04, § 5.3 $T^2$ dropped.
    """
    s, t, T, alpha = _prepare(student_logits, teacher_logits, labels, T, alpha, reduction)
    soft = F.kl_div(F.log_softmax(s / T, dim=1), F.softmax(t / T, dim=1), reduction="none").sum(1)
    return _reduce(alpha * soft + (1 - alpha) * _hard_term(s, labels, alpha), reduction)


#: The buggy losses by name, for sweeps in the chapter (all share :func:`kd_loss`'s signature).
MISTAKES = {
    "swapped KL arguments": kd_loss_swapped_kl,
    "softmax instead of log_softmax": kd_loss_softmax_input,
    "T² dropped": kd_loss_no_t2,
}


def copy_weights(student: Network, teacher: Network) -> Network:
    """MISTAKE: "distil" by loading the teacher's weights into the student.

    Works only when both have the same architecture (then the "student" *is* the teacher, no
    smaller); across architectures it raises a :class:`~utils.errors.CourseError` naming the
    first mismatching parameter. Returns ``student`` (modified in place) when it works.

    Taught in chapter 04, § 5.4 "Distilling" by copying or interpolating weights.
    """
    s_state, t_state = student.state_dict(), teacher.state_dict()
    same = s_state.keys() == t_state.keys() and all(v.shape == t_state[k].shape for k, v in s_state.items())
    if not same:
        n_s = sum(v.numel() for v in s_state.values())
        n_t = sum(v.numel() for v in t_state.values())
        example = ""
        for (ks, vs), (kt, vt) in zip(s_state.items(), t_state.items()):
            if vs.shape != vt.shape:
                example = f"; first mismatch: student {ks} {tuple(vs.shape)} vs teacher {kt} {tuple(vt.shape)}"
                break
        raise course_error("copy_weights",
                           f"a teacher with the student's architecture ({len(s_state)} tensors, {n_s:,} numbers)",
                           f"{len(t_state)} tensors, {n_t:,} numbers{example}",
                           "distil through the outputs (kd_loss) instead: a smaller network cannot hold "
                           "the teacher's weights")
    student.load_state_dict(t_state)
    return student


@torch.no_grad()
def slice_copy_weights(student: Network, teacher: Network) -> Network:
    """MISTAKE: the naive way round :func:`copy_weights`: copy the leading block of every teacher
    tensor into the student's smaller tensor (first ``k`` hidden units, first ``k`` inputs ...).

    Tensors are paired **in order** (first weight with first weight, ...; parameter-free layers
    such as dropout may differ), so both models need the same number of tensors; each student
    tensor receives ``teacher_tensor[:s_0, :s_1, ...]``. The teacher's units work *together*; a
    slice of them is not a smaller network computing the same function. Returns ``student``.

    Taught in chapter 04, § 5.4 "Distilling" by copying or interpolating weights.
    """
    s_items = list(student.state_dict().items())
    t_items = list(teacher.state_dict().items())
    if len(s_items) != len(t_items):
        raise course_error("slice_copy_weights", f"a teacher with as many tensors as the student ({len(s_items)})",
                           f"{len(t_items)} tensors", "use a teacher with the student's depth")
    for (k, v), (kt, w) in zip(s_items, t_items):
        if w.dim() != v.dim() or any(a > b for a, b in zip(v.shape, w.shape)):
            raise course_error("slice_copy_weights", f"teacher tensors at least as large as the student's",
                               f"{kt} {tuple(w.shape)} for {k} {tuple(v.shape)}", "use a smaller student")
        v.copy_(w[tuple(slice(0, n) for n in v.shape)] if v.dim() else w)
    return student


def interpolate_weights(model_a: Network, model_b: Network, weight_b: float = 0.5) -> Network:
    """MISTAKE: "distil" b into a by mixing weights: a new model with ``(1 - w) * a + w * b``.

    Both must share an architecture. For two independently trained networks the hidden units are
    in unrelated orders (any permutation of them computes the same function), so the average of
    their weights is usually a much worse network than either. It is chapter 06's weight
    interpolation (:func:`utils.fuse.interpolate_models`; integer buffers such as BatchNorm's
    counter come from the nearer end), named here as the distillation mistake it is. Returns a
    new model; the inputs are left untouched.

    Taught in chapter 04, § 5.4 "Distilling" by copying or interpolating weights.
    """
    return interpolate_models(model_a, model_b, weight_b)
