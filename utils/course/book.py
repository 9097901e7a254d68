"""The course as a static website (``python -m utils.course book [--full] [--out DIR]``).

A book in the d2l / UvA-tutorials sense: every chapter with its executed outputs (figures,
tables, printed numbers), rendered math, the bilingual glossary and the question bank as pages,
Sphinx's search, and on each chapter a box that says how to run it in JupyterLab.

How it is built, offline (Sphinx + MyST-NB + sphinx-book-theme, MathJax shipped by the PyPI
package ``sphinx-mathjax-offline``: no CDN at build or read time):

1. **Executed notebooks.** Each ``solutions/NN_name/NN_name.ipynb`` is executed by the course's
   own runner (:func:`utils.course.execute.run_chapter`, FAST unless ``--full``) into
   ``build/executed/`` (``build/full/executed/`` for ``--full``). A copy already there is reused
   when it is *current*: papermill ran it in the same mode, without an exception, and its cells
   (ids and sources, papermill's injected cell aside) equal today's solution notebook. (A change
   to the engine in ``utils/`` alone does not make a copy stale: delete ``build/executed/`` or
   run ``python -m utils.course run`` to refresh the outputs.)
2. **Student structure.** The chapter pages are rendered from the *student* version in
   ``chapters/``: the executed outputs are copied onto its non-exercise cells by cell id, and
   the exercise cells (answer stubs, their visible tests, written questions) become "Exercise"
   boxes without outputs. So solutions and hidden tests never reach the site;
   :func:`find_site_leaks` scans the built files for them and ``tests/test_book.py`` fails on any.
3. **Provenance.** Each chapter page opens with a banner naming the run its outputs come from
   (mode, date, machine); every output area is labelled with the mode and every figure or
   table output gets a caption saying so.
4. MyST-NB renders the notebooks with ``nb_execution_mode = "off"``: it never re-executes.

The site is a folder of static files: host it on any static host (GitHub Pages, Netlify, an
nginx folder) or look at it locally with ``python -m http.server -d build/book/html``.
"""
from __future__ import annotations

import copy
import html
import importlib.util
import io
import json
import os
import platform
import re
import shutil
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbformat.v4 import new_markdown_cell

from ..errors import course_error
from .notebooks import (find_chapters, heading_texts, is_test_cell, nbgrader_meta, read_notebook,
                        release_path, secret_lines, solution_path, write_notebook)

#: Output types a browser cannot show without a live kernel (dropped; their text fallback stays).
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
#: MIME types that make an output a figure or a table (they get the provenance caption).
FIGURE_MIMES = ("image/png", "image/jpeg", "image/svg+xml", "text/html")
#: Sections of README.md the landing page is made of.
README_CHAPTERS_HEADING = "## Chapters"

#: The JupyterLab a learner starts with ``jupyter lab`` listens here by default.
LOCAL_LAB = "http://localhost:8888/lab/tree"


# --------------------------------------------------------------------------- executed notebooks
@dataclass
class ExecutedChapter:
    """One chapter's executed solution notebook and where it came from."""

    chapter: str
    path: Path
    fast: bool
    date: str          # YYYY-MM-DD of the run (papermill's end time)
    machine: str       # what it ran on, in words
    reused: bool       # True: an up-to-date copy was already in the build folder


def mode_name(fast: bool) -> str:
    """``"FAST"`` or ``"full"``: how the course names its two run modes."""
    return "FAST" if fast else "full"


def describe_machine() -> str:
    """This machine in words: OS, CPU architecture and cores, torch version and accelerator."""
    words = f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPU cores"
    try:
        import torch

        words += f", torch {torch.__version__.split('+')[0]}"
        if torch.cuda.is_available():
            words += f", GPU {torch.cuda.get_device_name(0)}"
    except Exception:  # pragma: no cover - torch is a requirement; the words are a courtesy
        pass
    return words


def _comparable_cells(nb) -> list[tuple]:
    return [(c.get("id"), c.cell_type, c.source) for c in nb.cells
            if "injected-parameters" not in c.get("metadata", {}).get("tags", [])]


def is_current(executed, solution, fast: bool) -> bool:
    """Whether ``executed`` (a papermill output) is a clean run of ``solution`` in this mode.

    True when papermill recorded ``FAST == fast``, no exception, and the executed cells (ids,
    types and sources, without papermill's injected-parameters cell) equal the solution's.
    """
    pm = executed.metadata.get("papermill") or {}
    if pm.get("exception") or (pm.get("parameters") or {}).get("FAST") is not bool(fast):
        return False
    return _comparable_cells(executed) == _comparable_cells(solution)


def _run_date(nb) -> str:
    pm = nb.metadata.get("papermill") or {}
    return str(pm.get("end_time") or pm.get("start_time") or "")[:10] or "unknown date"


def executed_dir(root: str | Path, fast: bool) -> Path:
    """Where the book keeps executed copies: ``build`` for FAST (the same place as ``course run``),
    ``build/full`` for full runs (so the two never overwrite each other)."""
    return Path(root) / "build" if fast else Path(root) / "build" / "full"


def executed_chapter(root: str | Path, chapter: str, *, fast: bool = True,
                     build: str | Path | None = None, timeout: int | None = None,
                     log=print) -> ExecutedChapter:
    """The chapter's executed notebook: reused when current (:func:`is_current`), else run now.

    Runs go through :func:`utils.course.execute.run_chapter` (papermill, the chapter's ``FAST`` knob).
    A sidecar ``<chapter>.book.json`` records the machine of runs made here. Raises a
    :class:`~utils.errors.CourseError` naming the failing cell's error when the chapter fails.
    """
    root = Path(root)
    build = Path(build) if build else executed_dir(root, fast)
    path = build / "executed" / chapter / f"{chapter}.ipynb"
    sidecar = path.with_suffix(".book.json")
    solution = read_notebook(solution_path(root, chapter))
    reused = path.exists() and is_current(read_notebook(path), solution, fast)
    if not reused:
        from .execute import run_chapter

        log(f"  executing {chapter} ({mode_name(fast)})...")
        run = run_chapter(root, chapter, fast=fast, timeout=timeout, build=build)
        if not run.ok:
            raise course_error(f"chapter {chapter}", f"a clean {mode_name(fast)} run to build the book from",
                               run.error, f"run `python -m utils.course run --only {chapter[:2]}"
                               f"{'' if fast else ' --full'}` and fix the failing cell")
        sidecar.write_text(json.dumps({"machine": describe_machine()}), encoding="utf-8")
    else:
        log(f"  reusing {path} (current with solutions/{chapter})")
    nb = read_notebook(path)
    machine = (json.loads(sidecar.read_text(encoding="utf-8")).get("machine")
               if sidecar.exists() else describe_machine())
    return ExecutedChapter(chapter, path, fast, _run_date(nb), machine, reused)


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


def _clean_outputs(outputs) -> list:
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
    caption = (f"Output of a {mode} run ({run.date}); "
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
                cell.outputs = _clean_outputs(twin.get("outputs", []))
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


def run_banner(run: ExecutedChapter, root_rel: str):
    """The provenance banner and the "run it yourself" box of a chapter page."""
    mode = mode_name(run.fast)
    what = ("`FAST = True`: the quick version, well under a minute on a laptop CPU; the complete "
            "version (`FAST = False`) trains longer and its numbers differ" if run.fast else
            "`FAST = False`: the complete version")
    banner = _box(f"Outputs from a {mode} run", (
        f"Every output on this page comes from one run of the chapter's notebook with {what}. "
        f"Run on {run.date}, on {run.machine}. Outputs are labelled with their mode. "
        "Exercises appear as boxes without outputs: you write them."), f"run-banner run-{mode.lower()}")
    chapter = Path(root_rel).parent.name
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
    """index.md: the "everything is a mapping" thread, the chapter table and the toctree."""
    intro, questions = readme_parts(root)
    rows = ["| # | chapter | the question it answers | cells you write |", "|---|---|---|---|"]
    for ch in chapters:
        num = ch["name"][:2]
        rows.append(f"| {num} | [{ch['title']}](chapters/{ch['name']}.ipynb) | "
                    f"{questions.get(num, '')} | {ch['to_fill']} |")
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

The outputs on these pages come from a **{mode} run** of each chapter; each chapter page says
when and where. Exercises appear as boxes: to do them, run the chapter in JupyterLab (each page
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


def bank_page(root: Path, targets: dict) -> str:
    """question-bank.md: every question in English and Chinese; self-study answers folded away,
    drill answers never shown (they are graded in chapter 07 and the bank does not hold them)."""
    bank = json.loads((root / "utils" / "question_bank.json").read_text(encoding="utf-8"))
    by_topic: dict[str, list] = {}
    for q in bank["entries"]:
        by_topic.setdefault(q["topic"], []).append(q)
    out = ["# Question bank · 题库", "",
           "Interview questions on the course, each in English and Chinese. Self-study questions "
           "fold out a model answer, a follow-up and a common wrong answer in both languages. "
           "Questions marked *drill* are graded in chapter 07: their answers are not published "
           "here.", ""]
    for topic, entries in by_topic.items():
        out += [f"## {topic}", ""]
        for q in entries:
            kind = " · *drill*" if q.get("drill") else ""
            href = chapter_link(q.get("chapter_link", ""), targets)
            link = f" ([chapter]({href}))" if href else ""
            out += [f"**{html.escape(q['id'])}**{kind}{link}", "",
                    f"{q['question_en']}", "", f"{q['question_zh']}", ""]
            if q.get("options"):
                out += [f"{chr(97 + i)}. {opt}" for i, opt in enumerate(q["options"])] + [""]
            if not q.get("drill"):
                out += [_details("Model answer · 参考答案", [
                    ("Model answer:", q["model_answer"]), ("参考答案：", q["model_answer_zh"]),
                    ("Follow-up:", q["follow_up"]), ("追问：", q["follow_up_zh"]),
                    ("Common wrong answer:", q["common_wrong_answer"]),
                    ("常见错误答案：", q["common_wrong_answer_zh"])]), ""]
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- Sphinx
def mathjax_dir() -> Path:
    """The folder holding MathJax 3 (``mathjax/tex-chtml.js``) from the PyPI package
    ``sphinx-mathjax-offline``: the site serves it itself, so math renders with no network."""
    spec = importlib.util.find_spec("sphinx-mathjax-offline")
    locations = list(spec.submodule_search_locations or []) if spec else []
    for loc in locations:
        static = Path(loc) / "static"
        if (static / "mathjax" / "tex-chtml.js").is_file():
            return static
    raise course_error("MathJax for the book", "the PyPI package sphinx-mathjax-offline (MathJax 3)",
                       "it is not installed", "run `python -m pip install -r requirements.txt`")


#: What the site needs of MathJax: the TeX-to-HTML bundle and what it loads on demand (TeX
#: extensions, CHTML fonts, the menu, accessibility); the other bundles (SVG, MathML) stay out.
MATHJAX_PARTS = ("tex-chtml.js", "input", "output/chtml", "output/chtml.js", "ui", "a11y", "sre",
                 "adaptors")


def copy_mathjax(dst: Path) -> None:
    """Copy the MathJax parts the site loads (:data:`MATHJAX_PARTS`) into ``dst``."""
    src = mathjax_dir() / "mathjax"
    for part in MATHJAX_PARTS:
        target = dst / part
        target.parent.mkdir(parents=True, exist_ok=True)
        if (src / part).is_dir():
            shutil.copytree(src / part, target)
        elif (src / part).is_file():
            shutil.copy(src / part, target)


CONF = '''# Generated by utils/course/book.py: edit that file, not this one.
project = "Everything is a mapping"
author = "the course's authors"
extensions = ["myst_nb"]
exclude_patterns = ["_build", "_notebooks/**", "**.ipynb_checkpoints"]
nb_execution_mode = "off"        # outputs come from the course's own runner, never re-executed
nb_ipywidgets_js = {}            # no widget JavaScript from a CDN: a static page has no kernel
nb_output_stderr = "remove"      # warnings and progress chatter stay in the run's log
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 4
suppress_warnings = ["myst.header"]  # a chapter's heading levels are its author's choice
html_theme = "sphinx_book_theme"
html_title = "Everything is a mapping"
html_static_path = ["_static"]
html_css_files = ["course.css"]
mathjax_path = "mathjax/tex-chtml.js"  # served from this site (_static/mathjax), no CDN
html_theme_options = {"show_toc_level": 2, "use_download_button": True,
                      "home_page_in_toc": True, "show_navbar_depth": 1}
html_context = {"default_mode": "light"}  # the theme logs a console error when no mode is set
html_favicon = "_static/favicon.svg"     # else browsers ask for /favicon.ico and get a 404
'''

#: The site's icon: the course's arrow, "maps to".
FAVICON = ('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><rect width="32" height="32" '
           'rx="6" fill="#1d4ed8"/><text x="16" y="23" font-size="20" text-anchor="middle" '
           'fill="#fff" font-family="sans-serif">&#8614;</text></svg>')

CSS = '''/* Generated by utils/course/book.py */
.admonition.exercise { border-color: #d97706; }
.admonition.exercise > .admonition-title { background: #fef3c7; color: #7c2d12; }
.admonition.exercise-tests { border-color: #6b7280; }
.admonition.exercise-tests > .admonition-title { background: #f3f4f6; }
.admonition.run-banner { border-color: #2563eb; }
.cell[class*="tag_from-"] .cell_output { position: relative; border-left: 3px solid #93c5fd; padding-left: .4em; }
.cell.tag_from-fast-run .cell_output::before { content: "output of a FAST run"; }
.cell.tag_from-full-run .cell_output::before { content: "output of a full run"; }
.cell[class*="tag_from-"] .cell_output::before { display: block; font-size: .75em; color: #1d4ed8; }
details.bank-answer { margin: .3em 0 1.2em 0; padding: .3em .8em; background: #f8fafc; border-radius: 4px; }
details.bank-answer summary { cursor: pointer; color: #1d4ed8; }
'''


@dataclass
class BookResult:
    """What :func:`build_book` made."""

    out: Path
    mode: str
    seconds: float
    pages: list[str]
    size_bytes: int
    warnings: list[str] = field(default_factory=list)
    chapters: dict = field(default_factory=dict)   # chapter -> counts (outputs, figures, exercises)
    reused: list[str] = field(default_factory=list)

    def summary(self) -> str:
        lines = [f"Built the book ({self.mode} outputs) in {self.seconds:.0f} s: {len(self.pages)} pages, "
                 f"{self.size_bytes / 2**20:.1f} MiB in {self.out}"]
        for ch, c in self.chapters.items():
            lines.append(f"  {ch:<24} {c['outputs']:>3} outputs, {c['images']:>3} images, "
                         f"{c['figures']:>3} captioned figures/tables, "
                         f"{c['exercises']:>3} exercise boxes")
        if self.warnings:
            lines.append(f"  {len(self.warnings)} Sphinx warning(s); the first: {self.warnings[0]}")
        lines.append(f"Open {self.out / 'index.html'}, or serve it: python -m http.server -d {self.out}")
        return "\n".join(lines)


def write_sources(root: Path, src: Path, runs: dict, *, fast: bool) -> dict:
    """Write the Sphinx source folder ``src`` (conf.py, pages, chapter notebooks); return counts."""
    if src.exists():
        shutil.rmtree(src)
    (src / "chapters").mkdir(parents=True)
    (src / "_notebooks").mkdir()
    (src / "_static").mkdir()
    (src / "conf.py").write_text(CONF, encoding="utf-8")
    copy_mathjax(src / "_static" / "mathjax")
    (src / "_static" / "course.css").write_text(CSS, encoding="utf-8")
    (src / "_static" / "favicon.svg").write_text(FAVICON, encoding="utf-8")
    chapters, counts = [], {}
    targets = {ch: _heading_targets(read_notebook(release_path(root, ch))) for ch in runs}
    for ch, run in runs.items():
        student = read_notebook(release_path(root, ch))
        page, c = chapter_page(student, read_notebook(run.path), run,
                               f"chapters/{ch}/{ch}.ipynb", targets)
        write_notebook(page, src / "chapters" / f"{ch}.ipynb")
        shutil.copy(release_path(root, ch), src / "_notebooks" / f"{ch}.ipynb")
        counts[ch] = c
        chapters.append({"name": ch, "title": chapter_title(student) or ch,
                         "to_fill": c["to_fill"]})
    mode = mode_name(fast)
    reference = []  # a course without a glossary or bank (the tests' toy course) builds too
    if (root / "utils" / "glossary.json").is_file():
        (src / "glossary.md").write_text(glossary_page(root, targets), encoding="utf-8")
        reference.append("glossary")
    if (root / "utils" / "question_bank.json").is_file():
        (src / "question-bank.md").write_text(bank_page(root, targets), encoding="utf-8")
        reference.append("question-bank")
    (src / "index.md").write_text(landing_page(root, chapters, mode, tuple(reference)),
                                  encoding="utf-8")
    return counts


def run_sphinx(src: Path, out: Path, doctrees: Path) -> list[str]:
    """Build ``src`` into ``out`` with Sphinx's HTML builder; return its warnings (one per line)."""
    from sphinx.application import Sphinx

    warnings = io.StringIO()
    app = Sphinx(str(src), str(src), str(out), str(doctrees), "html", status=io.StringIO(),
                 warning=warnings, freshenv=True, verbosity=0)
    app.build()
    if app.statuscode:
        raise course_error("the book's Sphinx build", "a clean build", f"exit status {app.statuscode}",
                           "read the warnings above:\n" + warnings.getvalue()[-3000:])
    return [w for w in warnings.getvalue().splitlines() if "WARNING" in w or "ERROR" in w]


def build_book(root: str | Path, out: str | Path | None = None, *, fast: bool = True,
               executed: dict | None = None, timeout: int | None = None, log=print) -> BookResult:
    """Build the course's static site into ``out`` (default ``build/book/html``, or
    ``build/book-full/html`` for full outputs) and return a :class:`BookResult`.

    ``executed`` maps chapter -> path of an executed solution notebook to use as is (the tests
    pass their session's FAST runs); chapters not in it go through :func:`executed_chapter`.
    """
    root = Path(root).resolve()
    chapters = find_chapters(root)
    if not chapters:
        raise course_error("the book", "chapters in solutions/", "none", "write a chapter first")
    missing = [ch for ch in chapters if not release_path(root, ch).exists()]
    if missing:
        raise course_error("the book", "a student version in chapters/ for every chapter",
                           f"none for {', '.join(missing)}", "run `python -m utils.course sync`")
    base = root / "build" / ("book" if fast else "book-full")
    out = Path(out).resolve() if out else base / "html"
    start = time.perf_counter()
    runs = {}
    for ch in chapters:
        given = (executed or {}).get(ch)
        if given:
            nb = read_notebook(given)
            if not is_current(nb, read_notebook(solution_path(root, ch)), fast):
                raise course_error(f"executed notebook {given}", f"a clean {mode_name(fast)} run "
                                   f"of today's solutions/{ch}", "a stale or failed run",
                                   "run the chapter again")
            runs[ch] = ExecutedChapter(ch, Path(given), fast, _run_date(nb), describe_machine(), True)
        else:
            runs[ch] = executed_chapter(root, ch, fast=fast, timeout=timeout, log=log)
    src = out.parent / (out.name + "-src")
    counts = write_sources(root, src, runs, fast=fast)
    if out.exists():
        shutil.rmtree(out)
    warnings = run_sphinx(src, out, out.parent / (out.name + "-doctrees"))
    pages = sorted(str(p.relative_to(out)) for p in out.rglob("*.html")
                   if "_static" not in p.relative_to(out).parts)  # the theme's macro files
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    return BookResult(out, mode_name(fast), time.perf_counter() - start, pages, size, warnings,
                      {ch: {k: v for k, v in c.items() if k != "unmatched"} for ch, c in counts.items()},
                      [ch for ch, r in runs.items() if r.reused])


# --------------------------------------------------------------------------- leak scan
_MARKUP = re.compile(r"[*_`$\\{}()\[\]#>|~]")


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", _MARKUP.sub(" ", text)).strip().lower()


_BLOCK_TAG = re.compile(r"</?(?:p|div|pre|li|ul|ol|tr|td|th|table|h[1-6]|br|details|summary|section|"
                        r"blockquote|dt|dd|figure|figcaption)\b[^>]*>", re.IGNORECASE)


def site_text(path: Path) -> str:
    """The readable text of one built file: HTML without tags, a notebook's sources and outputs."""
    raw = path.read_text(encoding="utf-8", errors="replace")
    if path.suffix == ".ipynb":
        try:
            nb = nbformat.reads(raw, as_version=4)
        except Exception:
            return raw
        parts = []
        for c in nb.cells:
            parts.append(c.source)
            for o in c.get("outputs", []):
                parts.append(str(o.get("text", "")))
                parts += [str(v) for v in o.get("data", {}).values() if isinstance(v, str)]
        return "\n".join(parts)
    if path.suffix in (".html", ".htm"):
        raw = _BLOCK_TAG.sub("\n", raw)     # a block starts a new line
        raw = re.sub(r"<[^>]+>", "", raw)  # inline tags split code tokens: nothing in their place
    return html.unescape(raw)


def find_site_leaks(site: str | Path, root: str | Path, chapters: list[str] | None = None) -> list[str]:
    """Solution or hidden-test text of ``solutions/`` found in the built site, as
    ``"<file>: <line>"`` (empty: no leak).

    The secrets are :func:`utils.course.notebooks.secret_lines` of every solution notebook: each line
    between BEGIN/END SOLUTION or BEGIN/END HIDDEN TESTS (code answers, hidden asserts, model
    answers of written questions) that does not also appear outside those regions, nor in any
    chapter's student version (a line public in chapter 01 is no secret of chapter 07). A secret is
    found when a line of a built file equals it once both are stripped of Markdown/HTML markup
    and their whitespace is collapsed, so a model answer rendered as a paragraph is still found
    (the same line-by-line rule as :func:`utils.course.notebooks.find_leaks` for ``chapters/``).
    """
    site, root = Path(site), Path(root)
    chapters = chapters if chapters is not None else find_chapters(root)
    public = set()  # every line a learner sees anyway, in any chapter's student version
    for ch in chapters:
        if release_path(root, ch).exists():
            for cell in read_notebook(release_path(root, ch)).cells:
                public.update(_norm(line) for line in cell.source.splitlines())
    secrets = {}
    for ch in chapters:
        for line in secret_lines(read_notebook(solution_path(root, ch))):
            n = _norm(line)
            if len(n.replace(" ", "")) >= 8 and n not in public:
                secrets[n] = line
    leaks = []
    for path in sorted(site.rglob("*")):
        if not path.is_file() or path.suffix not in (".html", ".txt", ".ipynb", ".js", ".md"):
            continue
        if "mathjax" in path.parts:
            continue
        lines = {_norm(line) for line in site_text(path).splitlines()}
        leaks += [f"{path.relative_to(site)}: {line}" for n, line in secrets.items() if n in lines]
    return leaks
