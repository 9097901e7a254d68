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

The instructor ("teacher") has a single-user server of their own on the same hub, started in the
course folder, so nbgrader's formgrader runs there with the course's ``nbgrader_config.py`` in
force. A hostile learner ("eve") submits through the exchange an answer that tries to overwrite a
file outside its scratch folder, read the gradebook and copy the answer from the instructor's
solutions; the instructor collects it and the test posts what Formgrader's **Autograde** button
posts (``/formgrader/api/submission/<assignment>/<student>/autograde``, login cookie and
``X-XSRFToken``) through the hub. It gains no points, the file is untouched, and the gradebook
holds exactly the scores recomputed from the notebook the sandbox executed.

All learners run as the OS user that runs the test, so the hub-wide nbgrader config names each
learner's student id after their hub user name (``JUPYTERHUB_USER``); on a hub where every
learner is an OS user, nbgrader takes it from the user name and that line is not needed.

Marked ``hub`` (a few minutes): deselected from the default ``python -m pytest`` run, run by
``.ci/run`` as its own step ``python -m pytest -m hub``.
"""
from __future__ import annotations

import json
import secrets
import time
from pathlib import Path

import pytest

from classroom import (BIN, COURSE_ID, HUB, HUB_PASSWORD as PASSWORD, PROXY, HubUser, Instructor,
                       classroom_chapter, hub_config, learner_config, learner_env, make_exchange,
                       run_nbgrader, running_hub)
from lab_server import CHROMIUM, CHROMIUM_ARGS
from conftest import CHAPTERS, NO_CHAPTERS, set_answer
from utils.course.bench_class import escape_answer
from utils.course.grading_scores import graded_cells, scores_from_notebook
from utils.course.notebooks import (cell_by_grade_id, fill_answers, is_answer_cell, nbgrader_meta,
                             read_notebook, write_notebook)
from utils.course.notebooks import tests_of_answer as answer_tests  # not collected as a test
from utils.course.sandbox import sandbox_status

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

LEARNER = "ada"
TEACHER = "teacher"   # the instructor's hub user: their server starts in the course folder
HOSTILE = "eve"       # submits through the exchange, grading happens from Formgrader's button


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    """A running JupyterHub and an instructor who has released the chapter; yields a dict."""
    t0 = time.time()
    folder = tmp_path_factory.mktemp("hub")
    chapter = classroom_chapter()
    exchange = make_exchange(folder / "exchange")
    teacher = Instructor(folder / "home" / TEACHER, exchange, chapter)
    teacher.release()

    marker = secrets.token_hex(12)
    cfg, url = hub_config(folder, exchange, marker)
    with running_hub(folder, cfg, url, marker):
        yield {"url": url, "teacher": teacher, "chapter": chapter, "folder": folder,
               "exchange": exchange, "home": folder / "home" / LEARNER, "t0": t0}


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


@pytest.mark.skipif(not sandbox_status()[0], reason=f"no sandbox here: {sandbox_status()[1]}")
def test_formgraders_autograde_button_on_the_hub_grades_a_hostile_submission_in_the_sandbox(hub):
    url, teacher, chapter, folder = hub["url"], hub["teacher"], hub["chapter"], hub["folder"]
    release, solution = teacher.release_notebook(), teacher.solution_notebook()
    _, gid, _ = _first_answer(release, solution)
    canary = folder / "outside-scratch.txt"
    canary.write_text("the instructor's file\n")
    gradebook = teacher.path / "gradebook.db"
    # unsandboxed, the attack would succeed: its targets exist and this OS user can reach them
    assert (teacher.path / "solutions" / chapter / f"{chapter}.ipynb").is_file() and gradebook.is_file()

    # eve fetches through the exchange, answers everything but replaces one answer by the attack
    home = learner_config(folder / "learners" / HOSTILE, hub["exchange"], HOSTILE)
    run_nbgrader(home, "fetch_assignment", chapter, env=learner_env(home))
    mine = home / chapter / f"{chapter}.ipynb"
    write_notebook(set_answer(fill_answers(read_notebook(mine), solution), gid,
                              escape_answer(teacher.path, chapter, gid, canary)), mine)
    run_nbgrader(home, "submit", chapter, env=learner_env(home))
    teacher.collect()

    # the instructor's server on the hub; Formgrader's Autograde button, as its page posts it
    me = HubUser(url, TEACHER).start()
    listed = me.get(f"formgrader/api/submissions/{chapter}").json()
    assert HOSTILE in {s["student"] for s in listed}, listed
    reply = json.loads(me.post(f"formgrader/api/submission/{chapter}/{HOSTILE}/autograde").text)
    assert reply.get("success") is True, reply.get("error") or reply

    # no points for the attack, nothing outside the scratch folder touched
    assert canary.read_text() == "the instructor's file\n"
    points = teacher.autograded_points()
    got = {g: auto for g, (auto, _) in teacher.scores(HOSTILE).items() if g in points}
    lost = answer_tests(release, gid)
    assert lost and all(got[g] == 0 for g in lost), got
    assert all(got[g] == p for g, p in points.items() if g not in lost), got  # the rest is graded
    # the gradebook holds what the sandboxed run gives: scores recomputed from the executed notebook
    executed = read_notebook(teacher.path / "autograded" / HOSTILE / chapter / f"{chapter}.ipynb")
    again = scores_from_notebook(executed, graded_cells(solution))
    assert got == {g: again[g][0] for g in points}, (got, again)
    print(f"\nformgrader on the hub: {time.time() - hub['t0']:.0f} s wall since course setup")
