"""The course as a static website (``python -m utils.course book [--fast | --full] [--out DIR]``).

A book in the d2l / UvA-tutorials sense: every chapter with its executed outputs (figures,
tables, printed numbers), rendered math, the bilingual glossary and the question bank as pages,
Sphinx's search, and on each chapter a box that says how to run it in JupyterLab.

How it is built, offline (Sphinx + MyST-NB + sphinx-book-theme, MathJax shipped by the PyPI
package ``sphinx-mathjax-offline``: no CDN at build or read time):

1. **Outputs.** By default a chapter's outputs are those of its **recorded full-mode run** of the
   shipped code (``data/recorded/<chapter>.json``, written by ``python -m utils.course record``
   after ``course run --full``; :mod:`.recorded`), when that recording is *current*: its code
   cells (ids and sources) equal today's solution notebook. A chapter without a current
   recording falls back to a FAST run, and its page says so. ``--fast`` ignores the recordings
   (FAST runs everywhere); ``--full`` executes full runs now.
   Runs are made by the course's own runner (:func:`utils.course.execute.run_chapter`) into
   ``build/executed/`` (``build/full/executed/`` for ``--full``). A copy already there is reused
   when it is *current*: papermill ran it in the same mode, without an exception, and its cells
   (ids and sources, papermill's injected cell aside) equal today's solution notebook. (A change
   to the engine in ``utils/`` alone does not make a copy stale: delete ``build/executed/`` or
   run ``python -m utils.course run`` to refresh the outputs.)
2. **Student structure.** The chapter pages are rendered from the *student* version in
   ``chapters/``: the outputs are copied onto its non-exercise cells by cell id, and
   the exercise cells (answer stubs, their visible tests, written questions) become "Exercise"
   boxes without outputs. So solutions and hidden tests never reach the site;
   :func:`find_site_leaks` scans the built files for them and ``tests/test_book.py`` fails on any.
   The prose always comes from today's notebook, recorded outputs or not.
3. **Provenance.** Each chapter page opens with a banner naming the run its outputs come from
   (mode, date, machine; for a recording, "recorded run of the shipped code"; for a fallback,
   that no current full-mode recording exists); every output area is labelled with the mode and
   every figure or table output gets a caption saying so. The landing page's chapter table has
   the same per chapter.
4. MyST-NB renders the notebooks with ``nb_execution_mode = "off"``: it never re-executes.
5. **Two editions.** With Chinese catalogs (``solutions/locale/zh/``), a second Sphinx build
   (``language = "zh_CN"``) writes the Chinese edition to ``<out>/zh/`` from the Chinese student
   structure and the *same* runs' outputs (the editions share their code cells), and every page of
   both gets a switch to the same page of the other (:mod:`.book_zh`).

The site is a folder of static files: host it on any static host (GitHub Pages, Netlify, an
nginx folder) or look at it locally with ``python -m http.server -d build/book/html``.

The code, by concern: :mod:`.recorded` and :mod:`.book_runs` (step 1, the recorded and executed
runs), :mod:`.book_pages`
(steps 2 and 3, the pages), this module (Sphinx: sources, configuration, the build) and
:mod:`.book_leaks` (the leak scan of the built site), :mod:`.book_zh` (the Chinese edition and
the language switch).
"""
from __future__ import annotations

import dataclasses
import importlib.util
import io
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import course_error
from .book_leaks import find_site_leaks, site_text
from .book_pages import (_heading_targets, bank_page, chapter_page, chapter_title, glossary_page, landing_page,
                         rewrite_links)
from .book_runs import ExecutedChapter, describe_machine, executed_chapter, is_current, mode_name, run_date
from .book_zh import (SWITCH_CSS, ZH_CONF, ZH_CSS, add_language_switch, bank_page_zh, chinese_student,
                      fix_zh_search, glossary_page_zh, landing_page_zh, localize_page, zh_ready)
from .notebooks import find_chapters, read_notebook, release_path, solution_path, write_notebook
from .recorded import is_recording_current, load_recording, recorded_notebook

#: ``build_book`` and its result are this module's own; the leak scan and the link rewriting are
#: re-exported from :mod:`.book_leaks` and :mod:`.book_pages`, where callers have always found them.
__all__ = ["MODES", "ORIGIN_WORDS", "LANGS", "BookResult", "build_book", "add_lang_argument", "mathjax_dir", "copy_mathjax", "write_sources",
           "run_sphinx", "find_site_leaks", "site_text", "rewrite_links"]


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


#: ``course book --lang``: the editions to build (``both``: English at out/, Chinese at out/zh/).
LANGS = ("both", "en", "zh")


def add_lang_argument(parser) -> None:
    """``--lang en|zh|both`` of ``course book`` (kept here: cli.py is at its size limit)."""
    parser.add_argument("--lang", choices=LANGS, default="both",
                        help="which edition to build: en, zh (中文, at OUT/zh) or both (default), "
                             "with a 中文 / English switch on every page")


#: What a build's outputs are, by :attr:`BookResult.mode`.
MODES = {"recorded": "recorded full-mode outputs where current, FAST elsewhere",
         "FAST": "FAST outputs (--fast)", "full": "outputs of full runs (--full)"}
#: A chapter's line of the summary, by origin (:data:`.book_runs.ORIGINS`).
ORIGIN_WORDS = {"recorded": "recorded full run", "fallback": "FAST (no recording)", "run": "this build's run"}


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
    origins: dict = field(default_factory=dict)    # chapter -> where its outputs come from (ORIGINS)
    languages: tuple = ("en",)                     # the editions built: "en" at out/, "zh" at out/zh/
    zh_chapters: dict = field(default_factory=dict)  # chapter -> counts of its Chinese page

    def summary(self) -> str:
        what = MODES.get(self.mode, f"{self.mode} outputs")
        lines = [f"Built the book ({what}) in {self.seconds:.0f} s: {len(self.pages)} pages, "
                 f"{self.size_bytes / 2**20:.1f} MiB in {self.out}"]
        for ch, c in self.chapters.items():
            lines.append(f"  {ch:<24} {ORIGIN_WORDS[self.origins.get(ch, 'run')]:<22} {c['outputs']:>3} outputs, "
                         f"{c['images']:>3} images, {c['figures']:>3} captioned figures/tables, "
                         f"{c['exercises']:>3} exercise boxes")
        if "zh" in self.languages:
            lines.append(f"  Chinese edition (中文版) in {self.out / 'zh'}: the same outputs, Chinese prose; "
                         "a 中文 / English switch on every page")
        if self.warnings:
            lines.append(f"  {len(self.warnings)} Sphinx warning(s); the first: {self.warnings[0]}")
        lines.append(f"Open {self.out / 'index.html'}, or serve it: python -m http.server -d {self.out}")
        return "\n".join(lines)


def _outputs_label(run: ExecutedChapter) -> str:
    """The landing page's "outputs" column for one chapter."""
    mode = mode_name(run.fast)
    return f"{mode}, recorded {run.date}" if run.origin == "recorded" else mode


def write_sources(root: Path, src: Path, runs: dict, *, mode: str, lang: str = "en") -> dict:
    """Write the Sphinx source folder ``src`` (conf.py, pages, chapter notebooks); return counts.

    ``mode`` is the build's (:data:`MODES`); each run says where its own outputs come from.
    ``lang="zh"``: the Chinese edition (:mod:`.book_zh`), the same runs' outputs on the Chinese
    student structure."""
    zh = lang == "zh"
    if src.exists():
        shutil.rmtree(src)
    (src / "chapters").mkdir(parents=True)
    (src / "_notebooks").mkdir()
    (src / "_static").mkdir()
    (src / "conf.py").write_text(CONF + (ZH_CONF if zh else ""), encoding="utf-8")
    copy_mathjax(src / "_static" / "mathjax")
    (src / "_static" / "course.css").write_text(CSS + SWITCH_CSS + (ZH_CSS if zh else ""), encoding="utf-8")
    (src / "_static" / "favicon.svg").write_text(FAVICON, encoding="utf-8")
    chapters, counts = [], {}
    targets = {ch: _heading_targets(read_notebook(release_path(root, ch))) for ch in runs}
    for ch, run in runs.items():
        student = chinese_student(root, ch) if zh else read_notebook(release_path(root, ch))
        root_rel = f"chapters/{ch}/{ch}.ipynb"
        page, c = chapter_page(student, read_notebook(run.path), run, root_rel, targets)
        if zh:
            localize_page(page, student, run, root_rel)
        write_notebook(page, src / "chapters" / f"{ch}.ipynb")
        if zh:  # the download: the student version, in the page's language
            write_notebook(student, src / "_notebooks" / f"{ch}.ipynb")
        else:
            shutil.copy(release_path(root, ch), src / "_notebooks" / f"{ch}.ipynb")
        counts[ch] = c
        chapters.append({"name": ch, "title": chapter_title(student) or ch,
                         "to_fill": c["to_fill"], "outputs": _outputs_label(run)})
    reference = []  # a course without a glossary or bank (the tests' toy course) builds too
    if (root / "utils" / "glossary.json").is_file():
        (src / "glossary.md").write_text((glossary_page_zh if zh else glossary_page)(root, targets),
                                         encoding="utf-8")
        reference.append("glossary")
    if (root / "utils" / "question_bank.json").is_file():
        (src / "question-bank.md").write_text((bank_page_zh if zh else bank_page)(root, targets),
                                              encoding="utf-8")
        reference.append("question-bank")
    index = (landing_page_zh(chapters, mode, tuple(reference)) if zh
             else landing_page(root, chapters, mode, tuple(reference)))
    (src / "index.md").write_text(index, encoding="utf-8")
    return counts


def run_sphinx(src: Path, out: Path, doctrees: Path) -> list[str]:
    """Build ``src`` into ``out`` with Sphinx's HTML builder; return its warnings (one per line)."""
    from sphinx.application import Sphinx
    from sphinx.util.docutils import docutils_namespace, patch_docutils

    warnings = io.StringIO()
    # a fresh docutils registry per build, as sphinx-build has: the Chinese edition is a second
    # build in the same process
    with patch_docutils(src), docutils_namespace():
        app = Sphinx(str(src), str(src), str(out), str(doctrees), "html", status=io.StringIO(),
                     warning=warnings, freshenv=True, verbosity=0)
        app.build()
    if app.statuscode:
        raise course_error("the book's Sphinx build", "a clean build", f"exit status {app.statuscode}",
                           "read the warnings above:\n" + warnings.getvalue()[-3000:])
    return [w for w in warnings.getvalue().splitlines() if "WARNING" in w or "ERROR" in w]


def _recorded_run(root: Path, chapter: str, folder: Path) -> ExecutedChapter:
    """The chapter's current recording as an executed notebook (written to ``folder``)."""
    rec = load_recording(chapter, root)
    path = folder / f"{chapter}.ipynb"
    write_notebook(recorded_notebook(rec, read_notebook(solution_path(root, chapter))), path)
    return ExecutedChapter(chapter, path, False, rec["date"], rec["machine"], True, "recorded",
                           rec.get("seconds"))


def build_book(root: str | Path, out: str | Path | None = None, *, fast: bool = True,
               recorded: bool = True, executed: dict | None = None, timeout: int | None = None,
               lang: str = "both", log=print) -> BookResult:
    """Build the course's static site into ``out`` (default ``build/book/html``, or
    ``build/book-full/html`` for full outputs) and return a :class:`BookResult`.

    With ``fast`` and ``recorded`` (the default), a chapter with a current recording
    (:func:`~.recorded.is_recording_current`) shows its recorded full-mode outputs and the others
    FAST outputs; ``recorded=False`` (``--fast``) shows FAST outputs everywhere; ``fast=False``
    (``--full``) executes full runs now. ``executed`` maps chapter -> path of an executed solution
    notebook to use as is for a chapter that takes a run (the tests pass their session's FAST
    runs); the others go through :func:`executed_chapter`.

    ``lang`` (:data:`LANGS`): ``"both"`` builds the English edition at ``out`` and the Chinese
    one at ``out/zh`` (:mod:`.book_zh`; English only for a course without catalogs), with a
    language switch on every page; ``"en"`` or ``"zh"`` rebuilds that edition alone.
    """
    root = Path(root).resolve()
    chapters = find_chapters(root)
    if not chapters:
        raise course_error("the book", "chapters in solutions/", "none", "write a chapter first")
    missing = [ch for ch in chapters if not release_path(root, ch).exists()]
    if missing:
        raise course_error("the book", "a student version in chapters/ for every chapter",
                           f"none for {', '.join(missing)}", "run `python -m utils.course sync`")
    if lang not in LANGS:
        raise course_error("the book's language", " or ".join(LANGS), repr(lang), "pass --lang en, zh or both")
    has_zh = zh_ready(root, chapters)
    if lang == "zh" and not has_zh:
        raise course_error("the book's Chinese edition", "catalogs in solutions/locale/zh/", "none",
                           "run `python -m utils.course.translations extract` and translate them")
    languages = ("en", "zh") if lang == "both" and has_zh else ("en",) if lang == "both" else (lang,)
    base = root / "build" / ("book" if fast else "book-full")
    out = Path(out).resolve() if out else base / "html"
    mode = "full" if not fast else "recorded" if recorded else "FAST"
    start = time.perf_counter()
    runs = {}
    for ch in chapters:
        given = (executed or {}).get(ch)
        if mode == "recorded" and is_recording_current(ch, root):
            log(f"  {ch}: recorded full-mode run (data/recorded/{ch}.json, current)")
            runs[ch] = _recorded_run(root, ch, out.parent / (out.name + "-recorded"))
            continue
        if given:
            nb = read_notebook(given)
            if not is_current(nb, read_notebook(solution_path(root, ch)), fast):
                raise course_error(f"executed notebook {given}", f"a clean {mode_name(fast)} run "
                                   f"of today's solutions/{ch}", "a stale or failed run",
                                   "run the chapter again")
            runs[ch] = ExecutedChapter(ch, Path(given), fast, run_date(nb), describe_machine(), True)
        else:
            runs[ch] = executed_chapter(root, ch, fast=fast, timeout=timeout, log=log)
        if mode == "recorded":
            log(f"  {ch}: no current full-mode recording, FAST outputs "
                f"(`python -m utils.course record` after `run --full` makes one)")
            runs[ch] = dataclasses.replace(runs[ch], origin="fallback")
    counts, zh_counts, warnings, zh_out = {}, {}, [], out / "zh"
    if "en" in languages:
        src = out.parent / (out.name + "-src")
        counts = write_sources(root, src, runs, mode=mode)
        keep = out.parent / (out.name + "-zh-kept")  # "--lang en" keeps the Chinese edition
        if lang == "en" and zh_out.is_dir():
            shutil.rmtree(keep, ignore_errors=True)
            shutil.move(zh_out, keep)
        if out.exists():
            shutil.rmtree(out)
        warnings = run_sphinx(src, out, out.parent / (out.name + "-doctrees"))
        if keep.is_dir():
            shutil.move(keep, zh_out)
    if "zh" in languages:
        log("  Chinese edition: the same outputs on the Chinese student structure -> " + str(zh_out))
        src = out.parent / (out.name + "-zh-src")
        zh_counts = write_sources(root, src, runs, mode=mode, lang="zh")
        if zh_out.exists():
            shutil.rmtree(zh_out)
        warnings += [f"zh: {w}" for w in run_sphinx(src, zh_out, out.parent / (out.name + "-zh-doctrees"))]
        fix_zh_search(zh_out)
    if (out / "index.html").is_file() and (zh_out / "index.html").is_file():
        add_language_switch(out, zh_out)
    pages = sorted(str(p.relative_to(out)) for p in out.rglob("*.html")
                   if "_static" not in p.relative_to(out).parts)  # the theme's macro files
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    return BookResult(out, mode, time.perf_counter() - start, pages, size, warnings, _counts(counts),
                      [ch for ch, r in runs.items() if r.reused and r.origin != "recorded"],
                      {ch: r.origin for ch, r in runs.items()}, languages, _counts(zh_counts))


def _counts(counts: dict) -> dict:
    """Per-chapter page counts without the list of unmatched cells."""
    return {ch: {k: v for k, v in c.items() if k != "unmatched"} for ch, c in counts.items()}
