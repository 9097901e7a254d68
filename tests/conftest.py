"""Shared fixtures for the notebook-toolchain tests.

Two kinds of course are tested:

* the real one: every chapter found in ``solutions/`` (parametrized; a clean skip while there
  are none), with expensive steps (papermill run, nbgrader round trip, regenerated chapters)
  done once per session and shared;
* a toy course written by the tests into a temporary folder (two tiny chapters with an
  exercise, hidden tests and a written answer), so the machinery itself is exercised even
  before any chapter exists.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from utils.course.notebooks import (find_chapters, fill_answers, is_answer_cell, nbgrader_meta,  # noqa: E402
                             read_notebook, release_path, solution_path, tests_of_answer,
                             write_notebook)

#: Chapters of the real course, found once at collection time.
CHAPTERS = find_chapters(REPO)
NO_CHAPTERS = "no chapters in solutions/ yet (they arrive with the chapter issues)"

# few BLAS/OpenMP threads for everything the tests start; subprocesses get COURSE_FAST=1 through
# utils.course.nbgrader_course.course_env (not set here: engine tests check resolve_fast themselves)
os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("MKL_NUM_THREADS", "2")
if os.environ.get("PYTEST_XDIST_WORKER"):
    # Several workers share the cores: one thread each, and OpenMP threads that sleep instead of
    # spin-waiting (spinning threads of two busy processes slow torch down 10-40x on 2 cores).
    os.environ.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OMP_WAIT_POLICY="PASSIVE")
    import torch

    torch.set_num_threads(1)


def chapter_params():
    """Parameters for per-chapter tests: one per real chapter, or one clean skip when none exist."""
    if not CHAPTERS:
        return [pytest.param(None, marks=pytest.mark.skip(reason=NO_CHAPTERS), id="no-chapters")]
    return CHAPTERS


# --------------------------------------------------------------------------- toy course
def _meta(**nbgrader) -> dict:
    return {"nbgrader": dict(schema_version=3, task=False, **nbgrader)}


def _answer(cid: str, gid: str, source: str):
    return new_code_cell(source, id=cid, metadata=_meta(grade=False, solution=True, locked=False,
                                                        grade_id=gid))


def _test(gid: str, points: int, source: str):
    return new_code_cell(source, id=gid, metadata=_meta(grade=True, solution=False, locked=True,
                                                        points=points, grade_id=gid))


def _params(with_tag: bool = True):
    meta = {"tags": ["parameters"]} if with_tag else {}
    return new_code_cell("FAST = False  # True: the quick version\nDEVICE = \"auto\"\nSEED = 0",
                         id="parameters", metadata=meta)


def _notebook(cells) -> nbformat.NotebookNode:
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)",
                                 "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    return nb


#: Points of the toy chapter's autograded tests.
TOY_POINTS = {"test-add": 2, "test-q1": 1, "test-square": 3}
TOY_TITLE = "Toy chapter: x maps to x + 1"


def toy_solution(with_parameters: bool = True) -> nbformat.NotebookNode:
    """The toy chapter's instructor notebook: 3 autograded exercises (6 points) + 1 written answer."""
    return _notebook([
        new_markdown_cell(f"# {TOY_TITLE}\nA tiny chapter used by the tests.", id="title"),
        _params(with_parameters),
        new_code_cell("import os\nFAST = FAST or os.environ.get('COURSE_FAST') == '1'\n"
                      "print('FAST mode:', FAST)", id="setup"),
        _answer("ex-add-answer", "ex-add",
                "def add(a, b):\n    \"\"\"Return a + b.\"\"\"\n    ### BEGIN SOLUTION\n"
                "    return a + b\n    ### END SOLUTION"),
        _test("test-add", TOY_POINTS["test-add"],
              "assert add(1, 2) == 3\n### BEGIN HIDDEN TESTS\n"
              "assert add(-10, 4) == -6, \"add must handle negative numbers\"\n"
              "assert add(2.5, 0.25) == 2.75\n### END HIDDEN TESTS"),
        _answer("ex-q1-answer", "ex-q1",
                "# Which letter names a meta-learner? a, b or c\n### BEGIN SOLUTION\n"
                "ANSWER_Q1 = \"b\"\n### END SOLUTION"),
        _test("test-q1", TOY_POINTS["test-q1"],
              "assert ANSWER_Q1 in (\"a\", \"b\", \"c\"), \"ANSWER_Q1 must be 'a', 'b' or 'c'\"\n"
              "### BEGIN HIDDEN TESTS\nassert ANSWER_Q1 == \"b\", \"not the right choice\"\n"
              "### END HIDDEN TESTS"),
        _answer("ex-square-answer", "ex-square",
                "def square(x):\n    ### BEGIN SOLUTION\n    return x ** 2\n    ### END SOLUTION"),
        _test("test-square", TOY_POINTS["test-square"],
              "assert square(2) == 4\n### BEGIN HIDDEN TESTS\n"
              "assert square(-3) == 9, \"square(-3) should be 9\"\n### END HIDDEN TESTS"),
        new_markdown_cell("### BEGIN SOLUTION\nA learner maps a data set to a model; the "
                          "meta-learner maps tasks to learners.\n### END SOLUTION",
                          id="written-why",
                          metadata=_meta(grade=True, solution=True, locked=False, points=2,
                                         grade_id="written-why")),
        new_code_cell("from utils.figures import record_figures\n"
                      "record_figures(\"01_toy\", {\"toy_answer\": 42, \"fast\": FAST})",
                      id="figures"),
    ])


def other_solution() -> nbformat.NotebookNode:
    """A second toy chapter (one exercise, 2 points), to hand in to the wrong chapter."""
    return _notebook([
        new_markdown_cell("# Other toy chapter", id="title"),
        _params(),
        _answer("ex-mul-answer", "ex-mul",
                "def mul(a, b):\n    ### BEGIN SOLUTION\n    return a * b\n    ### END SOLUTION"),
        _test("test-mul", 2, "assert mul(2, 3) == 6\n### BEGIN HIDDEN TESTS\n"
                             "assert mul(-2, 3) == -6\n### END HIDDEN TESTS"),
    ])


def write_toy_course(root: Path, *, with_parameters: bool = True) -> Path:
    """Write the two toy chapters' sources under ``root/solutions``; return ``root``."""
    write_notebook(toy_solution(with_parameters), solution_path(root, "01_toy"))
    write_notebook(other_solution(), solution_path(root, "02_other"))
    return root


def set_answer(nb, grade_id: str, source: str):
    """Replace the source of the cell with ``grade_id`` in ``nb`` (in place); return ``nb``."""
    for cell in nb.cells:
        if nbgrader_meta(cell).get("grade_id") == grade_id:
            cell.source = source
            return nb
    raise KeyError(grade_id)


def first_answer(nb) -> str:
    """grade_id of the first code answer cell."""
    return next(nbgrader_meta(c)["grade_id"] for c in nb.cells if is_answer_cell(c))


def one_wrong(release_nb, solution_nb):
    """The student notebook with every answer filled in except the first one (left as the stub).

    Returns (notebook, stubbed grade_id, grade_ids of the tests that must lose their points).
    """
    stub = first_answer(release_nb)
    return (fill_answers(release_nb, solution_nb, leave_stub={stub}), stub,
            tests_of_answer(release_nb, stub))


@pytest.fixture(scope="session")
def toy_root(tmp_path_factory) -> Path:
    """A toy course with ``solutions/`` written and ``chapters/`` generated by ``course sync``."""
    from utils.course.sync import sync

    root = write_toy_course(tmp_path_factory.mktemp("toy-course"))
    sync(root)
    return root


def make_toy_notebooks(toy_root: Path) -> dict:
    """Learner notebooks for the toy chapter (NotebookNodes) and what they should score.

    correct 6/6, untouched 0/6, partly (square wrong) 3/6, tampered (add wrong + its test
    edited, square wrong + its test deleted) 1/6, looping (add never returns), other (chapter
    02_other, all correct), one_wrong (first answer left as the stub).
    """
    sol = read_notebook(solution_path(toy_root, "01_toy"))
    rel = read_notebook(release_path(toy_root, "01_toy"))
    correct = fill_answers(rel, sol)
    partly = set_answer(fill_answers(rel, sol), "ex-square", "def square(x):\n    return 2 * x")
    tampered = fill_answers(rel, sol)
    set_answer(tampered, "ex-add", "def add(a, b):\n    return a - b")
    set_answer(tampered, "test-add", "pass  # tests? what tests")
    set_answer(tampered, "ex-square", "def square(x):\n    return x")
    tampered.cells = [c for c in tampered.cells if nbgrader_meta(c).get("grade_id") != "test-square"]
    looping = set_answer(fill_answers(rel, sol), "ex-add",
                         "def add(a, b):\n    while True:\n        pass")
    other = fill_answers(read_notebook(release_path(toy_root, "02_other")),
                         read_notebook(solution_path(toy_root, "02_other")))
    wrong1, stub, lost = one_wrong(rel, sol)
    return {"correct": correct, "untouched": rel, "partly": partly, "tampered": tampered,
            "looping": looping, "other": other, "one_wrong": wrong1,
            "one_wrong_stub": stub, "one_wrong_lost": lost}


@pytest.fixture(scope="session")
def toy_notebooks(toy_root) -> dict:
    """:func:`make_toy_notebooks` for the session's toy course."""
    return make_toy_notebooks(toy_root)


# --------------------------------------------------------------------------- real chapters
class _Lazy:
    """A per-chapter cache for session-wide results computed on first use."""

    def __init__(self, make):
        self.make, self.done = make, {}

    def __call__(self, chapter):
        if chapter not in self.done:
            self.done[chapter] = self.make(chapter)
        return self.done[chapter]


@pytest.fixture(scope="session")
def chapter_run(tmp_path_factory):
    """chapter -> :class:`utils.course.execute.ChapterRun` of its solution notebook in FAST mode (once)."""
    from utils.course.execute import run_chapter

    build = tmp_path_factory.mktemp("build")
    return _Lazy(lambda ch: run_chapter(REPO, ch, fast=True, timeout=600, build=build))


@pytest.fixture(scope="session")
def roundtrip(tmp_path_factory, generated_chapters):
    """chapter -> dict of grade reports from one nbgrader run in a temporary course:

    ``solution`` (the instructor notebook), ``untouched`` (the student version as nbgrader
    generates it, which test_sync proves equal to the committed chapters/) and ``one_wrong``
    (every answer filled in but the first), plus what one_wrong must lose.
    """
    from utils.course.grading import grade_notebooks

    def make(ch):
        folder = tmp_path_factory.mktemp(f"roundtrip-{ch}")
        sol = read_notebook(solution_path(REPO, ch))
        rel = read_notebook(generated_chapters / ch / f"{ch}.ipynb")
        wrong, stub, lost = one_wrong(rel, sol)
        paths = [folder / "solution" / f"{ch}.ipynb", folder / "untouched" / f"{ch}.ipynb",
                 folder / "one_wrong" / f"{ch}.ipynb"]
        for nb, path in zip([sol, rel, wrong], paths):
            write_notebook(nb, path)
        reports = grade_notebooks(paths, root=REPO, timeout=300)
        return {"solution": reports[0], "untouched": reports[1], "one_wrong": reports[2],
                "stub": stub, "lost": lost}

    return _Lazy(make)


@pytest.fixture(scope="session")
def generated_chapters(tmp_path_factory) -> Path:
    """Every real chapter's student version regenerated into a temporary folder (once)."""
    from utils.course.sync import generate_chapters

    out = tmp_path_factory.mktemp("generated-chapters")
    if CHAPTERS:
        generate_chapters(REPO, out, CHAPTERS)
    return out


#: The toy learner notebooks graded together by :func:`toy_reports`, and their expected points.
TOY_EXPECTED = {
    "solution": {"test-add": 2, "test-q1": 1, "test-square": 3},
    "correct": {"test-add": 2, "test-q1": 1, "test-square": 3},
    "untouched": {"test-add": 0, "test-q1": 0, "test-square": 0},
    "partly": {"test-add": 2, "test-q1": 1, "test-square": 0},
    "tampered": {"test-add": 0, "test-q1": 1, "test-square": 0},
    "one_wrong": {"test-add": 0, "test-q1": 1, "test-square": 3},
    "other": {"test-mul": 2},
}


@pytest.fixture(scope="session")
def toy_learner_files(toy_root, toy_notebooks, tmp_path_factory) -> dict:
    """The toy learner notebooks written to disk (each as ``<kind>/01_toy.ipynb``), plus the
    instructor notebook itself as ``solution``."""
    folder = tmp_path_factory.mktemp("toy-learners")
    files = {}
    for kind in TOY_EXPECTED:
        nb = read_notebook(solution_path(toy_root, "01_toy")) if kind == "solution" else toy_notebooks[kind]
        files[kind] = folder / kind / "01_toy.ipynb"
        write_notebook(nb, files[kind])
    files["looping"] = folder / "looping" / "01_toy.ipynb"
    write_notebook(toy_notebooks["looping"], files["looping"])
    return files


@pytest.fixture(scope="session")
def toy_reports(toy_root, toy_learner_files) -> dict:
    """kind -> GradeReport for every toy notebook in :data:`TOY_EXPECTED` (one nbgrader run),
    plus ``_bytes``: each file's content before grading, to prove grading never writes it."""
    from utils.course.grading import grade_notebooks

    kinds = list(TOY_EXPECTED)
    before = {k: toy_learner_files[k].read_bytes() for k in kinds}
    reports = grade_notebooks([toy_learner_files[k] for k in kinds], root=toy_root, timeout=120)
    out = dict(zip(kinds, reports))
    out["_bytes"] = before
    return out
