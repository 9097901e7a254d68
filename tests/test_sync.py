"""``chapters/`` is exactly what nbgrader generates from ``solutions/``, and leaks nothing."""
from __future__ import annotations

import shutil
import subprocess
import sys

import pytest
from nbformat.v4 import new_output

from conftest import REPO, chapter_params
from utils.course.cli import main
from utils.course.notebooks import (compare_notebooks, find_leaks, marker_lines, read_notebook,
                             release_path, secret_lines,
                             solution_path, unstripped_problems, write_notebook)
from utils.course.nbgrader_course import course_env
from utils.course.sync import check_sync, compare_dirs, generate_editions
from utils.course.translations import catalog_path


# --------------------------------------------------------------------------- real chapters
@pytest.mark.parametrize("chapter", chapter_params())
def test_committed_chapter_equals_regenerated(chapter, generated_chapters):
    committed = REPO / "chapters" / chapter
    assert committed.is_dir(), (f"chapters/{chapter}/ is missing: run `python -m utils.course sync`"
                                " and commit it")
    diffs = compare_dirs(generated_chapters / chapter, committed, f"chapters/{chapter}")
    assert not diffs, ("chapters/ differs from what solutions/ generates (run `python -m "
                       "utils.course sync`):\n" + "\n".join(diffs))


@pytest.mark.parametrize("chapter", chapter_params())
def test_chapter_leaks_no_solution_or_hidden_test(chapter):
    sol = read_notebook(solution_path(REPO, chapter))
    rel_path = release_path(REPO, chapter)
    assert rel_path.exists(), f"{rel_path} is missing: run `python -m utils.course sync`"
    rel = read_notebook(rel_path)
    assert not marker_lines(rel), f"markers left in chapters/{chapter}: {marker_lines(rel)}"
    leaks = find_leaks(sol, rel)
    assert not leaks, f"solution / hidden-test lines found in chapters/{chapter}: {leaks}"


@pytest.mark.parametrize("chapter", chapter_params())
def test_chapter_has_exercises_with_hidden_tests(chapter):
    assert secret_lines(read_notebook(solution_path(REPO, chapter))), \
        f"solutions/{chapter} has no solution or hidden-test regions"


# --------------------------------------------------------------------------- the machinery
def test_toy_chapters_are_in_sync_and_leak_free(toy_root):
    assert check_sync(toy_root) == []
    for ch in ("01_toy", "02_other"):
        sol = read_notebook(solution_path(toy_root, ch))
        rel = read_notebook(release_path(toy_root, ch))
        assert find_leaks(sol, rel) == [] and marker_lines(rel) == []
        assert [c.id for c in rel.cells] == [c.id for c in sol.cells], "cell ids must survive"
        assert unstripped_problems(rel) == []


def test_leak_detector_finds_a_hidden_test_and_a_solution_line(toy_root):
    sol = read_notebook(solution_path(toy_root, "01_toy"))
    rel = read_notebook(release_path(toy_root, "01_toy"))
    rel.cells[-1].source += '\nassert square(-3) == 9, "square(-3) should be 9"'
    rel.cells[3].source += "\n    return a + b"
    leaks = find_leaks(sol, rel)
    assert any("square(-3)" in leak for leak in leaks)
    assert any("return a + b" in leak for leak in leaks)
    assert "assert add(1, 2) == 3" not in secret_lines(sol), "visible asserts are not secrets"


def test_repository_nbgrader_config_works_from_its_own_folder(toy_root, tmp_path):
    """An instructor runs nbgrader from the repository root: the config alone must find
    solutions/ and write chapters/ (what `course sync` produces)."""
    root = tmp_path / "course"
    shutil.copytree(toy_root / "solutions", root / "solutions")
    shutil.copy(REPO / "nbgrader_config.py", root / "nbgrader_config.py")
    env = course_env()
    proc = subprocess.run([sys.executable, "-m", "nbgrader", "generate_assignment", "01_toy",
                           "--no-db"], cwd=root, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert compare_notebooks(read_notebook(release_path(toy_root, "01_toy")),
                             read_notebook(release_path(root, "01_toy"))) == []
    assert not (root / "gradebook.db").exists()


def test_sync_check_reports_hand_edits_and_unstripped_sources(toy_root, tmp_path, capsys):
    root = tmp_path / "course"
    shutil.copytree(toy_root, root)
    rel = read_notebook(release_path(root, "01_toy"))
    rel.cells[0].source = "# edited by hand"
    write_notebook(rel, release_path(root, "01_toy"))
    sol = read_notebook(solution_path(root, "02_other"))
    sol.metadata["widgets"] = {"state": {}}
    sol.cells[2].outputs = [new_output("stream", name="stdout", text="hi\n")]
    write_notebook(sol, solution_path(root, "02_other"))

    assert main(["--root", str(root), "sync", "--check"]) == 1
    out = capsys.readouterr().out
    assert "chapters/01_toy/01_toy.ipynb: cell title: source differs" in out
    assert "solutions/02_other/02_other.ipynb: notebook metadata holds widget state" in out
    assert "solutions/02_other/02_other.ipynb: cell ex-mul-answer has outputs" in out
    assert "What to do" in out


def test_sync_strips_solutions_in_place_and_writes_out_dir(toy_root, tmp_path, capsys):
    root = tmp_path / "course"
    shutil.copytree(toy_root, root)
    path = solution_path(root, "01_toy")
    nb = read_notebook(path)
    nb.metadata["widgets"] = {"state": {}}
    nb.cells[2].outputs = [new_output("stream", name="stdout", text="FAST mode: True\n")]
    nb.cells[2].execution_count = 1
    write_notebook(nb, path)

    out = tmp_path / "out"
    assert main(["--root", str(root), "sync", "--out", str(out)]) == 0
    assert unstripped_problems(read_notebook(path)) == []
    assert [c.id for c in read_notebook(path).cells] == [c.id for c in nb.cells]
    generated = out / "01_toy" / "01_toy.ipynb"
    assert generated.exists() and (out / "02_other" / "02_other.ipynb").exists()
    assert compare_notebooks(read_notebook(release_path(root, "01_toy")), read_notebook(generated)) == []
    assert "stripped" in capsys.readouterr().out


# --------------------------------------------------------------------------- the Chinese edition
@pytest.mark.parametrize("chapter", chapter_params())
def test_committed_chinese_edition_equals_regenerated(chapter, generated_chapters, tmp_path):
    """chapters_zh/ is what sync builds from the English student version and the catalog."""
    written, problems = generate_editions(REPO, generated_chapters, [chapter], "zh", out=tmp_path)
    assert problems == [] and written == [chapter], "\n".join(problems)
    diffs = compare_dirs(tmp_path / chapter, REPO / "chapters_zh" / chapter, f"chapters_zh/{chapter}")
    assert not diffs, ("chapters_zh/ differs from what sync generates (run `python -m utils.course "
                       "sync`):\n" + "\n".join(diffs))


ONE_CHAPTER = "01_mapping"


@pytest.fixture
def one_chapter_course(tmp_path):
    """A copy of one real chapter (source, catalog, both committed editions): in sync to begin with."""
    root = tmp_path / "course"
    for rel in (f"solutions/{ONE_CHAPTER}", f"chapters/{ONE_CHAPTER}", f"chapters_zh/{ONE_CHAPTER}"):
        shutil.copytree(REPO / rel, root / rel)
    po = catalog_path(root, ONE_CHAPTER)
    po.parent.mkdir(parents=True)
    shutil.copy(catalog_path(REPO, ONE_CHAPTER), po)
    assert check_sync(root) == [], "the copied chapter should be in sync before it is broken"
    return root


def _break_entry(root, how: str) -> str:
    """Blank (``missing``) or flag fuzzy (``stale``) the catalog's entry of the second markdown
    cell of the copy; return its cell id."""
    import polib

    path = catalog_path(root, ONE_CHAPTER)
    po = polib.pofile(str(path), wrapwidth=0)
    entry = [e for e in po if not e.obsolete][1]
    if how == "missing":
        entry.msgstr = ""
    else:
        entry.flags.append("fuzzy")
    po.save(str(path))
    return entry.msgctxt


@pytest.mark.parametrize("how", ["missing", "stale"])
def test_check_sync_reports_a_missing_or_stale_translation(one_chapter_course, how):
    cid = _break_entry(one_chapter_course, how)
    diffs = check_sync(one_chapter_course)
    assert len(diffs) == 1 and diffs[0].startswith(f"chapters_zh/{ONE_CHAPTER}: not generated"), diffs
    assert f"1 {how} ['{cid}']" in diffs[0] and "What to do" in diffs[0], diffs[0]


def test_sync_cli_reports_a_missing_translation_without_a_traceback(one_chapter_course, capsys):
    root = one_chapter_course
    cid = _break_entry(root, "missing")
    assert main(["--root", str(root), "sync", "--check"]) == 1
    out = capsys.readouterr().out
    assert f"1 missing ['{cid}']" in out and "Traceback" not in out
    assert main(["--root", str(root), "sync"]) == 2          # a clear error, not a traceback
    err = capsys.readouterr().err
    assert "sync: error: the translated editions" in err and f"1 missing ['{cid}']" in err, err
    assert (root / "chapters_zh" / ONE_CHAPTER / f"{ONE_CHAPTER}.ipynb").exists(), \
        "a chapter whose translation is broken keeps its committed edition (sync --check flags it)"
    assert (root / "chapters" / ONE_CHAPTER / f"{ONE_CHAPTER}.ipynb").exists()
