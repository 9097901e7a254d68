"""Meta-learning: the vectorized meta-gradient against an independent per-task reference."""
import pytest
import torch
from torch.nn import functional as F

from utils.episodes import EpisodeSampler
from utils.learners.inner_loop import loop_meta_loss, model_params, vmap_meta_loss
from utils.learners import (ANIL, MAML, FineTuneBaseline, MetaSGD, ProtoNet, Reptile, episode_source,
                        protonet_logits, sinusoid_source)
from utils.learners import meta_evaluate
from utils.models import MLP, BatchStatNorm, ConvBackbone, conv4_classifier
from utils.tasks import SinusoidFamily


def _reference_meta_grads(model, batch, steps, lr, first_order):
    """Meta-gradient by hand: per task, explicit SGD steps with torch.autograd.grad."""
    params = [p for p in model.parameters()]
    names = [n for n, _ in model.named_parameters()]
    total = 0.0
    for t in range(batch.support_x.shape[0]):
        fast = list(params)
        for _ in range(steps):
            out = torch.func.functional_call(model, dict(zip(names, fast)), (batch.support_x[t],))
            loss = F.mse_loss(out, batch.support_y[t])
            grads = torch.autograd.grad(loss, fast, create_graph=not first_order)
            if first_order:
                grads = [g.detach() for g in grads]
            fast = [w - lr * g for w, g in zip(fast, grads)]
        out = torch.func.functional_call(model, dict(zip(names, fast)), (batch.query_x[t],))
        total = total + F.mse_loss(out, batch.query_y[t])
    total = total / batch.support_x.shape[0]
    return torch.autograd.grad(total, params)


@pytest.mark.parametrize("first_order", [False, True])
@pytest.mark.parametrize("steps", [1, 2])
def test_vectorized_maml_meta_gradient_matches_reference(first_order, steps):
    torch.manual_seed(0)
    model = MLP([1, 40, 40, 1]).double()
    batch = SinusoidFamily().sample(6, 10, 10, generator=torch.Generator().manual_seed(1))
    batch = type(batch)(*(getattr(batch, f).double() for f in batch.__dataclass_fields__))
    learner = MAML(model, inner_lr=0.01, inner_steps=steps, first_order=first_order, device="cpu")
    loss, _ = learner.meta_loss(batch.support_x, batch.support_y, batch.query_x, batch.query_y)
    got = torch.autograd.grad(loss, list(model.parameters()))
    want = _reference_meta_grads(model, batch, steps, 0.01, first_order)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, atol=1e-5, rtol=1e-5)


def test_second_order_differs_from_first_order():
    torch.manual_seed(0)
    model = MLP([1, 40, 40, 1]).double()
    b = SinusoidFamily().sample(4, 10, 10, generator=torch.Generator().manual_seed(2))
    b = type(b)(*(getattr(b, f).double() for f in b.__dataclass_fields__))
    so = _reference_meta_grads(model, b, 1, 0.1, False)
    fo = _reference_meta_grads(model, b, 1, 0.1, True)
    assert max((a - c).abs().max() for a, c in zip(so, fo)) > 1e-6


def test_vmap_with_batchnorm_conv_matches_loop_and_chunks():
    torch.manual_seed(0)
    model = conv4_classifier(3, hidden=8, track_running_stats=False).double()
    images = torch.rand(60, 1, 28, 28, dtype=torch.float64)
    labels = torch.arange(6).repeat_interleave(10)
    ep = EpisodeSampler(images, labels, 3, 2, 3, seed=0).sample_batch(4)
    params, buffers = model_params(model)
    args = (model, (params, buffers), (ep.support_x, ep.support_y, ep.query_x, ep.query_y))
    lv, av = vmap_meta_loss(*args, steps=1, lr=0.1)
    lc, _ = vmap_meta_loss(*args, steps=1, lr=0.1, chunk_size=2)
    ll, al = loop_meta_loss(*args, steps=1, lr=0.1)
    torch.testing.assert_close(lv, ll)
    torch.testing.assert_close(lc, ll)
    torch.testing.assert_close(av, al)
    gv = torch.autograd.grad(lv.mean(), list(params.values()))
    gl = torch.autograd.grad(ll.mean(), list(params.values()))
    for a, b in zip(gv, gl):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)


def test_protonet_logits_are_negative_squared_distances():
    torch.manual_seed(0)
    es, sy = torch.randn(6, 4), torch.tensor([0, 0, 1, 1, 2, 2])
    eq = torch.randn(5, 4)
    protos = torch.stack([es[sy == c].mean(0) for c in range(3)])
    want = -torch.cdist(eq, protos) ** 2
    torch.testing.assert_close(protonet_logits(es, sy, eq, 3), want, atol=1e-5, rtol=1e-5)


def test_anil_adapts_only_the_head_and_metasgd_learns_rates():
    torch.manual_seed(0)
    model = conv4_classifier(2, hidden=4, track_running_stats=False)
    anil = ANIL(model, inner_lr=0.5, device="cpu")
    assert anil.adapt_names == ["head.weight", "head.bias"]
    sx, sy = torch.rand(4, 1, 28, 28), torch.tensor([0, 0, 1, 1])
    fast = anil.adapt(sx, sy, steps=1)
    for k, v in model.named_parameters():
        changed = not torch.equal(fast[k], v.detach())
        assert changed == k.startswith("head."), k
    msgd = MetaSGD(MLP([1, 8, 1]), inner_lr=0.05, device="cpu")
    before = {k: v.detach().clone() for k, v in msgd.inner_lr.items()}
    src = sinusoid_source(SinusoidFamily(), 5, 5, seed=0)
    msgd.meta_train(src, 3, 4, progress=False)
    assert any(not torch.equal(before[k], v) for k, v in msgd.inner_lr.items())


def test_learners_train_and_evaluate_on_cpu():
    torch.manual_seed(0)
    src = sinusoid_source(SinusoidFamily(), 5, 5, seed=0)
    test_src = sinusoid_source(SinusoidFamily(), 5, 5, seed=99)
    for learner in (MAML(MLP([1, 16, 1]), inner_lr=0.01, device="cpu"),
                    Reptile(MLP([1, 16, 1]), device="cpu"),
                    FineTuneBaseline(MLP([1, 16, 1]), device="cpu")):
        h = learner.meta_train(src, 5, 4, progress=False)
        assert len(h.loss) == 5
        r = meta_evaluate(learner, test_src, n_tasks=20)
        assert r.metric == "mse" and r.mean > 0 and len(r.values) == 20
    images = torch.rand(40, 1, 28, 28)
    labels = torch.arange(8).repeat_interleave(5)
    sampler = EpisodeSampler(images, labels, 2, 1, 2, seed=0)
    proto = ProtoNet(ConvBackbone(hidden=4), device="cpu")
    proto.meta_train(episode_source(sampler), 2, 2, progress=False)
    r = meta_evaluate(proto, episode_source(sampler), n_tasks=10)
    assert r.metric == "accuracy" and 0 <= r.mean <= 1


def test_reptile_moves_towards_adapted_weights():
    torch.manual_seed(0)
    model = MLP([1, 8, 1])
    rep = Reptile(model, inner_lr=0.05, inner_steps=3, outer_lr=1.0, device="cpu")
    before = [p.detach().clone() for p in model.parameters()]
    src = sinusoid_source(SinusoidFamily(), 5, 5, seed=0)
    rep.meta_train(src, 1, 1, progress=False)
    # with outer_lr=1 and one task, θ becomes exactly the task's adapted weights φ ≠ θ
    assert any(not torch.equal(a, p) for a, p in zip(before, model.parameters()))


def test_bad_adapt_option():
    with pytest.raises(ValueError, match="'all', 'head' or a tuple"):
        MAML(MLP([1, 4, 1]), adapt="some", device="cpu")
    with pytest.raises(ValueError, match="head"):
        ANIL(MLP([1, 4, 1]), device="cpu")


def test_second_order_meta_gradient_with_batchnorm_matches_finite_differences():
    """torch's fused batch norm gives wrong double-backward under vmap; the engine must not."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 3, 3, padding=1), torch.nn.BatchNorm2d(3),
                                torch.nn.Flatten(), torch.nn.Linear(3 * 36, 2)).double()
    learner = MAML(model, inner_lr=0.5, device="cpu")  # swaps BatchNorm for BatchStatNorm
    g = torch.Generator().manual_seed(0)
    sx, qx = torch.rand(2, 4, 1, 6, 6, generator=g).double(), torch.rand(2, 6, 1, 6, 6, generator=g).double()
    sy, qy = torch.tensor([[0, 0, 1, 1]] * 2), torch.tensor([[0, 1, 0, 1, 0, 1]] * 2)
    w = model[0].weight
    grad = torch.autograd.grad(learner.meta_loss(sx, sy, qx, qy)[0], [w])[0]
    eps, idx = 1e-4, (1, 0, 1, 1)
    vals = []
    for sign in (1, -1):
        with torch.no_grad():
            w[idx] += sign * eps
        vals.append(float(learner.meta_loss(sx, sy, qx, qy)[0].detach()))
        with torch.no_grad():
            w[idx] -= sign * eps
    fd = (vals[0] - vals[1]) / (2 * eps)
    assert abs(float(grad[idx]) - fd) < 1e-5 * max(1.0, abs(fd))
    assert isinstance(model[1], BatchStatNorm) and model[1].weight.dtype == torch.float64
