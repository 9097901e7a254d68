"""Tests for utils.meta_costs: batched evaluation equals the engine's, memory proxy behaves."""
import math

import pytest
import torch
from torch import nn

from utils.learners import inner_loop as Fn
from utils.episodes import EpisodeSampler
from utils.errors import CourseError
from utils.learners import ANIL, MAML, FineTuneBaseline, MetaSGD, ProtoNet, episode_source, sinusoid_source
from utils.learners import evaluate_vectorized, meta_evaluate
from utils.meta_costs import (adaptation_change, maml_saved_bytes, meta_iteration_memory, meta_iteration_work,
                              saved_tensor_bytes)
from utils.training import meta_train_cosine
from utils.models import MLP, mlp_classifier
from utils.tasks import SinusoidFamily


def _images(n_classes=8, per_class=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    protos = torch.rand(n_classes, 1, 6, 6, generator=g)
    x = protos.repeat_interleave(per_class, 0) + 0.3 * torch.rand(n_classes * per_class, 1, 6, 6, generator=g)
    return x, torch.arange(n_classes).repeat_interleave(per_class)


def test_vectorized_equals_meta_evaluate_regression():
    torch.manual_seed(0)
    maml = MAML(MLP([1, 16, 16, 1]), inner_lr=0.02, inner_steps=2, device="cpu")
    fam = SinusoidFamily()
    a = evaluate_vectorized(maml, sinusoid_source(fam, 5, 5, seed=4), n_tasks=30, batch=7)
    b = meta_evaluate(maml, sinusoid_source(fam, 5, 5, seed=4), n_tasks=30, batch=7)
    assert a.metric == b.metric == "mse"
    assert all(math.isclose(u, v, rel_tol=1e-4, abs_tol=1e-6) for u, v in zip(a.values, b.values))


@pytest.mark.parametrize("make", [
    lambda: MAML(mlp_classifier(36, [16], 3), inner_lr=0.3, inner_steps=1, eval_steps=2, device="cpu"),
    lambda: ANIL(mlp_classifier(36, [16], 3), inner_lr=0.3, inner_steps=1, device="cpu"),
    lambda: MetaSGD(mlp_classifier(36, [16], 3), inner_lr=0.3, inner_steps=1, device="cpu"),
])
def test_vectorized_equals_meta_evaluate_classification(make):
    torch.manual_seed(0)
    learner = make()
    x, y = _images()
    src = lambda: episode_source(EpisodeSampler(x, y, 3, 2, 2, seed=5))
    a = evaluate_vectorized(learner, src(), n_tasks=12, batch=5)
    b = meta_evaluate(learner, src(), n_tasks=12, batch=5)
    assert a.metric == "accuracy"
    assert a.values == pytest.approx(b.values)


def test_vectorized_falls_back_for_protonet():
    torch.manual_seed(0)
    x, y = _images()
    proto = ProtoNet(nn.Sequential(nn.Flatten(), MLP([36, 8])), device="cpu")
    src = lambda: episode_source(EpisodeSampler(x, y, 3, 2, 2, seed=5))
    assert evaluate_vectorized(proto, src(), 10).values == meta_evaluate(proto, src(), 10).values


def test_saved_tensor_bytes_counts_what_backward_needs():
    a = torch.randn(1000, requires_grad=True)
    out, nbytes = saved_tensor_bytes(lambda: (a * 2).exp().sum())
    assert nbytes == 4000  # exp keeps its output; the parameter leaf is not counted
    out.backward()
    _, zero = saved_tensor_bytes(lambda: (a * 2).sum())
    assert zero == 0


def test_second_order_holds_more_and_grows_with_steps():
    torch.manual_seed(0)
    fam = SinusoidFamily()
    batch = fam.sample(4, 10, 10, generator=torch.Generator().manual_seed(0))
    so = MAML(MLP([1, 32, 32, 1]), inner_lr=0.01, device="cpu")
    fo = MAML(MLP([1, 32, 32, 1]), inner_lr=0.01, first_order=True, device="cpu")
    so1, so3 = maml_saved_bytes(so, batch, 1), maml_saved_bytes(so, batch, 3)
    fo1, fo3 = maml_saved_bytes(fo, batch, 1), maml_saved_bytes(fo, batch, 3)
    assert so1 > fo1 and so3 > so1
    assert so3 - so1 > 2 * (fo3 - fo1)


def test_meta_iteration_memory_all_learners():
    torch.manual_seed(0)
    x, y = _images()
    batch = EpisodeSampler(x, y, 3, 2, 2, seed=1).sample_batch(2)
    learners = [MAML(mlp_classifier(36, [16], 3), inner_lr=0.3, device="cpu"),
                ProtoNet(nn.Sequential(nn.Flatten(), MLP([36, 8])), device="cpu"),
                FineTuneBaseline(mlp_classifier(36, [16], 8), device="cpu")]
    for learner in learners:
        before = [p.detach().clone() for p in learner.model.parameters()]
        mem = meta_iteration_memory(learner, batch)
        assert mem["saved_mb"] > 0 and mem["cuda_peak_mb"] is None
        assert all(torch.equal(b, p) for b, p in zip(before, learner.model.parameters()))
    with pytest.raises(CourseError):
        meta_iteration_memory(object(), batch)


def test_loop_and_vmap_save_alike_per_task():
    """The proxy measures the loop; the vmap version computes the same losses (sanity)."""
    torch.manual_seed(0)
    m = MLP([1, 8, 1])
    p, b = Fn.model_params(m)
    batch = SinusoidFamily().sample(3, 4, 4, generator=torch.Generator().manual_seed(0))
    tasks = (batch.support_x, batch.support_y, batch.query_x, batch.query_y)
    lv, _ = Fn.vmap_meta_loss(m, (p, b), tasks, steps=1, lr=0.1)
    ll, _ = Fn.loop_meta_loss(m, (p, b), tasks, steps=1, lr=0.1)
    assert torch.allclose(lv, ll, atol=1e-6)


def test_meta_train_cosine_schedule_and_restore():
    torch.manual_seed(0)
    maml = MAML(MLP([1, 8, 1]), inner_lr=0.01, outer_lr=1e-2, device="cpu")
    seen = []
    step = maml.meta_step
    maml.meta_step = lambda batch: (seen.append(maml.optimizer.param_groups[0]["lr"]), step(batch))[1]
    hist = meta_train_cosine(maml, sinusoid_source(SinusoidFamily(), 5, 5), 10, 4, floor=0.1, chunks=5)
    assert len(hist.loss) == 10
    assert seen[0] == pytest.approx(1e-2) and seen[-1] < seen[0] and min(seen) >= 1e-3 - 1e-12
    assert maml.optimizer.param_groups[0]["lr"] == pytest.approx(1e-2)


def test_adaptation_change():
    torch.manual_seed(0)
    x, y = _images()
    batch = EpisodeSampler(x, y, 3, 2, 2, seed=1).sample_batch(3)
    anil = ANIL(mlp_classifier(36, [16], 3), inner_lr=0.5, device="cpu")
    ch = adaptation_change(anil, batch)
    assert ch["body"] == 0 and ch["head"] > 0 and ch["feature_cosine"] == pytest.approx(1.0)
    maml = MAML(mlp_classifier(36, [16], 3), inner_lr=0.5, device="cpu")
    ch = adaptation_change(maml, batch)
    assert ch["body"] > 0 and ch["feature_cosine"] < 1
    with pytest.raises(CourseError):
        adaptation_change(MAML(MLP([1, 4, 1]), device="cpu"), batch)


def test_meta_iteration_work_is_deterministic_and_orders_the_learners():
    """Counted work (chapter 02, section 9): second-order MAML dispatches more operators than
    ProtoNet on the same meta-batch, more inner steps cost more, and counting leaves the learner
    untouched (it runs on a copy)."""
    torch.manual_seed(0)
    B, N, K, Q = 3, 5, 1, 4
    batch = (torch.randn(B, N * K, 1, 8, 8), torch.arange(N).repeat_interleave(K).repeat(B, 1),
             torch.randn(B, N * Q, 1, 8, 8), torch.arange(N).repeat_interleave(Q).repeat(B, 1))
    maml1 = MAML(mlp_classifier(64, [16, 16], N), inner_steps=1, device="cpu")
    maml3 = MAML(mlp_classifier(64, [16, 16], N), inner_steps=3, device="cpu")
    fo1 = MAML(mlp_classifier(64, [16, 16], N), inner_steps=1, first_order=True, device="cpu")
    proto = ProtoNet(mlp_classifier(64, [16, 16], N).features, device="cpu")
    before = {k: v.clone() for k, v in maml1.model.state_dict().items()}
    w1, w3, wf, wp = (meta_iteration_work(x, batch) for x in (maml1, maml3, fo1, proto))
    assert meta_iteration_work(maml1, batch) == w1
    assert all(torch.equal(before[k], v) for k, v in maml1.model.state_dict().items())
    assert w3["ops"] > w1["ops"] > wp["ops"] > 0
    assert w3["flops"] > w1["flops"] > wf["flops"] > 0
