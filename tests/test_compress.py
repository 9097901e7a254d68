"""Compression primitives: exact sparsity, int8 error bounds, honest sizes, low-rank, latency."""
import copy
import os

import pytest
import torch
from torch import nn

from utils import compress as C
from utils.errors import CourseError
from utils.models import MLP, ConvBackbone, mlp_classifier


def _mlp(seed=0):
    torch.manual_seed(seed)
    return mlp_classifier(16, [32, 24], 5)


# ----------------------------------------------------------------------------- masks
@pytest.mark.parametrize("shape", [(7,), (10, 13), (4, 3, 3, 3)])
@pytest.mark.parametrize("sparsity", [0.0, 0.1, 0.333, 0.5, 0.7, 0.9, 0.99, 1.0])
def test_magnitude_mask_exact_count(shape, sparsity):
    torch.manual_seed(0)
    w = torch.randn(shape)
    mask = C.magnitude_mask(w, sparsity)
    n = w.numel()
    assert mask.dtype == torch.bool and mask.shape == w.shape
    assert int((~mask).sum()) == round(sparsity * n)
    if 0 < (~mask).sum() < n:  # every pruned |w| <= every kept |w|
        assert w[~mask].abs().max() <= w[mask].abs().min()


def test_magnitude_mask_ties_and_rounding():
    w = torch.ones(30)  # all tied
    mask = C.magnitude_mask(w, 0.7)  # 0.7 * 30 == 21.0 exactly; ties: earlier positions first
    assert int((~mask).sum()) == 21
    assert not mask[:21].any() and mask[21:].all()  # ties: earlier positions pruned first
    w = torch.tensor([0.0, 0.0, 0.0, 1.0, -1.0, 1.0, 2.0, -2.0])
    mask = C.magnitude_mask(w, 0.5)
    assert mask.tolist() == [False, False, False, False, True, True, True, True]


def test_magnitude_mask_rounds_a_product_that_lands_below_an_integer():
    """0.7 * 90 is 62.99999999999999 in IEEE double: int() would prune 62, round() prunes 63 (chapter 05 §3)."""
    assert 0.7 * 90 == 62.99999999999999 and int(0.7 * 90) == 62
    assert 0.7 * 30 == 21.0  # exact, so a 30-weight example cannot tell int() from round()
    mask = C.magnitude_mask(torch.ones(90), 0.7)
    assert int((~mask).sum()) == 63 and not mask[:63].any() and mask[63:].all()


def test_magnitude_mask_uses_magnitude_not_sign():
    w = torch.tensor([-5.0, 0.1, 3.0, -0.2])
    assert C.magnitude_mask(w, 0.5).tolist() == [True, False, True, False]


@pytest.mark.parametrize("bad", [-0.1, 1.5, 90, float("nan"), "0.5", None, True])
def test_bad_sparsity_raises_clearly(bad):
    with pytest.raises(CourseError, match="sparsity: expected a number in \\[0, 1\\]"):
        C.magnitude_mask(torch.randn(10), bad)


def test_bad_weight_raises():
    with pytest.raises(CourseError, match="weight"):
        C.magnitude_mask(torch.zeros(0), 0.5)
    with pytest.raises(CourseError, match="finite"):
        C.magnitude_mask(torch.tensor([1.0, float("nan")]), 0.5)


# ----------------------------------------------------------------------------- pruning a model
@pytest.mark.parametrize("scope", ["layer", "global"])
def test_prune_model_exact_and_uses_torch_prune(scope):
    m = _mlp()
    C.prune_model(m, 0.8, scope)
    assert C.is_pruned(m)
    rows = C.sparsity_report(m)
    total = rows[-1]
    assert total["zeros"] == round(0.8 * total["total"]) or scope == "layer"
    if scope == "layer":
        for r in rows[:-1]:
            assert r["zeros"] == round(0.8 * r["total"])
    assert hasattr(m.head, "weight_orig") and hasattr(m.head, "weight_mask")


def test_global_matches_torch_global_unstructured():
    a, b = _mlp(1), _mlp(1)
    masks = C.prune_model(a, 0.75, "global")
    C.torch_prune(b, 0.75, "global")
    for name, mod in C.prunable_modules(b):
        assert torch.equal(masks[name], mod.weight_mask.bool())  # random weights: no ties


def test_layerwise_matches_torch_l1_unstructured():
    a, b = _mlp(2), _mlp(2)
    masks = C.prune_model(a, 0.6, "layer")
    C.torch_prune(b, 0.6, "layer")
    for name, mod in C.prunable_modules(b):
        assert torch.equal(masks[name], mod.weight_mask.bool())


def test_iterative_pruning_keeps_zeros_and_hits_target():
    m = _mlp()
    x, y = torch.randn(64, 16), torch.randint(0, 5, (64,))
    opt = torch.optim.SGD(m.parameters(), lr=0.1)
    prev = None
    for s in (0.5, 0.8, 0.9):
        masks = C.prune_model(m, s, "global")
        if prev is not None:
            for k in masks:
                assert not (masks[k] & ~prev[k]).any()  # nothing pruned comes back
        prev = {k: v.clone() for k, v in masks.items()}
        for _ in range(3):  # fine-tune: pruned entries must stay zero
            opt.zero_grad()
            nn.functional.cross_entropy(m(x), y).backward()
            opt.step()
        assert C.sparsity_report(m)[-1]["zeros"] == round(s * C.sparsity_report(m)[-1]["total"])


def test_make_permanent_removes_reparametrization():
    m = _mlp()
    C.prune_model(m, 0.5)
    out = m(torch.randn(3, 16))
    C.make_permanent(m)
    assert not C.is_pruned(m)
    assert not any(k.endswith(("_orig", "_mask")) for k in m.state_dict())
    assert isinstance(m.head.weight, nn.Parameter)
    assert C.sparsity_report(m)[-1]["sparsity"] == pytest.approx(0.5, abs=1e-3)
    torch.manual_seed(0)
    assert out.shape == (3, 5)


def test_dense_state_dict_folds_masks():
    m = _mlp()
    C.prune_model(m, 0.5)
    sd = C.dense_state_dict(m)
    assert set(sd) == set(_mlp().state_dict())
    assert torch.equal(sd["head.weight"], C.effective_tensor(m.head))


def test_structured_pruning_and_shrink_is_exact():
    torch.manual_seed(0)
    m = MLP([16, 32, 24, 5])
    keep = C.prune_structured(m[0], 0.5)
    assert keep.sum() == 16
    C.prune_structured(m[2], 0.25)
    x = torch.randn(20, 16)
    before = m(x)
    C.shrink_linear_chain(m)
    assert m[0].out_features == 16 and m[2].in_features == 16 and m[2].out_features == 18
    assert torch.allclose(m(x), before, atol=1e-6)


def test_structured_keeps_largest_rows_and_works_twice():
    torch.manual_seed(0)
    lin = nn.Linear(6, 10)
    norms = lin.weight.detach().norm(dim=1)
    keep = C.prune_structured(lin, 0.3)
    assert keep.sum() == 7
    assert norms[~keep].max() <= norms[keep].min()
    assert (C.effective_tensor(lin)[~keep] == 0).all() and (C.effective_tensor(lin, "bias")[~keep] == 0).all()
    keep2 = C.prune_structured(lin, 0.6)  # already pruned: ranks the masked rows, zeros first
    assert keep2.sum() == 4 and not (keep2 & ~keep).any()
    with pytest.raises(CourseError, match="fraction"):
        C.prune_structured(lin, 2.0)
    with pytest.raises(CourseError, match="module"):
        C.prune_structured(nn.ReLU(), 0.5)


def test_shrink_rejects_non_mlp():
    with pytest.raises(CourseError, match="Linear"):
        C.shrink_linear_chain(ConvBackbone(hidden=4, blocks=1, image_size=4))


def test_prune_conv_model():
    enc = ConvBackbone(hidden=8, blocks=2, image_size=8)
    C.prune_model(enc, 0.7, "layer")
    for r in C.sparsity_report(enc)[:-1]:
        assert r["zeros"] == round(0.7 * r["total"])


# ----------------------------------------------------------------------------- int8
@pytest.mark.parametrize("per_channel", [False, True])
def test_int8_error_at_most_half_scale(per_channel):
    torch.manual_seed(0)
    w = torch.randn(20, 30) * torch.logspace(-3, 1, 20).unsqueeze(1)
    q, s = C.quantize_int8(w, per_channel=per_channel)
    assert q.dtype == torch.int8 and q.shape == w.shape
    assert int(q.abs().max()) <= 127
    deq = C.dequantize_int8(q, s)
    bound = (s.view(-1, 1) if per_channel else s) / 2
    assert ((deq - w).abs() <= bound * (1 + 1e-6) + 1e-12).all()
    if per_channel:
        assert s.shape == (20,)
        assert torch.allclose(s, w.abs().amax(1) / 127)
        assert (q.abs().amax(1) == 127).all()  # each channel's largest entry uses the full range
    else:
        assert s.dim() == 0 and torch.isclose(s, w.abs().max() / 127)


def test_per_channel_beats_per_tensor_with_uneven_channels():
    torch.manual_seed(0)
    w = torch.randn(8, 50)
    w[0] *= 100  # one loud channel
    err = lambda pc: (C.fake_quantize_int8(w, pc) - w)[1:].abs().mean()
    assert err(True) < err(False) / 10


def test_int8_conv_axis_and_zero_channel():
    w = torch.randn(4, 3, 3, 3)
    w[2] = 0
    q, s = C.quantize_int8(w, per_channel=True, axis=0)
    assert s.shape == (4,) and s[2] == 1 and (q[2] == 0).all()
    assert torch.isfinite(C.dequantize_int8(q, s)).all()


def test_dequantize_checks_inputs():
    with pytest.raises(CourseError, match="int8"):
        C.dequantize_int8(torch.zeros(3), torch.tensor(1.0))
    q, s = C.quantize_int8(torch.randn(4, 5), per_channel=True)
    with pytest.raises(CourseError, match="scale"):
        C.dequantize_int8(q, s[:3])


def test_quantized_model_matches_fake_quant_and_is_smaller():
    m = _mlp()
    qm = C.quantize_model_int8(m)
    assert isinstance(qm.head, C.Int8Linear)
    ref = copy.deepcopy(m)
    with torch.no_grad():
        for _, mod in C.prunable_modules(ref):
            mod.weight.copy_(C.fake_quantize_int8(mod.weight, per_channel=True))
    x = torch.randn(7, 16)
    assert torch.allclose(qm(x), ref(x), atol=1e-6)
    assert qm.state_dict()["head.weight_int8"].dtype == torch.int8
    assert C.model_bytes(qm) < C.model_bytes(m)


def test_quantized_conv_model():
    enc = ConvBackbone(hidden=8, blocks=2, image_size=8).eval()
    qenc = C.quantize_model_int8(enc).eval()
    x = torch.randn(2, 1, 8, 8)
    assert torch.allclose(qenc(x), enc(x), atol=0.05)



def test_dequantize_model_gives_float_layers_with_same_outputs():
    m = _mlp()
    qm = C.quantize_model_int8(m)
    fm = C.dequantize_model(qm)
    assert isinstance(fm.head, nn.Linear) and fm.head.weight.requires_grad
    assert torch.equal(fm.head.weight, qm.head.dequantized_weight())
    x = torch.randn(4, 16)
    assert torch.allclose(fm(x), qm(x), atol=1e-6)
    enc = ConvBackbone(hidden=8, blocks=2, image_size=8).eval()
    qenc = C.quantize_model_int8(enc).eval()
    fenc = C.dequantize_model(qenc).eval()
    assert not any(isinstance(mod, (C.Int8Linear, C.Int8Conv2d)) for mod in fenc.modules())
    x = torch.randn(2, 1, 8, 8)
    assert torch.allclose(fenc(x), qenc(x), atol=1e-6)
    assert C.model_bytes(fenc) > C.model_bytes(qenc)

def test_int8_size_ratio_on_a_weight_dominated_model():
    torch.manual_seed(0)
    m = mlp_classifier(64, [256, 256], 10)
    ratio = C.model_bytes(m) / C.model_bytes(C.quantize_model_int8(m))
    assert ratio >= 3.5


def test_torchao_path_or_documented_fallback():
    m = _mlp()
    x = torch.randn(5, 16)
    res = C.torchao_int8(m, "weight_only", example=x)
    assert res.ok or "failed" in res.backend
    with torch.no_grad():
        assert (res.model(x) - m(x)).abs().max() < 0.05
    assert C.model_bytes(res.model) < C.model_bytes(m)
    with pytest.raises(CourseError, match="mode"):
        C.torchao_int8(m, "int4")


# ----------------------------------------------------------------------------- sizes
def test_sizes_match_saved_file(tmp_path):
    m = _mlp()
    sd = m.state_dict()
    path = tmp_path / "archive.pt"  # torch.save names the zip's records after the file
    n = C.save_and_size(sd, path)
    assert n == os.path.getsize(path) == C.serialized_size(sd) == C.model_bytes(m)
    assert len(path.read_bytes()) == n == len(C.serialized_bytes(sd))
    assert torch.equal(torch.load(path)["head.weight"], sd["head.weight"])
    packed = C.sparse_state_dict(m)
    sub = tmp_path / "sub"
    assert C.save_and_size(packed, sub / "archive.pt") == C.serialized_size(packed)
    other = C.save_and_size(sd, tmp_path / "m.pt")  # another name: a few bytes per tensor fewer
    assert other == os.path.getsize(tmp_path / "m.pt") and abs(other - n) < 100 * len(sd)
    assert C.serialized_size(sd, "lzma") < n
    with pytest.raises(CourseError, match="compress"):
        C.serialized_size(sd, "zip")


def test_scaling_weights_is_not_compression():
    m = _mlp()
    half = copy.deepcopy(m)
    with torch.no_grad():
        for p in half.parameters():
            p.mul_(0.5)
    assert C.model_bytes(half) == C.model_bytes(m)


@pytest.mark.parametrize("fmt", ["bitmask", "csr"])
@pytest.mark.parametrize("values", ["float32", "int8"])
def test_sparse_state_dict_round_trip_and_saves_bytes(fmt, values):
    torch.manual_seed(0)
    m = mlp_classifier(64, [128, 128], 10)
    C.prune_model(m, 0.9)
    packed = C.sparse_state_dict(m, fmt, values)
    sd = C.unpack_state_dict(packed)
    dense = C.dense_state_dict(m)
    for k, v in dense.items():
        if values == "float32":
            assert torch.equal(sd[k], v), k
        else:
            ref = C.fake_quantize_int8(v.view(v.shape[0], -1), per_channel=True).view_as(v) if v.dim() >= 2 else v
            assert torch.allclose(sd[k], ref, atol=1e-7), k
            assert ((sd[k] == 0) == (v == 0)).all() or v.dim() < 2
    assert C.serialized_size(packed) < C.model_bytes(m) / 3


def test_pack_bits_round_trip():
    mask = torch.rand(1001) < 0.3
    bits = C.pack_bits(mask)
    assert bits.dtype == torch.uint8 and bits.numel() == 126
    assert torch.equal(C.unpack_bits(bits, 1001), mask)


# ----------------------------------------------------------------------------- low rank
def test_low_rank_full_rank_reproduces_layer():
    torch.manual_seed(0)
    lin = nn.Linear(12, 7)
    lr = C.low_rank_linear(lin, 7)
    x = torch.randn(5, 12)
    assert torch.allclose(lr(x), lin(x), atol=1e-5)
    assert isinstance(lr, nn.Sequential) and lr[0].weight.shape == (7, 12) and lr[1].weight.shape == (7, 7)


def test_low_rank_is_optimal_eckart_young():
    torch.manual_seed(0)
    w = torch.randn(20, 15)
    S = torch.linalg.svdvals(w)
    for r in (1, 3, 10):
        A, B = C.low_rank_factors(w, r)
        assert A.shape == (20, r) and B.shape == (r, 15)
        assert torch.linalg.matrix_rank(A @ B) == r
        err = torch.linalg.norm(w - A @ B)
        assert torch.isclose(err, S[r:].pow(2).sum().sqrt(), rtol=1e-4)
    assert C.low_rank_params(20, 15, 3) == 3 * 35 + 20


@pytest.mark.parametrize("bad", [0, -1, 16, 2.5, True])
def test_bad_rank_raises_clearly(bad):
    with pytest.raises(CourseError, match="rank: expected an integer in \\[1, 15\\]"):
        C.low_rank_factors(torch.randn(20, 15), bad)


def test_replace_module_and_bad_name():
    m = _mlp()
    C.replace_module(m, "head", C.low_rank_linear(m.head, 3))
    assert m(torch.randn(2, 16)).shape == (2, 5)
    with pytest.raises(CourseError, match="name"):
        C.replace_module(m, "nope", nn.Identity())


# ----------------------------------------------------------------------------- latency
def test_measure_latency():
    m = _mlp()
    lat = C.measure_latency(m, torch.randn(8, 16), warmup=2, repeats=7, device="cpu")
    assert len(lat.times_ms) == 7 and lat.median_ms > 0 and lat.batch == 8
    assert lat.p10_ms <= lat.median_ms <= lat.p90_ms
    with pytest.raises(CourseError, match="repeats"):
        C.measure_latency(m, torch.randn(8, 16), repeats=0, device="cpu")
