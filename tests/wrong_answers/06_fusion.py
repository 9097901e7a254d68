"""Wrong answers for chapter 06 (see README.md in this folder)."""

_AVG_HEAD = '''def average_probabilities(logits):
'''

_SOUP_HEAD = '''def greedy_soup_indices(state_dicts, score):
'''

_MOE_HEAD = '''def moe_forward(x, gate, experts):
'''

WRONG_ANSWERS = [
    # ------------------------------------------------------------------ ex-average-probabilities
    ("ex-average-probabilities", "averages the logits, then one softmax",
     _AVG_HEAD + '''    return torch.softmax(logits.mean(dim=0), dim=-1)
''', ["test-average-probabilities"]),
    ("ex-average-probabilities", "softmax over the members (dim 0) instead of the classes",
     _AVG_HEAD + '''    return torch.softmax(logits, dim=0).mean(dim=0)
''', ["test-average-probabilities"]),
    ("ex-average-probabilities", "hand-written softmax without the max shift (overflows)",
     _AVG_HEAD + '''    e = torch.exp(logits)
    return (e / e.sum(dim=-1, keepdim=True)).mean(dim=0)
''', ["test-average-probabilities"]),
    ("ex-average-probabilities", "delegates to the engine's utils.fuse.ensemble_predict",
     _AVG_HEAD + '''    from utils.fuse import ensemble_predict
    return ensemble_predict(logits, "prob")
''', ["test-average-probabilities"]),

    # ------------------------------------------------------------------ ex-greedy-soup
    ("ex-greedy-soup", "walks the candidates in list order (no sort by own score)",
     _SOUP_HEAD + '''    chosen, best = [0], score(state_dicts[0])
    for i in range(1, len(state_dicts)):
        s = score(average_state_dicts([state_dicts[j] for j in chosen + [i]]))
        if s >= best:
            chosen.append(i)
            best = s
    return chosen
''', ["test-greedy-soup"]),
    ("ex-greedy-soup", "`>` for `>=`: rejects a candidate that leaves the score unchanged",
     _SOUP_HEAD + '''    scores = [score(sd) for sd in state_dicts]
    order = sorted(range(len(state_dicts)), key=lambda i: -scores[i])
    chosen, best = [order[0]], scores[order[0]]
    for i in order[1:]:
        s = score(average_state_dicts([state_dicts[j] for j in chosen + [i]]))
        if s > best:
            chosen.append(i)
            best = s
    return chosen
''', ["test-greedy-soup"]),
    ("ex-greedy-soup", "judges a candidate by its own score, not the averaged soup's",
     _SOUP_HEAD + '''    scores = [score(sd) for sd in state_dicts]
    order = sorted(range(len(state_dicts)), key=lambda i: -scores[i])
    chosen, best = [order[0]], scores[order[0]]
    for i in order[1:]:
        if scores[i] >= best - 0.05:
            chosen.append(i)
    return chosen
''', ["test-greedy-soup"]),
    ("ex-greedy-soup", "delegates to the engine's utils.fuse.greedy_soup",
     _SOUP_HEAD + '''    from utils.fuse import greedy_soup
    return list(greedy_soup(state_dicts, score).chosen)
''', ["test-greedy-soup"]),

    # ------------------------------------------------------------------ ex-moe-forward
    ("ex-moe-forward", "softmax over the batch (dim 0) instead of the experts",
     _MOE_HEAD + '''    gates = torch.softmax(gate(x), dim=0)
    outs = torch.stack([expert(x) for expert in experts], 1)
    return (gates.unsqueeze(-1) * outs).sum(1), gates
''', ["test-moe-forward"]),
    ("ex-moe-forward", "broadcasts the gates along the wrong axis",
     _MOE_HEAD + '''    gates = torch.softmax(gate(x), dim=1)
    outs = torch.stack([expert(x) for expert in experts], 1)    # (B, E, D)
    return (gates.unsqueeze(1) * outs).sum(1), gates
''', ["test-moe-forward"]),
    ("ex-moe-forward", "hard top-1 routing (argmax) instead of the soft mixture",
     _MOE_HEAD + '''    logits = gate(x)
    gates = torch.nn.functional.one_hot(logits.argmax(1), len(experts)).float()
    outs = torch.stack([expert(x) for expert in experts], 1)
    return (gates.unsqueeze(-1) * outs).sum(1), torch.softmax(logits, dim=1)
''', ["test-moe-forward"]),
    ("ex-moe-forward", "delegates to the engine's utils.fuse.MixtureOfExperts",
     _MOE_HEAD + '''    from utils.fuse import MixtureOfExperts
    out = MixtureOfExperts(experts, gate)(x)
    return out.output, out.gates
''', ["test-moe-forward"]),
]
