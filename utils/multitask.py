"""Multi-task learning: a shared trunk with one head, one softmax and one loss per task.

Chapter 01 (§ Meta-learning vs transfer and multi-task learning) trains one on the glyph
alphabets — one task per meta-training alphabet, "which of this alphabet's characters is it?" —
to show what sets multi-task learning apart from one softmax over all classes (a *single* task)
and from meta-learning (judged on *new* tasks).

* :class:`MultiHeadClassifier` — ``features`` shared by all tasks, ``heads[t]`` for task ``t``;
* :func:`multitask_loss` — the mean over the batch of each row's cross-entropy under *its own*
  task's head (the sum of the per-task losses, weighted by how many rows each task has);
* :func:`fit_multitask` / :func:`evaluate_multitask` — train with Adam, score each task.
"""
from __future__ import annotations

import time

import torch
from torch import nn
from torch.nn import functional as F

from .errors import course_error
from .runtime import pick_device, synchronize
from .training import History

__all__ = ["MultiHeadClassifier", "multitask_loss", "fit_multitask", "evaluate_multitask"]


class MultiHeadClassifier(nn.Module):
    """A shared trunk ``features`` (inputs → ``(B, feature_dim)``) and one linear head per task.

    ``n_classes[t]`` is the number of classes of task ``t``; ``heads[t]`` maps the features to
    ``(B, n_classes[t])`` logits. Every task has its own softmax: a row of task ``t`` is scored
    only against task ``t``'s classes.

    Taught in chapter 01, § A real multi-task learner.
    """

    def __init__(self, features: nn.Module, feature_dim: int, n_classes):
        super().__init__()
        n_classes = list(n_classes)
        if not n_classes or any(int(n) != n or n < 2 for n in n_classes):
            raise course_error("n_classes", "one class count (an integer >= 2) per task, e.g. [20, 20, 18]",
                               repr(n_classes), "pass the number of classes of every task")
        self.features = features
        self.heads = nn.ModuleList(nn.Linear(feature_dim, int(n)) for n in n_classes)
        self.n_classes = [int(n) for n in n_classes]

    @property
    def n_tasks(self) -> int:
        return len(self.heads)

    def forward(self, x: torch.Tensor, task: int) -> torch.Tensor:
        """Logits of head ``task`` for every row of ``x``: ``(B, n_classes[task])``."""
        if isinstance(task, bool) or not isinstance(task, int) or not 0 <= task < self.n_tasks:
            raise course_error("task", f"a task index from 0 to {self.n_tasks - 1}", repr(task),
                               "pick one of the tasks the model has a head for")
        return self.heads[task](self.features(x))


def _check_rows(model: MultiHeadClassifier, y: torch.Tensor, task: torch.Tensor, x_len: int) -> None:
    if not (len(y) == len(task) == x_len):
        raise course_error("x, y, task", "one label and one task index per input",
                           f"{x_len} inputs, {len(y)} labels, {len(task)} task indices", "pass matching tensors")
    if len(task) and (int(task.min()) < 0 or int(task.max()) >= model.n_tasks):
        raise course_error("task", f"task indices from 0 to {model.n_tasks - 1}",
                           f"{int(task.min())} to {int(task.max())}", "number the tasks like the model's heads")
    limit = torch.tensor(model.n_classes, device=task.device)[task]
    if len(y) and (bool((y < 0).any()) or bool((y >= limit.to(y.device)).any())):
        raise course_error("y", "each label below the class count of its task", "a label out of range",
                           "label every row within its own task: 0 .. n_classes[task] - 1")


def multitask_loss(model: MultiHeadClassifier, x: torch.Tensor, y: torch.Tensor, task: torch.Tensor):
    """``(loss, correct)``: mean cross-entropy of every row under its own task's head, and the
    number of rows whose own head ranks the right class first. ``x`` ``(B, ...)``, ``y`` and
    ``task`` ``(B,)`` integer tensors (``y`` numbered within each task). The trunk runs once."""
    _check_rows(model, y, task, len(x))
    feats = model.features(x)
    total = feats.new_zeros(())
    correct = 0
    for t in torch.unique(task).tolist():
        rows = task == t
        logits = model.heads[t](feats[rows])
        total = total + F.cross_entropy(logits, y[rows], reduction="sum")
        correct += int((logits.argmax(1) == y[rows]).sum())
    return total / len(x), correct


def fit_multitask(model: MultiHeadClassifier, x: torch.Tensor, y: torch.Tensor, task: torch.Tensor, *,
                  epochs: int = 5, lr: float = 1e-3, batch_size: int = 32, device="auto",
                  seed: int = 0) -> History:
    """Train ``model`` on the rows of all tasks at once (shuffled together) with Adam on
    :func:`multitask_loss`; return a :class:`utils.training.History` (``train_acc``: each row
    judged by its own head).

    Taught in chapter 01, § A real multi-task learner.
    """
    device = pick_device(device)
    if int(epochs) != epochs or epochs < 0:
        raise course_error("epochs", "a non-negative integer", repr(epochs), "pass epochs >= 0")
    _check_rows(model, y, task, len(x))
    torch.manual_seed(seed)
    model.to(device)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    g = torch.Generator().manual_seed(seed)
    hist = History(device=str(device))
    for _ in range(int(epochs)):
        synchronize(device)
        t0 = time.perf_counter()
        model.train()
        order = torch.randperm(len(x), generator=g)
        tot_loss, tot_correct = 0.0, 0
        for i in range(0, len(x), batch_size):
            ix = order[i:i + batch_size]
            loss, correct = multitask_loss(model, x[ix].to(device), y[ix].to(device), task[ix].to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            tot_loss += float(loss.detach()) * len(ix)
            tot_correct += correct
        synchronize(device)
        hist.seconds.append(time.perf_counter() - t0)
        hist.train_loss.append(tot_loss / len(x))
        hist.train_acc.append(tot_correct / len(x))
    return hist


@torch.no_grad()
def evaluate_multitask(model: MultiHeadClassifier, x: torch.Tensor, y: torch.Tensor, task: torch.Tensor,
                       device="auto", batch_size: int = 512) -> dict[int, float]:
    """Accuracy of each task's head on that task's rows: ``{task index: fraction correct}``
    (tasks without rows are left out). Eval mode; the model's mode is restored afterwards.

    Taught in chapter 01, § A real multi-task learner.
    """
    device = pick_device(device)
    _check_rows(model, y, task, len(x))
    was_training = model.training
    model.to(device).eval()
    right = torch.zeros(model.n_tasks)
    count = torch.zeros(model.n_tasks)
    for i in range(0, len(x), batch_size):
        xb, yb, tb = x[i:i + batch_size].to(device), y[i:i + batch_size].to(device), task[i:i + batch_size]
        feats = model.features(xb)
        for t in torch.unique(tb).tolist():
            rows = (tb == t).to(device)
            right[t] += float((model.heads[t](feats[rows]).argmax(1) == yb[rows]).sum())
            count[t] += int(rows.sum())
    model.train(was_training)
    return {t: float(right[t] / count[t]) for t in range(model.n_tasks) if count[t] > 0}
