"""Runtime helpers: device choice, seeding, FAST mode, the course's environment variables, timing.

Every notebook's setup cell calls :func:`resolve_fast`, :func:`pick_device` and
:func:`seed_everything` so a chapter behaves the same on a laptop CPU, a CUDA box or a Mac.

The course's environment variables (every ``COURSE_*`` name is defined here, nowhere else):

=========================  ==================================================================
``COURSE_FAST=1``          run the quick version of every chapter (:func:`resolve_fast`); forced
                           under ``nbgrader autograde``
``COURSE_HEADLESS=1``      nobody is looking: widgets also draw a static view
                           (:func:`utils.widgets.is_headless`)
``COURSE_FIGURES_DIR``     where a run writes each chapter's headline numbers (:mod:`utils.figures`)
``COURSE_CACHE_DIR``       the settings-keyed cache (:mod:`utils.cache`); ``COURSE_CACHE_RO``: a
                           read-only cache inside the sandbox
``COURSE_CHECKPOINT_DIR``  where the shipped checkpoints are read (:mod:`utils.checkpoints`)
``COURSE_SANDBOX``         ``require`` / ``off``: grading inside the sandbox; ``COURSE_SANDBOXED=1``
                           is set inside it; ``COURSE_GRADING_NOTES``: where grading notes go
=========================  ==================================================================

A headless run (papermill, ``nbgrader autograde``, the tests' subprocesses) gets its environment
from :func:`headless_env`: FAST is a *size* (passed also as the papermill parameter ``FAST``),
headless is *who is looking*; the two are separate variables.
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

FAST_ENV = "COURSE_FAST"
HEADLESS_ENV = "COURSE_HEADLESS"
FIGURES_DIR_ENV = "COURSE_FIGURES_DIR"
CACHE_DIR_ENV = "COURSE_CACHE_DIR"
CACHE_RO_ENV = "COURSE_CACHE_RO"
CHECKPOINT_DIR_ENV = "COURSE_CHECKPOINT_DIR"
SANDBOX_ENV = "COURSE_SANDBOX"
SANDBOXED_ENV = "COURSE_SANDBOXED"
GRADING_NOTES_ENV = "COURSE_GRADING_NOTES"
#: Every environment variable the course reads.
COURSE_ENV_NAMES = (FAST_ENV, HEADLESS_ENV, FIGURES_DIR_ENV, CACHE_DIR_ENV, CACHE_RO_ENV, CHECKPOINT_DIR_ENV,
                    SANDBOX_ENV, SANDBOXED_ENV, GRADING_NOTES_ENV)
#: BLAS/OpenMP threads of a headless run unless the caller chose otherwise.
HEADLESS_THREADS = "2"


def headless_env(fast: bool, base=None) -> dict:
    """The environment of a run nobody watches (papermill, nbgrader, the tests' subprocesses).

    A copy of ``base`` (default ``os.environ``) with ``COURSE_HEADLESS=1``, ``COURSE_FAST=1``
    when ``fast`` (removed when not, so an outer FAST does not leak into a full run), and
    ``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS`` defaulting to 2. ``base`` is left untouched.
    """
    env = dict(os.environ if base is None else base)
    env[HEADLESS_ENV] = "1"
    if fast:
        env[FAST_ENV] = "1"
    else:
        env.pop(FAST_ENV, None)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env.setdefault(var, HEADLESS_THREADS)
    return env


def resolve_fast(fast: bool) -> bool:
    """Return ``True`` when FAST mode is asked for or forced.

    FAST is forced by the environment variable ``COURSE_FAST=1``, which the course's grader,
    its tests and ``nbgrader autograde`` (via ``nbgrader_config.py`` and :func:`headless_env`)
    set, so autograding always runs the quick version of a chapter.
    """
    return bool(fast) or os.environ.get(FAST_ENV, "") == "1"


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
