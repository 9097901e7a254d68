"""Model compression: prune, quantize, factorize, and measure what was gained, honestly.

Chapter 05's primitives. Three ways to map a model to a smaller one, and the rulers to judge them:

* **Pruning** (:func:`magnitude_mask`, :func:`prune_model`, :func:`prune_structured`,
  :func:`make_permanent`, :func:`sparsity_report`, :func:`shrink_linear_chain`). Masks are
  applied with ``torch.nn.utils.prune`` (``custom_from_mask``): the module keeps ``weight_orig``
  and a ``weight_mask`` buffer, a forward pre-hook recomputes ``weight = weight_orig * mask``,
  so fine-tuning after pruning leaves the pruned entries at zero. :func:`make_permanent`
  (``prune.remove``) folds the mask into a plain ``weight`` again.
* **Quantization** (:func:`quantize_int8`, :func:`dequantize_int8`, :class:`Int8Linear`,
  :class:`Int8Conv2d`, :func:`quantize_model_int8`, :func:`dequantize_model`, and the maintained library path
  :func:`torchao_int8`).
* **Low rank** (:func:`low_rank_factors`, :func:`low_rank_linear`, :func:`replace_module`).
* **Rulers**: :func:`serialized_size` / :func:`save_and_size` (bytes that ``torch.save`` really
  writes), :func:`sparse_state_dict` (a pruned model stored as bitmask + values or CSR, so its
  zeros cost nothing) and :func:`measure_latency` (warm-up, then the median of many runs).

Conventions (the tests check them):

* Sparsity = fraction of entries set to zero. A request for sparsity ``s`` of ``n`` entries prunes
  exactly ``round(s * n)`` of them (Python's ``round``, as ``torch.nn.utils.prune`` does), the
  smallest in magnitude; ties are broken by position (the earlier entry goes first), so the count
  is exact even when many weights share a magnitude.
* int8 is **symmetric** with zero-point 0: ``scale = max|x| / 127`` over the whole tensor
  (per-tensor) or over each slice along ``axis`` (per-channel; axis 0 = output channels of a
  Linear / Conv2d weight); ``q = clamp(round(x / scale), -127, 127)`` (round half to even);
  ``x̂ = q * scale``. The code -128 is never used, so the grid is symmetric around 0. A slice
  that is all zeros gets ``scale = 1`` (any positive value gives q = 0). Because the largest
  magnitude maps to ±127 exactly, nothing is clipped and ``|x - x̂| <= scale / 2`` everywhere.
"""
from __future__ import annotations

import copy
import io
import logging
import lzma
import math
import os
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils import prune

from .errors import course_error
from .runtime import pick_device, synchronize

#: The largest int8 code used by the symmetric scheme (``-QMAX..QMAX``).
QMAX = 127
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


def prune_model(model: nn.Module, sparsity: float, scope: str = "global", kinds=PRUNABLE,
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


def make_permanent(model: nn.Module) -> nn.Module:
    """Fold every pruning mask into its tensor (``prune.remove``): plain ``weight`` parameters with
    zeros, no ``*_orig`` / ``*_mask`` left. In place; returns the model."""
    for m in model.modules():
        names = [h._tensor_name for h in list(m._forward_pre_hooks.values())
                 if isinstance(h, prune.BasePruningMethod)]
        for name in names:
            prune.remove(m, name)
    return model


def sparsity_report(model: nn.Module, kinds=PRUNABLE) -> list[dict]:
    """Zeros per layer weight and over all of them.

    Returns rows ``{"layer", "zeros", "total", "sparsity"}``; the last row is ``layer == "all"``.
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
    """Put ``new`` where the submodule ``name`` (e.g. ``"features.1.2"``) was; in place, returns the model."""
    lookup = dict(model.named_modules())
    if name not in lookup or name == "":
        raise course_error("name", "the dotted name of a submodule",
                           repr(name), f"pick one of {[n for n in lookup if n][:8]}")
    parent, attr = _parent(model, name)
    setattr(parent, attr, new)
    return model


def shrink_linear_chain(model: nn.Module) -> nn.Module:
    """Physically remove dead hidden units from a chain of Linear layers (after structured pruning).

    Assumes the model applies its Linear layers in registration order with activations ``f`` such
    that ``f(0) = 0`` between them (ReLU, as in :mod:`utils.models` MLPs). A hidden unit whose
    incoming weight row **and** bias are all zero outputs 0, so dropping that row of one layer and
    that column of the next is exact. Pruning is made permanent first. In place; returns the model.
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


# =============================================================================== int8 quantization
def _amax(x: torch.Tensor, per_channel: bool, axis: int) -> torch.Tensor:
    if not per_channel:
        return x.abs().amax()
    dims = [d for d in range(x.dim()) if d != axis]
    return x.abs().amax(dim=dims) if dims else x.abs()


def _expand(scale: torch.Tensor, x_dim: int, axis: int) -> torch.Tensor:
    if scale.dim() == 0:
        return scale
    shape = [1] * x_dim
    shape[axis] = -1
    return scale.view(shape)


def int8_scale(x: torch.Tensor, per_channel: bool = False, axis: int = 0) -> torch.Tensor:
    """Symmetric scale ``max|x| / 127``: a scalar, or one per slice along ``axis`` ``(x.shape[axis],)``;
    all-zero slices get 1."""
    x = _check_tensor("x", x).detach()
    if per_channel and not -x.dim() <= axis < x.dim():
        raise course_error("axis", f"an axis of a {x.dim()}-D tensor", repr(axis), "use axis=0 (output channels)")
    axis = axis % x.dim()
    amax = _amax(x.float(), per_channel, axis)
    return torch.where(amax > 0, amax / QMAX, torch.ones_like(amax)).float()


def quantize_int8(x: torch.Tensor, per_channel: bool = False, axis: int = 0):
    """Symmetric int8 quantization (see the module docstring for the conventions).

    Args:
        x: floating tensor (weights: ``(out, in)`` or ``(out, in, kh, kw)``).
        per_channel: one scale per slice along ``axis`` instead of one for the whole tensor.
    Returns:
        ``(q, scale)``: ``q`` int8 shaped like ``x`` in ``[-127, 127]``; ``scale`` float32, a 0-d
        tensor (per-tensor) or ``(x.shape[axis],)`` (per-channel).
    """
    scale = int8_scale(x, per_channel, axis)
    axis = axis % x.dim()
    q = torch.clamp(torch.round(x.detach().float() / _expand(scale, x.dim(), axis)), -QMAX, QMAX)
    return q.to(torch.int8), scale


def dequantize_int8(q: torch.Tensor, scale: torch.Tensor, axis: int = 0) -> torch.Tensor:
    """``q * scale`` as float32 (``scale`` broadcast along ``axis`` when it has one entry per slice)."""
    if not torch.is_tensor(q) or q.dtype != torch.int8:
        raise course_error("q", "an int8 tensor from quantize_int8", getattr(q, "dtype", type(q).__name__),
                           "pass the first value quantize_int8 returned")
    scale = torch.as_tensor(scale, dtype=torch.float32, device=q.device)
    if scale.dim() == 1 and scale.numel() != q.shape[axis % q.dim()]:
        raise course_error("scale", f"one scale per slice along axis {axis} ({q.shape[axis % q.dim()]})",
                           f"{scale.numel()} scales", "pass the scale that came with q")
    return q.float() * _expand(scale, q.dim(), axis % q.dim())


def fake_quantize_int8(x: torch.Tensor, per_channel: bool = False, axis: int = 0) -> torch.Tensor:
    """``dequantize(quantize(x))``: what the network computes with after int8 rounding."""
    q, s = quantize_int8(x, per_channel, axis)
    return dequantize_int8(q, s, axis)


class _Int8Weight(nn.Module):
    """Shared part of the int8 layers: int8 weight + float32 per-output-channel scale as buffers."""

    def _set(self, weight: torch.Tensor, bias, per_channel: bool):
        q, s = quantize_int8(weight.detach(), per_channel=per_channel, axis=0)
        self.register_buffer("weight_int8", q)
        self.register_buffer("scale", s)
        self.bias = None if bias is None else nn.Parameter(bias.detach().clone(), requires_grad=False)

    def dequantized_weight(self) -> torch.Tensor:
        return dequantize_int8(self.weight_int8, self.scale, axis=0)


class Int8Linear(_Int8Weight):
    """A Linear layer stored as int8 weights + float32 scales (+ float32 bias).

    The state dict holds 1 byte per weight; the forward pass dequantizes the weight and runs a
    float matmul (weight-only quantization: smaller on disk and in memory, same arithmetic).
    """

    def __init__(self, linear: nn.Linear, per_channel: bool = True):
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self._set(effective_tensor(linear), None if linear.bias is None else effective_tensor(linear, "bias"),
                  per_channel)

    def forward(self, x):
        return F.linear(x, self.dequantized_weight().to(x.dtype), self.bias)

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, int8"


class Int8Conv2d(_Int8Weight):
    """A Conv2d layer stored as int8 weights + float32 per-filter scales (see :class:`Int8Linear`)."""

    def __init__(self, conv: nn.Conv2d, per_channel: bool = True):
        super().__init__()
        if conv.padding_mode != "zeros":
            raise course_error("conv", "a Conv2d with padding_mode='zeros'", repr(conv.padding_mode),
                               "quantize this layer another way")
        self.stride, self.padding, self.dilation, self.groups = conv.stride, conv.padding, conv.dilation, conv.groups
        self._set(effective_tensor(conv), None if conv.bias is None else effective_tensor(conv, "bias"),
                  per_channel)

    def forward(self, x):
        return F.conv2d(x, self.dequantized_weight().to(x.dtype), self.bias, self.stride, self.padding,
                        self.dilation, self.groups)


def quantize_model_int8(model: nn.Module, per_channel: bool = True, kinds=PRUNABLE) -> nn.Module:
    """A copy of ``model`` with every Linear / Conv2d replaced by :class:`Int8Linear` /
    :class:`Int8Conv2d` (symmetric int8 weights, float32 scales, biases and everything else).
    Pruned layers are quantized from their masked weights (zeros stay exactly zero)."""
    new = copy.deepcopy(model)
    for name, m in prunable_modules(new, kinds):
        layer = Int8Linear(m, per_channel) if isinstance(m, nn.Linear) else Int8Conv2d(m, per_channel)
        replace_module(new, name, layer)
    return new



def dequantize_model(model: nn.Module) -> nn.Module:
    """A float copy of a model from :func:`quantize_model_int8`: every :class:`Int8Linear` /
    :class:`Int8Conv2d` becomes an ordinary ``nn.Linear`` / ``nn.Conv2d`` holding the dequantized
    weight ``q * scale`` (what the int8 file decodes to), so it can be trained or adapted again.
    Its outputs equal the int8 model's; its size is float32 again."""
    new = copy.deepcopy(model)
    for name, m in list(new.named_modules()):
        if not isinstance(m, (Int8Linear, Int8Conv2d)):
            continue
        w = m.dequantized_weight()
        if isinstance(m, Int8Linear):
            layer = nn.Linear(w.shape[1], w.shape[0], bias=m.bias is not None)
        else:
            layer = nn.Conv2d(w.shape[1] * m.groups, w.shape[0], tuple(w.shape[2:]), stride=m.stride,
                              padding=m.padding, dilation=m.dilation, groups=m.groups, bias=m.bias is not None)
        layer = layer.to(w.device)
        with torch.no_grad():
            layer.weight.copy_(w)
            if m.bias is not None:
                layer.bias.copy_(m.bias)
        replace_module(new, name, layer)
    return new

# =============================================================================== torchao path
@dataclass
class TorchaoResult:
    """Outcome of :func:`torchao_int8`: the quantized ``model``, which ``backend`` made it and, if
    torchao failed, the ``error`` it raised (the model then comes from :func:`quantize_model_int8`)."""
    model: nn.Module
    backend: str
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def import_torchao():
    """Import ``torchao.quantization`` with its import-time notices silenced.

    On a CPU-only machine torchao logs that its CUDA-only extensions (mxfp8, cutlass) cannot load,
    and torch warns about an Enum registration; neither affects the int8 CPU path.
    """
    loggers = [logging.getLogger(n) for n in ("torchao", "torch.utils._pytree")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        import torchao.quantization as tq  # noqa: F401
    finally:
        for lg, lv in zip(loggers, levels):
            lg.setLevel(lv)
    return tq


def torchao_int8(model: nn.Module, mode: str = "weight_only", example: torch.Tensor | None = None) -> TorchaoResult:
    """A copy of ``model`` whose Linear layers torchao quantized to int8.

    Args:
        mode: ``"weight_only"`` (``Int8WeightOnlyConfig``: int8 weights, float activations) or
            ``"dynamic"`` (``Int8DynamicActivationInt8WeightConfig``: activations quantized per
            batch at run time, int8 x int8 matmul).
        example: an input batch; if given, one forward pass is tried, so a missing kernel on
            this machine shows up here rather than later.
    Returns:
        a :class:`TorchaoResult`. If torchao is missing or fails, the error is recorded and the
        model is quantized by :func:`quantize_model_int8` instead (never by the deprecated
        ``torch.ao.quantization``), with ``backend`` saying so.
    """
    configs = {"weight_only": "Int8WeightOnlyConfig", "dynamic": "Int8DynamicActivationInt8WeightConfig"}
    if mode not in configs:
        raise course_error("mode", "'weight_only' or 'dynamic'", repr(mode), "pick one of the two")
    new = copy.deepcopy(model).eval()
    if is_pruned(new):
        make_permanent(new)
    try:
        tq = import_torchao()
        tq.quantize_(new, getattr(tq, configs[mode])())
        if example is not None:
            with torch.no_grad():
                new(example)
        return TorchaoResult(new, f"torchao {configs[mode]}")
    except Exception as exc:  # noqa: BLE001 - any torchao failure falls back, with the reason kept
        fallback = quantize_model_int8(model, per_channel=True, kinds=(nn.Linear,)).eval()
        return TorchaoResult(fallback, "course Int8Linear (torchao failed)", f"{type(exc).__name__}: {exc}")


# =============================================================================== low rank
def _check_rank(rank, shape) -> int:
    limit = min(shape)
    if isinstance(rank, bool) or int(rank) != rank or not 1 <= rank <= limit:
        raise course_error("rank", f"an integer in [1, {limit}] for a {shape[0]}×{shape[1]} matrix",
                           repr(rank), f"pick a rank between 1 and {limit}")
    return int(rank)


def low_rank_factors(weight: torch.Tensor, rank: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Best rank-``r`` factorization ``weight ≈ A @ B`` from the SVD (Eckart–Young).

    ``weight`` ``(m, n)`` → ``A`` ``(m, r) = U_r diag(sqrt σ_r)``, ``B`` ``(r, n) = diag(sqrt σ_r) V_rᵀ``.
    The Frobenius error is ``sqrt(σ_{r+1}² + ...)``, the smallest of any rank-r matrix.
    """
    w = _check_tensor("weight", weight).detach()
    if w.dim() != 2:
        raise course_error("weight", "a 2-D matrix (out, in)", f"shape {tuple(w.shape)}",
                           "flatten conv kernels to (out, in*kh*kw) first")
    r = _check_rank(rank, w.shape)
    U, S, Vh = torch.linalg.svd(w.float(), full_matrices=False)
    root = S[:r].sqrt()
    return U[:, :r] * root, root[:, None] * Vh[:r]


def low_rank_params(out_features: int, in_features: int, rank: int, bias: bool = True) -> int:
    """Parameters of the factorized layer: ``rank * (in + out)`` (+ ``out`` for the bias)."""
    return rank * (in_features + out_features) + (out_features if bias else 0)


def low_rank_linear(linear: nn.Linear, rank: int) -> nn.Sequential:
    """``nn.Sequential(Linear(in, r, bias=False), Linear(r, out))`` computing ``x ↦ A(Bx) + b``.

    Fewer parameters than the original only when ``rank * (in + out) < in * out``.
    At ``rank = min(in, out)`` it reproduces the layer up to float rounding.
    """
    if not isinstance(linear, nn.Linear):
        raise course_error("linear", "an nn.Linear", type(linear).__name__, "pass one Linear layer")
    A, B = low_rank_factors(effective_tensor(linear), rank)
    r = A.shape[1]
    first = nn.Linear(linear.in_features, r, bias=False)
    second = nn.Linear(r, linear.out_features, bias=linear.bias is not None)
    with torch.no_grad():
        first.weight.copy_(B)
        second.weight.copy_(A)
        if linear.bias is not None:
            second.bias.copy_(effective_tensor(linear, "bias"))
    return nn.Sequential(first, second).to(linear.weight.device)


# =============================================================================== sizes
def serialized_bytes(obj) -> bytes:
    """What ``torch.save(obj, f)`` writes, as bytes."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def serialized_size(obj, compress: str | None = None) -> int:
    """Bytes ``torch.save`` writes for ``obj`` (a state dict, a packed dict, a model).

    ``compress="lzma"`` reports the size after a general-purpose entropy coder (xz, preset 9), a
    stand-in for Deep Compression's Huffman stage. The zip container ``torch.save`` writes adds
    a few hundred bytes per tensor (headers, 64-byte alignment): honest, and visible on small models.
    Inside that zip every record is named after the file (``archive/`` for an in-memory buffer),
    so a file saved as ``archive.pt`` has exactly this many bytes; another file name changes
    the total by a few bytes per tensor (a shorter name saves them).
    """
    data = serialized_bytes(obj)
    if compress is None:
        return len(data)
    if compress == "lzma":
        return len(lzma.compress(data, preset=9))
    raise course_error("compress", "None or 'lzma'", repr(compress), "pass compress=None or 'lzma'")


def save_and_size(obj, path: str | Path) -> int:
    """``torch.save(obj, path)`` and return the file's length in bytes (``os.path.getsize``).

    Equals :func:`serialized_size` when the file is called ``archive.pt`` (see there).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(obj, path)
    return os.path.getsize(path)


def model_bytes(model: nn.Module, compress: str | None = None) -> int:
    """:func:`serialized_size` of the model's state dict (pruning masks folded in first)."""
    sd = dense_state_dict(model) if is_pruned(model) else model.state_dict()
    return serialized_size(sd, compress)


def pack_bits(mask: torch.Tensor) -> torch.Tensor:
    """Bool tensor → uint8 bytes, 8 flags per byte (most significant bit first; zero-padded)."""
    flat = mask.detach().flatten().to(torch.uint8).cpu()
    pad = (-flat.numel()) % 8
    flat = torch.cat([flat, flat.new_zeros(pad)]).view(-1, 8)
    weights = torch.tensor([128, 64, 32, 16, 8, 4, 2, 1], dtype=torch.uint8)
    return (flat * weights).sum(1, dtype=torch.uint8)


def unpack_bits(bits: torch.Tensor, n: int) -> torch.Tensor:
    """Inverse of :func:`pack_bits`: the first ``n`` flags as a bool vector."""
    shifts = torch.arange(7, -1, -1, dtype=torch.uint8)
    return ((bits.view(-1, 1) >> shifts) & 1).flatten()[:n].bool()


def _index_dtype(limit: int) -> torch.dtype:
    for dt in (torch.int16, torch.int32):
        if limit <= torch.iinfo(dt).max:
            return dt
    return torch.int64


def sparse_state_dict(model_or_sd, fmt: str = "bitmask", values: str = "float32",
                      min_sparsity: float = 0.0) -> dict:
    """Pack a (pruned) model's state for storage so that its zeros cost (almost) nothing.

    Every tensor with at least 2 dimensions and at least ``min_sparsity`` zeros is stored as
    * ``fmt="bitmask"``: one bit per entry (``pack_bits``) + the nonzero values in order, or
    * ``fmt="csr"``: the weight viewed as ``(out, -1)``: row pointers, column indices in the
      smallest integer type that fits (int16 when < 32768 columns), and the nonzero values.
    ``values="int8"`` additionally stores the values as symmetric per-output-channel int8 with
    float32 scales (quantize after pruning: the Deep Compression order). Other tensors (biases,
    BatchNorm) are stored dense as they are. Returns a dict for ``torch.save``; measure it with
    :func:`serialized_size` and restore it with :func:`unpack_state_dict`.
    """
    if fmt not in ("bitmask", "csr"):
        raise course_error("fmt", "'bitmask' or 'csr'", repr(fmt), "pick one of the two")
    if values not in ("float32", "int8"):
        raise course_error("values", "'float32' or 'int8'", repr(values), "pick one of the two")
    min_s = _check_sparsity(min_sparsity, "min_sparsity")
    sd = dense_state_dict(model_or_sd) if isinstance(model_or_sd, nn.Module) else dict(model_or_sd)
    packed = {}
    for key, t in sd.items():
        t = t.detach().cpu()
        if t.dim() < 2 or not t.is_floating_point() or float((t == 0).float().mean()) < min_s:
            packed[key] = t
            continue
        entry = {"fmt": fmt, "shape": tuple(t.shape)}
        w2 = t.reshape(t.shape[0], -1)
        nz = w2 != 0
        if values == "int8":
            q, scale = quantize_int8(w2, per_channel=True, axis=0)
            entry["scale"] = scale
            vals = q[nz]
        else:
            vals = w2[nz].float()
        entry["values"] = vals
        if fmt == "bitmask":
            entry["bits"] = pack_bits(nz)
        else:
            counts = nz.sum(1)
            entry["crow"] = torch.cat([counts.new_zeros(1), counts.cumsum(0)]).to(_index_dtype(int(nz.sum())))
            entry["col"] = nz.nonzero()[:, 1].to(_index_dtype(w2.shape[1]))
        packed[key] = entry
    return packed


def unpack_state_dict(packed: dict) -> dict[str, torch.Tensor]:
    """Dense float state dict from :func:`sparse_state_dict`'s output (int8 values dequantized)."""
    sd = {}
    for key, entry in packed.items():
        if torch.is_tensor(entry):
            sd[key] = entry
            continue
        shape = entry["shape"]
        rows, cols = shape[0], int(math.prod(shape[1:]))
        if entry["fmt"] == "bitmask":
            nz = unpack_bits(entry["bits"], rows * cols).view(rows, cols)
        else:
            crow, col = entry["crow"].long(), entry["col"].long()
            row_of = torch.repeat_interleave(torch.arange(rows), crow[1:] - crow[:-1])
            nz = torch.zeros(rows, cols, dtype=torch.bool)
            nz[row_of, col] = True
        w = torch.zeros(rows, cols)
        vals = entry["values"]
        if "scale" in entry:
            row_scale = entry["scale"].view(-1, 1).expand(rows, cols)[nz]
            vals = vals.float() * row_scale
        w[nz] = vals.float()
        sd[key] = w.view(shape)
    return sd


# =============================================================================== latency
@dataclass
class Latency:
    """Wall time of one forward pass: ``median_ms`` over ``times_ms`` (after warm-up runs)."""
    median_ms: float
    p10_ms: float
    p90_ms: float
    times_ms: list = field(default_factory=list)
    batch: int = 0
    device: str = "cpu"

    def __str__(self) -> str:
        return f"{self.median_ms:.3f} ms (p10 {self.p10_ms:.3f}, p90 {self.p90_ms:.3f}; batch {self.batch})"


@torch.no_grad()
def measure_latency(model: nn.Module, x: torch.Tensor, warmup: int = 10, repeats: int = 50,
                    device="auto") -> Latency:
    """Median wall time of ``model(x)`` in eval mode, after ``warmup`` untimed runs.

    The median (not the mean) is reported because on a shared machine a few runs are slowed by
    other processes; p10 / p90 show the spread. GPU work is synchronized before reading the clock.
    """
    if int(repeats) != repeats or repeats < 1 or int(warmup) != warmup or warmup < 0:
        raise course_error("warmup / repeats", "warmup >= 0 and repeats >= 1 (integers)",
                           f"warmup={warmup!r}, repeats={repeats!r}", "pass e.g. warmup=10, repeats=50")
    device = pick_device(device)
    was_training = model.training
    model.to(device).eval()
    x = x.to(device)
    for _ in range(int(warmup)):
        model(x)
    times = []
    for _ in range(int(repeats)):
        synchronize(device)
        t0 = time.perf_counter()
        model(x)
        synchronize(device)
        times.append(1e3 * (time.perf_counter() - t0))
    model.train(was_training)
    qs = statistics.quantiles(times, n=10) if len(times) >= 2 else [times[0]] * 9
    return Latency(statistics.median(times), qs[0], qs[-1], times, len(x), str(device))
