"""Every chapter follows the notebook conventions of issue 15 (utils/course/conventions.py):
the same setup cell, one knobs cell right after it (or after the imports cell that follows it), no code cell over 40 lines, unique cell ids."""
from __future__ import annotations

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from conftest import REPO
from utils.chapters import CHAPTERS
from utils.course.conventions import KNOBS_ID, MAX_CODE_LINES, convention_problems, setup_source, title_problem
from utils.course.notebooks import read_notebook, solution_path

WRITTEN = [ch for ch in CHAPTERS if solution_path(REPO, ch).exists()]


@pytest.mark.parametrize("chapter", WRITTEN)
def test_chapter_follows_the_conventions(chapter):
    nb = read_notebook(solution_path(REPO, chapter))
    assert convention_problems(nb) == [], chapter


@pytest.mark.parametrize("chapter", WRITTEN)
def test_chapter_title_carries_its_folder_number(chapter):
    assert title_problem(read_notebook(solution_path(REPO, chapter)), chapter) is None


def test_the_title_check_catches_a_stale_number():
    from nbformat.v4 import new_markdown_cell
    assert title_problem(_nb(new_markdown_cell("# 04 · Distillation")), "04_distillation") is None
    assert "does not start with '# 04 · '" in title_problem(_nb(new_markdown_cell("# 03 · Distillation")),
                                                            "04_distillation")
    assert "first cell" in title_problem(_nb(new_code_cell("x = 1")), "04_distillation")


def _nb(*cells):
    return new_notebook(cells=list(cells))


def test_the_checker_catches_each_breach():
    setup = new_code_cell(setup_source("01_mapping"), id="setup")
    knobs = new_code_cell("N = 3 if FAST else 30   # tasks", id=KNOBS_ID)
    assert convention_problems(_nb(new_code_cell("FAST = True", id="parameters"), setup, knobs)) == []
    assert "differs" in " ".join(convention_problems(_nb(new_code_cell(setup_source("01_mapping") + "\nimport os", id="setup"))))
    imports = new_code_cell("import math", id="imports")
    assert convention_problems(_nb(setup, imports, knobs)) == [], "knobs may follow the imports cell"
    late = convention_problems(_nb(setup, imports, new_code_cell("x = 1", id="x"), knobs))
    assert any("not right after" in p for p in late)
    scattered = convention_problems(_nb(setup, knobs, new_code_cell("M = 1 if FAST else 2", id="other")))
    assert any("outside the 'knobs' cell" in p and "other" in p for p in scattered)
    bounds = new_code_cell("assert gap < (0.5 if FAST else 0.1)\nprint(f\"{'FAST' if FAST else 'full'} mode\")", id="bounds")
    assert convention_problems(_nb(setup, knobs, bounds)) == [], "assert bounds and messages are not sizes"
    kwarg = new_code_cell("CLS = dict(iters=150 if FAST else 2000)", id="kwarg")
    assert any("kwarg" in p for p in convention_problems(_nb(setup, knobs, kwarg)))
    long = new_code_cell("\n".join(f"x{i} = {i}" for i in range(MAX_CODE_LINES + 1)), id="long")
    assert any("'long' has 41 lines" in p for p in convention_problems(_nb(setup, knobs, long)))
    nb = _nb(setup, knobs, new_code_cell("a = 1", id="a"), new_code_cell("b = 2", id="b"))
    nb.cells[-1]["id"] = "a"          # nbformat renames duplicates when it validates: set it after
    twice = convention_problems(nb)
    assert any("more than once" in p for p in twice)
    threads = new_code_cell(setup_source("03_families", threads=True), id="setup")
    assert convention_problems(_nb(threads, knobs)) == [], "a chapter with CPU_THREADS passes it"
    old = new_code_cell("import time\n_chapter_start = time.perf_counter()", id="setup")
    assert any("differs" in p for p in convention_problems(_nb(old)))


def test_no_cell_uses_a_private_utils_name():
    setup = new_code_cell(setup_source("01_mapping"), id="setup")
    for source in ("from utils.meta import _Learner", "from utils.meta import ProtoNet, _embed as e",
                   "t = time.perf_counter() - _chapter_start"):
        problems = convention_problems(_nb(setup, new_code_cell(source, id="bad")))
        assert any("'bad' uses private names" in p for p in problems), source
    bind = "from utils.course import integrity as _integrity\n_REF = _integrity.bind('utils.stats.mean_ci95')"
    assert convention_problems(_nb(setup, new_code_cell(bind, id="integrity-bind"))) == []
    assert convention_problems(_nb(setup, new_code_cell("%time x = 1", id="magic"))) == []


def test_locked_test_cells_may_be_long():
    test_cell = new_code_cell("\n".join(f"assert {i} == {i}" for i in range(60)), id="test-long")
    test_cell.metadata["nbgrader"] = {"grade": True, "locked": True, "solution": False,
                                      "grade_id": "test-long", "points": 1, "schema_version": 3}
    nb = _nb(new_code_cell(setup_source("01_mapping"), id="setup"), test_cell)
    assert convention_problems(nb) == []
    assert nbformat.validate(nb) is None
