"""The course as a static website (``python -m utils.course book``), built once per session from
the recorded full-mode runs that are current (``data/recorded/``) and, for the other chapters, the
FAST runs the notebook tests already make (``chapter_run`` in conftest.py), then:

* scanned for solution and hidden-test text (none may appear);
* opened in headless Chromium (Debian's ``/usr/bin/chromium`` driven by Playwright, served by a
  local ``http.server`` on 127.0.0.1): every page loads without console errors or failed
  requests, shows its figures, renders its math with the MathJax the site ships, and every
  internal link (page and ``#anchor``) resolves; the built-in search finds a course word.

Set ``COURSE_BOOK_SCREENSHOT=docs/screenshot-chapter.png`` to save the chapter screenshot the
README shows (the test always saves one under its temporary folder).
"""
from __future__ import annotations

import functools
import http.server
import os
import re
import threading
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from lab_server import CHROMIUM, CHROMIUM_ARGS
from conftest import CHAPTERS, NO_CHAPTERS, REPO
from utils.course.book import build_book, find_site_leaks, site_text
from utils.course.notebooks import read_notebook
from utils.course.recorded import is_recording_current

#: What the banner of a page built from a recording / from a FAST fallback says.
RECORDED_BANNER = ("Outputs from a recorded full-mode run", "recorded run of the shipped code",
                   "FAST = False")
FALLBACK_BANNER = ("Outputs from a FAST run", "No current full-mode recording of this chapter exists")
#: An exercise box on a built page (answer stub, its tests, or a written answer).
EXERCISE_BOX = re.compile(r'class="exercise(?:-tests)? admonition"')
NO_CHROMIUM = ("Chromium not installed at /usr/bin/chromium: install it with "
               "`apt-get install -y chromium` (.ci/run does it)")

@pytest.fixture(scope="session")
def book(chapter_run, tmp_path_factory):
    """The site built from the current recordings and this run's FAST runs (shared with
    test_notebooks; one build per session)."""
    assert CHAPTERS, NO_CHAPTERS
    executed = {}
    for ch, run in chapter_run.all(CHAPTERS).items():
        assert run.ok, f"{ch} failed its FAST run, so the book cannot be built: {run.error}"
        executed[ch] = run.output
    out = tmp_path_factory.mktemp("book") / "html"
    result = build_book(REPO, out, fast=True, executed=executed, log=lambda m: None)
    print(result.summary())
    return result


def test_book_builds_every_page_from_recorded_or_fast_outputs(book):
    """The default build: a chapter with a current recording (data/recorded/) shows it, the
    others this session's FAST runs, each page saying which."""
    pages = set(book.pages)
    assert {"index.html", "glossary.html", "question-bank.html", "search.html"} <= pages
    assert {f"chapters/{ch}.html" for ch in CHAPTERS} <= pages
    assert book.mode == "recorded"
    assert book.origins == {ch: "recorded" if is_recording_current(ch, REPO) else "fallback"
                            for ch in CHAPTERS}
    assert not book.warnings, "\n".join(book.warnings[:20])
    with_math = []
    for ch in CHAPTERS:
        text = (book.out / "chapters" / f"{ch}.html").read_text(encoding="utf-8")
        words = " ".join(site_text(book.out / "chapters" / f"{ch}.html").split())
        recorded = book.origins[ch] == "recorded"
        banner = (RECORDED_BANNER if recorded else FALLBACK_BANNER)
        assert all(w in words for w in banner), f"{ch}: no provenance banner saying {banner}"
        assert "Run it yourself in JupyterLab" in words, f"{ch}: no run-it box"
        assert f"jupyter lab chapters/{ch}/{ch}.ipynb" in words
        assert f"localhost:8888/lab/tree/chapters/{ch}/{ch}.ipynb" in text
        assert not re.search(r"""<(?:script|link)[^>]+(?:src|href)=["']https?://""", text), \
            f"{ch}: the page loads something from the network"
        counts = book.chapters[ch]
        assert counts["exercises"] > 0 and len(EXERCISE_BOX.findall(text)) == counts["exercises"]
        assert counts["outputs"] > 0, f"{ch}: no outputs copied from the FAST run"
        if counts["figures"]:
            caption = "Output of the recorded full run" if recorded else "Output of a FAST run"
            assert text.count(caption) >= counts["figures"], f"{ch}: figure without caption"
        if 'class="math' in text:  # Sphinx loads MathJax on the pages that have math
            with_math.append(ch)
            assert "_static/mathjax/tex-chtml.js" in text, f"{ch}: MathJax not served by the site"
    assert with_math, "no chapter page has math"
    index = (book.out / "index.html").read_text(encoding="utf-8")
    assert "everything is a mapping" in index.lower() and "meta-learner" in index


def test_book_shows_no_solution_or_hidden_test(book):
    leaks = find_site_leaks(book.out, REPO)
    assert not leaks, "solution or hidden-test text on the site:\n" + "\n".join(leaks[:30])


def test_leak_scan_finds_planted_solution_text(book, tmp_path):
    """The scan can fail: a hidden-test or solution code line in a code block, and a written
    question's model answer rendered as an HTML paragraph, are each caught."""
    import copy

    from utils.course.notebooks import is_manual_cell, release_path, secret_lines, solution_path

    sol = read_notebook(solution_path(REPO, CHAPTERS[0]))
    code = copy.deepcopy(sol)
    code.cells = [c for c in code.cells if c.cell_type == "code"]
    written = copy.deepcopy(sol)
    written.cells = [c for c in written.cells if is_manual_cell(c) and c.cell_type == "markdown"]
    public = {line.strip() for c in read_notebook(release_path(REPO, CHAPTERS[0])).cells
              for line in c.source.splitlines()}
    code_line = max(secret_lines(code) - public, key=len)
    answer_line = max(secret_lines(written) - public, key=len, default=None)
    assert answer_line, f"{CHAPTERS[0]} has no written question with a model answer"
    planted = tmp_path / "site"
    planted.mkdir()
    (planted / "code.html").write_text(
        f"<p>intro</p><pre><span>{code_line[:5]}</span>{code_line[5:]}</pre>", encoding="utf-8")
    words = answer_line.split(" ")
    (planted / "prose.html").write_text(
        f"<p><strong>{' '.join(words[:2])}</strong> {' '.join(words[2:])}</p>", encoding="utf-8")
    (planted / "clean.html").write_text("<p>nothing here</p>", encoding="utf-8")
    leaks = find_site_leaks(planted, REPO, CHAPTERS[:1])
    assert any(leak.startswith("code.html: ") for leak in leaks), leaks
    assert any(leak.startswith("prose.html: ") for leak in leaks), leaks
    assert not any(leak.startswith("clean.html") for leak in leaks)


# --------------------------------------------------------------------------- in a browser
class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def site_url(book):
    handler = functools.partial(_Quiet, directory=str(book.out))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


_ID_RE = re.compile(r"""\b(?:id|name)\s*=\s*["']([^"']+)["']""")


@functools.lru_cache(maxsize=None)
def _fetch(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            body = r.read()
            ctype = r.headers.get("Content-Type", "")
            return r.status, body.decode("utf-8", "replace") if "html" in ctype else ""
    except urllib.error.HTTPError as exc:
        return exc.code, ""


@pytest.mark.skipif(not CHROMIUM.exists(), reason=NO_CHROMIUM)
def test_book_in_chromium(book, site_url, tmp_path):
    from playwright.sync_api import sync_playwright

    base = urllib.parse.urlsplit(site_url)
    to_visit, seen, report = ["index.html"], set(), {}
    links_checked, anchors_checked, broken = 0, 0, []
    shot = tmp_path / "chapter.png"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            problems: list[str] = []
            page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}")
                    if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url}"))
            page.on("response", lambda r: problems.append(f"HTTP {r.status}: {r.url}")
                    if r.status >= 400 else None)
            while to_visit:
                rel = to_visit.pop(0)
                if rel in seen:
                    continue
                seen.add(rel)
                problems.clear()
                page.goto(site_url + rel, wait_until="load", timeout=120_000)
                math = page.evaluate("""async () => {
                    if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
                        await MathJax.startup.promise; }
                    const m = [...document.querySelectorAll('.math')];
                    return {n: m.length, rendered: m.filter(e => e.querySelector('mjx-container')
                                || e.tagName === 'MJX-CONTAINER').length,
                            errors: document.querySelectorAll('mjx-merror').length,
                            containers: document.querySelectorAll('mjx-container').length};
                }""")
                images = page.evaluate("""async () => {
                    const imgs = [...document.images];
                    imgs.forEach(i => { i.loading = 'eager'; });
                    await Promise.all(imgs.map(i => i.decode().catch(() => null)));
                    return imgs.map(i => ({src: i.currentSrc || i.src, w: i.naturalWidth}));
                }""")
                hrefs = page.evaluate("[...document.querySelectorAll('a[href]')].map(a => a.href)")
                page.wait_for_timeout(200)  # late console messages
                report[rel] = {"math": math, "images": images, "problems": list(problems)}
                for href in hrefs:
                    parts = urllib.parse.urlsplit(href)
                    if parts.scheme not in ("http", "https") or parts.netloc != base.netloc:
                        continue
                    links_checked += 1
                    target = parts._replace(fragment="", query="").geturl()
                    status, body = _fetch(target)
                    if status != 200:
                        broken.append(f"{rel}: {href} -> HTTP {status}")
                        continue
                    if parts.fragment:
                        anchors_checked += 1
                        anchor = urllib.parse.unquote(parts.fragment)
                        if anchor not in set(_ID_RE.findall(body)):
                            broken.append(f"{rel}: {href} -> no element with id {anchor!r}")
                    path = parts.path[len(base.path):]
                    if path.endswith(".html") and "_sources" not in path and path not in seen:
                        to_visit.append(path)
                if rel == f"chapters/{CHAPTERS[1 if len(CHAPTERS) > 1 else 0]}.html":
                    if page.locator("figure").count():  # a figure with its FAST caption in view
                        page.locator("figure").first.scroll_into_view_if_needed()
                        page.evaluate("window.scrollBy(0, -120)")
                    page.screenshot(path=str(shot), full_page=False)
            # the built-in search answers from its own index
            page.goto(site_url + "search.html?q=episode", wait_until="load")
            page.wait_for_selector("#search-results li", timeout=60_000)
            hits = page.locator("#search-results li").count()
        finally:
            browser.close()

    print(f"book: {len(seen)} pages visited, {links_checked} internal links checked "
          f"({anchors_checked} with #anchors), search hits for 'episode': {hits}")
    assert not broken, "broken internal links:\n" + "\n".join(broken[:40])
    assert {f"chapters/{ch}.html" for ch in CHAPTERS} <= seen, "a chapter page is not linked"
    bad = {rel: r["problems"] for rel, r in report.items() if r["problems"]}
    assert not bad, f"console errors or failed requests: {bad}"
    total_math = 0
    for ch in CHAPTERS:
        r = report[f"chapters/{ch}.html"]
        missing = [i["src"] for i in r["images"] if i["w"] == 0]
        assert not missing, f"{ch}: images that did not load: {missing}"
        shown = sum(1 for i in r["images"] if "_images/" in i["src"])
        assert shown >= book.chapters[ch]["images"], f"{ch}: {shown} figures shown, expected " \
            f"{book.chapters[ch]['images']}"
        m = r["math"]
        assert m["rendered"] == m["n"] and m["errors"] == 0, f"{ch}: math not rendered: {m}"
        total_math += m["n"]
    for ch in CHAPTERS:  # the Chinese pages, reached through the switch, show the same figures
        r = report.get(f"zh/chapters/{ch}.html")
        assert r, f"zh/chapters/{ch}.html was not reached from the English site"
        assert not [i["src"] for i in r["images"] if i["w"] == 0], f"zh {ch}: images that did not load"
        assert sum(1 for i in r["images"] if "_images/" in i["src"]) >= book.zh_chapters[ch]["images"]
        assert r["math"]["rendered"] == r["math"]["n"] and r["math"]["errors"] == 0, f"zh {ch}: {r['math']}"
    assert total_math > 0, "no math on any chapter page"
    assert hits > 0
    assert shot.stat().st_size > 20_000
    wanted = os.environ.get("COURSE_BOOK_SCREENSHOT")
    if wanted:
        Path(wanted).parent.mkdir(parents=True, exist_ok=True)
        Path(wanted).write_bytes(shot.read_bytes())


def test_book_without_chapters_or_student_versions_is_a_clear_error(tmp_path, capsys):
    from utils.course.cli import main
    from utils.errors import CourseError
    from conftest import write_toy_course

    assert main(["--root", str(tmp_path), "book"]) == 2
    assert "chapters in solutions/" in capsys.readouterr().err
    write_toy_course(tmp_path)  # solutions/ only: chapters/ not generated yet
    with pytest.raises(CourseError, match="utils.course sync"):
        build_book(tmp_path, tmp_path / "site")


def test_toy_book_reuses_current_runs_and_labels_full_outputs(toy_root, tmp_path):
    """The machinery on the toy course: FAST runs made by the book itself, reused on the next
    build, a full build labelled as such; exercises shown as boxes and no solution on the site."""
    import shutil

    root = tmp_path / "course"
    shutil.copytree(toy_root, root, ignore=shutil.ignore_patterns("build"))
    first = build_book(root, fast=True, log=lambda m: None)
    assert first.reused == [] and first.out == root / "build" / "book" / "html"
    assert (root / "build" / "executed" / "01_toy" / "01_toy.ipynb").is_file()
    page = (first.out / "chapters" / "01_toy.html").read_text(encoding="utf-8")
    assert "Outputs from a FAST run" in page and "FAST mode: True" in page
    assert len(EXERCISE_BOX.findall(page)) == first.chapters["01_toy"]["exercises"] == 7
    text = site_text(first.out / "chapters" / "01_toy.html")
    assert "raise NotImplementedError" in text and "YOUR ANSWER HERE" in text
    assert find_site_leaks(first.out, root) == []
    again = build_book(root, fast=True, log=lambda m: None)
    assert sorted(again.reused) == ["01_toy", "02_other"]
    full = build_book(root, fast=False, log=lambda m: None)
    assert full.reused == [] and full.out == root / "build" / "book-full" / "html"
    page = (full.out / "chapters" / "01_toy.html").read_text(encoding="utf-8")
    assert "Outputs from a full run" in page and "FAST mode: False" in page
    assert "from-full-run" in page and "from-fast-run" not in page


def _set_code(root, chapter: str, cell_id: str, source: str) -> None:
    """Change one non-exercise code cell in the solution and in the student version alike."""
    from utils.course.notebooks import release_path, solution_path, write_notebook

    for path in (solution_path(root, chapter), release_path(root, chapter)):
        nb = read_notebook(path)
        next(c for c in nb.cells if c.get("id") == cell_id).source = source
        write_notebook(nb, path)


def test_toy_book_shows_a_current_recording_and_falls_back_to_fast_when_stale(toy_root, tmp_path, capsys):
    """`run --full`, then `record`: the recorded chapter's page shows the recorded output with the
    banner (full mode, date, machine), the other chapter FAST outputs saying it has no recording;
    a FAST run is refused; after a code cell changes the recording is stale and the page is FAST."""
    import json
    import shutil

    from utils.course.book_runs import describe_machine
    from utils.course.cli import main
    from utils.course.recorded import recording_path, stale_recordings

    root = tmp_path / "course"
    shutil.copytree(toy_root, root, ignore=shutil.ignore_patterns("build"))
    full = root / "build" / "full-run"
    assert main(["--root", str(root), "run", "--full", "--only", "01", "--build", str(full)]) == 0
    assert main(["--root", str(root), "record", "--build", str(full)]) == 0
    rec = json.loads(recording_path("01_toy", root).read_text(encoding="utf-8"))
    assert rec["mode"] == "full" and rec["figures"] == {"toy_answer": 42, "fast": False}
    assert "FAST mode: False" in rec["outputs"]["setup"][0]["text"]
    book = build_book(root, log=lambda m: None)
    assert book.origins == {"01_toy": "recorded", "02_other": "fallback"}
    words = " ".join(site_text(book.out / "chapters" / "01_toy.html").split())
    assert all(w in words for w in RECORDED_BANNER)
    assert f"Run on {rec['date']}, on {describe_machine()}" in words and "FAST mode: False" in words
    other = " ".join(site_text(book.out / "chapters" / "02_other.html").split())
    assert all(w in other for w in FALLBACK_BANNER)
    index = site_text(book.out / "index.html")
    assert f"full, recorded {rec['date']}" in index and "FAST" in index
    forced = build_book(root, recorded=False, log=lambda m: None)  # --fast: never the recording
    assert forced.mode == "FAST" and set(forced.origins.values()) == {"run"}
    assert "FAST mode: True" in site_text(forced.out / "chapters" / "01_toy.html")

    capsys.readouterr()  # the FAST runs the book made are no recording
    assert main(["--root", str(root), "record", "--build", str(root / "build")]) == 2
    err = capsys.readouterr().err
    assert "expected a full-mode run (papermill parameter FAST = False), found a run with FAST = True" in err
    assert "run --full" in err

    _set_code(root, "01_toy", "setup", "import os\nFAST = FAST or os.environ.get('COURSE_FAST') == '1'\n"
              "print('FAST mode now:', FAST)")
    assert stale_recordings(root) == ["01_toy"]
    stale = build_book(root, log=lambda m: None)
    assert stale.origins == {"01_toy": "fallback", "02_other": "fallback"}
    words = " ".join(site_text(stale.out / "chapters" / "01_toy.html").split())
    assert all(w in words for w in FALLBACK_BANNER) and "FAST mode now: True" in words
    assert "FAST mode: False" not in words


def test_links_to_headings_with_an_apostrophe_are_rewritten():
    """A bank link to ``#5.2-The-KL's-arguments-swapped`` reaches the page's slug (the quote inside
    the anchor does not end it), while a quote that closes an attribute still does."""
    from utils.course.book import rewrite_links
    targets = {"04_distillation": {"5.2-The-KL's-arguments-swapped": "52-the-kls-arguments-swapped"}}
    html = '<a href="../04_distillation/04_distillation.ipynb#5.2-The-KL\'s-arguments-swapped">x</a>'
    assert rewrite_links(html, targets) == '<a href="04_distillation.html#52-the-kls-arguments-swapped">x</a>'
    escaped = "<a href='../04_distillation/04_distillation.ipynb#5.2-The-KL&#x27;s-arguments-swapped'>x</a>"
    assert rewrite_links(escaped, targets) == "<a href='04_distillation.html#52-the-kls-arguments-swapped'>x</a>"
    single = "<a href='../04_distillation/04_distillation.ipynb'>x</a>"
    assert rewrite_links(single, targets) == "<a href='04_distillation.html'>x</a>"


# --------------------------------------------------------------------------- the Chinese edition
#: What the Chinese banner says of the outputs (the English run's, by cell id).
ZH_BANNER = ("中英文两版共用同一份代码", "中文版没有另行执行", "目前记录的运行是英文的")
_CJK = re.compile(r"[\u4e00-\u9fff]")


def _toy_catalogs(root) -> str:
    """Chinese catalogs for the toy chapters (each cell's English with a Chinese line added; the
    written answer's model answer gets a Chinese sentence); returns that secret sentence."""
    import polib

    from utils.course.translations import catalog_path, extract_catalog

    secret = "中文参考答案：这一句只写在参考答案里。"
    for ch in ("01_toy", "02_other"):
        extract_catalog(root, ch)
        po = polib.pofile(str(catalog_path(root, ch)), wrapwidth=0)
        for e in po:
            e.msgstr = e.msgid.replace("### END SOLUTION", secret + "\n### END SOLUTION") + "\n\n（中文译文）"
        po.save()
    return secret


def _switch(path: Path) -> str | None:
    m = re.search(r'<a class="lang-switch" href="([^"]+)"', path.read_text(encoding="utf-8"))
    return m.group(1) if m else None


def test_toy_book_in_chinese_with_a_switch_on_every_page(toy_root, tmp_path, capsys):
    """With catalogs, `course book` builds both editions: the Chinese one at out/zh with the same
    outputs, Chinese boxes and banner, the learner's answer cell (never the translated model
    answer), and on every page a switch to the same page of the other edition. The leak scan
    knows the Chinese model answer; `--lang en` keeps the Chinese edition, `--lang zh` without
    catalogs is a clear error."""
    import shutil

    from utils.course.cli import main
    from utils.errors import CourseError

    root = tmp_path / "course"
    shutil.copytree(toy_root, root, ignore=shutil.ignore_patterns("build"))
    with pytest.raises(CourseError, match="catalogs in solutions/locale/zh"):
        build_book(root, lang="zh", log=lambda m: None)
    secret = _toy_catalogs(root)
    book = build_book(root, log=lambda m: None)
    assert book.languages == ("en", "zh") and not book.warnings, book.warnings[:5]
    zh = book.out / "zh"
    assert {f"zh/chapters/{ch}.html" for ch in ("01_toy", "02_other")} <= set(book.pages)
    assert book.zh_chapters["01_toy"] == book.chapters["01_toy"]  # the same outputs and boxes
    page = (zh / "chapters" / "01_toy.html").read_text(encoding="utf-8")
    words = " ".join(site_text(zh / "chapters" / "01_toy.html").split())
    assert '<html lang="zh-CN"' in page and "（中文译文）" in words
    assert all(w in words for w in ZH_BANNER) and "FAST mode: True" in words  # the English run's output
    assert "练习 1 · ex-add" in words and "YOUR ANSWER HERE" in words and "Your code goes here" not in words
    assert secret not in words and len(EXERCISE_BOX.findall(page)) == 7
    assert "ChineseStemmer;" not in (zh / "_static" / "language_data.js").read_text(encoding="utf-8")
    twins = 0
    for path in book.out.rglob("*.html"):
        rel = path.relative_to(book.out)
        if {"_static", "_sources"} & set(rel.parts):
            continue
        href = _switch(path)
        assert href, f"{rel}: no language switch"
        assert (path.parent / href).resolve() == ((book.out / rel.relative_to("zh")) if rel.parts[0] == "zh"
                                                  else zh / rel).resolve(), f"{rel}: switch to {href}"
        twins += 1
    assert twins == 2 * 5  # index, genindex, search and two chapters, in each edition
    assert find_site_leaks(book.out, root) == []
    (book.out / "planted.html").write_text(f"<p><b>{secret[:6]}</b>{secret[6:]}</p>", encoding="utf-8")
    assert find_site_leaks(book.out, root) == [f"planted.html: {secret}"]
    assert main(["--root", str(root), "book", "--lang", "en"]) == 0
    assert (zh / "chapters" / "01_toy.html").is_file() and _switch(book.out / "index.html") == "zh/index.html"
    assert "switch on every page" not in capsys.readouterr().out  # only the English edition was built


def test_book_has_a_chinese_edition_of_every_page_with_the_same_outputs(book):
    """out/zh: every chapter from the Chinese student structure with the English run's outputs
    (the same figures, the same exercise boxes), the landing page, glossary and bank in Chinese
    first, Sphinx in zh_CN; a switch on every page of both editions."""
    assert book.languages == ("en", "zh")
    assert {f"zh/{p}.html" for p in ("index", "glossary", "question-bank", "search")} <= set(book.pages)
    for ch in CHAPTERS:
        path = book.out / "zh" / "chapters" / f"{ch}.html"
        text, words = path.read_text(encoding="utf-8"), " ".join(site_text(path).split())
        assert '<html lang="zh-CN"' in text and len(_CJK.findall(words)) > 1000, f"{ch}: not Chinese"
        assert all(w in words for w in ZH_BANNER), f"{ch}: no Chinese banner saying {ZH_BANNER}"
        zh, en = book.zh_chapters[ch], book.chapters[ch]
        assert (zh["images"], zh["figures"], zh["exercises"]) == (en["images"], en["figures"], en["exercises"])
        assert zh["outputs"] >= en["outputs"] - 1, f"{ch}: outputs lost on the Chinese page"  # parameters cell
        assert len(EXERCISE_BOX.findall(text)) == zh["exercises"]
    glossary = site_text(book.out / "zh" / "glossary.html")
    cells = [line.strip() for line in glossary.splitlines() if line.strip()]
    assert cells[cells.index("元学习") + 1].startswith("meta-learning"), "the Chinese term is not first"
    assert "题库" in site_text(book.out / "zh" / "question-bank.html")
    assert "一切皆映射" in site_text(book.out / "zh" / "index.html")
    missing = [str(p.relative_to(book.out)) for p in book.out.rglob("*.html")
               if not {"_static", "_sources"} & set(p.relative_to(book.out).parts) and not _switch(p)]
    assert not missing, f"pages without a language switch: {missing[:10]}"


@pytest.mark.skipif(not CHROMIUM.exists(), reason=NO_CHROMIUM)
def test_book_switches_language_in_chromium(book, site_url):
    """A Chinese chapter page opened at a section: Chinese text, its figures load, its links
    resolve; the switch leads to the same section of the English page, and back."""
    import json

    from playwright.sync_api import sync_playwright

    from utils.course.book_pages import chapter_title
    from utils.course.notebooks import release_path

    ch = CHAPTERS[1 if len(CHAPTERS) > 1 else 0]
    title = chapter_title(read_notebook(release_path(REPO, ch)))
    base = urllib.parse.urlsplit(site_url)
    state_js = """async () => {
        const imgs = [...document.images]; imgs.forEach(i => { i.loading = 'eager'; });
        await Promise.all(imgs.map(i => i.decode().catch(() => null)));
        return {lang: document.documentElement.lang, cjk: (document.body.innerText.match(/[\u4e00-\u9fff]/g) || []).length,
                images: imgs.map(i => ({src: i.currentSrc || i.src, w: i.naturalWidth})),
                links: [...document.querySelectorAll('a[href]')].map(a => a.href)};
    }"""

    def where(page):
        parts = urllib.parse.urlsplit(page.url)
        return parts.path[len(base.path):], urllib.parse.unquote(parts.fragment)

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(site_url + f"zh/chapters/{ch}.html", wait_until="load")
            anchors = page.eval_on_selector_all("a.lang-anchor", "els => els.map(e => e.id)")
            assert len(anchors) >= 3, f"zh {ch}: {len(anchors)} section anchors"
            target = anchors[len(anchors) // 2]
            page.goto(site_url + f"zh/chapters/{ch}.html#{urllib.parse.quote(target)}", wait_until="load")
            zh = page.evaluate(state_js)
            assert zh["lang"] == "zh-CN" and zh["cjk"] > 1000, (zh["lang"], zh["cjk"])
            assert zh["images"] and all(i["w"] > 0 for i in zh["images"]), zh["images"]
            assert sum("_images/" in i["src"] for i in zh["images"]) >= book.zh_chapters[ch]["images"]
            broken = []
            for href in zh["links"]:
                parts = urllib.parse.urlsplit(href)
                if parts.netloc != base.netloc:
                    continue
                status, body = _fetch(parts._replace(fragment="", query="").geturl())
                if status != 200 or (parts.fragment and urllib.parse.unquote(parts.fragment)
                                     not in set(_ID_RE.findall(body))):
                    broken.append(f"{href} -> {status}")
            assert not broken, broken[:20]
            with page.expect_navigation():
                page.click("a.lang-switch")
            assert where(page) == (f"chapters/{ch}.html", target), page.url
            en = page.evaluate(state_js)
            assert en["lang"] == "en" and title in page.title()
            assert page.evaluate(f"!!document.getElementById({json.dumps(target)})")
            assert all(i["w"] > 0 for i in en["images"])
            assert page.locator("a.lang-switch").inner_text().strip() == "中文"
            with page.expect_navigation():
                page.click("a.lang-switch")
            assert where(page) == (f"zh/chapters/{ch}.html", target), page.url
            assert page.evaluate("document.documentElement.lang") == "zh-CN"
            assert page.locator("a.lang-switch").inner_text().strip() == "English"
            page.goto(site_url + "zh/search.html?q=episode", wait_until="load")  # Sphinx's zh search
            page.wait_for_selector("#search-results li", timeout=60_000)
            assert page.locator("#search-results li").count() > 0
        finally:
            browser.close()
