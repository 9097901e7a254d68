"""Chapter 03's learners: metric (matching nets, ProtoMAML), model-based (CNP, support attention)
and the learned optimiser — shapes, invariances, and the properties the chapter relies on."""
import math

import pytest
import torch
from torch.nn import functional as F

from utils.learners.blackbox import (CNP, AttentionLearner, CNPLearner, SupportAttention, gaussian_nll,
                            mean_aggregate)
from utils.errors import CourseError
from utils.learners.learned_optimizer import (LearnedOptimizer, LSTMRule, adam_rule, final_loss,
                                     gradient_features, run_rule, sample_logistic, sample_quadratics,
                                     sgd_rule)
from utils.learners import MetaResult, protonet_logits, sinusoid_source
from utils.learners import meta_evaluate
from utils.learners.metric import (MatchingNet, ProtoMAML, cosine_attention, matching_log_probs,
                                   protomaml_head)
from utils.models import MLP
from utils.tasks import SinusoidFamily


def _episodes(B=3, n=5, k=2, q=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    sx = torch.randn(B, n * k, 1, 6, 6, generator=g)
    sy = torch.arange(n).repeat_interleave(k).expand(B, -1).clone()
    qx = torch.randn(B, n * q, 1, 6, 6, generator=g)
    qy = torch.arange(n).repeat_interleave(q).expand(B, -1).clone()
    return sx, sy, qx, qy


def _encoder(seed=0, dim=8):
    torch.manual_seed(seed)
    return MLP([36, 16, dim], flatten=True)


# ----------------------------------------------------------------------------- metric learners
def test_cosine_attention_shapes_and_probabilities():
    g = torch.Generator().manual_seed(0)
    s, q = torch.randn(4, 10, 8, generator=g), torch.randn(4, 7, 8, generator=g)
    y = torch.randint(0, 5, (4, 10), generator=g)
    p = cosine_attention(s, y, q, 5)
    assert p.shape == (4, 7, 5)
    assert torch.allclose(p.sum(-1), torch.ones(4, 7), atol=1e-6)
    # a class absent from the support gets probability 0
    y2 = y.clone(); y2[y2 == 3] = 0
    assert float(cosine_attention(s, y2, q, 5)[..., 3].abs().max()) == 0.0


def test_cosine_attention_is_invariant_to_support_order_and_embedding_scale():
    g = torch.Generator().manual_seed(1)
    s, q, y = torch.randn(10, 8, generator=g), torch.randn(6, 8, generator=g), torch.randint(0, 5, (10,), generator=g)
    perm = torch.randperm(10, generator=g)
    assert torch.allclose(cosine_attention(s, y, q, 5), cosine_attention(s[perm], y[perm], q, 5), atol=1e-6)
    assert torch.allclose(cosine_attention(s, y, q, 5), cosine_attention(3 * s, y, 0.5 * q, 5), atol=1e-6)
    # by hand for one query: softmax over scaled cosines, summed per class
    cos = F.cosine_similarity(q[0][None], s, dim=-1)
    a = torch.softmax(10 * cos, 0)
    want = torch.stack([a[y == c].sum() for c in range(5)])
    assert torch.allclose(cosine_attention(s, y, q, 5)[0], want, atol=1e-6)


def test_cosine_attention_rejects_bad_labels():
    with pytest.raises(CourseError, match="labels in 0..4"):
        cosine_attention(torch.randn(3, 4), torch.tensor([0, 1, 7]), torch.randn(2, 4), 5)


def test_protomaml_head_equals_protonet_before_any_step():
    g = torch.Generator().manual_seed(2)
    se, sy, qe = torch.randn(10, 6, generator=g), torch.arange(5).repeat(2), torch.randn(9, 6, generator=g)
    from utils.learners import prototypes
    w, b = protomaml_head(prototypes(se, sy, 5))
    logits = qe @ w.T + b
    proto = protonet_logits(se, sy, qe, 5)
    # 2 z·c - ||c||² = -||z - c||² + ||z||²: the same up to a per-query constant, the same softmax
    assert torch.allclose(logits - (qe ** 2).sum(-1, keepdim=True), proto, atol=1e-5)
    assert torch.allclose(logits.log_softmax(-1), proto.log_softmax(-1), atol=1e-5)


def test_protomaml_learner_with_zero_steps_is_protonet():
    sx, sy, qx, qy = _episodes()
    pm = ProtoMAML(_encoder(), inner_steps=1, eval_steps=0, device="cpu")
    with torch.no_grad():
        got = pm.logits(sx, sy, qx, 5, steps=0)
        emb_s, emb_q = pm.model(sx.flatten(0, 1)).view(3, 10, -1), pm.model(qx.flatten(0, 1)).view(3, 20, -1)
    for t in range(3):
        want = protonet_logits(emb_s[t], sy[t], emb_q[t], 5)
        assert torch.allclose(got[t].log_softmax(-1), want.log_softmax(-1), atol=1e-5)
    # one step lowers the support loss of every task
    with torch.no_grad():
        before = pm.logits(sx, sy, sx, 5, steps=0)
        after = pm.logits(sx, sy, sx, 5, steps=1)
    for t in range(3):
        assert float(F.cross_entropy(after[t], sy[t])) < float(F.cross_entropy(before[t], sy[t]))


@pytest.mark.parametrize("cls", [MatchingNet, ProtoMAML])
def test_metric_learners_train_and_evaluate(cls):
    sx, sy, qx, qy = _episodes()
    learner = cls(_encoder(), device="cpu")
    loss, acc = learner.meta_loss(sx, sy, qx, qy)
    assert loss.dim() == 0 and 0 <= float(acc) <= 1
    learner.meta_step((sx, sy, qx, qy))
    l1, a1 = learner.evaluate_task(sx[0], sy[0], qx[0], qy[0])
    assert math.isfinite(l1) and 0 <= a1 <= 1


def test_protomaml_meta_gradient_reaches_the_encoder():
    sx, sy, qx, qy = _episodes()
    pm = ProtoMAML(_encoder(), inner_steps=2, device="cpu")
    loss, _ = pm.meta_loss(sx, sy, qx, qy)
    loss.backward()
    assert all(p.grad is not None and float(p.grad.abs().sum()) > 0 for p in pm.model.parameters())


# ----------------------------------------------------------------------------- model-based learners
def test_mean_aggregate_invariance_and_mask():
    g = torch.Generator().manual_seed(3)
    r = torch.randn(2, 7, 5, generator=g)
    perm = torch.randperm(7, generator=g)
    assert torch.allclose(mean_aggregate(r), mean_aggregate(r[:, perm]), atol=1e-6)
    mask = torch.tensor([[1, 1, 1, 0, 0, 0, 0], [1] * 7])
    assert torch.allclose(mean_aggregate(r, mask)[0], r[0, :3].mean(0), atol=1e-6)


def test_cnp_shapes_invariance_and_positive_std():
    torch.manual_seed(0)
    cnp = CNP(hidden=16, r_dim=8)
    b = SinusoidFamily().sample(4, 6, 9, generator=torch.Generator().manual_seed(0))
    mean, std = cnp(b.support_x, b.support_y, b.query_x)
    assert mean.shape == std.shape == (4, 9, 1) and bool((std > 0).all())
    perm = torch.randperm(6)
    m2, s2 = cnp(b.support_x[:, perm], b.support_y[:, perm], b.query_x)
    assert torch.allclose(mean, m2, atol=1e-6) and torch.allclose(std, s2, atol=1e-6)


def test_gaussian_nll_matches_torch_distributions():
    g = torch.Generator().manual_seed(4)
    mu, sd, y = torch.randn(20, generator=g), torch.rand(20, generator=g) + 0.1, torch.randn(20, generator=g)
    want = -torch.distributions.Normal(mu, sd).log_prob(y)
    assert torch.allclose(gaussian_nll(mu, sd, y), want, atol=1e-5)
    with pytest.raises(CourseError, match="positive standard deviations"):
        gaussian_nll(mu, -sd, y)


def test_cnp_learner_trains_and_meta_evaluates():
    learner = CNPLearner(CNP(hidden=16, r_dim=8), lr=3e-3, device="cpu")
    src = sinusoid_source(SinusoidFamily(), 10, 10, seed=0)
    hist = learner.meta_train(src, 60, 16, progress=False)
    assert len(hist.loss) == 60 and sum(hist.loss[-10:]) < sum(hist.loss[:10])
    res = meta_evaluate(learner, sinusoid_source(SinusoidFamily(), 10, 20, seed=1), n_tasks=20)
    assert isinstance(res, MetaResult) and res.metric == "mse" and res.mean > 0


def test_support_attention_shapes_and_support_order_invariance():
    sx, sy, qx, qy = _episodes()
    torch.manual_seed(0)
    model = SupportAttention(_encoder(dim=8), 8, n_way=5, heads=2).eval()
    out = model(sx, sy, qx)
    assert out.shape == (3, 20, 5)
    perm = torch.randperm(10)
    assert torch.allclose(out, model(sx[:, perm], sy[:, perm], qx), atol=1e-5)
    # labels are inputs: swapping two classes' labels in the support swaps the two output columns' meaning
    learner = AttentionLearner(model, device="cpu")
    loss, acc = learner.meta_loss(sx, sy, qx, qy)
    assert loss.dim() == 0 and 0 <= float(acc) <= 1
    with pytest.raises(CourseError, match="labels in 0..4"):
        model(sx, sy + 1, qx)


# ----------------------------------------------------------------------------- learned optimiser
def test_gradient_features_shape_and_scale_free():
    g = torch.tensor([1e-8, -1e-3, 0.0, 2.0, -50.0])
    f = gradient_features(g)
    assert f.shape == (5, 2)
    assert torch.equal(f[3:, 1], torch.tensor([1.0, -1.0]))        # sign for large gradients
    assert float(f[0, 0]) == -1.0 and float(f[2, 1]) == 0.0           # tiny ones: (-1, e^p g)


def test_learned_rule_is_coordinatewise():
    torch.manual_seed(0)
    rule = LSTMRule(hidden=8)
    g = torch.randn(12)
    state = rule.init_state(12)
    upd, (h, c) = rule(g, state)
    assert upd.shape == (12,) and h.shape == (12, 8)
    # permuting the parameters permutes the updates (and the states)
    perm = torch.randperm(12)
    upd_p, (h_p, _) = rule(g[perm], (state[0][perm], state[1][perm]))
    assert torch.allclose(upd_p, upd[perm], atol=1e-6) and torch.allclose(h_p, h[perm], atol=1e-6)
    # changing one coordinate's gradient changes its own update only
    g2 = g.clone(); g2[4] = 10.0
    upd2, _ = rule(g2, state)
    others = torch.arange(12) != 4
    assert torch.equal(upd2[others], upd[others]) and not torch.equal(upd2[4], upd[4])
    # the Jacobian of the updates w.r.t. the gradients is diagonal
    jac = torch.autograd.functional.jacobian(lambda x: rule(x, state)[0], g)
    assert torch.allclose(jac, torch.diag(torch.diagonal(jac)), atol=0)
    with pytest.raises(CourseError, match="flat vector"):
        rule(g.view(3, 4), state)


def test_run_rule_records_losses_and_baselines_descend():
    probs = sample_quadratics(8, dim=5, generator=torch.Generator().manual_seed(0))
    for rule in (sgd_rule(0.02), adam_rule(0.05)):
        losses, theta, _ = run_rule(rule, probs, 30)
        assert losses.shape == (31, 8) and theta.shape == (8, 5)
        assert bool((losses[-1] < losses[0]).all())
    res = final_loss(sgd_rule(0.02), probs, 30)
    assert isinstance(res, MetaResult) and len(res.values) == 8


def test_adam_rule_matches_torch_adam():
    probs = sample_logistic(3, dim=4, points=10, generator=torch.Generator().manual_seed(1))
    losses, theta, _ = run_rule(adam_rule(0.05), probs, 5)
    t = torch.zeros(3, 4, requires_grad=True)
    opt = torch.optim.Adam([t], lr=0.05)
    for _ in range(5):
        opt.zero_grad(); probs.loss(t).sum().backward(); opt.step()
    assert torch.allclose(theta, t.detach(), atol=1e-6)


def test_learned_optimizer_meta_trains_and_evaluates():
    torch.manual_seed(0)
    lo = LearnedOptimizer(LSTMRule(hidden=8), unroll=5, horizon=10, device="cpu")
    g = torch.Generator().manual_seed(0)
    hist = lo.meta_train(lambda B: sample_quadratics(B, dim=5, generator=g), 30, 8)
    assert len(hist.loss) == 30 and sum(hist.loss[-5:]) < sum(hist.loss[:5])
    res = lo.evaluate(sample_quadratics(10, dim=5, generator=torch.Generator().manual_seed(2)), 20)
    assert res.metric == "final loss" and math.isfinite(res.mean)


def test_evaluate_batched_matches_meta_evaluate():
    from utils.learners.metric import evaluate_batched
    sx, sy, qx, qy = _episodes(B=6)
    from utils.episodes import Episode
    batch = Episode(sx, sy, qx, qy, torch.arange(5).expand(6, -1))
    state = {"i": 0}

    def source(b):
        i = state["i"]; state["i"] = (i + b) % 6
        return Episode(*(getattr(batch, f)[i:i + b] for f in batch.__dataclass_fields__))
    torch.manual_seed(0)
    for learner in (ProtoMAML(_encoder(), eval_steps=2, device="cpu"), MatchingNet(_encoder(), device="cpu"),
                    AttentionLearner(SupportAttention(_encoder(dim=8), 8, 5, heads=2), device="cpu")):
        a = evaluate_batched(learner, source, 6, batch=3)
        b = meta_evaluate(learner, source, 6, batch=3)
        assert a.values == pytest.approx(b.values, abs=1e-6)


def test_shipped_checkpoints_match_their_recipes():
    import json
    from utils.cache import settings_key
    from utils.checkpoints import checkpoint_dir
    from utils.families import GROUPS, checkpoint_name
    for group, (recipe, make, train) in GROUPS.items():
        for seed in (0, 1, 2):
            m = json.loads((checkpoint_dir() / f"{checkpoint_name(group, seed)}.json").read_text())
            assert m["settings"] == json.loads(json.dumps(recipe())), f"{group}: recipe changed, rerun `{m['command']}`"
            assert m["settings_hash"] == settings_key(recipe())
    # a short retrain reproduces the first training losses of the shipped CNP (same code, same seed)
    recipe, make, train = GROUPS["cnp"]
    settings = dict(recipe(), iterations=5)
    torch.set_num_threads(1)
    curve = train(make(settings, 0), settings, 0)
    m = json.loads((checkpoint_dir() / f"{checkpoint_name('cnp', 0)}.json").read_text())
    assert curve == pytest.approx(m["curve_head"][:5], rel=1e-4, abs=1e-5)


def test_rule_at_horizons_equals_final_loss_at_each_horizon():
    from utils.families import rule_at_horizons
    problems = sample_quadratics(20, 5, torch.Generator().manual_seed(3))
    for rule in (sgd_rule(0.1), adam_rule(0.3)):
        by_h, curve = rule_at_horizons(rule, problems, (5, 20))
        for h in (5, 20):
            want = final_loss(rule, problems, h)
            assert (by_h[h].mean, by_h[h].ci95, by_h[h].values) == (want.mean, want.ci95, want.values)
        assert torch.equal(curve, run_rule(rule, problems, 20)[0].median(1).values)
    diverged, _ = rule_at_horizons(sgd_rule(1e6), problems, (20,))
    assert diverged[20].mean == float("inf")     # final_loss's divergence rule, unchanged


def test_every_exported_learner_follows_the_learner_protocol():
    """Issue 25: one public base class; every learner class exported by utils.learners derives from it
    and defines its own adapt-and-score step (``evaluate_task``)."""
    import utils.learners as L
    classes = [getattr(L, n) for n in L.__all__ if isinstance(getattr(L, n), type)
               and hasattr(getattr(L, n), "evaluate_task") and getattr(L, n) is not L.Learner]
    names = {c.__name__ for c in classes}
    assert names >= {"MAML", "Reptile", "ProtoNet", "MatchingNet", "ProtoMAML", "CNPLearner", "AttentionLearner",
                     "FineTuneBaseline"}, names
    for cls in classes:
        assert issubclass(cls, L.Learner), f"{cls.__name__} does not derive from utils.learners.Learner"
        assert cls.evaluate_task is not L.Learner.evaluate_task, f"{cls.__name__} has no evaluate_task of its own"
        for method in ("meta_train", "state_dict", "load_state_dict", "variant"):
            assert callable(getattr(cls, method)), (cls.__name__, method)
    from utils.models import conv4_classifier
    for factory in (L.ANIL, L.MetaSGD):
        assert isinstance(factory(conv4_classifier(2, hidden=4, image_size=6, blocks=1), device="cpu"), L.Learner)


def test_amplitude_curriculum_grows_then_covers_the_family():
    """The easy-first source (chapter 03, § 4): amplitudes capped at `start` first, the whole family
    after `ramp` draws; ramp 0 is uniform; bad arguments get a clear error."""
    from utils.errors import CourseError
    from utils.families import amplitude_curriculum
    src = amplitude_curriculum(10, seed=0)
    first = src(200)
    assert first.amplitude.max() <= 1.0 and first.support_x.shape == (200, 10, 1)
    for _ in range(10):
        last = src(200)
    assert last.amplitude.max() > 4.0
    assert amplitude_curriculum(0, seed=0)(200).amplitude.max() > 4.0
    for bad in (dict(ramp=-1), dict(ramp=1.5), dict(ramp=5, start=9.0)):
        with pytest.raises(CourseError):
            amplitude_curriculum(**bad)


def test_curriculum_curves_start_from_the_same_network():
    """With ramp 0 for both schedules the curves are identical (same seed, same tasks): what differs
    between schedules in the chapter is the task order only."""
    from utils.families import curriculum_curves
    from utils.tasks import SinusoidFamily
    test = SinusoidFamily().sample(20, 10, 20, generator=torch.Generator().manual_seed(1))
    out = curriculum_curves({"a": 0, "b": 0, "c": 5}, (3, 6), test, seed=0, device="cpu")
    assert out["a"] == out["b"] and len(out["a"]) == 2 and out["c"] != out["a"]
