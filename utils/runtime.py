"""Runtime helpers: device choice, seeding, FAST mode and timing.

Every notebook's setup cell calls :func:`resolve_fast`, :func:`pick_device` and
:func:`seed_everything` so a chapter behaves the same on a laptop CPU, a CUDA box or a Mac.
"""
from __future__ import annotations

import os
import random
import time
from contextlib import contextmanager

import numpy as np
import torch

from .errors import course_error

_KNOWN_DEVICES = ("auto", "cpu", "cuda", "mps")


def resolve_fast(fast: bool) -> bool:
    """Return ``True`` when FAST mode is asked for or forced.

    FAST is forced by the environment variable ``COURSE_FAST=1``, which the course's grader,
    its tests and ``nbgrader autograde`` (via ``nbgrader_config.py``) set, so autograding
    always runs the quick version of a chapter.
    """
    return bool(fast) or os.environ.get("COURSE_FAST", "") == "1"


def pick_device(device: str | torch.device = "auto") -> torch.device:
    """Map a device request to a :class:`torch.device`.

    ``"auto"`` picks CUDA, then Apple MPS, then CPU. An explicit ``"cuda"`` or ``"mps"`` on a
    machine without one raises a :class:`~utils.errors.CourseError` instead of silently
    falling back, so a benchmark never reports CPU figures as GPU ones.
    """
    if isinstance(device, torch.device):
        device = str(device)
    if not isinstance(device, str) or device.split(":")[0] not in _KNOWN_DEVICES:
        raise course_error("device", "one of " + ", ".join(map(repr, _KNOWN_DEVICES)),
                           repr(device), 'pass DEVICE = "auto" to let the course choose')
    kind = device.split(":")[0]
    if kind == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if kind == "cuda" and not torch.cuda.is_available():
        raise course_error("device", "a machine with a CUDA GPU for device='cuda'",
                           "torch.cuda.is_available() == False",
                           'use DEVICE = "auto" or "cpu" on this machine')
    if kind == "mps" and not (getattr(torch.backends, "mps", None) is not None
                              and torch.backends.mps.is_available()):
        raise course_error("device", "an Apple-silicon Mac for device='mps'", "no MPS backend",
                           'use DEVICE = "auto" or "cpu" on this machine')
    return torch.device(device)


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch (CPU and CUDA); return a CPU ``torch.Generator`` seeded alike."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    return torch.Generator().manual_seed(seed)


def synchronize(device: torch.device | str | None = None) -> None:
    """Wait for queued GPU work so that wall-clock timings are honest (no-op on CPU)."""
    dev = torch.device(device) if device is not None else None
    if dev is not None and dev.type == "cuda":
        torch.cuda.synchronize(dev)
    elif dev is not None and dev.type == "mps":
        torch.mps.synchronize()


@contextmanager
def timer(device: torch.device | str | None = None):
    """Context manager measuring wall time in seconds: ``with timer() as t: ...; t.seconds``."""
    class _T:
        seconds = float("nan")
    t = _T()
    synchronize(device)
    start = time.perf_counter()
    try:
        yield t
    finally:
        synchronize(device)
        t.seconds = time.perf_counter() - start


def peak_memory_mb(device: torch.device | str) -> float | None:
    """Peak CUDA memory allocated since the last reset, in MiB; ``None`` where torch cannot tell."""
    dev = torch.device(device)
    if dev.type == "cuda":
        return torch.cuda.max_memory_allocated(dev) / 2**20
    return None


def reset_peak_memory(device: torch.device | str) -> None:
    """Reset the CUDA peak-memory counter (no-op elsewhere)."""
    dev = torch.device(device)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
