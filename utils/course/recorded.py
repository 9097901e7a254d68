"""Recorded full-mode runs of the shipped code (``python -m utils.course record``), the outputs the
book shows (issue 24, § 4: "FAST tells the same story as full").

A full run of a chapter takes minutes to hours, so the book cannot make one at every build, and a
committed notebook carries no outputs. Instead, after ``python -m utils.course run --full --build
DIR``, ``python -m utils.course record --build DIR`` writes one JSON file per chapter,
``data/recorded/<chapter>.json`` (tracked in git), with these fields:

``chapter``, ``mode`` (``"full"``), ``date`` (YYYY-MM-DD of the run), ``machine``
(:func:`~utils.course.book_runs.describe_machine`'s words), ``seconds`` (the run's wall time, or
null), ``code_cells`` (``{cell id: sha256 of its source}``), ``outputs`` (``{cell id: nbformat
outputs}``, code cells only; execution counts, stderr streams and live-widget views dropped, as
the book never shows them), ``figures`` (``<build>/figures/<chapter>.json``) and ``story``
(``<build>/figures/<chapter>.story.json``, written by :mod:`utils.story`).

A recording is **current** while its code cells (ids and sources) equal today's
``solutions/<chapter>`` notebook: markdown may change freely, as the book takes the prose from
today's notebook. :func:`is_recording_current` says so; :func:`stale_recordings` lists the
recordings to redo; ``tests/test_recorded.py`` fails on any.
"""
from __future__ import annotations

import copy
import hashlib
import json
from datetime import datetime
from pathlib import Path

import nbformat

from ..cache import atomic_write_text
from ..errors import CourseError, course_error
from .book_pages import clean_outputs
from .book_runs import comparable_cells, describe_machine, run_date
from .notebooks import PROJECT_ROOT, find_chapters, read_notebook, select_chapters, solution_path

__all__ = ["RECORDED_DIR", "EMPTY_STORY", "recorded_dir", "recording_path", "code_cells",
           "check_run", "make_recording", "write_recording", "record_build", "load_recording",
           "is_recording_current", "stale_recordings", "recorded_notebook", "add_record_parser",
           "cmd_record"]

#: Where recordings live, relative to the course root.
RECORDED_DIR = Path("data") / "recorded"
#: The story of a run that recorded no claim and no ranking.
EMPTY_STORY = {"rankings": {}, "claims": {}}


def recorded_dir(root: str | Path = PROJECT_ROOT) -> Path:
    """``<root>/data/recorded``: one ``<chapter>.json`` per recorded chapter."""
    return Path(root) / RECORDED_DIR


def recording_path(chapter: str, root: str | Path = PROJECT_ROOT) -> Path:
    """``<root>/data/recorded/<chapter>.json``."""
    return recorded_dir(root) / f"{chapter}.json"


def code_cells(nb) -> dict[str, str]:
    """``{cell id: sha256 hex of its source}`` of the code cells (papermill's injected cell left out)."""
    return {str(cid): hashlib.sha256(source.encode("utf-8")).hexdigest()
            for cid, kind, source in comparable_cells(nb) if kind == "code"}


def _rerun(chapter: str, build: Path) -> str:
    return (f"run it again in full mode, `python -m utils.course run --full --only {chapter[:2]} "
            f"--build {build}`, then `python -m utils.course record --build {build} --only {chapter[:2]}`")


def check_run(executed, solution, chapter: str, build: str | Path = "DIR") -> None:
    """Raise a :class:`~utils.errors.CourseError` unless ``executed`` (papermill's output) is a
    full-mode run that raised nothing and whose code cells equal ``solution``'s."""
    what, fix = f"the run of {chapter} to record", _rerun(chapter, Path(build))
    pm = executed.metadata.get("papermill") or {}
    fast = (pm.get("parameters") or {}).get("FAST")
    if fast is not False:
        found = "no papermill parameters (not a `course run` output)" if not pm else f"a run with FAST = {fast}"
        raise course_error(what, "a full-mode run (papermill parameter FAST = False)", found, fix)
    errors = [f"{o.get('ename')}: {o.get('evalue')}" for c in executed.cells if c.cell_type == "code"
              for o in c.get("outputs", []) if o.get("output_type") == "error"]
    if pm.get("exception") or errors:
        raise course_error(what, "a run that raised no exception", "a run that raised"
                           + (f" ({errors[0]})" if errors else ""), "fix the failing cell, then " + fix)
    ran, today = code_cells(executed), code_cells(solution)
    if ran != today:
        changed = sorted(k for k in ran.keys() & today.keys() if ran[k] != today[k])
        parts = [f"{name} {', '.join(ids)}" for name, ids in (
            ("changed since the run:", changed), ("new since the run:", sorted(today.keys() - ran.keys())),
            ("gone since the run:", sorted(ran.keys() - today.keys()))) if ids]
        raise course_error(what, f"code cells equal to today's solutions/{chapter}",
                           "code cells " + "; ".join(parts), fix)


def _outputs(cell) -> list:
    kept = []
    for out in clean_outputs(cell.get("outputs", [])):
        if out.get("output_type") == "stream" and out.get("name") == "stderr":
            continue  # warnings and progress bars: the book drops them (nb_output_stderr)
        if "execution_count" in out:
            out["execution_count"] = None
        kept.append(out)
    return kept


def _json_or(path: Path, default):
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else copy.deepcopy(default)


def _check_fresh(files: list[Path], pm: dict, chapter: str, build: Path) -> None:
    """Refuse a figures or story file written before the run began: an earlier run's, left in the
    same build folder (the story file is merged into, not replaced, by each run)."""
    try:
        start = datetime.fromisoformat(str(pm.get("start_time"))).timestamp()
    except ValueError:
        return  # no start time recorded: nothing to compare with
    old = [p for p in files if p.is_file() and p.stat().st_mtime < start - 1.0]
    if old:
        raise course_error(f"the run of {chapter} to record", "headline figures and a story written by this run",
                           f"{', '.join(map(str, old))}, older than the run (an earlier run's)",
                           f"delete {'them' if len(old) > 1 else 'it'}, then {_rerun(chapter, build)}")


def make_recording(root: str | Path, chapter: str, build: str | Path) -> dict:
    """The recording of ``<build>/executed/<chapter>/<chapter>.ipynb`` (after :func:`check_run`)."""
    build = Path(build)
    path = build / "executed" / chapter / f"{chapter}.ipynb"
    solution = solution_path(root, chapter)
    if not solution.is_file():
        raise course_error(f"the run {path}", f"a chapter of the course ({solution} exists)",
                           "no such solution notebook", "record only chapters found in solutions/ (--only)")
    executed = read_notebook(path)
    check_run(executed, read_notebook(solution), chapter, build)
    pm = executed.metadata.get("papermill") or {}
    figures = build / "figures"
    _check_fresh([figures / f"{chapter}.json", figures / f"{chapter}.story.json"], pm, chapter, build)
    sidecar = path.with_suffix(".book.json")  # the book's own runs say where they ran
    machine = _json_or(sidecar, {}).get("machine") or describe_machine()
    seconds = pm.get("duration")
    cells = code_cells(executed)
    return {"chapter": chapter, "mode": "full", "date": run_date(executed), "machine": machine,
            "seconds": round(float(seconds), 1) if seconds is not None else None, "code_cells": cells,
            "outputs": {str(c.get("id")): _outputs(c) for c in executed.cells
                        if c.cell_type == "code" and str(c.get("id")) in cells},
            "figures": _json_or(figures / f"{chapter}.json", {}),
            "story": _json_or(figures / f"{chapter}.story.json", EMPTY_STORY)}


def write_recording(recording: dict, root: str | Path = PROJECT_ROOT) -> Path:
    """Write ``recording`` to ``data/recorded/<chapter>.json`` atomically (sorted keys, indent 1)."""
    path = recording_path(recording["chapter"], root)
    text = json.dumps(recording, sort_keys=True, indent=1, ensure_ascii=False) + "\n"
    return atomic_write_text(path, text)


def record_build(root: str | Path, build: str | Path, only: list[str] | None = None,
                 log=print) -> list[Path]:
    """Record every chapter executed under ``<build>/executed/`` (or the ``only`` ones). Checks
    all of them first and writes none if any is refused (one error naming each refusal)."""
    executed = Path(build) / "executed"
    found = sorted(p.name for p in executed.iterdir()
                   if (p / f"{p.name}.ipynb").is_file()) if executed.is_dir() else []
    if not found:
        raise course_error(f"record --build {build}", f"executed chapters in {executed}/NN_name/NN_name.ipynb",
                           "none", f"run `python -m utils.course run --full --build {build}` first")
    chapters = select_chapters(found, only)
    recordings, refused = [], []
    for ch in chapters:
        try:
            recordings.append(make_recording(root, ch, build))
        except CourseError as exc:
            refused.append(str(exc))
    if refused:
        raise CourseError(f"{len(refused)} of {len(chapters)} run(s) refused, nothing recorded:\n  "
                          + "\n  ".join(refused))
    paths = []
    for rec in recordings:
        paths.append(write_recording(rec, root))
        log(f"recorded {rec['chapter']}: full run of {rec['date']} on {rec['machine']} -> {paths[-1]}")
    return paths


def load_recording(chapter: str, root: str | Path = PROJECT_ROOT) -> dict | None:
    """The recording of ``chapter`` (a dict of the fields above), or None when there is none."""
    path = recording_path(chapter, root)
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def is_recording_current(chapter: str, root: str | Path = PROJECT_ROOT) -> bool:
    """Whether ``chapter`` has a full-mode recording whose code cells equal today's solution's."""
    rec, solution = load_recording(chapter, root), solution_path(root, chapter)
    if rec is None or rec.get("mode") != "full" or not solution.is_file():
        return False
    return rec.get("code_cells") == code_cells(read_notebook(solution))


def stale_recordings(root: str | Path = PROJECT_ROOT) -> list[str]:
    """The recorded chapters (``data/recorded/*.json``) that are not current, or not a chapter any more."""
    folder, chapters = recorded_dir(root), set(find_chapters(root))
    found = sorted(p.stem for p in folder.glob("*.json")) if folder.is_dir() else []
    return [ch for ch in found if ch not in chapters or not is_recording_current(ch, root)]


def recorded_notebook(recording: dict, solution):
    """Today's ``solution`` notebook with the recorded outputs on its code cells (what the book
    renders in place of an executed copy; cells without a recorded output stay empty)."""
    nb = copy.deepcopy(solution)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = [nbformat.from_dict(o) for o in recording["outputs"].get(str(cell.get("id")), [])]
            cell.execution_count = None
    return nb


def add_record_parser(sub, help: str) -> None:
    """The ``record`` sub-command and its options (for :func:`utils.course.cli.build_parser`)."""
    r = sub.add_parser("record", help=help)
    r.add_argument("--build", type=Path, default=None,
                   help="the folder of `course run --full --build DIR` (default: ROOT/build)")
    r.add_argument("--only", nargs="+", metavar="NN", help="only these chapters (number or name)")


def cmd_record(args) -> int:
    """``python -m utils.course record``: write data/recorded/<chapter>.json for each full run."""
    build = args.build or Path(args.root) / "build"
    paths = record_build(args.root, build, args.only)
    print(f"{len(paths)} chapter(s) recorded in {recorded_dir(args.root)}: commit them with the chapter.")
    return 0
