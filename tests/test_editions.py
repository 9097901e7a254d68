"""The Chinese edition ``chapters_zh/`` is the English student edition with its prose translated
(issue 29, item 2): the same cells, ids, code, nbgrader metadata (grade ids, points, locks) and
nbval tags, so nbgrader grades a Chinese notebook exactly as the English one. Cheap: it reads the
committed notebooks; ``tests/test_sync.py`` proves they are what ``course sync`` generates, and
``tests/test_roundtrip.py`` grades both editions in one nbgrader batch."""
from __future__ import annotations

import re

import pytest

from conftest import REPO, chapter_params
from utils.course.notebooks import (find_leaks, marker_lines, read_notebook, release_path, secret_lines,
                                    solution_path)
from utils.course.sync import edition_dir, editions
from utils.course.translations import translated_notebook

NBGRADER_STUB = "YOUR ANSWER HERE"   # nbgrader's ClearSolutions.text_stub (a released written answer)

LETTERS = re.compile(r"[A-Za-z]")
CJK = re.compile(r"[\u4e00-\u9fff]")
LANGUAGE_LINE = re.compile(r'^LANGUAGE = "(\w+)"', re.M)


def _zh_path(chapter):
    return edition_dir(REPO / "chapters", "zh") / chapter / f"{chapter}.ipynb"


def test_the_course_has_a_chinese_edition():
    assert editions(REPO) == ["zh"], "solutions/locale/zh/ should declare the Chinese edition"
    assert edition_dir(REPO / "chapters", "zh") == REPO / "chapters_zh"


@pytest.mark.parametrize("chapter", chapter_params())
def test_chinese_student_notebook_shares_every_code_cell_and_grade(chapter):
    path = _zh_path(chapter)
    assert path.exists(), f"{path} is missing: run `python -m utils.course sync` and commit chapters_zh/"
    en, zh = read_notebook(release_path(REPO, chapter)), read_notebook(path)
    assert [(c.get("id"), c.cell_type) for c in zh.cells] == [(c.get("id"), c.cell_type) for c in en.cells], \
        f"{chapter}: the Chinese edition must have the English cells, ids and types, in order"
    assert zh.metadata["course"]["language"] == "zh"
    for e, z in zip(en.cells, zh.cells):
        where = f"{chapter} cell {e.get('id')}"
        assert z.metadata == e.metadata, f"{where}: metadata (nbgrader, tags) must be the English cell's"
        if e.cell_type == "code" and "parameters" in e.metadata.get("tags", []):
            assert LANGUAGE_LINE.findall(e.source) == ["en"] and LANGUAGE_LINE.findall(z.source) == ["zh"], where
            assert LANGUAGE_LINE.sub("", z.source) == LANGUAGE_LINE.sub("", e.source), \
                f"{where}: only the LANGUAGE knob may differ in the parameters cell"
        elif e.cell_type == "code":
            assert z.source == e.source, f"{where}: code cells are shared, not translated"
        elif e.metadata.get("nbgrader", {}).get("solution") and e.source == NBGRADER_STUB:
            assert z.source == NBGRADER_STUB, f"{where}: a written answer must be released as nbgrader's stub"
        elif LETTERS.search(e.source):
            assert z.source != e.source and CJK.search(z.source), f"{where}: prose cell not translated"


@pytest.mark.parametrize("chapter", chapter_params())
def test_chinese_student_notebook_leaks_no_model_answer(chapter):
    """Written answers are markdown: their Chinese model answers are in the catalog and must be
    cleared from the student edition as nbgrader clears the English ones."""
    zh = read_notebook(_zh_path(chapter))
    sol_zh = translated_notebook(read_notebook(solution_path(REPO, chapter)), REPO, chapter, "zh")
    assert secret_lines(sol_zh), f"{chapter}: the Chinese solution has no solution region to leak"
    assert marker_lines(zh) == [], f"{chapter}: solution markers left in chapters_zh/: {marker_lines(zh)}"
    leaks = find_leaks(sol_zh, zh)
    assert not leaks, f"{chapter}: Chinese model-answer lines in chapters_zh/: {leaks[:5]}"


# --------------------------------------------------------------------------- the machinery, on the toy course
TOY_ZH = {   # cell id -> Chinese (same numbers and solution markers; glossary terms glossed at first use)
    "01_toy": {"title": "# 玩具章节：x 映射（mapping）到 x + 1\n测试使用的一个小章节。",
               "written-why": "### BEGIN SOLUTION\n学习器（learner）把数据集映射为模型；元学习器（meta-learner）"
                              "把任务（task）映射为学习器。\n### END SOLUTION"},
    "02_other": {"title": "# 另一个玩具章节"},
}


@pytest.fixture
def toy_zh_root(toy_root, tmp_path):
    """A copy of the toy course with a translated catalog for both chapters."""
    import shutil

    import polib

    from utils.course.translations import catalog_path, extract_catalog

    root = tmp_path / "course"
    shutil.copytree(toy_root, root)
    for chapter, cells in TOY_ZH.items():
        extract_catalog(root, chapter, "zh")
        po = polib.pofile(str(catalog_path(root, chapter)), wrapwidth=0)
        for entry in po:
            entry.msgstr = cells[entry.msgctxt]
        po.save(str(catalog_path(root, chapter)))
    return root


def test_toy_sync_writes_the_chinese_edition_without_model_answers(toy_zh_root):
    from utils.course.sync import check_sync, sync

    assert check_sync(toy_zh_root) == [f"chapters_zh/{ch}/{ch}.ipynb: missing (sync would create it)"
                                       for ch in TOY_ZH]
    sync(toy_zh_root)
    assert check_sync(toy_zh_root) == []
    zh = {c.id: c.source for c in read_notebook(toy_zh_root / "chapters_zh" / "01_toy" / "01_toy.ipynb").cells}
    en = {c.id: c.source for c in read_notebook(release_path(toy_zh_root, "01_toy")).cells}
    assert zh["title"].endswith(TOY_ZH["01_toy"]["title"]) and '<a id="Toy-chapter:' in zh["title"]
    assert en["written-why"] == zh["written-why"] == NBGRADER_STUB, "the model answer must not be released"
    assert {k: v for k, v in zh.items() if k not in TOY_ZH["01_toy"]} == \
           {k: v for k, v in en.items() if k not in TOY_ZH["01_toy"]}


def test_toy_run_lang_zh_executes_the_chinese_solution(toy_zh_root, tmp_path):
    from utils.course.execute import edition_folders, run_chapter

    build = tmp_path / "build"
    run = run_chapter(toy_zh_root, "01_toy", build=build, lang="zh", timeout=120)
    assert run.ok, run.error
    executed, figures = edition_folders(build, "zh")
    assert executed == build / "executed-zh" and figures == build / "figures-zh"
    nb = read_notebook(executed / "01_toy" / "01_toy.ipynb")
    assert nb.metadata["course"]["language"] == "zh" and CJK.search(nb.cells[0].source)
    assert any("FAST mode:" in "".join(o.get("text", "")) for c in nb.cells if c.cell_type == "code"
               for o in c.get("outputs", [])), "the Chinese solution's code must have run"
    assert run.figures["toy_answer"] == 42 and (figures / "01_toy.json").exists()
    assert not (build / "figures" / "01_toy.json").exists(), "the English figures must stay separate"


def test_toy_run_lang_zh_without_a_catalog_fails_clearly(toy_root, tmp_path):
    from utils.course.execute import run_chapter

    run = run_chapter(toy_root, "01_toy", build=tmp_path / "build", lang="zh")
    assert not run.ok and "01_toy" in run.error and "translations extract" in run.error, run.error
