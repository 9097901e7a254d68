"""Meta-evaluation, in one place: adapt a meta-learner to fresh test tasks and report the mean
query figure with its 95 % confidence interval (chapter 02, "How to evaluate a meta-learner").

* :func:`meta_evaluate` — any learner of :mod:`utils.learners` (and of chapter 03's families), one
  task at a time, through ``learner.evaluate_task``.
* :func:`evaluate_vectorized` — the same figure for the MAML family, a batch of test tasks at a
  time with ``torch.func.vmap`` (chapter 02, "Vectorizing over tasks").
* :mod:`utils.learners.ensemble` — adapt several learners to the same tasks and fuse their
  adapted predictions (chapter 06, "Ensembles of meta-learners").

The figure is query accuracy for classification and query MSE for regression. One task's figure
means little: the CI says how much the mean would move with other test tasks drawn from the same
family; it does not cover the variation between training runs (see :func:`utils.stats.seed_spread`).
"""
from __future__ import annotations

import torch
from tqdm.auto import tqdm

from . import inner_loop as Fn
from .maml import MAML
from ..errors import course_error
from ..results import MetaResult
from ..stats import mean_ci95
from ..vocab import TaskSource, split_batch

__all__ = ["meta_evaluate", "evaluate_vectorized"]


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

    For a :class:`~utils.learners.maml.MAML` learner (any of its variants) every task is adapted exactly
    as ``learner.evaluate_task`` does (``steps`` inner steps, default ``learner.eval_steps``,
    batch statistics in BatchNorm) but ``batch`` tasks at a time. Accuracy for classification,
    MSE for regression. Other learners are handed to :func:`utils.learners.evaluate.meta_evaluate`.

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
            losses, accs = Fn.vmap_meta_loss(learner.model, (params, buffers), (sx, sy, qx, qy),
                                             **learner.inner_settings(steps, constant=True),
                                             chunk_size=learner.chunk_size)
            if qy.dtype in (torch.int64, torch.int32):
                values += accs.tolist()
            else:
                metric = "mse"
                values += losses.tolist()
            done += b
    mean, half = mean_ci95(values)
    return MetaResult(metric, mean, half, values)
