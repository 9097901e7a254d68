"""Knowledge distillation: the loss, a training loop on top of :func:`utils.training.fit`, ensembles
of teachers, and the common mistakes as named functions (for the measured demonstrations).

Distillation is a mapping from a model to a model: a trained *teacher* ``f_t`` and a fresh
*student* ``f_s`` go in, a student that imitates the teacher's softened outputs comes out
(Hinton, Vinyals & Dean, 2015). With logits ``z_s`` (student) and ``z_t`` (teacher), temperature
``T`` and weight ``alpha``::

    p_T = softmax(z_t / T)                      # teacher's soft targets
    log q_T = log_softmax(z_s / T)              # student's log-probabilities at the same T
    loss = alpha * T**2 * KL(p_T || q_T) + (1 - alpha) * CE(z_s, labels)

``KL(p || q) = sum_c p_c (log p_c - log q_c)`` is taken with the *teacher* as the reference
distribution; in PyTorch that is ``F.kl_div(log q_T, p_T)`` (input = student log-probabilities,
target = teacher probabilities). The gradient of ``KL(p_T || q_T)`` with respect to ``z_s`` is
``(q_T - p_T) / T``, whose size falls like ``1 / T**2`` once ``T`` exceeds the logits' spread;
the ``T**2`` factor undoes that, so changing ``T`` does not silently change the balance between
the soft and the hard term.

Reduction (``reduction="batchmean"``, the default): the KL is **summed over classes** and
**averaged over the batch** (like ``F.kl_div(..., reduction="batchmean")``), the cross-entropy is
averaged over the batch; ``reduction="none"`` returns the per-example losses ``(B,)``.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from .errors import check_number, course_error
from .fuse.averaging import interpolate_models
from .fuse.ensembles import Ensemble, ensemble_log_probs
from .runtime import pick_device
from .training import History, fit, predict_logits
from .vocab import Network

__all__ = [
    "kd_loss", "soft_targets", "ensemble_logits", "Ensemble", "distill", "teacher_logits",
    "kd_loss_swapped_kl", "kd_loss_softmax_input", "kd_loss_no_t2", "MISTAKES",
    "copy_weights", "slice_copy_weights", "interpolate_weights",
    "same_group_soft_mass", "AdaptedPrototypes",
]


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


# --------------------------------------------------------------------------- the training loop
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


class _Packed(nn.Module):
    """Wraps the student so precomputed teacher logits can ride along with each batch.

    ``fit`` only hands ``batch_loss`` the batch's inputs, so the teacher's logits are appended as
    extra columns of the (flattened) inputs; ``forward`` splits them off, remembers them for the
    loss and runs the student on the real inputs. The student's parameters are the wrapper's.
    """

    def __init__(self, student: nn.Module, input_shape: tuple, n_classes: int):
        super().__init__()
        self.student = student
        self.input_shape = tuple(input_shape)
        self.n_in = int(math.prod(self.input_shape))
        self.n_classes = n_classes
        self.last_teacher = None

    def forward(self, packed: torch.Tensor) -> torch.Tensor:
        self.last_teacher = packed[:, self.n_in:]
        return self.student(packed[:, :self.n_in].reshape(-1, *self.input_shape))


def _pair(data, name):
    if data is None:
        return None
    if hasattr(data, "x") and hasattr(data, "y"):
        return data.x, data.y
    if isinstance(data, (tuple, list)) and len(data) == 2:
        return data[0], data[1]
    raise course_error(name, "an (x, y) pair of tensors or an object with .x and .y",
                       type(data).__name__, "pass e.g. (x_train, y_train)")


def distill(student: Network, teachers: Network | Sequence[Network], train, val=None, *, T: float = 4.0, alpha: float = 0.9,
            epochs: int = 10, lr: float = 1e-3, batch_size: int = 64, weight_decay: float = 0.0,
            optimizer: str = "adam", device="auto", seed: int | None = 0, progress: bool = True,
            precompute: bool = True, loss=kd_loss) -> History:
    """Train ``student`` to imitate ``teachers`` on ``train``; returns :func:`~utils.training.fit`'s History.

    Args:
        student: the model to train (in place); must output the teachers' number of classes.
        teachers: a trained model, or a list of them (an ensemble: their probabilities are
            averaged at temperature ``T``, see :func:`ensemble_logits`). Never trained here; run
            in eval mode without gradients.
        train, val: ``(x, y)`` pairs (or digits ``Split``s). ``val`` is scored with cross-entropy.
        T, alpha: the temperature and soft-term weight of ``loss``.
        precompute: compute the teachers' logits on ``train`` once before training (fast; exact
            because ``fit`` uses no data augmentation). ``False`` runs the teachers on every batch.
        loss: a function with :func:`kd_loss`'s signature (e.g. one of :data:`MISTAKES`).
        Everything else is passed to :func:`~utils.training.fit`.

    Taught in chapter 04, § 4. Does it work? Several seeds, paired comparisons.
    """
    teachers = _as_teacher_list(teachers)
    _check_temperature(T), _check_kd_weight(alpha)
    device = pick_device(device)
    x, y = _pair(train, "train")
    val = _pair(val, "val")
    with torch.no_grad():
        probe_t = teacher_logits(teachers, x[:2], T, device)
        was = student.training
        student.to(device).eval()
        probe_s = student(x[:2].to(device))
        student.train(was)
    if probe_s.shape != probe_t.shape:
        raise course_error("student outputs", f"{probe_t.shape[1]} logits per example (the teachers')",
                           f"{probe_s.shape[1] if probe_s.dim() == 2 else tuple(probe_s.shape)}",
                           "build the student with the teachers' number of classes")
    fit_kw = dict(epochs=epochs, lr=lr, batch_size=batch_size, weight_decay=weight_decay,
                  optimizer=optimizer, device=device, seed=seed, progress=progress)
    if precompute:
        t_train = teacher_logits(teachers, x, T, device)
        C = t_train.shape[1]
        wrapper = _Packed(student, x.shape[1:], C)
        packed = torch.cat([x.flatten(1).float(), t_train], 1)
        packed_val = None
        if val is not None:
            vx, vy = val
            packed_val = (torch.cat([vx.flatten(1).float(), torch.zeros(len(vx), C)], 1), vy)

        def batch_loss(model, xb, yb, logits):
            return loss(logits, model.last_teacher, yb, T, alpha)

        return fit(wrapper, (packed, y), packed_val, batch_loss=batch_loss, **fit_kw)

    for t in teachers:
        t.to(device)

    def batch_loss(model, xb, yb, logits):
        modes = [t.training for t in teachers]
        with torch.no_grad():
            for t in teachers:
                t.eval()
            outs = [t(xb).float() for t in teachers]
            for t, m in zip(teachers, modes):
                t.train(m)
        zt = outs[0] if len(outs) == 1 else ensemble_logits(outs, T)
        return loss(logits, zt, yb, T, alpha)

    return fit(student, (x, y), val, batch_loss=batch_loss, **fit_kw)


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
        from .learners import protonet_logits
        return protonet_logits(self.encoder(self.support_x), self.support_y, self.encoder(x), self.n_way)
