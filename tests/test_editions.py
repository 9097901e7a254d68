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
