"""Fusion primitives (utils.fuse): output ensembles, calibration, weight averaging with its
compatibility checks, greedy soups, mixtures of experts, and ensembles of adapted few-shot learners.

Every test is deterministic (fixed seeds), runs on the CPU in well under a second or two, and
compares against an independent hand computation, so a wrong primitive fails it.
"""
import copy
import math

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from utils import fuse, glyphs, tasks
from utils.learners import ensemble as meta_eval
from utils.errors import CourseError
from utils.models import MLP, conv4_classifier, mlp_classifier


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models: one BLAS thread is faster (and steadier on a shared machine) than several."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _mlp(seed=0, sizes=(6, 12, 4), act=None):
    torch.manual_seed(seed)
    net = MLP(list(sizes))
    if act is not None:  # same state-dict shapes, different function
        for i, m in enumerate(net):
            if isinstance(m, nn.ReLU):
                net[i] = act()
    return net


# =============================================================================== output ensembles
def test_ensemble_rules_match_hand_computation():
    z = 3 * torch.randn(5, 7, 4, generator=_gen(0))
    prob = fuse.ensemble_predict(z, "prob")
    logit = fuse.ensemble_predict(z, "logit")
    vote = fuse.ensemble_predict(z, "vote")
    assert torch.allclose(prob, torch.stack([z[m].softmax(-1) for m in range(5)]).mean(0), atol=1e-6)
    assert torch.allclose(logit, z.mean(0).softmax(-1), atol=1e-6)
    manual_vote = torch.zeros(7, 4)
    for m in range(5):
        for b in range(7):
            manual_vote[b, int(z[m, b].argmax())] += 1 / 5
    assert torch.allclose(vote, manual_vote, atol=1e-6)
    for p in (prob, logit, vote):
        assert p.shape == (7, 4)
        assert torch.allclose(p.sum(-1), torch.ones(7), atol=1e-5)
    assert not torch.allclose(prob, logit, atol=1e-3)  # the two averaging rules really differ


def test_ensemble_rules_disagree_where_they_should():
    # member 0 is very sure of class 0; members 1 and 2 slightly prefer class 1
    z = torch.tensor([[[8.0, 0.0]], [[0.0, 0.5]], [[0.0, 0.5]]])
    assert int(fuse.ensemble_predict(z, "prob").argmax()) == 0     # one confident member wins the mean
    assert int(fuse.ensemble_predict(z, "logit").argmax()) == 0
    vote = fuse.ensemble_predict(z, "vote")
    assert int(vote.argmax()) == 1 and torch.allclose(vote, torch.tensor([[1 / 3, 2 / 3]]))
    # a one-member ensemble is that member, for every rule's argmax and for prob/logit exactly
    one = z[:1]
    assert torch.allclose(fuse.ensemble_predict(one, "prob"), one[0].softmax(-1))
    assert torch.allclose(fuse.ensemble_predict(one, "logit"), one[0].softmax(-1))


def test_ensemble_predict_accepts_a_list_and_rejects_bad_input():
    z = torch.randn(3, 4, 5, generator=_gen(1))
    assert torch.allclose(fuse.ensemble_predict(list(z)), fuse.ensemble_predict(z))
    with pytest.raises(CourseError, match="method: expected one of 'prob', 'logit', 'vote'"):
        fuse.ensemble_predict(z, "mean")
    with pytest.raises(CourseError, match="same \\(B, C\\) shape"):
        fuse.ensemble_predict([torch.randn(4, 5), torch.randn(3, 5)])
    with pytest.raises(CourseError, match="\\(M, B, C\\)"):
        fuse.ensemble_predict(torch.randn(4, 5))
    with pytest.raises(CourseError, match="empty list"):
        fuse.ensemble_predict([])
    with pytest.raises(CourseError, match="floating-point"):
        fuse.ensemble_predict(torch.ones(2, 3, 4, dtype=torch.long))


def test_member_logits_uses_eval_mode_and_restores_nothing_else():
    torch.manual_seed(0)
    models = [mlp_classifier(6, [16], 3, dropout=0.5) for _ in range(3)]
    x = torch.randn(10, 6, generator=_gen(2))
    a = fuse.member_logits(models, x, device="cpu")
    b = fuse.member_logits(models, x, device="cpu")
    assert a.shape == (3, 10, 3)
    assert torch.equal(a, b)  # dropout off: eval mode
    with torch.no_grad():
        manual = torch.stack([m.eval()(x) for m in models])
    assert torch.allclose(a, manual, atol=1e-6)
    with pytest.raises(CourseError):
        fuse.member_logits([], x)


@pytest.mark.parametrize("kind", ["mlp", "conv"])
def test_vmap_ensemble_equals_the_loop(kind):
    torch.manual_seed(0)
    if kind == "mlp":
        models = [mlp_classifier(16, [12, 8], 5) for _ in range(4)]
        x = torch.randn(9, 16, generator=_gen(3))
    else:
        models = [conv4_classifier(5, hidden=4, image_size=8, blocks=2) for _ in range(3)]
        for m in models:  # non-trivial BatchNorm running statistics, which eval mode must use
            m.train()
            with torch.no_grad():
                m(torch.randn(32, 1, 8, 8) * 2 + 1)
        x = torch.randn(6, 1, 8, 8, generator=_gen(3))
    ens = fuse.VmapEnsemble(models, device="cpu")
    out = ens(x)
    ref = fuse.loop_ensemble_logits(models, x)
    assert out.shape == (len(models), x.shape[0], 5)
    assert torch.allclose(out, ref, atol=1e-5)
    assert ens.n_members == len(models)
    # members really differ, so equality above is not the trivial one
    assert not torch.allclose(ref[0], ref[1], atol=1e-3)


def test_loop_ensemble_restores_training_mode():
    models = [_mlp(0), _mlp(1)]
    models[0].train(), models[1].eval()
    fuse.loop_ensemble_logits(models, torch.randn(2, 6))
    assert models[0].training and not models[1].training


def test_vmap_ensemble_refuses_mixed_architectures():
    with pytest.raises(CourseError, match="member 1"):
        fuse.VmapEnsemble([_mlp(0), _mlp(1, sizes=(6, 10, 4))], device="cpu")


def test_time_ensembles_reports_consistent_figures():
    torch.manual_seed(0)
    models = [mlp_classifier(8, [8], 3) for _ in range(3)]
    t = fuse.time_ensembles(models, torch.randn(4, 8), repeats=3, device="cpu")
    assert set(t) == {"loop_s", "vmap_s", "speedup", "max_abs_diff"}
    assert t["loop_s"] > 0 and t["vmap_s"] > 0
    assert math.isclose(t["speedup"], t["loop_s"] / t["vmap_s"])
    assert t["max_abs_diff"] < 1e-5


# =============================================================================== calibration
def test_reliability_diagram_hand_example():
    # bin (0.8, 0.9]: three predictions at 0.9, two correct; bin (0.5, 0.6]: 0.6 right, 0.55 wrong
    probs = torch.tensor([[0.9, 0.1], [0.9, 0.1], [0.1, 0.9], [0.6, 0.4], [0.45, 0.55]])
    labels = torch.tensor([0, 1, 1, 0, 0])
    d = fuse.reliability_diagram(probs, labels, n_bins=10)
    assert d.counts[8] == 3 and d.counts[5] == 2 and d.counts.sum() == 5
    assert math.isclose(float(d.confidence[8]), 0.9, abs_tol=1e-6)
    assert math.isclose(float(d.accuracy[8]), 2 / 3, abs_tol=1e-6)
    assert math.isclose(float(d.confidence[5]), 0.575, abs_tol=1e-6)
    assert math.isclose(float(d.accuracy[5]), 0.5, abs_tol=1e-6)
    expected = 3 / 5 * abs(2 / 3 - 0.9) + 2 / 5 * abs(0.5 - 0.575)   # weighted by bin counts
    assert math.isclose(d.ece, expected, abs_tol=1e-6)
    assert math.isnan(float(d.confidence[0]))  # empty bins are nan, not 0
    assert math.isclose(fuse.expected_calibration_error(probs, labels), expected, abs_tol=1e-6)


def test_ece_extremes_and_bad_input():
    labels = torch.arange(5) % 3
    onehot = F.one_hot(labels, 3).float()
    assert fuse.expected_calibration_error(onehot, labels) == 0.0          # sure and right
    wrong = F.one_hot((labels + 1) % 3, 3).float()
    assert math.isclose(fuse.expected_calibration_error(wrong, labels), 1.0)  # sure and wrong
    with pytest.raises(CourseError, match="apply softmax"):
        fuse.expected_calibration_error(torch.randn(5, 3), labels)
    with pytest.raises(CourseError, match="one label per row"):
        fuse.expected_calibration_error(onehot, labels[:4])
    with pytest.raises(CourseError, match="n_bins"):
        fuse.reliability_diagram(onehot, labels, n_bins=0)


def test_temperature_scaling_recovers_a_known_temperature():
    g = _gen(4)
    z = 2 * torch.randn(4000, 5, generator=g)
    labels = torch.multinomial(z.softmax(-1), 1, generator=g).flatten()  # calibrated at T = 1
    T = fuse.fit_temperature(3 * z, labels)                                # scores 3x too sharp
    assert 2.5 < T < 3.6
    scaled = fuse.apply_temperature(3 * z, T)
    assert torch.equal(scaled.argmax(-1), z.argmax(-1))                   # argmax unchanged
    assert fuse.log_loss(scaled, labels) < fuse.log_loss((3 * z).softmax(-1), labels)
    with pytest.raises(CourseError, match="positive number"):
        fuse.apply_temperature(z, 0.0)
    with pytest.raises(CourseError):
        fuse.fit_temperature(z, labels[:10])


def test_log_loss_and_accuracy():
    probs = torch.tensor([[0.5, 0.5], [0.25, 0.75]])
    labels = torch.tensor([0, 1])
    assert math.isclose(fuse.log_loss(probs, labels), -(math.log(0.5) + math.log(0.75)) / 2, rel_tol=1e-6)
    assert fuse.accuracy(torch.tensor([[2.0, 1.0], [0.0, 3.0], [1.0, 0.0]]), torch.tensor([0, 1, 1])) == \
        pytest.approx(2 / 3)


# =============================================================================== weight space
def test_check_compatible_names_the_problem():
    fuse.check_compatible(_mlp(0), _mlp(1))  # same architecture: fine
    with pytest.raises(CourseError, match=r"parameter '0.weight': expected shape \(12, 6\).*\(10, 6\)"):
        fuse.check_compatible(_mlp(0), _mlp(1, sizes=(6, 10, 4)))
    with pytest.raises(CourseError, match="architecture of model B.*ReLU.*Tanh"):
        fuse.check_compatible(_mlp(0), _mlp(1, act=nn.Tanh))
    with pytest.raises(CourseError, match="missing keys '2.weight'"):
        fuse.check_compatible(_mlp(0).state_dict(), {k: v for k, v in _mlp(1).state_dict().items()
                                                     if k != "2.weight"})
    with pytest.raises(CourseError, match="extra keys 'extra'"):
        fuse.check_compatible(_mlp(0).state_dict(), {**_mlp(1).state_dict(), "extra": torch.zeros(1)})
    half = _mlp(1).double()
    with pytest.raises(CourseError, match="dtype torch.float32 .*dtype torch.float64"):
        fuse.check_compatible(_mlp(0), half)
    with pytest.raises(CourseError, match="nn.Module or a state dict"):
        fuse.check_compatible(_mlp(0), [1, 2])


def test_interpolation_endpoints_midpoint_and_extrapolation():
    a, b = _mlp(0), _mlp(1)
    sa, sb = a.state_dict(), b.state_dict()
    s0 = fuse.interpolate_state_dicts(a, b, 0)
    s1 = fuse.interpolate_state_dicts(a, b, 1.0)
    mid = fuse.interpolate_state_dicts(a, b, 0.5)
    ext = fuse.interpolate_state_dicts(sa, sb, 2.0)
    for k in sa:
        assert torch.equal(s0[k], sa[k]) and torch.equal(s1[k], sb[k])
        assert torch.allclose(mid[k], (sa[k] + sb[k]) / 2, atol=1e-6)
        assert torch.allclose(ext[k], 2 * sb[k] - sa[k], atol=1e-5)
    s0["0.weight"].add_(1.0)  # a copy, not a view of model A's weights
    assert not torch.equal(s0["0.weight"], a.state_dict()["0.weight"])
    for bad in ("half", float("nan"), None):
        with pytest.raises(CourseError, match="alpha"):
            fuse.interpolate_state_dicts(a, b, bad)
    with pytest.raises(CourseError):
        fuse.interpolate_state_dicts(a, _mlp(1, sizes=(6, 10, 4)), 0.5)


def test_interpolation_handles_batchnorm_buffers():
    torch.manual_seed(0)
    a = conv4_classifier(3, hidden=4, image_size=8, blocks=1)
    b = conv4_classifier(3, hidden=4, image_size=8, blocks=1)
    a.train()(torch.randn(8, 1, 8, 8))  # num_batches_tracked 1 vs 0; running stats differ
    mid = fuse.interpolate_state_dicts(a, b, 0.5)
    key = [k for k in mid if k.endswith("num_batches_tracked")][0]
    assert mid[key].dtype == torch.long and int(mid[key]) == 1      # integer: from the nearer end (a)
    assert int(fuse.interpolate_state_dicts(a, b, 0.7)[key]) == 0
    rm = [k for k in mid if k.endswith("running_mean")][0]
    assert torch.allclose(mid[rm], (a.state_dict()[rm] + b.state_dict()[rm]) / 2)


def test_interpolate_models_leaves_the_inputs_alone():
    a, b = _mlp(0), _mlp(1)
    before = copy.deepcopy(a.state_dict())
    m = fuse.interpolate_models(a, b, 0.3)
    x = torch.randn(5, 6, generator=_gen(5))
    for k, v in a.state_dict().items():
        assert torch.equal(v, before[k])
    assert m is not a
    with torch.no_grad():
        assert torch.allclose(fuse.interpolate_models(a, b, 0.0)(x), a(x))
        manual = copy.deepcopy(a)
        for (n, p), q in zip(manual.named_parameters(), b.parameters()):
            p.copy_(0.7 * p + 0.3 * q)
        assert torch.allclose(m(x), manual(x), atol=1e-6)


def test_average_state_dicts_uniform_weighted_and_errors():
    nets = [_mlp(s) for s in range(3)]
    sds = [n.state_dict() for n in nets]
    avg = fuse.average_state_dicts(nets)
    w = fuse.average_state_dicts(sds, weights=[2, 1, 1])       # normalised to 0.5, 0.25, 0.25
    for k in sds[0]:
        assert torch.allclose(avg[k], (sds[0][k] + sds[1][k] + sds[2][k]) / 3, atol=1e-6)
        assert torch.allclose(w[k], 0.5 * sds[0][k] + 0.25 * sds[1][k] + 0.25 * sds[2][k], atol=1e-6)
        assert avg[k].dtype == sds[0][k].dtype
    same = fuse.average_state_dicts([sds[0], sds[0]])
    assert all(torch.allclose(same[k], sds[0][k]) for k in sds[0])
    assert all(torch.equal(fuse.average_state_dicts([sds[1]])[k], sds[1][k]) for k in sds[1])
    with pytest.raises(CourseError, match="3 non-negative numbers"):
        fuse.average_state_dicts(sds, weights=[1, 1])
    with pytest.raises(CourseError, match="non-negative"):
        fuse.average_state_dicts(sds, weights=[1, -1, 1])
    with pytest.raises(CourseError, match="empty list"):
        fuse.average_state_dicts([])
    with pytest.raises(CourseError, match=r"parameter '2.weight': expected shape \(4, 12\).*shape \(5, 12\) in model 2"):
        fuse.average_state_dicts(sds[:2] + [_mlp(0, sizes=(6, 12, 5)).state_dict()])


def test_average_models_returns_a_working_model_or_a_clear_error():
    nets = [_mlp(s) for s in range(3)]
    avg = fuse.average_models(nets)
    assert isinstance(avg, MLP) and all(avg is not n for n in nets)
    with torch.no_grad():
        assert torch.allclose(avg[0].weight, sum(n[0].weight for n in nets) / 3, atol=1e-6)
    with pytest.raises(CourseError, match="architecture"):
        fuse.average_models([nets[0], _mlp(1, act=nn.Tanh)])
    with pytest.raises(CourseError, match="fuse weights only of models"):
        fuse.average_models([nets[0], _mlp(1, sizes=(6, 12, 3))])


def test_permutation_symmetry_same_function_different_weights():
    """Why averaging independent networks fails: permuting hidden units keeps the function but
    moves the weights, so the midpoint of a net and its own permutation is a different function."""
    net = _mlp(0, sizes=(6, 12, 4))
    perm = torch.randperm(12, generator=_gen(6))
    twin = copy.deepcopy(net)
    with torch.no_grad():
        twin[0].weight.copy_(net[0].weight[perm])
        twin[0].bias.copy_(net[0].bias[perm])
        twin[2].weight.copy_(net[2].weight[:, perm])
    x = torch.randn(50, 6, generator=_gen(7))
    with torch.no_grad():
        assert torch.allclose(net(x), twin(x), atol=1e-5)
        mid = fuse.interpolate_models(net, twin, 0.5)
        assert (mid(x) - net(x)).abs().max() > 1e-2


def test_load_state_copies_the_template():
    t = _mlp(0)
    sd = _mlp(1).state_dict()
    m = fuse.load_state(t, sd)
    assert torch.equal(m[0].weight, sd["0.weight"]) and not torch.equal(t[0].weight, sd["0.weight"])
    with pytest.raises(CourseError):
        fuse.load_state(t, _mlp(1, sizes=(6, 10, 4)).state_dict())


def test_recompute_batchnorm_gives_exact_statistics():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3))
    with torch.no_grad():
        model[0].weight.copy_(torch.eye(3))
        model[0].bias.zero_()
    model.eval()
    x = torch.randn(300, 3, generator=_gen(8)) * torch.tensor([1.0, 2.0, 0.5]) + torch.tensor([3.0, -1.0, 0.0])
    out = fuse.recompute_batchnorm(model, x, batch_size=300, device="cpu")
    bn = model[1]
    assert out is model and not model.training          # mode restored
    assert bn.momentum == 0.1                           # momentum restored
    assert torch.allclose(bn.running_mean, x.mean(0), atol=1e-5)
    assert torch.allclose(bn.running_var, x.var(0, unbiased=True), atol=1e-4)
    # in several batches it is the average of the batch statistics (cumulative moving average)
    fuse.recompute_batchnorm(model, x, batch_size=100, device="cpu")
    assert torch.allclose(bn.running_mean, x.mean(0), atol=1e-5)
    plain = _mlp(0)
    before = copy.deepcopy(plain.state_dict())
    fuse.recompute_batchnorm(plain, torch.randn(4, 6))  # no BatchNorm: unchanged
    assert all(torch.equal(v, before[k]) for k, v in plain.state_dict().items())


def test_barrier_height():
    assert fuse.barrier_height([1.0, 3.0, 1.0]) == pytest.approx(2.0)
    assert fuse.barrier_height([1.0, 1.5, 2.0]) == pytest.approx(0.5)       # max - mean of the ends
    assert fuse.barrier_height([2.0, 1.0, 0.5, 2.0]) == pytest.approx(0.0)  # a valley: no barrier
    with pytest.raises(CourseError, match="2 or more points"):
        fuse.barrier_height([1.0])


def _toy_classification(seed=0, n=120):
    g = _gen(seed)
    x = torch.randn(n, 6, generator=g)
    y = (x[:, 0] + x[:, 1] > 0).long() + (x[:, 2] > 1).long()
    return x, y


def test_linear_path_of_a_model_with_itself_is_flat():
    a = _mlp(0, sizes=(6, 12, 3))
    x, y = _toy_classification()
    path = fuse.linear_path(a, copy.deepcopy(a), (x, y), alphas=[0, 0.25, 0.5, 0.75, 1], device="cpu")
    assert path.alphas == [0, 0.25, 0.5, 0.75, 1]
    assert max(path.loss) - min(path.loss) < 1e-5
    assert abs(path.barrier) < 1e-5 and abs(path.accuracy_drop) < 1e-9
    b = _mlp(1, sizes=(6, 12, 3))
    p2 = fuse.linear_path(a, b, (x, y), device="cpu")
    assert len(p2.loss) == 11
    ends = [fuse.load_state(a, a.state_dict()), b]
    from utils.training import evaluate
    assert p2.loss[0] == pytest.approx(evaluate(ends[0], (x, y), "cpu")["loss"], rel=1e-5)
    assert p2.loss[-1] == pytest.approx(evaluate(ends[1], (x, y), "cpu")["loss"], rel=1e-5)
    with pytest.raises(CourseError):
        fuse.linear_path(a, _mlp(0, sizes=(6, 8, 3)), (x, y))


# =============================================================================== greedy soup
def _scalar(v):
    return {"w": torch.tensor([float(v)])}


def _dist_score(sd):
    return -float((sd["w"] - 1.0) ** 2)  # best at w = 1


def test_greedy_soup_follows_algorithm_1():
    cands = [_scalar(v) for v in (3.0, 1.2, -1.0, 0.9, 1.1)]
    res = fuse.greedy_soup(cands, _dist_score)
    assert res.order == [3, 4, 1, 0, 2]           # sorted by own score, best first; the tie (3.0, -1.0) keeps input order
    assert res.chosen == [3, 4]                   # 1.2 would pull the soup's mean away from 1
    assert [t[0] for t in res.trace] == res.order
    assert [t[2] for t in res.trace] == [True, True, False, False, False]
    assert torch.allclose(res.state_dict["w"], torch.tensor([1.0]))
    assert res.score == pytest.approx(_dist_score(res.state_dict))
    assert res.scores == pytest.approx([_dist_score(c) for c in cands])


def test_greedy_soup_keeps_ties_and_judges_the_average():
    # ">=": an ingredient that leaves the soup's score unchanged is kept
    assert fuse.greedy_soup([_scalar(v) for v in (1.0, 3.0, 1.0, -1.0)], _dist_score).chosen == [0, 2]
    # judged by the averaged soup, not by its own score: 1.3 alone is worse than 0.75,
    # but averaged with 0.8 it gives 1.05, better than 0.8 alone
    assert fuse.greedy_soup([_scalar(v) for v in (1.3, 0.8, 0.75)], _dist_score).chosen == [1, 0]
    # the walk is sorted: starting from index 0 (w=0) would keep 2.0; sorted, 1.05 comes first
    assert fuse.greedy_soup([_scalar(v) for v in (0.0, 2.0, 1.05)], _dist_score).chosen == [2]


def test_greedy_soup_on_real_models_never_below_its_first_ingredient():
    x, y = _toy_classification(1, 200)
    xv, yv = _toy_classification(2, 200)
    base = _mlp(0, sizes=(6, 16, 3))
    from utils.training import fit
    fit(base, (x, y), epochs=5, lr=1e-2, batch_size=32, seed=0, device="cpu", progress=False)
    tunes = []
    for s, lr in enumerate((3e-3, 1e-2, 3e-2, 1e-1)):
        m = copy.deepcopy(base)
        fit(m, (x, y), epochs=3, lr=lr, batch_size=32, seed=s + 1, device="cpu", progress=False)
        tunes.append(m)
    score = fuse.state_dict_scorer(base, (xv, yv), metric="neg_loss", device="cpu")
    res = fuse.greedy_soup(tunes, score)
    assert res.score >= max(res.scores) - 1e-12
    assert res.score == pytest.approx(score(res.state_dict))
    assert res.chosen[0] == res.order[0] == max(range(4), key=lambda i: res.scores[i])
    acc = fuse.state_dict_scorer(base, (xv, yv), device="cpu")
    assert 0.0 <= acc(res.state_dict) <= 1.0
    with pytest.raises(CourseError, match="'accuracy' or 'neg_loss'"):
        fuse.state_dict_scorer(base, (xv, yv), metric="f1")


def test_greedy_soup_refuses_bad_candidates():
    with pytest.raises(CourseError, match="empty list"):
        fuse.greedy_soup([], _dist_score)
    with pytest.raises(CourseError, match="candidate 1"):
        fuse.greedy_soup([_mlp(0).state_dict(), _mlp(0, sizes=(6, 11, 4)).state_dict()], lambda sd: 0.0)


# =============================================================================== mixture of experts
def test_top_k_gating_renormalised_and_switch_style():
    logits = torch.randn(20, 5, generator=_gen(9))
    for k in (1, 2, 3, 5):
        g = fuse.top_k_gating(logits, k)
        assert ((g > 0).sum(1) == k).all()
        assert torch.allclose(g.sum(1), torch.ones(20), atol=1e-6)
        keep = logits.topk(k, 1).indices
        assert torch.equal((g > 0), torch.zeros_like(g, dtype=torch.bool).scatter(1, keep, True))
        kept = logits.gather(1, keep).softmax(1)
        assert torch.allclose(g.gather(1, keep), kept, atol=1e-6)
        sw = fuse.top_k_gating(logits, k, renormalize=False)
        assert torch.allclose(sw.gather(1, keep), logits.softmax(1).gather(1, keep), atol=1e-6)
        assert ((sw > 0).sum(1) == k).all()
    assert torch.allclose(fuse.top_k_gating(logits, 5), logits.softmax(1), atol=1e-6)
    for bad in (0, 6, 1.5):
        with pytest.raises(CourseError, match="top_k"):
            fuse.top_k_gating(logits, bad)
    with pytest.raises(CourseError, match="\\(B, E\\)"):
        fuse.top_k_gating(logits[0], 1)


def test_top_1_renormalised_gate_gets_no_gradient():
    logits = torch.randn(6, 4, generator=_gen(10), requires_grad=True)
    target = torch.randn(6, 4, generator=_gen(11))
    (fuse.top_k_gating(logits, 1) * target).sum().backward()
    assert logits.grad.abs().max() == 0
    logits.grad = None
    (fuse.top_k_gating(logits, 1, renormalize=False) * target).sum().backward()
    assert logits.grad.abs().max() > 0
    logits.grad = None
    (fuse.top_k_gating(logits, 2) * target).sum().backward()
    assert logits.grad.abs().max() > 0


def test_load_balancing_loss_values():
    assert float(fuse.load_balancing_loss(torch.full((8, 4), 0.25))) == pytest.approx(0.0, abs=1e-7)
    one = torch.zeros(8, 4)
    one[:, 2] = 1
    assert float(fuse.load_balancing_loss(one)) == pytest.approx(3.0, rel=1e-5)   # E - 1
    gates = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.5, 0.5]])
    imp = torch.tensor([2.5, 1.5])
    assert float(fuse.load_balancing_loss(gates)) == pytest.approx(float(imp.var(unbiased=False) / imp.mean() ** 2))
    g = torch.rand(10, 3, generator=_gen(12), requires_grad=True)
    fuse.load_balancing_loss(g).backward()
    assert g.grad is not None and g.grad.abs().sum() > 0
    with pytest.raises(CourseError, match="\\(B, E\\)"):
        fuse.load_balancing_loss(torch.rand(3))


def _moe(top_k=None, noise_std=0.0, renormalize=True, E=4, D=2):
    torch.manual_seed(0)
    return fuse.MixtureOfExperts([MLP([3, 8, D]) for _ in range(E)], nn.Linear(3, E), top_k=top_k,
                                 noise_std=noise_std, renormalize=renormalize)


def test_moe_forward_shapes_and_mixture():
    moe = _moe()
    x = torch.randn(7, 3, generator=_gen(13))
    out = moe(x)
    assert isinstance(out, fuse.MoEOutput)
    assert out.output.shape == (7, 2) and out.gates.shape == (7, 4) and out.expert_outputs.shape == (7, 4, 2)
    assert torch.allclose(out.gates, moe.gate(x).softmax(1), atol=1e-6)
    manual = sum(out.gates[:, e:e + 1] * moe.experts[e](x) for e in range(4))
    assert torch.allclose(out.output, manual, atol=1e-6)
    assert torch.allclose(out.gates.sum(1), torch.ones(7), atol=1e-6)
    out.output.sum().backward()
    assert moe.gate.weight.grad is not None and all(e[0].weight.grad is not None for e in moe.experts)
    assert moe.n_experts == 4


def test_moe_top_k_and_noise_only_in_training():
    moe = _moe(top_k=2, noise_std=1.0)
    x = torch.randn(30, 3, generator=_gen(14))
    moe.eval()
    g1, g2 = moe(x).gates, moe(x).gates
    assert torch.equal(g1, g2)                                    # no noise in eval mode
    assert ((g1 > 0).sum(1) == 2).all()
    assert torch.allclose(g1, fuse.top_k_gating(moe.gate(x), 2), atol=1e-6)
    moe.train()
    torch.manual_seed(1)
    g3 = moe(x).gates
    assert ((g3 > 0).sum(1) == 2).all() and not torch.equal(g3, g1)  # noisy in training
    sw = _moe(top_k=1, renormalize=False).eval()(x).gates
    assert ((sw > 0).sum(1) == 1).all() and (sw.sum(1) < 1).all()


def test_moe_refuses_bad_configuration():
    with pytest.raises(CourseError, match="top_k"):
        _moe(top_k=5)
    with pytest.raises(CourseError, match="at least one expert"):
        fuse.MixtureOfExperts([], nn.Linear(3, 1))
    moe = fuse.MixtureOfExperts([MLP([3, 4, 1]) for _ in range(3)], nn.Linear(3, 2))
    with pytest.raises(CourseError, match="gate output: expected logits \\(B, 3\\)"):
        moe(torch.randn(2, 3))


def test_routing_table_and_specialization():
    gates = torch.tensor([[1.0, 0.0], [0.8, 0.2], [0.0, 1.0], [0.4, 0.6], [0.6, 0.4]])
    groups = torch.tensor([0, 0, 1, 1, 2])
    table = fuse.routing_table(gates, groups)
    assert torch.allclose(table, torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]]))
    assert fuse.specialization(table) == pytest.approx((0.9 + 0.8 + 0.6) / 3)   # per group (row)
    assert fuse.specialization(torch.full((3, 4), 0.25)) == pytest.approx(0.25)
    assert fuse.specialization(torch.eye(3)) == pytest.approx(1.0)
    assert fuse.routing_table(gates, groups, n_groups=4)[3].sum() == 0   # an empty group
    with pytest.raises(CourseError, match="one group id per input"):
        fuse.routing_table(gates, groups[:3])


def test_piecewise_task_regimes():
    x = torch.tensor([[-3.0], [-1.01], [-1.0], [0.99], [1.0], [2.9]])
    assert tasks.PiecewiseTask.regime(x).tolist() == [0, 0, 1, 1, 2, 2]
    y = tasks.PiecewiseTask.f(x)
    assert y[0, 0] == pytest.approx(1.5 * math.sin(-12.0), abs=1e-5)
    assert y[2, 0] == pytest.approx(0.5, abs=1e-6)
    assert y[4, 0] == pytest.approx(-0.5, abs=1e-6)
    xs, ys, rs = tasks.PiecewiseTask.sample(200, noise=0.0, generator=_gen(15))
    assert xs.shape == (200, 1) and ys.shape == (200, 1) and rs.shape == (200,)
    assert torch.allclose(ys, tasks.PiecewiseTask.f(xs)) and xs.min() >= -3 and xs.max() <= 3
    xs2, _, _ = tasks.PiecewiseTask.sample(200, noise=0.0, generator=_gen(15))
    assert torch.equal(xs, xs2)
    xg, yg, rg = tasks.PiecewiseTask.grid(30)
    assert xg.shape == (30, 1) and set(rg.tolist()) == {0, 1, 2}
    with pytest.raises(CourseError):
        tasks.PiecewiseTask.sample(0)


def test_fit_regression_trains_plain_and_moe_models():
    x, y, _ = tasks.PiecewiseTask.sample(256, generator=_gen(16))
    torch.manual_seed(0)
    net = MLP([1, 16, 1])
    h = fuse.fit_regression(net, x, y, steps=150, lr=1e-2, device="cpu")
    assert len(h["mse"]) == 150 and h["balance"] == [] and h["mse"][-1] < 0.5 * h["mse"][0]
    torch.manual_seed(0)
    moe = fuse.MixtureOfExperts([MLP([1, 8, 1]) for _ in range(3)], nn.Linear(1, 3))
    h = fuse.fit_regression(moe, x, y, steps=150, lr=1e-2, balance_weight=0.1, batch_size=64, device="cpu")
    assert len(h["balance"]) == 150 and h["mse"][-1] < 0.5 * h["mse"][0]
    assert not moe.training


def test_balancing_term_evens_out_the_load():
    """Training on the balancing term alone drives the experts' importance towards equal."""
    torch.manual_seed(0)
    gate = nn.Linear(1, 4)
    with torch.no_grad():
        gate.bias.copy_(torch.tensor([3.0, 0.0, 0.0, -3.0]))  # starts collapsed onto expert 0
    x = torch.randn(128, 1, generator=_gen(17))
    opt = torch.optim.Adam(gate.parameters(), lr=0.05)
    start = float(fuse.load_balancing_loss(gate(x).softmax(1)).detach())
    for _ in range(100):
        loss = fuse.load_balancing_loss(gate(x).softmax(1))
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert start > 1.0 and float(loss.detach()) < 0.05 * start


# =============================================================================== meta-learning
def _episodes(n_way=3, k_shot=2, q_query=4, seed=0):
    """Well-separated synthetic 'images' (C, 1, 4, 4): class c = mean c plus noise."""
    from utils.episodes import EpisodeSampler
    g = _gen(seed)
    n_classes = 6
    centers = 3 * torch.randn(n_classes, 1, 4, 4, generator=g)
    labels = torch.arange(n_classes).repeat_interleave(10)
    images = centers[labels] + 0.3 * torch.randn(len(labels), 1, 4, 4, generator=g)
    return EpisodeSampler(images, labels, n_way, k_shot, q_query, seed=seed)


def _encoder(seed):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(16, 8))


def test_adapted_outputs_for_a_module_and_a_protonet():
    from utils.learners import ProtoNet, protonet_logits
    ep = _episodes().sample()
    enc = _encoder(0)
    out = meta_eval.adapted_outputs(enc, ep.support_x, ep.support_y, ep.query_x)
    with torch.no_grad():
        ref = protonet_logits(enc(ep.support_x), ep.support_y, enc(ep.query_x), 3)
    assert out.shape == (12, 3) and torch.allclose(out, ref, atol=1e-5)
    pn = ProtoNet(_encoder(0), device="cpu")
    assert torch.allclose(meta_eval.adapted_outputs(pn, ep.support_x, ep.support_y, ep.query_x), ref, atol=1e-5)
    with pytest.raises(CourseError, match="MAML-family learner, a ProtoNet"):
        meta_eval.adapted_outputs("not a learner", ep.support_x, ep.support_y, ep.query_x)
    with pytest.raises(CourseError, match="class ids"):
        meta_eval.adapted_outputs(enc, ep.support_x, ep.support_y.float(), ep.query_x)


def test_adapted_ensemble_of_identical_learners_is_a_member_and_fusion_is_paired():
    from utils.learners import episode_source
    enc = _encoder(1)
    res = meta_eval.evaluate_adapted_ensemble([enc, copy.deepcopy(enc)], episode_source(_episodes(seed=1)),
                                         n_tasks=7, batch=3)
    assert res["metric"] == "accuracy" and res["members"].shape == (2, 7) and res["ensemble"].shape == (7,)
    assert torch.allclose(res["members"][0], res["members"][1])
    assert torch.allclose(res["ensemble"], res["members"][0])
    # different learners, same episodes: recompute the fused accuracy of each episode by hand
    learners = [_encoder(2), _encoder(3), _encoder(4)]
    res = meta_eval.evaluate_adapted_ensemble(learners, episode_source(_episodes(seed=2)), n_tasks=5, batch=5)
    batch = _episodes(seed=2).sample_batch(5)
    for t in range(5):
        probs = [meta_eval.adapted_outputs(m, batch.support_x[t], batch.support_y[t], batch.query_x[t]).softmax(-1)
                 for m in learners]
        assert float(res["ensemble"][t]) == pytest.approx(fuse.accuracy(torch.stack(probs).mean(0),
                                                                        batch.query_y[t]))
        for i, p in enumerate(probs):
            assert float(res["members"][i, t]) == pytest.approx(fuse.accuracy(p, batch.query_y[t]))
    with pytest.raises(CourseError):
        meta_eval.evaluate_adapted_ensemble([], episode_source(_episodes()), n_tasks=2)


def test_adapted_ensemble_of_maml_regressors_averages_predictions():
    from utils.learners import MAML, sinusoid_source
    from utils.tasks import SinusoidFamily
    learners = []
    for s in range(2):
        torch.manual_seed(s)
        learners.append(MAML(MLP([1, 8, 1]), inner_lr=0.01, inner_steps=1, device="cpu"))
    res = meta_eval.evaluate_adapted_ensemble(learners, sinusoid_source(SinusoidFamily(), 5, 5, seed=0), n_tasks=3)
    assert res["metric"] == "mse" and res["members"].shape == (2, 3)
    # convexity of the squared error: the averaged prediction is never worse than the mean member
    assert (res["ensemble"] <= res["members"].mean(0) + 1e-6).all()


def test_glyph_fusion_data_keeps_the_pieces_disjoint():
    from utils.glyphs import load_glyphs
    gs = load_glyphs(n_alphabets=10, chars_per_alphabet=4, examples_per_char=10, cache=False)
    d = glyphs.glyph_fusion_data(2, 3, seed=0, per_class=(5, 2, 3), glyphs=gs)
    assert d.image_size == 14 and d.train[0].shape[1:] == (1, 14, 14)
    assert d.n_classes == 8 and d.n_source_classes == 12
    assert len(d.train[1]) == 40 and len(d.val[1]) == 16 and len(d.test[1]) == 24
    for split in (d.train, d.val, d.test):
        assert sorted(set(split[1].tolist())) == list(range(8))
    assert sorted(set(d.source[1].tolist())) == list(range(12))
    _, _, test_ids = gs.class_split()
    assert set(d.fewshot_y.tolist()) == set(int(c) for c in test_ids) == set(d.fewshot_classes)
    # train/val/test images of the target task are different images
    flat = lambda t: {tuple(v.flatten().tolist()) for v in t}
    assert not flat(d.train[0]) & flat(d.test[0]) and not flat(d.val[0]) & flat(d.test[0])
    with pytest.raises(CourseError, match="at most"):
        glyphs.glyph_fusion_data(5, 5, glyphs=gs)
    with pytest.raises(CourseError, match="per_class"):
        glyphs.glyph_fusion_data(1, 1, per_class=(8, 2, 3), glyphs=gs)
