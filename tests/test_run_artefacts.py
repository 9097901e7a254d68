"""``course run`` says what each chapter loaded from the cache or the shipped checkpoints:
utils.cache / utils.checkpoints append to the log named by COURSE_ARTEFACT_LOG, and
utils.course.execute summarises it per chapter."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import torch
from nbformat.v4 import new_code_cell

from conftest import REPO
from utils import cache, checkpoints
from utils.course.execute import read_artefact_log, summarise_artefacts
from utils.course.notebooks import read_notebook, solution_path, write_notebook


def test_nothing_is_logged_without_the_variable(tmp_path, monkeypatch):
    monkeypatch.delenv(cache.ARTEFACT_LOG_ENV, raising=False)
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path / "cache"))
    cache.cached_torch("thing", {"n": 1}, lambda: torch.zeros(2))
    assert not any(tmp_path.rglob("*.jsonl"))


def test_cache_build_then_hit_is_logged(tmp_path, monkeypatch):
    log = tmp_path / "run" / "artefacts.jsonl"
    log.parent.mkdir()
    monkeypatch.setenv(cache.ARTEFACT_LOG_ENV, str(log))
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path / "cache"))
    build = lambda: torch.arange(3)
    cache.cached_torch("thing", {"n": 1}, build)
    cache.cached_torch("thing", {"n": 1}, build)
    cache.cached_torch("thing", {"n": 1}, build)
    records = read_artefact_log(log)
    assert [r["status"] for r in records] == ["built", "cache hit", "cache hit"]
    assert records[0]["path"].startswith("thing-") and records[0]["seconds"] >= 0
    assert summarise_artefacts(records)[1] == "thing: cache hit (x2)"
    assert summarise_artefacts(records)[0].startswith("thing: built (")


def test_unreadable_cache_file_is_rebuilt_and_says_so(tmp_path, monkeypatch):
    log = tmp_path / "artefacts.jsonl"
    monkeypatch.setenv(cache.ARTEFACT_LOG_ENV, str(log))
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path / "cache"))
    build = lambda: torch.ones(1)          # one function: the cache key holds its source
    cache.cached_torch("thing", {"n": 2}, build)
    (path,) = (tmp_path / "cache").glob("thing-*.pt")
    path.write_bytes(b"not a torch file")
    assert torch.equal(cache.cached_torch("thing", {"n": 2}, build), torch.ones(1))
    assert read_artefact_log(log)[-1]["status"] == "rebuilt (unreadable cache file)"


def test_shipped_checkpoint_is_logged(tmp_path, monkeypatch):
    log = tmp_path / "artefacts.jsonl"
    monkeypatch.setenv(cache.ARTEFACT_LOG_ENV, str(log))
    monkeypatch.setenv("COURSE_CHECKPOINT_DIR", str(tmp_path / "ckpt"))
    checkpoints.save_checkpoint("toy-net", {"w": torch.ones(2)}, {"settings_hash": "x"})
    state, _ = checkpoints.load_checkpoint("toy-net")
    assert torch.equal(state["w"], torch.ones(2))
    (rec,) = read_artefact_log(log)
    assert rec["status"] == "shipped" and rec["artefact"].endswith("ckpt/toy-net")


def test_log_reader_skips_torn_lines_and_summary_keeps_first_use_order(tmp_path):
    log = tmp_path / "artefacts.jsonl"
    lines = [json.dumps({"artefact": "glyphs", "status": "cache hit"}), '{"artefact": "half',
             json.dumps({"artefact": "data/checkpoints/ch02-sine-maml-seed0", "status": "shipped"}),
             json.dumps({"artefact": "model", "status": "built", "seconds": 1.25}),
             json.dumps({"artefact": "model", "status": "built", "seconds": 2.0}), "[1, 2]"]
    log.write_text("\n".join(lines) + "\n")
    assert summarise_artefacts(read_artefact_log(log)) == [
        "glyphs: cache hit", "data/checkpoints/ch02-sine-maml-seed0: shipped", "model: built (3.2 s) (x2)"]
    assert read_artefact_log(tmp_path / "missing.jsonl") == []


def test_course_run_prints_what_a_chapter_loaded(toy_root, tmp_path):
    root = tmp_path / "course"
    shutil.copytree(toy_root, root)
    path = solution_path(root, "01_toy")
    nb = read_notebook(path)
    nb.cells.append(new_code_cell("import torch\nfrom utils.cache import cached_torch\n"
                                  "for _ in range(2):\n"
                                  "    cached_torch('toy-table', {'rows': 3}, lambda: torch.eye(3))",
                                  id="toy-cache"))
    write_notebook(nb, path)
    env = dict(os.environ, COURSE_FAST="1", OMP_NUM_THREADS="1", COURSE_CACHE_DIR=str(tmp_path / "cache"))
    env.pop(cache.ARTEFACT_LOG_ENV, None)
    proc = subprocess.run([sys.executable, "-m", "utils.course", "--root", str(root), "run", "--only", "01",
                           "--build", str(tmp_path / "build")], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "toy-table: built (" in out and "toy-table: cache hit" in out, out
    assert "Total:" in out
    assert (tmp_path / "build" / "executed" / "01_toy" / "artefacts.jsonl").exists()
