"""Chromium and a real JupyterLab server for the browser tests (tests/test_jupyterlab.py, tests/test_widgets_browser.py).

:func:`jupyter_lab` starts JupyterLab on 127.0.0.1 (a free port, a random token, FAST mode for
every kernel, its config, runtime, settings and workspaces inside ``work``), waits until it
answers, yields ``(url, token)`` and stops its whole process group afterwards.
"""
from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
#: Debian's Chromium, driven by Playwright with ``executable_path`` (never ``playwright install``),
#: with the flags this machine's closed network needs (no background connections).
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_answering(proc: subprocess.Popen, url: str, log: Path, name: str, timeout: float) -> None:
    """Poll ``url`` until it answers 200; fail the test with the end of ``log`` if ``proc`` exits
    first or ``timeout`` seconds pass."""
    deadline = time.time() + timeout
    while True:
        if proc.poll() is not None:
            pytest.fail(f"{name} exited early:\n" + log.read_text()[-4000:])
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        if time.time() > deadline:
            pytest.fail(f"{name} did not answer within {timeout:.0f} s:\n" + log.read_text()[-4000:])
        time.sleep(1)


@contextlib.contextmanager
def jupyter_lab(work: Path, start_timeout: float = 180):
    """JupyterLab serving ``work``; yields ``(url, token)``; its log is ``work/lab.log``."""
    port, token = free_port(), secrets.token_hex(16)
    env = dict(os.environ, COURSE_FAST="1", PYTHONPATH=str(REPO),
               OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "2"),
               JUPYTER_CONFIG_DIR=str(work / ".cfg"), JUPYTER_RUNTIME_DIR=str(work / ".runtime"),
               JUPYTERLAB_SETTINGS_DIR=str(work / ".settings"),
               JUPYTERLAB_WORKSPACES_DIR=str(work / ".workspaces"))
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    log = open(work / "lab.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--allow-root",
         "--ip=127.0.0.1", f"--port={port}", "--ServerApp.port_retries=0",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={work}",
         "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
        cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_answering(proc, f"{url}/api/status?token={token}", work / "lab.log", "JupyterLab", start_timeout)
        yield url, token
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()
