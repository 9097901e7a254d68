"""Learners' public state and variants: ``state_dict`` / ``load_state_dict``, the ``schedule`` hook of
``meta_train`` (and the cosine schedule chapter 02's checkpoints were trained with), ``MAML.variant``."""
import math

import pytest
import torch

from utils.errors import CourseError
from utils.learners import MAML, MetaSGD, Reptile, sinusoid_source
from utils.training import meta_train_cosine
from utils.models import MLP, mlp_classifier
from utils.tasks import SinusoidFamily
from utils.training import cosine_schedule


def _maml(seed=0, **kw):
    torch.manual_seed(seed)
    return MAML(MLP([1, 8, 1]), inner_lr=0.01, outer_lr=1e-2, device="cpu", **kw)


def _record_lr(learner):
    seen = []
    step = learner.meta_step
    learner.meta_step = lambda batch: (seen.append(learner.optimizer.param_groups[0]["lr"]), step(batch))[1]
    return seen


def _chunked_cosine_reference(learner, source, iterations, meta_batch, floor, chunks):
    """The schedule as chapter 02's checkpoints were trained: meta_train in ``chunks`` pieces, the
    step size set by hand before each (the implementation training.meta_train_cosine had before the
    schedule hook)."""
    chunks = max(1, min(int(chunks), int(iterations)))
    base = [g["lr"] for g in learner.optimizer.param_groups]
    bounds = [round(i * iterations / chunks) for i in range(chunks + 1)]
    for i in range(chunks):
        scale = floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * i / chunks))
        for g, lr0 in zip(learner.optimizer.param_groups, base):
            g["lr"] = lr0 * scale
        learner.meta_train(source, bounds[i + 1] - bounds[i], meta_batch, progress=False)
    for g, lr0 in zip(learner.optimizer.param_groups, base):
        g["lr"] = lr0
    return learner.history


@pytest.mark.parametrize("iterations,chunks,floor", [(37, 20, 0.05), (10, 5, 0.1), (7, 20, 0.0), (3, 1, 0.5)])
def test_schedule_hook_reproduces_the_chunked_cosine_step_by_step(iterations, chunks, floor):
    old, new = _maml(), _maml()
    seen_old, seen_new = _record_lr(old), _record_lr(new)
    h_old = _chunked_cosine_reference(old, sinusoid_source(SinusoidFamily(), 5, 5, seed=3), iterations, 4, floor, chunks)
    h_new = meta_train_cosine(new, sinusoid_source(SinusoidFamily(), 5, 5, seed=3), iterations, 4, floor=floor,
                              chunks=chunks)
    assert seen_new == seen_old                       # the identical outer step sizes, float for float
    assert len(seen_new) == iterations and len(set(seen_new)) == min(chunks, iterations)
    assert h_new.loss == h_old.loss                   # the identical training trajectory
    for a, b in zip(old.model.parameters(), new.model.parameters()):
        assert torch.equal(a, b)
    assert new.optimizer.param_groups[0]["lr"] == 1e-2   # restored after the run


def test_cosine_schedule_values_and_errors():
    f = cosine_schedule(100, floor=0.05, chunks=20)
    assert f(0) == 1.0 and f(4) == 1.0                 # the first piece keeps the full step
    assert f(5) < 1.0 and f(99) == pytest.approx(0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * 19 / 20)))
    assert all(f(i) >= f(i + 1) for i in range(99))
    with pytest.raises(CourseError, match="positive integer"):
        cosine_schedule(0)
    with pytest.raises(CourseError, match="fraction"):
        cosine_schedule(10, floor=1.5)


def test_schedule_is_undone_even_when_a_step_fails():
    m = _maml()
    calls = []

    def bad_source(n):
        if calls:
            raise RuntimeError("source broke")
        calls.append(n)
        return SinusoidFamily().sample(n, 5, 5)

    with pytest.raises(RuntimeError):
        m.meta_train(bad_source, 5, 2, progress=False, schedule=lambda i: 0.5)
    assert m.optimizer.param_groups[0]["lr"] == 1e-2


@pytest.mark.parametrize("make", [
    lambda: _maml(),
    lambda: (torch.manual_seed(0), MetaSGD(MLP([1, 8, 1]), inner_lr=0.01, device="cpu"))[1],
    lambda: (torch.manual_seed(0), Reptile(MLP([1, 8, 1]), device="cpu"))[1],
])
def test_state_dict_resumes_training_exactly(make):
    """Training 6 steps in one go equals 3 steps, state_dict, load into a fresh learner, 3 more."""
    whole, first = make(), make()
    whole.meta_train(sinusoid_source(SinusoidFamily(), 5, 5, seed=1), 6, 4, progress=False)
    src = sinusoid_source(SinusoidFamily(), 5, 5, seed=1)
    first.meta_train(src, 3, 4, progress=False)
    state = first.state_dict()
    assert set(state) >= {"model", "optimizer", "history"}
    assert all(v.device.type == "cpu" for v in state["model"].values())
    resumed = make()
    resumed.load_state_dict(state)
    resumed.meta_train(src, 3, 4, progress=False)
    assert resumed.history.loss == whole.history.loss
    for a, b in zip(whole.model.parameters(), resumed.model.parameters()):
        assert torch.equal(a, b)
    if isinstance(whole.inner_lr, dict):
        assert all(torch.equal(whole.inner_lr[k], resumed.inner_lr[k]) for k in whole.inner_lr)


def test_state_dict_without_resume_is_the_checkpoint_format_and_errors_are_clear():
    sgd = MetaSGD(MLP([1, 8, 1]), inner_lr=0.01, device="cpu")
    assert set(sgd.state_dict(resume=False)) == {"model", "inner_lr"}
    assert set(_maml().state_dict(resume=False)) == {"model"}
    with pytest.raises(CourseError, match="MetaSGD"):
        _maml().load_state_dict(sgd.state_dict(resume=False))
    with pytest.raises(CourseError, match="state_dict"):
        _maml().load_state_dict({"weights": {}})


def _cls_maml(**kw):
    torch.manual_seed(0)
    return MAML(mlp_classifier(6, [8], 3), inner_lr=0.3, device="cpu", **kw)


def _cls_batch():
    g = torch.Generator().manual_seed(0)
    sx, qx = torch.randn(2, 6, 6, generator=g), torch.randn(2, 6, 6, generator=g)
    y = torch.arange(3).repeat(2).expand(2, 6)
    return sx, y, qx, y


def test_variant_changes_only_what_is_asked_and_shares_the_trained_network():
    base = _cls_maml(inner_steps=2)
    v = base.variant(first_order=True, adapt="head")
    assert type(v) is MAML and v.first_order and not base.first_order
    assert v.adapt_names == [k for k in base.adapt_names if k.startswith("head.")] and len(base.adapt_names) > len(v.adapt_names)
    assert v.inner_steps == base.inner_steps == 2 and v.inner_lr == base.inner_lr
    assert v.model is base.model                         # shared on purpose: a second view on θ
    assert v.optimizer is not base.optimizer and v.history is None
    assert all(p is q for p, q in zip(v.optimizer.param_groups[0]["params"], base.model.parameters()))
    # the same meta-loss as a learner built with those settings on the same network
    built = MAML(base.model, inner_lr=0.3, inner_steps=2, first_order=True, adapt="head", device="cpu")
    assert torch.equal(v.meta_loss(*_cls_batch())[0], built.meta_loss(*_cls_batch())[0])
    assert v.variant(inner_steps=5).inner_steps == 5 and v.inner_steps == 2


def test_variant_with_copy_model_shares_nothing():
    base = MetaSGD(mlp_classifier(6, [8], 3), inner_lr=0.3, device="cpu")
    before = {k: p.detach().clone() for k, p in base.model.named_parameters()}
    lr_before = {k: v.detach().clone() for k, v in base.inner_lr.items()}
    v = base.variant(inner_steps=3, copy_model=True)
    assert v.model is not base.model and v.inner_lr is not base.inner_lr
    v.meta_step(_cls_batch())                          # training the copy ...
    for k, p in base.model.named_parameters():         # ... leaves the original untouched
        assert torch.equal(p, before[k])
    assert all(torch.equal(base.inner_lr[k], lr_before[k]) for k in lr_before)
    assert any(not torch.equal(v.inner_lr[k], lr_before[k]) for k in lr_before)
    assert type(base.variant(vectorize=False)) is MAML
    with pytest.raises(CourseError, match="variant"):
        base.variant(outer_lr=0.1)
    with pytest.raises(CourseError, match="adapt"):
        base.variant(adapt="body")


def test_every_learner_has_a_variant_even_without_settings():
    from utils.learners import FineTuneBaseline, ProtoNet
    for learner in (ProtoNet(MLP([6, 8, 4]), device="cpu"), FineTuneBaseline(MLP([1, 8, 1]), device="cpu")):
        same = learner.variant()
        assert type(same) is type(learner) and same.model is learner.model and same.optimizer is not learner.optimizer
        own = learner.variant(copy_model=True)
        assert own.model is not learner.model
        assert all(p is not q for p, q in zip(own.model.parameters(), learner.model.parameters()))
        assert all(p is q for p, q in zip(own.optimizer.param_groups[0]["params"], own.model.parameters()))
        with pytest.raises(CourseError, match=f"{type(learner).__name__}.variant"):
            learner.variant(inner_steps=2)
