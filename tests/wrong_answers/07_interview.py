"""Wrong answers for chapter 07 (see README.md in this folder).

Concept drills get the other letters or the classic wrong values; the implementation drills and the
bug fixes get the classic slips and the flawed snippets the chapter shows.
"""

WRONG_ANSWERS = [
    # ------------------------------------------------------------------ concept drills
    ("ex-eval-protocol", "(a) meta-training classes", 'ANSWER_EVAL_PROTOCOL = "a"\n', ["test-eval-protocol"]),
    ("ex-eval-protocol", "(b) best episode", 'ANSWER_EVAL_PROTOCOL = "b"\n', ["test-eval-protocol"]),
    ("ex-eval-protocol", "(d) support-set accuracy", 'ANSWER_EVAL_PROTOCOL = "d"\n', ["test-eval-protocol"]),
    ("ex-maml-hessian", "(b) Newton inner step", 'ANSWER_MAML_HESSIAN = "b"\n', ["test-maml-hessian"]),
    ("ex-maml-hessian", "(c) only with batch norm", 'ANSWER_MAML_HESSIAN = "c"\n', ["test-maml-hessian"]),
    ("ex-maml-hessian", "(d) forward pass", 'ANSWER_MAML_HESSIAN = "d"\n', ["test-maml-hessian"]),
    ("ex-kl-arguments", "(a) swapped KL arguments", 'ANSWER_KL_ARGUMENTS = "a"\n', ["test-kl-arguments"]),
    ("ex-kl-arguments", "(b) raw logits", 'ANSWER_KL_ARGUMENTS = "b"\n', ["test-kl-arguments"]),
    ("ex-kl-arguments", "(c) no temperature", 'ANSWER_KL_ARGUMENTS = "c"\n', ["test-kl-arguments"]),
    ("ex-soup", "(a) same architecture is enough", 'ANSWER_SOUP = "a"\n', ["test-soup"]),
    ("ex-soup", "(c) different seeds", 'ANSWER_SOUP = "c"\n', ["test-soup"]),
    ("ex-soup", "(d) same accuracy", 'ANSWER_SOUP = "d"\n', ["test-soup"]),
    ("ex-protonet-linear", "(a) k-NN", 'ANSWER_PROTONET_LINEAR = "a"\n', ["test-protonet-linear"]),
    ("ex-protonet-linear", "(b) quadratic", 'ANSWER_PROTONET_LINEAR = "b"\n', ["test-protonet-linear"]),
    ("ex-protonet-linear", "(c) cosine", 'ANSWER_PROTONET_LINEAR = "c"\n', ["test-protonet-linear"]),
    ("ex-memorization", "(b) divergence", 'ANSWER_MEMORIZATION = "b"\n', ["test-memorization"]),
    ("ex-memorization", "(c) perfect meta-test", 'ANSWER_MEMORIZATION = "c"\n', ["test-memorization"]),
    ("ex-memorization", "(d) nothing goes wrong", 'ANSWER_MEMORIZATION = "d"\n', ["test-memorization"]),
    ("ex-meta-rl", "(a) labelled optimal actions", 'ANSWER_META_RL = "a"\n', ["test-meta-rl"]),
    ("ex-meta-rl", "(b) meta-training replay buffer", 'ANSWER_META_RL = "b"\n', ["test-meta-rl"]),
    ("ex-meta-rl", "(d) reward source code", 'ANSWER_META_RL = "d"\n', ["test-meta-rl"]),
    ("ex-strategy-family", "(a) MAML", 'ANSWER_STRATEGY_FAMILY = "a"\n', ["test-strategy-family"]),
    ("ex-strategy-family", "(c) Reptile", 'ANSWER_STRATEGY_FAMILY = "c"\n', ["test-strategy-family"]),
    ("ex-strategy-family", "(d) RL2", 'ANSWER_STRATEGY_FAMILY = "d"\n', ["test-strategy-family"]),
    ("ex-episode-size", "support images only (N*K)", 'ANSWER_EPISODE_SIZE = 100\n', ["test-episode-size"]),
    ("ex-episode-size", "query images only (N*Q)", 'ANSWER_EPISODE_SIZE = 300\n', ["test-episode-size"]),
    ("ex-episode-size", "K + Q per class", 'ANSWER_EPISODE_SIZE = 20\n', ["test-episode-size"]),
    ("ex-pruned-bytes", "forgets the mask", 'ANSWER_PRUNED_BYTES = 400000\n', ["test-pruned-bytes"]),
    ("ex-pruned-bytes", "a one-byte bool mask", 'ANSWER_PRUNED_BYTES = 1400000\n', ["test-pruned-bytes"]),
    ("ex-pruned-bytes", "mask bits for kept weights only", 'ANSWER_PRUNED_BYTES = 412500\n', ["test-pruned-bytes"]),
    ("ex-ci-width", "the standard error, without 1.96", 'ANSWER_CI_WIDTH = 0.005\n', ["test-ci-width"]),
    ("ex-ci-width", "the full width, not the half-width", 'ANSWER_CI_WIDTH = 0.0196\n', ["test-ci-width"]),
    ("ex-ci-width", "forgets to divide by sqrt(n)", 'ANSWER_CI_WIDTH = 0.196\n', ["test-ci-width"]),
    ("ex-t-squared", "1/T instead of 1/T^2", 'ANSWER_T_SQUARED = 0.25\n', ["test-t-squared"]),
    ("ex-t-squared", "T^2 instead of 1/T^2", 'ANSWER_T_SQUARED = 16\n', ["test-t-squared"]),
    ("ex-t-squared", "T", 'ANSWER_T_SQUARED = 4\n', ["test-t-squared"]),
    ("ex-reptile", "MAML", 'ANSWER_REPTILE = "MAML"\n', ["test-reptile"]),
    ("ex-reptile", "first-order MAML", 'ANSWER_REPTILE = "first-order MAML"\n', ["test-reptile"]),
    ("ex-reptile", "Meta-SGD", 'ANSWER_REPTILE = "Meta-SGD"\n', ["test-reptile"]),
    ("ex-anil-head", "the body", 'ANSWER_ANIL_HEAD = "the body"\n', ["test-anil-head"]),
    ("ex-anil-head", "all layers", 'ANSWER_ANIL_HEAD = "all layers"\n', ["test-anil-head"]),
    ("ex-anil-head", "the first layer", 'ANSWER_ANIL_HEAD = "the first layer"\n', ["test-anil-head"]),
    ("ex-moe-gating", "dense softmax gating", 'ANSWER_MOE_GATING = "softmax"\n', ["test-moe-gating"]),
    ("ex-moe-gating", "uniform weights", 'ANSWER_MOE_GATING = "uniform"\n', ["test-moe-gating"]),
    ("ex-moe-gating", "hard argmax over all experts (no k, no balancing)", 'ANSWER_MOE_GATING = "argmax"\n', ["test-moe-gating"]),
    ("ex-bug1-name", "(a) wrong end of the slice", 'ANSWER_BUG1 = "a"\n', ["test-bug1-name"]),
    ("ex-bug1-name", "(b) no_grad copy", 'ANSWER_BUG1 = "b"\n', ["test-bug1-name"]),
    ("ex-bug1-name", "(d) student too narrow", 'ANSWER_BUG1 = "d"\n', ["test-bug1-name"]),
    ("ex-bug2-name", "(a) batchmean vs mean", 'ANSWER_BUG2 = "a"\n', ["test-bug2-name"]),
    ("ex-bug2-name", "(c) softmax over the batch", 'ANSWER_BUG2 = "c"\n', ["test-bug2-name"]),
    ("ex-bug2-name", "(d) use MSE instead", 'ANSWER_BUG2 = "d"\n', ["test-bug2-name"]),
    ("ex-bug3-name", "(a) scale by 0.25", 'ANSWER_BUG3 = "a"\n', ["test-bug3-name"]),
    ("ex-bug3-name", "(b) forgot the buffers", 'ANSWER_BUG3 = "b"\n', ["test-bug3-name"]),
    ("ex-bug3-name", "(c) needs gradients", 'ANSWER_BUG3 = "c"\n', ["test-bug3-name"]),
    ("ex-bug4-name", "(b) accuracy-weighted average", 'ANSWER_BUG4 = "b"\n', ["test-bug4-name"]),
    ("ex-bug4-name", "(c) average only the output layer", 'ANSWER_BUG4 = "c"\n', ["test-bug4-name"]),
    ("ex-bug4-name", "(d) train longer", 'ANSWER_BUG4 = "d"\n', ["test-bug4-name"]),
    ("ex-bug5-name", "(a) n_way = all classes", 'ANSWER_BUG5 = "a"\n', ["test-bug5-name"]),
    ("ex-bug5-name", "(b) more queries than shots", 'ANSWER_BUG5 = "b"\n', ["test-bug5-name"]),
    ("ex-bug5-name", "(d) evaluate before training", 'ANSWER_BUG5 = "d"\n', ["test-bug5-name"]),
    ("ex-bug6-name", "(b) more training episodes", 'ANSWER_BUG6 = "b"\n', ["test-bug6-name"]),
    ("ex-bug6-name", "(c) 5-shot only", 'ANSWER_BUG6 = "c"\n', ["test-bug6-name"]),
    ("ex-bug6-name", "(d) train mode", 'ANSWER_BUG6 = "d"\n', ["test-bug6-name"]),

    # ------------------------------------------------------------------ ex-sampler
    ("ex-sampler", "labels follow sorted class ids (classes not shuffled)",
     '''import torch


def sample_episode(images, labels, n_way, k_shot, q_query, generator=None):
    labels = torch.as_tensor(labels)
    classes = torch.unique(labels)
    if n_way > len(classes):
        raise ValueError(f"n_way={n_way} but only {len(classes)} classes")
    picked = classes[torch.randperm(len(classes), generator=generator)[:n_way]].sort().values
    support, query = [], []
    for c in picked:
        idx = torch.nonzero(labels == c).flatten()
        if len(idx) < k_shot + q_query:
            raise ValueError("too few examples")
        idx = idx[torch.randperm(len(idx), generator=generator)[:k_shot + q_query]]
        support.append(idx[:k_shot])
        query.append(idx[k_shot:])
    ways = torch.arange(n_way)
    return (images[torch.cat(support)], ways.repeat_interleave(k_shot),
            images[torch.cat(query)], ways.repeat_interleave(q_query))
''', ["test-sampler"]),
    ("ex-sampler", "labels interleaved 0,1,2,0,1,2 (repeat instead of repeat_interleave)",
     '''import torch


def sample_episode(images, labels, n_way, k_shot, q_query, generator=None):
    labels = torch.as_tensor(labels)
    classes = torch.unique(labels)
    if n_way > len(classes):
        raise ValueError(f"n_way={n_way} but only {len(classes)} classes")
    picked = classes[torch.randperm(len(classes), generator=generator)[:n_way]]
    support, query = [], []
    for c in picked:
        idx = torch.nonzero(labels == c).flatten()
        if len(idx) < k_shot + q_query:
            raise ValueError("too few examples")
        idx = idx[torch.randperm(len(idx), generator=generator)[:k_shot + q_query]]
        support.append(idx[:k_shot])
        query.append(idx[k_shot:])
    ways = torch.arange(n_way)
    return (images[torch.cat(support)], ways.repeat(k_shot),
            images[torch.cat(query)], ways.repeat(q_query))
''', ["test-sampler"]),
    ("ex-sampler", "off by one: query overlaps the last support example",
     '''import torch


def sample_episode(images, labels, n_way, k_shot, q_query, generator=None):
    labels = torch.as_tensor(labels)
    classes = torch.unique(labels)
    if n_way > len(classes):
        raise ValueError(f"n_way={n_way} but only {len(classes)} classes")
    picked = classes[torch.randperm(len(classes), generator=generator)[:n_way]]
    support, query = [], []
    for c in picked:
        idx = torch.nonzero(labels == c).flatten()
        if len(idx) < k_shot + q_query:
            raise ValueError("too few examples")
        idx = idx[torch.randperm(len(idx), generator=generator)[:k_shot + q_query]]
        support.append(idx[:k_shot])
        query.append(idx[k_shot - 1:k_shot - 1 + q_query])
    ways = torch.arange(n_way)
    return (images[torch.cat(support)], ways.repeat_interleave(k_shot),
            images[torch.cat(query)], ways.repeat_interleave(q_query))
''', ["test-sampler"]),

    ("ex-sampler", "`<=` for `<`: refuses a class with exactly K + Q examples",
     '''import torch


def sample_episode(images, labels, n_way, k_shot, q_query, generator=None):
    labels = torch.as_tensor(labels)
    classes = torch.unique(labels)
    if n_way > len(classes):
        raise ValueError(f"n_way={n_way} but only {len(classes)} classes")
    picked = classes[torch.randperm(len(classes), generator=generator)[:n_way]]
    support, query = [], []
    for c in picked:
        idx = torch.nonzero(labels == c).flatten()
        if len(idx) <= k_shot + q_query:
            raise ValueError("too few examples")
        idx = idx[torch.randperm(len(idx), generator=generator)[:k_shot + q_query]]
        support.append(idx[:k_shot])
        query.append(idx[k_shot:])
    ways = torch.arange(n_way)
    return (images[torch.cat(support)], ways.repeat_interleave(k_shot),
            images[torch.cat(query)], ways.repeat_interleave(q_query))
''', ["test-sampler"]),

    # ------------------------------------------------------------------ ex-maml
    ("ex-maml", "first-order meta-gradient (no create_graph)",
     '''import torch
import torch.nn.functional as F
from torch.func import functional_call


def maml_meta_step(model, tasks, inner_lr, outer_lr, inner_steps=1):
    params = dict(model.named_parameters())
    meta_loss = 0.0
    for support_x, support_y, query_x, query_y in tasks:
        fast = dict(params)
        for _ in range(inner_steps):
            inner = F.mse_loss(functional_call(model, fast, (support_x,)), support_y)
            grads = torch.autograd.grad(inner, list(fast.values()))
            fast = {name: w - inner_lr * g for (name, w), g in zip(fast.items(), grads)}
        meta_loss = meta_loss + F.mse_loss(functional_call(model, fast, (query_x,)), query_y)
    meta_loss = meta_loss / len(tasks)
    outer = torch.autograd.grad(meta_loss, list(params.values()))
    with torch.no_grad():
        for p, g in zip(params.values(), outer):
            p -= outer_lr * g
    return float(meta_loss.detach())
''', ["test-maml"]),
    ("ex-maml", "sums the query losses over tasks instead of averaging",
     '''import torch
import torch.nn.functional as F
from torch.func import functional_call


def maml_meta_step(model, tasks, inner_lr, outer_lr, inner_steps=1):
    params = dict(model.named_parameters())
    meta_loss = 0.0
    for support_x, support_y, query_x, query_y in tasks:
        fast = dict(params)
        for _ in range(inner_steps):
            inner = F.mse_loss(functional_call(model, fast, (support_x,)), support_y)
            grads = torch.autograd.grad(inner, list(fast.values()), create_graph=True)
            fast = {name: w - inner_lr * g for (name, w), g in zip(fast.items(), grads)}
        meta_loss = meta_loss + F.mse_loss(functional_call(model, fast, (query_x,)), query_y)
    outer = torch.autograd.grad(meta_loss, list(params.values()))
    with torch.no_grad():
        for p, g in zip(params.values(), outer):
            p -= outer_lr * g
    return float(meta_loss.detach())
''', ["test-maml"]),
    ("ex-maml", "meta-loss on the support set (no query)",
     '''import torch
import torch.nn.functional as F
from torch.func import functional_call


def maml_meta_step(model, tasks, inner_lr, outer_lr, inner_steps=1):
    params = dict(model.named_parameters())
    meta_loss = 0.0
    for support_x, support_y, query_x, query_y in tasks:
        fast = dict(params)
        for _ in range(inner_steps):
            inner = F.mse_loss(functional_call(model, fast, (support_x,)), support_y)
            grads = torch.autograd.grad(inner, list(fast.values()), create_graph=True)
            fast = {name: w - inner_lr * g for (name, w), g in zip(fast.items(), grads)}
        meta_loss = meta_loss + F.mse_loss(functional_call(model, fast, (support_x,)), support_y)
    meta_loss = meta_loss / len(tasks)
    outer = torch.autograd.grad(meta_loss, list(params.values()))
    with torch.no_grad():
        for p, g in zip(params.values(), outer):
            p -= outer_lr * g
    return float(meta_loss.detach())
''', ["test-maml"]),

    # ------------------------------------------------------------------ ex-protonet
    ("ex-protonet", "assumes a class-sorted support (reshape into N x K)",
     '''import torch
import torch.nn.functional as F


def protonet_loss(support_emb, support_y, query_emb, query_y, n_way):
    prototypes = support_emb.reshape(n_way, -1, support_emb.shape[-1]).mean(1)
    logits = -((query_emb.unsqueeze(1) - prototypes.unsqueeze(0)) ** 2).sum(-1)
    loss = F.cross_entropy(logits, query_y)
    accuracy = (logits.argmax(-1) == query_y).float().mean()
    return loss, accuracy
''', ["test-protonet"]),
    ("ex-protonet", "Euclidean distance, not squared",
     '''import torch
import torch.nn.functional as F


def protonet_loss(support_emb, support_y, query_emb, query_y, n_way):
    prototypes = torch.stack([support_emb[support_y == c].mean(0) for c in range(n_way)])
    logits = -torch.cdist(query_emb, prototypes)
    loss = F.cross_entropy(logits, query_y)
    accuracy = (logits.argmax(-1) == query_y).float().mean()
    return loss, accuracy
''', ["test-protonet"]),
    ("ex-protonet", "distance as the logit (missing minus sign)",
     '''import torch
import torch.nn.functional as F


def protonet_loss(support_emb, support_y, query_emb, query_y, n_way):
    prototypes = torch.stack([support_emb[support_y == c].mean(0) for c in range(n_way)])
    logits = ((query_emb.unsqueeze(1) - prototypes.unsqueeze(0)) ** 2).sum(-1)
    loss = F.cross_entropy(logits, query_y)
    accuracy = (logits.argmin(-1) == query_y).float().mean()
    return loss, accuracy
''', ["test-protonet"]),

    # ------------------------------------------------------------------ ex-kd
    ("ex-kd", "swapped KL arguments (the popular write-up's kl_div(teacher, student))",
     '''import torch
import torch.nn.functional as F


def kd_loss(student_logits, teacher_logits, labels, T=4.0, alpha=0.9):
    soft = F.kl_div(F.log_softmax(teacher_logits.detach() / T, dim=-1), F.softmax(student_logits / T, dim=-1),
                    reduction="batchmean") * T * T
    return alpha * soft + (1 - alpha) * F.cross_entropy(student_logits, labels)
''', ["test-kd"]),
    ("ex-kd", "missing T^2",
     '''import torch
import torch.nn.functional as F


def kd_loss(student_logits, teacher_logits, labels, T=4.0, alpha=0.9):
    soft = F.kl_div(F.log_softmax(student_logits / T, dim=-1), F.softmax(teacher_logits.detach() / T, dim=-1),
                    reduction="batchmean")
    return alpha * soft + (1 - alpha) * F.cross_entropy(student_logits, labels)
''', ["test-kd"]),
    ("ex-kd", "reduction='mean' (divides by classes too) instead of 'batchmean'",
     '''import torch
import torch.nn.functional as F


def kd_loss(student_logits, teacher_logits, labels, T=4.0, alpha=0.9):
    soft = F.kl_div(F.log_softmax(student_logits / T, dim=-1), F.softmax(teacher_logits.detach() / T, dim=-1),
                    reduction="mean") * T * T
    return alpha * soft + (1 - alpha) * F.cross_entropy(student_logits, labels)
''', ["test-kd"]),
    ("ex-kd", "forgets to detach the teacher",
     '''import torch
import torch.nn.functional as F


def kd_loss(student_logits, teacher_logits, labels, T=4.0, alpha=0.9):
    soft = F.kl_div(F.log_softmax(student_logits / T, dim=-1), F.softmax(teacher_logits / T, dim=-1),
                    reduction="batchmean") * T * T
    return alpha * soft + (1 - alpha) * F.cross_entropy(student_logits, labels)
''', ["test-kd"]),

    # ------------------------------------------------------------------ ex-mask
    ("ex-mask", "int() truncates the count where round() is asked",
     '''import torch


def magnitude_mask(weight, sparsity):
    if not 0.0 <= sparsity <= 1.0:
        raise ValueError(f"sparsity must be in [0, 1], got {sparsity}")
    n = weight.numel()
    k = int(sparsity * n)
    mask = torch.ones(n, dtype=torch.bool)
    order = torch.argsort(weight.detach().abs().flatten(), stable=True)
    mask[order[:k]] = False
    return mask.view(weight.shape)
''', ["test-mask"]),
    ("ex-mask", "prunes the most negative weights (signed values, not |w|)",
     '''import torch


def magnitude_mask(weight, sparsity):
    if not 0.0 <= sparsity <= 1.0:
        raise ValueError(f"sparsity must be in [0, 1], got {sparsity}")
    n = weight.numel()
    k = int(round(sparsity * n))
    mask = torch.ones(n, dtype=torch.bool)
    order = torch.argsort(weight.detach().flatten(), stable=True)
    mask[order[:k]] = False
    return mask.view(weight.shape)
''', ["test-mask"]),
    ("ex-mask", "a threshold on |w| (ties prune more than asked)",
     '''import torch


def magnitude_mask(weight, sparsity):
    if not 0.0 <= sparsity <= 1.0:
        raise ValueError(f"sparsity must be in [0, 1], got {sparsity}")
    n = weight.numel()
    k = int(round(sparsity * n))
    if k == 0:
        return torch.ones_like(weight, dtype=torch.bool)
    threshold = weight.detach().abs().flatten().kthvalue(k).values
    return weight.detach().abs() > threshold
''', ["test-mask"]),
    ("ex-mask", "delegates to the engine's utils.compress.magnitude_mask",
     '''import torch
from utils import compress


def magnitude_mask(weight, sparsity):
    return compress.magnitude_mask(weight, sparsity)
''', ["test-mask"]),

    # ------------------------------------------------------------------ ex-ensemble
    ("ex-ensemble", "averages the logits, then one softmax",
     '''import torch


def average_probabilities(logits):
    stacked = torch.stack(list(logits)) if isinstance(logits, (list, tuple)) else logits
    return stacked.mean(dim=0).softmax(dim=-1)
''', ["test-ensemble"]),
    ("ex-ensemble", "majority vote of the members' argmax",
     '''import torch


def average_probabilities(logits):
    stacked = torch.stack(list(logits)) if isinstance(logits, (list, tuple)) else logits
    votes = torch.nn.functional.one_hot(stacked.argmax(-1), stacked.shape[-1]).float()
    return votes.mean(dim=0)
''', ["test-ensemble"]),
    ("ex-ensemble", "delegates to the engine's utils.fuse.ensemble_predict",
     '''import torch
from utils.fuse import ensemble_predict


def average_probabilities(logits):
    return ensemble_predict(logits, "prob")
''', ["test-ensemble"]),

    # ------------------------------------------------------------------ bug fixes
    ("ex-bug1-fix", "the chapter's flawed snippet: copy a slice of the teacher's weights",
     '''import torch
import torch.nn.functional as F


def distill(student, teacher, x, T=4.0, steps=200, lr=1e-2):
    h = student[0].out_features
    with torch.no_grad():
        student[0].weight.copy_(teacher[0].weight[:h])
        student[0].bias.copy_(teacher[0].bias[:h])
        student[2].weight.copy_(teacher[2].weight[:, :h])
        student[2].bias.copy_(teacher[2].bias)
    return student
''', ["test-bug1-fix"]),
    ("ex-bug1-fix", "optimizes the teacher's parameters instead of the student's",
     '''import torch
import torch.nn.functional as F


def distill(student, teacher, x, T=4.0, steps=200, lr=1e-2):
    optimizer = torch.optim.Adam(teacher.parameters(), lr=lr)
    for _ in range(steps):
        optimizer.zero_grad()
        loss = T * T * F.kl_div(F.log_softmax(student(x) / T, dim=-1), F.softmax(teacher(x) / T, dim=-1),
                                reduction="batchmean")
        loss.backward()
        optimizer.step()
    return student
''', ["test-bug1-fix"]),
    ("ex-bug1-fix", "a single optimization step (ignores `steps`)",
     '''import torch
import torch.nn.functional as F


def distill(student, teacher, x, T=4.0, steps=200, lr=1e-2):
    with torch.no_grad():
        soft_targets = F.softmax(teacher(x) / T, dim=-1)
    optimizer = torch.optim.Adam(student.parameters(), lr=lr)
    optimizer.zero_grad()
    loss = T * T * F.kl_div(F.log_softmax(student(x) / T, dim=-1), soft_targets, reduction="batchmean")
    loss.backward()
    optimizer.step()
    return student
''', ["test-bug1-fix"]),
    ("ex-bug2-fix", "the chapter's flawed snippet: swapped arguments, no temperature",
     '''import torch
import torch.nn.functional as F


def soft_target_loss(student_logits, teacher_logits, T=4.0):
    return F.kl_div(F.log_softmax(teacher_logits, dim=-1), F.softmax(student_logits, dim=-1),
                    reduction="batchmean")
''', ["test-bug2-fix"]),
    ("ex-bug2-fix", "missing T^2",
     '''import torch
import torch.nn.functional as F


def soft_target_loss(student_logits, teacher_logits, T=4.0):
    target = F.softmax(teacher_logits.detach() / T, dim=-1)
    return F.kl_div(F.log_softmax(student_logits / T, dim=-1), target, reduction="batchmean")
''', ["test-bug2-fix"]),
    ("ex-bug2-fix", "forgets to detach the teacher",
     '''import torch
import torch.nn.functional as F


def soft_target_loss(student_logits, teacher_logits, T=4.0):
    target = F.softmax(teacher_logits / T, dim=-1)
    return T * T * F.kl_div(F.log_softmax(student_logits / T, dim=-1), target, reduction="batchmean")
''', ["test-bug2-fix"]),
    ("ex-bug3-fix", "the chapter's flawed idea: halve the weights, keep float32",
     '''import torch


def quantize_int8(weight):
    return (weight.detach() * 0.5), torch.tensor(2.0)
''', ["test-bug3-fix"]),
    ("ex-bug3-fix", "truncates instead of rounding",
     '''import torch


def quantize_int8(weight):
    w = weight.detach()
    max_abs = w.abs().max()
    scale = max_abs / 127 if max_abs > 0 else torch.tensor(1.0)
    q = torch.clamp(w / scale, -127, 127).to(torch.int8)
    return q, scale
''', ["test-bug3-fix"]),
    ("ex-bug3-fix", "all-zero weights divide by zero",
     '''import torch


def quantize_int8(weight):
    w = weight.detach()
    scale = w.abs().max() / 127
    q = torch.clamp(torch.round(w / scale), -127, 127).to(torch.int8)
    return q, scale
''', ["test-bug3-fix"]),
    ("ex-bug4-fix", "the chapter's flawed idea: average the members' weights",
     '''import copy
import torch
from torch import nn


class ProbabilityEnsemble(nn.Module):
    def __init__(self, models):
        super().__init__()
        self.members = nn.ModuleList(models)

    def forward(self, x):
        fused = copy.deepcopy(self.members[0])
        sds = [m.state_dict() for m in self.members]
        fused.load_state_dict({k: sum(sd[k] for sd in sds) / len(sds) for k in sds[0]})
        return fused(x).log_softmax(dim=-1)
''', ["test-bug4-fix"]),
    ("ex-bug4-fix", "averages the logits, then log-softmax",
     '''import torch
from torch import nn


class ProbabilityEnsemble(nn.Module):
    def __init__(self, models):
        super().__init__()
        self.members = nn.ModuleList(models)

    def forward(self, x):
        return torch.stack([m(x) for m in self.members]).mean(dim=0).log_softmax(dim=-1)
''', ["test-bug4-fix"]),
    ("ex-bug4-fix", "keeps the members in a plain list (not registered as submodules)",
     '''import torch
from torch import nn


class ProbabilityEnsemble(nn.Module):
    def __init__(self, models):
        super().__init__()
        self.members = list(models)

    def forward(self, x):
        probs = torch.stack([m(x).softmax(dim=-1) for m in self.members]).mean(dim=0)
        return probs.clamp_min(1e-12).log()
''', ["test-bug4-fix"]),
    ("ex-bug5-fix", "the chapter's flawed setup: both samplers over all classes",
     '''import torch
from utils.episodes import EpisodeSampler


def make_samplers(images, labels, n_way, k_shot, q_query, test_fraction=0.3, seed=0):
    return (EpisodeSampler(images, labels, n_way, k_shot, q_query, seed=seed),
            EpisodeSampler(images, labels, n_way, k_shot, q_query, seed=seed + 1))
''', ["test-bug5-fix"]),
    ("ex-bug5-fix", "always holds out the last classes (split does not depend on the seed)",
     '''import torch
from utils.episodes import EpisodeSampler


def make_samplers(images, labels, n_way, k_shot, q_query, test_fraction=0.3, seed=0):
    classes = torch.unique(torch.as_tensor(labels))
    n_test = max(1, int(round(test_fraction * len(classes))))
    train_classes, test_classes = classes[:-n_test].tolist(), classes[-n_test:].tolist()
    return (EpisodeSampler(images, labels, n_way, k_shot, q_query, classes=train_classes, seed=seed),
            EpisodeSampler(images, labels, n_way, k_shot, q_query, classes=test_classes, seed=seed + 1))
''', ["test-bug5-fix"]),
    ("ex-bug5-fix", "off by one: one class lands in both splits",
     '''import torch
from utils.episodes import EpisodeSampler


def make_samplers(images, labels, n_way, k_shot, q_query, test_fraction=0.3, seed=0):
    classes = torch.unique(torch.as_tensor(labels))
    n_test = max(1, int(round(test_fraction * len(classes))))
    order = classes[torch.randperm(len(classes), generator=torch.Generator().manual_seed(seed))]
    test_classes, train_classes = order[:n_test].tolist(), order[n_test - 1:].tolist()
    return (EpisodeSampler(images, labels, n_way, k_shot, q_query, classes=train_classes, seed=seed),
            EpisodeSampler(images, labels, n_way, k_shot, q_query, classes=test_classes, seed=seed + 1))
''', ["test-bug5-fix"]),
    ("ex-bug6-fix", "the chapter's flawed idea: one episode drawn once, scored n times",
     '''import math
import torch


def evaluate_fewshot(predict, sampler, n_episodes=600):
    ep = sampler.sample()
    accs = []
    for _ in range(n_episodes):
        pred = torch.as_tensor(predict(ep.support_x, ep.support_y, ep.query_x))
        accs.append(float((pred == ep.query_y).float().mean()))
    acc = torch.tensor(accs, dtype=torch.float64)
    return float(acc.mean()), float(1.96 * acc.std(correction=1) / math.sqrt(len(accs)))
''', ["test-bug6-fix"]),
    ("ex-bug6-fix", "population std (correction=0)",
     '''import math
import torch


def evaluate_fewshot(predict, sampler, n_episodes=600):
    accs = []
    for _ in range(n_episodes):
        ep = sampler.sample()
        pred = torch.as_tensor(predict(ep.support_x, ep.support_y, ep.query_x))
        accs.append(float((pred == ep.query_y).float().mean()))
    acc = torch.tensor(accs, dtype=torch.float64)
    return float(acc.mean()), float(1.96 * acc.std(correction=0) / math.sqrt(len(accs)))
''', ["test-bug6-fix"]),
    ("ex-bug6-fix", "reports the standard error (no 1.96)",
     '''import math
import torch


def evaluate_fewshot(predict, sampler, n_episodes=600):
    accs = []
    for _ in range(n_episodes):
        ep = sampler.sample()
        pred = torch.as_tensor(predict(ep.support_x, ep.support_y, ep.query_x))
        accs.append(float((pred == ep.query_y).float().mean()))
    acc = torch.tensor(accs, dtype=torch.float64)
    return float(acc.mean()), float(acc.std(correction=1) / math.sqrt(len(accs)))
''', ["test-bug6-fix"]),
    # bug7..bug10 (issue 13 §4)
    ("ex-bug7-name", "teacher mode only", 'ANSWER_BUG7 = "a"\n', ["test-bug7-name"]),
    ("ex-bug7-name", "T squared divides", 'ANSWER_BUG7 = "c"\n', ["test-bug7-name"]),
    ("ex-bug7-name", "sum reduction", 'ANSWER_BUG7 = "d"\n', ["test-bug7-name"]),
    ("ex-bug7-fix", "the flawed loss: soft term without the student", '''import torch
import torch.nn.functional as F


def distillation_loss(student_logits, teacher, x, labels, T=4.0, alpha=0.5):
    teacher.eval()
    with torch.no_grad():
        t = teacher(x)
    soft = F.kl_div(F.log_softmax(t / T, dim=-1), F.softmax(t / T, dim=-1), reduction="batchmean")
    return alpha * T * T * soft + (1 - alpha) * F.cross_entropy(student_logits, labels)
''', ["test-bug7-fix"]),
    ("ex-bug7-fix", "teacher left in training mode", '''import torch
import torch.nn.functional as F


def distillation_loss(student_logits, teacher, x, labels, T=4.0, alpha=0.5):
    with torch.no_grad():
        target = F.softmax(teacher(x) / T, dim=-1)
    soft = F.kl_div(F.log_softmax(student_logits / T, dim=-1), target, reduction="batchmean")
    return alpha * T * T * soft + (1 - alpha) * F.cross_entropy(student_logits, labels)
''', ["test-bug7-fix"]),
    ("ex-bug7-fix", "T squared dropped", '''import torch
import torch.nn.functional as F


def distillation_loss(student_logits, teacher, x, labels, T=4.0, alpha=0.5):
    teacher.eval()
    with torch.no_grad():
        target = F.softmax(teacher(x) / T, dim=-1)
    soft = F.kl_div(F.log_softmax(student_logits / T, dim=-1), target, reduction="batchmean")
    return alpha * soft + (1 - alpha) * F.cross_entropy(student_logits, labels)
''', ["test-bug7-fix"]),
    ("ex-bug7-fix", "KL arguments swapped (reverse KL)", '''import torch
import torch.nn.functional as F


def distillation_loss(student_logits, teacher, x, labels, T=4.0, alpha=0.5):
    teacher.eval()
    with torch.no_grad():
        log_t = F.log_softmax(teacher(x) / T, dim=-1)
    soft = F.kl_div(log_t, F.softmax(student_logits / T, dim=-1), reduction="batchmean")
    return alpha * T * T * soft + (1 - alpha) * F.cross_entropy(student_logits, labels)
''', ["test-bug7-fix"]),
    ("ex-bug8-name", "softmax levels", 'ANSWER_BUG8 = "a"\n', ["test-bug8-name"]),
    ("ex-bug8-name", "one-hot targets", 'ANSWER_BUG8 = "b"\n', ["test-bug8-name"]),
    ("ex-bug8-name", "second-order optimizer", 'ANSWER_BUG8 = "c"\n', ["test-bug8-name"]),
    ("ex-bug8-fix", "the post's 2-unit output layer", '''from utils.models import MLP
from utils.training import fit


def train_digit_classifier(x, y, hidden=32, epochs=8, seed=0):
    model = MLP([x.shape[1], hidden, 2])
    try:
        fit(model, (x, y), epochs=epochs, lr=3e-3, device="cpu", progress=False, seed=seed)
    except IndexError:
        pass
    return model
''', ["test-bug8-fix"]),
    ("ex-bug8-fix", "ten units hard-coded", '''from utils.models import MLP
from utils.training import fit


def train_digit_classifier(x, y, hidden=32, epochs=8, seed=0):
    model = MLP([x.shape[1], hidden, 10])
    fit(model, (x, y), epochs=epochs, lr=3e-3, device="cpu", progress=False, seed=seed)
    return model
''', ["test-bug8-fix"]),
    ("ex-bug8-fix", "right width, never trained", '''from utils.models import MLP


def train_digit_classifier(x, y, hidden=32, epochs=8, seed=0):
    return MLP([x.shape[1], hidden, int(y.max()) + 1])
''', ["test-bug8-fix"]),
    ("ex-bug8-fix", "off by one: max label as the width", '''from utils.models import MLP
from utils.training import fit


def train_digit_classifier(x, y, hidden=32, epochs=8, seed=0):
    model = MLP([x.shape[1], hidden, int(y.max())])
    try:
        fit(model, (x, y), epochs=epochs, lr=3e-3, device="cpu", progress=False, seed=seed)
    except IndexError:
        pass
    return model
''', ["test-bug8-fix"]),
    ("ex-bug9-name", "wrong task order", 'ANSWER_BUG9 = "b"\n', ["test-bug9-name"]),
    ("ex-bug9-name", "more tasks in a row", 'ANSWER_BUG9 = "c"\n', ["test-bug9-name"]),
    ("ex-bug9-name", "a head per task", 'ANSWER_BUG9 = "d"\n', ["test-bug9-name"]),
    ("ex-bug9-fix", "sequential: each task starts where the last ended", '''import copy
import torch
import torch.nn.functional as F


def reptile_step(model, tasks, inner_steps=5, inner_lr=0.02, outer_lr=0.1):
    theta = [p.detach().clone() for p in model.parameters()]
    fast = copy.deepcopy(model)
    opt = torch.optim.SGD(fast.parameters(), lr=inner_lr)
    for x, y in tasks:
        for _ in range(inner_steps):
            opt.zero_grad()
            F.cross_entropy(fast(x), y).backward()
            opt.step()
    with torch.no_grad():
        for p, t, q in zip(model.parameters(), theta, fast.parameters()):
            p.copy_(t + outer_lr * (q - t))
    return model
''', ["test-bug9-fix"]),
    ("ex-bug9-fix", "outer step size ignored: jump to the mean of the adapted weights", '''import copy
import torch
import torch.nn.functional as F


def reptile_step(model, tasks, inner_steps=5, inner_lr=0.02, outer_lr=0.1):
    adapted = []
    for x, y in tasks:
        fast = copy.deepcopy(model)
        opt = torch.optim.SGD(fast.parameters(), lr=inner_lr)
        for _ in range(inner_steps):
            opt.zero_grad()
            F.cross_entropy(fast(x), y).backward()
            opt.step()
        adapted.append([p.detach() for p in fast.parameters()])
    with torch.no_grad():
        for i, p in enumerate(model.parameters()):
            p.copy_(torch.stack([a[i] for a in adapted]).mean(0))
    return model
''', ["test-bug9-fix"]),
    ("ex-bug9-fix", "sum over tasks instead of the mean", '''import copy
import torch
import torch.nn.functional as F


def reptile_step(model, tasks, inner_steps=5, inner_lr=0.02, outer_lr=0.1):
    theta = [p.detach().clone() for p in model.parameters()]
    deltas = [torch.zeros_like(t) for t in theta]
    for x, y in tasks:
        fast = copy.deepcopy(model)
        opt = torch.optim.SGD(fast.parameters(), lr=inner_lr)
        for _ in range(inner_steps):
            opt.zero_grad()
            F.cross_entropy(fast(x), y).backward()
            opt.step()
        for d, p, t in zip(deltas, fast.parameters(), theta):
            d += p.detach() - t
    with torch.no_grad():
        for p, t, d in zip(model.parameters(), theta, deltas):
            p.copy_(t + outer_lr * d)
    return model
''', ["test-bug9-fix"]),
    ("ex-bug9-fix", "Adam in the inner loop", '''import copy
import torch
import torch.nn.functional as F


def reptile_step(model, tasks, inner_steps=5, inner_lr=0.02, outer_lr=0.1):
    theta = [p.detach().clone() for p in model.parameters()]
    deltas = [torch.zeros_like(t) for t in theta]
    for x, y in tasks:
        fast = copy.deepcopy(model)
        opt = torch.optim.Adam(fast.parameters(), lr=inner_lr)
        for _ in range(inner_steps):
            opt.zero_grad()
            F.cross_entropy(fast(x), y).backward()
            opt.step()
        for d, p, t in zip(deltas, fast.parameters(), theta):
            d += (p.detach() - t) / len(tasks)
    with torch.no_grad():
        for p, t, d in zip(model.parameters(), theta, deltas):
            p.copy_(t + outer_lr * d)
    return model
''', ["test-bug9-fix"]),
    ("ex-bug10-name", "larger lambda", 'ANSWER_BUG10 = "a"\n', ["test-bug10-name"]),
    ("ex-bug10-name", "validation accuracy", 'ANSWER_BUG10 = "b"\n', ["test-bug10-name"]),
    ("ex-bug10-name", "wrong sign", 'ANSWER_BUG10 = "d"\n', ["test-bug10-name"]),
    ("ex-bug10-fix", "hard accuracy again (argmax)", '''import torch


def soft_accuracy(logits, labels):
    return (logits.argmax(dim=-1) == labels).float().mean()
''', ["test-bug10-fix"]),
    ("ex-bug10-fix", "mean log-probability of the true class", '''import torch
import torch.nn.functional as F


def soft_accuracy(logits, labels):
    return F.log_softmax(logits, dim=-1).gather(1, labels.long().unsqueeze(1)).mean()
''', ["test-bug10-fix"]),
    ("ex-bug10-fix", "sigmoid instead of softmax", '''import torch


def soft_accuracy(logits, labels):
    return torch.sigmoid(logits).gather(1, labels.long().unsqueeze(1)).mean()
''', ["test-bug10-fix"]),
    ("ex-bug10-fix", "softmax over the batch dimension", '''import torch
import torch.nn.functional as F


def soft_accuracy(logits, labels):
    return F.softmax(logits, dim=0).gather(1, labels.long().unsqueeze(1)).mean()
''', ["test-bug10-fix"]),

    # ------------------------------------------------------------------ ex-cnp
    ("ex-cnp", "sums the support representations instead of averaging them",
     '''import math
import torch
import torch.nn.functional as F


def cnp_nll(encoder, decoder, support_x, support_y, query_x, query_y):
    r = encoder(torch.cat([support_x, support_y], dim=-1)).sum(dim=1)
    r = r.unsqueeze(1).expand(-1, query_x.shape[1], -1)
    out = decoder(torch.cat([r, query_x], dim=-1))
    mean, std = out[..., :1], 0.01 + 0.99 * F.softplus(out[..., 1:])
    nll = torch.log(std) + (query_y - mean) ** 2 / (2 * std ** 2) + 0.5 * math.log(2 * math.pi)
    return nll.mean()
''', ["test-cnp"]),
    ("ex-cnp", "mean squared error instead of the Gaussian likelihood (sigma never trained)",
     '''import math
import torch
import torch.nn.functional as F


def cnp_nll(encoder, decoder, support_x, support_y, query_x, query_y):
    r = encoder(torch.cat([support_x, support_y], dim=-1)).mean(dim=1)
    r = r.unsqueeze(1).expand(-1, query_x.shape[1], -1)
    out = decoder(torch.cat([r, query_x], dim=-1))
    return F.mse_loss(out[..., :1], query_y)
''', ["test-cnp"]),
    ("ex-cnp", "exp(channel 1) as the standard deviation instead of 0.01 + 0.99 softplus",
     '''import math
import torch
import torch.nn.functional as F


def cnp_nll(encoder, decoder, support_x, support_y, query_x, query_y):
    r = encoder(torch.cat([support_x, support_y], dim=-1)).mean(dim=1)
    r = r.unsqueeze(1).expand(-1, query_x.shape[1], -1)
    out = decoder(torch.cat([r, query_x], dim=-1))
    mean, std = out[..., :1], torch.exp(out[..., 1:])
    nll = torch.log(std) + (query_y - mean) ** 2 / (2 * std ** 2) + 0.5 * math.log(2 * math.pi)
    return nll.mean()
''', ["test-cnp"]),
    ("ex-cnp", "delegates to the engine's utils.learners.blackbox.gaussian_nll and mean_aggregate",
     '''import math
import torch
import torch.nn.functional as F


def cnp_nll(encoder, decoder, support_x, support_y, query_x, query_y):
    from utils.learners.blackbox import gaussian_nll, mean_aggregate
    r = mean_aggregate(encoder(torch.cat([support_x, support_y], dim=-1)))
    r = r.unsqueeze(1).expand(-1, query_x.shape[1], -1)
    out = decoder(torch.cat([r, query_x], dim=-1))
    return gaussian_nll(out[..., :1], 0.01 + 0.99 * F.softplus(out[..., 1:]), query_y).mean()
''', ["test-cnp"]),
]
