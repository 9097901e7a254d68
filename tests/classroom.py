"""The instructor's side of a classroom, for the exchange and JupyterHub tests.

A temporary nbgrader course (built from the repository's ``solutions/`` with
:class:`utils.course.nbgrader_course.TempCourse`, so it loads the project's ``nbgrader_config.py``)
plus a temporary exchange folder, and the nbgrader commands an instructor types, in the order
INSTRUCTORS.md gives them: generate_assignment, release_assignment, collect, autograde,
generate_feedback, release_feedback, export.

Learners are simulated by :func:`learner_config`: a folder of their own whose
``nbgrader_config.py`` names the exchange, the course and their student id.

The JupyterHub tests share the hub machinery at the end: :func:`hub_config` (a hub on 127.0.0.1
and free ports behind npm's ``configurable-http-proxy``), :func:`running_hub` (started, answered,
and stopped with every process it spawned), :class:`HubUser` (a learner's or instructor's HTTP
session through the hub, as a browser holds it: login cookie, the server's ``_xsrf`` token).
"""
from __future__ import annotations

import csv
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from lab_server import free_port, wait_until_answering
from utils.course.nbgrader_course import TempCourse, course_env
from utils.course.notebooks import find_chapters, read_notebook, test_points

REPO = Path(__file__).resolve().parents[1]
COURSE_ID = "everything-is-a-mapping"

#: The chapter the classroom tests hand out: the real chapter that autogrades fastest in FAST
#: mode on the CI host (each submission runs the whole chapter once).
CLASSROOM_CHAPTER = "04_distillation"


def classroom_chapter() -> str:
    """:data:`CLASSROOM_CHAPTER` if this checkout has it, else the first chapter found."""
    chapters = find_chapters(REPO)
    return CLASSROOM_CHAPTER if CLASSROOM_CHAPTER in chapters else chapters[0]


def run_nbgrader(cwd: Path, *args: str, env: dict | None = None, timeout: float = 300,
                 ) -> subprocess.CompletedProcess:
    """``nbgrader ARGS`` in ``cwd`` (which holds the nbgrader_config.py in force); fail loudly."""
    proc = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=cwd,
                          env=env or course_env(), capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, (f"nbgrader {' '.join(args)} (in {cwd}) exited "
                                  f"{proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def _autograde(course_dir: Path, assignment: str, timeout: float = 1500) -> None:
    """Autograde every collected submission of ``assignment`` in the course at ``course_dir``.

    Every autograde of the classroom tests goes through here: the course's sandboxed
    ``python -m utils.course autograde`` (learner code in bubblewrap, scores recomputed outside
    the kernel), exactly as INSTRUCTORS.md tells an instructor to run it.
    """
    proc = subprocess.run([sys.executable, "-m", "utils.course", "autograde", assignment,
                           "--course-dir", str(course_dir)], cwd=REPO, env=course_env(),
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, (f"course autograde {assignment} (course {course_dir}) exited "
                                  f"{proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")


def make_exchange(path: Path) -> Path:
    """An exchange folder as INSTRUCTORS.md sets it up: world-writable with the sticky bit."""
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o1777)
    return path


class Instructor:
    """A temporary course with ``chapter`` generated into its gradebook, wired to ``exchange``."""

    def __init__(self, folder: Path, exchange: Path, chapter: str, timeout: int = 120):
        self.chapter = chapter
        self.tc = TempCourse(REPO, timeout=timeout, workdir=folder)
        self.path = self.tc.path
        with open(self.path / "nbgrader_config.py", "a") as f:
            f.write(f"c.Exchange.root = {str(exchange)!r}\n"
                    f"c.CourseDirectory.course_id = {COURSE_ID!r}\n")
        self.tc.add_chapter(chapter)
        self.nbgrader("generate_assignment", chapter, "--force")  # records it in gradebook.db

    def nbgrader(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        return run_nbgrader(self.path, *args, timeout=timeout)

    def release(self) -> None:
        self.nbgrader("release_assignment", self.chapter, "--force")

    def collect(self) -> None:
        self.nbgrader("collect", self.chapter)

    def autograde(self) -> None:
        _autograde(self.path, self.chapter)

    def generate_and_release_feedback(self) -> None:
        self.nbgrader("generate_feedback", self.chapter, "--force")
        self.nbgrader("release_feedback", self.chapter)

    def export_csv(self) -> list[dict]:
        out = self.path / "grades.csv"
        self.nbgrader("export", "--to", str(out))
        with open(out, newline="") as f:
            return list(csv.DictReader(f))

    def scores(self, student: str) -> dict[str, tuple[float | None, float]]:
        return self.tc.scores(self.chapter, student)

    def release_notebook(self):
        return read_notebook(self.path / "chapters" / self.chapter / f"{self.chapter}.ipynb")

    def solution_notebook(self):
        return read_notebook(self.path / "solutions" / self.chapter / f"{self.chapter}.ipynb")

    def autograded_points(self) -> dict[str, float]:
        """grade_id -> points of every autograded test cell of the chapter."""
        return test_points(self.release_notebook())


def learner_config(home: Path, exchange: Path, student: str) -> Path:
    """A learner's working folder with the nbgrader config their Jupyter server would load.

    On a hub where every learner is an OS user nbgrader takes the student id from the user
    name; here every learner runs as the same OS user, so the id is set explicitly
    (``CourseDirectory.student_id``), as is the fetch/submit cache (per learner).
    """
    home.mkdir(parents=True, exist_ok=True)
    (home / "nbgrader_config.py").write_text(
        "c = get_config()\n"
        f"c.Exchange.root = {str(exchange)!r}\n"
        f"c.Exchange.cache = {str(home / '.nbgrader-cache')!r}\n"
        f"c.CourseDirectory.course_id = {COURSE_ID!r}\n"
        f"c.CourseDirectory.student_id = {student!r}\n")
    return home


def learner_env(home: Path) -> dict:
    """The environment of a learner's nbgrader commands: their own HOME and no course root."""
    env = course_env(extra={"HOME": str(home)})
    env.pop("JUPYTER_CONFIG_DIR", None)
    return env


# --------------------------------------------------------------------------- a JupyterHub
PROXY = shutil.which("configurable-http-proxy")
BIN = Path(sys.executable).parent
HUB = BIN / "jupyterhub"
HUB_PASSWORD = "course-" + secrets.token_hex(8)


def ours(marker: str) -> list[int]:
    """PIDs of the processes a hub test started (they carry ``marker`` in their environment)."""
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
        left = ours(marker)
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


def hub_config(folder: Path, exchange: Path, marker: str, *, spawner: str = "simple",
               per_user_id: bool = True, extra: list[str] = ()) -> tuple[Path, str]:
    """Write the hub's config and the learners' nbgrader config; return (config file, hub url).

    ``spawner``: ``"simple"`` (every server runs as the test's OS user, homes under
    ``folder/home/<name>``) or ``"localprocess"`` (each hub user is the OS user of that name).
    ``per_user_id``: name each learner's student id after their hub user (needed when they
    share one OS user; with OS users nbgrader takes it from the user name).
    """
    port, hub_port, api_port = free_port(), free_port(), free_port()
    learners_cfg = folder / "learners-config"
    learners_cfg.mkdir()
    # what a hub admin puts in the learners' system-wide nbgrader_config.py (/etc/jupyter/)
    lines = ["import os", "c = get_config()", f"c.Exchange.root = {str(exchange)!r}",
             f"c.CourseDirectory.course_id = {COURSE_ID!r}"]
    if per_user_id:
        lines += ["# all learners share one OS user in this test: name them after their hub user",
                  "c.CourseDirectory.student_id = os.environ['JUPYTERHUB_USER']"]
    (learners_cfg / "nbgrader_config.py").write_text("\n".join(lines) + "\n")
    os.chmod(learners_cfg, 0o755)
    env = {
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": str(REPO),
        "JUPYTER_CONFIG_PATH": str(learners_cfg),
        "COURSE_FAST": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
        "COURSE_HUB_TEST": marker,
    }
    if spawner == "simple":
        spawn = ["c.JupyterHub.spawner_class = 'simple'",
                 f"c.SimpleLocalProcessSpawner.home_dir_template = {str(folder / 'home' / '{username}')!r}"]
    else:
        spawn = ["c.JupyterHub.spawner_class = 'localprocess'"]
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
        f"c.DummyAuthenticator.password = {HUB_PASSWORD!r}",
        *spawn,
        f"c.Spawner.cmd = [{str(BIN / 'jupyterhub-singleuser')!r}]",
        "c.Spawner.args = ['--allow-root', '--LabApp.news_url=',"
        " '--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate']",
        "c.Spawner.default_url = '/lab'",
        f"c.Spawner.environment = {env!r}",
        "c.Spawner.start_timeout = 300",
        "c.Spawner.http_timeout = 300",
        *extra,
    ]) + "\n")
    return cfg, f"http://127.0.0.1:{port}"


@contextmanager
def running_hub(folder: Path, cfg: Path, url: str, marker: str):
    """JupyterHub started on ``cfg``, answering at ``url``; stopped with every process it spawned
    (``marker`` in their environment) when the block ends, whatever happened in it."""
    log = open(folder / "hub.log", "w")
    env = dict(os.environ, COURSE_HUB_TEST=marker)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    proc = subprocess.Popen([str(HUB), "-f", str(cfg)], cwd=folder, env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_until_answering(proc, f"{url}/hub/api", folder / "hub.log", "JupyterHub", 120)
        yield url
    finally:
        _stop(proc, marker)
        log.close()
        assert not ours(marker), "processes started by the hub test are still running"


class HubUser:
    """One user's HTTP session through the hub, as their browser holds it.

    :meth:`start` logs in (the hub's login form, with its ``_xsrf`` field), asks the hub's REST
    API for the user's server and waits until it is ready, then opens ``/user/<name>/`` once so
    the OAuth round trip sets the server's login cookie and ``_xsrf`` cookie. :meth:`post`
    sends what a page's JavaScript sends: the cookies and the ``X-XSRFToken`` header.
    """

    def __init__(self, url: str, name: str, password: str = HUB_PASSWORD):
        import requests

        self.url, self.name, self.password = url, name, password
        self.s = requests.Session()
        self.base = f"{url}/user/{name}"

    def _xsrf(self, path: str) -> str | None:
        return next((c.value for c in self.s.cookies if c.name == "_xsrf" and c.path == path), None)

    def start(self, timeout: float = 300) -> "HubUser":
        self.s.get(f"{self.url}/hub/login", timeout=30).raise_for_status()
        r = self.s.post(f"{self.url}/hub/login", timeout=60, allow_redirects=False, data={
            "username": self.name, "password": self.password, "_xsrf": self._xsrf("/hub/")})
        assert r.status_code in (302, 303), f"hub login of {self.name}: HTTP {r.status_code}"
        api = f"{self.url}/hub/api/users/{self.name}"
        headers = {"X-XSRFToken": self._xsrf("/hub/") or ""}
        r = self.s.post(f"{api}/server", headers=headers, timeout=60)
        assert r.status_code in (201, 202, 400), f"spawning {self.name}: HTTP {r.status_code} {r.text}"
        deadline = time.time() + timeout
        while not (self.s.get(api, headers=headers, timeout=30).json().get("servers", {})
                   .get("", {}).get("ready")):
            assert time.time() < deadline, f"{self.name}'s server was not ready within {timeout:.0f} s"
            time.sleep(1)
        self.s.get(f"{self.base}/", timeout=120).raise_for_status()  # OAuth round trip: server cookies
        return self

    def get(self, path: str, **kw):
        r = self.s.get(f"{self.base}/{path.lstrip('/')}", timeout=kw.pop("timeout", 120), **kw)
        r.raise_for_status()
        return r

    def post(self, path: str, timeout: float = 600, **kw):
        return self.send("POST", path, timeout, **kw)

    def send(self, method: str, path: str, timeout: float = 600, **kw):
        """``method`` on ``/user/<name>/<path>`` with the cookies and the ``X-XSRFToken`` header."""
        token = self._xsrf(f"/user/{self.name}/") or self._xsrf(f"/user/{self.name}")
        r = self.s.request(method, f"{self.base}/{path.lstrip('/')}", timeout=timeout,
                           headers={"X-XSRFToken": token or ""}, **kw)
        r.raise_for_status()
        return r
