"""Consistent figures for the course: training histories, episodes, mean ± CI bars, reliability diagrams."""
from __future__ import annotations

import weakref

import matplotlib.pyplot as plt
import numpy as np

from .errors import course_error
from .language import t

__all__ = ["bar_with_ci", "interval_label", "labelled_axes", "plot_history", "plot_intervals",
           "plot_reliability", "show_episode", "smooth"]


def labelled_axes(xlabel: str, ylabel: str, title: str | None = None, ncols: int = 1,
                  figsize=None, sharey: bool = False, nrows: int = 1, gridspec_kw=None):
    """A figure with ``ncols`` axes, each labelled with its quantity and unit (``"inner steps"``,
    ``"query MSE"``), so no chapter draws an unlabelled axis. ``xlabel``/``ylabel`` may be one string
    or a list with one per axis. Returns ``(fig, axes)`` (a single ``Axes`` when ``ncols == 1``).
    With ``nrows > 1`` every row gets the same labels and ``axes`` is a list of rows. Labels and
    title are printed in the chapter's language (:func:`utils.language.t`: English when no
    translation is catalogued)."""
    xlabel, ylabel = _translated(xlabel), _translated(ylabel)
    title = t(title) if title else title
    if nrows > 1:
        fig, grid = plt.subplots(nrows, ncols, figsize=figsize or (4.5 * ncols, 3.2 * nrows),
                                 sharey=sharey, squeeze=False, gridspec_kw=gridspec_kw)
        xs = xlabel if isinstance(xlabel, (list, tuple)) else [xlabel] * ncols
        ys = ylabel if isinstance(ylabel, (list, tuple)) else [ylabel] * ncols
        for row in grid:
            for ax, xl, yl in zip(row, xs, ys):
                ax.set_xlabel(xl)
                ax.set_ylabel(yl)
        if title:
            fig.suptitle(title)
        return fig, [list(row) for row in grid]
    figsize = figsize or (4.5 * ncols, 3.2)
    fig, axes = plt.subplots(1, ncols, figsize=figsize, sharey=sharey, squeeze=False,
                             gridspec_kw=gridspec_kw)
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


def _translated(label):
    """A label, or a list of labels, in the chapter's language."""
    return [t(x) for x in label] if isinstance(label, (list, tuple)) else t(label)


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
                ax.set_title(t("support") if col < ks else t("query"), fontsize=8)
        axes[row, 0].set_ylabel(t("class {row}\n(id {id})", row=row, id=int(episode.classes[row])), fontsize=7)
    fig.suptitle(t(title) if title else t("{n}-way {k}-shot episode, {q} queries per class", n=n, k=k, q=q),
                 fontsize=10)
    fig.tight_layout()
    return fig


def plot_history(history, keys=("train_loss", "val_loss"), ax=None, label: str = ""):
    """Plot per-epoch (or per-iteration) curves of a History / MetaHistory object."""
    ax = ax or plt.subplots(figsize=(5, 3))[1]
    for k in keys:
        vals = getattr(history, k, None)
        if vals:
            ax.plot(np.arange(1, len(vals) + 1), vals, label=f"{label} {k}".strip())
    ax.set_xlabel(t("epoch") if hasattr(history, "train_loss") else t("meta-iteration"))
    ax.legend(fontsize=8)
    return ax


def interval_label(covers: str, interval: str = "95% CI") -> str:
    """``"95% CI over 600 test episodes"``: what an interval is and what it is over."""
    return t("{interval} over {covers}", interval=t(interval), covers=t(covers))


_CAPTIONS = weakref.WeakKeyDictionary()   # axes -> the interval labels drawn on them, in order


def _caption(ax, text: str) -> None:
    """Write every interval label drawn on ``ax`` once, in its lower-right corner."""
    labels, artist = _CAPTIONS.get(ax, ([], None))
    if text not in labels:
        labels.append(text)
    if artist is not None:
        artist.remove()
    artist = ax.text(0.99, 0.01, "; ".join(labels), transform=ax.transAxes, ha="right",
                     va="bottom", fontsize=7, color="0.35")
    _CAPTIONS[ax] = (labels, artist)


def plot_intervals(ax, x, means, halves=None, *, covers: str | None = None, interval: str = "95% CI",
                   label: str | None = None, kind: str = "errorbar", scale: float | None = None, **style):
    """Draw means with their intervals on ``ax`` and say what the intervals are.

    ``means`` is a list of :class:`utils.results.MetaResult` (half-widths and what they cover are
    read from them; accuracies are drawn in %), or numbers with ``halves`` (same length) and
    ``covers`` (``"3 seeds"``; ``interval`` names the half-width, e.g. ``"± 1 std"``). ``kind``:
    ``"errorbar"`` (points with caps), ``"band"`` (a line in a shaded band) or ``"bar"``. The label
    (``"95% CI over 600 test episodes"``) is written on the axes once; ``label`` names the series
    in the legend. Returns ``ax``. Taught in chapter 01, § How meta-learning is judged.
    """
    from .results import MetaResult
    if kind not in ("errorbar", "band", "bar"):
        raise course_error("kind", '"errorbar", "band" or "bar"', repr(kind), "pick one of the three")
    means = list(means)
    if means and all(isinstance(r, MetaResult) for r in means):
        overs = {r.over for r in means}
        covers = covers or (overs.pop() if len(overs) == 1 else " / ".join(sorted(overs)))
        k = scale if scale is not None else (100.0 if means[0].percent else 1.0)
        m = np.array([float(r.mean) for r in means]) * k
        h = np.array([float(r.ci95) for r in means]) * k
    else:
        if halves is None or covers is None:
            raise course_error("plot_intervals", "result objects, or means with halves= and covers=",
                               f"halves={'given' if halves is not None else 'missing'}, "
                               f"covers={covers!r}", 'pass covers="3 seeds" (what the interval is over)')
        k = 1.0 if scale is None else scale
        m, h = np.asarray(means, dtype=float) * k, np.asarray(halves, dtype=float) * k
        if m.shape != h.shape:
            raise course_error("halves", f"one half-width per mean ({m.shape})", str(h.shape),
                               "give as many halves as means")
    if kind == "bar":
        ax.bar(x, m, yerr=h, capsize=style.pop("capsize", 3), label=label, **style)
    elif kind == "band":
        line, = ax.plot(x, m, label=label, **style)
        ax.fill_between(x, m - h, m + h, alpha=0.2, color=line.get_color())
    else:
        if "fmt" not in style:
            style.setdefault("marker", "o")
        ax.errorbar(x, m, yerr=h, capsize=style.pop("capsize", 3), label=label, **style)
    _caption(ax, interval_label(covers, interval))
    return ax


def bar_with_ci(names, means, halves, ax=None, ylabel: str = "", percent: bool = False,
                covers: str = "the test episodes"):
    """Bar chart of means with 95% CI error bars (:func:`plot_intervals` with ``kind="bar"``)."""
    ax = ax or plt.subplots(figsize=(5, 3))[1]
    plot_intervals(ax, names, means, halves, covers=covers, kind="bar", scale=100 if percent else 1,
                   color="tab:blue", alpha=0.8, capsize=4)
    ax.set_ylabel(t(ylabel) + (" (%)" if percent else ""))
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
    ax.set_xlabel(t("confidence (top-class probability)"))
    ax.set_ylabel(t("accuracy"))
    ax.legend(fontsize=7, loc="upper left")
    return ax
