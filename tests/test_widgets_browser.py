"""The chapters' own widgets, used from a real browser (JupyterLab in headless Chromium).

For every chapter with a widget (the episode browser, the adapt-a-fresh-task player, the
temperature, sparsity and interpolation sliders, the flashcards and the mock interview) the
test opens the chapter's student copy, with the exercises answered as a learner who finished
them would have, in one JupyterLab server started with ``COURSE_FAST=1``. From the browser it
runs every cell above the widget (Run > Run All Above Selected Cell) and the widget cell, then
moves the widget's first slider one step with the keyboard (or presses the card's button) and
checks that what it drives changed: the figure's image (its PNG data) or the card's text. No
cell may show a traceback.

Skipped, with the reason, when Debian's Chromium is absent; ``.ci/run`` installs it.
"""
from __future__ import annotations

import json
import re
import shutil
import time
import urllib.request

import pytest

from lab_server import CHROMIUM, CHROMIUM_ARGS, jupyter_lab
from conftest import CHAPTERS, REPO
from utils.course.notebooks import fill_answers, read_notebook, release_path, solution_path, write_notebook

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(),
                                reason="Chromium not installed at /usr/bin/chromium "
                                       "(apt-get install -y chromium; .ci/run does it)")

#: chapter -> (id of the widget cell, how it is driven): "slider" moves the first slider one step
#: and watches the figure; a button label presses that button and watches the card's text.
WIDGETS = {
    "01_mapping": ("widget", "slider"),             # episode browser
    "02_maml_vs_transfer": ("widget", "slider"),    # adapt-a-fresh-task player
    "04_distillation": ("widget", "slider"),        # temperature slider
    "05_compression": ("widget", "slider"),         # sparsity slider
    "06_fusion": ("widget", "slider"),              # interpolation slider
    "07_interview": ("flashcards", "Reveal answer"),
    "07_interview/mock": ("mock", "Start"),
}
CASES = [k for k in WIDGETS if k.split("/")[0] in CHAPTERS]
TRACEBACK = re.compile(r"Traceback \(most recent call last\)|Cell In\[\d+\], line \d+")


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """One JupyterLab (127.0.0.1, token, COURSE_FAST=1) serving filled student copies; yields (url, token, work)."""
    work = tmp_path_factory.mktemp("widgets-lab")
    for ch in {k.split("/")[0] for k in CASES}:
        src = release_path(REPO, ch)
        (work / ch).mkdir()
        for f in src.parent.iterdir():  # data files next to the notebook
            if f.is_file() and f.suffix != ".ipynb":
                shutil.copy(f, work / ch / f.name)
        done = fill_answers(read_notebook(src), read_notebook(solution_path(REPO, ch)))
        write_notebook(done, work / ch / f"{ch}.ipynb")
    # every cell rendered (no windowing: the widget cell may be far down) and no news toast
    settings = work / ".settings"
    for name, value in [("notebook-extension/tracker", {"windowingMode": "none"}),
                        ("apputils-extension/notification", {"fetchNews": "false"})]:
        path = settings / "@jupyterlab" / f"{name}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value))
    with jupyter_lab(work) as (url, token):
        yield url, token, work


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


def _wait_idle(page, timeout_s: float) -> None:
    """Wait until the kernel is connected and idle (status bar "<kernel> | Idle")."""
    deadline = time.time() + timeout_s
    page.wait_for_timeout(1500)
    while not page.locator(".jp-StatusBar-Widget", has_text=re.compile(r"\| Idle")).count():
        if page.locator(".jp-Dialog .jp-mod-accept").count():  # "Select Kernel": accept
            page.locator(".jp-Dialog .jp-mod-accept").first.click()
        assert time.time() < deadline, f"the kernel was not idle within {timeout_s:.0f} s"
        page.wait_for_timeout(1000)


def _menu(page, menu: str, item: str) -> None:
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(f"^{menu}$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=item).first.click()


def _poll(what, until, timeout_s: float, message: str):
    deadline = time.time() + timeout_s
    while True:
        value = what()
        if until(value):
            return value
        assert time.time() < deadline, message
        time.sleep(1)


def test_widget_cases_are_found():
    """A broken discovery (no chapter, or WIDGETS naming none of them) fails instead of skipping."""
    assert CASES, (f"no widget case found: WIDGETS names {sorted(WIDGETS)}, chapters found "
                   f"{CHAPTERS}; fix WIDGETS or the chapter discovery")


@pytest.mark.parametrize("case", CASES)
def test_widget_drives_its_output_in_the_browser(case, lab, browser, tmp_path):
    url, token, work = lab
    ch = case.split("/")[0]
    cell_id, drive = WIDGETS[case]
    nb = read_notebook(work / ch / f"{ch}.ipynb")
    idx = next(i for i, c in enumerate(nb.cells) if c.get("id") == cell_id)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(120_000)
    shot = tmp_path / f"{case.replace('/', '-')}.png"
    try:
        space = re.sub(r"\W", "-", case)  # a workspace of its own: no tabs of the previous chapter
        page.goto(f"{url}/lab/workspaces/{space}/tree/{ch}/{ch}.ipynb?token={token}")
        cells = page.locator(".jp-Notebook .jp-Cell")
        cells.nth(idx).wait_for()
        _wait_idle(page, 180)
        cell = cells.nth(idx)
        cell.scroll_into_view_if_needed()
        cell.locator(".jp-InputPrompt").first.click()  # select the widget cell (command mode)
        if idx:  # run the cells above it; the widget cell stays the active one
            _menu(page, "Run", "Run All Above Selected Cell")
        cell.locator(".jp-InputPrompt").first.click()  # only the widget cell selected again
        _menu(page, "Run", re.compile(r"^Run Selected Cell and Do not Advance$"))  # queued after them
        box = cell.locator(".jp-OutputArea .widget-vbox").first
        box.wait_for(timeout=900_000)  # everything above runs first (FAST mode)
        _wait_idle(page, 900)

        if drive == "slider":
            image = box.locator(".widget-output img").first
            image.wait_for(timeout=120_000)
            before = image.get_attribute("src")
            readout = box.locator(".widget-readout").first.inner_text()
            handle = box.locator(".widget-slider .noUi-handle").first
            handle.focus()
            page.keyboard.press("ArrowRight")
            _poll(lambda: box.locator(".widget-readout").first.inner_text(), lambda v: v != readout,
                  30, "the slider did not move with the arrow key")
            after = _poll(lambda: image.get_attribute("src") if image.count() else None,
                          lambda v: v is not None and v != before, 300,
                          "the figure did not change after moving the slider")
            assert after.startswith("data:image/png") and before.startswith("data:image/png")
        else:
            card = box.locator(".widget-html-content").first
            before = card.inner_text()
            box.get_by_role("button", name=drive).click()
            after = _poll(lambda: card.inner_text(), lambda v: v != before, 60,
                          f"the card did not change after pressing {drive!r}")
            assert after.strip()
        outputs = page.locator(".jp-OutputArea-output").all_inner_texts()
        errors = [t[:300] for t in outputs if TRACEBACK.search(t)]
        assert not errors, f"{case}: a cell shows an error:\n" + "\n".join(errors)
        page.screenshot(path=str(shot))
    except Exception as exc:
        page.screenshot(path=str(shot))
        log = (work / "lab.log").read_text()[-2000:]
        raise AssertionError(f"{case}: {exc}\nscreenshot {shot}; server log:\n{log}") from exc
    finally:
        page.close()
        _shut_down_kernels(url, token)


def _shut_down_kernels(url: str, token: str) -> None:
    """End the chapter's kernel (through the server's REST API) so the next chapter has the CPU."""
    with urllib.request.urlopen(f"{url}/api/sessions?token={token}", timeout=30) as r:
        sessions = json.load(r)
    for s in sessions:
        req = urllib.request.Request(f"{url}/api/sessions/{s['id']}?token={token}", method="DELETE")
        urllib.request.urlopen(req, timeout=30).close()
