"""Meta-learners behind one small interface.

Every learner here offers ``meta_train(source, iterations, meta_batch, schedule=None)`` (learn from a
stream of task batches), ``evaluate_task(support_x, support_y, query_x, query_y)`` (adapt to ONE new
task; its query ``(loss, accuracy)``), ``state_dict()`` / ``load_state_dict()`` and ``variant(...)``;
:func:`utils.meta_eval.meta_evaluate` reports the mean and 95% CI over many test tasks.

A *source* (:data:`utils.vocab.TaskSource`) is any callable ``source(B)`` returning an object with stacked ``support_x``,
``support_y``, ``query_x``, ``query_y`` (a :class:`utils.episodes.Episode` batch or a
:class:`utils.tasks.TaskBatch`); see :func:`episode_source` and :func:`sinusoid_source`.

Learners: :class:`MAML` (second order), first-order MAML (``MAML(first_order=True)``),
:class:`ANIL`, :class:`MetaSGD`, :class:`Reptile`, :class:`ProtoNet` and the
:class:`FineTuneBaseline` (pre-train on all meta-training data, fine-tune on the support set).
"""
from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

import torch
from torch import nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from . import folded
from . import functional as Fn
from .vocab import TaskSource, split_batch
from .cache import cpu_copy
from .errors import course_error
from .models import use_batch_statistics
from .results import MetaResult
from .runtime import pick_device, synchronize, threads_for, torch_threads


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


class _Learner:
    """Shared meta-training loop and state; subclasses define ``meta_loss(batch) -> (loss, acc)``."""

    device: torch.device
    optimizer: torch.optim.Optimizer
    _STATE_KEYS = ("model", "inner_lr", "optimizer", "history")

    def meta_train(self, source: TaskSource, iterations: int, meta_batch: int = 4, progress: bool = True,
                   time_budget_s: float | None = None,
                   schedule: Callable[[int], float] | None = None) -> MetaHistory:
        """Run ``iterations`` outer steps on batches of ``meta_batch`` tasks from ``source``.

        Stops early once ``time_budget_s`` seconds have passed (if given). ``schedule(i)`` (if
        given, e.g. :func:`utils.training.cosine_schedule`) multiplies the outer optimizer's step sizes, as they
        are when called, for outer step ``i = 0 .. iterations - 1``; they are restored afterwards.
        Returns a :class:`MetaHistory` (appended to the learner's ``history``).

        Taught in chapter 02, § 2 · Five ways to meet a new task.
        """
        hist = getattr(self, "history", None) or MetaHistory()
        self.history = hist
        offset = hist.total_seconds
        groups = self.optimizer.param_groups
        base = [g["lr"] for g in groups]
        start = time.perf_counter()
        try:
            for i in tqdm(range(iterations), desc=type(self).__name__, disable=not progress, leave=False):
                if schedule is not None:
                    factor = schedule(i)
                    for g, lr0 in zip(groups, base):
                        g["lr"] = lr0 * factor
                batch = split_batch(source(meta_batch), self.device)
                loss, acc = self.meta_step(batch)
                hist.loss.append(loss)
                hist.accuracy.append(acc)
                hist.seconds.append(offset + time.perf_counter() - start)
                if time_budget_s is not None and time.perf_counter() - start > time_budget_s:
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

    def variant(self, *, copy_model: bool = False, **changes) -> "_Learner":
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

    def meta_step(self, batch) -> tuple[float, float]:
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


# ----------------------------------------------------------------------------- MAML family
def _adapt_names(model: nn.Module, adapt: str) -> list[str]:
    """Names of the parameters the inner loop moves: ``"all"``, or ``"head"`` (``head.*`` only: ANIL)."""
    names = [k for k, _ in model.named_parameters()]
    if adapt == "all":
        return names
    if adapt == "head":
        head = [k for k in names if k.startswith("head.")]
        if not head:
            raise course_error("adapt='head'", "a model with parameters named 'head.*'",
                               f"names {names[:4]}...", "use utils.models.Classifier or adapt='all'")
        return head
    raise course_error("adapt", "'all' or 'head'", repr(adapt), "pick one")


class MAML(_Learner):
    """Model-Agnostic Meta-Learning (Finn et al., 2017), vectorized over tasks with ``torch.func``.

    Args:
        model: any module; BatchNorm layers are replaced by :class:`utils.models.BatchStatNorm`
            (batch statistics, no running stats), as ``vmap`` requires and as MAML's reference
            code does, and with second derivatives that are right under ``vmap``.
        inner_lr: step size α of the inner loop.
        inner_steps: inner steps during meta-training; ``eval_steps`` at test time (default: same).
        first_order: drop second-order terms (first-order MAML, "FOMAML").
        adapt: ``"all"`` parameters, or ``"head"`` (only names starting with ``head.``: ANIL).
        learn_inner_lr: learn one step size per parameter entry (Meta-SGD), initialised to ``inner_lr``.
        outer_lr: Adam step size of the outer loop.
        chunk_size: tasks per ``vmap`` chunk (``None``: the whole meta-batch at once).
        vectorize: ``False`` uses the per-task Python loop (the reference; slower). ``True``
            folds the tasks into channel groups (:mod:`utils.folded`) for networks of conv, norm,
            pooling and linear layers, and uses ``torch.func.vmap`` for any other model.
        threads: CPU threads for a meta-step; ``None`` lets :func:`utils.runtime.threads_for`
            choose from the step's size and the cores other processes leave free
            (``COURSE_THREADS`` overrides it).

    Taught in chapter 02, § 2 · Five ways to meet a new task.
    """

    def __init__(self, model: nn.Module, inner_lr: float = 0.4, inner_steps: int = 1,
                 eval_steps: int | None = None, first_order: bool = False, adapt: str = "all",
                 learn_inner_lr: bool = False, outer_lr: float = 1e-3, chunk_size: int | None = None,
                 vectorize: bool = True, device="auto", threads: int | None = None):
        self.device = pick_device(device)
        self.threads, self._thread_choice = threads, (None, -1e9)
        use_batch_statistics(model)
        self.model = model.to(self.device)
        self.inner_steps, self.first_order = int(inner_steps), bool(first_order)
        self.eval_steps = int(eval_steps if eval_steps is not None else inner_steps)
        self.chunk_size, self.vectorize = chunk_size, vectorize
        self.adapt_names = _adapt_names(model, adapt)
        meta_params = list(model.parameters())
        if learn_inner_lr:
            self.inner_lr = {k: torch.full_like(p, inner_lr, requires_grad=True)
                             for k, p in model.named_parameters() if k in self.adapt_names}
            meta_params += list(self.inner_lr.values())
        else:
            self.inner_lr = float(inner_lr)
        self.optimizer = torch.optim.Adam(meta_params, lr=outer_lr)
        self.history = None

    VARIANT_SETTINGS = ("first_order", "adapt", "inner_steps", "eval_steps", "chunk_size", "vectorize")

    def _tensors(self) -> dict:
        out = super()._tensors()
        if isinstance(self.inner_lr, dict):
            out.update({f"inner_lr.{k}": v for k, v in self.inner_lr.items()})
        return out

    def _vary(self, changes: dict, copy_model: bool) -> None:
        if isinstance(self.inner_lr, dict):   # Meta-SGD's step sizes: shared like the network, or copied
            self.inner_lr = ({k: v.detach().clone().requires_grad_(True) for k, v in self.inner_lr.items()}
                             if copy_model else dict(self.inner_lr))
        self.adapt_names = (_adapt_names(self.model, changes["adapt"]) if "adapt" in changes
                            else list(self.adapt_names))
        self.first_order = bool(changes.get("first_order", self.first_order))
        for key in ("inner_steps", "eval_steps"):
            if key in changes:
                setattr(self, key, int(changes[key]))
        for key in ("chunk_size", "vectorize"):
            if key in changes:
                setattr(self, key, changes[key])

    def _params(self):
        return Fn.model_params(self.model)

    def meta_loss(self, sx, sy, qx, qy):
        """Mean query loss after inner adaptation over a batch of tasks (the meta-objective)."""
        params, buffers = self._params()
        if self.vectorize and folded.supports(self.model):
            losses, accs = folded.folded_meta_loss(self.model, params, sx, sy, qx, qy, self.inner_steps,
                                                   self.inner_lr, self.first_order, self.adapt_names,
                                                   self.chunk_size)
            return losses.mean(), accs.mean()
        fn = Fn.vmap_meta_loss if self.vectorize else Fn.loop_meta_loss
        kw = dict(chunk_size=self.chunk_size) if self.vectorize else {}
        losses, accs = fn(self.model, params, buffers, sx, sy, qx, qy, self.inner_steps,
                          self.inner_lr, self.first_order, self.adapt_names, **kw)
        return losses.mean(), accs.mean()

    def meta_step(self, batch) -> tuple[float, float]:
        """One outer step, on the CPU threads :meth:`step_threads` chooses."""
        with torch_threads(self.step_threads(batch)):
            return super().meta_step(batch)

    def step_threads(self, batch) -> int:
        """CPU threads for a meta-step on ``batch`` (re-decided at most every 5 s; see ``threads``)."""
        if self.device.type != "cpu":
            return torch.get_num_threads()
        choice, when = self._thread_choice
        if choice is None or time.perf_counter() - when > 5.0:
            sx, _, qx, _ = batch
            # a lower bound on the step's FLOPs, from shapes alone (no operator is dispatched):
            # 2 per parameter and example, forward + backward (x3), support and query passes
            n_params = sum(p.numel() for p in self.model.parameters())
            work = 6 * n_params * sx.shape[0] * (sx.shape[1] * self.inner_steps + qx.shape[1])
            choice = threads_for(work, self.threads)
            self._thread_choice = (choice, time.perf_counter())
        return choice

    def adapt(self, support_x, support_y, steps: int | None = None) -> Fn.Params:
        """Adapted parameters for one task (no graph kept)."""
        params, buffers = self._params()
        steps = self.eval_steps if steps is None else steps
        with torch.no_grad():
            fast = Fn.adapt(self.model, Fn.detached(params), buffers,
                            support_x.to(self.device), support_y.to(self.device), steps,
                            self.inner_step_sizes(), True, self.adapt_names)
        return fast

    def predict(self, params: Fn.Params, x: torch.Tensor) -> torch.Tensor:
        """Outputs of the model with (adapted) ``params`` on inputs ``x``."""
        with torch.no_grad():
            return Fn.forward(self.model, params, self._params()[1], x.to(self.device))

    def evaluate_task(self, support_x, support_y, query_x, query_y, steps: int | None = None):
        """Adapt on the support set, return query ``(loss, accuracy)`` as floats."""
        self.train_mode(True)  # batch statistics, as in meta-training
        fast = self.adapt(support_x, support_y, steps)
        loss, acc = Fn.loss_and_accuracy(self.predict(fast, query_x), query_y.to(self.device))
        return float(loss), float(acc)

    def inner_step_sizes(self) -> float | Fn.Params:
        """The inner step size α as a constant for adaptation at test time: a float, or (Meta-SGD)
        the learned per-parameter tensors, detached."""
        return Fn.detached(self.inner_lr) if isinstance(self.inner_lr, dict) else float(self.inner_lr)


def ANIL(model: nn.Module, **kwargs) -> MAML:
    """Almost No Inner Loop (Raghu et al., 2020): MAML that adapts only the linear head.

    Taught in chapter 02, § 9 · What second-order gradients cost, and what first-order and ANIL trade away.
    """
    return MAML(model, adapt="head", **kwargs)


def MetaSGD(model: nn.Module, **kwargs) -> MAML:
    """Meta-SGD (Li et al., 2017): MAML that also learns a step size for every parameter entry.

    Taught in chapter 02, § 8 · Few-shot classification on glyphs.
    """
    return MAML(model, learn_inner_lr=True, **kwargs)


class Reptile(MAML):
    """Reptile (Nichol et al., 2018): run SGD on each task, move θ towards the adapted weights.

    The outer "gradient" is ``θ - mean_i φ_i`` fed to the outer optimizer (SGD with
    ``outer_lr`` as Reptile's ε by default). Inner loops are vectorized over tasks like MAML's.
    Reptile adapts on the support and query sets together during meta-training.

    Taught in chapter 02, § 2 · Five ways to meet a new task.
    """

    def __init__(self, model: nn.Module, inner_lr: float = 0.02, inner_steps: int = 5,
                 outer_lr: float = 0.1, outer_optimizer: str = "sgd", **kwargs):
        super().__init__(model, inner_lr=inner_lr, inner_steps=inner_steps, outer_lr=outer_lr,
                         first_order=True, **kwargs)
        if outer_optimizer == "sgd":
            self.optimizer = torch.optim.SGD(self.model.parameters(), lr=outer_lr)

    def meta_step(self, batch):
        sx, sy, qx, qy = batch
        x, y = torch.cat([sx, qx], 1), torch.cat([sy, qy], 1)
        params, buffers = self._params()
        detached = Fn.detached(params)
        self.train_mode(True)

        def one_task(xt, yt):
            fast = Fn.adapt(self.model, detached, buffers, xt, yt, self.inner_steps,
                            self.inner_lr, True, self.adapt_names)
            return fast, Fn.loss_and_accuracy(Fn.forward(self.model, fast, buffers, xt), yt)

        with torch.no_grad():
            fast, (loss, acc) = torch.func.vmap(one_task, randomness="different",
                                                chunk_size=self.chunk_size)(x, y)
        self.optimizer.zero_grad(set_to_none=True)
        for k, p in params.items():
            p.grad = p.detach() - fast[k].mean(0)
        self.optimizer.step()
        return float(loss.mean()), float(acc.mean())


# ----------------------------------------------------------------------------- metric learning
def prototypes(support_emb: torch.Tensor, support_y: torch.Tensor, n_way: int) -> torch.Tensor:
    """Class means of the support embeddings: ``(N*K, D)`` and labels ``(N*K,)`` → ``(N, D)``.

    Taught in chapter 02, § 8 · Few-shot classification on glyphs.
    """
    one_hot = F.one_hot(support_y, n_way).to(support_emb.dtype)  # (N*K, N)
    return (one_hot.T @ support_emb) / one_hot.sum(0).clamp_min(1).unsqueeze(1)


def protonet_logits(support_emb, support_y, query_emb, n_way: int) -> torch.Tensor:
    """Prototypical-network logits: negative squared Euclidean distance of each query embedding
    ``(M, D)`` to each class prototype → ``(M, N)``.

    Taught in chapter 01, § Everything is a mapping.
    """
    protos = prototypes(support_emb, support_y, n_way)
    return -((query_emb.unsqueeze(1) - protos.unsqueeze(0)) ** 2).sum(-1)


class ProtoNet(_Learner):
    """Prototypical Networks (Snell et al., 2017): classify by distance to class-mean embeddings.

    Args:
        encoder: maps images ``(B, C, H, W)`` to embeddings ``(B, D)`` (e.g. a ConvBackbone).
        lr: Adam step size.

    Taught in chapter 01, § Learner and meta-learner.
    """

    def __init__(self, encoder: nn.Module, lr: float = 1e-3, device="auto"):
        self.device = pick_device(device)
        self.model = encoder.to(self.device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=lr)
        self.history = None

    def meta_loss(self, sx, sy, qx, qy):
        B, NK = sy.shape
        n_way = int(sy.max()) + 1
        emb = self.model(torch.cat([sx.flatten(0, 1), qx.flatten(0, 1)]))
        es, eq = emb[:B * NK].view(B, NK, -1), emb[B * NK:].view(B, qy.shape[1], -1)
        logits = torch.stack([protonet_logits(es[b], sy[b], eq[b], n_way) for b in range(B)])
        loss = F.cross_entropy(logits.flatten(0, 1), qy.flatten())
        acc = (logits.argmax(-1) == qy).float().mean()
        return loss, acc

    def evaluate_task(self, support_x, support_y, query_x, query_y, steps=None):
        self.train_mode(False)
        with torch.no_grad():
            sx, sy = support_x.to(self.device), support_y.to(self.device)
            qx, qy = query_x.to(self.device), query_y.to(self.device)
            logits = protonet_logits(self.model(sx), sy, self.model(qx), int(sy.max()) + 1)
            loss, acc = Fn.loss_and_accuracy(logits, qy)
        return float(loss), float(acc)


from .transfer import FineTuneBaseline  # noqa: E402 - re-exported: its own module (utils.transfer)
