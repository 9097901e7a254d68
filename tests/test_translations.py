"""The Chinese edition's catalogs (utils.course.translations): stale, missing and mismatched
translations are found; what is translated today is consistent with its English cell."""
from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
import polib

from utils.course.notebooks import find_chapters
from utils.course.translations import catalog_path, check_catalog, extract_catalog

REPO = Path(__file__).resolve().parents[1]


def toy(tmp_path, cells) -> Path:
    root = tmp_path / "course"
    folder = root / "solutions" / "01_mapping"
    folder.mkdir(parents=True)
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(src, id=cid) for cid, src in cells]
    nb.cells.append(nbformat.v4.new_code_cell("x = 1", id="code"))
    nbformat.write(nb, folder / "01_mapping.ipynb")
    return root


def fill(root, translations: dict):
    path = catalog_path(root, "01_mapping")
    po = polib.pofile(str(path), wrapwidth=0)
    for e in po:
        if e.msgctxt in translations:
            e.msgstr = translations[e.msgctxt]
            if "fuzzy" in e.flags:
                e.flags.remove("fuzzy")
    po.save(str(path))


def test_extract_then_translate_then_change_the_english(tmp_path):
    root = toy(tmp_path, [("a", "# Title"), ("b", "ProtoNet is 3.5 points ahead [✓ ahead] with `k = 5`.")])
    assert extract_catalog(root, "01_mapping") == {"added": 2}
    report = check_catalog(root, "01_mapping")
    assert report.missing == ["a", "b"] and not report.ok
    fill(root, {"a": "# 标题", "b": "ProtoNet 领先 3.5 个百分点 [✓ ahead]，其中 `k = 5`。"})
    assert check_catalog(root, "01_mapping").ok
    nb = nbformat.read(root / "solutions/01_mapping/01_mapping.ipynb", as_version=4)
    nb.cells[1].source = "ProtoNet is 4.0 points ahead [✓ ahead] with `k = 5`."
    nbformat.write(nb, root / "solutions/01_mapping/01_mapping.ipynb")
    assert extract_catalog(root, "01_mapping") == {"current": 1, "fuzzy": 1}
    report = check_catalog(root, "01_mapping")
    assert report.stale == ["b"]
    entry = [e for e in polib.pofile(str(catalog_path(root, "01_mapping"))) if e.msgctxt == "b"][0]
    assert "fuzzy" in entry.flags and "3.5" in entry.previous_msgid   # the translator sees what changed


def test_a_translation_must_keep_numbers_code_math_and_tags(tmp_path):
    root = toy(tmp_path, [("b", "MAML scores 48.7% with $\\alpha = 0.4$ and `steps=1` [✓ maml-score].")])
    extract_catalog(root, "01_mapping")
    fill(root, {"b": "MAML 的准确率为 47.8%，$\\alpha = 0.4$，`steps=2`。"})
    kinds = " ".join(what for _, what in check_catalog(root, "01_mapping").mismatched)
    assert "numbers" in kinds and "inline code" in kinds and "claim tags" in kinds and "math" not in kinds


def test_a_deleted_cell_becomes_obsolete(tmp_path):
    root = toy(tmp_path, [("a", "# Title"), ("b", "Text.")])
    extract_catalog(root, "01_mapping")
    nb = nbformat.read(root / "solutions/01_mapping/01_mapping.ipynb", as_version=4)
    del nb.cells[1]
    nbformat.write(nb, root / "solutions/01_mapping/01_mapping.ipynb")
    assert extract_catalog(root, "01_mapping")["obsolete"] == 1


def test_what_is_translated_today_matches_its_english_cell():
    """Every current translation keeps its cell's numbers, code, math and claim tags, and glosses
    each glossary concept at its first use in the chapter (the catalogs may be incomplete)."""
    problems = []
    for chapter in find_chapters(REPO):
        if catalog_path(REPO, chapter).exists():
            report = check_catalog(REPO, chapter)
            problems += [f"{chapter} [{cid}] {what}" for cid, what in report.mismatched]
    assert not problems, "\n".join(problems[:40])
