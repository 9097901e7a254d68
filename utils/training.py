"""Supervised training: ``fit`` and ``evaluate``, device-agnostic, optional AMP, tqdm progress;
and :func:`cosine_schedule`, the step-size schedule ``learner.meta_train(..., schedule=...)`` takes.

Data is passed as ``(x, y)`` tensor pairs (or anything with ``.x``/``.y``, like
:class:`utils.digits.Split`); the loops batch it themselves so a chapter never writes a
training loop again. Given a seed, training on the CPU is deterministic.
"""
from __future__ import annotations

import bisect
import contextlib
import math
import time
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from .distributed import averaging_gradients, current_world, synced_batch_norm
from .errors import course_error
from .runtime import pick_device, synchronize
from .vocab import TaskSource

__all__ = ["cosine_schedule", "meta_train_cosine", "History", "evaluate", "fit", "predict_logits"]


def cosine_schedule(total: int, floor: float = 0.05, chunks: int = 20) -> Callable[[int], float]:
    """Outer step-size factor for iteration ``i`` of ``total``: a cosine from 1 down towards ``floor``,
    held constant over ``chunks`` equal pieces (pass it as ``meta_train(..., schedule=...)``).

    Piece ``j`` (iterations ``round(j * total / chunks)`` up to the next bound) gets
    ``floor + (1 - floor) * (1 + cos(pi * j / chunks)) / 2``; the first piece keeps the full step.

    Taught in chapter 02, § 2 · Five ways to meet a new task.
    """
    if isinstance(total, bool) or int(total) != total or total < 1:
        raise course_error("iterations", "a positive integer", repr(total), "pass e.g. 1000")
    if not 0 <= floor <= 1:
        raise course_error("floor", "a fraction in [0, 1]", repr(floor), "pass e.g. 0.05")
    chunks = max(1, min(int(chunks), int(total)))
    bounds = [round(j * total / chunks) for j in range(chunks + 1)]

    def factor(i: int) -> float:
        j = min(max(bisect.bisect_right(bounds, i) - 1, 0), chunks - 1)
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * j / chunks))

    return factor


@dataclass
class History:
    """Per-epoch metrics of a :func:`fit` run (lists of equal length, one entry per epoch).

    ``train_loss``/``val_loss`` are mean losses, ``train_acc``/``val_acc`` fractions in [0, 1]
    (``nan`` for regression), ``seconds`` wall time per epoch.
    """
    train_loss: list = field(default_factory=list)
    train_acc: list = field(default_factory=list)
    val_loss: list = field(default_factory=list)
    val_acc: list = field(default_factory=list)
    seconds: list = field(default_factory=list)
    device: str = "cpu"
    amp: bool = False

    def as_dict(self) -> dict:
        return {k: list(v) if isinstance(v, list) else v for k, v in self.__dict__.items()}

    @property
    def total_seconds(self) -> float:
        return float(sum(self.seconds))


def _as_pair(data, name):
    if data is None:
        return None
    if hasattr(data, "x") and hasattr(data, "y"):
        data = (data.x, data.y)
    if not (isinstance(data, (tuple, list)) and len(data) == 2):
        raise course_error(name, "an (x, y) pair of tensors or an object with .x and .y",
                           type(data).__name__, "pass e.g. (x_train, y_train)")
    x, y = data
    if len(x) != len(y):
        raise course_error(name, "as many targets as inputs", f"{len(x)} inputs, {len(y)} targets",
                           "pass matching tensors")
    return x, y


def _metrics(logits, y, loss_fn):
    loss = loss_fn(logits, y)
    if y.dtype in (torch.int64, torch.int32) and logits.dim() == 2:
        acc = (logits.argmax(1) == y).float().sum()
    else:
        acc = torch.tensor(float("nan"))
    return loss, acc


def _autocast(device: torch.device, amp: bool):
    if amp and device.type == "cuda":
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.autocast("cuda", dtype=dtype)
    return torch.autocast("cpu", enabled=False)


@torch.no_grad()
def evaluate(model: nn.Module, data, device="auto", batch_size: int = 512,
             loss_fn=F.cross_entropy, amp: bool = False) -> dict:
    """Mean loss and accuracy of ``model`` on ``data`` in eval mode.

    Returns ``{"loss": float, "accuracy": float}`` (accuracy ``nan`` for regression).
    """
    device = pick_device(device)
    x, y = _as_pair(data, "data")
    was_training = model.training
    model.to(device).eval()
    total_loss, total_acc, n = 0.0, 0.0, 0
    for i in range(0, len(x), batch_size):
        xb, yb = x[i:i + batch_size].to(device), y[i:i + batch_size].to(device)
        with _autocast(device, amp):
            logits = model(xb)
        loss, acc = _metrics(logits.float(), yb, loss_fn)
        total_loss += float(loss) * len(xb)
        total_acc += float(acc)
        n += len(xb)
    model.train(was_training)
    return {"loss": total_loss / n, "accuracy": total_acc / n}


def fit(model: nn.Module, train, val=None, *, epochs: int = 10, lr: float = 1e-3,
        batch_size: int = 64, weight_decay: float = 0.0, optimizer: str = "adam",
        loss_fn=F.cross_entropy, device="auto", amp: bool = False, seed: int | None = 0,
        progress: bool = True, batch_loss=None, world=None) -> History:
    """Train ``model`` on ``train`` for ``epochs`` epochs; return a :class:`History`.

    Args:
        train, val: ``(x, y)`` pairs; ``x`` ``(M, ...)``, ``y`` ``(M,)`` class ids or ``(M, d)`` targets.
        optimizer: ``"adam"`` or ``"sgd"`` (momentum 0.9).
        loss_fn: ``loss_fn(logits, y) -> scalar``; the default is cross-entropy.
        batch_loss: optional ``batch_loss(model, xb, yb, logits) -> scalar`` that replaces
            ``loss_fn`` for training (e.g. a distillation loss that needs the batch's inputs).
        amp: mixed precision (bf16, or fp16 with a gradient scaler) on CUDA; ignored on CPU.
        seed: seeds the shuffling and any dropout; ``None`` leaves the global RNG alone.
        progress: show a ``tqdm.auto`` bar over epochs.
        world: a :class:`utils.distributed.World` (default: the current one, ``None`` outside a torchrun
            launch): with several ranks each batch is split over them (loss weighted by the share's size),
            gradients are averaged and batch norm uses every rank's batch: the one-process run, spread.
    """
    device = pick_device(device)
    train = _as_pair(train, "train")
    val = _as_pair(val, "val")
    if int(epochs) != epochs or epochs < 0:
        raise course_error("epochs", "a non-negative integer", repr(epochs), "pass epochs >= 0")
    if seed is not None:
        torch.manual_seed(seed)
    model.to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    if optimizer == "adam":
        opt = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    elif optimizer == "sgd":
        opt = torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=weight_decay)
    else:
        raise course_error("optimizer", "'adam' or 'sgd'", repr(optimizer), "pick one of the two")
    use_amp = amp and device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp and not torch.cuda.is_bf16_supported())
    hist = History(device=str(device), amp=use_amp)
    x, y = train
    g = torch.Generator().manual_seed(seed if seed is not None else torch.seed() % 2**31)
    world = current_world() if world is None else world
    ranks = world if world is not None and world.distributed else None
    spread = contextlib.ExitStack()
    if ranks is not None:
        spread.enter_context(averaging_gradients(opt, ranks))
        spread.enter_context(synced_batch_norm(model, ranks))
    with spread:
        quiet = not progress or (ranks is not None and not ranks.main)
        for _ in tqdm(range(epochs), desc="fit", disable=quiet, leave=False):
            synchronize(device)
            t0 = time.perf_counter()
            model.train()
            order = torch.randperm(len(x), generator=g)
            tot_loss, tot_acc, n = 0.0, 0.0, 0
            for i in range(0, len(x), batch_size):
                ix = order[i:i + batch_size]
                weight = 1.0
                if ranks is not None:   # this rank's share; the weight makes the averaged gradient the batch's
                    share = ix.tensor_split(ranks.size)[ranks.rank]
                    weight, ix = len(share) * ranks.size / len(ix), share
                xb, yb = x[ix].to(device), y[ix].to(device)
                with _autocast(device, use_amp):
                    logits = model(xb)
                    loss = batch_loss(model, xb, yb, logits) if batch_loss else loss_fn(logits, yb)
                opt.zero_grad(set_to_none=True)
                scaler.scale(loss * weight if ranks is not None else loss).backward()
                scaler.step(opt)
                scaler.update()
                _, acc = _metrics(logits.detach().float(), yb, loss_fn)
                tot_loss += float(loss.detach()) * len(ix)
                tot_acc += float(acc)
                n += len(ix)
            if ranks is not None:   # the epoch's sums over every rank's share
                totals = torch.tensor([tot_loss, tot_acc, n], dtype=torch.float64, device=device)
                tot_loss, tot_acc, n = ranks.all_reduce(totals, "fit's epoch totals").tolist()
            synchronize(device)
            hist.seconds.append(time.perf_counter() - t0)
            hist.train_loss.append(tot_loss / n)
            hist.train_acc.append(tot_acc / n)
            if val is not None:
                m = evaluate(model, val, device, loss_fn=loss_fn, amp=use_amp)
                hist.val_loss.append(m["loss"])
                hist.val_acc.append(m["accuracy"])
    return hist


@torch.no_grad()
def predict_logits(model: nn.Module, x: torch.Tensor, device="auto", batch_size: int = 512) -> torch.Tensor:
    """Logits of ``model`` on ``x`` in eval mode, returned on the CPU: ``(M, n_classes)``."""
    device = pick_device(device)
    was_training = model.training
    model.to(device).eval()
    out = torch.cat([model(x[i:i + batch_size].to(device)).float().cpu()
                     for i in range(0, len(x), batch_size)])
    model.train(was_training)
    return out


def meta_train_cosine(learner, source: TaskSource, iterations: int, meta_batch: int, floor: float = 0.05,
                      chunks: int = 20, progress: bool = False):
    """``learner.meta_train`` with the outer step size decayed along a cosine
    (:func:`utils.training.cosine_schedule`: ``chunks`` pieces, from the full step down to ``floor``
    of it). Works for every learner with an ``optimizer`` (Adam or SGD). Returns the learner's history.

    Taught in chapter 02, § 2 · Five ways to meet a new task.
    """
    return learner.meta_train(source, iterations, meta_batch, progress=progress,
                              schedule=cosine_schedule(iterations, floor, chunks))
