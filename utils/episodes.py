"""N-way K-shot episodes over any labelled image set, and class splits for meta-learning.

An *episode* (a few-shot task) draws ``N`` classes, ``K`` support and ``Q`` query examples of
each, and relabels the chosen classes ``0..N-1`` in a random order, so that a learner can only
use what the support set tells it. Meta-train, meta-val and meta-test use disjoint classes.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .errors import course_error
from .vocab import TaskTensors

__all__ = ["Episode", "split_classes", "EpisodeSampler"]


@dataclass
class Episode(TaskTensors):
    """One episode, or a batch of ``B`` episodes stacked along a leading dimension.

    Shapes for a single episode (``N`` ways, ``K`` shots, ``Q`` queries, images ``C×H×W``):
        support_x ``(N*K, C, H, W)``, support_y ``(N*K,)`` int64 in ``0..N-1``,
        query_x ``(N*Q, C, H, W)``, query_y ``(N*Q,)``, classes ``(N,)`` the original class ids
        (``classes[j]`` is the class relabelled ``j``).
    For a batch every shape gains a leading ``B``.
    """
    classes: torch.Tensor

    @property
    def n_way(self) -> int:
        return int(self.classes.shape[-1])


def split_classes(class_ids, fractions=(0.6, 0.2, 0.2), seed: int = 0, groups=None):
    """Split class ids into disjoint meta-train / meta-val / meta-test lists.

    Args:
        class_ids: the distinct class ids (any 1-D sequence of ints).
        fractions: three fractions summing to 1.
        seed: shuffling seed.
        groups: optional group id per class (e.g. the alphabet of each character); whole groups
            then go to one split, so no alphabet is seen in both meta-train and meta-test.
    Returns:
        ``(train_ids, val_ids, test_ids)`` as sorted Python lists of ints.

    Taught in chapter 01, § Generalization to new classes.
    """
    ids = np.asarray(list(class_ids))
    if len(fractions) != 3 or abs(sum(fractions) - 1) > 1e-6 or min(fractions) < 0:
        raise course_error("fractions", "three non-negative fractions summing to 1",
                           repr(fractions), "pass e.g. (0.6, 0.2, 0.2)")
    rng = np.random.default_rng(seed)
    units = np.unique(groups) if groups is not None else np.unique(ids)
    if groups is not None and len(groups) != len(ids):
        raise course_error("groups", f"one group id per class ({len(ids)})", str(len(groups)),
                           "pass a group id for every class id")
    units = rng.permutation(units)
    n = len(units)
    cut1 = int(round(fractions[0] * n))
    cut2 = cut1 + int(round(fractions[1] * n))
    parts = units[:cut1], units[cut1:cut2], units[cut2:]
    if groups is None:
        return tuple(sorted(int(c) for c in p) for p in parts)
    groups = np.asarray(groups)
    return tuple(sorted(int(c) for c in ids[np.isin(groups, p)]) for p in parts)


class EpisodeSampler:
    """Draws N-way K-shot episodes with Q queries per class from ``images`` / ``labels``.

    Args:
        images: ``(M, C, H, W)`` float tensor (or any ``(M, ...)`` tensor of examples).
        labels: ``(M,)`` integer class ids.
        n_way, k_shot, q_query: episode size.
        classes: the class ids this sampler may use (e.g. the meta-test split); default all.
        seed: seed of the sampler's own generator (episodes are reproducible).

    Taught in chapter 01, § Episodes.
    """

    def __init__(self, images: torch.Tensor, labels, n_way: int, k_shot: int, q_query: int,
                 classes=None, seed: int = 0):
        labels = torch.as_tensor(labels).long()
        if images.shape[0] != labels.shape[0]:
            raise course_error("images/labels", "the same number of examples",
                               f"{images.shape[0]} images and {labels.shape[0]} labels",
                               "pass matching arrays")
        for name, v in (("n_way", n_way), ("k_shot", k_shot), ("q_query", q_query)):
            if int(v) != v or v < (0 if name == "q_query" else 1):
                raise course_error(name, "a positive integer", repr(v), f"pass a valid {name}")
        self.images, self.labels = images, labels
        self.n_way, self.k_shot, self.q_query = int(n_way), int(k_shot), int(q_query)
        available = torch.unique(labels).tolist()
        chosen = available if classes is None else [int(c) for c in classes]
        missing = sorted(set(chosen) - set(available))
        if missing:
            raise course_error("classes", "class ids present in labels",
                               f"absent ids {missing[:5]}", "pass ids from the labels")
        if self.n_way > len(chosen):
            raise course_error("n_way", f"at most {len(chosen)} (the classes available)",
                               str(self.n_way), "lower n_way or give the sampler more classes")
        self.classes = torch.tensor(sorted(chosen))
        self.index = {c: torch.nonzero(labels == c).flatten() for c in self.classes.tolist()}
        need = self.k_shot + self.q_query
        small = {c: len(ix) for c, ix in self.index.items() if len(ix) < need}
        if small:
            c, n = next(iter(small.items()))
            raise course_error("k_shot + q_query", f"at most the examples of every class ({n} in class {c})",
                               f"{self.k_shot} + {self.q_query} = {need}",
                               "lower k_shot or q_query, or drop classes with few examples")
        self.generator = torch.Generator().manual_seed(seed)

    def sample(self) -> Episode:
        """One episode; see :class:`Episode` for shapes."""
        g, n, k, q = self.generator, self.n_way, self.k_shot, self.q_query
        picked = self.classes[torch.randperm(len(self.classes), generator=g)[:n]]
        sup, qry = [], []
        for c in picked.tolist():
            ix = self.index[c]
            order = ix[torch.randperm(len(ix), generator=g)[:k + q]]
            sup.append(order[:k])
            qry.append(order[k:])
        sup_ix, qry_ix = torch.cat(sup), torch.cat(qry)
        ways = torch.arange(n)
        return Episode(self.images[sup_ix], ways.repeat_interleave(k),
                       self.images[qry_ix], ways.repeat_interleave(q), picked)

    def sample_batch(self, batch_size: int) -> Episode:
        """``batch_size`` episodes stacked: every tensor gains a leading ``(B,)`` dimension."""
        eps = [self.sample() for _ in range(batch_size)]
        return Episode(*(torch.stack([getattr(e, f) for e in eps]) for f in Episode.__dataclass_fields__))

    def __iter__(self):
        """An endless stream of single episodes."""
        while True:
            yield self.sample()
