"""Multi-task learner of chapter 01: shapes, one softmax per task, training, errors."""
from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from utils.errors import CourseError
from utils.multitask import MultiHeadClassifier, evaluate_multitask, fit_multitask, multitask_loss


def _model(n_classes=(3, 4), d_in=6, d=5, seed=0):
    torch.manual_seed(seed)
    return MultiHeadClassifier(nn.Sequential(nn.Linear(d_in, d), nn.ReLU()), d, n_classes)


def test_one_head_per_task_with_its_own_class_count():
    m = _model((3, 4, 2))
    x = torch.randn(7, 6)
    assert [tuple(m(x, t).shape) for t in range(3)] == [(7, 3), (7, 4), (7, 2)]
    assert m.n_tasks == 3 and m.n_classes == [3, 4, 2]


def test_loss_is_each_rows_cross_entropy_under_its_own_head():
    m = _model()
    x, y, task = torch.randn(6, 6), torch.tensor([0, 3, 2, 1, 0, 2]), torch.tensor([0, 1, 0, 1, 1, 0])
    loss, correct = multitask_loss(m, x, y, task)
    per_row = [F.cross_entropy(m(x[i:i + 1], int(task[i])), y[i:i + 1]) for i in range(6)]
    assert torch.allclose(loss, torch.stack(per_row).mean(), atol=1e-6)
    assert correct == sum(int(m(x[i:i + 1], int(task[i])).argmax(1) == y[i]) for i in range(6))


def test_a_tasks_loss_never_touches_another_tasks_head():
    m = _model()
    loss, _ = multitask_loss(m, torch.randn(4, 6), torch.tensor([0, 1, 2, 0]), torch.zeros(4, dtype=torch.long))
    loss.backward()
    assert m.heads[0].weight.grad.abs().sum() > 0 and m.heads[1].weight.grad is None
    assert m.features[0].weight.grad.abs().sum() > 0, "the trunk is shared"


def test_training_learns_every_task_and_is_seeded():
    # two tasks on the same inputs with different labelling rules: a shared trunk, separate heads
    g = torch.Generator().manual_seed(1)
    x = torch.randn(400, 6, generator=g)
    task = torch.arange(400) % 2
    y = torch.where(task == 0, (x[:, 0] > 0).long() + (x[:, 1] > 0).long(), (x[:, 2] > 0).long())
    m = _model((3, 2), d=16)
    hist = fit_multitask(m, x, y, task, epochs=40, lr=1e-2, batch_size=50, device="cpu", seed=3)
    assert hist.train_loss[-1] < 0.5 * hist.train_loss[0]
    acc = evaluate_multitask(m, x, y, task, device="cpu")
    assert set(acc) == {0, 1} and acc[0] > 0.8 and acc[1] > 0.9, acc
    m2 = _model((3, 2), d=16)
    fit_multitask(m2, x, y, task, epochs=40, lr=1e-2, batch_size=50, device="cpu", seed=3)
    assert all(torch.equal(a, b) for a, b in zip(m.state_dict().values(), m2.state_dict().values()))


@pytest.mark.parametrize("call, match", [
    (lambda m: MultiHeadClassifier(nn.Identity(), 4, []), "n_classes"),
    (lambda m: MultiHeadClassifier(nn.Identity(), 4, [3, 1]), "n_classes"),
    (lambda m: m(torch.randn(2, 6), 2), "task"),
    (lambda m: m(torch.randn(2, 6), True), "task"),
    (lambda m: multitask_loss(m, torch.randn(2, 6), torch.tensor([0, 1]), torch.tensor([0, 5])), "task"),
    (lambda m: multitask_loss(m, torch.randn(2, 6), torch.tensor([0, 3]), torch.tensor([0, 0])), "y"),
    (lambda m: multitask_loss(m, torch.randn(3, 6), torch.tensor([0, 1]), torch.tensor([0, 0])), "one label"),
    (lambda m: fit_multitask(m, torch.randn(2, 6), torch.tensor([0, 1]), torch.tensor([0, 0]), epochs=-1,
                             device="cpu"), "epochs"),
])
def test_bad_input_raises_a_clear_error(call, match):
    with pytest.raises(CourseError, match=match):
        call(_model())
