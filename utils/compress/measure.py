"""The rulers: bytes that ``torch.save`` really writes, sparse storage of a pruned model, and
latency as the median of many runs (chapter 05).
"""
from __future__ import annotations

import io
import lzma
import math
import os
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from ..errors import course_error
from ..runtime import pick_device, synchronize
from .pruning import _check_sparsity, dense_state_dict, is_pruned
from .quantization import quantize_int8

__all__ = [
    "serialized_bytes", "serialized_size", "save_and_size", "model_bytes", "pack_bits",
    "unpack_bits", "sparse_state_dict", "unpack_state_dict", "Latency", "measure_latency",
]


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

    Taught in chapter 05, § 1. The model to compress, and three rulers.
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

    Taught in chapter 05, § 1. The model to compress, and three rulers.
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

    Taught in chapter 05, § 3.3 Storing a sparse model honestly.
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
    """Dense float state dict from :func:`sparse_state_dict`'s output (int8 values dequantized).

    Taught in chapter 05, § 3.3 Storing a sparse model honestly.
    """
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

    Taught in chapter 05, § 1. The model to compress, and three rulers.
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
