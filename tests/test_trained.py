"""The recipe registry (utils.trained): one way to a trained learner (issue 25, item 2)."""
import json

import pytest
import torch
from torch import nn

from utils import trained as tr
from utils.checkpoints import save_checkpoint
from utils.cache import settings_key
from utils.errors import CourseError
from utils.runtime import CACHE_DIR_ENV, CHECKPOINT_DIR_ENV, SHIPPED_CACHE_DIR_ENV


class Toy:
    """A learner with the state format of the course's learners (``state_dict(resume=False)``)."""
    def __init__(self, seed, device):
        torch.manual_seed(seed)
        self.model = nn.Linear(2, 1).to(device)

    def state_dict(self, resume=False):
        return {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()}

    def load_state_dict(self, state):
        self.model.load_state_dict(state)


TRAINS = []


def _train(name, learner, settings, seed):
    TRAINS.append(name)
    with torch.no_grad():
        learner.model.bias.fill_(float(settings["iterations"]))
    return [1.0, 0.5]


@pytest.fixture
def toy(tmp_path, monkeypatch):
    monkeypatch.setenv(CHECKPOINT_DIR_ENV, str(tmp_path / "ckpt"))
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path / "cache"))
    monkeypatch.setenv(SHIPPED_CACHE_DIR_ENV, str(tmp_path / "none"))
    TRAINS.clear()
    r = tr.recipe("toy-*", settings=lambda name, fast: dict(iterations=3 if fast else 7),
                  make=lambda name, s, seed, device: Toy(seed, device), train=_train,
                  checkpoint=lambda name, seed: f"{name}-seed{seed}", code_version=lambda: "v1")
    yield r
    tr._REGISTRY.remove(r)


def _ship(name, settings, code_version="v1", bias=42.0):
    lrn = Toy(0, "cpu")
    with torch.no_grad():
        lrn.model.bias.fill_(bias)
    return save_checkpoint(name, lrn.state_dict(), dict(settings=settings, settings_hash=settings_key(settings),
                                                       code_version=code_version, seconds=1.5, seed=0))


def test_loads_shipped_when_key_matches(toy):
    _ship("toy-a-seed0", dict(iterations=7))
    learner, info = tr.trained("toy-a", seed=0, fast=True, device="cpu")
    assert info.how == "shipped" and TRAINS == []
    assert float(learner.model.bias.detach()) == 42.0
    assert "data/checkpoints/toy-a-seed0" in info.source and "full-mode" in info.source


@pytest.mark.parametrize("settings, version", [(dict(iterations=8), "v1"), (dict(iterations=7), "old")])
def test_trains_and_caches_when_key_differs(toy, settings, version):
    _ship("toy-b-seed0", settings, version)
    learner, info = tr.trained("toy-b", seed=0, fast=True, device="cpu")
    assert info.how == "trained" and TRAINS == ["toy-b"] and "trained in this run" in info.source
    assert float(learner.model.bias.detach()) == 3.0  # the FAST settings, not the shipped weights
    again, info2 = tr.trained("toy-b", seed=0, fast=True, device="cpu")
    assert info2.how == "cache" and TRAINS == ["toy-b"] and "data/cache" in info2.source
    assert float(again.model.bias.detach()) == 3.0 and info2.curve == [1.0, 0.5]


def test_retrain_skips_shipped(toy):
    _ship("toy-c-seed0", dict(iterations=7))
    _, info = tr.trained("toy-c", seed=0, fast=False, device="cpu", retrain=True)
    assert info.how == "trained" and TRAINS == ["toy-c"]


def test_checkpoint_write_is_atomic(toy, tmp_path):
    path = _ship("toy-d-seed0", dict(iterations=7))
    d = path.parent
    assert sorted(p.name for p in d.iterdir()) == ["toy-d-seed0.json", "toy-d-seed0.pt"]  # no temp files left
    assert json.loads(path.read_text())["code_version"] == "v1"


def test_unknown_recipe_lists_known_ones():
    with pytest.raises(CourseError) as e:
        tr.trained("no-such-learner")
    assert "no-such-learner" in str(e.value) and "ch02-sine-maml" in str(e.value) and "ch03-cnp" in str(e.value)


@pytest.mark.parametrize("name", ["ch02-sine-maml", "ch03-lopt", "omniglot-protonet-small1"])
def test_course_recipes_load_their_shipped_checkpoints(name):
    _, info = tr.trained(name, seed=0, fast=True, device="cpu")
    assert info.how == "shipped", info.source


def test_a_chapter_recipe_round_trips_through_the_cache(tmp_path, monkeypatch):
    """A recipe a notebook registers (its settings computed in a cell): trained once, then loaded
    from the cache with the same weights, learned step sizes (Meta-SGD), seconds and curve."""
    from utils.episodes import EpisodeSampler
    from utils.learners import MetaSGD, episode_source
    from utils.models import mlp_classifier
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path / "cache"))
    monkeypatch.setenv(SHIPPED_CACHE_DIR_ENV, str(tmp_path / "none"))
    g = torch.Generator().manual_seed(0)
    x = torch.rand(8, 1, 6, 6, generator=g).repeat_interleave(6, 0) + 0.3 * torch.rand(48, 1, 6, 6, generator=g)
    y = torch.arange(8).repeat_interleave(6)
    calls = []

    def make(name, settings, seed, device):
        torch.manual_seed(seed)
        return MetaSGD(mlp_classifier(36, [8], 3), inner_lr=settings["lr"], device=device)

    def train(name, learner, settings, seed):
        calls.append(seed)
        return learner.meta_train(episode_source(EpisodeSampler(x, y, 3, 1, 2, seed=seed)), 3, 2, progress=False).loss

    r = tr.recipe("chapter-test-metasgd", settings=lambda name, fast: dict(lr=0.3, fast=fast), make=make, train=train)
    try:
        a, info_a = tr.trained("chapter-test-metasgd", seed=1, fast=True, device="cpu")
        b, info_b = tr.trained("chapter-test-metasgd", seed=1, fast=True, device="cpu")
    finally:
        tr._REGISTRY.remove(r)
    assert calls == [1] and (info_a.how, info_b.how) == ("trained", "cache")
    assert not info_a.from_cache and info_b.from_cache and info_b.iterations == 3 == len(info_b.curve)
    assert info_b.seconds == info_a.seconds and info_b.curve == info_a.curve
    for (k, p), q in zip(a.model.state_dict().items(), b.model.state_dict().values()):
        assert torch.equal(p, q), k
    assert all(torch.equal(a.inner_lr[k], b.inner_lr[k]) for k in a.inner_lr)
    with pytest.raises(TypeError):
        info_b["seconds"]          # attributes only: one way to read what trained() did

