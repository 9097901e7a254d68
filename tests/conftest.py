"""Shared fixtures for the notebook-toolchain tests.

Two kinds of course are tested:

* the real one: every chapter found in ``solutions/`` (parametrized; finding none fails the
  collection: a broken discovery must not turn the run green), with expensive steps (papermill
  run, nbgrader round trip, regenerated chapters) done once per test run and shared by every
  xdist worker (:func:`shared_once`: a cache folder common to the workers, a file lock, atomic
  writes);
* a toy course written by the tests into a temporary folder (two tiny chapters with an
  exercise, hidden tests and a written answer), so the machinery itself is exercised on a
  course small enough to reason about.

Every test file carries the markers :data:`FILE_MARKERS` gives it (``pytest -m engine``: the fast
unit tests of ``utils/``; see CONTRIBUTING.md, "Which tests to run when"); a test file missing
from the table fails the collection.
"""
from __future__ import annotations

import os
import pickle
import sys
from pathlib import Path

import nbformat
import pytest
from filelock import FileLock
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from utils.course.notebooks import (find_chapters, fill_answers, is_answer_cell, nbgrader_meta,  # noqa: E402
                             read_notebook, release_path, solution_path, tests_of_answer,
                             write_notebook)

#: Chapters of the real course, found once at collection time.
CHAPTERS = find_chapters(REPO)
NO_CHAPTERS = (f"chapter discovery found no chapter in {REPO / 'solutions'} (expected "
               "solutions/NN_name/NN_name.ipynb for each chapter); the discovery or the checkout is "
               "broken: check utils.course.notebooks.find_chapters and that solutions/ is present")

#: Test file -> its markers (registered in pyproject.toml). ONE table: a new test file must be
#: added here, or the collection fails (so no file can go unmarked and drop out of `-m engine`).
#: engine: fast unit tests of utils/ (no notebook execution, no nbgrader, no browser);
#: machinery: utils.course on the toy course or in subprocesses (sandbox, CLI, progress);
#: notebooks: executes or regenerates the real chapters (papermill, nbval, sync, book);
#: grading: nbgrader autograde of real or toy notebooks; browser: headless Chromium;
#: hub: a real JupyterHub (left out of the README's command, run on its own by .ci/run).
FILE_MARKERS = {
    **dict.fromkeys([
        "test_adam_head.py", "test_bench_maml.py", "test_chapter.py", "test_claims.py", "test_story.py", "test_checkpoints.py", "test_compress.py",
        "test_conventions.py", "test_data.py", "test_distill.py", "test_distributed.py", "test_facts.py",
        "test_families.py", "test_folded.py", "test_fuse.py", "test_glossary.py", "test_glossary_zh.py", "test_house_rules.py", "test_import_graph.py",
        "test_interview.py", "test_interview_zh.py", "test_language_zh.py", "test_layout.py", "test_mc_fairness.py",
        "test_meta.py", "test_meta_costs.py", "test_meta_state.py", "test_multitask.py",
        "test_omniglot.py", "test_results.py", "test_runtime.py", "test_shipped_cache.py", "test_sinusoid_lab.py",
        "test_stats_cache.py", "test_stats_intervals.py", "test_tables.py", "test_taught_in.py", "test_translations.py", "test_trained.py",
        "test_vocab_signatures.py",
    ], ("engine",)),
    **dict.fromkeys(["test_course_cli.py", "test_data_folder.py", "test_progress.py",
                     "test_run_artefacts.py", "test_sandbox.py", "test_recorded.py", "test_editions.py"],
                    ("machinery",)),
    **dict.fromkeys(["test_notebooks.py", "test_nbval.py", "test_sync.py"], ("notebooks",)),
    **dict.fromkeys(["test_attacks.py", "test_exchange.py", "test_grade.py", "test_integrity.py",
                     "test_roundtrip.py", "test_wrong_answers.py", "test_limits.py",
                     "test_bad_submissions.py"], ("grading",)),
    "test_book.py": ("notebooks", "browser"),
    "test_jupyterlab.py": ("browser",),
    "test_widgets_browser.py": ("browser",),
    "test_jupyterhub.py": ("hub",),          # also drives Chromium; -m browser leaves it out
    "test_hub_learners.py": ("hub",),        # two OS users (root only); no browser
}


def pytest_collection_modifyitems(config, items):
    """Mark every test from :data:`FILE_MARKERS`; a test file not in the table fails the run."""
    unknown = set()
    for item in items:
        name = item.path.name
        if name not in FILE_MARKERS:
            unknown.add(name)
            continue
        for marker in FILE_MARKERS[name]:
            item.add_marker(marker)
    if unknown:
        raise pytest.UsageError(
            f"test files without markers: {', '.join(sorted(unknown))}. Expected every test file in "
            f"FILE_MARKERS (tests/conftest.py); found these missing. What to do: add each to the "
            f"table with its markers (engine, machinery, notebooks, grading, browser, hub; see "
            f"CONTRIBUTING.md, 'Which tests to run when').")

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
    """Parameters for per-chapter tests: one per real chapter; finding none fails the collection."""
    if not CHAPTERS:
        raise pytest.UsageError(NO_CHAPTERS)
    return CHAPTERS


# --------------------------------------------------------------------------- shared across workers
def shared_dir(tmp_path_factory) -> Path:
    """A folder common to every xdist worker of this run (the workers' base temp's parent), or the
    session's base temp without xdist."""
    base = tmp_path_factory.getbasetemp()
    root = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    folder = root / "shared-once"
    folder.mkdir(exist_ok=True)
    return folder


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def shared_once(folder: Path, key: str, make, *, blocking: bool = True):
    """``make()`` computed once per test run for ``key``, whichever worker asks first.

    The result is pickled to ``folder/key.pickle`` (written atomically) under the lock
    ``folder/key.lock``; other workers wait on the lock and read it. With ``blocking=False``,
    returns ``None`` at once when another worker holds the lock (to compute something else first).
    """
    done = folder / f"{key}.pickle"
    lock = FileLock(str(folder / f"{key}.lock"))
    try:
        lock.acquire(timeout=-1 if blocking else 0)
    except TimeoutError:
        return None
    try:
        if not done.exists():
            _write_atomically(done, pickle.dumps(make()))
        return pickle.loads(done.read_bytes())
    finally:
        lock.release()


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
    """A per-chapter cache of results computed once per test run (shared by the xdist workers
    through :func:`shared_once`), kept in memory too once read."""

    def __init__(self, folder: Path, name: str, make):
        self.folder, self.name, self.make, self.done = folder, name, make, {}

    def __call__(self, chapter, *, blocking: bool = True):
        if chapter not in self.done:
            got = shared_once(self.folder, f"{self.name}-{chapter}", lambda: self.make(chapter),
                              blocking=blocking)
            if got is None:
                return None
            self.done[chapter] = got
        return self.done[chapter]

    def all(self, chapters) -> dict:
        """Every chapter's result: first those no other worker is computing, then the rest."""
        for ch in chapters:
            self(ch, blocking=False)
        return {ch: self(ch) for ch in chapters}


@pytest.fixture(scope="session")
def chapter_run(tmp_path_factory):
    """chapter -> :class:`utils.course.execute.ChapterRun` of its solution notebook in FAST mode
    (once per test run, whichever test file or worker asks first)."""
    from utils.course.execute import run_chapter

    folder = shared_dir(tmp_path_factory)
    build = folder / "build"
    return _Lazy(folder, "chapter-run",
                 lambda ch: run_chapter(REPO, ch, fast=True, timeout=600, build=build))


@pytest.fixture(scope="session")
def roundtrip(tmp_path_factory, generated_chapters):
    """chapter -> dict of grade reports from one nbgrader run in a temporary course:

    ``solution`` (the instructor notebook), ``untouched`` (the student version as nbgrader
    generates it, which test_sync proves equal to the committed chapters/) and ``one_wrong``
    (every answer filled in but the first), plus what one_wrong must lose; and the same three in
    the Chinese edition (``zh_solution``, ``zh_untouched``, ``zh_one_wrong``), graded in the same
    nbgrader run.
    """
    from utils.course.grading import grade_notebooks
    from utils.course.translations import translated_notebook

    shared = shared_dir(tmp_path_factory)

    def make(ch):
        folder = shared / f"roundtrip-{ch}"
        sol = read_notebook(solution_path(REPO, ch))
        rel = read_notebook(generated_chapters / ch / f"{ch}.ipynb")
        wrong, stub, lost = one_wrong(rel, sol)
        # the Chinese edition in the same nbgrader batch (one sandbox start per chapter)
        sol_zh, rel_zh = (translated_notebook(nb, REPO, ch, "zh") for nb in (sol, rel))
        wrong_zh = one_wrong(rel_zh, sol_zh)[0]
        kinds = ["solution", "untouched", "one_wrong", "zh_solution", "zh_untouched", "zh_one_wrong"]
        paths = [folder / kind / f"{ch}.ipynb" for kind in kinds]
        for nb, path in zip([sol, rel, wrong, sol_zh, rel_zh, wrong_zh], paths):
            write_notebook(nb, path)
        reports = grade_notebooks(paths, root=REPO, timeout=300)
        return {**dict(zip(kinds, reports)), "stub": stub, "lost": lost}

    return _Lazy(shared, "roundtrip", make)


@pytest.fixture(scope="session")
def generated_chapters(tmp_path_factory) -> Path:
    """Every real chapter's student version regenerated into a temporary folder (once per test
    run, shared by the xdist workers)."""
    from utils.course.sync import generate_chapters

    folder = shared_dir(tmp_path_factory)
    out = folder / "generated-chapters"

    def make():
        tmp = folder / f".generated-chapters.{os.getpid()}"
        generate_chapters(REPO, tmp, CHAPTERS)
        os.replace(tmp, out)           # atomic: a reader sees all chapters or none
        return str(out)

    return Path(shared_once(folder, "generated-chapters", make))


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
