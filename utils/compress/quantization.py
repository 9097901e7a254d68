"""Symmetric int8 quantization: tensors, int8 layers, whole models, and torchao's maintained path
(chapter 05).
"""
from __future__ import annotations

import copy
import logging
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from ..errors import course_error
from ..vocab import Network
from .pruning import (PRUNABLE, _check_tensor, effective_tensor, is_pruned, make_permanent, prunable_modules,
                      replace_module)

__all__ = [
    "QMAX", "int8_scale", "quantize_int8", "dequantize_int8", "fake_quantize_int8", "Int8Linear",
    "Int8Conv2d", "quantize_model_int8", "dequantize_model", "TorchaoResult", "import_torchao",
    "torchao_int8",
]


#: The largest int8 code used by the symmetric scheme (``-QMAX..QMAX``).
QMAX = 127
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

    Taught in chapter 05, § 4.1 Symmetric int8 by hand.
    """
    scale = int8_scale(x, per_channel, axis)
    axis = axis % x.dim()
    q = torch.clamp(torch.round(x.detach().float() / _expand(scale, x.dim(), axis)), -QMAX, QMAX)
    return q.to(torch.int8), scale


def dequantize_int8(q: torch.Tensor, scale: torch.Tensor, axis: int = 0) -> torch.Tensor:
    """``q * scale`` as float32 (``scale`` broadcast along ``axis`` when it has one entry per slice).

    Taught in chapter 05, § 4.1 Symmetric int8 by hand.
    """
    if not torch.is_tensor(q) or q.dtype != torch.int8:
        raise course_error("q", "an int8 tensor from quantize_int8", getattr(q, "dtype", type(q).__name__),
                           "pass the first value quantize_int8 returned")
    scale = torch.as_tensor(scale, dtype=torch.float32, device=q.device)
    if scale.dim() == 1 and scale.numel() != q.shape[axis % q.dim()]:
        raise course_error("scale", f"one scale per slice along axis {axis} ({q.shape[axis % q.dim()]})",
                           f"{scale.numel()} scales", "pass the scale that came with q")
    return q.float() * _expand(scale, q.dim(), axis % q.dim())


def fake_quantize_int8(x: torch.Tensor, per_channel: bool = False, axis: int = 0) -> torch.Tensor:
    """``dequantize(quantize(x))``: what the network computes with after int8 rounding.

    Taught in chapter 05, § 4.1 Symmetric int8 by hand.
    """
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

    Taught in chapter 05, § 4.2 An int8 model, and what it costs on disk.
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


def quantize_model_int8(model: Network, per_channel: bool = True, kinds=PRUNABLE) -> Network:
    """A copy of ``model`` with every Linear / Conv2d replaced by :class:`Int8Linear` /
    :class:`Int8Conv2d` (symmetric int8 weights, float32 scales, biases and everything else).
    Pruned layers are quantized from their masked weights (zeros stay exactly zero).

    Taught in chapter 05, § 4.2 An int8 model, and what it costs on disk.
    """
    new = copy.deepcopy(model)
    for name, m in prunable_modules(new, kinds):
        layer = Int8Linear(m, per_channel) if isinstance(m, nn.Linear) else Int8Conv2d(m, per_channel)
        replace_module(new, name, layer)
    return new



def dequantize_model(model: Network) -> Network:
    """A float copy of a model from :func:`quantize_model_int8`: every :class:`Int8Linear` /
    :class:`Int8Conv2d` becomes an ordinary ``nn.Linear`` / ``nn.Conv2d`` holding the dequantized
    weight ``q * scale`` (what the int8 file decodes to), so it can be trained or adapted again.
    Its outputs equal the int8 model's; its size is float32 again.

    Taught in chapter 05, § 7.2 A MAML initialization.
    """
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


def torchao_int8(model: Network, mode: str = "weight_only", example: torch.Tensor | None = None) -> TorchaoResult:
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

    Taught in chapter 05, § 4.3 The maintained library path: torchao.
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
