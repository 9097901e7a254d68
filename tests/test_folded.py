"""The folded meta-batch (tasks as channel groups) equals the per-task reference, value and gradient."""
import pytest
import torch
import torch.nn.utils.prune
from torch import nn

from utils.learners import folded
from utils.learners import inner_loop as Fn
from utils.episodes import EpisodeSampler
from utils.learners import MAML
from utils.models import MLP, conv4_classifier, use_batch_statistics
from utils.tasks import SinusoidFamily


def _conv_model(n_way=3):
    torch.manual_seed(0)
    return use_batch_statistics(conv4_classifier(n_way, hidden=8, track_running_stats=False)).double()


def _episodes(tasks=4, n_way=3, shots=2, queries=3):
    g = torch.Generator().manual_seed(0)
    images = torch.rand(60, 1, 28, 28, generator=g, dtype=torch.float64)
    labels = torch.arange(6).repeat_interleave(10)
    ep = EpisodeSampler(images, labels, n_way, shots, queries, seed=0).sample_batch(tasks)
    return ep.support_x, ep.support_y, ep.query_x, ep.query_y


def _grads(loss, params):
    """Gradients, with zeros where a parameter does not reach the loss (a bias before a norm)."""
    gs = torch.autograd.grad(loss, params, allow_unused=True)
    return [torch.zeros_like(p) if g is None else g for g, p in zip(gs, params)]


def test_supports_only_what_it_can_fold():
    assert folded.supports(_conv_model())
    assert folded.supports(MLP([1, 8, 1]))
    assert not folded.supports(conv4_classifier(3, hidden=4))  # BatchNorm2d with running stats
    assert not folded.supports(nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.1)))
    assert not folded.supports(nn.Sequential(nn.Conv2d(1, 2, 3, groups=1, padding="same")))
    pruned = MLP([2, 4, 1])
    torch.nn.utils.prune.l1_unstructured(pruned[0], "weight", amount=0.5)  # a mask buffer and a hook
    assert not folded.supports(pruned)


def test_grouped_forward_equals_per_task_forward():
    """Each task's own weights in its own channel group: the outputs of the folded network are
    those of the ordinary network run once per task with that task's weights."""
    model = _conv_model()
    params, buffers = Fn.model_params(model)
    T = 3
    g = torch.Generator().manual_seed(1)
    per_task = {k: v.detach() + 0.1 * torch.randn((T, *v.shape), generator=g, dtype=v.dtype)
                for k, v in params.items()}
    x = torch.rand(T, 5, 1, 28, 28, generator=g, dtype=torch.float64)
    got = folded.forward(model, per_task, x)
    for t in range(T):
        want = Fn.forward(model, {k: v[t] for k, v in per_task.items()}, buffers, x[t])
        torch.testing.assert_close(got[t], want, atol=1e-10, rtol=1e-8)


@pytest.mark.parametrize("first_order", [False, True])
@pytest.mark.parametrize("steps", [1, 2])
def test_folded_meta_loss_and_meta_gradient_equal_the_loop(first_order, steps):
    model = _conv_model()
    params, buffers = Fn.model_params(model)
    batch = _episodes()
    lf, af = folded.folded_meta_loss(model, params, batch, steps=steps, lr=0.3, first_order=first_order)
    ll, al = Fn.loop_meta_loss(model, (params, buffers), batch, steps=steps, lr=0.3, first_order=first_order)
    torch.testing.assert_close(lf, ll, atol=1e-10, rtol=1e-8)
    torch.testing.assert_close(af, al)
    names = list(params)
    for k, a, b in zip(names, _grads(lf.mean(), list(params.values())), _grads(ll.mean(), list(params.values()))):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5, msg=k)


def test_folded_handles_anil_meta_sgd_chunks_and_regression():
    model = _conv_model()
    params, buffers = Fn.model_params(model)
    batch = _episodes(tasks=5)
    head = [k for k in params if k.startswith("head.")]
    rates = {k: torch.full_like(v, 0.2).requires_grad_() for k, v in params.items()}
    for kw in (dict(adapt_names=head), dict(lr=rates), dict(chunk_size=2)):
        lr = kw.pop("lr", 0.3)
        lf, _ = folded.folded_meta_loss(model, params, batch, steps=1, lr=lr, **kw)
        kw.pop("chunk_size", None)
        ll, _ = Fn.loop_meta_loss(model, (params, buffers), batch, steps=1, lr=lr, **kw)
        torch.testing.assert_close(lf, ll, atol=1e-10, rtol=1e-8)
        wrt = list(params.values()) + (list(lr.values()) if isinstance(lr, dict) else [])
        for a, b in zip(_grads(lf.mean(), wrt), _grads(ll.mean(), wrt)):
            torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    mlp = MLP([1, 16, 16, 1]).double()
    p, b = Fn.model_params(mlp)
    s = SinusoidFamily().sample(4, 5, 5, generator=torch.Generator().manual_seed(0))
    args = tuple(getattr(s, k).double() for k in ("support_x", "support_y", "query_x", "query_y"))
    lf, af = folded.folded_meta_loss(mlp, p, args, steps=2, lr=0.01)
    ll, _ = Fn.loop_meta_loss(mlp, (p, b), args, steps=2, lr=0.01)
    torch.testing.assert_close(lf, ll)
    assert torch.isnan(af).all()
    for x, y in zip(_grads(lf.mean(), list(p.values())), _grads(ll.mean(), list(p.values()))):
        torch.testing.assert_close(x, y, atol=1e-5, rtol=1e-5)


def test_folded_under_no_grad_adapts_and_keeps_no_graph():
    model = _conv_model()
    params, _ = Fn.model_params(model)
    batch = _episodes()
    with_grad, _ = folded.folded_meta_loss(model, params, batch, steps=2, lr=0.3)
    with torch.no_grad():
        without, _ = folded.folded_meta_loss(model, params, batch, steps=2, lr=0.3)
    assert not without.requires_grad
    torch.testing.assert_close(without, with_grad.detach())


def test_maml_uses_the_folded_path_and_the_loop_agrees():
    torch.manual_seed(0)
    base = conv4_classifier(3, hidden=8, track_running_stats=False).double()
    vec = MAML(base, inner_lr=0.3, device="cpu")
    loop = MAML(base, inner_lr=0.3, device="cpu", vectorize=False)
    batch = _episodes()
    lv, _ = vec.meta_loss(*batch)
    ll, _ = loop.meta_loss(*batch)
    torch.testing.assert_close(lv, ll)
    params = list(base.parameters())
    for a, b in zip(_grads(lv, params), _grads(ll, params)):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    loss, _ = vec.meta_step(tuple(t.clone() for t in batch))  # runs under the thread policy
    assert loss == pytest.approx(float(ll.detach()))


# ----------------------------------------------------------------------------- the one inner loop (issue 25)
def _previous_loop_meta_loss(model, params, buffers, batch, steps, lr, first_order, names):
    """The per-task inner loop as the course wrote it before the one inner loop (frozen copy of the
    former ``utils.functional.loop_meta_loss``): the implementations it replaced agreed with it."""
    support_x, support_y, query_x, query_y = batch
    losses = []
    for t in range(support_x.shape[0]):
        fast = dict(params)
        for _ in range(steps):
            loss = Fn.task_loss(Fn.forward(model, fast, buffers, support_x[t]), support_y[t])
            grads = torch.autograd.grad(loss, [fast[k] for k in names], create_graph=not first_order,
                                        allow_unused=True, materialize_grads=True)
            fast.update({k: fast[k] - (lr[k] if isinstance(lr, dict) else lr) * g for k, g in zip(names, grads)})
        losses.append(Fn.task_loss(Fn.forward(model, fast, buffers, query_x[t]), query_y[t]))
    return torch.stack(losses)


@pytest.mark.parametrize("case", ["second-order", "first-order", "anil", "meta-sgd", "regression"])
def test_one_inner_loop_gives_the_previous_meta_gradients_in_float64(case):
    """vmap, per-task loop and folded paths: the same losses and meta-gradients as before (<= 1e-6)."""
    if case == "regression":
        model = MLP([1, 16, 16, 1]).double()
        s = SinusoidFamily().sample(4, 5, 5, generator=torch.Generator().manual_seed(0))
        batch = tuple(getattr(s, k).double() for k in ("support_x", "support_y", "query_x", "query_y"))
    else:
        model, batch = _conv_model(), _episodes()
    params, buffers = Fn.model_params(model)
    names = [k for k in params if k.startswith("head.")] if case == "anil" else list(params)
    lr = {k: torch.full_like(params[k], 0.2).requires_grad_() for k in names} if case == "meta-sgd" else 0.3
    first_order = case == "first-order"
    wrt = list(params.values()) + (list(lr.values()) if isinstance(lr, dict) else [])
    want = _previous_loop_meta_loss(model, params, buffers, batch, 2, lr, first_order, names)
    kw = dict(steps=2, lr=lr, first_order=first_order, adapt_names=names)
    paths = {"loop": Fn.loop_meta_loss(model, (params, buffers), batch, **kw)[0],
             "vmap": Fn.vmap_meta_loss(model, (params, buffers), batch, **kw)[0],
             "folded": folded.folded_meta_loss(model, params, batch, **kw)[0]}
    want_grads = _grads(want.mean(), wrt)
    for path, got in paths.items():
        torch.testing.assert_close(got, want, atol=1e-6, rtol=0, msg=path)
        for k, a, b in zip(range(len(wrt)), _grads(got.mean(), wrt), want_grads):
            torch.testing.assert_close(a, b, atol=1e-6, rtol=0, msg=f"{path}: meta-gradient {k}")


def test_adaptation_describes_the_learners_inner_loop():
    a = Fn.Adaptation(steps=2, step_size=0.1, first_order=True, adapt="head")
    learner = MAML(_conv_model(), adaptation=a, device="cpu")
    assert (learner.inner_steps, learner.first_order, learner.inner_lr) == (2, True, 0.1)
    assert learner.adapt_names == ["head.weight", "head.bias"]
    assert learner.variant(inner_steps=3).adaptation == a.but(steps=3)
    assert MAML(_conv_model(), inner_lr=0.1, inner_steps=2, first_order=True, adapt="head",
                device="cpu").adaptation == a
    with pytest.raises(ValueError, match="non-negative integer"):
        Fn.Adaptation(steps=-1)
    with pytest.raises(TypeError):
        Fn.adapt(_conv_model(), Fn.model_params(_conv_model()), _episodes()[:2], 1, 0.1)   # flags keyword-only
