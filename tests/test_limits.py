"""Bounded resources per graded submission (utils.course.sandbox_limits): memory, processes, file
size, scratch space, CPU time per notebook and stored output.

Bombs go into the answer cells of the toy chapter (conftest: add 2 points, q1 1, square 3),
graded together in ONE nbgrader run under tiny limits, with an honest notebook graded after
them: each bomb loses the exercise whose cell hit the bound (the CPU bound is per notebook: the
cells after it lose too), the honest notebook gets every point, nothing the bombs started is
left running, and the graded notebook keeps a marker instead of a 20 MB output.
"""
from __future__ import annotations

import os
import subprocess
import time

import pytest

from conftest import set_answer
from utils.course.notebooks import fill_answers, read_notebook, release_path, solution_path, write_notebook
from utils.course.sandbox import sandbox_status
from utils.course.sandbox_cgroup import make_cgroup
from utils.course.sandbox_limits import TRUNCATED_MARK, OutputBudget, default_limits, format_size, parse_size

needs_sandbox = pytest.mark.skipif(not sandbox_status()[0], reason=f"no sandbox here: {sandbox_status()[1]}")
LIMITS = default_limits().with_(memory="1G", processes=64, file_size="8M", scratch="32M", cpu=12,
                                output="64K")


def _pids_bounded() -> bool:
    """Root is exempt from RLIMIT_NPROC: there the process bound needs a pids cgroup."""
    if os.geteuid() != 0:
        return True
    cg = make_cgroup(LIMITS)
    try:
        return "pids" in cg.controllers
    finally:
        cg.remove()


MARK = "course-limits-bomb-4d1e"
MEMORY = "x = bytearray(4 << 30)  # 4 GiB at once\ndef add(a, b):\n    return a + b"
OUTPUT = "print('y' * 20_000_000)\nANSWER_Q1 = 'b'"
PROCESSES = (f"import os, sys\nfor _ in range(10_000):\n    if os.fork() == 0:\n"
             f"        os.execv(sys.executable, [sys.executable, '-c', 'import time; time.sleep(120)', {MARK!r}])\n"
             "def square(x):\n    return x ** 2")
FILE_SIZE = "with open('big.bin', 'wb') as f:\n    f.write(b'0' * (64 << 20))\ndef add(a, b):\n    return a + b"
SCRATCH = ("import os\nfor i in range(100):\n    with open(f'/tmp/part{i}.bin', 'wb') as f:\n"
           "        f.write(b'0' * (4 << 20))\ndef square(x):\n    return x ** 2")
CPU = "import signal\nsignal.signal(signal.SIGXCPU, signal.SIG_IGN)\nwhile True:\n    pass\nANSWER_Q1 = 'b'"

#: notebook -> ({grade id: answer source}, expected points)
BOMBS = {
    "memory_output_processes": ({"ex-add": MEMORY, "ex-q1": OUTPUT, "ex-square": PROCESSES},
                                {"test-add": 0, "test-q1": 1, "test-square": 0}),
    "file_size_scratch": ({"ex-add": FILE_SIZE, "ex-square": SCRATCH},
                          {"test-add": 0, "test-q1": 1, "test-square": 0}),
    "cpu": ({"ex-q1": CPU}, {"test-add": 2, "test-q1": 0, "test-square": 0}),
    "honest": ({}, {"test-add": 2, "test-q1": 1, "test-square": 3}),
}


@pytest.fixture(scope="module")
def bombed(toy_root, tmp_path_factory):
    from utils.course.grading import grade_notebooks

    sol, rel = read_notebook(solution_path(toy_root, "01_toy")), read_notebook(release_path(toy_root, "01_toy"))
    folder = tmp_path_factory.mktemp("bombs")
    paths = []
    for kind, (answers, _) in BOMBS.items():
        nb = fill_answers(rel, sol)
        for gid, source in answers.items():
            set_answer(nb, gid, source)
        paths.append(folder / kind / "01_toy.ipynb")
        write_notebook(nb, paths[-1])
    # the per-cell wall limit sits far above the CPU bound (12 s): on a machine whose cores are shared
    # the CPU bomb accrues its CPU seconds slower than wall seconds, and must still meet the CPU bound first
    return dict(zip(BOMBS, grade_notebooks(paths, root=toy_root, timeout=150, limits=LIMITS)))


@needs_sandbox
@pytest.mark.parametrize("kind", list(BOMBS))
def test_a_bomb_loses_its_exercise_and_the_next_submission_is_graded(kind, bombed):
    if kind == "memory_output_processes" and not _pids_bounded():
        pytest.skip("root without a writable pids cgroup: the process bound cannot hold here")
    report = bombed[kind]
    got = {e.grade_id: e.points for e in report.autograded}
    assert got == BOMBS[kind][1], report.format()
    assert report.sandboxed is True


@needs_sandbox
def test_the_cpu_bound_is_named_and_stops_the_notebook(bombed):
    report = bombed["cpu"]
    assert any("CPU time limit of 12 s" in n and "were not run" in n for n in report.notes), report.notes


@needs_sandbox
def test_nothing_a_bomb_started_is_left_running(bombed):
    time.sleep(1)
    left = subprocess.run(["pgrep", "-f", MARK], capture_output=True, text=True).stdout.strip()
    assert left == "", f"processes started by a bomb survived grading: {left}"
    def stale(name):   # course-sandbox-PID-N: ours, or a grader that has ended (other workers may be grading now)
        pid = int(name.split("-")[2])
        return pid == os.getpid() or not os.path.exists(f"/proc/{pid}")
    leftover = [p for p in ("/sys/fs/cgroup/pids", "/sys/fs/cgroup/memory")
                if os.path.isdir(p) and any(n.startswith("course-sandbox-") and stale(n) for n in os.listdir(p))]
    assert not leftover, leftover


@needs_sandbox
def test_a_cell_that_prints_megabytes_is_stored_truncated_with_a_marker():
    from nbformat.v4 import new_code_cell, new_notebook

    from utils.course.sandbox import execute_notebook

    nb = new_notebook(cells=[new_code_cell("print('y' * 20_000_000)", id="one"),
                             new_code_cell("for i in range(20_000):\n    print(i, 'z' * 50)", id="many"),
                             new_code_cell("print('fine')", id="after")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    ex = execute_notebook(nb, timeout=60, sandbox=True, limits=LIMITS)
    mark = TRUNCATED_MARK.format(limit=format_size(LIMITS.output))
    for cell in ex.notebook.cells[:2]:
        text = "".join(o.get("text", "") for o in cell.outputs)
        assert len(text) < LIMITS.output + 1000 and text.strip().endswith(mark), (cell.id, text[-300:])
    assert ex.notebook.cells[2].outputs[0]["text"] == "fine\n"


def test_output_budget_keeps_grades_and_marks_the_cut():
    """Unit: what the client keeps of a cell that prints too much (no kernel needed)."""
    from nbformat import from_dict
    from nbgrader.utils import determine_grade

    def cell(outputs):
        return from_dict({"cell_type": "code", "source": "", "execution_count": 1, "id": "t",
                          "metadata": {"nbgrader": {"grade": True, "solution": False, "points": 2,
                                                    "grade_id": "t", "locked": True, "schema_version": 3}},
                          "outputs": outputs})

    big = {"output_type": "stream", "name": "stdout", "text": "z" * 50_000}
    err = {"output_type": "error", "ename": "AssertionError", "evalue": "w" * 50_000, "traceback": ["t" * 9000] * 50}
    warn = {"output_type": "stream", "name": "stderr", "text": "careful\n" * 10_000}
    for outputs, points in (([big, big, big], 2), ([big, big, err], 0), ([big, big, warn], 0),
                            ([big, big, {"output_type": "execute_result", "execution_count": 1, "metadata": {},
                                         "data": {"text/plain": "0.5"}}], 0.5)):
        kept = OutputBudget(60_000).cap([from_dict(o) for o in outputs])
        assert sum(len(str(o)) for o in kept) < 80_000
        assert determine_grade(cell(kept))[0] == points, kept
        if points == 2:
            assert kept[-1]["text"].strip() == TRUNCATED_MARK.format(limit=format_size(60_000))


def test_sizes_parse_and_bad_limits_say_what_to_do():
    from utils.errors import CourseError

    assert parse_size("512M") == 512 << 20 and parse_size("1.5G") == 3 << 29 and parse_size(4096) == 4096
    assert default_limits().memory >= 2 << 30
    with pytest.raises(CourseError, match="What to do"):
        parse_size("lots")
    with pytest.raises(CourseError, match="positive"):
        default_limits().with_(processes=0)
