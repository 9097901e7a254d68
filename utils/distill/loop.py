"""The distillation training loop on top of :func:`utils.training.fit` (chapter 04, § 3)."""
from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from ..errors import course_error
from ..runtime import pick_device
from ..training import History, fit
from ..vocab import Network
from .loss import _check_kd_weight, _check_temperature, kd_loss
from .teachers import _as_teacher_list, ensemble_logits, teacher_logits

__all__ = ["distill"]


# --------------------------------------------------------------------------- the training loop
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
