"""The executed notebooks a book is made of: which run of a chapter is current, and the runner
that makes one (step 1 of :mod:`utils.course.book`)."""
from __future__ import annotations

import json
import os
import platform
from dataclasses import dataclass
from pathlib import Path

from ..errors import course_error
from .notebooks import read_notebook, solution_path

__all__ = [
    "ExecutedChapter", "ORIGINS", "mode_name", "describe_machine", "comparable_cells", "is_current",
    "run_date", "executed_dir", "executed_chapter",
]

#: Where a chapter page's outputs come from: ``run`` (a run made or reused for this build, the
#: mode asked for), ``recorded`` (the chapter's recorded full-mode run, :mod:`.recorded`) and
#: ``fallback`` (a FAST run, because the chapter has no current recording).
ORIGINS = ("run", "recorded", "fallback")


# --------------------------------------------------------------------------- executed notebooks
@dataclass
class ExecutedChapter:
    """One chapter's executed solution notebook and where it came from."""

    chapter: str
    path: Path
    fast: bool
    date: str          # YYYY-MM-DD of the run (papermill's end time)
    machine: str       # what it ran on, in words
    reused: bool       # True: an up-to-date copy was already in the build folder
    origin: str = "run"  # one of ORIGINS
    seconds: float | None = None  # the run's wall time, where known (recordings)


def mode_name(fast: bool) -> str:
    """``"FAST"`` or ``"full"``: how the course names its two run modes."""
    return "FAST" if fast else "full"


def describe_machine() -> str:
    """This machine in words: OS, CPU architecture and cores, torch version and accelerator."""
    words = f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPU cores"
    try:
        import torch

        words += f", torch {torch.__version__.split('+')[0]}"
        if torch.cuda.is_available():
            words += f", GPU {torch.cuda.get_device_name(0)}"
    except Exception:  # pragma: no cover - torch is a requirement; the words are a courtesy
        pass
    return words


def comparable_cells(nb) -> list[tuple]:
    """``(id, cell type, source)`` of each cell, papermill's injected-parameters cell left out."""
    return [(c.get("id"), c.cell_type, c.source) for c in nb.cells
            if "injected-parameters" not in c.get("metadata", {}).get("tags", [])]


def is_current(executed, solution, fast: bool) -> bool:
    """Whether ``executed`` (a papermill output) is a clean run of ``solution`` in this mode.

    True when papermill recorded ``FAST == fast``, no exception, and the executed cells (ids,
    types and sources, without papermill's injected-parameters cell) equal the solution's.
    """
    pm = executed.metadata.get("papermill") or {}
    if pm.get("exception") or (pm.get("parameters") or {}).get("FAST") is not bool(fast):
        return False
    return comparable_cells(executed) == comparable_cells(solution)


def run_date(nb) -> str:
    """YYYY-MM-DD of papermill's run of ``nb`` (its end time, else its start), or "unknown date"."""
    pm = nb.metadata.get("papermill") or {}
    return str(pm.get("end_time") or pm.get("start_time") or "")[:10] or "unknown date"


def executed_dir(root: str | Path, fast: bool) -> Path:
    """Where the book keeps executed copies: ``build`` for FAST (the same place as ``course run``),
    ``build/full`` for full runs (so the two never overwrite each other)."""
    return Path(root) / "build" if fast else Path(root) / "build" / "full"


def executed_chapter(root: str | Path, chapter: str, *, fast: bool = True,
                     build: str | Path | None = None, timeout: int | None = None,
                     log=print) -> ExecutedChapter:
    """The chapter's executed notebook: reused when current (:func:`is_current`), else run now.

    Runs go through :func:`utils.course.execute.run_chapter` (papermill, the chapter's ``FAST`` knob).
    A sidecar ``<chapter>.book.json`` records the machine of runs made here. Raises a
    :class:`~utils.errors.CourseError` naming the failing cell's error when the chapter fails.
    """
    root = Path(root)
    build = Path(build) if build else executed_dir(root, fast)
    path = build / "executed" / chapter / f"{chapter}.ipynb"
    sidecar = path.with_suffix(".book.json")
    solution = read_notebook(solution_path(root, chapter))
    reused = path.exists() and is_current(read_notebook(path), solution, fast)
    if not reused:
        from .execute import run_chapter

        log(f"  executing {chapter} ({mode_name(fast)})...")
        run = run_chapter(root, chapter, fast=fast, timeout=timeout, build=build)
        if not run.ok:
            raise course_error(f"chapter {chapter}", f"a clean {mode_name(fast)} run to build the book from",
                               run.error, f"run `python -m utils.course run --only {chapter[:2]}"
                               f"{'' if fast else ' --full'}` and fix the failing cell")
        sidecar.write_text(json.dumps({"machine": describe_machine()}), encoding="utf-8")
    else:
        log(f"  reusing {path} (current with solutions/{chapter})")
    nb = read_notebook(path)
    machine = (json.loads(sidecar.read_text(encoding="utf-8")).get("machine")
               if sidecar.exists() else describe_machine())
    return ExecutedChapter(chapter, path, fast, run_date(nb), machine, reused)
