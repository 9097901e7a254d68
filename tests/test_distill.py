"""Tests of utils.distill: the loss against hand-computed values, its limits, gradient scales,
error messages, ensembles, the training loop and the "mistake" functions."""
import math

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from utils.distill import (Ensemble, copy_weights, distill, ensemble_logits, interpolate_weights,
                           kd_loss, kd_loss_no_t2, kd_loss_softmax_input, kd_loss_swapped_kl,
                           same_group_soft_mass, slice_copy_weights, soft_targets, teacher_logits)
from utils.errors import CourseError
from utils.models import mlp_classifier


def _rand(B=6, C=5, seed=0, scale=3.0):
    g = torch.Generator().manual_seed(seed)
    return (scale * torch.randn(B, C, generator=g), scale * torch.randn(B, C, generator=g),
            torch.randint(0, C, (B,), generator=g))


# --------------------------------------------------------------------------- values by hand
def test_two_class_value_by_hand():
    # student uniform (1/2, 1/2), teacher (3/4, 1/4) at T = 1
    s = torch.zeros(1, 2)
    t = torch.tensor([[math.log(3.0), 0.0]])
    y = torch.tensor([0])
    kl = 0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5)       # 0.130812...
    assert float(kd_loss(s, t, y, T=1.0, alpha=1.0)) == pytest.approx(kl, abs=1e-6)
    assert float(kd_loss(s, t, y, T=1.0, alpha=0.0)) == pytest.approx(math.log(2), abs=1e-6)
    mixed = 0.3 * kl + 0.7 * math.log(2)
    assert float(kd_loss(s, t, y, T=1.0, alpha=0.3)) == pytest.approx(mixed, abs=1e-6)


def test_temperature_value_by_hand():
    # three classes, T = 2: teacher logits (2, 0, 0) -> softmax of (1, 0, 0); student uniform
    s = torch.zeros(1, 3)
    t = torch.tensor([[2.0, 0.0, 0.0]])
    e = math.e
    p = [e / (e + 2), 1 / (e + 2), 1 / (e + 2)]
    kl = sum(pi * math.log(pi / (1 / 3)) for pi in p)
    y = torch.tensor([1])
    want = 0.8 * 4 * kl + 0.2 * math.log(3)          # alpha T^2 KL + (1 - alpha) CE; CE of uniform = log 3
    assert float(kd_loss(s, t, y, T=2.0, alpha=0.8)) == pytest.approx(want, abs=1e-6)


def test_batchmean_sums_classes_and_averages_batch():
    s, t, y = _rand(B=4, C=7)
    per = kd_loss(s, t, y, T=3.0, alpha=0.6, reduction="none")
    assert per.shape == (4,)
    assert float(kd_loss(s, t, y, T=3.0, alpha=0.6)) == pytest.approx(float(per.mean()), rel=1e-6)
    # the soft part equals F.kl_div(..., reduction="batchmean")
    soft = F.kl_div(F.log_softmax(s / 3, 1), F.softmax(t / 3, 1), reduction="batchmean")
    assert float(kd_loss(s, t, None, T=3.0, alpha=1.0)) == pytest.approx(9 * float(soft), rel=1e-5)


def test_zero_when_student_equals_teacher():
    _, t, y = _rand()
    assert abs(float(kd_loss(t, t, y, T=5.0, alpha=1.0))) < 1e-6


# --------------------------------------------------------------------------- edge cases
def test_alpha_zero_is_cross_entropy_and_ignores_teacher():
    s, t, y = _rand()
    assert float(kd_loss(s, t, y, T=4.0, alpha=0.0)) == pytest.approx(float(F.cross_entropy(s, y)), rel=1e-6)
    assert float(kd_loss(s, t + 100 * torch.randn_like(t), y, T=4.0, alpha=0.0)) == pytest.approx(
        float(F.cross_entropy(s, y)), rel=1e-6)


def test_alpha_one_ignores_labels():
    s, t, y = _rand()
    a = kd_loss(s, t, y, T=4.0, alpha=1.0)
    b = kd_loss(s, t, (y + 1) % s.shape[1], T=4.0, alpha=1.0)
    c = kd_loss(s, t, None, T=4.0, alpha=1.0)
    assert float(a) == pytest.approx(float(b)) == pytest.approx(float(c))


def test_high_temperature_limit_is_logit_matching():
    s, t, _ = _rand(B=8, C=10, scale=2.0)
    d = s - t
    d = d - d.mean(1, keepdim=True)
    logit_matching = float((d ** 2).sum(1).mean() / (2 * d.shape[1]))
    assert float(kd_loss(s, t, None, T=1000.0, alpha=1.0)) == pytest.approx(logit_matching, rel=1e-2)
    # and without T^2 the soft term vanishes as T grows
    assert float(kd_loss_no_t2(s, t, None, T=1000.0, alpha=1.0)) < 1e-5


def test_soft_targets_limits():
    z = torch.tensor([[3.0, 1.0, 0.0]])
    assert torch.allclose(soft_targets(z, 1e6), torch.full((1, 3), 1 / 3), atol=1e-5)
    assert soft_targets(z, 1e-3).argmax() == 0 and float(soft_targets(z, 1e-3).max()) > 0.999


def test_teacher_gets_no_gradient():
    s, t, y = _rand()
    s.requires_grad_(); t.requires_grad_()
    kd_loss(s, t, y, T=2.0, alpha=0.5).backward()
    assert s.grad is not None and t.grad is None


# --------------------------------------------------------------------------- gradient scale
def _soft_grad(fn, s, t, T):
    z = s.clone().requires_grad_()
    return torch.autograd.grad(fn(z, t, None, T=T, alpha=1.0), z)[0]


def test_gradient_formula():
    s, t, _ = _rand(B=5, C=4)
    T = 3.0
    g = _soft_grad(kd_loss, s, t, T)
    q, p = F.softmax(s / T, 1), F.softmax(t / T, 1)
    assert torch.allclose(g, T * (q - p) / len(s), atol=1e-6)         # T^2 * (q - p) / T, batch mean


def test_gradient_scale_with_and_without_t2():
    s, t, _ = _rand(B=32, C=10, scale=2.0)
    temps = [4.0, 8.0, 16.0, 32.0, 64.0]
    with_t2 = [float(_soft_grad(kd_loss, s, t, T).norm()) for T in temps]
    without = [float(_soft_grad(kd_loss_no_t2, s, t, T).norm()) for T in temps]
    # with T^2: roughly constant across T
    assert max(with_t2) / min(with_t2) < 1.5
    # without: shrinks like 1/T^2 once T exceeds the logits' spread
    for a, b in zip(without[1:], without[2:]):
        assert a / b == pytest.approx(4.0, rel=0.1)
    for T, w, wo in zip(temps, with_t2, without):
        assert w / wo == pytest.approx(T * T, rel=1e-4)


# --------------------------------------------------------------------------- errors
@pytest.mark.parametrize("args, kwargs, words", [
    ((torch.zeros(4, 3), torch.zeros(4, 5), torch.zeros(4, dtype=torch.long)), {}, "same shape"),
    ((torch.zeros(3), torch.zeros(3), torch.zeros(1, dtype=torch.long)), {}, "(B, C)"),
    ((torch.zeros(4, 3), torch.zeros(4, 3), torch.zeros(5, dtype=torch.long)), {}, "one class id per row"),
    ((torch.zeros(4, 3), torch.zeros(4, 3), torch.zeros(4, 3)), {}, "integer tensor"),
    ((torch.zeros(4, 3), torch.zeros(4, 3), torch.tensor([0, 1, 2, 3])), {}, "0..2"),
    ((torch.zeros(4, 3), torch.zeros(4, 3), None), {"alpha": 0.5}, "alpha < 1"),
    ((torch.zeros(4, 3), torch.zeros(4, 3), torch.zeros(4, dtype=torch.long)), {"T": 0.0}, "positive"),
    ((torch.zeros(4, 3), torch.zeros(4, 3), torch.zeros(4, dtype=torch.long)), {"T": -2.0}, "positive"),
    ((torch.zeros(4, 3), torch.zeros(4, 3), torch.zeros(4, dtype=torch.long)), {"T": float("nan")}, "positive"),
    ((torch.zeros(4, 3), torch.zeros(4, 3), torch.zeros(4, dtype=torch.long)), {"T": "hot"}, "positive"),
    ((torch.zeros(4, 3), torch.zeros(4, 3), torch.zeros(4, dtype=torch.long)), {"alpha": 1.5}, "[0, 1]"),
    ((torch.zeros(4, 3), torch.zeros(4, 3), torch.zeros(4, dtype=torch.long)), {"alpha": -0.1}, "[0, 1]"),
    ((torch.zeros(4, 3), torch.zeros(4, 3), torch.zeros(4, dtype=torch.long)), {"reduction": "mean"}, "batchmean"),
    (([[0.0, 1.0]], torch.zeros(1, 2), torch.zeros(1, dtype=torch.long)), {}, "tensor of logits"),
])
def test_errors_say_expected_found_and_fix(args, kwargs, words):
    with pytest.raises(CourseError) as err:
        kd_loss(*args, **kwargs)
    msg = str(err.value)
    assert words in msg and "expected" in msg and "found" in msg and "What to do" in msg


def test_mistake_functions_check_inputs_too():
    with pytest.raises(CourseError):
        kd_loss_swapped_kl(torch.zeros(2, 3), torch.zeros(2, 4), None, T=2.0, alpha=1.0)


# --------------------------------------------------------------------------- the mistakes
def test_swapped_is_reverse_kl():
    s, t, _ = _rand()
    T = 2.0
    log_p, log_q = F.log_softmax(t / T, 1), F.log_softmax(s / T, 1)
    reverse = (log_q.exp() * (log_q - log_p)).sum(1).mean() * T * T
    assert float(kd_loss_swapped_kl(s, t, None, T=T, alpha=1.0)) == pytest.approx(float(reverse), rel=1e-5)
    assert float(kd_loss_swapped_kl(s, t, None, T=T, alpha=1.0)) != pytest.approx(
        float(kd_loss(s, t, None, T=T, alpha=1.0)), rel=1e-2)


def test_softmax_input_is_not_a_divergence():
    _, t, _ = _rand()
    v = float(kd_loss_softmax_input(t, t, None, T=2.0, alpha=1.0))
    assert v < -0.1                       # negative, and not zero at student == teacher


def test_no_t2_is_correct_divided_by_t2():
    s, t, _ = _rand()
    assert float(kd_loss_no_t2(s, t, None, T=5.0, alpha=1.0)) * 25 == pytest.approx(
        float(kd_loss(s, t, None, T=5.0, alpha=1.0)), rel=1e-5)


def test_copy_weights_refuses_other_architectures():
    small, big = mlp_classifier(8, [4], 3), mlp_classifier(8, [16], 3)
    with pytest.raises(CourseError, match="architecture"):
        copy_weights(small, big)
    other = mlp_classifier(8, [4], 3)
    copy_weights(other, small)
    assert all(torch.equal(a, b) for a, b in zip(other.state_dict().values(), small.state_dict().values()))


def test_slice_copy_and_interpolate():
    small, big = mlp_classifier(8, [4], 3), mlp_classifier(8, [16], 3)
    slice_copy_weights(small, big)
    assert torch.equal(small.features[1][0].weight, big.features[1][0].weight[:4, :8])
    assert torch.equal(small.head.weight, big.head.weight[:, :4])
    with pytest.raises(CourseError):
        slice_copy_weights(big, small)
    a, b = mlp_classifier(8, [4], 3), mlp_classifier(8, [4], 3)
    for w, ref in ((0.0, a), (1.0, b)):
        mixed = interpolate_weights(a, b, w)
        assert all(torch.allclose(x, y) for x, y in zip(mixed.state_dict().values(), ref.state_dict().values()))
    half = interpolate_weights(a, b, 0.5)
    assert torch.allclose(half.head.weight, (a.head.weight + b.head.weight) / 2)
    with pytest.raises(CourseError):
        interpolate_weights(a, big)


# --------------------------------------------------------------------------- ensembles
def test_ensemble_logits_average_probabilities_at_temperature():
    g = torch.Generator().manual_seed(1)
    zs = [3 * torch.randn(5, 4, generator=g) for _ in range(3)]
    T = 4.0
    z = ensemble_logits(zs, T)
    want = torch.stack([F.softmax(a / T, 1) for a in zs]).mean(0)
    assert torch.allclose(F.softmax(z / T, 1), want, atol=1e-6)
    assert torch.allclose(F.softmax(ensemble_logits(zs[:1], T) / T, 1), F.softmax(zs[0] / T, 1), atol=1e-6)
    with pytest.raises(CourseError):
        ensemble_logits([zs[0], zs[1][:, :3]], T)
    with pytest.raises(CourseError):
        ensemble_logits([], T)


def test_ensemble_module():
    torch.manual_seed(0)
    models = [mlp_classifier(6, [5], 3) for _ in range(2)]
    x = torch.randn(7, 6)
    out = Ensemble(models)(x)
    want = (F.softmax(models[0](x), 1) + F.softmax(models[1](x), 1)) / 2
    assert torch.allclose(out.exp(), want, atol=1e-6)


# --------------------------------------------------------------------------- the training loop
def _toy(n=60, d=6, c=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 1, 2, 3, generator=g)
    y = torch.randint(0, c, (n,), generator=g)
    return x, y


def _models(seed=0):
    torch.manual_seed(seed)
    teacher = nn.Sequential(nn.Flatten(), nn.Linear(6, 16), nn.ReLU(), nn.Dropout(0.5), nn.Linear(16, 3))
    student = nn.Sequential(nn.Flatten(), nn.Linear(6, 3))
    return teacher, student


def test_distill_precomputed_equals_per_batch():
    x, y = _toy()
    teacher, s1 = _models()
    _, s2 = _models()
    s2.load_state_dict(s1.state_dict())
    kw = dict(T=3.0, alpha=0.7, epochs=3, lr=1e-2, batch_size=16, device="cpu", seed=5, progress=False)
    h1 = distill(s1, teacher, (x, y), (x, y), precompute=True, **kw)
    h2 = distill(s2, teacher, (x, y), (x, y), precompute=False, **kw)
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(s1.state_dict().values(), s2.state_dict().values()))
    assert h1.train_loss == pytest.approx(h2.train_loss, rel=1e-5)
    assert h1.train_acc == pytest.approx(h2.train_acc) and h1.val_acc == pytest.approx(h2.val_acc)


def test_distill_with_alpha_zero_is_fit():
    from utils.training import fit
    x, y = _toy()
    teacher, s1 = _models()
    _, s2 = _models()
    s2.load_state_dict(s1.state_dict())
    distill(s1, teacher, (x, y), T=3.0, alpha=0.0, epochs=2, lr=1e-2, batch_size=16, device="cpu", seed=1, progress=False)
    fit(s2, (x, y), epochs=2, lr=1e-2, batch_size=16, device="cpu", seed=1, progress=False)
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(s1.state_dict().values(), s2.state_dict().values()))


def test_distill_leaves_teacher_alone_and_learns_it():
    x, y = _toy(n=200)
    teacher, student = _models()
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    teacher.train()
    zt = teacher_logits(teacher, x, device="cpu")
    with torch.no_grad():
        kl0 = float(kd_loss(student(x), zt, None, T=2.0, alpha=1.0))
    distill(student, teacher, (x, y), T=2.0, alpha=1.0, epochs=30, lr=3e-2, batch_size=50, device="cpu",
            progress=False)
    with torch.no_grad():
        kl1 = float(kd_loss(student(x), zt, None, T=2.0, alpha=1.0))
    assert kl1 < 0.5 * kl0
    assert all(torch.equal(v, teacher.state_dict()[k]) for k, v in before.items())
    assert teacher.training


def test_distill_from_a_list_of_teachers_and_checks_classes():
    x, y = _toy()
    t1, student = _models(0)
    t2, _ = _models(1)
    distill(student, [t1, t2], (x, y), T=4.0, alpha=0.5, epochs=1, batch_size=16, device="cpu", progress=False)
    wrong = nn.Sequential(nn.Flatten(), nn.Linear(6, 4))
    with pytest.raises(CourseError, match="teachers' number of classes"):
        distill(wrong, t1, (x, y), epochs=1, device="cpu", progress=False)
    with pytest.raises(CourseError):
        distill(student, [], (x, y), epochs=1, device="cpu", progress=False)
    with pytest.raises(CourseError):
        distill(student, t1, (x, y), T=0, epochs=1, device="cpu", progress=False)


# --------------------------------------------------------------------------- dark-knowledge probe
def test_same_group_soft_mass():
    groups = torch.tensor([0, 0, 1, 1])
    # all wrong-class mass on the same-group class -> 1; spread evenly -> 1/3
    logits = torch.log(torch.tensor([[0.7, 0.3, 1e-9, 1e-9], [0.4, 0.2, 0.2, 0.2]]))
    labels = torch.tensor([0, 0])
    v1 = same_group_soft_mass(logits[:1], labels[:1], groups)
    v2 = same_group_soft_mass(logits[1:], labels[1:], groups)
    assert v1 == pytest.approx(1.0, abs=1e-6) and v2 == pytest.approx(1 / 3, abs=1e-6)


def test_adapted_prototypes_is_a_protonet_teacher():
    from utils.distill import AdaptedPrototypes
    from utils.learners import protonet_logits
    torch.manual_seed(0)
    enc = nn.Sequential(nn.Linear(6, 4))
    sx, sy = torch.randn(6, 6), torch.tensor([0, 0, 1, 1, 2, 2])
    teacher = AdaptedPrototypes(enc, sx, sy)
    x = torch.randn(5, 6)
    assert torch.allclose(teacher(x), protonet_logits(enc(sx), sy, enc(x), 3))
    # a support example sits nearest its own class prototype when the classes are far apart
    far = AdaptedPrototypes(nn.Identity(), torch.eye(3).repeat_interleave(2, 0) * 10, sy)
    assert far(torch.eye(3) * 10).argmax(1).tolist() == [0, 1, 2]
    student = mlp_classifier(6, [8], 3)
    distill(student, [teacher, AdaptedPrototypes(enc, sx, sy)], (x, torch.zeros(5, dtype=torch.long)), T=2.0,
            alpha=1.0, epochs=2, batch_size=5, device="cpu", progress=False)
    with pytest.raises(CourseError, match="support set"):
        AdaptedPrototypes(enc, sx, sy.float())
