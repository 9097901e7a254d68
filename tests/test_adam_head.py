"""utils.learners.finetune.adam_linear_head: the fine-tuning baseline's head steps without autograd make
exactly the updates of torch.optim.Adam on the cross-entropy computed by autograd."""
import copy

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from utils.learners.finetune import adam_linear_head
from utils.learners.inner_loop import loss_and_accuracy
from utils.learners import FineTuneBaseline
from utils.models import Classifier


def _reference(head, features, labels, steps, lr):
    opt = torch.optim.Adam(head.parameters(), lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        F.cross_entropy(head(features), labels).backward()
        opt.step()
    return head


def _zero_head(d, c):
    head = nn.Linear(d, c)
    nn.init.zeros_(head.weight), nn.init.zeros_(head.bias)
    return head


@pytest.mark.parametrize("n_way,shots,dim,steps,lr", [(5, 1, 784, 25, 0.01), (5, 5, 64, 50, 0.01),
                                                      (3, 2, 32, 100, 0.05), (20, 1, 16, 7, 0.003)])
def test_same_updates_as_torch_adam(n_way, shots, dim, steps, lr):
    g = torch.Generator().manual_seed(n_way * 100 + dim)
    features = torch.randn(n_way * shots, dim, generator=g)
    labels = torch.randperm(n_way * shots, generator=g) % n_way
    ours = adam_linear_head(_zero_head(dim, n_way), features, labels, steps=steps, lr=lr)
    ref = _reference(_zero_head(dim, n_way), features, labels, steps, lr)
    torch.testing.assert_close(ours.weight, ref.weight, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(ours.bias, ref.bias, rtol=1e-6, atol=1e-7)
    assert not ours.weight.requires_grad or ours.weight.grad is None, "no autograd graph is left behind"


def test_zero_steps_keep_the_head_and_bad_shapes_say_what_to_pass():
    head = _zero_head(4, 2)
    adam_linear_head(head, torch.randn(6, 4), torch.arange(6) % 2, steps=0, lr=0.01)
    assert torch.count_nonzero(head.weight) == 0
    with pytest.raises(ValueError, match="features \\(S, D\\) and labels \\(S,\\)"):
        adam_linear_head(head, torch.randn(6, 4), torch.arange(5) % 2, steps=3, lr=0.01)


def test_finetune_baseline_head_path_matches_the_autograd_loop():
    torch.manual_seed(0)
    body = nn.Sequential(nn.Linear(12, 8), nn.ReLU())
    learner = FineTuneBaseline(Classifier(body, 8, 7), finetune_lr=0.01, finetune_steps=30, finetune="head")
    g = torch.Generator().manual_seed(1)
    sx, sy = torch.randn(10, 12, generator=g), torch.arange(10) % 5
    qx, qy = torch.randn(15, 12, generator=g), torch.arange(15) % 5
    loss, acc = learner.evaluate_task(sx, sy, qx, qy)
    model = copy.deepcopy(learner.model).eval()
    model.head = _zero_head(8, 5)
    with torch.no_grad():
        fs = model.features(sx)
    _reference(model.head, fs, sy, 30, 0.01)
    with torch.no_grad():
        ref_loss, ref_acc = loss_and_accuracy(model(qx), qy)
    assert abs(loss - float(ref_loss)) < 1e-6 and acc == float(ref_acc)
