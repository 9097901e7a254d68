"""Calibration (chapter 06, § 2): does a predicted 80 % come true 80 % of the time?

:func:`reliability_diagram`, :func:`expected_calibration_error`, temperature scaling
(:func:`fit_temperature`, :func:`apply_temperature`), :func:`log_loss`, :func:`accuracy`.
The diagram is drawn by :func:`utils.plots.plot_reliability`.

Shapes: ``B`` examples, ``C`` classes; probabilities ``(B, C)``, labels ``(B,)``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch.nn import functional as F

from ..errors import course_error

__all__ = ["ReliabilityData", "reliability_diagram", "expected_calibration_error", "apply_temperature",
           "fit_temperature", "log_loss", "accuracy"]

# =============================================================================== calibration
@dataclass
class ReliabilityData:
    """Per-bin figures of a reliability diagram (``n_bins`` equal-width confidence bins on [0, 1]).

    ``confidence[b]`` mean top-class probability in bin ``b``, ``accuracy[b]`` fraction correct,
    ``counts[b]`` examples (``nan`` figures for empty bins), ``ece`` the expected calibration error.
    """
    edges: torch.Tensor
    confidence: torch.Tensor
    accuracy: torch.Tensor
    counts: torch.Tensor
    ece: float


def _check_probs(probs, labels):
    if not isinstance(probs, torch.Tensor) or probs.dim() != 2:
        raise course_error("probs", "a (B, C) tensor of predicted probabilities",
                           str(getattr(probs, "shape", type(probs).__name__)),
                           "pass softmax outputs (or ensemble_predict's result)")
    labels = torch.as_tensor(labels)
    if labels.shape != probs.shape[:1]:
        raise course_error("labels", f"one label per row of probs ({probs.shape[0]})",
                           str(tuple(labels.shape)), "pass the (B,) class ids of the same examples")
    if probs.numel() and (probs.min() < -1e-6 or (probs.sum(1) - 1).abs().max() > 1e-3):
        raise course_error("probs", "rows of probabilities (non-negative, summing to 1)",
                           "values outside that", "apply softmax to logits first")
    return probs.detach().float().cpu(), labels.cpu()


def reliability_diagram(probs: torch.Tensor, labels: torch.Tensor, n_bins: int = 10) -> ReliabilityData:
    """Bin predictions by confidence (top-class probability) and compare with accuracy.

    Bins are ``(b/n, (b+1)/n]`` (a confidence of exactly 0 goes to the first bin).
    ECE = ``sum_b (n_b / B) * |accuracy_b - confidence_b|`` over non-empty bins
    (Naeini et al. 2015; Guo et al. 2017). A perfectly calibrated model has ECE 0.

    Taught in chapter 06, § 2 · Output ensembles.
    """
    if int(n_bins) != n_bins or n_bins < 1:
        raise course_error("n_bins", "a positive integer", repr(n_bins), "use e.g. 10 or 15 bins")
    probs, labels = _check_probs(probs, labels)
    conf, pred = probs.max(1)
    correct = (pred == labels).float()
    edges = torch.linspace(0, 1, n_bins + 1)
    bin_id = (torch.ceil(conf * n_bins).long() - 1).clamp(0, n_bins - 1)
    counts = torch.bincount(bin_id, minlength=n_bins).float()
    sum_conf = torch.zeros(n_bins).index_add_(0, bin_id, conf)
    sum_acc = torch.zeros(n_bins).index_add_(0, bin_id, correct)
    nonempty = counts > 0
    mean_conf = torch.where(nonempty, sum_conf / counts.clamp_min(1), torch.tensor(float("nan")))
    mean_acc = torch.where(nonempty, sum_acc / counts.clamp_min(1), torch.tensor(float("nan")))
    total = max(1, len(labels))
    ece = float(((counts / total) * (mean_acc - mean_conf).abs())[nonempty].sum())
    return ReliabilityData(edges, mean_conf, mean_acc, counts, ece)


def expected_calibration_error(probs: torch.Tensor, labels: torch.Tensor, n_bins: int = 10) -> float:
    """ECE with ``n_bins`` equal-width confidence bins (see :func:`reliability_diagram`), in [0, 1].

    Taught in chapter 06, § 2 · Output ensembles.
    """
    return reliability_diagram(probs, labels, n_bins).ece


def apply_temperature(scores: torch.Tensor, T: float) -> torch.Tensor:
    """Probabilities ``softmax(scores / T)`` for logits or log-probabilities ``scores`` ``(B, C)``.

    ``T > 1`` softens (less confident), ``T < 1`` sharpens. For an ensemble, pass the log of its
    averaged probabilities (softmax is unchanged by adding a constant per row, so log-probabilities
    work as logits).

    Taught in chapter 06, § 2 · Output ensembles.
    """
    T = float(T)
    if not math.isfinite(T) or T <= 0:
        raise course_error("T (temperature)", "a positive number", repr(T), "pass e.g. 1.0")
    return (scores / T).softmax(-1)


def fit_temperature(scores: torch.Tensor, labels: torch.Tensor, grid=None) -> float:
    """Temperature scaling (Guo et al. 2017): the ``T`` minimising the log-loss of
    ``softmax(scores / T)`` on held-out ``labels``, by grid search (default 61 values from 0.1
    to 10 on a log scale). Fit it on a validation set, then apply it to the test set.

    Taught in chapter 06, § 2 · Output ensembles.
    """
    scores = scores.detach().float().cpu()
    labels = torch.as_tensor(labels).cpu()
    if scores.dim() != 2 or labels.shape != scores.shape[:1]:
        raise course_error("scores/labels", "(B, C) logits and (B,) labels", f"{tuple(scores.shape)} and "
                           f"{tuple(labels.shape)}", "pass validation-set logits and their labels")
    grid = torch.logspace(-1, 1, 61) if grid is None else torch.as_tensor(grid, dtype=torch.float32)
    losses = torch.stack([F.cross_entropy(scores / t, labels) for t in grid])
    return float(grid[int(losses.argmin())])


def log_loss(probs: torch.Tensor, labels: torch.Tensor, eps: float = 1e-12) -> float:
    """Mean negative log-probability of the true class (cross-entropy of probabilities), in nats.

    Taught in chapter 06, § 2 · Output ensembles.
    """
    probs, labels = _check_probs(probs, labels)
    return float(-probs.gather(1, labels.view(-1, 1)).clamp_min(eps).log().mean())


def accuracy(probs_or_logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of rows whose argmax equals the label."""
    return float((probs_or_logits.argmax(-1).cpu() == torch.as_tensor(labels).cpu()).float().mean())


