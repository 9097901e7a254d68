"""A real JupyterHub with the nbgrader exchange: a learner fetches, edits and submits from a browser.

The test starts, on 127.0.0.1 and free ports only: JupyterHub (``DummyAuthenticator`` with a
shared password, ``SimpleLocalProcessSpawner`` so learners need no OS accounts) behind npm's
``configurable-http-proxy``; each learner gets a JupyterLab single-user server with nbgrader's
lab and server extensions. The instructor (a temporary course, :mod:`classroom`) releases a
chapter into a temporary exchange. Then, in headless Chromium, learner ``ada`` logs in, opens
Nbgrader > Assignment List, sees the chapter under "Released assignments", fetches it, opens the
notebook, writes the first exercise's answer into its cell, saves and submits. The instructor
collects and autogrades; the test checks the points: full marks for that exercise's tests,
nothing for the exercises left as stubs.

All learners run as the OS user that runs the test, so the hub-wide nbgrader config names each
learner's student id after their hub user name (``JUPYTERHUB_USER``); on a hub where every
learner is an OS user, nbgrader takes it from the user name and that line is not needed.

Marked ``hub`` (a few minutes): deselected from the default ``python -m pytest`` run, run by
``.ci/run`` as its own step ``python -m pytest -m hub``.
"""
from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from classroom import COURSE_ID, Instructor, classroom_chapter, make_exchange
from lab_server import CHROMIUM, CHROMIUM_ARGS
from conftest import CHAPTERS, NO_CHAPTERS
from utils.course.notebooks import (cell_by_grade_id, fill_answers, is_answer_cell, nbgrader_meta,
                             read_notebook)
from utils.course.notebooks import tests_of_answer as answer_tests  # not collected as a test

PROXY = shutil.which("configurable-http-proxy")
BIN = Path(sys.executable).parent
HUB = BIN / "jupyterhub"

pytestmark = [
    pytest.mark.hub,
    pytest.mark.skipif(not CHAPTERS, reason=NO_CHAPTERS),
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Chromium not installed at /usr/bin/chromium "
                       "(apt-get install -y chromium; .ci/run does it)"),
    pytest.mark.skipif(PROXY is None, reason="configurable-http-proxy not on PATH "
                       "(npm install -g configurable-http-proxy; .ci/run does it)"),
    pytest.mark.skipif(not HUB.exists(), reason="jupyterhub not installed in this environment "
                       "(python -m pip install -r requirements.txt)"),
]

PASSWORD = "course-" + secrets.token_hex(8)
LEARNER = "ada"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ours(marker: str) -> list[int]:
    """PIDs of the processes this test started (they carry ``marker`` in their environment)."""
    pids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit() and int(d.name) != os.getpid():
            try:
                if marker.encode() in (d / "environ").read_bytes():
                    pids.append(int(d.name))
            except OSError:
                pass
    return pids


def _stop(proc: subprocess.Popen, marker: str) -> None:
    """Stop the hub (it stops the proxy and the servers it spawned), then anything of ours left."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        pass
    for sig in (signal.SIGTERM, signal.SIGKILL):
        left = _ours(marker)
        for pid in left:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        if left:
            time.sleep(3)
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _hub_config(folder: Path, exchange: Path, marker: str) -> tuple[Path, str]:
    """Write the hub's config and the learners' nbgrader config; return (config file, hub url)."""
    port, hub_port, api_port = _free_port(), _free_port(), _free_port()
    learners_cfg = folder / "learners-config"
    learners_cfg.mkdir()
    # what a hub admin puts in the learners' system-wide nbgrader_config.py (/etc/jupyter/)
    (learners_cfg / "nbgrader_config.py").write_text(
        "import os\n"
        "c = get_config()\n"
        f"c.Exchange.root = {str(exchange)!r}\n"
        f"c.CourseDirectory.course_id = {COURSE_ID!r}\n"
        "# all learners share one OS user in this test: name them after their hub user\n"
        "c.CourseDirectory.student_id = os.environ['JUPYTERHUB_USER']\n")
    env = {
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
        "JUPYTER_CONFIG_PATH": str(learners_cfg),
        "COURSE_FAST": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
        "COURSE_HUB_TEST": marker,
    }
    cfg = folder / "jupyterhub_config.py"
    cfg.write_text("\n".join([
        "c = get_config()",
        "c.JupyterHub.ip = '127.0.0.1'",
        f"c.JupyterHub.port = {port}",
        "c.JupyterHub.hub_ip = '127.0.0.1'",
        f"c.JupyterHub.hub_port = {hub_port}",
        f"c.ConfigurableHTTPProxy.api_url = 'http://127.0.0.1:{api_port}'",
        f"c.ConfigurableHTTPProxy.command = [{PROXY!r}]",
        f"c.JupyterHub.db_url = 'sqlite:///{folder / 'jupyterhub.sqlite'}'",
        f"c.JupyterHub.cookie_secret_file = {str(folder / 'cookie_secret')!r}",
        f"c.JupyterHub.pid_file = {str(folder / 'jupyterhub.pid')!r}",
        "c.JupyterHub.cleanup_servers = True",
        "c.JupyterHub.authenticator_class = 'dummy'",
        f"c.DummyAuthenticator.password = {PASSWORD!r}",
        "c.JupyterHub.spawner_class = 'simple'",
        f"c.SimpleLocalProcessSpawner.home_dir_template = {str(folder / 'home' / '{username}')!r}",
        f"c.Spawner.cmd = [{str(BIN / 'jupyterhub-singleuser')!r}]",
        "c.Spawner.args = ['--allow-root', '--LabApp.news_url=',"
        " '--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate']",
        "c.Spawner.default_url = '/lab'",
        f"c.Spawner.environment = {env!r}",
        "c.Spawner.start_timeout = 300",
        "c.Spawner.http_timeout = 300",
    ]) + "\n")
    return cfg, f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    """A running JupyterHub and an instructor who has released the chapter; yields a dict."""
    t0 = time.time()
    folder = tmp_path_factory.mktemp("hub")
    chapter = classroom_chapter()
    exchange = make_exchange(folder / "exchange")
    teacher = Instructor(folder / "course", exchange, chapter)
    teacher.release()

    marker = secrets.token_hex(12)
    cfg, url = _hub_config(folder, exchange, marker)
    log = open(folder / "hub.log", "w")
    env = dict(os.environ, COURSE_HUB_TEST=marker)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    proc = subprocess.Popen([str(HUB), "-f", str(cfg)], cwd=folder, env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.time() + 120
        while True:
            if proc.poll() is not None:
                pytest.fail("JupyterHub exited early:\n" + (folder / "hub.log").read_text()[-4000:])
            try:
                with urllib.request.urlopen(f"{url}/hub/api", timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.time() > deadline:
                pytest.fail("JupyterHub did not answer within 120 s:\n"
                            + (folder / "hub.log").read_text()[-4000:])
            time.sleep(1)
        yield {"url": url, "teacher": teacher, "chapter": chapter, "folder": folder,
               "home": folder / "home" / LEARNER, "t0": t0}
    finally:
        _stop(proc, marker)
        log.close()
        assert not _ours(marker), "processes started by the hub test are still running"


def _log_tail(hub) -> str:
    return (hub["folder"] / "hub.log").read_text()[-4000:]


def _first_answer(release, solution) -> tuple[int, str, str]:
    """(cell index, grade_id, answer source) of the chapter's first code exercise."""
    idx = next(i for i, c in enumerate(release.cells) if is_answer_cell(c))
    gid = nbgrader_meta(release.cells[idx])["grade_id"]
    answer = cell_by_grade_id(fill_answers(release, solution))[gid].source
    return idx, gid, answer


def test_learner_fetches_edits_and_submits_from_jupyterlab_on_a_hub(hub, tmp_path):
    from playwright.sync_api import sync_playwright

    url, teacher, chapter, home = hub["url"], hub["teacher"], hub["chapter"], hub["home"]
    release = teacher.release_notebook()
    idx, gid, answer = _first_answer(release, teacher.solution_notebook())
    mine = home / chapter / f"{chapter}.ipynb"
    shot = tmp_path / "hub.png"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.set_default_timeout(180_000)
        try:
            # log in; the hub spawns ada's JupyterLab and redirects there
            page.goto(f"{url}/hub/login")
            page.fill("#username_input", LEARNER)
            page.fill("#password_input", PASSWORD)
            page.click("#login_submit")
            page.wait_for_url(f"**/user/{LEARNER}/lab**", timeout=300_000)
            page.locator("#jp-main-dock-panel").wait_for()

            # Nbgrader > Assignment List: the released chapter, Fetch
            page.locator(".lm-MenuBar-itemLabel", has_text="Nbgrader").click()
            page.locator(".lm-Menu-itemLabel", has_text="Assignment List").click()
            released = page.locator("#released_assignments_list .list_item", has_text=chapter)
            released.wait_for()
            assert COURSE_ID in released.inner_text()
            released.get_by_role("button", name="Fetch").click()
            fetched = page.locator("#fetched_assignments_list .list_item", has_text=chapter).first
            fetched.wait_for()
            assert mine.is_file(), "Fetch did not put the chapter into the learner's home"

            # open the notebook, write the first exercise's answer into its cell, save
            page.goto(f"{url}/user/{LEARNER}/lab/tree/{chapter}/{chapter}.ipynb")
            page.locator(".jp-Notebook .jp-Cell").nth(idx).wait_for()
            cell = page.locator(".jp-Notebook .jp-Cell").nth(idx)
            cell.scroll_into_view_if_needed()
            cell.locator(".jp-InputArea-editor").click()
            page.keyboard.press("Control+a")
            page.keyboard.insert_text(answer)
            page.keyboard.press("Escape")
            page.keyboard.press("Control+s")
            deadline = time.time() + 60
            while cell_by_grade_id(read_notebook(mine))[gid].source.strip() != answer.strip():
                assert time.time() < deadline, "the edited answer never reached the saved notebook"
                page.wait_for_timeout(1000)

            # back to the Assignment List: Submit
            page.goto(f"{url}/user/{LEARNER}/lab")
            page.locator(".lm-MenuBar-itemLabel", has_text="Nbgrader").click()
            page.locator(".lm-Menu-itemLabel", has_text="Assignment List").click()
            row = page.locator("#fetched_assignments_list .list_item", has_text=chapter).first
            row.get_by_role("button", name="Submit").click()
            page.locator("#submitted_assignments_list .list_item", has_text=chapter).first.wait_for()
            page.screenshot(path=str(shot))
        except Exception:
            page.screenshot(path=str(shot))
            raise AssertionError(f"hub check failed; screenshot {shot}; hub log:\n{_log_tail(hub)}")
        finally:
            browser.close()

    # the instructor's side: collect and autograde what ada submitted
    teacher.collect()
    submitted = teacher.path / "submitted" / LEARNER / chapter / f"{chapter}.ipynb"
    assert cell_by_grade_id(read_notebook(submitted))[gid].source.strip() == answer.strip()
    teacher.autograde()
    points = teacher.autograded_points()
    earned = answer_tests(release, gid)
    got = {g: auto for g, (auto, _) in teacher.scores(LEARNER).items() if g in points}
    assert earned and got == {g: (p if g in earned else 0.0) for g, p in points.items()}, got
    print(f"\nJupyterHub test: {time.time() - hub['t0']:.0f} s wall, from course setup to grades")
