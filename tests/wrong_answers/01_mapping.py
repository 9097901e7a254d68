"""Wrong answers for chapter 01 (see README.md in this folder)."""

_SAMPLER_HEAD = '''import numpy as np

def sample_toy_episode(x, y, n_way, k_shot, q_query, rng):
    x, y = np.asarray(x), np.asarray(y)
    classes, counts = np.unique(y, return_counts=True)
'''

_SAMPLER_CHECKS = '''    if n_way > len(classes):
        raise ValueError(f"n_way={n_way} but the data has only {len(classes)} classes")
    if k_shot + q_query > counts.min():
        raise ValueError("a class has too few examples")
'''

WRONG_ANSWERS = [
    # ------------------------------------------------------------------ ex-sampler
    ("ex-sampler", "labels follow sorted class ids (not the random draw order)",
     _SAMPLER_HEAD + _SAMPLER_CHECKS + '''    chosen = np.sort(rng.choice(classes, size=n_way, replace=False))
    support, query = [], []
    for c in chosen:
        idx = rng.permutation(np.flatnonzero(y == c))[:k_shot + q_query]
        support.append(idx[:k_shot])
        query.append(idx[k_shot:])
    support, query = np.concatenate(support), np.concatenate(query)
    return x[support], np.repeat(np.arange(n_way), k_shot), x[query], np.repeat(np.arange(n_way), q_query)
''', ["test-sampler"]),
    ("ex-sampler", "off by one: query starts at the last support example (overlap)",
     _SAMPLER_HEAD + _SAMPLER_CHECKS + '''    chosen = rng.choice(classes, size=n_way, replace=False)
    support, query = [], []
    for c in chosen:
        idx = rng.permutation(np.flatnonzero(y == c))[:k_shot + q_query]
        support.append(idx[:k_shot])
        query.append(idx[k_shot - 1:k_shot - 1 + q_query])
    support, query = np.concatenate(support), np.concatenate(query)
    return x[support], np.repeat(np.arange(n_way), k_shot), x[query], np.repeat(np.arange(n_way), q_query)
''', ["test-sampler"]),
    ("ex-sampler", "`>=` for `>`: refuses a class with exactly K + Q examples",
     _SAMPLER_HEAD + '''    if n_way > len(classes):
        raise ValueError("not enough classes")
    if k_shot + q_query >= counts.min():
        raise ValueError("a class has too few examples")
    chosen = rng.choice(classes, size=n_way, replace=False)
    support, query = [], []
    for c in chosen:
        idx = rng.permutation(np.flatnonzero(y == c))[:k_shot + q_query]
        support.append(idx[:k_shot])
        query.append(idx[k_shot:])
    support, query = np.concatenate(support), np.concatenate(query)
    return x[support], np.repeat(np.arange(n_way), k_shot), x[query], np.repeat(np.arange(n_way), q_query)
''', ["test-sampler"]),

    # ------------------------------------------------------------------ ex-ci
    ("ex-ci", "population std (ddof=0)",
     '''import numpy as np

def mean_with_ci95(accuracies):
    a = np.asarray([float(v) for v in accuracies], dtype=np.float64)
    return float(a.mean()), float(1.96 * a.std() / np.sqrt(a.size))
''', ["test-ci"]),
    ("ex-ci", "divides by n instead of sqrt(n)",
     '''import numpy as np

def mean_with_ci95(accuracies):
    a = np.asarray([float(v) for v in accuracies], dtype=np.float64)
    return float(a.mean()), float(1.96 * a.std(ddof=1) / a.size)
''', ["test-ci"]),
    ("ex-ci", "delegates to the engine's utils.stats.mean_ci95",
     '''from utils.stats import mean_ci95

def mean_with_ci95(accuracies):
    m, h = mean_ci95([float(v) for v in accuracies])
    return float(m), float(h)
''', ["test-ci"]),

    # ------------------------------------------------------------------ concept questions
    ("q-sizes", "support = N * (K + Q) images", "ANSWER_SUPPORT_SIZE = 400\nANSWER_CHANCE_ACCURACY = 0.05\n",
     ["test-q-sizes"]),
    ("q-sizes", "chance = 1 / K", "ANSWER_SUPPORT_SIZE = 100\nANSWER_CHANCE_ACCURACY = 0.2\n", ["test-q-sizes"]),
    ("q-sizes", "support = N (one per class)", "ANSWER_SUPPORT_SIZE = 20\nANSWER_CHANCE_ACCURACY = 0.05\n",
     ["test-q-sizes"]),
    ("q-inner", "(a) the outer loop", 'ANSWER_INNER_LOOP = "a"\n', ["test-q-inner"]),
    ("q-inner", "(c) adapts on the query set", 'ANSWER_INNER_LOOP = "c"\n', ["test-q-inner"]),
    ("q-inner", "(d) averaged prototypes", 'ANSWER_INNER_LOOP = "d"\n', ["test-q-inner"]),
    ("q-kind", "(b) A and B swapped", 'ANSWER_KINDS = "b"\n', ["test-q-kind"]),
    ("q-kind", "(c)", 'ANSWER_KINDS = "c"\n', ["test-q-kind"]),
    ("q-kind", "(d) all meta-learning", 'ANSWER_KINDS = "d"\n', ["test-q-kind"]),
    ("q-eval", "(a) one episode", 'ANSWER_EVALUATION = "a"\n', ["test-q-eval"]),
    ("q-eval", "(b) known classes", 'ANSWER_EVALUATION = "b"\n', ["test-q-eval"]),
    ("q-eval", "(d) best episode", 'ANSWER_EVALUATION = "d"\n', ["test-q-eval"]),
]
