"""Model compression: prune, quantize, factorize, and measure what was gained, honestly.

Chapter 05's primitives, one module per kind: :mod:`~utils.compress.pruning`,
:mod:`~utils.compress.quantization`, :mod:`~utils.compress.lowrank` and :mod:`~utils.compress.measure`
(the rulers). Everything is re-exported here, so ``from utils.compress import prune_model`` works. Three ways to map a model to a smaller one, and the rulers to judge them:

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

from .pruning import (PRUNABLE, dense_state_dict, effective_tensor, is_pruned, magnitude_mask, make_permanent,
    n_to_prune, prunable_modules, prune_model, prune_structured, replace_module, shrink_linear_chain,
    sparsity_report, torch_prune)
from .quantization import (Int8Conv2d, Int8Linear, QMAX, TorchaoResult, dequantize_int8, dequantize_model,
    fake_quantize_int8, import_torchao, int8_scale, quantize_int8, quantize_model_int8, torchao_int8)
from .lowrank import (low_rank_factors, low_rank_linear, low_rank_params)
from .measure import (Latency, measure_latency, model_bytes, pack_bits, save_and_size, serialized_bytes,
    serialized_size, sparse_state_dict, unpack_bits, unpack_state_dict)

__all__ = [
    "PRUNABLE", "dense_state_dict", "effective_tensor", "is_pruned", "magnitude_mask", "make_permanent",
    "n_to_prune", "prunable_modules", "prune_model", "prune_structured", "replace_module",
    "shrink_linear_chain", "sparsity_report", "torch_prune", "Int8Conv2d", "Int8Linear", "QMAX",
    "TorchaoResult", "dequantize_int8", "dequantize_model", "fake_quantize_int8", "import_torchao",
    "int8_scale", "quantize_int8", "quantize_model_int8", "torchao_int8", "low_rank_factors",
    "low_rank_linear", "low_rank_params", "Latency", "measure_latency", "model_bytes", "pack_bits",
    "save_and_size", "serialized_bytes", "serialized_size", "sparse_state_dict", "unpack_bits",
    "unpack_state_dict"
]
