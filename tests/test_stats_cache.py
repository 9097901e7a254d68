"""Validation selection, seed spread and code-versioned cache keys (utils.stats, utils.cache)."""
import math

import pytest

from utils import cache
from utils.cache import cached_torch, code_version
from utils.errors import CourseError
from utils.stats import mean_ci95, ranking_holds, seed_spread, select_on_validation


def test_select_on_validation_picks_best_and_records_scores():
    val = {0.001: 0.9, 0.01: 0.3, 0.1: 0.5}
    sel = select_on_validation([0.001, 0.01, 0.1], val.get, higher_is_better=False)
    assert sel.best == 0.01 and sel.scores == val and sel.split == "validation"
    sel = select_on_validation([1, 2, 3], {1: 0.2, 2: 0.7, 3: 0.7}.get)
    assert sel.best == 2, "ties go to the earliest candidate"
    assert "chosen on validation" in str(sel)


def test_select_on_validation_never_picks_a_diverged_run():
    sel = select_on_validation([0.01, 1.0], {0.01: 0.5, 1.0: float("nan")}.get, higher_is_better=False)
    assert sel.best == 0.01
    sel = select_on_validation([0.01, 1.0], {0.01: 0.5, 1.0: float("inf")}.get, higher_is_better=True)
    assert sel.best == 0.01
    with pytest.raises(CourseError, match="finite score"):
        select_on_validation([1.0], lambda v: float("nan"))
    with pytest.raises(CourseError, match="at least one value"):
        select_on_validation([], lambda v: 0.0)


def test_seed_spread_and_ranking():
    s = seed_spread([0.5, 0.7, 0.6])
    assert s.n == 3 and math.isclose(s.mean, 0.6) and math.isclose(s.std, 0.1)
    assert (s.low, s.high) == (0.5, 0.7)
    assert "over 3 seeds" in s.format(percent=True, digits=1) and "60.0%" in s.format(percent=True, digits=1)
    with pytest.raises(CourseError, match="at least 2"):
        seed_spread([0.5])
    with pytest.raises(CourseError, match="finite"):
        seed_spread([0.5, float("nan")])
    assert ranking_holds([0.3, 0.2, 0.4], [0.5, 0.6, 0.5], higher_is_better=False)
    assert not ranking_holds([0.9, 0.2, 0.9], [0.5, 0.6, 0.5])
    with pytest.raises(CourseError, match="at least 3"):
        ranking_holds([1, 2], [0, 1])


def test_episode_ci_is_not_the_seed_spread():
    # two "seeds" whose episode CIs do not overlap: the per-model CI says nothing about training
    a, b = [0.50, 0.52] * 300, [0.60, 0.62] * 300
    ha, hb = mean_ci95(a)[1], mean_ci95(b)[1]
    spread = seed_spread([mean_ci95(a)[0], mean_ci95(b)[0]])
    assert spread.std > 10 * max(ha, hb)


def _train_a():
    return {"w": 1}


def _train_b():
    return {"w": 2}


def test_code_version_changes_with_the_code():
    assert code_version(_train_a) == code_version(_train_a)
    assert code_version(_train_a) != code_version(_train_b)
    assert code_version(_train_a, _train_b) != code_version(_train_a)
    assert len(code_version(seed_spread)) == 16
    with pytest.raises(CourseError, match="at least one"):
        code_version()


def test_cache_key_holds_the_code_version(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path))
    calls = []

    def build_one():
        calls.append(1)
        return {"v": 1}

    def build_two():                      # same settings, other training code
        calls.append(2)
        return {"v": 2}

    assert cached_torch("m", {"s": 1}, build_one) == {"v": 1}
    assert cached_torch("m", {"s": 1}, build_one) == {"v": 1} and calls == [1], "second call loads"
    assert cached_torch("m", {"s": 1}, build_two) == {"v": 2}, "changed code must not load the old file"
    assert cached_torch("m", {"s": 1}, build_one, code=(_train_a,)) == {"v": 1}
    assert calls == [1, 2, 1], "extra code objects are part of the key"
    assert len(list(tmp_path.glob("m-*.pt"))) == 3
    assert cache.cache_dir() == tmp_path
