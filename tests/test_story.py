"""Rankings over seeds and checked claims (utils.story, ch.ranking / ch.claim)."""
from __future__ import annotations

import json

import pytest

from utils.chapter import start_chapter
from utils.errors import CourseError
from utils.story import read_ranking, read_story


def test_a_ranking_is_separated_only_where_every_seed_agrees():
    r = read_ranking("r", {"a": [0.9, 0.91, 0.92], "b": [0.8, 0.95, 0.7], "c": [0.1, 0.2, 0.3]})
    assert r.order == ["a", "b", "c"] and r.separated == [False, True]
    assert not r.holds and r.pair_holds("b", "c") and not r.pair_holds("a", "b")
    assert "a ~ b > c" in r.format()


def test_fewer_than_three_seeds_separate_nothing():
    r = read_ranking("r", {"a": [0.9, 0.95], "b": [0.1, 0.2]})
    assert r.separated == [False] and not r.holds


def test_lower_is_better_orders_by_smallest_mean():
    r = read_ranking("mse", {"a": [1.0, 1.1, 1.2], "b": [0.5, 0.6, 0.4]}, higher_is_better=False)
    assert r.order == ["b", "a"] and r.holds


def test_bad_scores_get_a_clear_error():
    with pytest.raises(CourseError, match="same number"):
        read_ranking("r", {"a": [1, 2, 3], "b": [1, 2]})
    with pytest.raises(CourseError, match="at least two methods"):
        read_ranking("r", {"a": [1, 2, 3]})


def test_claims_and_rankings_are_recorded_for_bench_story(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("COURSE_FIGURES_DIR", str(tmp_path))
    ch = start_chapter("01_mapping", FAST=True)
    ch.claim("it-holds", "cell-md", 2 > 1)
    with pytest.raises(AssertionError, match=r"\[✓ it-fails\] \(cell cell-md\).*too small"):
        ch.claim("it-fails", "cell-md", 1 > 2, "too small")
    ch.ranking("pair", {"a": [0.5], "b": [0.4]})
    story = read_story(tmp_path, "01_mapping")
    assert story["claims"] == {"it-holds": True}
    assert story["rankings"]["pair"]["order"] == ["a", "b"] and story["rankings"]["pair"]["mode"] == "FAST"
    assert "FAST cannot rank these" in capsys.readouterr().out
    json.dumps(story)


# --------------------------------------------------------------------------- bench story verdicts
from utils.course.bench_story import story_rows, verdict  # noqa: E402


def _r(order, separated, seeds=3):
    return {"order": order, "separated": separated, "seeds": seeds}


def test_story_verdicts():
    full = _r(["a", "b", "c"], [True, True])
    assert verdict(_r(["a", "b", "c"], [True, True]), full) == "agree"
    assert verdict(_r(["a", "b", "c"], [False, True], seeds=1), full) == "FAST cannot rank (labelled)"
    assert verdict(_r(["b", "a", "c"], [True, True]), full) == "DISAGREE"
    assert verdict(_r(["a", "b"], [True]), _r(["a", "b"], [False])) == "DISAGREE"   # FAST says more than full
    assert verdict({**_r(["b", "a", "c"], [True, True]), "fast_decides": False}, full) == "FAST cannot rank (labelled)"
    assert verdict(None, full) == "full mode only" and verdict(full, None) == "no full record"


def test_story_rows_cover_both_sides():
    rows = story_rows(["01_x"], {"01_x": {"rankings": {"r": _r(["a", "b"], [True])}}},
                      {"01_x": {"rankings": {"r": _r(["a", "b"], [True]), "s": _r(["a", "b"], [True])}}})
    assert [(r[1], r[4]) for r in rows] == [("r", "agree"), ("s", "full mode only")]


def test_numpy_figures_and_results_count_as_their_value():
    import numpy as np
    from utils.results import MetaResult
    r = read_ranking("r", {"a": np.array([0.9, 0.8, 0.7]), "b": [MetaResult("accuracy", 0.5, 0.01, [0.5])] * 3})
    assert r.order == ["a", "b"] and r.holds
