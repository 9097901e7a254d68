"""Run a learner's notebook in an isolated sandbox (bubblewrap) and get the executed cells back.

Grading runs code the learner wrote. :func:`execute_notebook` runs the whole execution
(the nbclient client of :mod:`utils.course.sandbox_exec` and the kernel it starts) inside
`bubblewrap <https://github.com/containers/bubblewrap>`_ (Debian package ``bubblewrap``):

* a read-only system (``/usr``, ``/etc``, ...) and Python environment;
* the engine package ``utils/`` and ``data/`` read-only, the data cache read-only with a private
  writable layer (new cache files vanish with the sandbox);
* a private writable scratch folder holding only the notebook being graded and the files
  handed in with it, a private ``/tmp`` and home, all three in one tmpfs of bounded size;
* nothing else: no ``solutions/``, no gradebook, no course folder, none of the learner's
  other files, no ``/home``, ``/root``, ``/srv`` (the nbgrader exchange) or ``/work``;
* no network (own network namespace, loopback only: client and kernel talk over it);
* own PID namespace, killed as a whole when grading ends (``--die-with-parent``): nothing a
  cell starts, detached or not, outlives the grading.

Each cell runs under the per-cell time limit (interrupted after it) and every run under the
resource bounds of :mod:`utils.course.sandbox_limits` (memory, processes, file size, scratch,
CPU time, output size), set by rlimits, tmpfs sizes and, where one can be made, a cgroup
(:mod:`utils.course.sandbox_cgroup`). A cell that ends the
kernel (``os._exit``) or ignores the interrupt is named, and the notebook is run again
without it, so it costs only its own exercise (:func:`execute_notebook`). A wall-clock guard
outside the sandbox ends a run that stops answering.

Where no sandbox is available (no Linux, no ``bwrap``, no user namespaces) the same protocol
runs as an ordinary subprocess; :func:`sandbox_status` says why, and the grading report says
"ran UNSANDBOXED". ``COURSE_SANDBOX=off`` forces that (for comparisons and debugging).
"""
from __future__ import annotations

import copy
import functools
import json
import os
import queue
import shutil
import signal
import site
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from nbformat import NotebookNode, from_dict

from ..cache import cache_dir
from ..runtime import (CACHE_DIR_ENV, CACHE_RO_ENV, FAST_ENV, HEADLESS_ENV, SANDBOX_ENV,  # noqa: F401 - SANDBOX_ENV re-exported
                       SANDBOXED_ENV)
from .notebooks import PROJECT_ROOT, nbgrader_meta, write_notebook
from .sandbox_cgroup import make_cgroup
from .sandbox_limits import Limits, default_limits

__all__ = [
    "SANDBOX_ENV", "SYSTEM_DIRS", "INSIDE_ENGINE", "INSIDE_WORK", "INSIDE_INBOX", "INSIDE_HOME", "INSIDE_CACHE", "INSIDE_CACHE_RO",
    "PASS_ENV", "STARTUP_LIMIT", "GRACE", "sandbox_status", "bwrap_command", "Execution",
    "execute_notebook",
]

#: Environment variable: ``off`` runs grading without the sandbox (self-grading only).
#: Folders of the system bound read-only into the sandbox (when they exist).
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/opt")
#: Where things appear inside the sandbox.
INSIDE_ENGINE = "/course/engine"
INSIDE_WORK = "/course/work"
INSIDE_INBOX = "/course/in"
INSIDE_HOME = "/course/home"
INSIDE_CACHE = "/course/cache"
INSIDE_CACHE_RO = "/course/cache-ro"
#: Environment variables passed into the sandbox (everything else is dropped).
PASS_ENV = (FAST_ENV, HEADLESS_ENV, "OMP_NUM_THREADS", "OMP_WAIT_POLICY",
            "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "CUDA_VISIBLE_DEVICES", "LANG", "LC_ALL",
            "PYDEVD_DISABLE_FILE_VALIDATION")
#: Seconds a kernel may take to start; seconds beyond the per-cell limit before the guard acts.
STARTUP_LIMIT = 180
GRACE = 60


@functools.lru_cache(maxsize=None)
def _probe() -> tuple[bool, str]:
    if not sys.platform.startswith("linux"):
        return False, f"the sandbox (bubblewrap) needs Linux; this is {sys.platform}"
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return False, ("bubblewrap is not installed (`bwrap` not found); on Debian/Ubuntu: "
                       "sudo apt-get install bubblewrap")
    try:
        proc = subprocess.run([bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
                               "--unshare-all", "--die-with-parent", "true"],
                              capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"bwrap could not be started: {exc}"
    if proc.returncode != 0:
        return False, ("bwrap cannot create namespaces here (" + proc.stderr.strip()[-200:] +
                       "); allow unprivileged user namespaces or run in a VM/container that does")
    return True, bwrap


def sandbox_status() -> tuple[bool, str]:
    """(available, bwrap path or the reason it is not), honouring ``COURSE_SANDBOX=off``."""
    if os.environ.get(SANDBOX_ENV, "").lower() in ("off", "0", "no"):
        return False, f"the sandbox was switched off (--no-sandbox or {SANDBOX_ENV}=off)"
    return _probe()


# --------------------------------------------------------------------------- the command line
def _python_dirs() -> list[str]:
    """Folders the Python environment needs (prefixes, site-packages), outside the system dirs."""
    cands = {sys.prefix, sys.base_prefix, sys.exec_prefix,
             str(Path(os.path.realpath(sys.executable)).parent.parent)}
    try:
        cands.update(site.getsitepackages())
        cands.add(site.getusersitepackages())
    except AttributeError:  # pragma: no cover  (old virtualenv)
        pass
    out = []
    for d in sorted(cands):
        d = os.path.realpath(d)
        if not os.path.isdir(d) or d == "/" or any(d == s or d.startswith(s + "/") for s in SYSTEM_DIRS):
            continue
        if str(PROJECT_ROOT).startswith(d.rstrip("/") + "/"):
            continue  # a prefix above the project would expose it; its site-packages come below
        out.append(d)
    out += [p for p in map(os.path.realpath, sys.path)
            if p.endswith("site-packages") and os.path.isdir(p) and p not in out
            and not any(p == s or p.startswith(s + "/") for s in SYSTEM_DIRS)]
    # a venv's own prefix is enough when it holds its site-packages
    return [d for d in out if not any(d != o and d.startswith(o + "/") for o in out)]


def bwrap_command(bwrap: str, work: Path, inner: list[str], limits: Limits | None = None) -> list[str]:
    """The bubblewrap command running ``inner``; ``work`` (the notebook and its files) appears
    read-only at :data:`INSIDE_INBOX`, and the only writable places are tmpfs of ``limits.scratch``
    bytes: one for the working folder, home, cache and ``/tmp`` (a link into it), one for
    ``/dev/shm``. No host folder is writable."""
    size = str((limits or default_limits()).scratch)
    cmd = [bwrap, "--unshare-all", "--die-with-parent", "--new-session", "--clearenv", "--cap-drop", "ALL",
           "--dev", "/dev", "--proc", "/proc", "--size", size, "--tmpfs", "/dev/shm",
           # the private tmpfs and /tmp come first: a venv under /tmp (CI makes one there) is
           # bound below, and bubblewrap makes its mount point's parents through the link, which
           # is relative because bubblewrap builds the new root below the host's
           "--size", size, "--tmpfs", "/course", "--dir", INSIDE_HOME, "--dir", INSIDE_CACHE,
           "--dir", "/course/tmp", "--dir", INSIDE_WORK, "--symlink", "course/tmp", "/tmp"]
    for d in SYSTEM_DIRS:
        if os.path.islink(d):
            cmd += ["--symlink", os.readlink(d), d]
        elif os.path.isdir(d):
            cmd += ["--ro-bind", d, d]
    for d in _python_dirs():
        cmd += ["--ro-bind", d, d]
    cmd += ["--ro-bind", str(PROJECT_ROOT / "utils"), f"{INSIDE_ENGINE}/utils"]
    data = PROJECT_ROOT / "data"
    if data.is_dir():
        cmd += ["--ro-bind", str(data), f"{INSIDE_ENGINE}/data"]
    cache = cache_dir()
    if cache.is_dir():
        cmd += ["--ro-bind", str(cache), INSIDE_CACHE_RO]
    cmd += ["--ro-bind", str(work), INSIDE_INBOX, "--chdir", INSIDE_WORK]
    env = {k: os.environ[k] for k in PASS_ENV if k in os.environ}
    env.update({FAST_ENV: "1", HEADLESS_ENV: "1"})  # grading always runs the quick version, headless
    env.update(PATH=f"{os.path.dirname(sys.executable)}:/usr/local/bin:/usr/bin:/bin",
               PYTHONPATH=INSIDE_ENGINE, HOME=INSIDE_HOME, JUPYTER_RUNTIME_DIR=f"{INSIDE_HOME}/runtime",
               TMPDIR="/course/tmp", IPYTHONDIR=f"{INSIDE_HOME}/ipython", MPLCONFIGDIR=f"{INSIDE_HOME}/mpl",
               XDG_CACHE_HOME=f"{INSIDE_HOME}/.cache", PYTHONDONTWRITEBYTECODE="1", MPLBACKEND="Agg")
    env.update({CACHE_DIR_ENV: INSIDE_CACHE, CACHE_RO_ENV: INSIDE_CACHE_RO, SANDBOXED_ENV: "1"})
    env.setdefault("LANG", "C.UTF-8")
    for k, v in env.items():
        cmd += ["--setenv", k, v]
    return cmd + ["--", *inner]


# --------------------------------------------------------------------------- one run
@dataclass
class _Run:
    cells: dict = field(default_factory=dict)   # index -> executed cell (from the stream)
    started: bool = False
    done: bool = False
    culprit: int | None = None
    why: str = ""
    stderr: str = ""
    tampered: tuple | None = None               # (index, what) of the first tampering cell
    per_notebook: bool = False                  # the culprit used up a bound of the whole notebook


def _reader(stream, q: queue.Queue, max_line: int) -> None:
    """Lines of the protocol; one longer than ``max_line`` (no honest message is) is dropped
    and reported as ``{"event": "oversized"}``, so the grader's memory stays bounded."""
    while True:
        line = stream.readline(max_line)
        if not line:
            break
        if not line.endswith(b"\n"):
            while line and not line.endswith(b"\n"):
                line = stream.readline(max_line)
            line = b'{"event": "oversized"}'
        q.put(line)
    q.put(None)


def _run_once(nb_path: Path, work: Path, timeout: int, skip: set[int], sandboxed: bool,
              bwrap: str, limits: Limits) -> _Run:
    inner = [sys.executable, "-m", "utils.course.sandbox_exec", nb_path.name, "--timeout", str(timeout),
             "--limits", limits.to_json()]
    if skip:
        inner += ["--skip", *map(str, sorted(skip))]
    err_path = work.parent / "stderr.log"
    cgroup = None
    if sandboxed:
        cgroup = make_cgroup(limits)
        cmd = cgroup.wrap(bwrap_command(bwrap, work, inner + ["--inbox", INSIDE_INBOX], limits), sys.executable)
        cwd, env = str(work), None
    else:
        from .nbgrader_course import course_env

        cmd, cwd = inner, str(work)
        env = course_env()  # grading always runs FAST
    run = _Run()
    with open(err_path, "wb") as err:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=err, start_new_session=True)
        q: queue.Queue = queue.Queue()
        threading.Thread(target=_reader, args=(proc.stdout, q, 8 * limits.output + (1 << 20)),
                         daemon=True).start()
        current, deadline = None, time.monotonic() + STARTUP_LIMIT
        try:
            while True:
                try:
                    line = q.get(timeout=max(0.1, deadline - time.monotonic()))
                except queue.Empty:
                    run.culprit = current
                    run.why = (f"ran past the time limit of {timeout} s and could not be stopped"
                               if current is not None else "the kernel did not start in time")
                    break
                if line is None:
                    if not run.done and run.culprit is None:
                        run.culprit = current
                        run.why = "ended the kernel and the grader with it"
                    break
                try:
                    msg = json.loads(line)
                except ValueError:
                    continue
                ev = msg.get("event")
                if ev == "started":
                    run.started = True
                elif ev == "begin":
                    current = int(msg["index"])
                    deadline = time.monotonic() + timeout + GRACE
                elif ev == "cell" and int(msg["index"]) == current:
                    run.cells[current] = msg["cell"]
                    current, deadline = None, time.monotonic() + GRACE + timeout
                elif ev == "stopped":
                    run.culprit, run.why = int(msg["index"]), str(msg.get("why", "stopped"))
                    run.per_notebook = bool(msg.get("per_notebook"))
                elif ev == "oversized" and run.culprit is None:
                    run.culprit, run.why = current, "sent back more output than the grader accepts"
                elif ev == "crashed" and run.culprit is None:
                    run.culprit, run.why = current, str(msg.get("why", "crashed"))
                elif ev == "tampered" and run.tampered is None:
                    run.tampered = (int(msg["index"]), str(msg.get("what", "")))
                elif ev == "done":
                    run.done = True
        finally:
            _kill(proc)
            if cgroup is not None:
                cgroup.remove()
    run.stderr = err_path.read_text(errors="replace")[-2000:]
    return run


def _kill(proc: subprocess.Popen) -> None:
    """End the run and (unsandboxed: as far as possible) everything it started."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.kill()
    proc.wait()


# --------------------------------------------------------------------------- the whole notebook
@dataclass
class Execution:
    """What :func:`execute_notebook` returns: the executed notebook and what happened."""

    notebook: NotebookNode
    sandboxed: bool
    sandbox_note: str                                   # "" or "ran UNSANDBOXED: <why>"
    stopped: dict = field(default_factory=dict)         # cell index -> what the cell did
    notes: list = field(default_factory=list)
    tampered: str = ""                                  # what a cell changed in the kernel


def _cell_name(cell, index: int) -> str:
    gid = nbgrader_meta(cell).get("grade_id")
    return gid or cell.get("id") or f"#{index}"


def _error(ename: str, evalue: str) -> dict:
    return {"output_type": "error", "ename": ename, "evalue": evalue, "traceback": [f"{ename}: {evalue}"]}


def execute_notebook(nb: NotebookNode, *, timeout: int, files_from: str | Path | None = None,
                     sandbox: bool | None = None, max_reruns: int = 6,
                     limits: Limits | None = None) -> Execution:
    """Execute ``nb`` (not modified) in the sandbox; return the executed copy.

    Only outputs and execution counts come back from the sandbox: sources and metadata stay
    the caller's. ``files_from`` is a folder whose other files (data handed in with the notebook,
    not notebooks) are copied next to it. ``sandbox``: ``None`` uses it when available, ``True``
    requires it (CourseError otherwise), ``False`` runs without. A cell that ends the kernel or
    cannot be interrupted gets an error output saying so and the notebook is run again without
    it, at most ``max_reruns`` times. ``limits``: the resource bounds (default
    :func:`~utils.course.sandbox_limits.default_limits`); a cell that uses up a per-notebook bound
    (CPU time) is not rerun: it and the cells after it score 0.
    """
    from ..errors import course_error

    ok, info = sandbox_status()
    if sandbox is True and not ok:
        raise course_error("the grading sandbox", "bubblewrap able to isolate the kernel",
                           info, "install bubblewrap (apt-get install bubblewrap) on Linux and allow "
                           "unprivileged user namespaces; or opt out knowingly: --unsafe (course "
                           "autograde), COURSE_SANDBOX=off (nbgrader autograde, Formgrader)")
    sandboxed = ok and sandbox is not False
    note = "" if sandboxed else "ran UNSANDBOXED: " + (info if not ok else "sandbox switched off")
    limits = limits or default_limits()
    out = Execution(copy.deepcopy(nb), sandboxed, note)
    for cell in out.notebook.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    tmp = Path(tempfile.mkdtemp(prefix="course-sandbox-"))
    try:
        work = tmp / "work"
        work.mkdir()
        if files_from is not None:
            for f in Path(files_from).iterdir():
                if f.is_file() and not f.is_symlink() and f.suffix != ".ipynb":
                    shutil.copyfile(f, work / f.name)
        nb_path = work / "notebook.ipynb"
        write_notebook(out.notebook, nb_path)
        skip: set[int] = set()
        for _ in range(max_reruns + 1):
            run = _run_once(nb_path, work, timeout, skip, sandboxed, info, limits)
            if run.tampered and not out.tampered:
                i, what = run.tampered
                out.tampered = f"cell {_cell_name(out.notebook.cells[i], i)!r} {what}"
            for i, c in run.cells.items():
                cell = out.notebook.cells[i]
                cell.outputs = [from_dict(o) for o in c.get("outputs", [])]
                cell.execution_count = c.get("execution_count")
            if run.done:
                break
            if run.culprit is None or run.culprit in skip:
                out.notes.append("the notebook could not be run to the end: "
                                 + (run.why or "the kernel stopped") + (
                                     f" ({run.stderr.strip().splitlines()[-1]})" if run.stderr.strip() else ""))
                break
            out.stopped[run.culprit] = run.why
            if run.per_notebook:
                out.notes.append(f"cell {_cell_name(out.notebook.cells[run.culprit], run.culprit)!r} "
                                 f"{run.why}; the cells after it were not run.")
                break
            skip.add(run.culprit)
            for i in run.cells:  # the next run starts afresh
                out.notebook.cells[i].outputs = []
        else:
            out.notes.append(f"grading stopped after {max_reruns} cells broke the kernel")
        for i, cell in enumerate(out.notebook.cells):
            if cell.cell_type == "code" and i not in run.cells and i not in out.stopped:
                cell.outputs = [from_dict(_error("NotExecuted", "grading stopped before this cell"))]
        for i, why in out.stopped.items():
            cell = out.notebook.cells[i]
            ename = "CellTimeoutError" if "time limit" in why else "DeadKernelError"
            if run.per_notebook and i == run.culprit:
                cell.outputs = [from_dict(_error("CPUTimeLimitError", f"cell {_cell_name(cell, i)!r} {why}"))]
                continue
            cell.outputs = [from_dict(_error(ename, f"cell {_cell_name(cell, i)!r} {why}; "
                                                    "the notebook was graded again without it"))]
            out.notes.append(f"cell {_cell_name(cell, i)!r} {why}; the rest of the notebook "
                             "was graded without it.")
        if out.tampered:
            _fail_every_test(out.notebook, out.tampered)
            out.notes.append(f"integrity check failed, so every autograded exercise scores 0: "
                             f"{out.tampered}.")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def _fail_every_test(nb: NotebookNode, why: str) -> None:
    """Give every autograded test cell an error output (nbgrader then stores 0 for it)."""
    for cell in nb.cells:
        m = nbgrader_meta(cell)
        if cell.cell_type == "code" and m.get("grade") and not m.get("solution"):
            cell.outputs.append(from_dict(_error("IntegrityError", f"{why}; every autograded "
                                                 "exercise of this notebook scores 0")))
