"""The book's Chinese edition (``<out>/zh/``, issue 29 item 4) and the language switch on every page.

The Chinese chapter pages are made like the English ones (:mod:`.book_pages`) from the Chinese
*student* structure: :func:`chinese_student` is the student version with each prose cell replaced
by its translation (``solutions/locale/zh/<chapter>.po``, :mod:`.translations`), the learner's
answer cells kept as the student version has them (never the translated model answer), and
before each translated heading an anchor ``<a class="lang-anchor" id="<English slug>">``, so a
link to an English section (``chapters/NN.html#slug``) reaches the same section of the Chinese
page. Code cells are the same in both editions, so the Chinese pages show the English run's
outputs (recorded or FAST) by cell id: there is no second execution, and the banner says so.

:func:`add_language_switch` writes, after both Sphinx builds, a link "中文" / "English" into every
page that leads to the same page of the other edition; a few lines of plain JavaScript carry the
section the reader is in (the last heading above the top of the window) over as ``#slug``.
"""
from __future__ import annotations

import html
import json
import os
import re
from pathlib import Path

from nbformat.v4 import new_markdown_cell

from .book_pages import _box, _fence, _heading_targets, _md_cell, bank_page, chapter_link
from .book_runs import ExecutedChapter, mode_name
from .notebooks import _regions, is_test_cell, nbgrader_meta, read_notebook, release_path
from .translations import LANGUAGES, catalog_path, translated_notebook

__all__ = ["ZH_CONF", "ZH_CSS", "SWITCH_CSS", "zh_ready", "fix_zh_search", "chinese_student", "localize_page",
           "landing_page_zh", "glossary_page_zh", "bank_page_zh", "add_language_switch"]

#: Appended to the English conf.py for the Chinese build: Sphinx's own strings and search in Chinese.
ZH_CONF = 'language = "zh_CN"\nhtml_title = "一切皆映射（Everything is a mapping）"\n'

#: The switch (both editions): a small fixed pill in the lower right corner.
SWITCH_CSS = '''a.lang-switch { position: fixed; right: 1.2rem; bottom: 1.2rem; z-index: 1050;
  padding: .3em .95em; border-radius: 999px; background: #1d4ed8; color: #fff !important;
  font-weight: 600; text-decoration: none; box-shadow: 0 2px 6px rgba(0,0,0,.25); }
a.lang-switch:hover { background: #1e40af; }
'''
#: The Chinese edition's output labels (the English ones are in book.CSS).
ZH_CSS = '''.cell.tag_from-fast-run .cell_output::before { content: "FAST 运行的输出"; }
.cell.tag_from-full-run .cell_output::before { content: "完整运行的输出"; }
'''

#: Carries the reader's section over: the section the page was opened at (``#slug``) while it is
#: still at the top of the window, else the last marker above the window's top, becomes the hash.
#: English pages mark a section with its slug (``<section><span id=slug>``); Chinese pages with
#: the ``lang-anchor`` holding the English slug.
SWITCH_JS = """<script>document.addEventListener('click', function (e) {
  var a = e.target.closest ? e.target.closest('a.lang-switch') : null; if (!a) return;
  var zh = (document.documentElement.lang || '').indexOf('zh') === 0;
  var marks = document.querySelectorAll(zh ? 'a.lang-anchor' : 'section > span[id]:first-child');
  var id = '', here = decodeURIComponent(location.hash.slice(1));
  for (var i = 0; i < marks.length; i++) {
    var top = marks[i].getBoundingClientRect().top;
    if (marks[i].id === here && top > -5 && top < 150) { id = here; break; }
    if (top < 150) { id = marks[i].id; } }
  a.href = a.href.split('#')[0] + (id ? '#' + encodeURIComponent(id) : '');
});</script>"""


def zh_ready(root: Path, chapters: list[str]) -> bool:
    """Whether the course has a Chinese edition to build: a catalog for some chapter. (A course
    with catalogs for only some chapters is refused by :func:`.translations.translation_of`.)"""
    return "zh" in LANGUAGES and any(catalog_path(root, ch, "zh").is_file() for ch in chapters)


def _one_cell(cell):
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [cell]
    return nb


def chinese_student(root: Path, chapter: str):
    """The chapter's student version in Chinese prose, safe to publish (see the module docstring)."""
    student = read_notebook(release_path(root, chapter))
    zh = translated_notebook(student, root, chapter, "zh")
    for cell, english in zip(zh.cells, student.cells):
        if cell.cell_type != "markdown":
            continue
        if nbgrader_meta(english).get("solution"):
            cell.source = english.source     # "YOUR ANSWER HERE": the learner writes it
            continue
        inside, outside = _regions(cell.source)
        if any(line.strip() for line in inside):  # no solution text outside an answer cell either
            cell.source = "\n".join(outside)
        slugs = list(dict.fromkeys(_heading_targets(_one_cell(english)).values()))
        cell.source = "".join(f'<a class="lang-anchor" id="{html.escape(s)}"></a>\n' for s in slugs) + cell.source
    return zh


def _minutes(seconds) -> str:
    if not seconds:
        return ""
    return f"，用时 {seconds:.0f} 秒" if seconds < 90 else f"，用时 {seconds / 60:.0f} 分钟"


def run_banner_zh(run: ExecutedChapter, root_rel: str):
    """The Chinese provenance banner and "run it yourself" box (cf. :func:`.book_pages.run_banner`)."""
    mode, chapter = mode_name(run.fast), Path(root_rel).parent.name
    fast = ("`FAST = True`：快速版本，在笔记本电脑的 CPU 上一分钟以内；完整版本（`FAST = False`）训练更久，"
            "数字也不同")
    where = f"运行于 {run.date}，机器：{run.machine}{_minutes(run.seconds)}。"
    title = "输出来自一次记录的完整模式运行" if run.origin == "recorded" else f"输出来自一次 {mode} 运行"
    what = {"recorded": f"本页的每个输出都来自所附代码在完整模式（`FAST = False`：完整版本）下的记录运行，保存在 "
                        f"`data/recorded/{chapter}.json`，本章代码一改就重新记录。{where}",
            "fallback": f"本章没有最新的完整模式记录（`data/recorded/{chapter}.json` 缺失或早于本章代码），所以本页的"
                        f"每个输出都来自本章笔记本的一次运行，{fast}。{where}",
            "run": f"本页的每个输出都来自本章笔记本的一次运行，"
                   f"{fast if run.fast else '`FAST = False`：完整版本'}。{where}"}[run.origin]
    same = ("中英文两版共用同一份代码，所以这些输出就是所附代码那次运行的输出（按单元格 id 对应），中文版没有另行执行；"
            "输出中打印的文字随运行所用的语言，目前记录的运行是英文的。输出都标明了运行模式。练习显示为没有输出的方框：由你来写。")
    banner = _box(title, what + same, f"run-banner run-{mode.lower()} from-{run.origin}")
    run_it = _box("在 JupyterLab 中自己运行", (
        "1. 获取课程：克隆本课程的仓库，然后 `cd` 进入。\n"
        "2. 安装：`python -m pip install -r requirements.txt`\n"
        f"3. 打开本章：`jupyter lab {root_rel}`\n\n"
        f"也可以{{download}}`下载本章的中文笔记本 <../_notebooks/{chapter}.ipynb>`（学生版，含练习）。"), "tip run-it")
    return new_markdown_cell(banner + "\n\n" + run_it, id="book-run-banner")


def _exercise_zh(cell, number: int):
    gid = nbgrader_meta(cell).get("grade_id", "")
    points = nbgrader_meta(cell).get("points")
    pts = f"（{points:g} 分）" if points else ""
    if cell.cell_type == "markdown":
        body = f"在笔记本的这个单元格里用文字作答，由人来评分{pts}。参考答案不公开。\n\n{cell.source}"
        return new_markdown_cell(_box(f"练习 · 文字作答（{gid}）", body, "exercise"), id=f"book-{cell.get('id')}")
    if is_test_cell(cell):
        body = (f"写完上面的答案后运行这个单元格：它用下面的 assert 检查你的答案；自动评分还会运行隐藏测试{pts}。"
                f"\n\n{_fence(cell.source, 'python')}")
        return new_markdown_cell(_box(f"练习的测试（{gid}）", body, "exercise-tests"), id=f"book-{cell.get('id')}")
    body = f"你的代码写在这里：在 JupyterLab 中打开本章，替换这段桩代码，再运行它下面的测试单元格。\n\n{_fence(cell.source, 'python')}"
    return new_markdown_cell(_box(f"练习 {number} · {gid}", body, "exercise"), id=f"book-{cell.get('id')}")


def localize_page(page, student, run: ExecutedChapter, root_rel: str):
    """A chapter page made by :func:`.book_pages.chapter_page` from :func:`chinese_student`, with
    its banner, exercise boxes and figure captions in Chinese (in place; returns ``page``)."""
    by_id = {f"book-{c.get('id')}": c for c in student.cells}
    number, mode = 0, mode_name(run.fast)
    caption = (f"{'记录的' if run.origin == 'recorded' else ''}{mode} 运行的输出（{run.date}）；"
               f"{'FAST = True：快速版本' if run.fast else 'FAST = False：完整版本'}。")
    for i, cell in enumerate(page.cells):
        cid = cell.get("id")
        if cid == "book-run-banner":
            page.cells[i] = run_banner_zh(run, root_rel)
        elif cid in by_id and cell.cell_type == "markdown":
            ex = by_id[cid]
            number += not is_test_cell(ex)
            page.cells[i] = _exercise_zh(ex, number)
        elif cell.cell_type == "code" and "figure" in cell.metadata.get("mystnb", {}):
            cell.metadata["mystnb"]["figure"]["caption"] = caption
    return page


def _link(href: str | None, text: str) -> str:
    """A raw link to a chapter page (the anchor is a ``lang-anchor`` MyST does not know of)."""
    if not href:
        return _md_cell(text)
    return f'<a href="{html.escape(href.replace(".ipynb", ".html"))}">{html.escape(text)}</a>'


def landing_page_zh(chapters: list[dict], mode: str, reference: tuple[str, ...]) -> str:
    """index.md of the Chinese edition (cf. :func:`.book_pages.landing_page`)."""
    rows = ["| # | 章节 | 你要写的单元格 | 输出 |", "|---|---|---|---|"]
    for ch in chapters:
        rows.append(f"| {ch['name'][:2]} | [{ch['title']}](chapters/{ch['name']}.ipynb) | {ch['to_fill']} | "
                    f"{ch.get('outputs', mode)} |")
    runs = ("所附代码的**记录的完整模式运行**（`data/recorded/`，若本章有最新的记录），否则来自一次 **FAST 运行**"
            if mode == "recorded" else f"每章的一次 **{mode} 运行**")
    names = {"glossary": "[中英术语表](glossary.md)", "question-bank": "[题库](question-bank.md)"}
    also = "另有" + "和".join(names[r] for r in reference) + "，以及搜索框。" if reference else "用顶部的搜索框搜索。"
    toc = "\n".join(f"chapters/{ch['name']}" for ch in chapters)
    ref_toc = ("```{toctree}\n:hidden:\n:caption: 参考\n\n" + "\n".join(reference) + "\n```\n") if reference else ""
    return f"""# 一切皆映射（Everything is a mapping）

一门用 PyTorch 笔记本讲元学习（meta-learning）的开源课程。这是它的中文版：与英文版是同一份源文件，
代码、练习和评分完全相同，只有文字是中文。每页右下角的 **English** 可切换到英文版的同一页。

## 主线

每一章都点明它研究的映射：

* **模型**把输入映射到输出；
* **学习器（learner）**把一个数据集映射到一个模型；
* **元学习器（meta-learner）**把一族任务（task）映射到一个学习器（第 01–02 章）；
* **蒸馏、压缩与融合**把模型映射到模型（第 04–06 章）；
* 第 07 章把整条阶梯变成面试练习。

## 章节

{chr(10).join(rows)}

这些页面上的输出来自{runs}；每章页面都写明来自哪次运行、何时、在哪台机器上。中英文两版共用代码，
所以共用同一次运行的输出。练习显示为方框：要做练习，请在 JupyterLab 中运行本章（每页都写了怎么做）。{also}

```{{toctree}}
:hidden:
:caption: 章节

{toc}
```

{ref_toc}"""


def glossary_page_zh(root: Path, targets: dict) -> str:
    """glossary.md of the Chinese edition: the Chinese term first, then the English one."""
    terms = json.loads((root / "utils" / "glossary.json").read_text(encoding="utf-8"))
    rows = ["| 中文 | English | 定义（英文） | 所在章节 |", "|---|---|---|---|"]
    for t in sorted(terms, key=lambda t: t["term"].lower()):
        where = _link(chapter_link(t.get("chapter", ""), targets), t.get("chapter", "").split("#")[0])
        also = f"（又作：{'，'.join(t['aliases'])}）" if t.get("aliases") else ""
        rows.append(f"| **{_md_cell(t['chinese'])}** | {_md_cell(t['term'])}{_md_cell(also)} | "
                    f"{_md_cell(t['definition'])} | {where} |")
    return "# 术语表 · Glossary\n\n本课程的关键术语，中英对照，并注明讲授它的章节。\n\n" + "\n".join(rows) + "\n"


def bank_page_zh(root: Path, targets: dict) -> str:
    """question-bank.md of the Chinese edition: each question in Chinese first, then English."""
    return bank_page(root, targets, "zh")


def fix_zh_search(site: Path) -> None:
    """Sphinx 9's Chinese ``language_data.js`` sets ``Stemmer = ChineseStemmer`` but ships only the
    English stemmer (its Python indexer stems the Latin words of a Chinese page with English
    Snowball, and without the optional ``jieba`` indexes no Chinese word): every page would throw
    "ChineseStemmer is not defined". Use the stemmer the index was built with."""
    path = site / "_static" / "language_data.js"
    if path.is_file():
        text = path.read_text(encoding="utf-8")
        path.write_text(text.replace("window.Stemmer = ChineseStemmer;", "window.Stemmer = EnglishStemmer;"),
                        encoding="utf-8")


_SKIP = {"_static", "_images", "_sources", "_sphinx_design_static"}


def add_language_switch(en: Path, zh: Path) -> int:
    """Write the switch into every page of both editions (``en``: the English site folder, ``zh``:
    the Chinese one) that has a twin in the other; return how many pages got one."""
    done = 0
    for site, other, label, lang in ((en, zh, "中文", "zh-CN"), (zh, en, "English", "en")):
        for page in site.rglob("*.html"):
            rel = page.relative_to(site)
            if _SKIP & set(rel.parts) or (site == en and rel.parts[0] == zh.name and zh.parent == en):
                continue
            twin = other / rel
            if not twin.is_file():
                continue
            href = Path(os.path.relpath(twin, page.parent)).as_posix()
            text = page.read_text(encoding="utf-8")
            link = (f'<a class="lang-switch" href="{html.escape(href)}" hreflang="{lang}" lang="{lang}">'
                    f'{label}</a>{SWITCH_JS}')
            text = re.sub(r"</body>", lambda m: link + "\n</body>", text, count=1)
            page.write_text(text, encoding="utf-8")
            done += 1
    return done
