"""The grading sandbox (utils.course.sandbox): what a kernel inside it can and cannot see or do."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from nbformat.v4 import new_code_cell, new_notebook

from conftest import REPO
from utils.errors import CourseError
from utils.course.sandbox import _python_dirs, execute_notebook, sandbox_status

needs_sandbox = pytest.mark.skipif(not sandbox_status()[0],
                                   reason=f"no sandbox here: {sandbox_status()[1]}")

HOME = Path(os.path.expanduser("~"))
#: a few of the user's own files (the sandbox must not show them)
HOME_FILES = [str(p) for p in sorted(HOME.iterdir())[:50] if p.is_file()][:5] if HOME.is_dir() else []

PROBE = f'''
import json, os, socket
def writable(path):
    try:
        with open(os.path.join(path, ".probe"), "w") as f:
            f.write("x")
        os.remove(os.path.join(path, ".probe"))  # unsandboxed, this is the real folder
        return True
    except OSError:
        return False
def network():
    try:
        socket.create_connection(("1.1.1.1", 53), timeout=3).close()
        return True
    except OSError:
        return False
import utils
print(json.dumps({{
    "repo": os.path.exists({str(REPO)!r}),
    "repo_entries": sorted(os.listdir({str(REPO)!r})) if os.path.isdir({str(REPO)!r}) else [],
    "solutions": os.path.exists({str(REPO / "solutions")!r}),
    "home": [p for p in {HOME_FILES!r} if os.path.exists(p)],
    "engine": utils.__file__,
    "engine_writable": writable(os.path.dirname(utils.__file__)),
    "usr_writable": writable("/usr"),
    "work_writable": writable(os.getcwd()),
    "work_files": sorted(f for f in os.listdir(os.getcwd()) if f != ".probe"),
    "network": network(),
}}))
'''


def _probe(sandbox):
    nb = new_notebook(cells=[new_code_cell(PROBE, id="probe")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    ex = execute_notebook(nb, timeout=60, sandbox=sandbox)
    text = "".join(o.get("text", "") for o in ex.notebook.cells[0].outputs)
    assert text, ex.notebook.cells[0].outputs
    return ex, json.loads(text)


@needs_sandbox
def test_sandbox_hides_course_files_home_and_network():
    ex, seen = _probe(True)
    assert ex.sandboxed and ex.sandbox_note == ""
    # A virtual environment inside the checkout (README: python -m venv .venv) is mounted read-only
    # at its own path, so the checkout's folder may exist as a skeleton holding only that venv.
    venvs_inside = {Path(d).relative_to(REPO).parts[0] for d in _python_dirs()
                    if Path(d).is_relative_to(REPO)}
    assert set(seen["repo_entries"]) <= venvs_inside and not seen["solutions"], seen
    assert seen["home"] == [], seen
    assert seen["engine"].startswith("/course/engine/"), seen
    assert not seen["engine_writable"] and not seen["usr_writable"], seen
    assert seen["work_writable"] and seen["work_files"] == ["notebook.ipynb"], seen
    assert not seen["network"], seen


def test_unsandboxed_run_says_so_and_required_sandbox_refuses(monkeypatch):
    monkeypatch.setenv("COURSE_SANDBOX", "off")
    ex, seen = _probe(None)
    assert not ex.sandboxed and ex.sandbox_note.startswith("ran UNSANDBOXED"), ex.sandbox_note
    assert seen["repo"]  # nothing is hidden: this is why instructors must not grade like this
    with pytest.raises(CourseError, match="--unsafe"):
        execute_notebook(new_notebook(cells=[]), timeout=10, sandbox=True)


@needs_sandbox
def test_python_environment_under_tmp_is_mounted(tmp_path, monkeypatch):
    """CI makes its fresh venv under /tmp, which the sandbox replaces by its own private /tmp: a
    Python folder there must still appear, read-only, at its own path (a CI run once found every
    grade at 0 because bubblewrap could not make that mount point)."""
    import utils.course.sandbox as sandbox
    fake_env = tmp_path / "course-ci-x" / "venv"
    fake_env.mkdir(parents=True)
    (fake_env / "marker.txt").write_text("venv")
    assert str(fake_env).startswith("/tmp/"), fake_env
    real = sandbox._python_dirs()
    monkeypatch.setattr(sandbox, "_python_dirs", lambda: real + [str(fake_env)])
    code = (f"import os; p = {str(fake_env)!r}\n"
            "print(open(os.path.join(p, 'marker.txt')).read(), os.access(p, os.W_OK))")
    nb = new_notebook(cells=[new_code_cell(code, id="probe")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    ex = execute_notebook(nb, timeout=60, sandbox=True)
    text = "".join(o.get("text", "") for o in ex.notebook.cells[0].outputs)
    assert ex.sandboxed and text.split() == ["venv", "False"], (ex.sandbox_note, ex.notebook.cells[0].outputs)
