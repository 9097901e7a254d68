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

The package, by concern: :mod:`.loss` (the loss and its checks), :mod:`.teachers` (ensembles,
teacher logits, the dark-knowledge probe, adapted meta-learners as teachers), :mod:`.loop` (the
training loop), :mod:`.mistakes` (the common mistakes as named functions).
"""
from ..fuse.ensembles import Ensemble
from .loop import distill
from .loss import kd_loss, soft_targets
from .mistakes import (MISTAKES, copy_weights, interpolate_weights, kd_loss_no_t2, kd_loss_softmax_input,
                       kd_loss_swapped_kl, slice_copy_weights)
from .teachers import AdaptedPrototypes, ensemble_logits, same_group_soft_mass, teacher_logits

__all__ = [
    "kd_loss", "soft_targets", "ensemble_logits", "Ensemble", "distill", "teacher_logits",
    "kd_loss_swapped_kl", "kd_loss_softmax_input", "kd_loss_no_t2", "MISTAKES",
    "copy_weights", "slice_copy_weights", "interpolate_weights",
    "same_group_soft_mass", "AdaptedPrototypes",
]
