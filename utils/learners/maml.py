"""The MAML family behind the learner protocol of :mod:`utils.learners.base`.

:class:`MAML` (second order), first-order MAML (``MAML(first_order=True)``), :class:`ANIL`,
:class:`MetaSGD` and :class:`Reptile`. Each describes its adaptation by one
:class:`~utils.learners.inner_loop.Adaptation` and adapts with the one inner loop of
:mod:`utils.learners.inner_loop` (per task, vectorized with ``vmap``, or folded into channel
groups by :mod:`utils.learners.folded`).
"""
from __future__ import annotations

import time

import torch
from torch import nn

from . import folded
from . import inner_loop as Fn
from .base import Learner
from .inner_loop import Adaptation
from ..models import use_batch_statistics
from ..runtime import pick_device, threads_for, torch_threads

__all__ = ["MAML", "ANIL", "MetaSGD", "Reptile"]


# ----------------------------------------------------------------------------- MAML family
class MAML(Learner):
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
        adaptation: the same five settings as one :class:`~utils.learners.inner_loop.Adaptation`
            (it replaces them when given); the learner keeps it as ``learner.adaptation``.
        outer_lr: Adam step size of the outer loop.
        chunk_size: tasks per ``vmap`` chunk (``None``: the whole meta-batch at once).
        vectorize: ``False`` uses the per-task Python loop (the reference; slower). ``True``
            folds the tasks into channel groups (:mod:`utils.learners.folded`) for networks of conv, norm,
            pooling and linear layers, and uses ``torch.func.vmap`` for any other model.
        threads: CPU threads for a meta-step; ``None`` lets :func:`utils.runtime.threads_for`
            choose from the step's size and the cores other processes leave free
            (``COURSE_THREADS`` overrides it).

    Taught in chapter 02, § 2 · Five ways to meet a new task.
    """

    def __init__(self, model: nn.Module, inner_lr: float = 0.4, inner_steps: int = 1,
                 eval_steps: int | None = None, first_order: bool = False, adapt: str = "all",
                 learn_inner_lr: bool = False, outer_lr: float = 1e-3, chunk_size: int | None = None,
                 vectorize: bool = True, device="auto", threads: int | None = None,
                 adaptation: Adaptation | None = None):
        if adaptation is None:
            adaptation = Adaptation(steps=inner_steps, step_size=inner_lr, first_order=first_order,
                                    adapt=adapt, learned_step_sizes=learn_inner_lr)
        inner_lr, learn_inner_lr = adaptation.step_size, adaptation.learned_step_sizes
        self.device = pick_device(device)
        self.threads, self._thread_choice = threads, (None, -1e9)
        use_batch_statistics(model)
        self.model = model.to(self.device)
        self.adaptation = adaptation
        self.eval_steps = int(eval_steps if eval_steps is not None else adaptation.steps)
        self.chunk_size, self.vectorize = chunk_size, vectorize
        self.adapt_names = adaptation.names(model)
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
    #: Each task adapts and is normalised on its own (batch statistics per task): across ranks only
    #: the gradients are shared (:mod:`utils.learners.distributed`).
    TASKS_SHARE_BATCH = False

    @property
    def inner_steps(self) -> int:
        """Inner steps during meta-training (``adaptation.steps``)."""
        return self.adaptation.steps

    @property
    def first_order(self) -> bool:
        """Whether the inner gradients are constants (``adaptation.first_order``)."""
        return self.adaptation.first_order

    def _tensors(self) -> dict:
        out = super()._tensors()
        if isinstance(self.inner_lr, dict):
            out.update({f"inner_lr.{k}": v for k, v in self.inner_lr.items()})
        return out

    def _vary(self, changes: dict, copy_model: bool) -> None:
        if isinstance(self.inner_lr, dict):   # Meta-SGD's step sizes: shared like the network, or copied
            self.inner_lr = ({k: v.detach().clone().requires_grad_(True) for k, v in self.inner_lr.items()}
                             if copy_model else dict(self.inner_lr))
        renamed = {"first_order": "first_order", "adapt": "adapt", "inner_steps": "steps"}
        self.adaptation = self.adaptation.but(**{renamed[k]: v for k, v in changes.items() if k in renamed})
        self.adapt_names = self.adaptation.names(self.model) if "adapt" in changes else list(self.adapt_names)
        if "eval_steps" in changes:
            self.eval_steps = int(changes["eval_steps"])
        for key in ("chunk_size", "vectorize"):
            if key in changes:
                setattr(self, key, changes[key])

    def _params(self):
        return Fn.model_params(self.model)

    def meta_loss(self, sx, sy, qx, qy):
        """Mean query loss after inner adaptation over a batch of tasks (the meta-objective)."""
        params, buffers = self._params()
        if self.vectorize and folded.supports(self.model):
            losses, accs = folded.folded_meta_loss(self.model, params, (sx, sy, qx, qy), **self.inner_settings(),
                                                   chunk_size=self.chunk_size)
            return losses.mean(), accs.mean()
        fn = Fn.vmap_meta_loss if self.vectorize else Fn.loop_meta_loss
        kw = dict(chunk_size=self.chunk_size) if self.vectorize else {}
        losses, accs = fn(self.model, (params, buffers), (sx, sy, qx, qy), **self.inner_settings(), **kw)
        return losses.mean(), accs.mean()

    def inner_settings(self, steps: int | None = None, constant: bool = False) -> dict:
        """The inner loop's keywords: meta-training's (``constant=False``: the graph through the
        steps and the step sizes) or adaptation at test time (``constant``: first order, constants)."""
        return dict(steps=self.inner_steps if steps is None else int(steps),
                    lr=self.inner_step_sizes() if constant else self.inner_lr,
                    first_order=True if constant else self.first_order, adapt_names=self.adapt_names)

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
            fast = Fn.adapt(self.model, (Fn.detached(params), buffers),
                            (support_x.to(self.device), support_y.to(self.device)), **self.inner_settings(steps, True))
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
            fast = Fn.adapt(self.model, (detached, buffers), (xt, yt), steps=self.inner_steps,
                            lr=self.inner_lr, first_order=True, adapt_names=self.adapt_names)
            return fast, Fn.loss_and_accuracy(Fn.forward(self.model, fast, buffers, xt), yt)

        with torch.no_grad():
            fast, (loss, acc) = torch.func.vmap(one_task, randomness="different",
                                                chunk_size=self.chunk_size)(x, y)
        self.optimizer.zero_grad(set_to_none=True)
        for k, p in params.items():
            p.grad = p.detach() - fast[k].mean(0)
        self.optimizer.step()
        return float(loss.mean()), float(acc.mean())
