"""Plausible wrong answers for chapter 06's autograded exercises.

Each row: (answer cell grade_id, short label, replacement source of that whole answer cell,
[test cell grade_ids that must lose ALL their points]).
"""

WRONG_ANSWERS = [
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
]
