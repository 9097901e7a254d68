"""The command line: help, clear errors, ``list``, ``run`` and ``bench`` dispatch."""
from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import types

import pytest
from nbformat.v4 import new_code_cell

from conftest import REPO
from utils.course.cli import COMMANDS, main
from utils.course.notebooks import read_notebook, solution_path, write_notebook


def _course(*args, timeout=900):
    env = dict(os.environ, COURSE_FAST="1", OMP_NUM_THREADS="2")
    return subprocess.run([sys.executable, "-m", "utils.course", *map(str, args)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_help_lists_every_command():
    proc = _course("--help")
    assert proc.returncode == 0
    for command in COMMANDS:
        assert f"    {command} " in proc.stdout, f"{command} missing from --help"


def test_unknown_command_is_a_clear_error():
    proc = _course("frobnicate")
    assert proc.returncode == 2
    assert f"expected one of {', '.join(COMMANDS)}, found 'frobnicate'" in proc.stderr
    assert "What to do" in proc.stderr


def test_missing_root_and_missing_notebook_are_clear_errors(tmp_path):
    proc = _course("--root", tmp_path / "nowhere", "run")
    assert proc.returncode == 2 and "no folder" in proc.stderr and "What to do" in proc.stderr
    proc = _course("grade", tmp_path / "nope.ipynb")
    assert proc.returncode == 2 and "no such file" in proc.stderr and "What to do" in proc.stderr


def test_unknown_chapter_is_a_clear_error(toy_root, capsys):
    assert main(["--root", str(toy_root), "run", "--only", "99"]) == 2
    err = capsys.readouterr().err
    assert "chapter '99'" in err and "01_toy, 02_other" in err


def test_no_chapters_yet(tmp_path, capsys):
    for command in (["run"], ["list"], ["sync", "--check"]):
        assert main(["--root", str(tmp_path), *command]) == 0
        assert "No chapters yet" in capsys.readouterr().out


def test_list(toy_root, capsys):
    assert main(["--root", str(toy_root), "list"]) == 0
    out = capsys.readouterr().out
    assert "01_toy" in out and "02_other" in out


def test_run_prints_table_with_figures(toy_root, tmp_path):
    proc = _course("--root", toy_root, "run", "--only", "01", "--build", tmp_path / "build")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    row = next(ln for ln in proc.stdout.splitlines() if ln.startswith("01_toy "))
    assert row.split()[1] == "ok" and "toy_answer=42" in row and "fast=True" in row
    assert (tmp_path / "build" / "executed" / "01_toy" / "01_toy.ipynb").exists()
    assert (tmp_path / "build" / "figures" / "01_toy.json").exists()


def test_run_reports_a_failing_chapter(toy_root, tmp_path):
    root = tmp_path / "course"
    shutil.copytree(toy_root, root)
    path = solution_path(root, "02_other")
    nb = read_notebook(path)
    nb.cells.append(new_code_cell("raise ValueError('boom: the figure is off')", id="boom"))
    write_notebook(nb, path)
    proc = _course("--root", root, "run", "--only", "02_other")
    assert proc.returncode == 1
    row = next(ln for ln in proc.stdout.splitlines() if ln.startswith("02_other "))
    assert "FAILED: ValueError: boom: the figure is off" in row


def test_bench_dispatches_to_utils_bench(monkeypatch, tmp_path):
    seen = []
    fake = types.SimpleNamespace(main=lambda argv: seen.append(argv) or 0)
    monkeypatch.setitem(sys.modules, "utils.course.bench", fake)
    assert main(["bench", "sinusoid", "--steps", "3"]) == 0
    assert main(["--root", str(tmp_path), "bench", "--help"]) == 0
    assert seen == [["sinusoid", "--steps", "3"], ["--help"]]


def test_bench_without_module_is_a_clear_error(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "utils.course.bench", None)
    assert main(["bench", "anything"]) == 2
    err = capsys.readouterr().err
    assert "utils/course/bench.py" in err and "What to do" in err


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_each_command_has_help(command):
    if command == "bench" and importlib.util.find_spec("utils.course.bench") is None:
        pytest.skip("utils/course/bench.py not written yet (bench passes --help on to it)")
    proc = _course(command, "--help")
    assert proc.returncode == 0 and "usage:" in proc.stdout, proc.stderr
