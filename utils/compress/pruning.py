"""Pruning: masks that zero the smallest weights, applied with ``torch.nn.utils.prune``, and
the structural surgery that follows (chapter 05). The argument checks shared by the package live here.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn.utils import prune

from ..errors import course_error
from ..vocab import Network

__all__ = [
    "PRUNABLE", "n_to_prune", "magnitude_mask", "prunable_modules", "effective_tensor",
    "prune_model", "torch_prune", "prune_structured", "is_pruned", "make_permanent",
    "sparsity_report", "dense_state_dict", "replace_module", "shrink_linear_chain",
]


#: Module types whose ``weight`` the pruning and quantization helpers touch by default.
PRUNABLE = (nn.Linear, nn.Conv2d)


# =============================================================================== checks
def _check_sparsity(sparsity, what: str = "sparsity") -> float:
    if isinstance(sparsity, bool) or not isinstance(sparsity, (int, float)) or isinstance(sparsity, complex):
        if not (torch.is_tensor(sparsity) and sparsity.numel() == 1):
            raise course_error(what, "a number in [0, 1] (the fraction of weights set to zero)",
                               f"{type(sparsity).__name__} {sparsity!r}", "pass e.g. 0.9 for 90% zeros")
        sparsity = float(sparsity)
    s = float(sparsity)
    if not math.isfinite(s) or s < 0 or s > 1:
        raise course_error(what, "a number in [0, 1] (the fraction of weights set to zero)", repr(sparsity),
                           "pass a fraction such as 0.9, not a percentage such as 90")
    return s


def n_to_prune(sparsity: float, n: int) -> int:
    """How many of ``n`` entries a request for ``sparsity`` prunes: ``round(sparsity * n)``."""
    return int(round(_check_sparsity(sparsity) * n))


def _check_tensor(name: str, t) -> torch.Tensor:
    if not torch.is_tensor(t):
        raise course_error(name, "a torch.Tensor", type(t).__name__, f"pass {name} as a tensor")
    if t.numel() == 0:
        raise course_error(name, "a non-empty tensor", f"shape {tuple(t.shape)}", f"pass a real {name}")
    if not t.is_floating_point():
        raise course_error(name, "a floating-point tensor", str(t.dtype), f"convert with {name}.float()")
    if not bool(torch.isfinite(t).all()):
        raise course_error(name, "finite values", "NaN or inf", "check the training run that produced it")
    return t


# =============================================================================== pruning
def magnitude_mask(weight: torch.Tensor, sparsity: float) -> torch.Tensor:
    """Keep-mask of ``weight`` that zeroes exactly ``round(sparsity * numel)`` smallest-|w| entries.

    Args:
        weight: any-shaped floating tensor.
        sparsity: fraction of entries to prune, in [0, 1].
    Returns:
        bool tensor shaped like ``weight``: ``True`` = keep, ``False`` = pruned. Ties in magnitude are
        broken by flat position (earlier entries are pruned first), so the count is always exact.

    Taught in chapter 05, § 3. Pruning.
    """
    w = _check_tensor("weight", weight).detach()
    n = w.numel()
    k = n_to_prune(sparsity, n)
    order = torch.argsort(w.abs().flatten(), stable=True)
    mask = torch.ones(n, dtype=torch.bool, device=w.device)
    mask[order[:k]] = False
    return mask.view_as(w)


def prunable_modules(model: nn.Module, kinds=PRUNABLE) -> list[tuple[str, nn.Module]]:
    """``(name, module)`` of every module of the given types (default Linear and Conv2d), in order."""
    found = [(n, m) for n, m in model.named_modules() if isinstance(m, kinds)]
    if not found:
        raise course_error("model", f"at least one layer of type {[k.__name__ for k in kinds]}",
                           "none", "pass a model with Linear or Conv2d layers")
    return found


def effective_tensor(module: nn.Module, name: str = "weight") -> torch.Tensor:
    """The tensor the module computes with: ``<name>_orig * <name>_mask`` when pruned, else ``<name>``.

    (After an optimizer step the cached ``module.weight`` of a pruned module is stale until the next
    forward; this always gives the current value.)
    """
    if hasattr(module, name + "_orig"):
        return (getattr(module, name + "_orig") * getattr(module, name + "_mask")).detach()
    return getattr(module, name).detach()


def prune_model(model: Network, sparsity: float, scope: str = "global", kinds=PRUNABLE,
                modules=None) -> dict[str, torch.Tensor]:
    """Magnitude-prune the weights of ``model`` in place to exactly ``sparsity`` zeros.

    Args:
        sparsity: target fraction of zero weights (biases and BatchNorm are never pruned).
        scope: ``"layer"`` — every layer loses the same fraction; ``"global"`` — one threshold over
            all chosen layers together (layers with many small weights lose more).
        kinds / modules: which layers: all modules of type ``kinds``, or an explicit list of names.
    Returns:
        ``{module_name: keep-mask}``. Masks go through ``torch.nn.utils.prune.custom_from_mask``;
        calling it again on a pruned model computes the new mask from the current (already
        masked) weights, so zeros stay zero and iterative pruning reaches exactly ``sparsity``
        (the zeros sort first, so a higher target always contains the previous mask).

    Taught in chapter 05, § 3.1 Layer-wise vs global, without fine-tuning.
    """
    s = _check_sparsity(sparsity)
    if scope not in ("layer", "global"):
        raise course_error("scope", "'layer' or 'global'", repr(scope), "pick one of the two")
    named = prunable_modules(model, kinds)
    if modules is not None:
        lookup = dict(model.named_modules())
        missing = [m for m in modules if m not in lookup]
        if missing:
            raise course_error("modules", "names of submodules of the model",
                               f"unknown {missing[:3]}", f"pick from {[n for n, _ in named][:6]}")
        named = [(m, lookup[m]) for m in modules]
    weights = {n: effective_tensor(m) for n, m in named}
    if scope == "layer":
        masks = {n: magnitude_mask(w, s) for n, w in weights.items()}
    else:
        flat = torch.cat([w.flatten() for w in weights.values()])
        flat_mask = magnitude_mask(flat, s)
        masks, start = {}, 0
        for n, w in weights.items():
            masks[n] = flat_mask[start:start + w.numel()].view_as(w)
            start += w.numel()
    for n, m in named:
        prune.custom_from_mask(m, "weight", masks[n])
    return masks


def torch_prune(model: nn.Module, sparsity: float, scope: str = "global", kinds=PRUNABLE) -> None:
    """The same magnitude pruning with ``torch.nn.utils.prune``'s own L1 methods (fresh models).

    ``scope="layer"``: ``prune.l1_unstructured`` per layer; ``"global"``:
    ``prune.global_unstructured(..., pruning_method=prune.L1Unstructured)``. Counts are given as
    integers so they equal :func:`prune_model`'s; only the choice among tied magnitudes may differ.

    Taught in chapter 05, § How `torch.nn.utils.prune` stores a pruned layer.
    """
    s = _check_sparsity(sparsity)
    named = prunable_modules(model, kinds)
    if any(prune.is_pruned(m) for _, m in named):
        raise course_error("model", "a model that is not pruned yet", "a pruned model",
                           "use prune_model for iterative pruning, or make_permanent first")
    if scope == "layer":
        for _, m in named:
            prune.l1_unstructured(m, "weight", amount=n_to_prune(s, m.weight.numel()))
    elif scope == "global":
        total = sum(m.weight.numel() for _, m in named)
        prune.global_unstructured([(m, "weight") for _, m in named],
                                  pruning_method=prune.L1Unstructured, amount=n_to_prune(s, total))
    else:
        raise course_error("scope", "'layer' or 'global'", repr(scope), "pick one of the two")


def prune_structured(module: nn.Module, fraction: float, norm: float = 2) -> torch.Tensor:
    """Remove whole output units: the ``round(fraction * out)`` rows (neurons of a Linear, filters of
    a Conv2d) with the smallest L``norm``, with ``prune.ln_structured(dim=0)``; the bias entries of
    those units are masked too (``prune.custom_from_mask``), so a pruned unit outputs exactly 0
    before its activation. On a module that is already pruned, the rows are ranked by the norms of
    the current (masked) weights and the new mask is combined with the old one.

    Returns the keep-mask over units, bool ``(out,)``.

    Taught in chapter 05, § 3.4 Structured pruning: remove whole neurons.
    """
    f = _check_sparsity(fraction, "fraction")
    if not isinstance(module, PRUNABLE):
        raise course_error("module", "an nn.Linear or nn.Conv2d", type(module).__name__,
                           "pass one layer, e.g. model.features[1][0]")
    w = effective_tensor(module)
    k = n_to_prune(f, w.shape[0])
    if not prune.is_pruned(module):
        prune.ln_structured(module, "weight", amount=k, n=norm, dim=0)
        keep = module.weight_mask.flatten(1).amax(1) > 0
    else:
        norms = w.flatten(1).norm(p=norm, dim=1)
        keep = torch.ones(w.shape[0], dtype=torch.bool, device=w.device)
        keep[torch.argsort(norms, stable=True)[:k]] = False
        shape = (-1,) + (1,) * (w.dim() - 1)
        prune.custom_from_mask(module, "weight", keep.view(shape).expand_as(w))
    if module.bias is not None:
        prune.custom_from_mask(module, "bias", keep.clone())
    return keep


def is_pruned(model: nn.Module) -> bool:
    """Whether any submodule carries a ``torch.nn.utils.prune`` reparametrization."""
    return prune.is_pruned(model)


def make_permanent(model: Network) -> Network:
    """Fold every pruning mask into its tensor (``prune.remove``): plain ``weight`` parameters with
    zeros, no ``*_orig`` / ``*_mask`` left. In place; returns the model.

    Taught in chapter 05, § How `torch.nn.utils.prune` stores a pruned layer.
    """
    for m in model.modules():
        names = [h._tensor_name for h in list(m._forward_pre_hooks.values())
                 if isinstance(h, prune.BasePruningMethod)]
        for name in names:
            prune.remove(m, name)
    return model


def sparsity_report(model: nn.Module, kinds=PRUNABLE) -> list[dict]:
    """Zeros per layer weight and over all of them.

    Returns rows ``{"layer", "zeros", "total", "sparsity"}``; the last row is ``layer == "all"``.

    Taught in chapter 05, § How `torch.nn.utils.prune` stores a pruned layer.
    """
    rows = []
    for n, m in prunable_modules(model, kinds):
        w = effective_tensor(m)
        z = int((w == 0).sum())
        rows.append({"layer": n, "zeros": z, "total": w.numel(), "sparsity": z / w.numel()})
    z, t = sum(r["zeros"] for r in rows), sum(r["total"] for r in rows)
    rows.append({"layer": "all", "zeros": z, "total": t, "sparsity": z / t})
    return rows


def dense_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """``model.state_dict()`` with any pruning folded in (``weight`` = orig × mask), model untouched."""
    sd = {k: v.detach().clone() for k, v in model.state_dict().items()}
    for key in [k for k in sd if k.endswith("_orig")]:
        base = key[: -len("_orig")]
        sd[base] = sd.pop(key) * sd.pop(base + "_mask")
    return sd


def _parent(model: nn.Module, name: str) -> tuple[nn.Module, str]:
    parts = name.split(".")
    parent = model
    for p in parts[:-1]:
        parent = getattr(parent, p)
    return parent, parts[-1]


def replace_module(model: nn.Module, name: str, new: nn.Module) -> nn.Module:
    """Put ``new`` where the submodule ``name`` (e.g. ``"features.1.2"``) was; in place, returns the model.

    Taught in chapter 05, § 5. Low-rank factorization.
    """
    lookup = dict(model.named_modules())
    if name not in lookup or name == "":
        raise course_error("name", "the dotted name of a submodule",
                           repr(name), f"pick one of {[n for n in lookup if n][:8]}")
    parent, attr = _parent(model, name)
    setattr(parent, attr, new)
    return model


def shrink_linear_chain(model: Network) -> Network:
    """Physically remove dead hidden units from a chain of Linear layers (after structured pruning).

    Assumes the model applies its Linear layers in registration order with activations ``f`` such
    that ``f(0) = 0`` between them (ReLU, as in :mod:`utils.models` MLPs). A hidden unit whose
    incoming weight row **and** bias are all zero outputs 0, so dropping that row of one layer and
    that column of the next is exact. Pruning is made permanent first. In place; returns the model.

    Taught in chapter 05, § 3.4 Structured pruning: remove whole neurons.
    """
    make_permanent(model)
    linears = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    others = [n for n, m in model.named_modules()
              if any(True for _ in m.parameters(recurse=False)) and not isinstance(m, nn.Linear)]
    if others:
        raise course_error("model", "a chain of Linear layers with parameter-free activations",
                           f"layers with parameters that are not Linear: {others[:3]}",
                           "shrink only MLPs; for convolutions fold BatchNorm first")
    for i in range(len(linears) - 1):
        (n1, a), (n2, b) = linears[i], linears[i + 1]
        if a.out_features != b.in_features:
            raise course_error("model", "consecutive Linear layers whose sizes chain",
                               f"{n1} -> {a.out_features} but {n2} takes {b.in_features}",
                               "use shrink_linear_chain on plain MLPs only")
        dead = (a.weight.detach() == 0).all(1)
        if a.bias is not None:
            dead &= a.bias.detach() == 0
        keep = (~dead).nonzero().flatten()
        if len(keep) == a.out_features:
            continue
        if len(keep) == 0:
            keep = torch.zeros(1, dtype=torch.long)  # keep one unit so shapes stay valid
        na = nn.Linear(a.in_features, len(keep), bias=a.bias is not None).to(a.weight.device)
        nb = nn.Linear(len(keep), b.out_features, bias=b.bias is not None).to(b.weight.device)
        with torch.no_grad():
            na.weight.copy_(a.weight[keep])
            if a.bias is not None:
                na.bias.copy_(a.bias[keep])
            nb.weight.copy_(b.weight[:, keep])
            if b.bias is not None:
                nb.bias.copy_(b.bias)
        replace_module(model, n1, na)
        replace_module(model, n2, nb)
        linears[i], linears[i + 1] = (n1, na), (n2, nb)
    return model
