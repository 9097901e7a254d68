"""Two learners on a real JupyterHub, kept apart by the operating system (issue 27, item 3).

nbgrader's exchange protects one learner's submission and feedback from another only through
file permissions, so the learners must be separate OS users for the check to mean anything.
Run as root (CI does), the fixture creates two throwaway OS users (random names, removed in its
teardown even when a test fails) and a hub with ``LocalProcessSpawner``: each learner's
JupyterLab runs as that user. Each fetches the chapter, saves a notebook and submits it through
their own server's nbgrader API (what the Assignment List's buttons post); the instructor (root,
course folder private to root) collects, autogrades, generates and releases feedback; each
learner fetches their feedback through their server.

Then processes of each learner (``runuser -u <learner>``, the uid their server runs as) try the
other's files: listing the exchange's inbound and feedback folders, and reading the instructor's
source and gradebook, must be refused; feedback reaches only its owner. nbgrader's model beyond
that: a submission folder's name carries a random string and its files are readable by anyone
who knows it (INSTRUCTORS.md, "Learners kept apart"); the test prints what such a learner could do.

Skipped when not root (no OS users can be made) and where the hub's tools are missing.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from classroom import (BIN, COURSE_ID, HUB, PROXY, HubUser, Instructor, classroom_chapter, hub_config,
                       make_exchange, running_hub)
from conftest import CHAPTERS, NO_CHAPTERS
from utils.course.notebooks import fill_answers, read_notebook

pytestmark = [
    pytest.mark.hub,
    pytest.mark.skipif(not CHAPTERS, reason=NO_CHAPTERS),
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root: the two learners must be separate OS "
                       "users (useradd), and the hub must spawn their servers as them"),
    pytest.mark.skipif(not (shutil.which("useradd") and shutil.which("runuser")),
                       reason="useradd / runuser not found (package passwd / util-linux)"),
    pytest.mark.skipif(PROXY is None, reason="configurable-http-proxy not on PATH "
                       "(npm install -g configurable-http-proxy; .ci/run does it)"),
    pytest.mark.skipif(not HUB.exists(), reason="jupyterhub not installed in this environment"),
]

#: what a learner's process tries, run as that learner: what it tried -> allowed / denied / the error
PROBE = r'''
import json, os, sys
inbound, feedback, source, gradebook, course, other_sub, other_fb = sys.argv[1:8]
def attempt(f):
    try:
        f()
        return "allowed"
    except PermissionError:
        return "denied"
    except OSError as e:
        return type(e).__name__
def overwrite(path):
    with open(path, "r+b") as f:
        f.write(b"{}")
print(json.dumps({
    "list the exchange's inbound": attempt(lambda: os.listdir(inbound)),
    "list the exchange's feedback": attempt(lambda: os.listdir(feedback)),
    "read the instructor's source": attempt(lambda: open(source, "rb").read()),
    "read the gradebook": attempt(lambda: open(gradebook, "rb").read()),
    "list the course folder": attempt(lambda: os.listdir(course)),
    "read the other's submission, knowing its secret name": attempt(lambda: open(other_sub, "rb").read()),
    "overwrite the other's submission in place": attempt(lambda: overwrite(other_sub)),
    "read the other's feedback, knowing its secret name": attempt(lambda: open(other_fb, "rb").read()),
}))
'''
MUST_BE_DENIED = ("list the exchange's inbound", "list the exchange's feedback",
                  "read the instructor's source", "read the gradebook", "list the course folder",
                  "overwrite the other's submission in place")


def read_notebook_json(content: dict):
    import nbformat

    return nbformat.from_dict(content)


def _runs_as(user: str, python: str) -> bool:
    return subprocess.run(["runuser", "-u", user, "--", python, "-c", "import jupyterhub, nbgrader"],
                          capture_output=True, timeout=120, cwd="/").returncode == 0


def _learner_server(folder: Path, user: str) -> tuple[str, list[str]]:
    """(a Python ``user`` can run, hub config lines that start a learner's server with it).

    This environment's interpreter may live where other users cannot run it (a pyenv under
    /root, mode 0700). Then a bare venv of the system's Python of the same version, whose
    ``.pth`` file points at this environment's site-packages, runs the same packages as ``user``
    (with this environment's Jupyter config and data: server extensions, JupyterLab's assets).
    """
    if _runs_as(user, sys.executable):
        return sys.executable, []
    import site

    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    system = shutil.which(f"python{version}", path="/usr/bin:/usr/local/bin")
    if system is None:
        pytest.skip(f"{sys.executable} cannot be run by other users and there is no system "
                    f"python{version} to run the learners' servers with; make the environment "
                    "from a Python every user can run (.ci/run does: python3 -m venv)")
    venv = folder / "learner-python"
    subprocess.run([system, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    (venv / "lib" / f"python{version}" / "site-packages" / "course-env.pth").write_text(
        "\n".join(site.getsitepackages()) + "\n")
    python = str(venv / "bin" / "python")
    if not _runs_as(user, python):
        pytest.skip(f"neither {sys.executable} nor a system python{version} with its packages "
                    f"can import jupyterhub and nbgrader as {user}: make the environment's folders "
                    f"readable by other users (chmod o+rx on {sys.prefix} and the folders above it)")
    env = {"JUPYTER_CONFIG_PATH": f"{folder / 'learners-config'}:{sys.prefix}/etc/jupyter",
           "JUPYTER_PATH": f"{sys.prefix}/share/jupyter"}
    return python, [f"c.Spawner.cmd = {[python, '-m', 'jupyterhub.singleuser']!r}",
            f"c.Spawner.environment.update({env!r})"]


def _sources(cells) -> list[tuple[str, str]]:
    return [(c["cell_type"], c["source"]) for c in cells]


def _useradd(name: str) -> None:
    subprocess.run(["useradd", "--create-home", "--user-group", "--shell", "/bin/bash", name],
                   check=True, capture_output=True, text=True, timeout=60)


def _userdel(name: str) -> None:
    subprocess.run(["userdel", "--remove", "--force", name], capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def two_learners():
    """Two OS users, a hub spawning them, one round trip; yields what the tests inspect."""
    suffix = secrets.token_hex(3)
    names = [f"ada{suffix}", f"bob{suffix}"]
    shared = Path(tempfile.mkdtemp(prefix="course-hub-users-"))
    os.chmod(shared, 0o755)  # the learners reach the exchange and their config through it
    made = []
    try:
        for n in names:
            _useradd(n)
            made.append(n)
        chapter = classroom_chapter()
        exchange = make_exchange(shared / "exchange")
        teacher = Instructor(shared / "instructor", exchange, chapter)
        os.chmod(teacher.path, 0o700)  # the instructor's course folder: theirs alone
        teacher.release()
        marker = secrets.token_hex(12)
        python, lines = _learner_server(shared, names[0])
        cfg, url = hub_config(shared, exchange, marker, spawner="localprocess", per_user_id=False,
                              extra=lines)
        with running_hub(shared, cfg, url, marker):
            try:
                result = dict(_round_trip(url, teacher, chapter, exchange, names), python=python)
            except Exception as exc:
                log = (shared / "hub.log").read_text()[-4000:]
                raise AssertionError(f"{exc}\nhub log:\n{log}") from exc
            yield result
    finally:
        for n in made:
            _userdel(n)
        shutil.rmtree(shared, ignore_errors=True)


def _round_trip(url, teacher, chapter, exchange, names) -> dict:
    ada, bob = names
    solution = teacher.solution_notebook()
    args = {"course_id": COURSE_ID, "assignment_id": chapter}
    users, saved = {}, {}
    for name in names:
        u = users[name] = HubUser(url, name).start()
        u.post("assignments/fetch", data=args)
        path = f"api/contents/{chapter}/{chapter}.ipynb"
        nb = u.get(path).json()["content"]
        if name == ada:  # ada answers everything; bob submits the chapter untouched
            nb = fill_answers(read_notebook_json(nb), solution)
        u.send("PUT", path, json={"type": "notebook", "format": "json", "content": nb})
        saved[name] = _sources(u.get(path).json()["content"]["cells"])
        u.post("assignments/submit", data=args)
    inbound = exchange / COURSE_ID / "inbound"
    subs = {n: next(inbound.glob(f"{n}+{chapter}+*")) for n in names}
    teacher.collect()
    teacher.autograde()
    teacher.generate_and_release_feedback()
    fetched = {}
    for name in names:
        users[name].post("assignments/fetch_feedback", data=args)
        home = Path(os.path.expanduser(f"~{name}"))
        fetched[name] = sorted(home.glob(f"{chapter}/feedback/*/*.html"))
    return {"teacher": teacher, "chapter": chapter, "names": names, "saved": saved, "subs": subs,
            "fetched": fetched, "exchange": exchange, "inbound": inbound,
            "feedback": exchange / COURSE_ID / "feedback"}


def _probe(c: dict, me: str, other: str) -> dict[str, str]:
    t, ch = c["teacher"], c["chapter"]
    other_fb = next(c["feedback"].glob("*.html"), c["feedback"] / "none.html")
    mine = c["fetched"][me][0].read_bytes() if c["fetched"][me] else b""
    for f in c["feedback"].glob("*.html"):  # the other's feedback: the one that is not mine
        if f.read_bytes() != mine:
            other_fb = f
    argv = [str(c["inbound"]), str(c["feedback"]), str(t.path / "solutions" / ch / f"{ch}.ipynb"),
            str(t.path / "gradebook.db"), str(t.path), str(c["subs"][other] / f"{ch}.ipynb"), str(other_fb)]
    proc = subprocess.run(["runuser", "-u", me, "--", c["python"], "-c", PROBE, *argv],
                          capture_output=True, text=True, timeout=120, cwd="/")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_each_learners_submission_reaches_the_instructor_as_they_saved_it(two_learners):
    c = two_learners
    for name in c["names"]:
        got = read_notebook(c["teacher"].path / "submitted" / name / c["chapter"] / f"{c['chapter']}.ipynb")
        assert _sources(got.cells) == c["saved"][name], name
        assert c["subs"][name].stat().st_uid == _uid(name)  # submitted by the learner's own OS user


def _uid(name: str) -> int:
    import pwd

    return pwd.getpwnam(name).pw_uid


@pytest.mark.parametrize("who", [0, 1], ids=["ada-probes-bob", "bob-probes-ada"])
def test_a_learner_cannot_list_the_exchange_nor_reach_the_instructors_files(two_learners, who):
    c = two_learners
    me, other = c["names"][who], c["names"][1 - who]
    seen = _probe(c, me, other)
    print(f"\n{me} trying {other}'s and the instructor's files: {json.dumps(seen, indent=1)}")
    assert {k: seen[k] for k in MUST_BE_DENIED} == {k: "denied" for k in MUST_BE_DENIED}, seen


def test_feedback_reaches_only_its_owner(two_learners):
    c = two_learners
    t, ch = c["teacher"], c["chapter"]
    for name in c["names"]:
        assert len(c["fetched"][name]) == 1, (name, c["fetched"][name])
        own = t.path / "feedback" / name / ch / f"{ch}.html"
        assert c["fetched"][name][0].read_bytes() == own.read_bytes(), name
        assert c["fetched"][name][0].stat().st_uid == _uid(name)
    ada, bob = c["names"]
    assert c["fetched"][ada][0].read_bytes() != c["fetched"][bob][0].read_bytes()
