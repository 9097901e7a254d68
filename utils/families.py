"""Chapter 03's recipes, task sources and shipped checkpoints (the families of meta-learners).

* :func:`cnp_recipe` / :func:`lopt_recipe` — the settings the chapter trains its CNP (sinusoids,
  the same K and number of training tasks as chapter 02's MAML) and its learned optimiser with;
  :func:`make_cnp`, :func:`train_cnp`, :func:`make_lopt`, :func:`train_lopt` build and train them.
* the chapter gets its CNP and learned optimiser through :func:`utils.trained.trained`
  (``"ch03-cnp"``, ``"ch03-lopt"``: the shipped full-mode checkpoint, the cache, or trained here).
* :func:`task_pool_source` — a source that draws only from a fixed pool of sinusoid tasks, with
  optional task augmentation (§4, meta-overfitting); :func:`nll_and_mse` scores a CNP on tasks.
* :func:`digit_episodes` — 5-way episodes of scikit-learn's digits, upsampled to the glyphs'
  28×28 (§5, cross-domain).
"""
from __future__ import annotations

import time

import torch
from torch.nn import functional as F

from .learners.blackbox import CNP, CNPLearner, gaussian_nll
from .checkpoints import save_checkpoint, training_manifest
from .episodes import EpisodeSampler
from .errors import course_error
from .learners.learned_optimizer import LearnedOptimizer, LSTMRule, final_loss, run_rule, sample_quadratics
from .learners import sinusoid_source
from .checkpoints import learner_state
from .tasks import SinusoidFamily, TaskBatch
from .vocab import TaskSource

__all__ = [
    "cnp_recipe", "lopt_recipe", "make_cnp", "train_cnp", "make_lopt", "train_lopt", "GROUPS",
    "checkpoint_name", "train_checkpoint", "task_pool_source", "nll_and_mse", "overfitting_curves",
    "rule_at_horizons", "digit_episodes", "amplitude_curriculum", "curriculum_curves"
]


# ----------------------------------------------------------------------------- recipes
def cnp_recipe(fast: bool = False) -> dict:
    """CNP on sinusoids: K = 10 support and 10 query points, 10,000 steps of 100 tasks (the
    number of training tasks chapter 02's MAML saw), Adam 1e-3."""
    return dict(method="CNP", k=10, k_query=10, hidden=64, r_dim=64, lr=1e-3,
                iterations=300 if fast else 10000, meta_batch=100)


def lopt_recipe(fast: bool = False) -> dict:
    """Learned optimiser: LSTM (20 units) on 10-d random quadratics, 50-step horizon in unrolls
    of 10, meta-batch 32, Adam 3e-3."""
    return dict(method="learned optimiser", dim=10, hidden=20, lr=3e-3, unroll=10, horizon=50,
                iterations=40 if fast else 500, meta_batch=32)


def make_cnp(settings: dict, seed: int, device="auto") -> CNPLearner:
    torch.manual_seed(seed)
    return CNPLearner(CNP(hidden=settings["hidden"], r_dim=settings["r_dim"]), lr=settings["lr"], device=device)


def train_cnp(learner: CNPLearner, settings: dict, seed: int) -> list:
    src = sinusoid_source(SinusoidFamily(), settings["k"], settings["k_query"], seed=seed)
    return learner.meta_train(src, settings["iterations"], settings["meta_batch"], progress=False).loss


def make_lopt(settings: dict, seed: int, device="auto") -> LearnedOptimizer:
    torch.manual_seed(seed)
    return LearnedOptimizer(LSTMRule(hidden=settings["hidden"]), lr=settings["lr"], unroll=settings["unroll"],
                            horizon=settings["horizon"], device=device)


def train_lopt(learner: LearnedOptimizer, settings: dict, seed: int) -> list:
    g = torch.Generator().manual_seed(seed)
    return learner.meta_train(lambda B: sample_quadratics(B, settings["dim"], generator=g),
                              settings["iterations"], settings["meta_batch"]).loss


GROUPS = {"cnp": (cnp_recipe, make_cnp, train_cnp), "lopt": (lopt_recipe, make_lopt, train_lopt)}


def checkpoint_name(group: str, seed: int) -> str:
    """File stem of a chapter 03 checkpoint: ``ch03-cnp-seed0``, ``ch03-lopt-seed1``..."""
    return f"ch03-{group}-seed{seed}"


def train_checkpoint(group: str, seed: int, command: str) -> dict:
    """Train ``group`` with its full-mode recipe and ``seed``; save ``NAME.pt`` and ``NAME.json``."""
    recipe, make, train = GROUPS[group]
    settings = recipe()
    learner = make(settings, seed)
    start = time.perf_counter()
    curve = train(learner, settings, seed)
    manifest = training_manifest(checkpoint_name(group, seed), command, settings, seed, curve, time.perf_counter() - start)
    save_checkpoint(manifest["name"], learner_state(learner), manifest)
    return manifest


# ----------------------------------------------------------------------------- §4 meta-overfitting
def task_pool_source(n_tasks: int, k: int = 10, k_query: int = 10, augment: bool = False, seed: int = 0):
    """A source that only ever draws from ``n_tasks`` fixed sinusoid tasks (fresh x each time).

    ``augment``: task augmentation — each draw rescales the amplitude by U[0.7, 1.3] and shifts the
    phase by U[-0.5, 0.5] rad, so the learner meets neighbours of the pool's tasks (the regression
    counterpart of rotating glyph classes into new ones). ``source(B)`` → a :class:`TaskBatch`.
    """
    fam, g = SinusoidFamily(), torch.Generator().manual_seed(seed)
    pool = fam.sample(n_tasks, 1, 1, generator=g)
    lo, hi = fam.x_range

    def source(batch: int) -> TaskBatch:
        i = torch.randint(0, n_tasks, (batch,), generator=g)
        amp, ph = pool.amplitude[i].clone(), pool.phase[i].clone()
        if augment:
            amp = amp * (0.7 + 0.6 * torch.rand(batch, generator=g))
            ph = ph + torch.rand(batch, generator=g) - 0.5
        xs = lo + (hi - lo) * torch.rand(batch, k, 1, generator=g)
        xq = lo + (hi - lo) * torch.rand(batch, k_query, 1, generator=g)
        return TaskBatch(xs, fam.evaluate(xs, amp, ph), xq, fam.evaluate(xq, amp, ph), amp, ph)
    return source


def nll_and_mse(learner: CNPLearner, tasks: TaskBatch) -> tuple[float, float]:
    """Mean Gaussian NLL (nats per point) and MSE of the mean of a CNP on ``tasks``' query points."""
    mean, std = learner.predict(tasks.support_x, tasks.support_y, tasks.query_x)
    qy = tasks.query_y.to(mean.device)
    return float(gaussian_nll(mean, std, qy).mean()), float(F.mse_loss(mean, qy))


def overfitting_curves(source: TaskSource, val_tasks: TaskBatch, iterations: int, every: int, meta_batch: int = 16,
                       seed: int = 0, device="auto") -> dict:
    """Train a fresh CNP on ``source``; every ``every`` iterations record the mean training NLL
    of the last ``every`` iterations and the NLL on ``val_tasks``. Keeps the weights of the best
    validation point (early stopping). Returns ``{"iteration", "train", "val", "best_iteration",
    "learner" (final), "best_state"}``."""
    learner = make_cnp(cnp_recipe(), seed, device)
    out = dict(iteration=[], train=[], val=[], best_state=None)
    for done in range(every, iterations + 1, every):
        learner.meta_train(source, every, meta_batch, progress=False)
        out["iteration"].append(done)
        out["train"].append(sum(learner.history.loss[-every:]) / every)
        out["val"].append(nll_and_mse(learner, val_tasks)[0])
        if out["val"][-1] == min(out["val"]):
            out["best_state"] = learner_state(learner)
    out["best_iteration"] = out["iteration"][out["val"].index(min(out["val"]))]
    out["learner"] = learner
    return out


# ----------------------------------------------------------------------------- §3 learned optimisers
class _Recorded:
    """Problems whose loss at the start is a recorded loss vector ``(B,)``: ``final_loss(None,
    _Recorded(v), 0)`` scores losses already measured with final_loss's own divergence rule."""

    def __init__(self, values: torch.Tensor):
        self.values = values

    def init(self):
        return self.values.view(-1, 1)

    def loss(self, theta):
        return self.values


def rule_at_horizons(rule, problems, horizons) -> tuple[dict, torch.Tensor]:
    """Run ``rule`` once for ``max(horizons)`` steps (§3) and read off every horizon: returns
    ``({h: MetaResult of the final loss after h steps}, median loss per step (max(horizons) + 1,))``.
    The same numbers as :func:`utils.learners.learned_optimizer.final_loss` at each ``h`` (the run is
    deterministic from ``problems.init()``), for one run instead of one per horizon plus the curve."""
    with torch.no_grad():
        losses, _, _ = run_rule(rule, problems, max(horizons))
    return {h: final_loss(None, _Recorded(losses[h]), 0) for h in horizons}, losses.median(1).values


# ----------------------------------------------------------------------------- §5 cross-domain
def digit_episodes(split, n_way: int = 5, k_shot: int = 1, q_query: int = 15, seed: int = 0,
                   size: int = 28) -> EpisodeSampler:
    """An :class:`EpisodeSampler` over a :mod:`utils.digits` split, images resized to ``size``²
    (bilinear) so that a glyph-trained encoder reads them; pixel values stay in [0, 1]."""
    x = F.interpolate(split.x, size=(size, size), mode="bilinear", align_corners=False).clamp(0, 1)
    return EpisodeSampler(x, split.y, n_way, k_shot, q_query, seed=seed)


def amplitude_curriculum(ramp: int, k: int = 10, k_query: int = 10, start: float = 1.0, seed: int = 0):
    """An easy-first task source over the sinusoid family (§4, which tasks to meta-train on).

    Draw ``i`` (counting from 0) samples tasks with amplitude uniform in ``[0.1, a_i]``, where
    ``a_i`` grows linearly from ``start`` to the family's 5.0 over the first ``ramp`` draws and
    stays there: small amplitudes are the easy tasks (their errors are small in absolute terms).
    ``ramp = 0`` is plain uniform sampling of the whole family. ``source(B)`` → a :class:`TaskBatch`
    with ``k`` support and ``k_query`` query points per task.

    Taught in chapter 03, § Which tasks to meta-train on: an easy-first curriculum.
    """
    if int(ramp) != ramp or ramp < 0:
        raise course_error("ramp", "a whole number of draws >= 0 (0: uniform sampling)", repr(ramp),
                           "pass e.g. ramp=400")
    full = SinusoidFamily().amplitude
    if not full[0] < start <= full[1]:
        raise course_error("start", f"an amplitude in ({full[0]}, {full[1]}]", repr(start), "pass e.g. start=1.0")
    g, drawn = torch.Generator().manual_seed(seed), [0]

    def source(batch: int) -> TaskBatch:
        top = full[1] if ramp == 0 else start + (full[1] - start) * min(1.0, drawn[0] / ramp)
        drawn[0] += 1
        return SinusoidFamily(amplitude=(full[0], top)).sample(batch, k, k_query, generator=g)
    return source


def curriculum_curves(ramps: dict, points, test_tasks: TaskBatch, seed: int, meta_batch: int = 16,
                      device="auto") -> dict:
    """Train one fresh CNP (:func:`cnp_recipe`'s network) per schedule of ``ramps`` (name → ramp of
    :func:`amplitude_curriculum`) and return name → the query MSE on ``test_tasks`` after each
    number of meta-iterations in ``points`` (increasing), every schedule from the same start.

    Taught in chapter 03, § Which tasks to meta-train on: an easy-first curriculum.
    """
    out = {}
    for name, ramp in ramps.items():
        learner, source, done, out[name] = make_cnp(cnp_recipe(), seed, device), amplitude_curriculum(ramp, seed=seed + 1), 0, []
        for p in points:
            learner.meta_train(source, p - done, meta_batch, progress=False)
            done = p
            out[name].append(nll_and_mse(learner, test_tasks)[1])
    return out

