"""Wrong answers for chapter 05 (see README.md in this folder)."""

_MASK_HEAD = '''def magnitude_mask(weight, sparsity):
'''

_DEQUANT = '''

def dequantize_per_channel(q, scale):
    return q.float() * scale.view((-1,) + (1,) * (q.dim() - 1))
'''

_RANK_HEAD = '''def rank_r_factors(weight, r):
    U, S, Vh = torch.linalg.svd(weight.detach().float(), full_matrices=False)
'''

WRONG_ANSWERS = [
    # ------------------------------------------------------------------ ex-magnitude-mask
    ("ex-magnitude-mask", "int() truncates the count where round() is asked",
     _MASK_HEAD + '''    if not 0 <= sparsity <= 1:
        raise ValueError(f"sparsity must be in [0, 1], got {sparsity!r}")
    flat = weight.detach().abs().flatten()
    k = int(sparsity * flat.numel())
    order = torch.argsort(flat, stable=True)
    mask = torch.ones(flat.numel(), dtype=torch.bool)
    mask[order[:k]] = False
    return mask.view(weight.shape)
''', ["test-magnitude-mask"]),
    ("ex-magnitude-mask", "prunes the smallest signed values, not magnitudes",
     _MASK_HEAD + '''    if not 0 <= sparsity <= 1:
        raise ValueError(f"sparsity must be in [0, 1], got {sparsity!r}")
    flat = weight.detach().flatten()
    k = round(sparsity * flat.numel())
    order = torch.argsort(flat, stable=True)
    mask = torch.ones(flat.numel(), dtype=torch.bool)
    mask[order[:k]] = False
    return mask.view(weight.shape)
''', ["test-magnitude-mask"]),
    ("ex-magnitude-mask", "`>` for `>=`: refuses sparsity 0",
     _MASK_HEAD + '''    if not 0 < sparsity <= 1:
        raise ValueError(f"sparsity must be in (0, 1], got {sparsity!r}")
    flat = weight.detach().abs().flatten()
    k = round(sparsity * flat.numel())
    order = torch.argsort(flat, stable=True)
    mask = torch.ones(flat.numel(), dtype=torch.bool)
    mask[order[:k]] = False
    return mask.view(weight.shape)
''', ["test-magnitude-mask"]),
    ("ex-magnitude-mask", "delegates to the engine's utils.compress.magnitude_mask",
     _MASK_HEAD + '''    from utils import compress
    return compress.magnitude_mask(weight, sparsity)
''', ["test-magnitude-mask"]),

    # ------------------------------------------------------------------ ex-per-channel-int8
    ("ex-per-channel-int8", "one scale for the whole tensor (per-tensor), repeated per channel",
     '''def quantize_per_channel(weight):
    w = weight.detach().float()
    amax = w.abs().max()
    scale = (amax / 127 if amax > 0 else torch.tensor(1.0)) * torch.ones(w.shape[0])
    shape = (-1,) + (1,) * (w.dim() - 1)
    q = torch.clamp(torch.round(w / scale.view(shape)), -127, 127).to(torch.int8)
    return q, scale
''' + _DEQUANT, ["test-per-channel-int8"]),
    ("ex-per-channel-int8", "truncates instead of rounding",
     '''def quantize_per_channel(weight):
    w = weight.detach().float()
    amax = w.abs().flatten(1).amax(1)
    scale = torch.where(amax > 0, amax / 127, torch.ones_like(amax))
    shape = (-1,) + (1,) * (w.dim() - 1)
    q = torch.clamp(w / scale.view(shape), -127, 127).to(torch.int8)
    return q, scale
''' + _DEQUANT, ["test-per-channel-int8"]),
    ("ex-per-channel-int8", "an all-zero channel divides by zero (scale 0)",
     '''def quantize_per_channel(weight):
    w = weight.detach().float()
    scale = w.abs().flatten(1).amax(1) / 127
    shape = (-1,) + (1,) * (w.dim() - 1)
    q = torch.clamp(torch.round(w / scale.view(shape)), -127, 127).to(torch.int8)
    return q, scale
''' + _DEQUANT, ["test-per-channel-int8"]),
    ("ex-per-channel-int8", "scale max|w| / 128 (the asymmetric range)",
     '''def quantize_per_channel(weight):
    w = weight.detach().float()
    amax = w.abs().flatten(1).amax(1)
    scale = torch.where(amax > 0, amax / 128, torch.ones_like(amax))
    shape = (-1,) + (1,) * (w.dim() - 1)
    q = torch.clamp(torch.round(w / scale.view(shape)), -128, 127).to(torch.int8)
    return q, scale
''' + _DEQUANT, ["test-per-channel-int8"]),

    # ------------------------------------------------------------------ ex-rank-r
    ("ex-rank-r", "forgets the singular values",
     _RANK_HEAD + '''    return U[:, :r], Vh[:r]
''', ["test-rank-r"]),
    ("ex-rank-r", "keeps the r smallest singular values",
     _RANK_HEAD + '''    root = S[-r:].sqrt()
    return U[:, -r:] * root, root[:, None] * Vh[-r:]
''', ["test-rank-r"]),
    ("ex-rank-r", "off by one: skips the largest singular value",
     _RANK_HEAD + '''    root = S[1:r + 1].sqrt()
    return U[:, 1:r + 1] * root, root[:, None] * Vh[1:r + 1]
''', ["test-rank-r"]),
    ("ex-rank-r", "delegates to the engine's utils.compress.low_rank_factors",
     '''def rank_r_factors(weight, r):
    from utils.compress import low_rank_factors
    return low_rank_factors(weight, r)
''', ["test-rank-r"]),
]
