"""Wrong answers for chapter 03 (see README.md in this folder)."""

_MATCH_HEAD = '''def matching_probs(support_emb, support_y, query_emb, n_way, scale=10.0):
'''

_PM_HEAD = '''def protomaml_init(support_emb, support_y, n_way):
'''

_GOOD_AGGREGATE = '''def aggregate(r, mask=None):
    if mask is None:
        return r.mean(-2)
    m = mask.to(r.dtype).unsqueeze(-1)
    return (r * m).sum(-2) / m.sum(-2).clamp_min(1)


'''

_GOOD_NLL = '''

def normal_nll(mean, std, y):
    return torch.log(std) + (y - mean) ** 2 / (2 * std ** 2) + 0.5 * math.log(2 * math.pi)
'''

WRONG_ANSWERS = [
    # ------------------------------------------------------------------ ex-matching-probs
    ("ex-matching-probs", "dot product instead of cosine similarity",
     _MATCH_HEAD + '''    attention = torch.softmax(scale * (query_emb @ support_emb.T), dim=1)
    return attention @ F.one_hot(support_y, n_way).float()
''', ["test-matching-probs"]),
    ("ex-matching-probs", "softmax over the query axis instead of the support axis",
     _MATCH_HEAD + '''    s = F.normalize(support_emb, dim=1)
    q = F.normalize(query_emb, dim=1)
    attention = torch.softmax(scale * (q @ s.T), dim=0)
    return attention @ F.one_hot(support_y, n_way).float()
''', ["test-matching-probs"]),
    ("ex-matching-probs", "mean cosine per class, then softmax over classes (a prototype rule, not attention)",
     _MATCH_HEAD + '''    s = F.normalize(support_emb, dim=1)
    q = F.normalize(query_emb, dim=1)
    one_hot = F.one_hot(support_y, n_way).float()
    per_class = (q @ s.T) @ one_hot / one_hot.sum(0)
    return torch.softmax(scale * per_class, dim=1)
''', ["test-matching-probs"]),
    ("ex-matching-probs", "delegates to the engine's utils.learners.metric.cosine_attention",
     _MATCH_HEAD + '''    from utils.learners.metric import cosine_attention
    return cosine_attention(support_emb, support_y, query_emb, n_way, scale)
''', ["test-matching-probs"]),

    # ------------------------------------------------------------------ ex-protomaml-init
    ("ex-protomaml-init", "W = c and b = -||c||^2 / 2 (the same argmax, half the logits)",
     _PM_HEAD + '''    protos = torch.stack([support_emb[support_y == k].mean(0) for k in range(n_way)])
    return protos, -0.5 * (protos ** 2).sum(1)
''', ["test-protomaml-init"]),
    ("ex-protomaml-init", "bias with the wrong sign (+||c||^2)",
     _PM_HEAD + '''    protos = torch.stack([support_emb[support_y == k].mean(0) for k in range(n_way)])
    return 2 * protos, (protos ** 2).sum(1)
''', ["test-protomaml-init"]),
    ("ex-protomaml-init", "assumes the support is sorted by class (reshape instead of masks)",
     _PM_HEAD + '''    protos = support_emb.reshape(n_way, -1, support_emb.shape[-1]).mean(1)
    return 2 * protos, -(protos ** 2).sum(1)
''', ["test-protomaml-init"]),
    ("ex-protomaml-init", "delegates to the engine's protomaml_head and prototypes",
     _PM_HEAD + '''    from utils.learners import prototypes
    from utils.learners.metric import protomaml_head
    return protomaml_head(prototypes(support_emb, support_y, n_way))
''', ["test-protomaml-init"]),

    # ------------------------------------------------------------------ ex-cnp-parts
    ("ex-cnp-parts", "sum instead of mean: the representation grows with K",
     '''def aggregate(r, mask=None):
    if mask is None:
        return r.sum(-2)
    return (r * mask.to(r.dtype).unsqueeze(-1)).sum(-2)
''' + _GOOD_NLL, ["test-cnp-parts"]),
    ("ex-cnp-parts", "ignores the mask (averages the padding too)",
     '''def aggregate(r, mask=None):
    return r.mean(-2)
''' + _GOOD_NLL, ["test-cnp-parts"]),
    ("ex-cnp-parts", "treats std as the variance (log var + (y-mu)^2 / (2 var))",
     _GOOD_AGGREGATE + '''def normal_nll(mean, std, y):
    return torch.log(std) + (y - mean) ** 2 / (2 * std) + 0.5 * math.log(2 * math.pi)
''', ["test-cnp-parts"]),
    ("ex-cnp-parts", "delegates to the engine's mean_aggregate and gaussian_nll",
     '''from utils.learners.blackbox import gaussian_nll, mean_aggregate


def aggregate(r, mask=None):
    return mean_aggregate(r, mask)


def normal_nll(mean, std, y):
    return gaussian_nll(mean, std, y)
''', ["test-cnp-parts"]),
]
