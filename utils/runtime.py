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

__all__ = [
    "FAST_ENV", "HEADLESS_ENV", "FIGURES_DIR_ENV", "CACHE_DIR_ENV", "CACHE_RO_ENV", "SHIPPED_CACHE_DIR_ENV",
    "CHECKPOINT_DIR_ENV", "SANDBOX_ENV", "SANDBOXED_ENV", "GRADING_NOTES_ENV", "ARTEFACT_LOG_ENV",
    "COURSE_ENV_NAMES", "HEADLESS_THREADS", "headless_env", "resolve_fast", "pick_device", "seed_everything",
    "synchronize", "timer", "peak_memory_mb", "reset_peak_memory", "THREADS_ENV", "SMALL_WORKLOAD_FLOPS",
    "usable_cores", "free_cores", "threads_for", "torch_threads", "reuse_freed_memory"
]

_KNOWN_DEVICES = ("auto", "cpu", "cuda", "mps")

FAST_ENV = "COURSE_FAST"
HEADLESS_ENV = "COURSE_HEADLESS"
FIGURES_DIR_ENV = "COURSE_FIGURES_DIR"
CACHE_DIR_ENV = "COURSE_CACHE_DIR"
CACHE_RO_ENV = "COURSE_CACHE_RO"
SHIPPED_CACHE_DIR_ENV = "COURSE_SHIPPED_CACHE_DIR"
CHECKPOINT_DIR_ENV = "COURSE_CHECKPOINT_DIR"
SANDBOX_ENV = "COURSE_SANDBOX"
SANDBOXED_ENV = "COURSE_SANDBOXED"
GRADING_NOTES_ENV = "COURSE_GRADING_NOTES"
#: this run's artefact log: ``course run`` sets it per chapter (:func:`utils.cache.note_artefact`)
ARTEFACT_LOG_ENV = "COURSE_ARTEFACT_LOG"
#: Every environment variable the course reads.
COURSE_ENV_NAMES = (FAST_ENV, HEADLESS_ENV, FIGURES_DIR_ENV, CACHE_DIR_ENV, CACHE_RO_ENV, SHIPPED_CACHE_DIR_ENV,
                    CHECKPOINT_DIR_ENV,
                    SANDBOX_ENV, SANDBOXED_ENV, GRADING_NOTES_ENV, ARTEFACT_LOG_ENV, "COURSE_THREADS")
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


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA). Returns nothing, so the chapters' setup cell,
    which ends with this call, prints nothing either; make a generator with
    ``torch.Generator().manual_seed(seed)`` where one is needed."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


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


# ----------------------------------------------------------------------------- CPU threads
THREADS_ENV = "COURSE_THREADS"
SMALL_WORKLOAD_FLOPS = 2e8  # below this many FLOPs per step a second thread costs more than it gives


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS tells, else ``os.cpu_count``)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _busy_jiffies() -> tuple[float, float] | None:
    """``(busy, total)`` CPU time of the whole machine from ``/proc/stat`` (Linux), else ``None``."""
    try:
        with open("/proc/stat") as f:
            fields = [float(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)  # idle + iowait
    return sum(fields[:8]) - idle, sum(fields[:8])


def free_cores(window_s: float = 0.1) -> float:
    """Cores that other processes left idle over the last ``window_s`` seconds (Linux; elsewhere
    every usable core counts as free). This process's own CPU time is counted as free, so the
    answer does not depend on how many threads the caller itself is running."""
    cores = usable_cores()
    a, own_a = _busy_jiffies(), time.process_time()
    if a is None:
        return float(cores)
    time.sleep(window_s)
    b, own_b = _busy_jiffies(), time.process_time()
    total = (b[1] - a[1]) or 1.0
    ncpu = os.cpu_count() or cores
    busy_cores = ncpu * (b[0] - a[0]) / total  # machine-wide, in cores
    others = max(0.0, busy_cores - (own_b - own_a) / max(window_s, 1e-9))
    return max(0.0, min(float(cores), ncpu - others))


def threads_for(flops_per_step: float | None = None, threads: int | None = None) -> int:
    """Intra-op threads for a workload of ``flops_per_step`` floating-point operations per step.

    Chapter 02, "Vectorizing the inner loop": two threads help only when (1) one step holds
    enough arithmetic to split (a sinusoid MLP's meta-batch does not: the threads spend their
    time waiting for each other) and (2) a second core is actually free — on a busy laptop a
    thread that must wait for a core stalls the other one at every operation, which made the
    vectorized path 25× slower under load. So:

    * ``threads`` (an explicit argument) or the environment variable ``COURSE_THREADS`` wins;
    * a workload under ``SMALL_WORKLOAD_FLOPS`` (or of unknown size) gets 1 thread;
    * a larger one gets as many threads as there are cores left idle by other processes
      (:func:`free_cores`, measured now over 0.1 s), at least 1.
    """
    choice = threads if threads is not None else os.environ.get(THREADS_ENV, "").strip() or None
    if choice is not None:
        try:
            n = int(choice)
        except (TypeError, ValueError):
            n = 0
        if n < 1:
            raise course_error(THREADS_ENV if threads is None else "threads", "a positive integer",
                               repr(choice), f"pass e.g. 1, or unset {THREADS_ENV} to let the course choose")
        return n
    if flops_per_step is None or flops_per_step < SMALL_WORKLOAD_FLOPS:
        return 1
    return max(1, min(usable_cores(), int(free_cores() + 0.5)))


@contextmanager
def torch_threads(n: int):
    """Run the block with ``torch.set_num_threads(n)``; the previous setting is restored after."""
    before = torch.get_num_threads()
    if n != before:
        torch.set_num_threads(int(n))
    try:
        yield int(n)
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


_MEMORY_REUSE = []


def reuse_freed_memory(limit_mb: int = 1024) -> bool:
    """Ask glibc's allocator to keep freed blocks of up to ``limit_mb`` MiB for reuse (Linux only).

    By default glibc hands every allocation above 32 MiB straight back to the OS when it is
    freed, so a step that makes many large temporaries (the tasks of a meta-batch folded into
    one wide image, :mod:`utils.learners.folded`) pays page faults on each of them, every step: on the
    course's 2-core machine that more than doubled the time of elementwise operations. Called
    once by the folded path; the price is that the process keeps its peak memory. Returns
    whether the allocator accepted (``False`` off glibc)."""
    if _MEMORY_REUSE:
        return _MEMORY_REUSE[0]
    ok = False
    try:
        import ctypes
        libc = ctypes.CDLL("libc.so.6")
        limit = int(limit_mb) * 2**20
        M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
        ok = bool(libc.mallopt(M_MMAP_THRESHOLD, limit)) and bool(libc.mallopt(M_TRIM_THRESHOLD, 2 * limit))
    except (OSError, AttributeError):
        ok = False
    _MEMORY_REUSE.append(ok)
    return ok
