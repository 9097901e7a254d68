"""Ensembles of adapted meta-learners (chapter 06, "Ensembles of meta-learners"): adapt several
learners to the same test tasks and fuse their adapted query predictions.

* :func:`adapted_outputs` — one learner's query outputs after adapting to one task;
* :func:`evaluate_adapted_ensemble` — every learner and their average, per task.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .metric import ProtoNet, protonet_logits
from ..errors import course_error
from ..fuse.calibration import accuracy
from ..vocab import TaskSource, split_batch

__all__ = ["adapted_outputs", "evaluate_adapted_ensemble"]


@torch.no_grad()
def adapted_outputs(learner, support_x, support_y, query_x, steps: int | None = None) -> torch.Tensor:
    """One learner's query outputs after adapting to one task's support set (on the CPU).

    Supported learners:
        * the MAML family of :mod:`utils.learners` (``adapt`` + ``predict``): gradient steps on the
          support set, then the adapted model's outputs;
        * :class:`utils.learners.metric.ProtoNet`: prototype logits from its encoder;
        * any ``nn.Module`` used as a fixed feature extractor (a :class:`utils.models.Classifier`
          contributes its ``features``): prototype logits, i.e. the fine-tune baseline with a
          nearest-prototype head.
    Classification outputs are logits ``(Q, N)``; regression outputs predictions ``(Q, d)``.

    Taught in chapter 06, § 5 · Fusion in meta-learning: ensembling adapted predictions.
    """
    if hasattr(learner, "adapt") and hasattr(learner, "predict"):
        learner.train_mode(True)
        with torch.enable_grad():
            fast = learner.adapt(support_x, support_y, steps)
        return learner.predict(fast, query_x).cpu()
    if isinstance(learner, ProtoNet):
        learner.train_mode(False)
        enc, dev = learner.model, learner.device
    elif isinstance(learner, nn.Module):
        enc = getattr(learner, "features", learner)
        enc.eval()
        dev = next(enc.parameters()).device
    else:
        raise course_error("learner", "a MAML-family learner, a ProtoNet or an nn.Module encoder",
                           type(learner).__name__, "pass learners from utils.learners or trained models")
    if support_y.dtype not in (torch.int64, torch.int32):
        raise course_error("support_y", "class ids for a prototype learner", str(support_y.dtype),
                           "use a MAML-family learner for regression")
    n_way = int(support_y.max()) + 1
    return protonet_logits(enc(support_x.to(dev)), support_y.to(dev), enc(query_x.to(dev)), n_way).cpu()


@torch.no_grad()
def evaluate_adapted_ensemble(learners, source: TaskSource, n_tasks: int = 200, steps: int | None = None,
                              batch: int = 50) -> dict:
    """Adapt every learner to the same test tasks and fuse their adapted query predictions.

    For each task every learner adapts on the support set and predicts the queries
    (:func:`adapted_outputs`); the ensemble averages the probabilities (classification) or the
    predictions (regression). ``source(B)`` returns stacked tasks (:func:`utils.learners.base.episode_source`,
    :func:`utils.learners.base.sinusoid_source`).

    Returns ``{"members": (L, n_tasks) tensor, "ensemble": (n_tasks,) tensor, "metric": str}``
    with per-task query accuracy (classification) or MSE (regression).

    Taught in chapter 06, § 5 · Fusion in meta-learning: ensembling adapted predictions.
    """
    learners = list(learners)
    if not learners:
        raise course_error("learners", "at least one learner", "an empty list", "pass trained learners")
    members = [[] for _ in learners]
    ens, metric, done = [], "mse", 0
    while done < n_tasks:
        b = min(batch, n_tasks - done)
        sx, sy, qx, qy = split_batch(source(b), "cpu")
        classify = qy.dtype in (torch.int64, torch.int32)
        metric = "accuracy" if classify else "mse"
        for t in range(b):
            preds = []
            for i, lr in enumerate(learners):
                out = adapted_outputs(lr, sx[t], sy[t], qx[t], steps)
                preds.append(out.softmax(-1) if classify else out)
                members[i].append(accuracy(out, qy[t]) if classify else float(F.mse_loss(out, qy[t])))
            fused = torch.stack(preds).mean(0)
            ens.append(accuracy(fused, qy[t]) if classify else float(F.mse_loss(fused, qy[t])))
        done += b
    return {"members": torch.tensor(members), "ensemble": torch.tensor(ens), "metric": metric}
