"""Weight averaging (chapter 06, § 3): ``M`` models of one architecture become one model whose
weights are the average.

Costs one forward pass, but only works when the models sit in one low-loss basin, e.g. fine-tunes
of one pre-trained model ("model soups", Wortsman et al. 2022). Averaging the weights of
independently trained networks fails: hidden units are permuted differently in each network, so
their average lies on a loss *barrier*. :func:`check_compatible`, :func:`interpolate_state_dicts`,
:func:`average_state_dicts`, :func:`linear_path`, :func:`barrier_height`, :func:`greedy_soup`.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch
from torch import nn

from ..errors import check_number, course_error
from ..runtime import pick_device
from ..vocab import Network

__all__ = ["state_dict_of", "check_compatible", "interpolate_state_dicts", "average_state_dicts",
           "load_state", "interpolate_models", "average_models", "recompute_batchnorm",
           "barrier_height", "PathResult", "linear_path", "state_dict_scorer", "SoupResult",
           "greedy_soup"]

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


def interpolate_state_dicts(a, b, alpha: float) -> dict[str, torch.Tensor]:
    """``(1 - alpha) * a + alpha * b`` for every floating-point entry (parameters, BatchNorm
    running mean and variance); integer entries (BatchNorm's ``num_batches_tracked``) are
    taken from the nearer end (``a`` for ``alpha <= 0.5``). ``alpha`` outside [0, 1] extrapolates.
    Returns a new state dict; ``alpha = 0`` and ``1`` reproduce ``a`` and ``b`` exactly.

    Taught in chapter 06, § 3 · Weight averaging: one model from many.
    """
    alpha = check_number(alpha, "alpha", "a finite number (0 gives model A, 1 gives model B)",
                         "pass a float such as 0.5")
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

    Taught in chapter 06, § Model soups.
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


def interpolate_models(a: Network, b: Network, alpha: float) -> Network:
    """A new model with weights ``(1 - alpha) * a + alpha * b`` (see :func:`interpolate_state_dicts`).

    Taught in chapter 06, § Why averaging unrelated models fails, measured.
    """
    check_compatible(a, b)
    return load_state(a, interpolate_state_dicts(a, b, alpha))


def average_models(models: Sequence[Network], weights=None) -> Network:
    """A new model whose weights are the (weighted) mean of ``models``' (see :func:`average_state_dicts`).

    Taught in chapter 06, § Model soups.
    """
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

    Taught in chapter 06, § Why averaging unrelated models fails, measured.
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
    alphas: list[float]
    loss: list[float]
    accuracy: list[float]

    @property
    def barrier(self) -> float:
        """Loss barrier, :func:`barrier_height` of ``loss``."""
        return barrier_height(self.loss)

    @property
    def accuracy_drop(self) -> float:
        """Mean endpoint accuracy minus the worst accuracy on the path (≥ 0)."""
        return (self.accuracy[0] + self.accuracy[-1]) / 2 - min(self.accuracy)


def linear_path(model_a: Network, model_b: Network, data, alphas=None, device="auto",
                bn_data: torch.Tensor | None = None, batch_size: int = 512) -> PathResult:
    """Evaluate the models on the straight line between two models' weights.

    Args:
        data: ``(x, y)`` (or a digits ``Split``) to measure loss and accuracy on.
        alphas: points of the path (default 11 points from 0 to 1); must include 0 and 1 to
            measure a barrier.
        bn_data: if given, BatchNorm statistics of every interpolated model are re-estimated on
            these inputs (:func:`recompute_batchnorm`) — fairer to independently trained models.

    Taught in chapter 06, § Why averaging unrelated models fails, measured.
    """
    from ..training import evaluate
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

    Taught in chapter 06, § Model soups.
    """
    from ..training import evaluate
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

    Taught in chapter 06, § Model soups.
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


