"""The pages of the book as MyST markdown / notebooks: chapter pages from the student version with
the executed outputs (step 2 of :mod:`utils.course.book`), the provenance banner (step 3), the
landing page, the glossary and the question bank."""
from __future__ import annotations

import copy
import html
import json
import re
import urllib.parse
from pathlib import Path

from nbformat.v4 import new_markdown_cell

from .book_runs import ExecutedChapter, mode_name
from .notebooks import heading_texts, is_test_cell, nbgrader_meta

__all__ = [
    "WIDGET_MIME", "FIGURE_MIMES", "README_CHAPTERS_HEADING", "LOCAL_LAB", "exercise_cell", "clean_outputs",
    "rewrite_links", "chapter_page", "run_banner", "chapter_title", "readme_parts", "chapter_link",
    "landing_page", "glossary_page", "BANK_INTRO", "bank_page",
]


#: Output types a browser cannot show without a live kernel (dropped; their text fallback stays).
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
#: MIME types that make an output a figure or a table (they get the provenance caption).
FIGURE_MIMES = ("image/png", "image/jpeg", "image/svg+xml", "text/html")
#: Sections of README.md the landing page is made of.
README_CHAPTERS_HEADING = "## Chapters"

#: The JupyterLab a learner starts with ``jupyter lab`` listens here by default.
LOCAL_LAB = "http://localhost:8888/lab/tree"

# --------------------------------------------------------------------------- chapter pages
def _fence(source: str, lang: str = "") -> str:
    """``source`` in a code fence longer than any backtick run inside it."""
    longest = max((len(m) for m in re.findall(r"`+", source)), default=0)
    ticks = "`" * max(3, longest + 1)
    return f"{ticks}{lang}\n{source}\n{ticks}"


def _box(title: str, body: str, css: str) -> str:
    """A MyST admonition whose fence is longer than any fence in ``body``.

    ``title`` must not contain backticks (CommonMark forbids them in a backtick fence's info)."""
    longest = max((len(m) for m in re.findall(r"`{3,}", body)), default=0)
    ticks = "`" * max(3, longest + 1)
    return f"{ticks}{{admonition}} {title}\n:class: {css}\n{body}\n{ticks}"


def exercise_cell(cell, number: int):
    """The markdown cell that shows a student exercise cell (stub, visible tests, written answer)."""
    gid = nbgrader_meta(cell).get("grade_id", "")
    points = nbgrader_meta(cell).get("points")
    pts = f" ({points:g} point{'s' if points != 1 else ''})" if points else ""
    if cell.cell_type == "markdown":  # a written question's answer cell (graded by a person)
        body = ("Answer in prose in this cell of the notebook; a person grades it"
                f"{pts}. Model answers are not published.\n\n{cell.source}")
        return new_markdown_cell(_box(f"Exercise · written answer ({gid})", body, "exercise"),
                                 id=f"book-{cell.get('id')}")
    if is_test_cell(cell):
        body = ("Run this cell after yours: it checks your answer with the asserts below; the "
                f"autograder also runs hidden tests{pts}.\n\n{_fence(cell.source, 'python')}")
        return new_markdown_cell(_box(f"Tests of the exercise ({gid})", body, "exercise-tests"),
                                 id=f"book-{cell.get('id')}")
    body = ("Your code goes here: open the chapter in JupyterLab, replace the stub and run the "
            f"test cell below it.\n\n{_fence(cell.source, 'python')}")
    return new_markdown_cell(_box(f"Exercise {number} · {gid}", body, "exercise"),
                             id=f"book-{cell.get('id')}")


def _is_exercise(cell) -> bool:
    meta = nbgrader_meta(cell)
    return bool(meta.get("solution") or (cell.cell_type == "code" and meta.get("grade")))


def clean_outputs(outputs) -> list:
    """Outputs without live-widget views (a static page has no kernel); their text fallback stays."""
    kept = []
    for out in outputs:
        out = copy.deepcopy(out)
        data = out.get("data")
        if data is not None and WIDGET_MIME in data:
            del data[WIDGET_MIME]
            if set(data) <= {"text/plain"}:  # "IntSlider(value=...)": no use on a static page
                continue
        kept.append(out)
    return kept


#: A link to a chapter notebook as the notebooks write it, relative to a chapter folder or the
#: repository: ``../06_fusion/06_fusion.ipynb#Model-soups``, ``chapters/01_x/01_x.ipynb``.
#: An anchor may hold an apostrophe between letters (``#5.2-The-KL's-arguments-swapped``); a quote
#: that ends a single-quoted attribute is not followed by a letter.
_NOTEBOOK_LINK = re.compile(r"(?:\.\./|chapters/)?(\d{2}_[a-z0-9_]+)/\1\.ipynb(?:#((?:[^\s\"'<>)]|'(?=\w))*))?")


def rewrite_links(text: str, targets: dict) -> str:
    """Links to chapter notebooks (JupyterLab anchors) in an HTML output -> the chapter pages of
    the site (``NN_name.html#slug``, relative to ``chapters/``). Unknown anchors are kept as they
    are, so the browser test reports them."""
    def repl(m):
        # the anchor as written: percent-encoded in a URL, entity-escaped in HTML (&#x27; for ')
        chapter, anchor = m.group(1), html.unescape(urllib.parse.unquote(m.group(2) or ""))
        slug = targets.get(chapter, {}).get(anchor, anchor) if anchor else ""
        return f"{chapter}.html" + (f"#{slug}" if slug else "")
    return _NOTEBOOK_LINK.sub(repl, text)


def chapter_page(student, executed, run: ExecutedChapter, root_rel: str,
                 targets: dict | None = None) -> tuple:
    """The notebook rendered as a chapter page, and its counts: code cells with ``outputs``, of
    which ``figures`` (image or HTML table outputs, captioned), ``images``, ``exercises`` (boxes:
    answers, their tests, written answers) and ``to_fill`` (the cells a learner writes).

    ``student`` gives the structure (cells, order, exercise stubs); ``executed`` gives the outputs
    of the cells whose id and source are the same in both. ``root_rel`` is the chapter notebook's
    path in the repository (for the run-it box).
    """
    page = copy.deepcopy(student)
    ran = {c.get("id"): c for c in executed.cells if c.cell_type == "code"}
    mode = mode_name(run.fast)
    caption = (f"Output of {'the recorded' if run.origin == 'recorded' else 'a'} {mode} run ({run.date}); "
               f"{'FAST = True: the quick version' if run.fast else 'FAST = False: the complete version'}.")
    counts = {"outputs": 0, "figures": 0, "images": 0, "exercises": 0, "to_fill": 0, "unmatched": []}
    cells = []
    for cell in page.cells:
        if _is_exercise(cell):
            counts["exercises"] += 1
            if not is_test_cell(cell):
                counts["to_fill"] += 1
            cells.append(exercise_cell(cell, counts["to_fill"]))
            continue
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
            twin = ran.get(cell.get("id"))
            if twin is None or twin.source != cell.source:
                counts["unmatched"].append(cell.get("id"))
            else:
                cell.outputs = clean_outputs(twin.get("outputs", []))
                for out in cell.outputs:
                    data = out.get("data", {})
                    if "text/html" in data and targets:
                        html_text = data["text/html"]
                        html_text = "".join(html_text) if isinstance(html_text, list) else html_text
                        data["text/html"] = rewrite_links(html_text, targets)
                cell.execution_count = twin.get("execution_count")
            if cell.outputs:
                counts["outputs"] += 1
                tags = cell.metadata.setdefault("tags", [])
                tags.append(f"from-{mode.lower()}-run")
                counts["images"] += sum(1 for o in cell.outputs for m in o.get("data", {})
                                        if m.startswith("image/"))
                if any(m in o.get("data", {}) for o in cell.outputs for m in FIGURE_MIMES):
                    counts["figures"] += 1
                    cell.metadata.setdefault("mystnb", {})["figure"] = {"caption": caption}
        cells.append(cell)
    title_at = next((i for i, c in enumerate(cells) if c.cell_type == "markdown"), -1)
    cells[title_at + 1:title_at + 1] = [run_banner(run, root_rel)]
    page.cells = cells
    page.metadata.pop("widgets", None)
    return page, counts


def _minutes(seconds) -> str:
    """``", in 12 min"`` / ``", in 40 s"`` for a run's wall time, nothing when unknown."""
    if not seconds:
        return ""
    return f", in {seconds:.0f} s" if seconds < 90 else f", in {seconds / 60:.0f} min"


def run_banner(run: ExecutedChapter, root_rel: str):
    """The provenance banner and the "run it yourself" box of a chapter page.

    The banner names the run the outputs come from (mode, date, machine) and, by ``run.origin``:
    the chapter's recorded full-mode run of the shipped code, a FAST run because no current
    recording exists, or the run the build was asked for (``--fast`` / ``--full``)."""
    mode, chapter = mode_name(run.fast), Path(root_rel).parent.name
    fast = ("`FAST = True`: the quick version, well under a minute on a laptop CPU; the complete "
            "version (`FAST = False`) trains longer and its numbers differ")
    where = f"Run on {run.date}, on {run.machine}{_minutes(run.seconds)}. "
    if run.origin == "recorded":
        title = "Outputs from a recorded full-mode run"
        what = (f"Every output on this page comes from the recorded run of the shipped code in full mode "
                f"(`FAST = False`: the complete version), kept in `data/recorded/{chapter}.json` and "
                f"recorded again whenever the chapter's code changes. {where}")
    elif run.origin == "fallback":
        title = f"Outputs from a {mode} run"
        what = (f"No current full-mode recording of this chapter exists (`data/recorded/{chapter}.json` is "
                f"missing or older than the chapter's code), so every output on this page comes from "
                f"one run of the chapter's notebook with {fast}. {where}")
    else:
        title = f"Outputs from a {mode} run"
        what = ("Every output on this page comes from one run of the chapter's notebook with "
                f"{fast if run.fast else '`FAST = False`: the complete version'}. {where}")
    banner = _box(title, what + "Outputs are labelled with their mode. Exercises appear as boxes "
                  "without outputs: you write them.", f"run-banner run-{mode.lower()} from-{run.origin}")
    run_it = _box("Run it yourself in JupyterLab", (
        "1. Get the course: clone its repository, then `cd` into it.\n"
        "2. Install: `python -m pip install -r requirements.txt`\n"
        f"3. Open the chapter: `jupyter lab {root_rel}`\n\n"
        f"With JupyterLab running on this computer, [open the chapter in JupyterLab]"
        f"({LOCAL_LAB}/{root_rel}), or {{download}}`download the notebook "
        f"<../_notebooks/{chapter}.ipynb>` (the student version, with its exercises)."), "tip run-it")
    return new_markdown_cell(banner + "\n\n" + run_it, id="book-run-banner")


# --------------------------------------------------------------------------- other pages
def chapter_title(nb) -> str:
    """The chapter's first Markdown heading."""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return ""


def readme_parts(root: Path) -> tuple[str, dict]:
    """(the README's opening paragraphs, chapter number -> "the question it answers")."""
    readme = root / "README.md"
    text = readme.read_text(encoding="utf-8") if readme.is_file() else ""
    body = text.split("\n", 1)[1] if text.startswith("# ") else text
    intro = body.split(README_CHAPTERS_HEADING, 1)[0].strip()
    questions = {}
    if README_CHAPTERS_HEADING in body:
        table = body.split(README_CHAPTERS_HEADING, 1)[1].split("\n## ", 1)[0]
        for row in table.splitlines():
            cells = [c.strip() for c in row.strip().strip("|").split("|")]
            if len(cells) >= 3 and re.fullmatch(r"\d{2}", cells[0]):
                questions[cells[0]] = cells[2]
    return intro, questions


def _heading_targets(nb) -> dict:
    """JupyterLab anchor (heading text, spaces as hyphens) -> MyST slug of that heading."""
    from myst_parser.slugs import github_slugify

    targets = {}
    for text in heading_texts(nb):
        # what MyST slugs: the heading's text and inline code, not its math or link targets
        plain = re.sub(r"\$[^$]*\$", "", text)
        plain = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", plain)
        plain = re.sub(r"[*`]", "", plain)
        targets.setdefault(text.replace(" ", "-"), github_slugify(plain))
    return targets


def chapter_link(link: str, targets: dict, prefix: str = "") -> str | None:
    """``chapters/NN/NN.ipynb#Heading`` or ``NN#Heading`` -> ``chapters/NN.ipynb#slug`` (a MyST
    link to the chapter page's heading), or None when the chapter or heading is unknown."""
    ref, _, anchor = link.partition("#")
    chapter = Path(ref).stem if ref.endswith(".ipynb") else ref.split("/")[-1]
    if chapter not in targets:
        return None
    slug = targets[chapter].get(anchor) if anchor else ""
    if anchor and slug is None:
        return None
    return f"{prefix}chapters/{chapter}.ipynb" + (f"#{slug}" if slug else "")


def landing_page(root: Path, chapters: list[dict], mode: str,
                 reference: tuple[str, ...] = ("glossary", "question-bank")) -> str:
    """index.md: the "everything is a mapping" thread, the chapter table and the toctree.

    ``mode``: ``"FAST"``, ``"full"`` or ``"recorded"`` (recordings where current, FAST elsewhere);
    each entry of ``chapters`` may say where its outputs come from (``"outputs"``)."""
    intro, questions = readme_parts(root)
    rows = ["| # | chapter | the question it answers | cells you write | outputs |", "|---|---|---|---|---|"]
    for ch in chapters:
        num = ch["name"][:2]
        rows.append(f"| {num} | [{ch['title']}](chapters/{ch['name']}.ipynb) | "
                    f"{questions.get(num, '')} | {ch['to_fill']} | {ch.get('outputs', mode)} |")
    runs = (f"a **{mode} run** of each chapter" if mode != "recorded" else
            "the **recorded full-mode run** of the shipped code where the chapter has a current one "
            "(`data/recorded/`), else a **FAST run**")
    toc = "\n".join(f"chapters/{ch['name']}" for ch in chapters)
    names = {"glossary": "the [bilingual glossary](glossary.md) (术语表)",
             "question-bank": "the [question bank](question-bank.md) (题库)"}
    also = ("Also here: " + " and ".join(names[r] for r in reference) + ", and the search box."
            if reference else "Search with the box at the top.")
    ref_toc = ("```{toctree}\n:hidden:\n:caption: Reference\n\n" + "\n".join(reference)
               + "\n```\n") if reference else ""
    return f"""# Everything is a mapping

{intro}

## The thread

Each chapter names the mapping it studies:

* a **model** maps inputs to outputs;
* a **learner** maps a data set to a model;
* a **meta-learner** maps a family of tasks to a learner (chapters 01–02);
* **distillation, compression and fusion** map models to models (chapters 04–06);
* chapter 07 turns the whole ladder into interview practice.

## Chapters

{chr(10).join(rows)}

The outputs on these pages come from {runs}; each chapter page says which, when and where.
Exercises appear as boxes: to do them, run the chapter in JupyterLab (each page
says how). {also}

```{{toctree}}
:hidden:
:caption: Chapters

{toc}
```

{ref_toc}"""


def _md_cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def glossary_page(root: Path, targets: dict) -> str:
    """glossary.md: every term of utils/glossary.json with its Chinese name and where it is taught."""
    terms = json.loads((root / "utils" / "glossary.json").read_text(encoding="utf-8"))
    rows = ["| term | 中文 | definition | taught in |", "|---|---|---|---|"]
    for t in sorted(terms, key=lambda t: t["term"].lower()):
        href = chapter_link(t.get("chapter", ""), targets)
        where = f"[{t['chapter'].split('#')[0]}]({href})" if href else _md_cell(t.get("chapter", ""))
        also = f" (also: {', '.join(t['aliases'])})" if t.get("aliases") else ""
        rows.append(f"| **{_md_cell(t['term'])}**{_md_cell(also)} | {_md_cell(t['chinese'])} | "
                    f"{_md_cell(t['definition'])} | {where} |")
    return ("# Glossary · 术语表\n\nThe course's key terms in English and Chinese, each with the "
            "chapter section that teaches it.\n\n" + "\n".join(rows) + "\n")


def _details(summary: str, pairs: list[tuple[str, str]]) -> str:
    parts = "".join(f"<p><b>{html.escape(k)}</b> {html.escape(str(v))}</p>" for k, v in pairs if v)
    return f"<details class=\"bank-answer\"><summary>{html.escape(summary)}</summary>{parts}</details>"


#: The question bank's title and opening, by edition.
BANK_INTRO = {
    "en": ["# Question bank · 题库", "",
           "Interview questions on the course, each in English and Chinese. Self-study questions "
           "fold out a model answer, a follow-up and a common wrong answer in both languages. "
           "Questions marked *drill* are graded in chapter 07: their answers are not published "
           "here.", ""],
    "zh": ["# 题库 · Question bank", "",
           "关于本课程的面试题，每题都有中文和英文。自学题可展开参考答案、追问和常见错误答案（中英对照）。"
           "标有 *drill* 的题在第 07 章评分：这里不公布它们的答案。", ""]}


def bank_page(root: Path, targets: dict, lang: str = "en") -> str:
    """question-bank.md: every question in English and Chinese (``lang="zh"``: Chinese first, for
    the Chinese edition); self-study answers folded away, drill answers never shown (they are
    graded in chapter 07 and the bank does not hold them)."""
    zh = lang == "zh"
    bank = json.loads((root / "utils" / "question_bank.json").read_text(encoding="utf-8"))
    by_topic: dict[str, list] = {}
    for q in bank["entries"]:
        by_topic.setdefault(q["topic"], []).append(q)
    out = list(BANK_INTRO[lang])
    for topic, entries in by_topic.items():
        out += [f"## {topic}", ""]
        for q in entries:
            kind = " · *drill*" if q.get("drill") else ""
            href = chapter_link(q.get("chapter_link", ""), targets)
            link = ("" if not href else f" ([chapter]({href}))" if not zh else  # raw: MyST knows no lang-anchor
                    f'（<a href="{html.escape(href.replace(".ipynb", ".html"))}">所在章节</a>）')
            first, second = (q["question_zh"], q["question_en"]) if zh else (q["question_en"], q["question_zh"])
            out += [f"**{html.escape(q['id'])}**{kind}{link}", "", first, "", second, ""]
            if q.get("options"):
                out += [f"{chr(97 + i)}. {opt}" for i, opt in enumerate(q["options"])] + [""]
            if not q.get("drill"):
                pairs = [(("Model answer:", q["model_answer"]), ("参考答案：", q["model_answer_zh"])),
                         (("Follow-up:", q["follow_up"]), ("追问：", q["follow_up_zh"])),
                         (("Common wrong answer:", q["common_wrong_answer"]),
                          ("常见错误答案：", q["common_wrong_answer_zh"]))]
                out += [_details("参考答案 · Model answer" if zh else "Model answer · 参考答案",
                                 [p for pair in pairs for p in (pair[::-1] if zh else pair)]), ""]
    return "\n".join(out) + "\n"
