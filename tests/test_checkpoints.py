"""The shipped checkpoints (data/checkpoints/) are what the course's code trains now.

For every checkpoint: its manifest's settings equal the recipe's (settings hash), its recorded
code version equals the recipe's source hash, loading it reproduces the validation figure the full
run recorded, and a short retrain with the recipe reproduces the first training losses the full
run recorded (tolerance: 2% relative on their mean, 10% on each of the first ten; the runs are
seeded and deterministic on one machine, the tolerance absorbs other CPUs' rounding).
"""
import json
import math

import pytest
import torch

from utils import checkpoints as ck
from utils import sinusoid_lab as sl
from utils.cache import settings_key
from utils.errors import CourseError
from utils.sinusoid_lab import REPTILE_SGD, SINE_METHODS, make_sine_learner, sine_recipe, train_sine_learner

SHORT = 20   # iterations of the short retrain
# every shipped manifest is checked; seed 0 of every method (and the Reptile diagnosis) must be shipped
SHIPPED = sorted(p.stem for p in ck.checkpoint_dir().glob("ch02-sine-*.json"))
ALL = [(m["settings"]["method"], m["seed"]) for m in (json.loads((ck.checkpoint_dir() / f"{n}.json").read_text())
                                                      for n in SHIPPED)]


def _manifest(method, seed):
    return ck.read_manifest(sl.sine_name(method, seed))


def test_seed_zero_of_every_method_is_shipped():
    for method in SINE_METHODS + (REPTILE_SGD,):
        assert sl.sine_name(method, 0) in SHIPPED, f"missing: run `python -m utils.course train ch02-sine --seeds 0`"
        assert (ck.checkpoint_dir() / f"{sl.sine_name(method, 0)}.pt").exists()


def test_gitignore_keeps_checkpoints():
    text = (ck.PROJECT_ROOT / ".gitignore").read_text()
    assert "data/checkpoints" not in text, "data/checkpoints/ must be committed"
    total = sum(p.stat().st_size for p in ck.checkpoint_dir().glob("*"))
    assert total < 5 * 2**20, f"checkpoints should stay a few MB, found {total / 2**20:.1f} MiB"


@pytest.mark.parametrize("method,seed", ALL)
def test_manifest_matches_the_recipe(method, seed):
    m = _manifest(method, seed)
    assert m["settings"] == json.loads(json.dumps(sine_recipe(method))), "recipe changed: retrain the checkpoint"
    assert m["settings_hash"] == settings_key(sine_recipe(method))
    assert m["code_version"] == sl.sine_code_version(), f"training code changed since: rerun `{m['command']}`"
    assert m["seed"] == seed and "utils.course train" in m["command"]
    assert len(m["curve_head"]) == ck.CURVE_HEAD


@pytest.mark.parametrize("method,seed", ALL)
def test_loaded_checkpoint_reproduces_its_recorded_metric(method, seed):
    settings = sine_recipe(method)
    state, m = ck.load_checkpoint(sl.sine_name(method, seed), settings)
    learner = make_sine_learner(settings, seed=123)          # other initial weights: the state must replace them
    learner.load_state_dict(state)
    got = sl.sine_validation_metric(learner, settings)
    for key, (one, ten) in m["metric"]["validation_mse_1_and_10_steps"].items():
        for a, b in ((got[key][0], one), (got[key][1], ten)):
            assert (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-3, abs_tol=1e-4), (key, a, b)


@pytest.mark.parametrize("method", SINE_METHODS + (REPTILE_SGD,))
def test_short_retrain_reproduces_the_recorded_start(method):
    settings = sine_recipe(method)
    m = _manifest(method, 0)
    torch.set_num_threads(1)
    learner = make_sine_learner(settings, 0)
    curve = train_sine_learner(learner, settings, 0, iterations=SHORT)
    head = m["curve_head"][:SHORT]
    assert abs(sum(curve) / SHORT - sum(head) / SHORT) < 0.02 * sum(head) / SHORT
    assert all(math.isclose(a, b, rel_tol=0.10) for a, b in zip(curve[:10], head[:10]))


def test_label_and_clear_errors(tmp_path, monkeypatch):
    m = _manifest("MAML", 0)
    assert ck.checkpoint_label(m).startswith("loaded from data/checkpoints (full-mode training, 10,000 iterations")
    with pytest.raises(CourseError, match="RETRAIN"):
        ck.load_checkpoint("ch02-sine-maml-seed0", dict(sine_recipe("MAML"), iterations=1))
    monkeypatch.setenv("COURSE_CHECKPOINT_DIR", str(tmp_path))
    with pytest.raises(CourseError, match="RETRAIN = True"):
        ck.read_manifest("ch02-sine-maml-seed0")
    with pytest.raises(CourseError, match="first piece"):
        train_sine_learner(make_sine_learner(sine_recipe("MAML"), 0), sine_recipe("MAML"), 0, iterations=10_000)
