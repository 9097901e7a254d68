"""Meta-evaluation, in one place: adapt a meta-learner to fresh test tasks and report the mean
query figure with its 95 % confidence interval (chapter 02, "How to evaluate a meta-learner").

* :func:`meta_evaluate` — any learner of :mod:`utils.meta` (and of chapter 03's families), one
  task at a time, through ``learner.evaluate_task``.
* :func:`evaluate_vectorized` — the same figure for the MAML family, a batch of test tasks at a
  time with ``torch.func.vmap`` (chapter 02, "Vectorizing over tasks").
* :func:`adapted_outputs` and :func:`evaluate_adapted_ensemble` — adapt several learners to the
  same tasks and fuse their adapted predictions (chapter 06, "Ensembles of meta-learners").

The figure is query accuracy for classification and query MSE for regression. One task's figure
means little: the CI says how much the mean would move with other test tasks drawn from the same
family; it does not cover the variation between training runs (see :func:`utils.stats.seed_spread`).
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from . import functional as Fn
from .errors import course_error
from .fuse.calibration import accuracy
from .meta import MAML, MetaResult, ProtoNet, protonet_logits
from .stats import mean_ci95
from .vocab import TaskSource, split_batch

__all__ = ["MetaResult", "meta_evaluate", "evaluate_vectorized", "adapted_outputs", "evaluate_adapted_ensemble"]


def meta_evaluate(learner, source: TaskSource, n_tasks: int = 600, steps: int | None = None,
                  batch: int = 50, progress: bool = False) -> MetaResult:
    """Adapt to ``n_tasks`` fresh tasks from ``source`` and report the mean query figure ± 95% CI.

    The figure is accuracy for classification and MSE for regression. One task's figure means
    little: the CI says how much the mean would move with other test tasks.

    Taught in chapter 01, § How meta-learning is judged.
    """
    values, metric = [], "accuracy"
    done = 0
    bar = tqdm(total=n_tasks, desc="meta-evaluate", disable=not progress, leave=False)
    while done < n_tasks:
        b = min(batch, n_tasks - done)
        sx, sy, qx, qy = split_batch(source(b), "cpu")
        for t in range(b):
            loss, acc = learner.evaluate_task(sx[t], sy[t], qx[t], qy[t], steps)
            if qy.dtype in (torch.int64, torch.int32):
                values.append(acc)
            else:
                metric = "mse"
                values.append(loss)
        done += b
        bar.update(b)
    bar.close()
    mean, half = mean_ci95(values)
    return MetaResult(metric, mean, half, values)


def evaluate_vectorized(learner, source: TaskSource, n_tasks: int = 600, steps: int | None = None,
                        batch: int = 50) -> MetaResult:
    """Mean query figure ± 95% CI over ``n_tasks`` tasks from ``source``, batched with ``vmap``.

    For a :class:`~utils.meta.MAML` learner (any of its variants) every task is adapted exactly
    as ``learner.evaluate_task`` does (``steps`` inner steps, default ``learner.eval_steps``,
    batch statistics in BatchNorm) but ``batch`` tasks at a time. Accuracy for classification,
    MSE for regression. Other learners are handed to :func:`utils.meta_eval.meta_evaluate`.

    Taught in chapter 02, § 8 · Few-shot classification on glyphs.
    """
    if int(n_tasks) != n_tasks or n_tasks < 2:
        raise course_error("n_tasks", "an integer >= 2 (600 is standard)", repr(n_tasks),
                           "evaluate on more tasks")
    if not isinstance(learner, MAML):
        return meta_evaluate(learner, source, n_tasks=n_tasks, steps=steps, batch=batch)
    steps = learner.eval_steps if steps is None else int(steps)
    learner.train_mode(True)
    params, buffers = Fn.model_params(learner.model)
    params = Fn.detached(params)
    values, metric, done = [], "accuracy", 0
    with torch.no_grad():
        while done < n_tasks:
            b = min(batch, n_tasks - done)
            sx, sy, qx, qy = split_batch(source(b), learner.device)
            losses, accs = Fn.vmap_meta_loss(learner.model, params, buffers, sx, sy, qx, qy, steps,
                                             learner.inner_step_sizes(), True, learner.adapt_names,
                                             chunk_size=learner.chunk_size)
            if qy.dtype in (torch.int64, torch.int32):
                values += accs.tolist()
            else:
                metric = "mse"
                values += losses.tolist()
            done += b
    mean, half = mean_ci95(values)
    return MetaResult(metric, mean, half, values)


@torch.no_grad()
def adapted_outputs(learner, support_x, support_y, query_x, steps: int | None = None) -> torch.Tensor:
    """One learner's query outputs after adapting to one task's support set (on the CPU).

    Supported learners:
        * the MAML family of :mod:`utils.meta` (``adapt`` + ``predict``): gradient steps on the
          support set, then the adapted model's outputs;
        * :class:`utils.meta.ProtoNet`: prototype logits from its encoder;
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
                           type(learner).__name__, "pass learners from utils.meta or trained models")
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
    predictions (regression). ``source(B)`` returns stacked tasks (:func:`utils.meta.episode_source`,
    :func:`utils.meta.sinusoid_source`).

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
