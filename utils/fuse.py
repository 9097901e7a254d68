"""Model fusion: several models become one.

Three ways to fuse, three different mappings:

* **Output ensembles** map ``M`` models to one predictor that combines their *outputs*: average
  the probabilities (the usual "deep ensemble"), average the logits, or take a majority vote.
  Costs ``M`` forward passes; works for any models, related or not.
  :func:`member_logits`, :func:`ensemble_predict`, :class:`VmapEnsemble` (all members in one
  ``torch.func.vmap`` call), :func:`loop_ensemble_logits` (the reference loop).
* **Weight averaging** maps ``M`` models of one architecture to one model whose *weights* are
  the average. Costs one forward pass, but only works when the models sit in one low-loss basin,
  e.g. fine-tunes of one pre-trained model ("model soups", Wortsman et al. 2022). Averaging the
  weights of independently trained networks fails: hidden units are permuted differently in
  each network, so their average lies on a loss *barrier*. :func:`check_compatible`,
  :func:`interpolate_state_dicts`, :func:`average_state_dicts`, :func:`linear_path`,
  :func:`barrier_height`, :func:`greedy_soup`.
* **Mixtures of experts** learn the fusion: a gating network maps each input to weights over
  ``E`` expert networks (Jacobs et al. 1991), softly or sparsely with top-k gating and a
  load-balancing term (Shazeer et al. 2017). :class:`MixtureOfExperts`, :func:`top_k_gating`,
  :func:`load_balancing_loss`, :func:`routing_table`.

Plus calibration (:func:`expected_calibration_error`, :func:`reliability_diagram`) and the
ensemble of meta-learners' adapted predictions (:func:`evaluate_adapted_ensemble`).

Shapes: ``M`` members, ``B`` examples, ``C`` classes, ``E`` experts, ``D`` output features.
"""
from __future__ import annotations

import copy
import math
import statistics
import time
from dataclasses import dataclass, field
from typing import Callable, NamedTuple

import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap
from torch.nn import functional as F

from .errors import CourseError, course_error
from .runtime import pick_device, synchronize

__all__ = [
    "ENSEMBLE_METHODS", "member_logits", "ensemble_predict", "loop_ensemble_logits", "VmapEnsemble",
    "time_ensembles", "expected_calibration_error", "reliability_diagram", "ReliabilityData",
    "plot_reliability", "apply_temperature", "fit_temperature", "log_loss", "accuracy", "state_dict_of", "check_compatible", "interpolate_state_dicts",
    "average_state_dicts", "load_state", "interpolate_models", "average_models",
    "recompute_batchnorm", "barrier_height", "PathResult", "linear_path", "state_dict_scorer",
    "SoupResult", "greedy_soup", "top_k_gating", "load_balancing_loss", "MoEOutput",
    "MixtureOfExperts", "routing_table", "specialization", "fit_regression", "PiecewiseTask",
    "GlyphFusionData", "glyph_fusion_data", "adapted_outputs", "evaluate_adapted_ensemble",
]

ENSEMBLE_METHODS = ("prob", "logit", "vote")


# =============================================================================== output ensembles
def _stack_logits(logits) -> torch.Tensor:
    """Accept a list of ``(B, C)`` tensors or one ``(M, B, C)`` tensor; return ``(M, B, C)``."""
    if isinstance(logits, (list, tuple)):
        if not logits:
            raise course_error("logits", "at least one member's logits", "an empty list",
                               "pass one (B, C) tensor per member")
        shapes = {tuple(t.shape) for t in logits}
        if len(shapes) != 1:
            raise course_error("logits", "every member's logits with the same (B, C) shape",
                               f"shapes {sorted(shapes)}", "predict every member on the same inputs")
        logits = torch.stack(list(logits))
    if not isinstance(logits, torch.Tensor) or logits.dim() != 3:
        found = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise course_error("logits", "a (M, B, C) tensor of member logits (or a list of (B, C))",
                           str(found), "stack the members' logits with torch.stack")
    if not logits.is_floating_point():
        raise course_error("logits", "floating-point logits", str(logits.dtype), "pass raw model outputs")
    return logits


@torch.no_grad()
def member_logits(models, x: torch.Tensor, device="auto", batch_size: int = 512) -> torch.Tensor:
    """Every member's logits on ``x`` in eval mode: ``(M, B, C)`` on the CPU."""
    from .training import predict_logits
    if not models:
        raise course_error("models", "at least one model", "an empty list", "pass the ensemble's members")
    return torch.stack([predict_logits(m, x, device, batch_size) for m in models])


def ensemble_predict(logits, method: str = "prob") -> torch.Tensor:
    """Combine members' logits ``(M, B, C)`` into one predictive distribution ``(B, C)``.

    ``method``:
        ``"prob"``  mean of the members' softmax probabilities (the deep-ensemble rule);
        ``"logit"`` softmax of the mean logits (a geometric mean of the probabilities,
        renormalised; sharper than ``"prob"`` when members disagree);
        ``"vote"``  fraction of members whose argmax is each class (majority vote; ties go
        to the lowest class id under ``argmax``).
    Every row sums to 1, so accuracy, log-loss and calibration are computed the same way for all.
    """
    logits = _stack_logits(logits)
    if method == "prob":
        return logits.softmax(-1).mean(0)
    if method == "logit":
        return logits.mean(0).softmax(-1)
    if method == "vote":
        votes = F.one_hot(logits.argmax(-1), logits.shape[-1]).to(logits.dtype)
        return votes.mean(0)
    raise course_error("method", "one of " + ", ".join(map(repr, ENSEMBLE_METHODS)), repr(method),
                       "pick how the members' outputs are combined")


@torch.no_grad()
def loop_ensemble_logits(models, x: torch.Tensor) -> torch.Tensor:
    """Reference: each member in turn (eval mode), ``(M, B, C)``. ``x`` must be on the models' device."""
    out = []
    for m in models:
        was = m.training
        m.eval()
        out.append(m(x))
        m.train(was)
    return torch.stack(out)


class VmapEnsemble:
    """All members of an ensemble in one vectorized call (``torch.func``).

    ``stack_module_state`` stacks every parameter and buffer of the ``M`` members along a new
    leading dimension; ``vmap`` then runs one ``functional_call`` of a weightless copy of the
    architecture over that dimension, so ``M`` small matrix products become one batched product.
    Members are evaluated in eval mode (BatchNorm uses its running statistics).

    Args:
        models: ``M`` modules of one architecture (checked with :func:`check_compatible`).
        device: where the stacked weights live.
    Call with inputs ``(B, ...)``; returns logits ``(M, B, C)``.
    """

    def __init__(self, models, device="auto"):
        models = list(models)
        if not models:
            raise course_error("models", "at least one model", "an empty list", "pass the members")
        for i, m in enumerate(models[1:], 1):
            check_compatible(models[0], m, names=("member 0", f"member {i}"))
        self.device = pick_device(device)
        copies = [copy.deepcopy(m).to(self.device).eval() for m in models]
        params, buffers = stack_module_state(copies)
        self.params = {k: v.detach() for k, v in params.items()}
        self.buffers = {k: v.detach() for k, v in buffers.items()}
        self.base = copy.deepcopy(copies[0]).to("meta").eval()
        self.n_members = len(models)

    def _one(self, params, buffers, x):
        return functional_call(self.base, (params, buffers), (x,))

    @torch.no_grad()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return vmap(self._one, in_dims=(0, 0, None))(self.params, self.buffers, x.to(self.device))


def time_ensembles(models, x: torch.Tensor, repeats: int = 20, device="auto") -> dict:
    """Median wall time of one ensemble forward pass, loop vs vmap, on ``x``.

    Returns ``{"loop_s", "vmap_s", "speedup", "max_abs_diff"}``; ``max_abs_diff`` is the largest
    difference between the two methods' logits (they compute the same function).
    """
    device = pick_device(device)
    members = [copy.deepcopy(m).to(device).eval() for m in models]
    ens = VmapEnsemble(members, device)
    x = x.to(device)
    a, b = loop_ensemble_logits(members, x), ens(x)  # warm-up, and the equality check
    diff = float((a - b).abs().max())

    def median_time(fn):
        times = []
        for _ in range(max(1, int(repeats))):
            synchronize(device)
            t0 = time.perf_counter()
            fn()
            synchronize(device)
            times.append(time.perf_counter() - t0)
        return statistics.median(times)

    loop_s = median_time(lambda: loop_ensemble_logits(members, x))
    vmap_s = median_time(lambda: ens(x))
    return {"loop_s": loop_s, "vmap_s": vmap_s, "speedup": loop_s / vmap_s, "max_abs_diff": diff}


# =============================================================================== calibration
@dataclass
class ReliabilityData:
    """Per-bin figures of a reliability diagram (``n_bins`` equal-width confidence bins on [0, 1]).

    ``confidence[b]`` mean top-class probability in bin ``b``, ``accuracy[b]`` fraction correct,
    ``counts[b]`` examples (``nan`` figures for empty bins), ``ece`` the expected calibration error.
    """
    edges: torch.Tensor
    confidence: torch.Tensor
    accuracy: torch.Tensor
    counts: torch.Tensor
    ece: float


def _check_probs(probs, labels):
    if not isinstance(probs, torch.Tensor) or probs.dim() != 2:
        raise course_error("probs", "a (B, C) tensor of predicted probabilities",
                           str(getattr(probs, "shape", type(probs).__name__)),
                           "pass softmax outputs (or ensemble_predict's result)")
    labels = torch.as_tensor(labels)
    if labels.shape != probs.shape[:1]:
        raise course_error("labels", f"one label per row of probs ({probs.shape[0]})",
                           str(tuple(labels.shape)), "pass the (B,) class ids of the same examples")
    if probs.numel() and (probs.min() < -1e-6 or (probs.sum(1) - 1).abs().max() > 1e-3):
        raise course_error("probs", "rows of probabilities (non-negative, summing to 1)",
                           "values outside that", "apply softmax to logits first")
    return probs.detach().float().cpu(), labels.cpu()


def reliability_diagram(probs: torch.Tensor, labels: torch.Tensor, n_bins: int = 10) -> ReliabilityData:
    """Bin predictions by confidence (top-class probability) and compare with accuracy.

    Bins are ``(b/n, (b+1)/n]`` (a confidence of exactly 0 goes to the first bin).
    ECE = ``sum_b (n_b / B) * |accuracy_b - confidence_b|`` over non-empty bins
    (Naeini et al. 2015; Guo et al. 2017). A perfectly calibrated model has ECE 0.
    """
    if int(n_bins) != n_bins or n_bins < 1:
        raise course_error("n_bins", "a positive integer", repr(n_bins), "use e.g. 10 or 15 bins")
    probs, labels = _check_probs(probs, labels)
    conf, pred = probs.max(1)
    correct = (pred == labels).float()
    edges = torch.linspace(0, 1, n_bins + 1)
    bin_id = (torch.ceil(conf * n_bins).long() - 1).clamp(0, n_bins - 1)
    counts = torch.bincount(bin_id, minlength=n_bins).float()
    sum_conf = torch.zeros(n_bins).index_add_(0, bin_id, conf)
    sum_acc = torch.zeros(n_bins).index_add_(0, bin_id, correct)
    nonempty = counts > 0
    mean_conf = torch.where(nonempty, sum_conf / counts.clamp_min(1), torch.tensor(float("nan")))
    mean_acc = torch.where(nonempty, sum_acc / counts.clamp_min(1), torch.tensor(float("nan")))
    total = max(1, len(labels))
    ece = float(((counts / total) * (mean_acc - mean_conf).abs())[nonempty].sum())
    return ReliabilityData(edges, mean_conf, mean_acc, counts, ece)


def expected_calibration_error(probs: torch.Tensor, labels: torch.Tensor, n_bins: int = 10) -> float:
    """ECE with ``n_bins`` equal-width confidence bins (see :func:`reliability_diagram`), in [0, 1]."""
    return reliability_diagram(probs, labels, n_bins).ece


def apply_temperature(scores: torch.Tensor, T: float) -> torch.Tensor:
    """Probabilities ``softmax(scores / T)`` for logits or log-probabilities ``scores`` ``(B, C)``.

    ``T > 1`` softens (less confident), ``T < 1`` sharpens. For an ensemble, pass the log of its
    averaged probabilities (softmax is unchanged by adding a constant per row, so log-probabilities
    work as logits).
    """
    T = float(T)
    if not math.isfinite(T) or T <= 0:
        raise course_error("T (temperature)", "a positive number", repr(T), "pass e.g. 1.0")
    return (scores / T).softmax(-1)


def fit_temperature(scores: torch.Tensor, labels: torch.Tensor, grid=None) -> float:
    """Temperature scaling (Guo et al. 2017): the ``T`` minimising the log-loss of
    ``softmax(scores / T)`` on held-out ``labels``, by grid search (default 61 values from 0.1
    to 10 on a log scale). Fit it on a validation set, then apply it to the test set.
    """
    scores = scores.detach().float().cpu()
    labels = torch.as_tensor(labels).cpu()
    if scores.dim() != 2 or labels.shape != scores.shape[:1]:
        raise course_error("scores/labels", "(B, C) logits and (B,) labels", f"{tuple(scores.shape)} and "
                           f"{tuple(labels.shape)}", "pass validation-set logits and their labels")
    grid = torch.logspace(-1, 1, 61) if grid is None else torch.as_tensor(grid, dtype=torch.float32)
    losses = torch.stack([F.cross_entropy(scores / t, labels) for t in grid])
    return float(grid[int(losses.argmin())])


def log_loss(probs: torch.Tensor, labels: torch.Tensor, eps: float = 1e-12) -> float:
    """Mean negative log-probability of the true class (cross-entropy of probabilities), in nats."""
    probs, labels = _check_probs(probs, labels)
    return float(-probs.gather(1, labels.view(-1, 1)).clamp_min(eps).log().mean())


def accuracy(probs_or_logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of rows whose argmax equals the label."""
    return float((probs_or_logits.argmax(-1).cpu() == torch.as_tensor(labels).cpu()).float().mean())


def plot_reliability(data: ReliabilityData, ax=None, label: str | None = None, color=None):
    """Draw a reliability diagram: accuracy per confidence bin against the diagonal."""
    import matplotlib.pyplot as plt
    ax = ax or plt.subplots(figsize=(4, 4))[1]
    centers = (data.edges[:-1] + data.edges[1:]) / 2
    ok = data.counts > 0
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1)
    ax.plot(data.confidence[ok], data.accuracy[ok], "o-", ms=4, color=color,
            label=f"{label + ': ' if label else ''}ECE {100 * data.ece:.1f}%")
    ax.bar(centers[ok], data.accuracy[ok], width=1 / len(centers), alpha=0.12, color=color, edgecolor="none")
    ax.set_xlim(0, 1), ax.set_ylim(0, 1)
    ax.set_xlabel("confidence (top-class probability)")
    ax.set_ylabel("accuracy")
    ax.legend(fontsize=7, loc="upper left")
    return ax


# =============================================================================== weight space
def state_dict_of(model_or_sd) -> dict[str, torch.Tensor]:
    """A module's ``state_dict()`` (parameters and buffers), or the dict itself."""
    if isinstance(model_or_sd, nn.Module):
        return model_or_sd.state_dict()
    if isinstance(model_or_sd, dict):
        return model_or_sd
    raise course_error("model", "an nn.Module or a state dict", type(model_or_sd).__name__,
                       "pass the model itself or model.state_dict()")


def _layer_types(model: nn.Module) -> list[tuple[str, str]]:
    return [(name or "<root>", type(m).__name__) for name, m in model.named_modules()]


def check_compatible(a, b, names=("model A", "model B")) -> None:
    """Raise a :class:`CourseError` unless ``a`` and ``b`` can be averaged entry by entry.

    ``a`` and ``b`` are modules or state dicts. Checked: the same parameter/buffer names (the
    message lists missing and extra keys), the same shape and dtype for each name, and, for
    modules, the same layer types in the same places (a ReLU net and a Tanh net have equal
    state-dict shapes but are different functions).
    """
    na, nb = names
    if isinstance(a, nn.Module) and isinstance(b, nn.Module):
        ta, tb = _layer_types(a), _layer_types(b)
        for (pa, ka), (pb, kb) in zip(ta, tb):
            if pa != pb or ka != kb:
                raise course_error(f"architecture of {nb}", f"layer {pa!r} of type {ka} (as in {na})",
                                   f"layer {pb!r} of type {kb}",
                                   "fuse weights only of models built by the same constructor")
        if len(ta) != len(tb):
            raise course_error(f"architecture of {nb}", f"{len(ta)} modules (as in {na})",
                               f"{len(tb)} modules", "fuse weights only of models of one architecture")
    sa, sb = state_dict_of(a), state_dict_of(b)
    missing = [k for k in sa if k not in sb]
    extra = [k for k in sb if k not in sa]
    if missing or extra:
        show = lambda ks: ", ".join(repr(k) for k in ks[:5]) + (" …" if len(ks) > 5 else "")
        found = []
        if missing:
            found.append(f"missing keys {show(missing)}")
        if extra:
            found.append(f"extra keys {show(extra)}")
        raise course_error(f"parameters of {nb}", f"the same names as {na}", "; ".join(found),
                           "fuse weights only of models of one architecture")
    for k in sa:
        if tuple(sa[k].shape) != tuple(sb[k].shape):
            raise course_error(f"parameter {k!r}", f"shape {tuple(sa[k].shape)} (as in {na})",
                               f"shape {tuple(sb[k].shape)} in {nb}",
                               "fuse weights only of models with equal layer sizes")
        if sa[k].dtype != sb[k].dtype:
            raise course_error(f"parameter {k!r}", f"dtype {sa[k].dtype} (as in {na})",
                               f"dtype {sb[k].dtype} in {nb}", "cast both models to one dtype first")


def _check_alpha(alpha) -> float:
    try:
        a = float(alpha)
    except (TypeError, ValueError):
        raise course_error("alpha", "a number (0 gives model A, 1 gives model B)", repr(alpha),
                           "pass a float such as 0.5") from None
    if not math.isfinite(a):
        raise course_error("alpha", "a finite number", repr(alpha), "pass a float such as 0.5")
    return a


def interpolate_state_dicts(a, b, alpha: float) -> dict[str, torch.Tensor]:
    """``(1 - alpha) * a + alpha * b`` for every floating-point entry (parameters, BatchNorm
    running mean and variance); integer entries (BatchNorm's ``num_batches_tracked``) are
    taken from the nearer end (``a`` for ``alpha <= 0.5``). ``alpha`` outside [0, 1] extrapolates.
    Returns a new state dict; ``alpha = 0`` and ``1`` reproduce ``a`` and ``b`` exactly.
    """
    alpha = _check_alpha(alpha)
    check_compatible(a, b)
    sa, sb = state_dict_of(a), state_dict_of(b)
    out = {}
    for k, va in sa.items():
        vb = sb[k]
        if va.is_floating_point():
            if alpha == 0:
                out[k] = va.detach().clone()
            elif alpha == 1:
                out[k] = vb.detach().clone()
            else:
                out[k] = torch.lerp(va.detach(), vb.detach().to(va.device), alpha)
        else:
            out[k] = (va if alpha <= 0.5 else vb).detach().clone()
    return out


def average_state_dicts(state_dicts, weights=None) -> dict[str, torch.Tensor]:
    """Weighted mean of ``M`` compatible state dicts (or modules): a uniform soup by default.

    ``weights`` (length ``M``, non-negative, normalised to sum 1). Integer entries
    (``num_batches_tracked``) are taken from the first. Raises a :class:`CourseError` naming
    the first mismatched parameter if the models differ in names or shapes.
    """
    sds = [state_dict_of(s) for s in state_dicts]
    if not sds:
        raise course_error("state_dicts", "at least one model", "an empty list", "pass the models to average")
    for i, s in enumerate(sds[1:], 1):
        check_compatible(state_dicts[0], state_dicts[i], names=("model 0", f"model {i}"))
    if weights is None:
        w = torch.full((len(sds),), 1.0 / len(sds), dtype=torch.float64)
    else:
        w = torch.as_tensor(weights, dtype=torch.float64).flatten()
        if len(w) != len(sds) or (w < 0).any() or w.sum() <= 0:
            raise course_error("weights", f"{len(sds)} non-negative numbers with a positive sum",
                               repr(weights), "pass one weight per model (or None for uniform)")
        w = w / w.sum()
    out = {}
    for k, v0 in sds[0].items():
        if v0.is_floating_point():  # accumulate in float64 on the CPU (MPS has no float64)
            acc = torch.zeros(v0.shape, dtype=torch.float64)
            for wi, s in zip(w.tolist(), sds):
                acc += wi * s[k].detach().to("cpu", torch.float64)
            out[k] = acc.to(v0.device, v0.dtype)
        else:
            out[k] = v0.detach().clone()
    return out


def load_state(template: nn.Module, state_dict: dict) -> nn.Module:
    """A deep copy of ``template`` carrying ``state_dict`` (the template is left untouched)."""
    check_compatible(template.state_dict(), state_dict, names=("the template", "the state dict"))
    model = copy.deepcopy(template)
    model.load_state_dict(state_dict)
    return model


def interpolate_models(a: nn.Module, b: nn.Module, alpha: float) -> nn.Module:
    """A new model with weights ``(1 - alpha) * a + alpha * b`` (see :func:`interpolate_state_dicts`)."""
    check_compatible(a, b)
    return load_state(a, interpolate_state_dicts(a, b, alpha))


def average_models(models, weights=None) -> nn.Module:
    """A new model whose weights are the (weighted) mean of ``models``' (see :func:`average_state_dicts`)."""
    models = list(models)
    if not models:
        raise course_error("models", "at least one model", "an empty list", "pass the models to average")
    for i, m in enumerate(models[1:], 1):
        check_compatible(models[0], m, names=("model 0", f"model {i}"))
    return load_state(models[0], average_state_dicts(models, weights))


@torch.no_grad()
def recompute_batchnorm(model: nn.Module, x: torch.Tensor, batch_size: int = 256, device="auto") -> nn.Module:
    """Re-estimate every BatchNorm layer's running mean and variance on inputs ``x`` (in place).

    Averaged or interpolated weights change each layer's activation statistics, so running
    statistics averaged from the endpoints are stale ("variance collapse", Jordan et al. 2023).
    This resets them and accumulates an exact average over ``x`` (momentum ``None``). Models
    without BatchNorm are returned unchanged. Returns ``model``.
    """
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)
           and m.track_running_stats]
    if not bns:
        return model
    device = pick_device(device)
    was = model.training
    model.to(device)
    momenta = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    for i in range(0, len(x), batch_size):
        model(x[i:i + batch_size].to(device))
    for m, mom in zip(bns, momenta):
        m.momentum = mom
    model.train(was)
    return model


def barrier_height(values) -> float:
    """Loss barrier of a path: ``max_t L(t) - (L(0) + L(1)) / 2``.

    ``values`` are the losses at evenly spaced points from one endpoint (first) to the other
    (last). 0 means no point on the path is worse than the endpoints' mean; a clearly positive
    value is a barrier. (Frankle et al. 2020 subtract the *linear* interpolation of the endpoint
    losses at each point instead; for endpoints of similar loss the two agree.)
    """
    v = [float(t) for t in values]
    if len(v) < 2:
        raise course_error("values", "losses at 2 or more points along the path", f"{len(v)} value(s)",
                           "evaluate the path at several alphas, e.g. 11 from 0 to 1")
    return max(v) - (v[0] + v[-1]) / 2


@dataclass
class PathResult:
    """Loss and accuracy at each ``alpha`` of the straight line ``(1 - alpha) * A + alpha * B``."""
    alphas: list
    loss: list
    accuracy: list

    @property
    def barrier(self) -> float:
        """Loss barrier, :func:`barrier_height` of ``loss``."""
        return barrier_height(self.loss)

    @property
    def accuracy_drop(self) -> float:
        """Mean endpoint accuracy minus the worst accuracy on the path (≥ 0)."""
        return (self.accuracy[0] + self.accuracy[-1]) / 2 - min(self.accuracy)


def linear_path(model_a: nn.Module, model_b: nn.Module, data, alphas=None, device="auto",
                bn_data: torch.Tensor | None = None, batch_size: int = 512) -> PathResult:
    """Evaluate the models on the straight line between two models' weights.

    Args:
        data: ``(x, y)`` (or a digits ``Split``) to measure loss and accuracy on.
        alphas: points of the path (default 11 points from 0 to 1); must include 0 and 1 to
            measure a barrier.
        bn_data: if given, BatchNorm statistics of every interpolated model are re-estimated on
            these inputs (:func:`recompute_batchnorm`) — fairer to independently trained models.
    """
    from .training import evaluate
    check_compatible(model_a, model_b)
    alphas = [i / 10 for i in range(11)] if alphas is None else [float(a) for a in alphas]
    res = PathResult([], [], [])
    for a in alphas:
        m = interpolate_models(model_a, model_b, a)
        if bn_data is not None:
            recompute_batchnorm(m, bn_data, device=device)
        r = evaluate(m, data, device, batch_size=batch_size)
        res.alphas.append(a)
        res.loss.append(r["loss"])
        res.accuracy.append(r["accuracy"])
    return res


def state_dict_scorer(template: nn.Module, data, metric: str = "accuracy", device="auto",
                      bn_data: torch.Tensor | None = None) -> Callable[[dict], float]:
    """A function ``state_dict -> score`` (higher is better) for :func:`greedy_soup`.

    Loads the state dict into a copy of ``template`` and evaluates it on ``data`` (a
    validation set): ``"accuracy"``, or ``"neg_loss"`` (minus the mean loss).
    """
    from .training import evaluate
    if metric not in ("accuracy", "neg_loss"):
        raise course_error("metric", "'accuracy' or 'neg_loss'", repr(metric), "pick one")

    def score(sd: dict) -> float:
        m = load_state(template, sd)
        if bn_data is not None:
            recompute_batchnorm(m, bn_data, device=device)
        r = evaluate(m, data, device)
        return r["accuracy"] if metric == "accuracy" else -r["loss"]
    return score


@dataclass
class SoupResult:
    """Outcome of :func:`greedy_soup`.

    ``state_dict`` the soup; ``chosen`` indices of the ingredients (into the input list, in the
    order added); ``order`` all candidates sorted by their own score, best first; ``scores`` each
    candidate's own score; ``trace`` ``(index, score of the soup with it, added?)`` per step.
    """
    state_dict: dict
    chosen: list
    order: list
    scores: list
    trace: list = field(default_factory=list)
    score: float = float("nan")


def greedy_soup(state_dicts, score: Callable[[dict], float]) -> SoupResult:
    """Greedy soup (Wortsman et al. 2022, Algorithm 1).

    Sort the candidates by their own held-out ``score`` (best first). Start the soup with the
    best one; try the others in that order and keep a candidate only if the uniform average of
    the soup plus it scores **at least as well** (``>=``) as the soup so far. By construction the
    soup never scores below its first ingredient on the held-out set it was chosen on.

    Args:
        state_dicts: ``M`` compatible state dicts (or modules), e.g. fine-tunes of one model.
        score: ``state_dict -> float``, higher is better, on a *validation* set
            (:func:`state_dict_scorer`); reporting test figures needs a separate test set.
    """
    sds = [state_dict_of(s) for s in state_dicts]
    if not sds:
        raise course_error("state_dicts", "at least one candidate", "an empty list", "pass the fine-tuned models")
    for i in range(1, len(sds)):
        check_compatible(sds[0], sds[i], names=("candidate 0", f"candidate {i}"))
    scores = [float(score(s)) for s in sds]
    order = sorted(range(len(sds)), key=lambda i: -scores[i])  # stable: ties keep input order
    chosen = [order[0]]
    best = scores[order[0]]
    trace = [(order[0], best, True)]
    for i in order[1:]:
        cand = average_state_dicts([sds[j] for j in chosen + [i]])
        s = float(score(cand))
        keep = s >= best
        trace.append((i, s, keep))
        if keep:
            chosen.append(i)
            best = s
    soup = average_state_dicts([sds[j] for j in chosen])
    return SoupResult(soup, chosen, order, scores, trace, best)


# =============================================================================== mixture of experts
def top_k_gating(logits: torch.Tensor, k: int, renormalize: bool = True) -> torch.Tensor:
    """Sparse gates: each row keeps its ``k`` largest logits, exactly 0 elsewhere.

    ``renormalize=True`` (Shazeer et al. 2017): ``G(x) = softmax(KeepTopK(H(x), k))`` with the
    others set to −∞; every row has exactly ``k`` non-zeros summing to 1. Gradients reach only
    the kept logits, and only through their *relative* size — so with ``k = 1`` the gate is
    the constant 1 and the gate network gets **no gradient at all** from the task loss.
    ``renormalize=False`` (the Switch Transformer's choice for ``k = 1``, Fedus et al. 2021):
    the full softmax's values at the top-k positions, zeros elsewhere; rows sum to less than 1,
    but the kept probability still depends on every logit, so the gate keeps learning.
    ``logits`` ``(B, E)`` → gates ``(B, E)``.
    """
    if logits.dim() != 2:
        raise course_error("gate logits", "a (B, E) tensor", str(tuple(logits.shape)), "flatten the batch first")
    E = logits.shape[1]
    if int(k) != k or not 1 <= k <= E:
        raise course_error("top_k", f"an integer between 1 and the number of experts ({E})", repr(k),
                           "pick k, e.g. 1 or 2")
    top, idx = logits.topk(int(k), dim=1)
    if not renormalize:
        probs = logits.softmax(1)
        return torch.zeros_like(probs).scatter(1, idx, probs.gather(1, idx))
    masked = torch.full_like(logits, float("-inf")).scatter(1, idx, top)
    return masked.softmax(1)


def load_balancing_loss(gates: torch.Tensor) -> torch.Tensor:
    """Shazeer et al. (2017)'s importance loss: the squared coefficient of variation of the
    experts' importance over a batch,

        importance_e = sum_b gates[b, e],    loss = Var_e(importance) / Mean_e(importance)^2

    (population variance over the ``E`` experts). 0 when every expert receives the same total
    gate weight; ``E - 1`` when one expert receives all of it. Multiply by a weight
    (Shazeer et al. use ``w_importance = 0.1``) and add it to the task loss. Shazeer et al. also
    add a second, *load* term built from the gating noise; this course uses only the importance
    term, which is what the toy experiments need.
    """
    if gates.dim() != 2:
        raise course_error("gates", "a (B, E) tensor of gate weights", str(tuple(gates.shape)),
                           "pass the gates MixtureOfExperts returned")
    imp = gates.sum(0)
    return imp.var(unbiased=False) / (imp.mean() ** 2 + 1e-10)


class MoEOutput(NamedTuple):
    """``output`` ``(B, D)``; ``gates`` ``(B, E)`` (rows sum to 1, except top-k without
    renormalisation); ``expert_outputs`` ``(B, E, D)``."""
    output: torch.Tensor
    gates: torch.Tensor
    expert_outputs: torch.Tensor


class MixtureOfExperts(nn.Module):
    """A gate network weighting ``E`` expert networks per input (Jacobs et al. 1991).

    ``gates = softmax(gate(x))`` (soft, ``top_k=None``) or :func:`top_k_gating` (sparse);
    ``output = sum_e gates[:, e] * expert_e(x)``.

    Args:
        experts: ``E`` modules mapping ``(B, ...)`` to ``(B, D)``.
        gate: a module mapping ``(B, ...)`` to logits ``(B, E)``.
        top_k: ``None`` for soft gating, or the number of experts each input uses.
        noise_std: in training mode, Gaussian noise of this scale is added to the gate logits
            before the top-k (a fixed-scale version of Shazeer et al.'s noisy gating; it lets
            experts outside the top-k get tried, and so get gradient). 0 disables it.
        renormalize: see :func:`top_k_gating` (only used with ``top_k``).
    For clarity this toy evaluates every expert on every input; a real sparse MoE dispatches
    each input only to its ``k`` experts, which is where its compute saving comes from.
    ``forward`` returns a :class:`MoEOutput` ``(output, gates, expert_outputs)``.
    """

    def __init__(self, experts, gate: nn.Module, top_k: int | None = None, noise_std: float = 0.0,
                 renormalize: bool = True):
        super().__init__()
        self.experts = nn.ModuleList(experts)
        if len(self.experts) < 1:
            raise course_error("experts", "at least one expert", "none", "pass a list of modules")
        if top_k is not None and (int(top_k) != top_k or not 1 <= top_k <= len(self.experts)):
            raise course_error("top_k", f"None or an integer in 1..{len(self.experts)}", repr(top_k),
                               "pick how many experts each input uses")
        self.gate = gate
        self.top_k = top_k
        self.noise_std = float(noise_std)
        self.renormalize = bool(renormalize)

    @property
    def n_experts(self) -> int:
        return len(self.experts)

    def gate_weights(self, x: torch.Tensor) -> torch.Tensor:
        """Gates ``(B, E)`` for inputs ``x``."""
        logits = self.gate(x)
        if logits.dim() != 2 or logits.shape[1] != self.n_experts:
            raise course_error("gate output", f"logits (B, {self.n_experts}), one per expert",
                               str(tuple(logits.shape)), "make the gate's last layer output n_experts values")
        if self.training and self.noise_std > 0:
            logits = logits + self.noise_std * torch.randn_like(logits)
        if self.top_k is None:
            return logits.softmax(1)
        return top_k_gating(logits, self.top_k, self.renormalize)

    def forward(self, x: torch.Tensor) -> MoEOutput:
        gates = self.gate_weights(x)
        outs = torch.stack([e(x) for e in self.experts], 1)  # (B, E, D)
        return MoEOutput((gates.unsqueeze(-1) * outs).sum(1), gates, outs)


def routing_table(gates: torch.Tensor, groups: torch.Tensor, n_groups: int | None = None) -> torch.Tensor:
    """Mean gate weight per (group, expert): ``(G, E)``, each row summing to 1.

    ``groups`` ``(B,)`` labels each input with its regime / sub-task; row ``g`` says how the
    inputs of group ``g`` are shared among the experts.
    """
    groups = torch.as_tensor(groups).long().cpu()
    gates = gates.detach().float().cpu()
    if groups.shape != gates.shape[:1]:
        raise course_error("groups", f"one group id per input ({gates.shape[0]})", str(tuple(groups.shape)),
                           "pass the regime of every input")
    G = int(groups.max()) + 1 if n_groups is None else int(n_groups)
    table = torch.zeros(G, gates.shape[1]).index_add_(0, groups, gates)
    return table / torch.bincount(groups, minlength=G).clamp_min(1).unsqueeze(1).float()


def specialization(table: torch.Tensor) -> float:
    """Mean over groups of the largest expert share in :func:`routing_table`'s rows.

    ``1/E`` when the gate ignores the regime (uniform), 1 when every regime is handled
    entirely by one expert.
    """
    return float(table.max(1).values.mean())


def fit_regression(model: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int = 2000,
                   lr: float = 1e-2, balance_weight: float = 0.0, batch_size: int | None = None,
                   seed: int = 0, device="auto") -> dict:
    """Adam on the mean-squared error (full batch unless ``batch_size``), for a plain regressor or
    a :class:`MixtureOfExperts` (then ``balance_weight * load_balancing_loss(gates)`` is added).

    Returns ``{"mse": [...], "balance": [...]}`` per step (``balance`` empty for non-MoE models).
    """
    device = pick_device(device)
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    model.to(device).train()
    x, y = x.to(device), y.to(device)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    hist = {"mse": [], "balance": []}
    for _ in range(int(steps)):
        if batch_size:
            ix = torch.randint(0, len(x), (batch_size,), generator=g).to(device)
            xb, yb = x[ix], y[ix]
        else:
            xb, yb = x, y
        out = model(xb)
        if isinstance(out, MoEOutput):
            mse = F.mse_loss(out.output, yb)
            bal = load_balancing_loss(out.gates)
            loss = mse + balance_weight * bal
            hist["balance"].append(float(bal.detach()))
        else:
            mse = loss = F.mse_loss(out, yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        hist["mse"].append(float(mse.detach()))
    model.eval()
    return hist


class PiecewiseTask:
    """A 1-D regression task with distinct regimes, for mixtures of experts.

    On ``x`` in [-3, 3]: a fast sine for ``x < -1``, a gentle line for ``-1 <= x < 1`` and an
    offset parabola for ``x >= 1`` — three functions that one smooth network must stitch
    together, while a gate can hand each regime to its own expert.
    """
    boundaries = (-1.0, 1.0)
    x_range = (-3.0, 3.0)
    names = ("sine", "line", "parabola")

    @staticmethod
    def regime(x: torch.Tensor) -> torch.Tensor:
        """Regime id 0, 1, 2 of each input (same shape as ``x`` minus a trailing 1)."""
        x = x.reshape(x.shape[0], -1)[:, 0] if x.dim() > 1 else x
        return (x >= -1).long() + (x >= 1).long()

    @classmethod
    def f(cls, x: torch.Tensor) -> torch.Tensor:
        """Target values, same shape as ``x``."""
        sine = 1.5 * torch.sin(4 * x)
        line = 0.5 * x + 1.0
        parab = 1.5 * (x - 2) ** 2 - 2.0
        return torch.where(x < -1, sine, torch.where(x < 1, line, parab))

    @classmethod
    def sample(cls, n: int, noise: float = 0.05, generator: torch.Generator | None = None):
        """``(x (n, 1), y (n, 1), regime (n,))`` with ``x`` uniform on the range and Gaussian noise on ``y``."""
        if int(n) != n or n < 1:
            raise course_error("n", "a positive integer", repr(n), "pass the number of points")
        lo, hi = cls.x_range
        x = lo + (hi - lo) * torch.rand(int(n), 1, generator=generator)
        y = cls.f(x) + noise * torch.randn(int(n), 1, generator=generator)
        return x, y, cls.regime(x)

    @classmethod
    def grid(cls, n: int = 400):
        """Evenly spaced ``x (n, 1)``, noiseless ``y (n, 1)`` and ``regime (n,)`` for plots and tests."""
        x = torch.linspace(*cls.x_range, int(n)).unsqueeze(1)
        return x, cls.f(x), cls.regime(x)


# =============================================================================== data and meta-learning
@dataclass
class GlyphFusionData:
    """The chapter's glyph tasks (images average-pooled to ``14×14`` by default).

    * ``train``, ``val``, ``test``: ``(x, y)`` of the *target* task, classifying the characters of
      a few alphabets (labels ``0..n_classes-1``; examples of every character split between the three);
    * ``source``: ``(x, y)`` of *other* alphabets (labels ``0..n_source_classes-1``), for pre-training;
    * ``fewshot_x``, ``fewshot_y``, ``fewshot_classes``: images of the held-out (meta-test)
      alphabets for few-shot episodes (``EpisodeSampler(fewshot_x, fewshot_y, ..., classes=fewshot_classes)``).
    Target and source alphabets come from the meta-training split of :meth:`GlyphSet.class_split`,
    so no few-shot test alphabet is ever trained on.
    """
    train: tuple
    val: tuple
    test: tuple
    source: tuple
    fewshot_x: torch.Tensor
    fewshot_y: torch.Tensor
    fewshot_classes: list
    n_classes: int
    n_source_classes: int
    image_size: int


def glyph_fusion_data(n_target_alphabets: int = 5, n_source_alphabets: int = 16, seed: int = 0,
                      per_class=(10, 4, 6), pool: int = 2, glyphs=None) -> GlyphFusionData:
    """Build :class:`GlyphFusionData` from :func:`utils.glyphs.load_glyphs` (default set).

    ``seed`` chooses which meta-training alphabets are target and source; ``per_class`` is the
    number of train / val / test examples of each target character (at most the examples per
    character, 20 by default); ``pool`` the average-pooling factor (2: 28×28 → 14×14).
    """
    from .glyphs import load_glyphs
    gs = load_glyphs() if glyphs is None else glyphs
    tr_ids, _, te_ids = gs.class_split()
    alph = gs.alphabet_of_class
    train_alphabets = torch.unique(alph[torch.as_tensor(tr_ids)])
    need = int(n_target_alphabets) + int(n_source_alphabets)
    if n_target_alphabets < 1 or n_source_alphabets < 1 or need > len(train_alphabets):
        raise course_error("n_target_alphabets + n_source_alphabets",
                           f"at least 1 each and at most {len(train_alphabets)} in all (the meta-training alphabets)",
                           f"{n_target_alphabets} + {n_source_alphabets}", "use fewer alphabets")
    per_class = [int(v) for v in per_class]
    if len(per_class) != 3 or min(per_class) < 1 or sum(per_class) > gs.examples_per_char:
        raise course_error("per_class", f"three positive counts summing to at most {gs.examples_per_char}",
                           repr(per_class), "lower the counts")
    perm = train_alphabets[torch.randperm(len(train_alphabets), generator=torch.Generator().manual_seed(seed))]
    target_a, source_a = perm[:n_target_alphabets], perm[n_target_alphabets:need]
    x = F.avg_pool2d(gs.images, pool) if pool > 1 else gs.images
    y = gs.labels

    def classes_of(alphabets):
        return torch.nonzero(torch.isin(alph, alphabets)).flatten()

    tgt = classes_of(target_a)
    remap = torch.full((gs.n_classes,), -1, dtype=torch.long)
    remap[tgt] = torch.arange(len(tgt))
    idx = torch.stack([torch.nonzero(y == c).flatten()[:sum(per_class)] for c in tgt.tolist()])
    a, b = per_class[0], per_class[0] + per_class[1]
    split = lambda ix: (x[ix.flatten()], remap[y[ix.flatten()]])
    src = classes_of(source_a)
    sremap = torch.full((gs.n_classes,), -1, dtype=torch.long)
    sremap[src] = torch.arange(len(src))
    smask = torch.isin(y, src)
    fmask = torch.isin(y, torch.as_tensor(te_ids))
    return GlyphFusionData(split(idx[:, :a]), split(idx[:, a:b]), split(idx[:, b:]),
                           (x[smask], sremap[y[smask]]), x[fmask], y[fmask], list(te_ids),
                           len(tgt), len(src), x.shape[-1])


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
    """
    from .meta import ProtoNet, protonet_logits
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
def evaluate_adapted_ensemble(learners, source, n_tasks: int = 200, steps: int | None = None,
                              batch: int = 50) -> dict:
    """Adapt every learner to the same test tasks and fuse their adapted query predictions.

    For each task every learner adapts on the support set and predicts the queries
    (:func:`adapted_outputs`); the ensemble averages the probabilities (classification) or the
    predictions (regression). ``source(B)`` returns stacked tasks (:func:`utils.meta.episode_source`,
    :func:`utils.meta.sinusoid_source`).

    Returns ``{"members": (L, n_tasks) tensor, "ensemble": (n_tasks,) tensor, "metric": str}``
    with per-task query accuracy (classification) or MSE (regression).
    """
    from .meta import _unpack
    learners = list(learners)
    if not learners:
        raise course_error("learners", "at least one learner", "an empty list", "pass trained learners")
    members = [[] for _ in learners]
    ens, metric, done = [], "mse", 0
    while done < n_tasks:
        b = min(batch, n_tasks - done)
        sx, sy, qx, qy = _unpack(source(b), "cpu")
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
