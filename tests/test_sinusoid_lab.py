"""Tests for utils.sinusoid_lab: the batched adaptation curves agree with the engine's learners."""
import math

import numpy as np
import pytest
import torch

from utils.errors import CourseError
from utils.learners import MAML, FineTuneBaseline
from utils.models import MLP
from utils.sinusoid_lab import (Start, adaptation_curves, adapted_predictions, average_function,
                                average_function_mse, curve_summary)
from utils.tasks import SinusoidFamily


@pytest.fixture
def batch():
    return SinusoidFamily().sample(6, 5, 7, generator=torch.Generator().manual_seed(3))


def test_curve_shape_and_step_zero(batch):
    torch.manual_seed(0)
    model = MLP([1, 8, 1])
    start = Start.from_model("m", model, 0.05)
    curves = adaptation_curves(start, batch.support_x, batch.support_y, batch.query_x, batch.query_y, 4)
    assert curves.shape == (6, 5)
    with torch.no_grad():
        direct = ((model(batch.query_x) - batch.query_y) ** 2).mean((1, 2))
    assert torch.allclose(curves[:, 0], direct, atol=1e-6)


def test_matches_maml_evaluate_task(batch):
    torch.manual_seed(1)
    maml = MAML(MLP([1, 16, 16, 1]), inner_lr=0.03, inner_steps=1, device="cpu")
    start = Start.from_model("maml", maml.model, maml.inner_lr)
    curves = adaptation_curves(start, batch.support_x, batch.support_y, batch.query_x, batch.query_y, 3)
    for t in range(len(batch)):
        for s in (1, 3):
            loss, _ = maml.evaluate_task(batch.support_x[t], batch.support_y[t],
                                         batch.query_x[t], batch.query_y[t], steps=s)
            assert math.isclose(float(curves[t, s]), loss, rel_tol=1e-4, abs_tol=1e-6)


def test_matches_finetune_baseline(batch):
    torch.manual_seed(2)
    base = FineTuneBaseline(MLP([1, 16, 1]), finetune_lr=0.02, finetune_steps=4, device="cpu")
    start = Start.from_model("pre", base.model, base.finetune_lr)
    curves = adaptation_curves(start, batch.support_x, batch.support_y, batch.query_x, batch.query_y, 4)
    for t in range(len(batch)):
        loss, _ = base.evaluate_task(batch.support_x[t], batch.support_y[t], batch.query_x[t], batch.query_y[t])
        assert math.isclose(float(curves[t, 4]), loss, rel_tol=1e-4, abs_tol=1e-6)


def test_lr_override_and_start_is_not_modified(batch):
    torch.manual_seed(0)
    model = MLP([1, 8, 1])
    start = Start.from_model("m", model, 0.0)
    before = {k: v.clone() for k, v in start.params.items()}
    flat = adaptation_curves(start, batch.support_x, batch.support_y, batch.query_x, batch.query_y, 2)
    assert torch.allclose(flat[:, 0], flat[:, 2])  # lr 0: nothing moves
    moved = adaptation_curves(start, batch.support_x, batch.support_y, batch.query_x, batch.query_y, 2, lr=0.05)
    assert not torch.allclose(moved[:, 0], moved[:, 2])
    assert all(torch.equal(before[k], start.params[k]) for k in before)


def test_record_picks_columns_of_the_full_curve(batch):
    torch.manual_seed(4)
    start = Start.from_model("m", MLP([1, 8, 8, 1]), 0.05)
    args = (batch.support_x, batch.support_y, batch.query_x, batch.query_y, 5)
    full = adaptation_curves(start, *args)
    for record in ([1, 5], [5], [0], [3, 0, 3]):
        part = adaptation_curves(start, *args, record=record)
        assert part.shape == (len(batch), len(record))
        assert torch.allclose(part, full[:, record], atol=1e-6), record
    for bad in ([], [6], [-1]):
        with pytest.raises(CourseError):
            adaptation_curves(start, *args, record=bad)


def test_adapted_predictions_agree_with_curves(batch):
    torch.manual_seed(0)
    model = MLP([1, 8, 1])
    start = Start.from_model("m", model, 0.05)
    preds = adapted_predictions(start, batch.support_x[0], batch.support_y[0], batch.query_x[0], [0, 2])
    assert set(preds) == {0, 2} and preds[2].shape == (7,)
    curves = adaptation_curves(start, batch.support_x[:1], batch.support_y[:1], batch.query_x[:1], batch.query_y[:1], 2)
    mse2 = float(np.mean((preds[2] - batch.query_y[0].squeeze(-1).numpy()) ** 2))
    assert math.isclose(mse2, float(curves[0, 2]), rel_tol=1e-4)


def test_average_function_by_monte_carlo():
    g = torch.Generator().manual_seed(0)
    fam = SinusoidFamily()
    tasks = fam.sample(200_000, 1, 1, generator=g)
    x = torch.linspace(-5, 5, 7)
    mc = (tasks.amplitude[:, None] * torch.sin(x[None] - tasks.phase[:, None])).mean(0)
    assert torch.allclose(mc, average_function(x), atol=0.03)
    assert np.allclose(average_function(x.numpy()), average_function(x).numpy(), atol=1e-5)
    # not zero: phases in [0, pi] cover only half a period
    assert abs(float(average_function(torch.tensor(0.0)))) > 1.5
    # the MSE of predicting the average function on a random task
    pred = average_function(tasks.query_x.squeeze(-1).squeeze(-1))
    mc_mse = float(((tasks.query_y.squeeze() - pred) ** 2).mean())
    assert math.isclose(mc_mse, average_function_mse(), rel_tol=0.03)


def test_curve_summary():
    curves = torch.tensor([[1.0, 2.0], [3.0, 2.0], [2.0, 2.0]])
    mean, half = curve_summary(curves)
    assert np.allclose(mean, [2.0, 2.0]) and half[1] == 0 and half[0] > 0


def test_errors(batch):
    start = Start.from_model("m", MLP([1, 4, 1]), 0.1)
    with pytest.raises(CourseError, match="expected"):
        adaptation_curves(start, batch.support_x[0], batch.support_y[0], batch.query_x[0], batch.query_y[0], 1)
    with pytest.raises(CourseError):
        adaptation_curves(start, batch.support_x, batch.support_y, batch.query_x, batch.query_y, -1)
    with pytest.raises(CourseError):
        adapted_predictions(start, batch.support_x, batch.support_y, batch.query_x, [1])
