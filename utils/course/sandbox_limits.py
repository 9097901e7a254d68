"""The resources one graded notebook may use, and the kernel mechanisms that enforce them.

Grading runs code the learner wrote; :mod:`utils.course.sandbox` isolates it, this module bounds
it. Every bound is enforced by the operating system or by the grader's own client, never by
watching the kernel:

========== ======================================================= ==============================
bound      enforced by                                             a submission that hits it
========== ======================================================= ==============================
memory     ``RLIMIT_DATA`` of every process in the sandbox, and a  the cell gets ``MemoryError``
           memory cgroup for the whole sandbox where one can be    (or the kernel is killed): that
           made (root, or a delegated cgroup v2)                   cell's exercise scores 0
processes  ``RLIMIT_NPROC`` (threads count) and a pids cgroup      ``fork``/``Popen`` fail in that
           where one can be made (root is exempt from the rlimit)  cell: its exercise scores 0
file size  ``RLIMIT_FSIZE`` (Python ignores ``SIGXFSZ``: ``EFBIG``) the writing cell raises
scratch    the size of the sandbox's tmpfs: working folder, home   the writing cell raises
           and ``/tmp`` share one, ``/dev/shm`` has its own        (``ENOSPC``)
cpu        ``RLIMIT_CPU`` of the kernel process, per run of the    the kernel is killed: that cell
           notebook (``SIGXCPU``, then ``SIGKILL`` 5 s later)      and every later one score 0
output     the grader's client, as the outputs arrive              truncated with a marker; errors
           (:class:`OutputBudget`)                                 and stderr are kept (grades)
========== ======================================================= ==============================

The defaults are :func:`default_limits`; an instructor changes them in the course's
``nbgrader_config.py`` (``c.SandboxedExecute.memory_limit = "4G"``, see INSTRUCTORS.md,
"Bounded resources"). Sizes are written ``"512M"``, ``"2G"`` or a number of bytes.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, replace

from ..errors import course_error

__all__ = ["Limits", "default_limits", "parse_size", "format_size", "apply_rlimits", "OutputBudget",
           "TRUNCATED_MARK", "CPU_GRACE"]

#: Seconds between the soft CPU limit (SIGXCPU, catchable) and the hard one (SIGKILL).
CPU_GRACE = 5
#: The text that replaces what the grader did not keep of a cell's output.
TRUNCATED_MARK = "[output truncated by the grader: this cell's outputs passed {limit}; the rest was dropped]"

_UNITS = {"": 1, "B": 1, "K": 1 << 10, "KB": 1 << 10, "KIB": 1 << 10, "M": 1 << 20, "MB": 1 << 20,
          "MIB": 1 << 20, "G": 1 << 30, "GB": 1 << 30, "GIB": 1 << 30, "T": 1 << 40, "TB": 1 << 40}


def parse_size(value, what: str = "a size") -> int:
    """Bytes from ``1048576``, ``"512M"``, ``"2G"``, ``"1.5GiB"`` (binary units)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return int(value)
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([A-Za-z]*)\s*", str(value))
    if not m or m.group(2).upper() not in _UNITS or float(m.group(1)) <= 0:
        raise course_error(what, "a positive size such as 512M, 2G or a number of bytes", repr(value),
                           "write the limit as a number with an optional unit K, M, G or T")
    return int(float(m.group(1)) * _UNITS[m.group(2).upper()])


def format_size(n: int) -> str:
    """``2147483648`` -> ``"2 GiB"`` (for messages and the documentation)."""
    for unit, size in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            v = n / size
            return f"{v:.0f} {unit}" if v == int(v) or v >= 10 else f"{v:.1f} {unit}"
    return f"{n} B"


def _ram() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover  (not Linux)
        return 8 << 30


@dataclass(frozen=True)
class Limits:
    """What one graded notebook may use (bytes, counts, seconds)."""

    memory: int        # bytes per process (and for the whole sandbox where a cgroup can be made)
    processes: int     # processes and threads in the sandbox
    file_size: int     # bytes, the largest file a cell may write
    scratch: int       # bytes of the writable tmpfs (working folder + home + /tmp; /dev/shm again)
    cpu: int           # CPU seconds of the kernel, per run of the notebook
    output: int        # bytes of outputs kept per cell in the graded notebook

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "Limits":
        return cls(**json.loads(text))

    def describe(self) -> str:
        """One line for reports: ``memory 2 GiB, 256 processes, ...``."""
        return (f"memory {format_size(self.memory)}, {self.processes} processes, files "
                f"{format_size(self.file_size)}, scratch {format_size(self.scratch)}, CPU "
                f"{self.cpu} s per notebook, outputs {format_size(self.output)} per cell")

    def with_(self, **changes) -> "Limits":
        """A copy with ``changes`` (sizes may be strings such as ``"64M"``)."""
        sizes = {"memory", "file_size", "scratch", "output"}
        clean = {k: (parse_size(v, f"the {k} limit") if k in sizes else int(v)) for k, v in changes.items()
                 if v is not None}
        bad = [k for k, v in clean.items() if v <= 0]
        if bad:
            raise course_error("grading limits", "positive numbers", ", ".join(bad),
                               "give every limit a positive value")
        return replace(self, **clean)


def default_limits() -> Limits:
    """A quarter of this machine's memory per notebook (at least 2 GiB), 256 processes and
    threads, files of 512 MiB, 1 GiB of scratch, 30 CPU minutes, 1 MiB of output per cell."""
    return Limits(memory=max(2 << 30, _ram() // 4), processes=256, file_size=512 << 20,
                  scratch=1 << 30, cpu=1800, output=1 << 20)


def apply_rlimits(limits: Limits, *, processes: bool = True) -> None:
    """Set this process's rlimits (inherited by the kernel and all it starts).

    ``RLIMIT_NPROC`` counts every process of this user (in the sandbox: of its user namespace),
    so ``processes=False`` leaves it alone outside the sandbox; root is exempt from it (the pids
    cgroup of :mod:`utils.course.sandbox_cgroup` covers root).
    """
    import resource
    import signal

    def lower(kind, soft, hard=None):
        hard = soft if hard is None else hard
        _, old_hard = resource.getrlimit(kind)
        if old_hard != resource.RLIM_INFINITY:
            soft, hard = min(soft, old_hard), min(hard, old_hard)
        resource.setrlimit(kind, (soft, hard))

    lower(resource.RLIMIT_DATA, limits.memory)
    if processes:
        lower(resource.RLIMIT_NPROC, limits.processes)
    lower(resource.RLIMIT_FSIZE, limits.file_size)
    lower(resource.RLIMIT_CPU, limits.cpu, limits.cpu + CPU_GRACE)
    lower(resource.RLIMIT_CORE, 0)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a too-large write fails with EFBIG


# --------------------------------------------------------------------------- outputs
def _size(out) -> int:
    if out.get("output_type") == "stream":
        return len(out.get("text", ""))
    if out.get("output_type") == "error":
        return sum(map(len, out.get("traceback", []))) + len(str(out.get("evalue", "")))
    return sum(len(v) if isinstance(v, str) else len(json.dumps(v)) for v in out.get("data", {}).values())


class OutputBudget:
    """Keeps one cell's outputs under ``limit`` bytes without changing its grade.

    nbgrader scores a test cell 0 when an output is an error or a stderr stream, partial credit
    from a number shown as its result: those outputs are always kept (cut short), everything else
    beyond the limit is dropped and one marker (a stdout stream) says so.
    """

    def __init__(self, limit: int):
        self.limit, self.used, self.marked, self.stderr_kept = int(limit), 0, False, False

    def admit(self, outs: list, out) -> bool:
        """Whether to append ``out`` to ``outs`` (it may be cut short in place)."""
        from nbformat import from_dict

        kind, size = out.get("output_type"), _size(out)
        stderr = kind == "stream" and out.get("name") == "stderr"
        if self.used + size <= self.limit:
            self.used += size
            self.stderr_kept |= stderr
            return True
        room = max(0, self.limit - self.used)
        keep = kind in ("error", "execute_result") or (stderr and not self.stderr_kept)
        if keep:
            self._shorten(out, max(room, 2000))
            self.stderr_kept |= stderr
        elif kind == "stream" and room > 0:
            out["text"] = out["text"][:room]
            self.used, keep = self.limit, True
        if not self.marked:
            if keep:
                outs.append(out)
            outs.append(from_dict({"output_type": "stream", "name": "stdout", "text": "\n" +
                                   TRUNCATED_MARK.format(limit=format_size(self.limit)) + "\n"}))
            self.marked = True
            return False
        return keep

    @staticmethod
    def _shorten(out, room: int) -> None:
        if out.get("output_type") == "stream":
            out["text"] = out["text"][:room]
        elif out.get("output_type") == "error":
            out["evalue"] = str(out.get("evalue", ""))[:room]
            tb = out.get("traceback", [])
            out["traceback"] = [t[:room // 4] for t in tb[:2] + tb[-2:]] if len(tb) > 4 else [t[:room // 4] for t in tb]
        else:
            data = out.get("data", {})
            out["data"] = {k: v for k, v in data.items() if _size({"data": {k: v}}) <= room}
            if "text/plain" in data and "text/plain" not in out["data"]:
                out["data"]["text/plain"] = "[too large, dropped by the grader]"

    def cap(self, outs: list) -> list:
        """The list ``outs`` with this budget applied from the start (a final pass)."""
        kept: list = []
        for out in outs:
            if out.get("output_type") == "stream" and out.get("text", "").startswith("\n" + TRUNCATED_MARK[:30]):
                self.marked = True
                kept.append(out)
            elif self.admit(kept, out):
                kept.append(out)
        return kept
