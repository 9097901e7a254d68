"""A cgroup around one sandbox run, where the machine lets the grader make one.

The rlimits of :mod:`utils.course.sandbox_limits` bound each process; a cgroup bounds the whole
sandbox: its processes and threads together (``pids``) and its memory together (``memory``,
tmpfs scratch included, since the kernel charges tmpfs pages to the writer's cgroup). Root, who is
exempt from ``RLIMIT_NPROC``, can always make one (cgroup v1 or v2); an ordinary user can where
cgroup v2 is delegated to them (systemd's ``user@UID.service``). Where none can be made the
rlimits alone apply, and :func:`make_cgroup` returns an object with no folders.

The sandbox joins the cgroup before bubblewrap starts (:data:`JOIN`, run as the first command),
so nothing it starts can be outside it.
"""
from __future__ import annotations

import itertools
import os
import time
from pathlib import Path

from .sandbox_limits import Limits

__all__ = ["CGROUP_ROOT", "JOIN", "SandboxCgroup", "make_cgroup"]

CGROUP_ROOT = Path("/sys/fs/cgroup")
#: ``python -c JOIN DIR... -- CMD...``: move into each cgroup folder, then become CMD.
JOIN = ("import os, sys\nn = sys.argv.index('--')\nfor d in sys.argv[1:n]:\n"
        "    with open(os.path.join(d, 'cgroup.procs'), 'w') as f:\n        f.write(str(os.getpid()))\n"
        "os.execvp(sys.argv[n + 1], sys.argv[n + 1:])")
_COUNTER = itertools.count()
#: controller -> its limit file in cgroup v1 and in v2
_FILES = {"pids": ("pids.max", "pids.max"), "memory": ("memory.limit_in_bytes", "memory.max")}


class SandboxCgroup:
    """The cgroup folders of one run (none where no cgroup could be made)."""

    def __init__(self, dirs: list[Path], controllers: list[str]):
        self.dirs, self.controllers = dirs, controllers

    def wrap(self, cmd: list[str], python: str) -> list[str]:
        """``cmd`` started inside the cgroup (unchanged when there is none)."""
        if not self.dirs:
            return cmd
        return [python, "-c", JOIN, *map(str, self.dirs), "--", *cmd]

    def remove(self, wait: float = 5.0) -> None:
        """Remove the folders once their processes are gone (they are being killed)."""
        end = time.monotonic() + wait
        for d in self.dirs:
            while True:
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    if time.monotonic() > end:
                        break
                    time.sleep(0.05)
        self.dirs = []


def _own_cgroups() -> dict[str, str]:
    """controller -> this process's cgroup path (``""`` key: the v2 path)."""
    out = {}
    try:
        text = Path("/proc/self/cgroup").read_text()
    except OSError:
        return out
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) == 3:
            for name in parts[1].split(",") if parts[1] else [""]:
                out[name] = parts[2]
    return out


def _try(parent: Path, values: dict[str, str], name: str) -> Path | None:
    d = parent / name
    try:
        d.mkdir()
        for fname, value in values.items():
            (d / fname).write_text(value)
        return d
    except OSError:
        try:
            d.rmdir()
        except OSError:
            pass
        return None


def _remove_stale(parent) -> None:
    """Remove the empty cgroups left by graders that were killed (``course-sandbox-PID-N`` whose
    PID no longer runs): a SIGKILLed grading run cannot clean up after itself."""
    try:
        names = [d for d in parent.iterdir() if d.name.startswith("course-sandbox-")]
    except OSError:
        return
    for d in names:
        pid = d.name.split("-")[2]
        if pid.isdigit() and not os.path.exists(f"/proc/{pid}"):
            try:
                d.rmdir()
            except OSError:
                pass


def make_cgroup(limits: Limits) -> SandboxCgroup:
    """Make the cgroup folders for one run (``pids`` and ``memory`` wherever possible)."""
    values = {"pids": str(limits.processes), "memory": str(limits.memory + 2 * limits.scratch)}
    mine = _own_cgroups()
    name = f"course-sandbox-{os.getpid()}-{next(_COUNTER)}"
    dirs, got = [], []
    for ctl, (v1_file, _) in _FILES.items():  # cgroup v1: one hierarchy per controller
        mount = CGROUP_ROOT / ctl
        if ctl in mine and (mount / "cgroup.procs").exists():
            _remove_stale(mount / mine[ctl].lstrip("/"))
            d = _try(mount / mine[ctl].lstrip("/"), {v1_file: values[ctl]}, name)
            if d is not None:
                dirs.append(d)
                got.append(ctl)
    missing = [c for c in _FILES if c not in got]
    if missing and "" in mine:  # cgroup v2: one folder, the controllers its parent delegates
        for base in (CGROUP_ROOT, CGROUP_ROOT / "unified"):
            if (base / "cgroup.controllers").exists():
                parent = base / mine[""].lstrip("/")
                try:
                    offered = (parent / "cgroup.subtree_control").read_text().split()
                except OSError:
                    offered = []
                want = {_FILES[c][1]: values[c] for c in missing if c in offered}
                d = _try(parent, want, name) if want else None
                if d is not None:
                    dirs.append(d)
                    got += [c for c in missing if c in offered]
                break
    return SandboxCgroup(dirs, got)
