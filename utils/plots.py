"""Consistent figures for the course: training histories, episodes, mean ± CI bars, reliability diagrams."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np


def labelled_axes(xlabel: str, ylabel: str, title: str | None = None, ncols: int = 1,
                  figsize=None, sharey: bool = False):
    """A figure with ``ncols`` axes, each labelled with its quantity and unit (``"inner steps"``,
    ``"query MSE"``), so no chapter draws an unlabelled axis. ``xlabel``/``ylabel`` may be one string
    or a list with one per axis. Returns ``(fig, axes)`` (a single ``Axes`` when ``ncols == 1``)."""
    figsize = figsize or (4.5 * ncols, 3.2)
    fig, axes = plt.subplots(1, ncols, figsize=figsize, sharey=sharey, squeeze=False)
    axes = list(axes[0])
    xs = xlabel if isinstance(xlabel, (list, tuple)) else [xlabel] * ncols
    ys = ylabel if isinstance(ylabel, (list, tuple)) else [ylabel] * ncols
    for ax, xl, yl in zip(axes, xs, ys):
        ax.set_xlabel(xl)
        ax.set_ylabel(yl)
    if title and ncols == 1:
        axes[0].set_title(title)
    elif title:
        fig.suptitle(title)
    return fig, (axes[0] if ncols == 1 else axes)


def show_episode(episode, max_per_class: int = 5, title: str | None = None):
    """Draw one episode: a row per class, support images then (greyed frame) query images.

    ``episode`` is a single :class:`utils.episodes.Episode` of images ``(…, 1, H, W)``.
    """
    n = episode.n_way
    k = len(episode.support_y) // n
    q = len(episode.query_y) // n
    ks, qs = min(k, max_per_class), min(q, max_per_class)
    fig, axes = plt.subplots(n, ks + qs, figsize=(1.1 * (ks + qs), 1.1 * n), squeeze=False)
    for row in range(n):
        sup = episode.support_x[episode.support_y == row][:ks]
        qry = episode.query_x[episode.query_y == row][:qs]
        for col, img in enumerate(list(sup) + list(qry)):
            ax = axes[row, col]
            ax.imshow(img[0].cpu(), cmap="gray_r" if col < ks else "Blues")
            ax.set_xticks([]), ax.set_yticks([])
            if row == 0:
                ax.set_title("support" if col < ks else "query", fontsize=8)
        axes[row, 0].set_ylabel(f"class {row}\n(id {int(episode.classes[row])})", fontsize=7)
    fig.suptitle(title or f"{n}-way {k}-shot episode, {q} queries per class", fontsize=10)
    fig.tight_layout()
    return fig


def plot_history(history, keys=("train_loss", "val_loss"), ax=None, label: str = ""):
    """Plot per-epoch (or per-iteration) curves of a History / MetaHistory object."""
    ax = ax or plt.subplots(figsize=(5, 3))[1]
    for k in keys:
        vals = getattr(history, k, None)
        if vals:
            ax.plot(np.arange(1, len(vals) + 1), vals, label=f"{label} {k}".strip())
    ax.set_xlabel("epoch" if hasattr(history, "train_loss") else "meta-iteration")
    ax.legend(fontsize=8)
    return ax


def bar_with_ci(names, means, halves, ax=None, ylabel: str = "", percent: bool = False):
    """Bar chart of means with 95% CI error bars."""
    ax = ax or plt.subplots(figsize=(5, 3))[1]
    scale = 100 if percent else 1
    ax.bar(names, np.asarray(means) * scale, yerr=np.asarray(halves) * scale, capsize=4,
           color="tab:blue", alpha=0.8)
    ax.set_ylabel(ylabel + (" (%)" if percent else ""))
    ax.tick_params(axis="x", rotation=20)
    return ax


def smooth(values, window: int = 50) -> np.ndarray:
    """Moving average for noisy meta-training curves."""
    v = np.asarray(values, dtype=float)
    if len(v) < window:
        return v
    return np.convolve(v, np.ones(window) / window, mode="valid")


def plot_reliability(data, ax=None, label: str | None = None, color=None):
    """Draw a reliability diagram: accuracy per confidence bin against the diagonal."""
    import matplotlib.pyplot as plt
    ax = ax or plt.subplots(figsize=(4, 4))[1]
    centers = (data.edges[:-1] + data.edges[1:]) / 2
    ok = data.counts > 0
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1)
    ax.plot(data.confidence[ok], data.accuracy[ok], "o-", ms=4, color=color,
            label=f"{label + ': ' if label else ''}ECE {100 * data.ece:.1f}%")
    ax.bar(centers[ok], data.accuracy[ok], width=1 / len(centers), alpha=0.12, color=color, edgecolor="none")
    ax.set_xlim(0, 1), ax.set_ylim(0, 1)
    ax.set_xlabel("confidence (top-class probability)")
    ax.set_ylabel("accuracy")
    ax.legend(fontsize=7, loc="upper left")
    return ax
