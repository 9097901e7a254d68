"""The FAST models shipped in data/checkpoints/cache (utils.cache.shipped_cache_dir): looked up after
the user's cache, only under their exact key, reported by cache_origin, small, and one set per chapter."""
import torch
import pytest

from utils import cache
from utils.cache import cache_origin, cached_torch, shipped_cache_dir
from utils.checkpoints import SHIPPED_CACHE
from utils.errors import CourseError


def _builder(value, calls):
    def build():
        calls.append(value)
        return {"value": value}
    return build


def test_user_cache_then_shipped_then_build(tmp_path, monkeypatch):
    user, shipped = tmp_path / "cache", tmp_path / "shipped"
    monkeypatch.setenv("COURSE_CACHE_DIR", str(user))
    monkeypatch.setenv("COURSE_SHIPPED_CACHE_DIR", str(shipped))
    calls = []
    build = _builder(1, calls)
    assert cached_torch("toy", {"n": 1}, build) == {"value": 1} and calls == [1]
    assert cache_origin("toy") == "trained in this run"
    # move the file to the shipped folder: found there, not rebuilt
    shipped.mkdir()
    (made,) = user.glob("toy-*.pt")
    made.rename(shipped / made.name)
    assert cached_torch("toy", {"n": 1}, build) == {"value": 1} and calls == [1]
    assert cache_origin("toy").startswith("shipped in data/checkpoints/cache")
    # other settings: another key, so the shipped file is not used
    assert cached_torch("toy", {"n": 2}, build) == {"value": 1} and calls == [1, 1]
    assert cache_origin("toy") == "trained in this run"
    # the user's own cache wins over the shipped file
    torch.save({"value": "mine"}, user / made.name)
    assert cached_torch("toy", {"n": 1}, build) == {"value": "mine"}
    assert cache_origin("toy").startswith("loaded from data/cache")
    # refresh always trains
    assert cached_torch("toy", {"n": 1}, build, refresh=True) == {"value": 1} and len(calls) == 3


def test_corrupt_shipped_file_is_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("COURSE_SHIPPED_CACHE_DIR", str(tmp_path / "shipped"))
    calls = []
    cached_torch("bad", {}, _builder(7, calls))
    (made,) = (tmp_path / "cache").glob("bad-*.pt")
    (tmp_path / "shipped").mkdir()
    (tmp_path / "shipped" / made.name).write_bytes(b"not a torch file")
    made.unlink()
    assert cached_torch("bad", {}, _builder(7, calls)) == {"value": 7} and calls == [7, 7]
    assert cache_origin("bad") == "trained in this run"


def test_cache_origin_of_an_unknown_name_says_what_to_do():
    with pytest.raises(CourseError, match="call cached_torch"):
        cache_origin("never-cached-name")


def test_shipped_files_are_small_loadable_and_named_per_chapter(monkeypatch):
    monkeypatch.delenv("COURSE_SHIPPED_CACHE_DIR", raising=False)
    files = sorted(shipped_cache_dir().glob("*.pt"))
    prefixes = [p for ps in SHIPPED_CACHE.values() for p in ps]
    for chapter, ps in SHIPPED_CACHE.items():
        assert any(f.name.startswith(ps) for f in files), \
            f"chapter {chapter}: nothing shipped; run `python -m utils.course ship-cache {chapter}`"
    for f in files:
        assert f.name.startswith(tuple(prefixes)), f"{f.name}: not a shipped chapter model ({prefixes})"
        obj = torch.load(f, weights_only=False)
        assert isinstance(obj, dict) and "state" in obj and "seconds" in obj, f.name
    total = sum(f.stat().st_size for f in files)
    assert total < 8 * 2**20, f"shipped FAST models should stay a few MB, found {total / 2**20:.1f} MiB"
    assert cache.shipped_cache_dir() == cache.PROJECT_ROOT / "data" / "checkpoints" / "cache"
