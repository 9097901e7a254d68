"""Printed text follows LANGUAGE (utils.language.t and utils/locale/zh/messages.po), and Chinese glyphs
render in matplotlib figures under LANGUAGE = "zh" (issue 29, item 3)."""
from __future__ import annotations

import io
import json
import re
import string
import warnings

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
from matplotlib import font_manager  # noqa: E402
from matplotlib.ft2font import FT2Font  # noqa: E402

from utils import language  # noqa: E402
from utils.errors import course_error  # noqa: E402
from utils.glossary import load_glossary  # noqa: E402
from utils.language import catalog, set_language, t, translate  # noqa: E402
from utils.results import MetaResult  # noqa: E402
from utils.story import read_ranking  # noqa: E402
from utils.tables import display_width, results_table  # noqa: E402


@pytest.fixture
def zh():
    """LANGUAGE = "zh" for one test; English (and matplotlib's fonts) restored after it."""
    before = dict(matplotlib.rcParams)
    set_language("zh")
    yield
    set_language("en")
    assert all(matplotlib.rcParams[k] == before[k] for k in ("font.family", "font.sans-serif"))


def _fields(text: str) -> list:
    return sorted(f for _, f, _, _ in string.Formatter().parse(text) if f is not None)


def test_catalog_keeps_every_field_of_its_english_text():
    cat = catalog("zh")
    assert len(cat) > 150
    bad = {en: zh for en, zh in cat.items() if _fields(en) != _fields(zh)}
    assert not bad, f"translations whose {{fields}} differ from the English: {bad}"


def test_english_is_the_key_unchanged():
    for en in catalog("zh"):
        assert t(en, "en") == en
    assert t("{what}: expected {expected}", "en", what="a", expected="b") == "a: expected b"


def _term(chinese: str) -> str:
    return re.split(r"[（(]", chinese)[0].strip()


def test_catalog_uses_the_glossary_terms():
    """A catalog entry whose English holds a glossary term uses the glossary's Chinese term."""
    entries = [(e.term, _term(e.chinese)) for e in load_glossary() if "/" not in e.term]
    wrong = []
    for en, zh in catalog("zh").items():
        for term, chinese in entries:
            if chinese and re.search(rf"\b{re.escape(term)}s?\b", en, re.IGNORECASE) and chinese not in zh:
                wrong.append((en, zh, term, chinese))
    assert not wrong, wrong


def test_numbers_are_kept_through_templates():
    assert translate("600 test episodes", "zh") == "600 个测试情景"
    assert translate("3 training seeds", "zh") == "3 个训练种子"
    assert translate("5-way 1-shot accuracy", "zh") == "5 类 1 样本准确率"
    assert translate("not in the catalog 600", "zh") == "not in the catalog 600"


def test_results_tables_and_errors_in_english_stay_as_they_were():
    r = MetaResult("accuracy", 0.482, 0.011, [0.5] * 600)
    assert r.format(covers=True) == "48.20 ± 1.10% accuracy (95% CI over 600 test episodes)"
    assert str(course_error("n_way", "at most 5", "7", "lower n_way")) == \
        "n_way: expected at most 5, found 7. What to do: lower n_way."
    assert read_ranking("r", {"a": [1, 2, 3], "b": [0, 1, 2]}).format() == \
        "r: a > b  (full, 3 seed(s); separated on every one of the seeds)"


def test_results_tables_errors_and_rankings_in_chinese(zh):
    r = MetaResult("accuracy", 0.482, 0.011, [0.5] * 600)
    assert r.interval_label() == "600 个测试情景上的 95% 置信区间"
    assert r.format(covers=True) == "准确率 48.20 ± 1.10%（600 个测试情景上的 95% 置信区间）"
    table = results_table(["learner", "test accuracy"], [("ProtoNet", 0.5)]).splitlines()
    assert table[0].split() == ["学习器", "测试准确率"]
    # columns line up on screen: a Chinese character takes two columns
    assert display_width(table[0]) == len(table[1]) == display_width(table[2])
    assert str(course_error("n_way", "at most 5", "7", "lower n_way")) == \
        "n_way：应为 at most 5，实际为 7。怎么办：lower n_way。"
    assert read_ranking("r", {"a": [1, 2, 3], "b": [0, 1, 2]}).format() == \
        "r：a > b（完整模式，3 个种子；在每个种子上都分得开）"


def test_grade_and_progress_reports_follow_the_notebook(tmp_path):
    from utils.course.grading_report import ExerciseResult, GradeReport
    from utils.course.progress import ChapterProgress, format_progress
    nb = tmp_path / "01_mapping.ipynb"
    nb.write_text(json.dumps({"cells": [], "metadata": {"course": {"language": "zh"}},
                              "nbformat": 4, "nbformat_minor": 5}), encoding="utf-8")
    report = GradeReport(str(nb), "01_mapping", 120, [ExerciseResult("ex1", 1.0, 1.0, "passed"),
                                                       ExerciseResult("ex2", 0.0, 2.0, "failed",
                                                                      "the test cell was not found in the graded notebook")])
    zh_text, en_text = report.format(), report.format("en")
    assert "自动评分总分：1/3" in zh_text and "通过" in zh_text and "评分后的笔记本里找不到" in zh_text
    assert en_text.splitlines()[-1] == "Autograded total: 1/3"
    assert en_text.splitlines()[1] == "  exercise   points  result"   # as before the catalog
    rows = [ChapterProgress("01_mapping", str(nb), 1.0, 3.0, ["ex2"])]
    assert format_progress(rows).splitlines()[0].split() == ["章节", "得分", "待完成练习", "书面回答：待批阅",
                                                             "书面回答：未写"]
    assert format_progress(rows, "en").splitlines()[0].startswith("chapter")


def _chain(text_artist) -> list[str]:
    """The font files matplotlib draws ``text_artist`` with, in fallback order."""
    prop = text_artist.get_fontproperties()
    paths = []
    for family in prop.get_family():   # glyph by glyph, matplotlib falls back along this list
        try:
            paths.append(font_manager.findfont(font_manager.FontProperties(
                family=family, style=prop.get_style(), weight=prop.get_weight()), fallback_to_default=False))
        except ValueError:
            continue
    return paths


def test_chinese_figure_renders_without_missing_glyphs(zh):
    cjk = language.find_cjk_font()
    if cjk is None:
        pytest.skip("no CJK font on this machine: install Debian's fonts-noto-cjk (.ci/run does)")
    from utils.plots import labelled_axes
    title = "每类 5 个样本的情景：准确率随内循环步数的变化"
    fig, ax = labelled_axes("inner steps", "accuracy (%)", title=title)
    assert ax.get_xlabel() == "内循环步数" and ax.get_ylabel() == "准确率（%）"
    ax.plot([0, 1, 2], [20, 40, 50], label="原型网络")
    ax.legend()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fig.savefig(io.BytesIO(), format="png")
    plt.close(fig)
    missing = [str(w.message) for w in caught if "missing" in str(w.message).lower()]
    assert not missing, missing
    chain = _chain(ax.title)
    assert chain and "DejaVuSans" in chain[0].replace(" ", ""), chain   # Latin and math as in English
    faces = [FT2Font(p) for p in chain]
    for ch in set(title + ax.get_xlabel() + ax.get_ylabel()) - {" "}:
        assert any(f.get_char_index(ord(ch)) != 0 for f in faces), f"no font in {chain} has {ch!r}"
    cjk_face = FT2Font(font_manager.findfont(font_manager.FontProperties(family=cjk), fallback_to_default=False))
    assert all(cjk_face.get_char_index(ord(ch)) != 0 for ch in "每类个样本的情景准确率随内循环步数变化")


def test_no_cjk_font_warns_in_one_line_and_does_not_crash(monkeypatch):
    monkeypatch.setattr(language, "find_cjk_font", lambda: None)
    with pytest.warns(UserWarning, match="fonts-noto-cjk") as record:
        assert set_language("zh") == "zh"
    set_language("en")
    assert "\n" not in str(record[0].message)


def test_notebook_language(tmp_path):
    from utils.language import notebook_language
    p = tmp_path / "a.ipynb"
    p.write_text(json.dumps({"metadata": {"course": {"language": "zh"}}}), encoding="utf-8")
    assert notebook_language(p) == "zh"
    p.write_text(json.dumps({"metadata": {}}), encoding="utf-8")
    assert notebook_language(p) == "en"
    assert notebook_language(tmp_path / "missing.ipynb") == "en"


def test_chapter_t_translates_in_the_chapter_language():
    from utils.chapter import start_chapter
    ch = start_chapter("01_mapping", FAST=True, DEVICE="cpu", language="zh")
    try:
        assert ch.t("query MSE") == "查询集 MSE" and ch.t("unknown label") == "unknown label"
    finally:
        set_language("en")
    assert start_chapter("01_mapping", FAST=True, DEVICE="cpu").t("query MSE") == "query MSE"


# --- the notebooks' own figure and table text (issue 29, item 3) -------------------------------------

_TEXT_CALLS = {"set_title", "set_xlabel", "set_ylabel", "suptitle"}   # first argument is read by a learner
_TEXT_KEYWORDS = {"title", "xlabel", "ylabel"}                           # of any call (engine helpers, ax.set)
#: Words that stay as they are in both editions, so a literal made only of them needs no ch.t:
#: method and metric names (the glossary keeps them in Latin letters) and a symbol's spoken name.
_SAME_IN_BOTH = {"MAML": "method name", "ProtoNet": "method name", "CNP": "method name",
                 "MoE": "method name", "MLP": "model name", "MSE": "metric name", "ECE": "metric name",
                 "NLL": "metric name", "CV": "metric name (CV²)", "KL": "divergence name",
                 "alpha": "the symbol α, named as on the slider", "sin": "math function"}


def _solution_code_cells():
    import glob
    for path in sorted(glob.glob("solutions/[0-9]*/*.ipynb")):
        for i, cell in enumerate(json.load(open(path, encoding="utf-8"))["cells"]):
            if cell["cell_type"] == "code":
                yield f"{path} cell {i}", "".join(cell["source"])


def _literal_text(node):
    """The fixed text of a str literal or f-string (fields left out), else None."""
    import ast
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return " ".join(v.value for v in node.values if isinstance(v, ast.Constant))
    return None


def _needs_translation(text: str) -> bool:
    words = re.findall(r"[A-Za-z]{2,}", re.sub(r"\$[^$]*\$", " ", text))
    return any(w not in _SAME_IN_BOTH for w in words)


def bare_figure_text(source: str) -> list[str]:
    """The English literals ``source`` passes straight to a figure title, an axis label or a table
    title (``ax.set_title("...")``, ``title=f"..."``): each should be ``ch.t("...", field=value)``."""
    import ast
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
        args = [node.args[0]] if name in _TEXT_CALLS and node.args else []
        args += [k.value for k in node.keywords if k.arg in _TEXT_KEYWORDS]
        for arg in args:
            text = _literal_text(arg)
            if text is not None and _needs_translation(text):
                found.append(f"line {arg.lineno}: {name}({ast.get_source_segment(source, arg)})")
    return found


def ch_t_templates(source: str) -> list[str]:
    """The literal templates of the ``ch.t(...)`` calls in ``source`` (both branches of a
    ``"a" if c else "b"``)."""
    import ast

    def literals(node):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return [node.value]
        if isinstance(node, ast.IfExp):
            return literals(node.body) + literals(node.orelse)
        return []
    return [s for node in ast.walk(ast.parse(source))
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "t"
            and isinstance(node.func.value, ast.Name) and node.func.value.id == "ch" and node.args
            for s in literals(node.args[0])]


def test_the_figure_text_lint_catches_a_bare_title_and_spares_names():
    src = ('ax.set_title(f"after {n} steps")\nshow_table(h, r, title="final loss")\nax.set_xlabel("alpha")\n'
           'ax.set_title(ch.t("after {n} steps", n=n))\nax.set_ylabel(r"$\\alpha$ MSE")\nfig.suptitle(name)\n')
    assert [f.split(":")[0] for f in bare_figure_text(src)] == ["line 1", "line 2"]
    assert ch_t_templates('ch.t("a {n}" if n == 1 else "b {n}", n=n); ch.t(x)') == ["a {n}", "b {n}"]


def test_no_solution_passes_bare_english_to_a_title_or_an_axis_label():
    found = [f"{where}, {hit}" for where, src in _solution_code_cells() for hit in bare_figure_text(src)]
    assert not found, ("figure/table text that the Chinese edition would print in English; wrap it in "
                       "ch.t(\"template {field}\", field=value) and add the template to "
                       "utils/locale/zh/messages.po:\n" + "\n".join(found))


def test_every_notebook_template_has_a_chinese_entry_with_its_fields():
    cat = catalog("zh")
    templates = {s: where for where, src in _solution_code_cells() for s in ch_t_templates(src)}
    assert len(templates) > 100
    missing = sorted(f"{where}: {s!r}" for s, where in templates.items() if s not in cat)
    assert not missing, "ch.t templates without an entry in utils/locale/zh/messages.po:\n" + "\n".join(missing)
    bad = {s: cat[s] for s in templates if _fields(s) != _fields(cat[s])}
    assert not bad, f"entries whose {{fields}} differ from the notebook's template: {bad}"


def _strings(node) -> list[str]:
    import ast
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, (ast.List, ast.Tuple)):
        return [s for e in node.elts for s in _strings(e)]
    return []


def engine_translated_text(source: str) -> list[str]:
    """The literals ``source`` passes to engine helpers that translate them themselves: the axis
    labels of ``labelled_axes`` and ``bar_with_ci`` and the column headers of ``show_table``."""
    import ast
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
        if name == "labelled_axes":
            found += [s for a in node.args[:2] for s in _strings(a)]
            found += [s for k in node.keywords if k.arg in ("xlabel", "ylabel") for s in _strings(k.value)]
        elif name in ("show_table", "results_table") and node.args:
            found += _strings(node.args[0])
        elif name == "bar_with_ci":
            found += [s for k in node.keywords if k.arg == "ylabel" for s in _strings(k.value)]
    return found


def test_every_axis_label_and_column_header_the_engine_translates_has_an_entry():
    assert engine_translated_text('labelled_axes("steps", ["a b", "c"]); show_table(["col"], rows)') == \
        ["steps", "a b", "c", "col"]
    missing = sorted({f"{where}: {s!r}" for where, src in _solution_code_cells() for s in engine_translated_text(src)
                      if _needs_translation(s) and translate(s, "zh") == s})
    assert not missing, "labels/headers the Chinese edition prints in English; add them to " \
                        "utils/locale/zh/messages.po:\n" + "\n".join(missing)
