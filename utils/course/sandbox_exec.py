"""Execute one notebook, cell by cell, and stream each executed cell back (run inside the sandbox).

``python -m utils.course.sandbox_exec NOTEBOOK --timeout S --limits JSON [--inbox DIR] [--skip I ...]``
is what
:mod:`utils.course.sandbox` starts inside bubblewrap: the client (nbclient) and the kernel it starts
share the sandbox's private loopback, so the kernel never needs the outside network.

Protocol (one JSON object per line, on the stdout this process had when it started; the kernel
and everything it starts get ``/dev/null`` instead, so they cannot write into this channel):

* ``{"event": "started"}`` once the kernel answers;
* ``{"event": "begin", "index": I}`` before cell ``I`` runs;
* ``{"event": "cell", "index": I, "cell": {"outputs": [...], "execution_count": N}}`` after it ran
  (outputs kept under the per-cell output limit, :class:`~utils.course.sandbox_limits.OutputBudget`);
* ``{"event": "stopped", "index": I, "why": "...", "per_notebook": B}`` when cell ``I`` ended the
  kernel or ignored the interrupt after the time limit (the caller reruns without it), or used up
  the notebook's CPU time (``per_notebook``: the caller does not rerun);
* ``{"event": "tampered", "index": I, "what": "..."}`` when, after cell ``I``, the kernel's
  machinery that decides what a cell runs and how its errors are shown (input and AST
  transformers, trace/profile hooks, exception handlers, the shell's run/traceback methods)
  differs from what it was before the first cell (read with ``user_expressions``, which IPython
  evaluates without the input transformers);
* ``{"event": "done"}`` at the end.

Cells listed with ``--skip`` are not run (the caller has already learned they break the kernel).
Before the kernel starts, this process sets the rlimits of ``--limits``
(:func:`~utils.course.sandbox_limits.apply_rlimits`, inherited by the kernel) and copies the files
of ``--inbox`` (the sandbox's read-only view of the submission) into its working folder.
The caller treats this stream as the kernel's word: it computes scores itself and guards the
whole run with its own wall-clock limit (see :func:`utils.course.sandbox.execute_notebook`).
"""
from __future__ import annotations

import argparse
import json
import os
import sys

from ..runtime import SANDBOXED_ENV

__all__ = ["TIMEOUT_ERROR", "GUARD_EXPR", "run", "main"]

#: The error nbgrader records for a cell that ran past the time limit (same shape as nbgrader's).
TIMEOUT_ERROR = {"ename": "CellTimeoutError", "evalue": "",
                 "traceback": ["CellTimeoutError: No reply from kernel before timeout"]}


def _channel():
    """Keep the original stdout for the protocol; point fd 1 and 2 of everything started later
    at /dev/null (kernel messages still arrive over ZMQ)."""
    out_fd = os.dup(1)  # os.dup: not inheritable, so the kernel does not get it
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)
    stream = os.fdopen(out_fd, "w", buffering=1)

    def send(**msg):
        stream.write(json.dumps(msg) + "\n")
        stream.flush()
    return send


#: Evaluated in the kernel after every cell (user_expressions skip the input transformers).
GUARD_EXPR = (
    "(lambda ip, sys: repr(("
    "[(type(x).__name__, [id(f) for f in x]) for x in (ip.input_transformers_cleanup, "
    "ip.input_transformers_post, ip.ast_transformers, ip.input_transformer_manager.cleanup_transforms, "
    "ip.input_transformer_manager.line_transforms, ip.input_transformer_manager.token_transformers)], "
    "id(sys.gettrace()), id(sys.getprofile()), id(sys.excepthook), repr(ip.custom_exceptions), "
    "id(ip.CustomTB), sorted(k for k, v in vars(ip).items() if callable(v) and hasattr(type(ip), k)), "
    "[id(getattr(type(ip), k, None)) for k in ('run_cell', 'run_cell_async', 'run_ast_nodes', "
    "'run_code', 'showtraceback', '_showtraceback', 'transform_cell', 'transform_ast', "
    "'user_expressions', 'showsyntaxerror')], id(type(ip.input_transformer_manager).transform_cell)"
    ")))(__import__('IPython').get_ipython(), __import__('sys'))")


def _guard_state(client) -> str:
    """The kernel's cell machinery, as a string to compare (see :data:`GUARD_EXPR`)."""
    from jupyter_core.utils import run_sync

    async def probe():
        msg_id = client.kc.execute("", silent=True, store_history=False,
                                   user_expressions={"g": GUARD_EXPR})
        while True:
            reply = await client.kc.shell_channel.get_msg(timeout=30)
            if reply["parent_header"].get("msg_id") == msg_id:
                break
        content = reply["content"]
        value = content.get("user_expressions", {}).get("g", {})
        if content.get("status") != "ok" or value.get("status") != "ok":
            return "unreadable: " + str(content.get("status")) + " " + str(value.get("ename", ""))
        return value["data"]["text/plain"]
    return run_sync(probe)()


def _add_reply_error(cell, execute_reply=None, **_) -> None:
    """Like nbgrader's Execute: a cell whose reply says "error" gets an error output even when
    the kernel showed none (a patched traceback display cannot hide a failure)."""
    content = (execute_reply or {}).get("content", {})
    if content.get("status") != "error":
        return
    if not any(o.get("output_type") == "error" for o in cell.get("outputs", [])):
        from nbformat import from_dict

        cell.outputs.append(from_dict({"output_type": "error", "ename": content.get("ename", "Error"),
                                       "evalue": content.get("evalue", ""),
                                       "traceback": content.get("traceback") or ["(no traceback shown)"]}))


def _link_cache() -> None:
    """Inside the sandbox: the read-only data cache appears in the writable cache folder as
    links, so cached files are read and new ones are written to the private layer."""
    from ..runtime import CACHE_DIR_ENV, CACHE_RO_ENV, SANDBOXED_ENV
    ro, rw = os.environ.get(CACHE_RO_ENV), os.environ.get(CACHE_DIR_ENV)
    if not (os.environ.get(SANDBOXED_ENV) and ro and rw and os.path.isdir(ro)):
        return
    for name in os.listdir(ro):
        target = os.path.join(rw, name)
        if not os.path.lexists(target):
            os.symlink(os.path.join(ro, name), target)


def _client_class(output_limit: int):
    """nbclient's client, keeping each cell's outputs under ``output_limit`` bytes as they arrive."""
    from nbclient import NotebookClient

    from .sandbox_limits import OutputBudget

    class BudgetClient(NotebookClient):
        def output(self, outs, msg, display_id, cell_index):
            budgets = self.__dict__.setdefault("_course_budgets", {})
            budget = budgets.setdefault(cell_index, OutputBudget(output_limit))
            if budget.marked and msg["msg_type"] in ("stream", "display_data", "update_display_data"):
                if not (msg["msg_type"] == "stream" and msg["content"].get("name") == "stderr"
                        and not budget.stderr_kept):
                    return None  # dropped before it is even decoded into an output
            out = super().output(outs, msg, display_id, cell_index)
            if out is not None and outs and outs[-1] is out:
                outs.pop()
                if budget.admit(outs, out):
                    outs.append(out)
            return out
    return BudgetClient


def _cpu_death(client, limits) -> bool:
    """Whether the kernel that just died was killed for using up its CPU time (SIGXCPU, or the
    hard limit's SIGKILL after it)."""
    import resource
    import signal

    proc = getattr(getattr(client.km, "provisioner", None), "process", None)
    code = proc.poll() if proc is not None else None
    if code == -signal.SIGXCPU:
        return True
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return code == -signal.SIGKILL and used.ru_utime + used.ru_stime >= limits.cpu - 1


def run(path: str, timeout: int, skip: set[int], send, limits=None) -> None:
    import nbformat
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    from .sandbox_limits import OutputBudget, default_limits

    limits = limits or default_limits()
    nb = nbformat.read(path, as_version=4)
    client = _client_class(limits.output)(nb, timeout=timeout, interrupt_on_timeout=True, allow_errors=True,
                            error_on_timeout=TIMEOUT_ERROR, raise_on_iopub_timeout=True,
                            iopub_timeout=10, kernel_name="python3", record_timing=False,
                            startup_timeout=120,
                            extra_arguments=["--HistoryManager.hist_file=:memory:"],
                            resources={"metadata": {"path": os.path.dirname(os.path.abspath(path))}})
    client.on_cell_executed = _add_reply_error
    tampered = False
    with client.setup_kernel():
        baseline = _guard_state(client)
        send(event="started")
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code" or index in skip:
                continue
            send(event="begin", index=index)
            try:
                client.execute_cell(cell, index)
            except DeadKernelError:
                if _cpu_death(client, limits):
                    send(event="stopped", index=index, per_notebook=True,
                         why=f"used up the notebook's CPU time limit of {limits.cpu} s")
                else:
                    send(event="stopped", index=index, why="ended the kernel")
                return
            except CellTimeoutError:
                send(event="stopped", index=index,
                     why=f"ran past the time limit of {timeout} s and ignored the interrupt")
                return
            outputs = OutputBudget(limits.output).cap(list(cell.outputs))  # display updates too
            send(event="cell", index=index, cell={"outputs": outputs,
                                                  "execution_count": cell.get("execution_count")})
            if not tampered:
                try:
                    state = _guard_state(client)
                except Exception as exc:  # noqa: BLE001  (no answer is itself a finding)
                    state = f"unreadable: {type(exc).__name__}"
                if state != baseline:
                    tampered = True
                    send(event="tampered", index=index,
                         what="changed how the kernel runs cells or shows errors (input/AST "
                              "transformers, trace or profile hooks, exception handlers)")
    send(event="done")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m utils.course.sandbox_exec")
    p.add_argument("notebook")
    p.add_argument("--timeout", type=int, required=True)
    p.add_argument("--skip", type=int, nargs="*", default=[])
    p.add_argument("--limits", default=None, help="JSON of utils.course.sandbox_limits.Limits")
    p.add_argument("--inbox", default=None, help="folder whose files are copied here first")
    args = p.parse_args(argv)
    from .sandbox_limits import Limits, apply_rlimits, default_limits

    limits = Limits.from_json(args.limits) if args.limits else default_limits()
    send = _channel()
    try:
        if args.inbox:
            import shutil
            for name in os.listdir(args.inbox):
                if os.path.isfile(os.path.join(args.inbox, name)):
                    shutil.copyfile(os.path.join(args.inbox, name), name)
        _link_cache()
        apply_rlimits(limits, processes=bool(os.environ.get(SANDBOXED_ENV)))
        run(args.notebook, args.timeout, set(args.skip), send, limits)
    except Exception as exc:  # noqa: BLE001  (reported to the caller, which decides)
        send(event="crashed", why=f"{type(exc).__name__}: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
