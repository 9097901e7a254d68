"""Chapter 02's sinusoid laboratory: adaptation curves for many tasks at once, and their plots.

Every method the chapter compares on the sinusoid family ends in the same test-time procedure:
start from some parameters ``θ`` (random, pre-trained, or meta-learned) and run plain gradient
descent on the ``K`` support points with a step size ``α``. :func:`adaptation_curves` does exactly
that for a whole batch of test tasks with ``torch.func.vmap`` and records the query MSE after
every step, so one call yields the "MSE vs inner steps" curve of a method over 600 tasks in well
under a second on a CPU. :func:`adapted_predictions` gives the adapted curve of one task on a grid
(for the figures and the widget), and :func:`average_function` is what a model pre-trained on all
tasks at once converges to.

A :class:`Start` names one method's starting point and step size, so the chapter can treat
"from scratch", "pre-trained" and the meta-learners alike.
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, vmap
from torch.nn import functional as F

from .errors import course_error
from .learners.inner_loop import Params, run_inner_loop
from .stats import mean_ci95

__all__ = [
    "Start", "adaptation_curves", "adapted_predictions", "curve_summary", "average_function",
    "average_function_mse", "SINE_METHODS", "REPTILE_SGD", "SINE_STEP_GRID", "sine_recipe",
    "make_sine_learner", "train_sine_learner", "sine_validation_tasks", "sine_test_lr", "sine_name",
    "sine_code_version", "sine_validation_metric", "train_sine_checkpoint"
]


@dataclass
class Start:
    """A method's test-time recipe: a model, the parameters to start from and a step size.

    Attributes:
        name: label for tables and legends.
        model: the ``nn.Module`` whose architecture is used (its own weights are ignored in
            favour of ``params``).
        params: parameter dict ``name → tensor`` (detached copies are taken).
        lr: step size of the test-time gradient descent on the support set.

    Taught in chapter 02, § 3 · One new task: the adapted curves after 0, 1 and 10 steps.
    """
    name: str
    model: nn.Module
    params: Params
    lr: float

    @classmethod
    def from_model(cls, name: str, model: nn.Module, lr: float) -> "Start":
        """The recipe "start from ``model``'s current weights, step size ``lr``"."""
        return cls(name, model, {k: v.detach().clone() for k, v in model.named_parameters()}, float(lr))


def _check_batch(xs, ys, xq, yq):
    for name, t in (("support_x", xs), ("support_y", ys), ("query_x", xq), ("query_y", yq)):
        if t.dim() != 3:
            raise course_error(name, "a (T, M, 1) tensor (a batch of tasks)", f"shape {tuple(t.shape)}",
                               "pass a TaskBatch's fields, or add a leading task dimension with [None]")
    if not (xs.shape[0] == ys.shape[0] == xq.shape[0] == yq.shape[0]):
        raise course_error("task dimension", "the same number of tasks T in every tensor",
                           f"{xs.shape[0]}, {ys.shape[0]}, {xq.shape[0]}, {yq.shape[0]}",
                           "sample support and query sets from the same TaskBatch")


def adaptation_curves(start: Start, support_x, support_y, query_x, query_y, steps: int,
                      lr: float | None = None, chunk_size: int | None = None,
                      record: list[int] | tuple[int, ...] | None = None) -> torch.Tensor:
    """Query MSE after 0, 1, …, ``steps`` gradient steps on the support set, for every task.

    Args:
        start: the method's starting parameters and default step size.
        support_x, support_y: ``(T, K, 1)``; query_x, query_y: ``(T, Q, 1)``.
        steps: number of plain gradient-descent steps on the support MSE.
        lr: step size (default ``start.lr``).
        chunk_size: tasks per ``vmap`` chunk (bounds memory for large ``T``).
        record: evaluate the query MSE only after these numbers of steps (each in
            ``0..steps``, in the order given) instead of after every step. The query pass is most
            of the cost when ``Q`` is larger than ``K``, so e.g. ``record=[1, 10]`` is several
            times faster than the full curve.
    Returns:
        ``(T, steps + 1)`` float tensor on the CPU; column ``s`` is the query MSE after ``s`` steps.
        With ``record``: ``(T, len(record))``, column ``i`` after ``record[i]`` steps.

    Taught in chapter 02, § 3 · One new task: the adapted curves after 0, 1 and 10 steps.
    """
    _check_batch(support_x, support_y, query_x, query_y)
    if int(steps) != steps or steps < 0:
        raise course_error("steps", "a non-negative integer", repr(steps), "pass e.g. steps=10")
    steps = int(steps)
    if record is None:
        wanted = list(range(steps + 1))
    else:
        wanted = [int(s) for s in record]
        if not wanted or any(s < 0 or s > steps for s in wanted):
            raise course_error("record", f"a non-empty list of step counts in 0..{steps}", repr(record),
                               f"pass e.g. record=[1, {steps}]")
    lr = start.lr if lr is None else float(lr)
    model = start.model
    dev = next(iter(start.params.values())).device
    theta = {k: v.detach() for k, v in start.params.items()}

    def mse(p, x, y):
        return F.mse_loss(functional_call(model, p, (x,)), y)

    last = max(wanted)

    def one_task(sx, sy, qx, qy):
        at = {}

        def record_query(s, fast):
            if s in wanted:
                at[s] = mse(fast, qx, qy)

        run_inner_loop(lambda p: mse(p, sx, sy), theta, steps=last, step_sizes=lr, on_step=record_query)
        return torch.stack([at[s] for s in wanted])

    with torch.no_grad():
        curves = vmap(one_task, chunk_size=chunk_size)(
            support_x.to(dev), support_y.to(dev), query_x.to(dev), query_y.to(dev))
    return curves.cpu()


def adapted_predictions(start: Start, support_x, support_y, x_grid, steps_list,
                        lr: float | None = None) -> dict[int, np.ndarray]:
    """Predictions on ``x_grid`` after each number of steps in ``steps_list``, for ONE task.

    support_x, support_y ``(K, 1)``; x_grid ``(G, 1)``. Returns ``{steps: (G,) numpy array}``.

    Taught in chapter 02, § 3 · One new task: the adapted curves after 0, 1 and 10 steps.
    """
    if support_x.dim() != 2 or x_grid.dim() != 2:
        raise course_error("support_x / x_grid", "(K, 1) and (G, 1) tensors for one task",
                           f"{tuple(support_x.shape)} and {tuple(x_grid.shape)}",
                           "index one task out of the batch, e.g. batch.support_x[0]")
    lr = start.lr if lr is None else float(lr)
    model = start.model
    dev = next(iter(start.params.values())).device
    sx, sy, xg = support_x.to(dev), support_y.to(dev), x_grid.to(dev)
    fast = {k: v.detach() for k, v in start.params.items()}

    def mse(p):
        return F.mse_loss(functional_call(model, p, (sx,)), sy)

    wanted = sorted(set(int(s) for s in steps_list))
    out = {}

    def record_grid(s, p):
        if s in wanted:
            out[s] = functional_call(model, p, (xg,)).squeeze(-1).cpu().numpy()

    with torch.no_grad():
        run_inner_loop(mse, fast, steps=wanted[-1], step_sizes=lr, on_step=record_grid)
    return out


def curve_summary(curves: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Mean and 95% CI half-width over tasks of a ``(T, S)`` curve tensor → two ``(S,)`` arrays.

    Taught in chapter 02, § 4 · MSE vs number of steps, over many test tasks.
    """
    pairs = [mean_ci95(curves[:, s].tolist()) for s in range(curves.shape[1])]
    return np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])


def average_function(x, amplitude=(0.1, 5.0), phase=(0.0, math.pi)):
    """``E[A sin(x - φ)]`` over the task family (A, φ independent and uniform).

    This is the best a single model fitted to the points of all tasks at once can do (the
    minimiser of the expected MSE). For A ~ U[0.1, 5] and φ ~ U[0, π] it is
    ``-(2 E[A] / π) cos x`` — not zero, because the phases cover only half a period.

    Taught in chapter 02, § 1 · The sinusoid family, and what "all tasks at once" learns.
    """
    a_mean = 0.5 * (amplitude[0] + amplitude[1])
    lo, hi = phase
    # E_φ sin(x - φ) = (cos(x - hi) - cos(x - lo)) / (hi - lo)
    if isinstance(x, torch.Tensor):
        return a_mean * (torch.cos(x - hi) - torch.cos(x - lo)) / (hi - lo)
    x = np.asarray(x, dtype=float)
    return a_mean * (np.cos(x - hi) - np.cos(x - lo)) / (hi - lo)


def average_function_mse(amplitude=(0.1, 5.0), phase=(0.0, math.pi), x_range=(-5.0, 5.0),
                         n: int = 200_001) -> float:
    """Expected query MSE of predicting :func:`average_function` on a random task (no adaptation).

    Computed by numerical integration over x (uniform in ``x_range``); the task expectation is
    exact: ``E[(A sin(x-φ) - m(x))²] = E[A²] E[sin²(x-φ)] - m(x)²``.

    Taught in chapter 02, § 1 · The sinusoid family, and what "all tasks at once" learns.
    """
    a_lo, a_hi = amplitude
    ea2 = (a_hi ** 3 - a_lo ** 3) / (3 * (a_hi - a_lo))
    x = np.linspace(*x_range, n)
    lo, hi = phase
    # E_φ sin²(x - φ) = 1/2 - (sin(2(x - lo)) - sin(2(x - hi))) / (4 (hi - lo))
    es2 = 0.5 - (np.sin(2 * (x - lo)) - np.sin(2 * (x - hi))) / (4 * (hi - lo))
    m = average_function(x, amplitude, phase)
    return float(np.mean(ea2 * es2 - m ** 2))


# ----------------------------------------------------------------------------- chapter 02's recipes
#: The sinusoid learners of chapter 02 §2, in the order of its tables.
SINE_METHODS = ("pre-train + fine-tune", "MAML", "first-order MAML", "Reptile")

#: Reptile as chapter 02 trained it before (plain SGD outer step ε = 0.1), kept to show why it lagged.
REPTILE_SGD = "Reptile, outer SGD ε=0.1"

#: Test-time step sizes the chapter chooses from on VALIDATION tasks (chapter 02 §4).
SINE_STEP_GRID = (0.005, 0.01, 0.02, 0.05)


def sine_recipe(method: str, fast: bool = False) -> dict:
    """The settings chapter 02 trains ``method`` with on sinusoids (full mode, or FAST).

    Every key changes the trained weights; :mod:`utils.checkpoints` hashes this dict to check
    that a shipped checkpoint is what the code would train now. Budgets: MAML and first-order MAML
    10,000 outer steps on meta-batches of 100 tasks; Reptile 10,000 outer steps on 25 tasks, each
    with 5 inner steps; all with an Adam outer step decayed along a cosine (``meta_train_cosine``).
    Reptile's outer step: with the chapter's earlier plain-SGD step (ε = 0.1 on θ − mean φ) Reptile
    ended far behind first-order MAML; the Adam step fixes that (chapter 02 §4 measures both).

    Taught in chapter 02, § 2 · Five ways to meet a new task.
    """
    if method not in SINE_METHODS + (REPTILE_SGD,):
        raise course_error("method", f"one of {SINE_METHODS + (REPTILE_SGD,)}", repr(method), "pick one of them")
    k, k_query, inner_lr = 10, 10, 0.01
    if method == "pre-train + fine-tune":
        s = dict(iterations=500 if fast else 2000, meta_batch=25, lr=1e-3, finetune_lr=inner_lr)
    elif method in ("Reptile", REPTILE_SGD):
        sgd = method == REPTILE_SGD
        s = dict(iterations=500 if fast else 10000, meta_batch=25, inner_lr=0.02, inner_steps=5,
                 outer_lr=0.1 if sgd else 4e-3, outer_optimizer="sgd" if sgd else "adam")
    else:
        s = dict(iterations=500 if fast else 10000, meta_batch=100, inner_lr=inner_lr, inner_steps=1,
                 first_order=method == "first-order MAML", outer_lr=4e-3)
    return dict(method=method, k=k, k_query=k_query, net=[1, 40, 40, 1], schedule="cosine-0.05", **s)


def make_sine_learner(settings: dict, seed: int, device="cpu"):
    """The untrained learner of ``settings`` (from :func:`sine_recipe`); the initial weights
    depend only on ``seed``, the same for every method.

    Taught in chapter 02, § 2 · Five ways to meet a new task.
    """
    from .learners import MAML, FineTuneBaseline, Reptile
    from .models import MLP
    torch.manual_seed(seed)
    net = MLP(list(settings["net"]))
    m = settings["method"]
    if m == "pre-train + fine-tune":
        return FineTuneBaseline(net, lr=settings["lr"], finetune_lr=settings["finetune_lr"],
                                finetune_steps=10, device=device)
    if m in ("Reptile", REPTILE_SGD):
        return Reptile(net, inner_lr=settings["inner_lr"], inner_steps=settings["inner_steps"],
                       outer_lr=settings["outer_lr"], outer_optimizer=settings["outer_optimizer"], device=device)
    return MAML(net, inner_lr=settings["inner_lr"], inner_steps=settings["inner_steps"],
                first_order=settings["first_order"], outer_lr=settings["outer_lr"], device=device)


def train_sine_learner(learner, settings: dict, seed: int, iterations: int | None = None) -> list:
    """Meta-train ``learner`` as chapter 02 does; returns the per-iteration training losses.

    Tasks come from ``sinusoid_source(SinusoidFamily(), K, K_QUERY, seed=seed + 1)``.
    ``iterations`` (default: the recipe's) cuts the run short for the checkpoint test; with at
    most ``settings["iterations"] // 20`` iterations it repeats exactly the start of the full run
    (the cosine schedule's first piece keeps the full step size).

    Taught in chapter 02, § 2 · Five ways to meet a new task.
    """
    from .learners import sinusoid_source
    from .training import meta_train_cosine
    from .tasks import SinusoidFamily
    source = sinusoid_source(SinusoidFamily(), settings["k"], settings["k_query"], seed=seed + 1)
    total = settings["iterations"]
    if iterations is None:
        return list(meta_train_cosine(learner, source, total, settings["meta_batch"]).loss)
    if iterations > total // 20:
        raise course_error("iterations", f"at most {total // 20} (the cosine schedule's first piece)",
                           str(iterations), "use a shorter retrain, or the full run")
    return list(learner.meta_train(source, iterations, settings["meta_batch"], progress=False).loss)


def sine_validation_tasks(n_tasks: int = 300, k: int = 10, seed: int = 4242):
    """Validation tasks of chapter 02 (the family is continuous: "validation classes" are tasks
    drawn with their own seed, never the test seed). Used to choose test-time step sizes."""
    from .tasks import SinusoidFamily
    return SinusoidFamily().sample(n_tasks, k, 100, generator=torch.Generator().manual_seed(seed))


def sine_test_lr(settings: dict) -> float:
    """The step size the learner was trained with (Reptile: its inner step), the default α."""
    return float(settings.get("inner_lr", settings.get("finetune_lr")))


# ----------------------------------------------------------------------------- shipped checkpoints


def sine_name(method: str, seed: int) -> str:
    """File stem of chapter 02's sinusoid checkpoint of ``method`` and ``seed``."""
    slug = {"pre-train + fine-tune": "pretrain", "MAML": "maml", "first-order MAML": "fomaml",
            "Reptile": "reptile", "Reptile, outer SGD ε=0.1": "reptile-sgd"}[method]
    return f"ch02-sine-{slug}-seed{seed}"


def sine_code_version() -> str:
    """Hash of chapter 02's sinusoid recipe (settings, construction, training loop), docstrings
    and comments left out, so that editing documentation does not invalidate the checkpoints."""
    from .checkpoints import logic_source
    blob = "\0".join(logic_source(f) for f in (sine_recipe, make_sine_learner, train_sine_learner))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def sine_validation_metric(learner, settings: dict) -> dict:
    """Query MSE on :func:`utils.sinusoid_lab.sine_validation_tasks` after 1 and 10 steps, for
    every step size of the grid: ``{"alpha=0.01": [mse1, mse10], ...}`` (``nan`` if diverged)."""
    from .vocab import split_batch
    val = split_batch(sine_validation_tasks())
    start = Start.from_model(settings["method"], learner.model, 0.01)
    out = {}
    for a in SINE_STEP_GRID:
        c = adaptation_curves(start, *val, 10, lr=a, record=[1, 10])
        out[f"alpha={a}"] = [round(float(c[:, 0].mean()), 5), round(float(c[:, 1].mean()), 5)]
    return out


def train_sine_checkpoint(method: str, seed: int, command: str) -> dict:
    """Train chapter 02's ``method`` with the full-mode recipe and ``seed``; save it; return the manifest."""
    import time
    from .checkpoints import save_checkpoint, training_manifest
    settings = sine_recipe(method)
    learner = make_sine_learner(settings, seed)
    start = time.perf_counter()
    curve = train_sine_learner(learner, settings, seed)
    manifest = training_manifest(sine_name(method, seed), command, settings, seed, curve, time.perf_counter() - start,
                                 code_version=sine_code_version(),
                                 metric=dict(validation_mse_1_and_10_steps=sine_validation_metric(learner, settings)),
                                 final_train_loss=round(float(sum(curve[-100:]) / len(curve[-100:])), 5))
    save_checkpoint(manifest["name"], learner.state_dict(resume=False), manifest)
    return manifest
