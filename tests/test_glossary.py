"""The bilingual glossary: shipped data, validation errors, tables and look-ups."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from utils.errors import CourseError
from utils.chapters import heading_anchors
from utils.course.notebooks import read_notebook
from utils.glossary import (CHAPTERS, GLOSSARY_PATH, GlossaryEntry, GlossaryTable, glossary_table,
                            load_glossary, lookup, validate_entries)

REPO = Path(__file__).resolve().parents[1]

GOOD = {"term": "support set", "chinese": "支持集", "definition": "Examples to adapt on.",
        "chapter": "01_mapping#Episodes"}


def entry(**changes) -> dict:
    e = dict(GOOD)
    e.update(changes)
    return {k: v for k, v in e.items() if v is not None}


def write(tmp_path, data, text: str | None = None) -> Path:
    path = tmp_path / "glossary.json"
    path.write_text(text if text is not None else json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


# --------------------------------------------------------------------------- shipped data
def test_shipped_glossary_loads_and_is_large_enough():
    entries = load_glossary()
    assert len(entries) >= 40
    assert all(isinstance(e, GlossaryEntry) for e in entries)
    assert {e.chapter_name for e in entries} >= set(CHAPTERS[:5]), "every content chapter has terms"


@pytest.mark.parametrize("term, chinese", [
    ("meta-learning", "元学习"), ("support set", "支持集"), ("query set", "查询集"),
    ("inner loop", "内循环"), ("outer loop", "外循环"), ("base learner", "基学习器"),
    ("meta-learner", "元学习器"), ("prototypical network", "原型网络"), ("transfer learning", "迁移学习"),
    ("fine-tuning", "微调"), ("multi-task learning", "多任务学习"), ("knowledge distillation", "知识蒸馏"),
    ("temperature", "温度"), ("soft targets", "软目标"), ("dark knowledge", "暗知识"),
    ("model compression", "模型压缩"), ("pruning", "剪枝"), ("quantization", "量化"),
    ("low-rank factorization", "低秩分解"), ("lottery ticket hypothesis", "彩票假设"),
    ("model fusion", "模型融合"), ("ensemble", "集成"), ("model soup", "模型汤"),
    ("mixture of experts", "混合专家"), ("gating network", "门控网络"), ("load balancing", "负载均衡"),
    ("confidence interval", "置信区间"), ("sample efficiency", "样本效率"),
    ("in-context learning", "上下文学习"),
])
def test_core_terms_present_with_their_chinese(term, chinese):
    assert chinese in lookup(term).chinese


@pytest.mark.parametrize("term", ["episode", "N-way K-shot", "task distribution", "MAML",
                                  "first-order MAML", "ANIL", "Meta-SGD", "Reptile",
                                  "weight averaging"])
def test_algorithm_and_setting_terms_present(term):
    assert lookup(term).definition


def test_terms_and_aliases_are_unique():
    names = [n.casefold() for e in load_glossary() for n in (e.term, *e.aliases)]
    assert len(names) == len(set(names))


def test_package_data_includes_the_json():
    assert GLOSSARY_PATH.parent == REPO / "utils" and GLOSSARY_PATH.suffix == ".json"
    assert '"*.json"' in (REPO / "pyproject.toml").read_text()


def test_section_anchors_name_real_headings():
    """An entry's ``#Section-title`` must be a heading of that chapter (when the chapter exists)."""
    checked = 0
    for e in load_glossary():
        if "#" not in e.chapter:
            continue
        nb_path = REPO / "solutions" / e.chapter_name / f"{e.chapter_name}.ipynb"
        if not nb_path.exists():
            continue
        anchor = e.chapter.split("#", 1)[1]
        assert anchor in heading_anchors(read_notebook(nb_path)), f"{e.term!r}: no heading {anchor!r} in {nb_path.name}"
        checked += 1
    if not checked:
        pytest.skip("no chapter with section anchors exists yet")


# --------------------------------------------------------------------------- entries
def test_entry_properties():
    e = validate_entries([entry(aliases=["support examples"])])[0]
    assert e.chapter_name == "01_mapping" and e.section == "Episodes"
    assert e.link() == "chapters/01_mapping/01_mapping.ipynb#Episodes"
    assert e.link(from_chapter=True) == "../01_mapping/01_mapping.ipynb#Episodes"
    assert e.names() == ("support set", "support examples", "支持集")
    chapter_only = validate_entries([entry(chapter="04_distillation")])[0]
    assert chapter_only.section == "" and chapter_only.link().endswith("04_distillation.ipynb")


# --------------------------------------------------------------------------- validation
@pytest.mark.parametrize("bad, needle", [
    ([entry(), entry(term="Support Set")], "used by one entry only"),
    ([entry(), entry(term="query set", aliases=["SUPPORT SET"])], "used by one entry only"),
    ([entry(chinese="")], "'chinese'"),
    ([entry(definition="   ")], "'definition'"),
    ([entry(term=None)], "missing"),
    ([entry(chapter=7)], "'chapter'"),
    ([entry(chapter="07_extra")], "'chapter'"),
    ([entry(chapter="01_mapping#bad anchor")], "'chapter'"),
    ([entry(chinese="support set")], "Chinese"),
    ([entry(aliases="FOMAML")], "aliases"),
    ([entry(colour="blue")], "colour"),
    (["just a string"], "JSON object"),
    ([], "non-empty JSON list"),
    ({"term": "x"}, "non-empty JSON list"),
])
def test_invalid_entries_raise_course_errors(bad, needle):
    with pytest.raises(CourseError) as info:
        validate_entries(bad)
    msg = str(info.value)
    assert needle in msg and "expected" in msg and "What to do" in msg


def test_error_names_the_entry(tmp_path):
    path = write(tmp_path, [entry(), entry(term="query set", chinese="")])
    with pytest.raises(CourseError, match=r"glossary.json entry 1 \('query set'\)"):
        load_glossary(path)


def test_load_from_path_and_file_errors(tmp_path):
    assert load_glossary(write(tmp_path, [entry()]))[0].term == "support set"
    with pytest.raises(CourseError, match="valid JSON"):
        load_glossary(write(tmp_path, None, text="[{'term': 1}"))
    with pytest.raises(CourseError, match="no such file"):
        load_glossary(tmp_path / "missing.json")
    assert isinstance(CourseError("x"), ValueError)


# --------------------------------------------------------------------------- tables and look-ups
def test_glossary_table_filters_and_renders():
    everything = glossary_table()
    assert isinstance(everything, GlossaryTable) and len(everything) == len(load_glossary())
    ch1 = glossary_table("01")
    assert ch1 == glossary_table("01_mapping") and 0 < len(ch1) < len(everything)
    assert all(row["chapter"].startswith("01_mapping") for row in ch1)
    md = ch1.to_markdown()
    lines = md.splitlines()
    assert lines[0].startswith("| English | 中文 |") and len(lines) == len(ch1) + 2
    assert ch1._repr_markdown_() == md == str(ch1)
    sorted_rows = glossary_table(sort=True)
    assert [r["term"].casefold() for r in sorted_rows] == sorted(r["term"].casefold() for r in sorted_rows)


def test_table_escapes_pipes_and_shows_aliases():
    rows = glossary_table(entries=validate_entries([entry(definition="a | b", aliases=["S"])]))
    assert "a \\| b" in rows.to_markdown() and rows[0]["term"] == "support set (S)"


def test_unknown_chapter_raises():
    with pytest.raises(CourseError, match="chapter"):
        glossary_table("99")


def test_lookup_by_alias_chinese_and_case():
    assert lookup("fomaml").term == "first-order MAML"
    assert lookup("原型网络").term == "prototypical network"
    assert lookup("  Support Set ").chinese == "支持集"
    with pytest.raises(CourseError, match="suport set|support set"):
        lookup("suport set")


# --------------------------------------------------------------------------- one Chinese term per concept
def _chinese_texts():
    """(where, text) of every place a learner reads Chinese: the bank, the glossary, every notebook
    cell of solutions/ and chapters/ (markdown and code: printed strings count), and the Chinese
    edition: each msgstr of the chapters' catalogs (solutions/locale/zh/*.po) and of the engine's
    messages (utils/locale/zh/messages.po), and the markdown of chapters_zh/ (what sync generated)."""
    import polib

    out = [("utils/question_bank.json", (REPO / "utils" / "question_bank.json").read_text(encoding="utf-8"))]
    out.append(("utils/glossary.json (Chinese terms and definitions)",
                "\n".join(f"{e.chinese} {e.definition}" for e in load_glossary())))
    for path in sorted((REPO / "solutions").glob("*/*.ipynb")) + sorted((REPO / "chapters").glob("*/*.ipynb")):
        for cell in read_notebook(path).cells:
            out.append((f"{path.relative_to(REPO)} cell {cell.get('id')}", cell.source))
    catalogs = sorted((REPO / "solutions" / "locale" / "zh").glob("*.po"))
    assert len(catalogs) >= 7, "every chapter has a Chinese catalog"
    for path in [*catalogs, REPO / "utils" / "locale" / "zh" / "messages.po"]:
        for e in polib.pofile(str(path), wrapwidth=0):
            if not e.obsolete:
                out.append((f"{path.relative_to(REPO)} msgctxt {e.msgctxt!r} msgid {e.msgid[:40]!r}", e.msgstr))
    zh_notebooks = sorted((REPO / "chapters_zh").glob("*/*.ipynb"))
    assert len(zh_notebooks) >= 7, "sync generated the Chinese edition of every chapter"
    for path in zh_notebooks:
        for cell in read_notebook(path).cells:
            if cell.cell_type == "markdown":
                out.append((f"{path.relative_to(REPO)} cell {cell.get('id')}", cell.source))
    return out


def test_each_concept_has_one_chinese_term_everywhere():
    """A concept's avoided renderings (``not_zh``: 情节 for episode, 黑箱 for black-box, 寻模, 势垒 ...)
    appear nowhere a learner reads Chinese, and no two concepts share a Chinese term."""
    glossary = load_glossary()
    avoided = {bad: e for e in glossary for bad in e.not_zh}
    assert {"情节", "黑箱", "寻模", "势垒", "专家混合"} <= set(avoided)
    found = [f"{where}: {bad!r} (the course writes {avoided[bad].chinese!r} for {avoided[bad].term!r})"
             for where, text in _chinese_texts() for bad in avoided if bad in text]
    assert not found, "\n".join(found)
    heads = {}
    for e in glossary:
        head = re.split(r"[（(]", e.chinese)[0].strip()
        assert heads.setdefault(head, e.term) == e.term, f"{head!r} names both {heads[head]!r} and {e.term!r}"
        assert not set(e.not_zh) & {head}, e.term


def test_not_zh_must_be_chinese():
    with pytest.raises(CourseError, match="not_zh"):
        validate_entries([entry(not_zh=["episode"])])
    assert validate_entries([entry(not_zh=["情节"])])[0].not_zh == ("情节",)
