"""A real JupyterLab (127.0.0.1, random port, token) in headless Chromium renders a chapter and a widget.

The notebook is a copy (JupyterLab may save what it opens): the first chapter's student
version when one exists, else the toy chapter. A cell displaying an ``ipywidgets.IntSlider``
is put first and run from the browser; the test waits for the widget's DOM and saves a
screenshot. Skipped, with the reason, when Debian's Chromium (``/usr/bin/chromium``) is absent;
``.ci/run`` installs it.
"""
from __future__ import annotations

import re
import shutil
import time

import pytest
from nbformat.v4 import new_code_cell

from lab_server import CHROMIUM, CHROMIUM_ARGS, jupyter_lab
from conftest import CHAPTERS, REPO, toy_solution
from utils.course.notebooks import read_notebook, release_path, solution_path, write_notebook

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(),
                                reason="Chromium not installed at /usr/bin/chromium "
                                       "(apt-get install -y chromium; .ci/run does it)")

WIDGET_CELL = ("import ipywidgets as widgets\n"
               "widgets.IntSlider(value=7, min=0, max=10, description='probe')")



def _title(nb) -> str:
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("#"):
                    return line.lstrip("#").strip()
    return ""


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server on 127.0.0.1 serving a temporary folder; yields (url, token, notebook name, title)."""
    work = tmp_path_factory.mktemp("lab")
    if CHAPTERS:
        ch = CHAPTERS[0]
        src = release_path(REPO, ch) if release_path(REPO, ch).exists() else solution_path(REPO, ch)
        nb, name = read_notebook(src), f"{ch}.ipynb"
        for f in src.parent.iterdir():  # data files next to it
            if f.is_file() and f.suffix != ".ipynb":
                shutil.copy(f, work / f.name)
    else:
        nb, name = toy_solution(), "01_toy.ipynb"
    nb.cells.insert(0, new_code_cell(WIDGET_CELL, id="widget-probe"))
    write_notebook(nb, work / name)

    with jupyter_lab(work) as (url, token):
        yield url, token, name, _title(nb), work


def test_jupyterlab_renders_chapter_and_widget(lab, tmp_path):
    from playwright.sync_api import sync_playwright

    url, token, name, title, work = lab
    shot = tmp_path / "jupyterlab.png"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(f"{url}/lab/tree/{name}?token={token}", timeout=120_000)
            page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=120_000)
            if title:  # the chapter's prose is rendered as markdown
                page.locator(".jp-RenderedMarkdown", has_text=title).first.wait_for(timeout=120_000)
            # wait until the kernel is connected (status bar "<kernel> | Idle"), then run the
            # widget cell (the first one) from the browser
            page.locator(".jp-StatusBar-Widget", has_text=re.compile(r"\| Idle")).first.wait_for(
                timeout=180_000)
            page.locator(".jp-Cell").first.locator(".jp-InputArea-editor").click()
            page.keyboard.press("Shift+Enter")
            deadline = time.time() + 180
            while page.locator(".jupyter-widgets.widget-slider").count() == 0:
                if page.locator(".jp-Dialog .jp-mod-accept").count():  # "Select Kernel": accept
                    page.locator(".jp-Dialog .jp-mod-accept").first.click()
                assert time.time() < deadline, "the IntSlider did not render within 180 s"
                page.wait_for_timeout(1000)
            page.screenshot(path=str(shot), full_page=True)
            assert page.locator(".widget-slider").count() >= 1
            assert page.locator(".jupyter-widgets").first.is_visible()
            assert "probe" in page.locator(".widget-slider").first.inner_text()
        except Exception:
            page.screenshot(path=str(shot))
            log = (work / "lab.log").read_text()[-3000:]
            raise AssertionError(f"JupyterLab check failed; screenshot {shot}; server log:\n{log}")
        finally:
            browser.close()
    assert shot.stat().st_size > 10_000
    assert re.match(r"^[0-9a-f]{32}$", token)
