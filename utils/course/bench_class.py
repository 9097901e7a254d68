"""``python -m utils.course bench class``: a class of N submissions of one chapter, autograded.

Generates N submissions of ``--chapter`` in a throw-away nbgrader course (a mix, in turn:
*correct* = every answer from ``solutions/``; *wrong* = correct except one answer from the
chapter's catalogue of wrong answers, ``tests/wrong_answers/<chapter>.py``; *empty* = the
untouched student version; *hostile* = an answer that ends the kernel, or one that tries to
write outside its scratch folder, read the gradebook and copy the reference answer), then grades
them with ``python -m utils.course autograde`` (sandboxed, the instructor's command).

``--jobs J``: one course folder's gradebook is written by one ``course autograde`` at a time
(each submission replaces ``gradebook.db`` in one atomic rename), so parallel grading splits the
class into J course folders (shards) graded by J concurrent processes.

Prints wall time, time per submission, the peak resident memory of the largest process the
grading started (``resource.getrusage(RUSAGE_CHILDREN).ru_maxrss``: a kernel, usually), and checks
that the N scores in the gradebooks equal the scores recomputed from the executed notebooks
(:func:`utils.course.grading_scores.scores_from_notebook` with the integrity rule). A benchmark:
figures printed, not asserted (the gradebook check is reported and sets the exit code).
"""
from __future__ import annotations

import argparse
import importlib.util
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ..errors import course_error
from .notebooks import PROJECT_ROOT, cell_by_grade_id, fill_answers, is_answer_cell, nbgrader_meta

__all__ = ["KINDS", "CANARY_TEXT", "add_arguments", "escape_answer", "wrong_answers",
           "class_submissions", "recomputed_scores", "bench_class"]

#: the mix of a generated class, in turn
KINDS = ("correct", "wrong", "empty", "hostile")
CANARY_TEXT = "the instructor's file\n"

_ESCAPE = '''import json
for _try in (lambda: open({canary!r}, "w").write("overwritten by a submission"),
             lambda: open({gradebook!r}, "rb").read()):
    try:
        _try()
    except OSError:
        pass
try:  # the reference answer, copied from the instructor's solutions
    _cells = json.load(open({solution!r}))["cells"]
    exec("".join(next(c["source"] for c in _cells
                      if c["metadata"].get("nbgrader", {{}}).get("grade_id") == {gid!r})))
except OSError:
    raise NotImplementedError("nothing to copy from here")
'''


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--n", type=int, default=60, help="submissions in the class")
    p.add_argument("--chapter", default="04_distillation", help="the chapter handed in")
    p.add_argument("--jobs", type=int, default=1, help="concurrent course autograde processes (shards)")
    p.add_argument("--timeout", type=int, default=120, help="per-cell time limit, seconds")
    p.add_argument("--keep", default=None, metavar="DIR", help="build the courses in DIR and keep them")


def escape_answer(course: Path, chapter: str, grade_id: str, canary: Path) -> str:
    """A hostile answer for ``grade_id``: it tries to overwrite ``canary`` (a file outside its
    scratch folder), read ``course``'s gradebook, and copy the reference answer out of the
    instructor's solution notebook; where all that fails it raises (an unanswered exercise)."""
    return _ESCAPE.format(canary=str(canary), gradebook=str(course / "gradebook.db"), gid=grade_id,
                          solution=str(course / "solutions" / chapter / f"{chapter}.ipynb"))


def wrong_answers(chapter: str, root: Path = PROJECT_ROOT) -> list[tuple[str, str]]:
    """(grade_id, answer source) of the chapter's catalogue of wrong answers (empty if none)."""
    path = root / "tests" / "wrong_answers" / f"{chapter}.py"
    if not path.is_file():
        return []
    sys.path.insert(0, str(path.parent))  # catalogues may import their folder's helpers
    try:
        spec = importlib.util.spec_from_file_location(f"_wrong_{chapter}", path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
    finally:
        sys.path.remove(str(path.parent))
    return [(gid, src) for gid, _, src, *_ in getattr(mod, "WRONG_ANSWERS", [])]


def _with_answer(nb, gid: str, source: str):
    cell_by_grade_id(nb)[gid].source = source
    return nb


def class_submissions(n: int, release, solution, course: Path, chapter: str, canary: Path,
                      wrong: list[tuple[str, str]]) -> list[tuple[str, str, object]]:
    """(student id, kind, notebook) for ``n`` learners, kinds in turn from :data:`KINDS`."""
    first = next(nbgrader_meta(c)["grade_id"] for c in release.cells if is_answer_cell(c))
    escape = escape_answer(course, chapter, first, canary)
    out = []
    for i in range(n):
        kind, turn = KINDS[i % len(KINDS)], i // len(KINDS)
        correct = fill_answers(release, solution)
        if kind == "correct":
            nb = correct
        elif kind == "wrong" and wrong:
            nb = _with_answer(correct, *wrong[turn % len(wrong)])
        elif kind == "empty" or kind == "wrong":  # no catalogue: the stubs stand for wrong answers
            nb = release
        else:
            nb = _with_answer(correct, first, "import os\nos._exit(0)" if turn % 2 else escape)
        out.append((f"learner{i + 1:03d}-{kind}", kind, nb))
    return out


def recomputed_scores(course: Path, chapter: str, source) -> dict[str, float]:
    """student -> autograded points recomputed from the executed notebooks in ``autograded/``
    (the integrity rule applied: a failed ``integrity-check`` scores the chapter 0)."""
    from .grading_scores import graded_cells, integrity_failure, scores_from_notebook
    from .notebooks import read_notebook

    cells, out = graded_cells(source), {}
    for path in sorted((course / "autograded").glob(f"*/{chapter}/{chapter}.ipynb")):
        graded = read_notebook(path)
        mine = scores_from_notebook(graded, cells)
        broken = integrity_failure(graded, cells)
        out[path.parts[-3]] = 0.0 if broken else sum(s for s, _ in mine.values() if s is not None)
    return out


def _gradebook_scores(course: Path, chapter: str) -> dict[str, float]:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        return {s.student.id: float(sum(g.auto_score for nb in s.notebooks for g in nb.grades
                                        if g.auto_score is not None))
                for s in gb.assignment_submissions(chapter)}


def _grade(course: Path, chapter: str, timeout: int) -> subprocess.CompletedProcess:
    from .nbgrader_course import course_env

    return subprocess.run([sys.executable, "-m", "utils.course", "autograde", chapter,
                           "--course-dir", str(course), "--timeout", str(timeout)],
                          cwd=PROJECT_ROOT, env=course_env(), capture_output=True, text=True)


def bench_class(args) -> dict:
    """A class of N generated submissions of one chapter, autograded; wall time, memory, check."""
    from .notebooks import find_chapters

    chapter, n, jobs = args.chapter, int(args.n), max(1, int(args.jobs))
    if chapter not in find_chapters(PROJECT_ROOT):
        raise course_error("--chapter", "a chapter of this checkout", repr(chapter),
                           "pick one of: " + ", ".join(find_chapters(PROJECT_ROOT)))
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="course-bench-class-"))
    try:
        return _run(args, chapter, n, jobs, work)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def _run(args, chapter: str, n: int, jobs: int, work: Path) -> dict:
    from .nbgrader_course import TempCourse
    from .notebooks import read_notebook, release_path, solution_path

    print(f"\n== class of {n}: {chapter}, {jobs} job(s), courses in {work} ==")
    release = read_notebook(release_path(PROJECT_ROOT, chapter))
    solution = read_notebook(solution_path(PROJECT_ROOT, chapter))
    canary = work / "outside-scratch.txt"
    work.mkdir(parents=True, exist_ok=True)
    canary.write_text(CANARY_TEXT)
    t0 = time.perf_counter()
    shards, kinds = [], {}
    for j in range(jobs):
        tc = TempCourse(PROJECT_ROOT, timeout=args.timeout, workdir=work / f"course-{j + 1}")
        tc.add_chapter(chapter)
        tc.generate(db=True)
        shards.append(tc)
    subs = class_submissions(n, release, solution, shards[0].path, chapter, canary,
                             wrong_answers(chapter))
    for i, (student, kind, nb) in enumerate(subs):
        shards[i % jobs].submit(student, chapter, nb)
        kinds[student] = kind
    t_setup = time.perf_counter() - t0
    t1 = time.perf_counter()
    with ThreadPoolExecutor(jobs) as pool:
        procs = list(pool.map(lambda tc: _grade(tc.path, chapter, args.timeout), shards))
    wall = time.perf_counter() - t1
    peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    book, again = {}, {}
    for tc in shards:
        book.update(_gradebook_scores(tc.path, chapter))
        again.update(recomputed_scores(tc.path, chapter, solution))
    differ = sorted(s for s in kinds if book.get(s) is None or again.get(s) is None
                    or abs(book[s] - again[s]) > 1e-9)
    failed = [p.returncode for p in procs if p.returncode not in (0, 1)]
    by_kind = {k: sorted({book.get(s) for s, kk in kinds.items() if kk == k}, key=str) for k in KINDS}
    print(f"setup (courses, {n} submissions): {t_setup:.0f} s")
    print(f"autograde wall time: {wall:.0f} s for {n} submissions = {wall / max(n, 1):.1f} s per "
          f"submission ({jobs} job(s); {wall * jobs / max(n, 1):.1f} s of one process each)")
    print(f"peak memory of the largest grading process: {peak_mib:.0f} MiB")
    for k in KINDS:
        print(f"  {k:<8} {sum(1 for v in kinds.values() if v == k):>3} submissions, scores {by_kind[k]}")
    print(f"file outside the scratch folders untouched: {canary.read_text() == CANARY_TEXT}")
    ok = not differ and not failed and len(book) == n
    print(f"gradebook check: {len(book)}/{n} scores in the gradebook(s), "
          f"{n - len(differ)} equal to the scores recomputed from the executed notebooks: "
          + ("PASS" if ok else f"FAIL (differ: {differ[:5]}, autograde exit codes {failed})"))
    if failed:
        print("\n".join(p.stdout[-2000:] + p.stderr[-2000:] for p in procs if p.returncode not in (0, 1)))
    return dict(n=n, jobs=jobs, wall_s=wall, per_submission_s=wall / max(n, 1), peak_mib=peak_mib,
                check=ok, scores=by_kind, setup_s=t_setup)
