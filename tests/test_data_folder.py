"""The top-level ``data/`` folder: its README, the Omniglot manifest the loader reads, and the
git-ignored ``cache/`` that exists in a fresh clone."""
from __future__ import annotations

import hashlib
import json
import re
import subprocess
import zipfile

import pytest

from conftest import REPO
from utils import omniglot
from utils.errors import CourseError

DATA = REPO / "data"
MANIFEST = DATA / "omniglot_manifest.json"


def git_ignores(path: str) -> bool:
    """Whether git ignores ``path`` (relative to the repository); skips the test without git or
    outside a checkout."""
    try:
        out = subprocess.run(["git", "-C", str(REPO), "check-ignore", "-q", path])
    except FileNotFoundError:
        pytest.skip("git is not installed")
    if out.returncode == 128:
        pytest.skip("not a git checkout")
    return out.returncode == 0


def test_data_readme_states_the_policy():
    text = (DATA / "README.md").read_text(encoding="utf-8")
    for words in ("No network at run time", "data/cache/", "atomic", "data/checkpoints/",
                  "omniglot_manifest.json", "COURSE_CACHE_DIR", "REFRESH_CACHE"):
        assert words in text, f"data/README.md does not mention {words!r}"


def test_manifest_lists_every_official_file_with_url_and_checksum():
    data = json.loads(MANIFEST.read_text(encoding="utf-8"))
    assert data["url_prefix"].startswith("https://")
    names = {f"{s}.zip" for s in set(omniglot.SETS.values())} | {"all_runs.zip"}
    assert set(data["files"]) == names
    for name, f in data["files"].items():
        assert f["path"].endswith(name)
        assert f["md5"] is None or re.fullmatch(r"[0-9a-f]{32}", f["md5"]), name
    assert data["files"]["all_runs.zip"]["path"] == "one-shot-classification/all_runs.zip"


def test_loader_reads_the_manifest_not_a_copy():
    data = json.loads(MANIFEST.read_text(encoding="utf-8"))
    assert omniglot.MANIFEST_PATH == MANIFEST
    assert omniglot.URL_PREFIX == data["url_prefix"]
    assert omniglot.KNOWN_MD5 == {n: f["md5"] for n, f in data["files"].items() if f["md5"]}
    assert omniglot.KNOWN_MD5["images_background.zip"] == "68d2efa1b9178cc56df9314c21c6e718"
    # no second copy of a checksum in the loader's source
    source = (REPO / "utils" / "omniglot.py").read_text(encoding="utf-8")
    assert not re.search(r"[0-9a-f]{32}", source)


def test_manifest_errors_are_clear(tmp_path):
    bad = tmp_path / "m.json"
    bad.write_text('{"files": {"a.zip": {"md5": null}}}', encoding="utf-8")
    with pytest.raises(CourseError, match="url_prefix"):
        omniglot.load_manifest(bad)
    with pytest.raises(CourseError, match="no such file"):
        omniglot.load_manifest(tmp_path / "missing.json")


def test_download_fetches_all_runs_from_its_manifest_path(tmp_path, monkeypatch):
    """all_runs.zip lives in a subfolder of the release; the download follows the manifest."""
    server = tmp_path / "server" / "one-shot-classification"
    server.mkdir(parents=True)
    with zipfile.ZipFile(server / "all_runs.zip", "w") as zf:
        zf.writestr("run01/class_labels.txt", "")
    md5 = hashlib.md5((server / "all_runs.zip").read_bytes()).hexdigest()
    monkeypatch.setattr(omniglot, "URL_PREFIX", (tmp_path / "server").as_uri() + "/")
    got = omniglot.download_omniglot(tmp_path / "dest", files=("all_runs.zip",),
                                     expected_md5={"all_runs.zip": md5})
    assert got[0].read_bytes() == (server / "all_runs.zip").read_bytes()


def test_cache_folder_exists_and_its_contents_are_ignored():
    assert (DATA / "cache").is_dir() and (DATA / "cache" / ".gitignore").is_file()
    assert git_ignores("data/cache/x.pt"), "data/cache/x.pt is not git-ignored"
    assert not git_ignores("data/cache/.gitignore"), "data/cache/.gitignore itself must be tracked"


def test_shipped_omniglot_is_tracked_and_other_zips_are_not():
    """data/omniglot/ ships the two minimal sets with their LICENSE and README; anything else put
    there (the full sets, all_runs.zip) stays out of git."""
    data = json.loads(MANIFEST.read_text(encoding="utf-8"))
    shipped = sorted(n for n, f in data["files"].items() if f.get("shipped"))
    assert shipped == ["images_background_small1.zip", "images_background_small2.zip"]
    for name in shipped:
        assert re.fullmatch(r"[0-9a-f]{64}", data["files"][name]["sha256"])
    for name in shipped + ["LICENSE", "README.md"]:
        assert not git_ignores(f"data/omniglot/{name}"), name
    assert git_ignores("data/omniglot/images_background.zip"), "a downloaded full set in data/omniglot/ must stay out of git"
    text = (DATA / "README.md").read_text(encoding="utf-8")
    assert "data/omniglot" in text or "omniglot/images_background_small1.zip" in text
