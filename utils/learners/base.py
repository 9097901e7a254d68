"""The learner protocol every learner of the course follows (issue 25: one estimator protocol).

:class:`Learner` is the public base class: ``meta_train(source, iterations, meta_batch, schedule=None)``
(learn from a stream of task batches), ``evaluate_task(support_x, support_y, query_x, query_y)``
(adapt to ONE new task; its query ``(loss, accuracy)``), ``state_dict()`` / ``load_state_dict()``
(what checkpoints store) and ``variant(...)``. Subclasses define ``meta_loss(sx, sy, qx, qy)``.
:func:`utils.learners.evaluate.meta_evaluate` reports the mean and 95% CI over many test tasks.

A *source* (:data:`utils.vocab.TaskSource`) is any callable ``source(B)`` returning an object with stacked
``support_x``, ``support_y``, ``query_x``, ``query_y`` (a :class:`utils.episodes.Episode` batch or a
:class:`utils.tasks.TaskBatch`); see :func:`episode_source` and :func:`sinusoid_source`.
"""
from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

import torch
from tqdm.auto import tqdm

from ..cache import cpu_copy
from ..distributed import current_world
from ..errors import course_error
from ..vocab import TaskSource, split_batch
from .distributed import mean_over_ranks, ranks_in_step, resume, save_progress
from ..runtime import synchronize

__all__ = ["Learner", "MetaHistory", "episode_source", "sinusoid_source"]

# ----------------------------------------------------------------------------- sources
def episode_source(sampler) -> TaskSource:
    """Wrap an :class:`~utils.episodes.EpisodeSampler` as a source: ``source(B)`` → stacked episodes.

    Taught in chapter 01, § Learner and meta-learner.
    """
    return sampler.sample_batch


def sinusoid_source(family, k_support: int, k_query: int = 10, seed: int = 0) -> TaskSource:
    """Wrap a :class:`~utils.tasks.SinusoidFamily` as a source of ``TaskBatch``es (seeded).

    Taught in chapter 02, § 1 · The sinusoid family, and what "all tasks at once" learns.
    """
    g = torch.Generator().manual_seed(seed)
    return lambda batch: family.sample(batch, k_support, k_query, generator=g)


@dataclass
class MetaHistory:
    """Per-iteration meta-training figures: query loss, query accuracy (``nan`` for regression),
    cumulative wall seconds."""
    loss: list = field(default_factory=list)
    accuracy: list = field(default_factory=list)
    seconds: list = field(default_factory=list)

    @property
    def total_seconds(self) -> float:
        return self.seconds[-1] if self.seconds else 0.0


class Learner:
    """The public base of every learner: the meta-training loop, the state for checkpoints, variants.

    Subclasses set ``device``, ``model``, ``optimizer`` and ``history`` and define
    ``meta_loss(sx, sy, qx, qy) -> (loss, accuracy)`` on a stacked batch of tasks and
    ``evaluate_task(support_x, support_y, query_x, query_y, steps=None) -> (loss, accuracy)`` on one task.

    The adapt step: ``evaluate_task`` adapts to the support set and scores the query set, for every
    learner. Learners whose adaptation is gradient steps (the MAML family) also expose it in two
    halves, ``adapt(support_x, support_y, steps=None) -> params`` and ``predict(params, x)``;
    metric and black-box learners adapt inside one forward pass (``logits(sx, sy, qx, n_way)``;
    ProtoMAML and matching networks also ``embed(sx, qx)``).

    Taught in chapter 01, § Learner and meta-learner.
    """

    device: torch.device
    optimizer: torch.optim.Optimizer
    _STATE_KEYS = ("model", "inner_lr", "optimizer", "history")

    #: Whether the tasks of a meta-batch pass through the network together (their batch norm then
    #: shares statistics over the meta-batch, synced over ranks); the MAML family adapts task by task.
    TASKS_SHARE_BATCH = True

    def meta_train(self, source: TaskSource, iterations: int, meta_batch: int = 4, progress: bool = True,
                   time_budget_s: float | None = None,
                   schedule: Callable[[int], float] | None = None, *, world=None,
                   checkpoint: str | None = None, checkpoint_every: int = 100) -> MetaHistory:
        """Run ``iterations`` outer steps on batches of ``meta_batch`` tasks from ``source``.

        Stops early once ``time_budget_s`` seconds have passed (if given). ``schedule(i)`` (if
        given, e.g. :func:`utils.training.cosine_schedule`) multiplies the outer optimizer's step sizes, as they
        are when called, for outer step ``i = 0 .. iterations - 1``; they are restored afterwards.
        Returns a :class:`MetaHistory` (appended to the learner's ``history``).

        ``world`` (a :class:`utils.distributed.World`; default :func:`utils.distributed.current_world`,
        ``None`` outside a torchrun launch): with several ranks, every rank draws the same meta-batch
        from ``source`` (seeded alike), keeps its share of the tasks and the ranks average their
        gradients before each outer step (:mod:`utils.learners.distributed`): the one-process run,
        spread over processes. ``checkpoint``: a name in ``data/checkpoints`` (``$COURSE_CHECKPOINT_DIR``)
        that rank 0 writes every ``checkpoint_every`` steps and at the end; when it exists, training
        resumes from it (with any number of ranks) and ``iterations`` counts the whole run.

        Taught in chapter 02, § 2 · Five ways to meet a new task.
        """
        world = current_world() if world is None else world
        share = world.share(meta_batch) if world is not None and world.distributed else None
        self.history = getattr(self, "history", None) or MetaHistory()
        first = resume(self, checkpoint, source, meta_batch) if checkpoint else 0
        hist = self.history
        offset = hist.total_seconds
        groups = self.optimizer.param_groups
        base = [g["lr"] for g in groups]
        start = time.perf_counter()
        show = progress and (world is None or world.main)
        try:
            with ranks_in_step(self, world):
                for i in tqdm(range(first, iterations), desc=type(self).__name__, disable=not show, leave=False):
                    if schedule is not None:
                        factor = schedule(i)
                        for g, lr0 in zip(groups, base):
                            g["lr"] = lr0 * factor
                    batch = split_batch(source(meta_batch), self.device)
                    if share is not None:
                        world.step, batch = i, tuple(t[share] for t in batch)
                    loss, acc = self.meta_step(batch)
                    over = time_budget_s is not None and time.perf_counter() - start > time_budget_s
                    if share is not None:
                        loss, acc, over = mean_over_ranks(world, loss, acc, over)
                    hist.loss.append(loss)
                    hist.accuracy.append(acc)
                    hist.seconds.append(offset + time.perf_counter() - start)
                    if checkpoint and (over or (i + 1) % checkpoint_every == 0 or i + 1 == iterations):
                        save_progress(self, checkpoint, i + 1, iterations, meta_batch, world)
                    if over:
                        break
        finally:
            for g, lr0 in zip(groups, base):
                g["lr"] = lr0
        synchronize(self.device)
        return hist

    def state_dict(self, resume: bool = True) -> dict:
        """What restores this learner, as CPU copies: ``"model"`` (the network's state dict) and, for
        Meta-SGD, ``"inner_lr"`` (the learned step sizes); with ``resume`` also ``"optimizer"`` and
        ``"history"``, so meta-training can continue where it stopped. ``resume=False`` keeps what
        adaptation and evaluation need (the format of ``data/checkpoints/``).

        Taught in chapter 02, § 2 · Five ways to meet a new task.
        """
        state = {"model": cpu_copy(self.model.state_dict())}
        lr = getattr(self, "inner_lr", None)
        if isinstance(lr, dict):
            state["inner_lr"] = cpu_copy(lr)
        if resume:
            state["optimizer"] = cpu_copy(self.optimizer.state_dict())
            state["history"] = asdict(self.history) if self.history is not None else None
        return state

    def load_state_dict(self, state: dict) -> None:
        """Inverse of :meth:`state_dict` (in place, onto the learner's device); the optimizer and
        the history are restored when ``state`` holds them."""
        if not isinstance(state, dict) or "model" not in state or set(state) - set(self._STATE_KEYS):
            found = sorted(state) if isinstance(state, dict) else type(state).__name__
            raise course_error("state", f"a dict with 'model' and optionally {list(self._STATE_KEYS[1:])}",
                               repr(found), "pass what learner.state_dict() returned")
        self.model.load_state_dict(state["model"])
        if "inner_lr" in state:
            if not isinstance(getattr(self, "inner_lr", None), dict):
                raise course_error("state['inner_lr']", "a learner that learns its step sizes (MetaSGD)",
                                   type(self).__name__, "load it into MetaSGD(...) / MAML(learn_inner_lr=True)")
            with torch.no_grad():
                for k, v in state["inner_lr"].items():
                    self.inner_lr[k].copy_(v)
        if state.get("optimizer") is not None:
            self.optimizer.load_state_dict(state["optimizer"])
        if "history" in state:
            self.history = MetaHistory(**state["history"]) if state["history"] is not None else None

    #: What :meth:`variant` may change (the constructor's argument names).
    VARIANT_SETTINGS: tuple = ()

    def variant(self, *, copy_model: bool = False, **changes) -> "Learner":
        """A new learner of the same kind with some of ``VARIANT_SETTINGS`` changed (as the
        constructor takes them), e.g. ``maml.variant(first_order=True, adapt="head")``.

        * ``copy_model=False`` (default): the network and (Meta-SGD) the learned step sizes are
          SHARED: a second view on the same trained θ; meta-training it changes the original too.
        * ``copy_model=True``: they are deep copies; nothing is shared.

        Never shared: settings, adapted names, history (none yet) and the outer optimizer (a fresh
        one of the same type and hyperparameters over the variant's tensors, without moment estimates).

        Taught in chapter 02, § 9 · What second-order gradients cost, and what first-order and ANIL trade away.
        """
        unknown = sorted(set(changes) - set(self.VARIANT_SETTINGS))
        if unknown:
            raise course_error(f"{type(self).__name__}.variant(...)", f"settings among {list(self.VARIANT_SETTINGS)}",
                               repr(unknown), "build a new learner for anything else")
        new = copy.copy(self)
        new.model = copy.deepcopy(self.model) if copy_model else self.model
        new.history = None
        new._vary(changes, copy_model)
        mine = new._tensors()   # the fresh optimizer: same groups and hyperparameters, the variant's tensors
        swap = {id(t): mine[k] for k, t in self._tensors().items()}
        groups = [{**{k: v for k, v in g.items() if k != "params"}, "params": [swap[id(p)] for p in g["params"]]}
                  for g in self.optimizer.param_groups]
        new.optimizer = type(self.optimizer)(groups, **self.optimizer.defaults)
        return new

    def _tensors(self) -> dict:
        """Every tensor the outer optimizer may update, by a stable name."""
        return {f"model.{k}": p for k, p in self.model.named_parameters()}

    def _vary(self, changes: dict, copy_model: bool) -> None:
        """Apply ``changes`` to a fresh shallow copy (learners with settings override this)."""

    def evaluate_task(self, support_x, support_y, query_x, query_y, steps: int | None = None):
        """Adapt to ONE task's support set; its query ``(loss, accuracy)`` as floats (subclasses)."""
        raise NotImplementedError(f"{type(self).__name__} must define evaluate_task")

    def meta_step(self, batch) -> tuple[float, float]:
        """One outer step on a stacked batch; its ``(loss, accuracy)``."""
        self.train_mode(True)
        loss, acc = self.meta_loss(*batch)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return float(loss.detach()), float(acc)

    def train_mode(self, flag: bool) -> None:
        for m in self.modules():
            m.train(flag)

    def modules(self):
        return [self.model]
