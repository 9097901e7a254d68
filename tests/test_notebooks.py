"""Notebooks execute headless (papermill, FAST=True) and are committed stripped, with cell ids."""
from __future__ import annotations

import subprocess

import pytest
from nbformat.v4 import new_output

from conftest import CHAPTERS, REPO, chapter_params, toy_solution, write_toy_course
from utils.errors import CourseError
from utils.course.execute import require_parameters_cell, run_chapter
from utils.course.notebooks import (CELL_ID_RE, read_notebook, solution_path, strip_notebook,
                             unstripped_problems)


def _injected_fast(executed_path) -> str:
    nb = read_notebook(executed_path)
    cells = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert cells, "papermill did not inject a parameters cell"
    return cells[0].source


# --------------------------------------------------------------------------- real chapters
@pytest.mark.parametrize("chapter", chapter_params())
def test_solution_notebook_executes_fast(chapter, chapter_run):
    run = chapter_run(chapter)
    assert run.ok, f"{chapter} failed under papermill (FAST=True): {run.error}\nsee {run.output}"
    assert "FAST = True" in _injected_fast(run.output)
    assert run.figures, (f"{chapter} recorded no headline figures for `course run` "
                         "(call utils.figures.record_figures, see CONTRIBUTING.md)")


@pytest.mark.parametrize("chapter", chapter_params())
def test_solution_notebook_has_parameters_cell(chapter):
    nb = read_notebook(solution_path(REPO, chapter))
    i = require_parameters_cell(nb, solution_path(REPO, chapter))
    for name in ("FAST", "DEVICE", "SEED"):
        assert f"{name} =" in nb.cells[i].source, f"parameters cell of {chapter} lacks {name}"


def _committed_notebooks() -> list:
    try:
        out = subprocess.run(["git", "ls-files", "*.ipynb"], cwd=REPO, capture_output=True,
                             text=True, check=True).stdout.split()
        files = [REPO / f for f in out if (REPO / f).exists()]
    except (OSError, subprocess.CalledProcessError):
        files = []
    files += [p for ch in CHAPTERS for p in (solution_path(REPO, ch),
                                             REPO / "chapters" / ch / f"{ch}.ipynb") if p.exists()]
    return sorted(set(files))


def test_committed_notebooks_are_stripped_and_have_ids():
    files = _committed_notebooks()
    assert files, ("no notebook found (git ls-files '*.ipynb' and solutions/, chapters/ are empty): "
                   "the discovery or the checkout is broken")
    problems = {str(p.relative_to(REPO)): unstripped_problems(read_notebook(p)) for p in files}
    problems = {k: v for k, v in problems.items() if v}
    assert not problems, ("notebooks must be committed stripped (run `python -m utils.course sync`"
                          f" or `nbstripout --keep-id`): {problems}")
    bad_ids = {str(p.relative_to(REPO)): [c.get("id") for c in read_notebook(p).cells
                                         if not CELL_ID_RE.match(c.get("id") or "")]
               for p in files}
    assert not {k: v for k, v in bad_ids.items() if v}, \
        f"cell ids must be lowercase letters, digits and '-': {bad_ids}"


# --------------------------------------------------------------------------- the machinery
def test_toy_chapter_runs_under_papermill(tmp_path):
    root = write_toy_course(tmp_path / "course")
    src = solution_path(root, "01_toy")
    before = src.read_bytes()
    run = run_chapter(root, "01_toy", fast=True, timeout=300, build=tmp_path / "build")
    assert run.ok, run.error
    assert run.figures == {"toy_answer": 42, "fast": True}
    assert "FAST = True" in _injected_fast(run.output)
    assert src.read_bytes() == before, "papermill must never write into solutions/"


def test_notebook_without_parameters_cell_fails_and_says_so(tmp_path):
    root = write_toy_course(tmp_path / "course", with_parameters=False)
    with pytest.raises(CourseError, match="tagged 'parameters'"):
        require_parameters_cell(read_notebook(solution_path(root, "01_toy")), "toy")
    run = run_chapter(root, "01_toy", fast=True, timeout=300, build=tmp_path / "build")
    assert not run.ok
    assert "parameters" in run.error and "no cell with that tag" in run.error


def test_stripping_removes_outputs_counts_and_widget_state_but_keeps_ids():
    nb = toy_solution()
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    code = next(c for c in nb.cells if c.cell_type == "code")
    code.outputs = [new_output("stream", name="stdout", text="hi\n")]
    code.execution_count = 3
    code.metadata["execution"] = {"iopub.status.idle": "2024-01-01"}
    problems = unstripped_problems(nb)
    assert any("widget state" in p for p in problems)
    assert any("has outputs" in p for p in problems)
    assert any("execution count" in p for p in problems)
    clean = strip_notebook(nb)
    assert unstripped_problems(clean) == []
    assert [c.id for c in clean.cells] == [c.id for c in nb.cells]
    assert "execution" not in next(c for c in clean.cells if c.cell_type == "code").metadata


# --------------------------------------------------------------------------- shared across workers
def _count_and_share(folder, key, blocking=True):
    """What one xdist worker does: ask :func:`conftest.shared_once` for ``key``; each computation
    appends a line to ``folder/made.txt`` (so the test can count them)."""
    import time
    from conftest import shared_once

    def make():
        with open(folder / "made.txt", "a") as f:
            f.write("made\n")
        time.sleep(0.5)      # long enough for the other process to wait on the lock
        return {"key": key}
    return shared_once(folder, key, make, blocking=blocking)


def test_shared_once_computes_once_across_processes(tmp_path):
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(3) as pool:
        got = pool.starmap(_count_and_share, [(tmp_path, "chapter-run-01")] * 3)
    assert got == [{"key": "chapter-run-01"}] * 3
    assert (tmp_path / "made.txt").read_text() == "made\n", "computed more than once"
    assert not list(tmp_path.glob(".*.tmp")), "a temporary file was left behind"


def test_shared_once_non_blocking_leaves_a_held_key_to_its_holder(tmp_path):
    from filelock import FileLock

    with FileLock(str(tmp_path / "k.lock")):
        import multiprocessing
        with multiprocessing.get_context("spawn").Pool(1) as pool:
            assert pool.apply(_count_and_share, (tmp_path, "k", False)) is None
    assert _count_and_share(tmp_path, "k", False) == {"key": "k"}
