"""Wrong answers for chapter 04 (see README.md in this folder)."""

_HEAD = '''import torch
from torch.nn import functional as F

def my_kd_loss(student_logits, teacher_logits, labels, T=4.0, alpha=0.9):
'''

WRONG_ANSWERS = [
    # ------------------------------------------------------------------ ex-kd-loss
    ("ex-kd-loss", "swapped KL arguments: KL(student || teacher)",
     _HEAD + '''    log_q = F.log_softmax(student_logits / T, dim=1)
    log_p = F.log_softmax(teacher_logits.detach() / T, dim=1)
    soft = (log_q.exp() * (log_q - log_p)).sum(1).mean()
    hard = F.cross_entropy(student_logits, labels)
    return alpha * T * T * soft + (1 - alpha) * hard
''', ["test-kd-loss"]),
    ("ex-kd-loss", "missing T^2 on the soft term",
     _HEAD + '''    log_q = F.log_softmax(student_logits / T, dim=1)
    p = F.softmax(teacher_logits.detach() / T, dim=1)
    soft = F.kl_div(log_q, p, reduction="batchmean")
    return alpha * soft + (1 - alpha) * F.cross_entropy(student_logits, labels)
''', ["test-kd-loss"]),
    ("ex-kd-loss", "forgets to detach the teacher (gradient flows into the teacher's logits)",
     _HEAD + '''    log_q = F.log_softmax(student_logits / T, dim=1)
    log_p = F.log_softmax(teacher_logits / T, dim=1)
    soft = (log_p.exp() * (log_p - log_q)).sum(1).mean()
    hard = F.cross_entropy(student_logits, labels)
    return alpha * T * T * soft + (1 - alpha) * hard
''', ["test-kd-loss"]),
    ("ex-kd-loss", "delegates to utils.distill.kd_loss, passed in as a default argument",
     '''import torch
from torch.nn import functional as F
import utils.distill

def my_kd_loss(student_logits, teacher_logits, labels, T=4.0, alpha=0.9, _impl=utils.distill.kd_loss):
    return _impl(student_logits, teacher_logits, labels, T=T, alpha=alpha)
''', ["test-kd-loss"]),

    # ------------------------------------------------------------------ ex-why-temperature
    ("ex-why-temperature", "(a) a more accurate teacher", 'ANSWER_WHY_TEMPERATURE = "a"\n', ["test-why-temperature"]),
    ("ex-why-temperature", "(b) larger gradients", 'ANSWER_WHY_TEMPERATURE = "b"\n', ["test-why-temperature"]),
    ("ex-why-temperature", "(d) noise as augmentation", 'ANSWER_WHY_TEMPERATURE = "d"\n', ["test-why-temperature"]),

    # ------------------------------------------------------------------ ex-buggy-variant
    ("ex-buggy-variant", "(a) the standard kl_div call", 'ANSWER_BUGGY_VARIANT = "a"\n', ["test-buggy-variant"]),
    ("ex-buggy-variant", "(b) log_target=True", 'ANSWER_BUGGY_VARIANT = "b"\n', ["test-buggy-variant"]),
    ("ex-buggy-variant", "(c) the explicit forward KL", 'ANSWER_BUGGY_VARIANT = "c"\n', ["test-buggy-variant"]),
]
