"""Run chapter notebooks headless with papermill and summarise them (``python -m utils.course run``).

Each ``solutions/NN_name/NN_name.ipynb`` is executed with its ``parameters`` cell overridden
(``FAST=True`` unless a full run is asked for), in its own folder, and the executed copy is
written to ``build/executed/NN_name/``; the source notebook is never written. Notebooks record
headline figures through :func:`utils.figures.record_figures`, which writes
``build/figures/NN_name.json`` because this module sets ``COURSE_FIGURES_DIR``.

What a chapter loads from the cache or from the shipped checkpoints is logged by
:func:`utils.cache.note_artefact` to ``build/executed/NN_name/artefacts.jsonl`` (this module
sets ``COURSE_ARTEFACT_LOG`` for the kernel); :func:`summarise_artefacts` turns the log into
the ``glyphs: cache hit`` lines that ``course run`` prints under each chapter.

``course run --lang zh`` executes the Chinese edition instead: each chapter's solution notebook
translated by :func:`utils.course.translations.translated_notebook` (Chinese prose,
``LANGUAGE = "zh"``, the same code) is written to ``build/executed-zh/NN_name/NN_name.source.ipynb``
and run like the English one (from ``solutions/NN_name/``), its executed copy beside it and its
figures in ``build/figures-zh/`` (:func:`edition_folders`), so both editions' runs can share a build.
"""
from __future__ import annotations

import json
import os
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from ..cache import ARTEFACT_LOG_ENV
from ..errors import course_error
from ..figures import read_figures
from ..runtime import FIGURES_DIR_ENV
from .nbgrader_course import course_env
from .notebooks import read_notebook, solution_path

__all__ = [
    "ChapterRun", "read_artefact_log", "summarise_artefacts", "require_parameters_cell",
    "edition_folders", "add_run_options", "run_chapter", "format_figures", "format_table",
]


@dataclass
class ChapterRun:
    """The outcome of executing one chapter."""

    chapter: str
    ok: bool
    seconds: float
    error: str = ""
    figures: dict = field(default_factory=dict)
    output: str = ""
    artefacts: list = field(default_factory=list)

    @property
    def status(self) -> str:
        """``ok``, or ``FAILED: <the error's last line>`` (cut to 120 characters for the table)."""
        if self.ok:
            return "ok"
        text = f"FAILED: {self.error}"
        return text if len(text) <= 120 else text[:117] + "..."


def read_artefact_log(path: str | Path) -> list[dict]:
    """The records of an artefact log (JSON lines); ``[]`` when the file does not exist.

    A line that is not a JSON object (a kernel killed mid-write) is skipped, not fatal.
    """
    path = Path(path)
    if not path.exists():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict) and "artefact" in rec and "status" in rec:
            records.append(rec)
    return records


def summarise_artefacts(records: list[dict]) -> list[str]:
    """One line per artefact and status, in first-use order: ``glyphs: cache hit``,
    ``ch05-protonet: built (12.3 s)``, ``data/checkpoints/ch02-sine-maml-seed0: shipped``;
    ``(x3)`` when the same artefact was loaded the same way several times."""
    groups: dict[tuple, list] = {}
    for rec in records:
        groups.setdefault((rec["artefact"], rec["status"]), []).append(rec.get("seconds"))
    lines = []
    for (name, status), secs in groups.items():
        text = f"{name}: {status}"
        spent = [s for s in secs if s is not None]
        if spent:
            text += f" ({sum(spent):.1f} s)"
        if len(secs) > 1:
            text += f" (x{len(secs)})"
        lines.append(text)
    return lines


def require_parameters_cell(nb, path: str | Path) -> int:
    """Index of the code cell tagged ``parameters``; a CourseError saying so when there is none."""
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and "parameters" in cell.get("metadata", {}).get("tags", []):
            return i
    raise course_error(f"notebook {path}", "a code cell tagged 'parameters' (FAST, DEVICE, SEED, ...)",
                       "no cell with that tag",
                       "tag the first code cell 'parameters' (cell metadata \"tags\": [\"parameters\"]) "
                       "so papermill can switch FAST on")


@contextmanager
def _environ(env: dict):
    """Temporarily replace ``os.environ`` (kernels started inside inherit it)."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@contextmanager
def _stderr_to(path: Path):
    """Send this process's stderr (file descriptor 2, inherited by the kernel) to ``path``.

    Keeps the kernel's start-up chatter out of the run table; the log stays next to the
    executed notebook.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    with open(path, "ab") as log:
        os.dup2(log.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


def _last_line(exc: BaseException) -> str:
    """The line that says what went wrong: ``ename: evalue`` of a cell error, else the message's last line."""
    ename = getattr(exc, "ename", None)
    if ename:
        evalue = (getattr(exc, "evalue", "") or "").strip().splitlines()
        return f"{ename}: {evalue[-1]}" if evalue else ename
    lines = [ln for ln in str(exc).strip().splitlines() if ln.strip()]
    return lines[-1].strip() if lines else type(exc).__name__


def edition_folders(build: str | Path, lang: str = "en") -> tuple[Path, Path]:
    """(executed copies, figures) of the ``lang`` edition under ``build``: ``executed/`` and
    ``figures/`` for English, ``executed-<lang>/`` and ``figures-<lang>/`` otherwise."""
    suffix = "" if lang == "en" else f"-{lang}"
    return Path(build) / f"executed{suffix}", Path(build) / f"figures{suffix}"


def add_run_options(parser) -> None:
    """``course run``'s ``--build`` and ``--lang`` (kept here: ``cli.py`` is at its size limit)."""
    from .translations import LANGUAGES

    parser.add_argument("--build", type=Path, default=None,
                        help="output folder (default: ROOT/build; executed copies and figures go there)")
    parser.add_argument("--lang", default="en", choices=("en", *LANGUAGES),
                        help="the edition to execute (default: en); zh: the Chinese solution notebooks, "
                             "into BUILD/executed-zh/ and BUILD/figures-zh/")


def _source_notebook(root: Path, chapter: str, lang: str, out: Path) -> Path:
    """The notebook papermill runs: ``solutions/<chapter>/<chapter>.ipynb`` for English, else its
    translation written to ``out``'s folder (a CourseError when the translation is not current)."""
    src = solution_path(root, chapter)
    if lang == "en":
        return src
    from .notebooks import write_notebook
    from .translations import translated_notebook

    translated = out.with_name(f"{chapter}.source.ipynb")
    write_notebook(translated_notebook(read_notebook(src), root, chapter, lang), translated)
    return translated


def run_chapter(root: str | Path, chapter: str, *, fast: bool = True, timeout: int | None = None,
                build: str | Path | None = None, lang: str = "en") -> ChapterRun:
    """Execute one chapter's solution notebook with papermill; never raises for a failing notebook.

    ``timeout`` is papermill's per-cell limit in seconds (``None``: no limit). Executed copies go
    to ``<build>/executed/<chapter>/`` and figures to ``<build>/figures/`` (``build`` defaults to
    ``<root>/build``). ``lang="zh"`` runs the Chinese edition (:func:`edition_folders`); a missing
    or stale translation makes a failed run whose error says what to translate.
    """
    import logging

    import papermill as pm  # local: slow import, only `run` needs it

    # papermill logs a warning for every parameters line it cannot parse for its own --help-notebook
    # (comments with brackets); the values still get injected, so keep the table readable
    logging.getLogger("papermill").setLevel(logging.ERROR)

    root = Path(root)
    build = Path(build) if build else root / "build"
    executed, figures_dir = edition_folders(build, lang)
    out = executed / chapter / f"{chapter}.ipynb"
    figures_dir.mkdir(parents=True, exist_ok=True)
    (figures_dir / f"{chapter}.json").unlink(missing_ok=True)  # no stale figures in the table
    (figures_dir / f"{chapter}.story.json").unlink(missing_ok=True)  # nor stale rankings and claims
    out.parent.mkdir(parents=True, exist_ok=True)
    log = (out.parent / "artefacts.jsonl").resolve()
    log.unlink(missing_ok=True)  # this run's loads only
    start = time.perf_counter()
    try:
        src = _source_notebook(root, chapter, lang, out)
        require_parameters_cell(read_notebook(src), f"solutions/{chapter}/{chapter}.ipynb")
        env = course_env(fast=fast, extra={FIGURES_DIR_ENV: str(figures_dir.resolve()),
                                           ARTEFACT_LOG_ENV: str(log)})
        with _environ(env), _stderr_to(out.with_suffix(".stderr.log")):
            pm.execute_notebook(str(src), str(out), parameters={"FAST": bool(fast)},
                                cwd=str(solution_path(root, chapter).parent), kernel_name="python3", progress_bar=False,
                                log_output=False, execution_timeout=timeout)
        ok, error = True, ""
    except Exception as exc:  # a failing chapter is a row in the table, not a crash
        ok, error = False, _last_line(exc)
    seconds = time.perf_counter() - start
    return ChapterRun(chapter, ok, seconds, error, read_figures(figures_dir, chapter),
                      str(out) if out.exists() else "", summarise_artefacts(read_artefact_log(log)))


def format_figures(figures: dict, width: int = 90) -> str:
    """``name=value`` pairs, floats to 3 significant digits, cut to ``width`` characters."""
    parts = []
    for k, v in figures.items():
        parts.append(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}")
    text = ", ".join(parts) or "-"
    return text if len(text) <= width else text[: width - 3] + "..."


def format_table(runs: list[ChapterRun]) -> str:
    """The table ``course run`` prints: chapter, status, wall time, headline figures."""
    rows = [("chapter", "status", "time", "headline figures")]
    rows += [(r.chapter, r.status, f"{r.seconds:.1f} s", format_figures(r.figures)) for r in runs]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = []
    for n, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(row[:3], widths)) + "  " + row[3])
        if n == 0:
            lines.append("-" * (sum(widths) + 6 + len("headline figures")))
    return "\n".join(lines)
