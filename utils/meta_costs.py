"""What one meta-iteration costs, and what adaptation moves (chapter 02, § 9): memory and work per
meta-iteration, how much adaptation moves each layer.
(Evaluation lives in :mod:`utils.learners.evaluate`.)

* :func:`saved_tensor_bytes` — a device-independent proxy for the activation memory of one
  meta-iteration: the bytes autograd holds for the backward pass when the forward pass ends.
* :func:`meta_iteration_memory` — that proxy for any of the course's learners, plus the CUDA
  peak when the learner lives on a GPU.
* :func:`meta_iteration_work` — what one meta-iteration asks of the machine, counted rather than
  timed (operators dispatched, floating-point operations), so a chapter can assert a cost
  ratio that does not depend on how busy the machine is (chapter 02, section 9).
* :func:`adaptation_change` — how much the inner loop moves the body and the head of a
  classifier ("rapid learning or feature reuse?", Raghu et al. 2020).
"""
from __future__ import annotations

import copy
import math
import weakref

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

from .learners import inner_loop as Fn
from .errors import course_error
from .learners import MAML, FineTuneBaseline, ProtoNet
from .runtime import peak_memory_mb, reset_peak_memory, synchronize
from .vocab import split_batch

__all__ = [
    "saved_tensor_bytes", "count_work", "meta_iteration_work", "adaptation_work", "maml_saved_bytes", "meta_iteration_memory",
    "adaptation_change"
]


def saved_tensor_bytes(fn, *args, **kwargs) -> tuple[object, int]:
    """Run ``fn(*args, **kwargs)`` and count the bytes autograd holds for the backward pass.

    Every tensor an operation stashes for its backward (activations, masks and — when the inner
    loop keeps its graph for second-order MAML — the inner gradients' own intermediates) passes
    through ``torch.autograd.graph.saved_tensors_hooks``. When ``fn`` returns, the tensors still
    held are what the outer ``backward()`` will need: their storages are summed, each once,
    leaving out leaf tensors that require grad (the model's parameters, which exist anyway).
    Graphs built and freed inside ``fn`` (a first-order inner gradient) do not count.

    A device-independent proxy for the activation memory of a meta-iteration at its peak; it
    leaves out gradients, optimizer state and short-lived buffers. ``torch.func`` transforms
    refuse saved-tensor hooks, so measure the per-task reference
    (:func:`utils.learners.inner_loop.loop_meta_loss`), which saves the same tensors per task as the
    vectorized version. Returns ``(fn's result, bytes)``.

    Taught in chapter 02, § 9 · What second-order gradients cost, and what first-order and ANIL trade away.
    """
    refs = []

    def pack(t):
        if not (t.is_leaf and t.requires_grad):
            refs.append(weakref.ref(t))
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        result = fn(*args, **kwargs)
    held: dict[tuple[str, int], int] = {}
    for r in refs:
        t = r()
        if t is None:
            continue
        st = t.untyped_storage()
        held[(str(t.device), st.data_ptr())] = st.nbytes()
    return result, int(sum(held.values()))


class _OpCounter(TorchDispatchMode):
    """Counts every ATen operator call that reaches the dispatcher (forward and backward)."""

    def __init__(self):
        super().__init__()
        self.ops = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops += 1
        return func(*args, **(kwargs or {}))


def count_work(fn, *args, **kwargs) -> dict:
    """``{"ops": operators dispatched, "flops": floating-point operations}`` of ``fn(*args, **kwargs)``.

    ``fn`` runs twice, once under each counter, so it must give the same work both times (a pure
    evaluation, or a step on a throw-away copy). FLOPs are those of matrix products and convolutions
    as ``torch.utils.flop_counter.FlopCounterMode`` counts them, forward and backward. Both numbers
    are deterministic for given shapes, unlike a wall-clock time, so a chapter can assert a cost
    ratio that does not depend on how busy the machine is.

    Taught in chapter 01, § Compute cost.
    """
    counter = _OpCounter()
    with counter:
        fn(*args, **kwargs)
    with FlopCounterMode(display=False) as flops:
        fn(*args, **kwargs)
    return {"ops": counter.ops, "flops": int(flops.get_total_flops())}


def meta_iteration_work(learner, batch) -> dict:
    """:func:`count_work` of one ``learner.meta_step(batch)`` on a throw-away copy of the learner.

    For the small networks of chapter 02 the time of an iteration follows the number of operators
    (each costs a fixed overhead) more than the FLOPs. ``batch`` is ``(support_x, support_y,
    query_x, query_y)`` with a leading task dimension, or an object with those attributes.

    Taught in chapter 02, § 9 · What second-order gradients cost, and what first-order and ANIL trade away.
    """
    clone = copy.deepcopy(learner)
    fields = split_batch(batch, clone.device) if not isinstance(batch, (tuple, list)) else tuple(
        t.to(clone.device) for t in batch)
    return count_work(clone.meta_step, fields)


def adaptation_work(learner, episode) -> dict:
    """:func:`count_work` of adapting ``learner`` to one episode and scoring its queries
    (``learner.evaluate_task(support_x, support_y, query_x, query_y)``; ``episode`` has those
    attributes, unbatched: ``(N*K, ...)`` support, ``(N*Q, ...)`` queries).

    Taught in chapter 01, § Compute cost.
    """
    dev = learner.device
    return count_work(learner.evaluate_task, episode.support_x.to(dev), episode.support_y.to(dev),
                      episode.query_x.to(dev), episode.query_y.to(dev))


def maml_saved_bytes(learner: MAML, batch, inner_steps: int | None = None) -> int:
    """:func:`saved_tensor_bytes` of one meta-loss of a MAML-family learner on ``batch``
    (its own first-order flag, adapted parameters and step size; ``inner_steps`` overrides).

    Taught in chapter 02, § 9 · What second-order gradients cost, and what first-order and ANIL trade away.
    """
    steps = learner.inner_steps if inner_steps is None else int(inner_steps)
    sx, sy, qx, qy = split_batch(batch, learner.device)
    params, buffers = Fn.model_params(learner.model)
    learner.train_mode(True)
    _, nbytes = saved_tensor_bytes(Fn.loop_meta_loss, learner.model, (params, buffers), (sx, sy, qx, qy),
                                   **learner.inner_settings(steps))
    return nbytes


def meta_iteration_memory(learner, batch) -> dict:
    """Memory of one meta-iteration of ``learner`` on ``batch`` (a stacked episode/task batch).

    Returns ``{"saved_mb": ..., "cuda_peak_mb": ... or None}``: the saved-for-backward proxy of
    :func:`saved_tensor_bytes` (MiB) for every learner, and on a CUDA device the peak memory
    allocated during one full meta-step (forward, backward, optimizer) of a *copy* of the learner,
    so the learner itself is not trained further. For :class:`~utils.learners.finetune.FineTuneBaseline` the
    "iteration" is one supervised pre-training step on the images of ``batch``'s support and
    query sets with random labels of its head's size (the cost, not the result, is what counts).

    Taught in chapter 02, § 9 · What second-order gradients cost, and what first-order and ANIL trade away.
    """
    if not isinstance(learner, (MAML, ProtoNet, FineTuneBaseline)):
        raise course_error("learner", "a MAML-family learner, ProtoNet or FineTuneBaseline",
                           type(learner).__name__, "pass one of the course's learners")
    dev = learner.device
    if isinstance(learner, MAML):
        saved = maml_saved_bytes(learner, batch)
        run = lambda lrn: lrn.meta_step(split_batch(batch, dev))
    elif isinstance(learner, ProtoNet):
        learner.train_mode(True)
        _, saved = saved_tensor_bytes(learner.meta_loss, *split_batch(batch, dev))
        run = lambda lrn: lrn.meta_step(split_batch(batch, dev))
    else:  # FineTuneBaseline
        sx, _, qx, _ = split_batch(batch, dev)
        x = torch.cat([sx.flatten(0, 1), qx.flatten(0, 1)])
        n_out = learner.model.head.out_features if hasattr(learner.model, "head") else 1
        y = torch.randint(0, n_out, (x.shape[0],), device=dev)
        learner.train_mode(True)

        def sup_loss(model):
            return torch.nn.functional.cross_entropy(model(x), y)
        _, saved = saved_tensor_bytes(sup_loss, learner.model)

        def run(lrn):
            lrn.optimizer.zero_grad(set_to_none=True)
            sup_loss(lrn.model).backward()
            lrn.optimizer.step()
    peak = None
    if dev.type == "cuda":
        clone = copy.deepcopy(learner)
        synchronize(dev)
        reset_peak_memory(dev)
        run(clone)
        synchronize(dev)
        peak = peak_memory_mb(dev)
        del clone
    return {"saved_mb": saved / 2**20, "cuda_peak_mb": peak}


def adaptation_change(learner: MAML, batch, steps: int | None = None) -> dict:
    """How far the inner loop moves each part of a classifier, averaged over ``batch``'s tasks.

    Returns ``{"body": r_b, "head": r_h, "feature_cosine": c}``: ``r`` is the relative change
    ``||φ - θ|| / ||θ||`` of the parameters named ``head.*`` and of all others (the body), and
    ``c`` the mean cosine similarity between the query images' features (``model.features``)
    computed with θ and with the adapted φ. A body that barely moves and features that stay
    aligned mean the inner loop *reuses* features rather than learning new ones.

    Taught in chapter 02, § 9 · What second-order gradients cost, and what first-order and ANIL trade away.
    """
    if not isinstance(learner, MAML) or not hasattr(learner.model, "features"):
        raise course_error("learner", "a MAML-family learner over a Classifier (features + head)",
                           type(learner).__name__, "use utils.models.Classifier-based models")
    sx, sy, qx, _ = split_batch(batch, learner.device)
    params, buffers = Fn.model_params(learner.model)
    theta = Fn.detached(params)
    feats = {k[len("features."):]: k for k in theta if k.startswith("features.")}
    fbuf = {k[len("features."):]: v for k, v in buffers.items() if k.startswith("features.")}
    body_num = body_den = head_num = head_den = 0.0
    cos = []
    learner.train_mode(True)
    for t in range(sx.shape[0]):
        phi = learner.adapt(sx[t], sy[t], steps)
        for k, v in theta.items():
            d2, n2 = float(((phi[k] - v) ** 2).sum()), float((v ** 2).sum())
            if k.startswith("head."):
                head_num, head_den = head_num + d2, head_den + n2
            else:
                body_num, body_den = body_num + d2, body_den + n2
        with torch.no_grad():
            f0 = Fn.forward(learner.model.features, {s: theta[k] for s, k in feats.items()}, fbuf, qx[t])
            f1 = Fn.forward(learner.model.features, {s: phi[k] for s, k in feats.items()}, fbuf, qx[t])
        cos.append(float(torch.nn.functional.cosine_similarity(f0.flatten(1), f1.flatten(1), dim=1).mean()))
    return {"body": math.sqrt(body_num / max(body_den, 1e-12)),
            "head": math.sqrt(head_num / max(head_den, 1e-12)),
            "feature_cosine": float(sum(cos) / len(cos))}


