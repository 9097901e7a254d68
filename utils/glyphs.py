"""Glyphs: an embedded, procedurally generated Omniglot-like few-shot dataset.

Each *alphabet* owns a small set of stroke primitives (cubic Bézier curves); each *character*
of an alphabet is built from two to four strokes, mostly the alphabet's own primitives placed
and scaled at random, so characters of one alphabet look alike. Each *example* of a character
is a fresh rendering: every control point jittered, a random affine transform, a random pen
width. Images are 28×28, ink ≈1 on a background of 0, like inverted Omniglot.

Everything is deterministic from the seed, generated in seconds with vectorized torch code,
and cached under ``data/cache/`` (see :mod:`utils.cache`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch.nn import functional as F

from .cache import cached_torch
from .errors import course_error

__all__ = ["GLYPHS_VERSION", "IMAGE_SIZE", "GlyphSet", "load_glyphs", "GlyphFusionData", "glyph_fusion_data"]

GLYPHS_VERSION = 3  # bump when the generator changes, so caches are rebuilt
IMAGE_SIZE = 28


@dataclass
class GlyphSet:
    """The generated dataset.

    Attributes:
        images: ``(M, 1, 28, 28)`` float32 in [0, 1].
        labels: ``(M,)`` int64 character (class) ids ``0..C-1``.
        alphabet_of_class: ``(C,)`` int64 alphabet id of each character.
        n_alphabets, chars_per_alphabet, examples_per_char: the sizes it was made with.
    """
    images: torch.Tensor
    labels: torch.Tensor
    alphabet_of_class: torch.Tensor
    n_alphabets: int
    chars_per_alphabet: int
    examples_per_char: int

    @property
    def n_classes(self) -> int:
        return int(self.alphabet_of_class.numel())

    def class_split(self, fractions=(0.6, 0.2, 0.2), seed: int = 0):
        """Disjoint (train, val, test) class-id lists, split **by alphabet** like Omniglot's
        background / evaluation sets, so meta-test alphabets are never seen in meta-training."""
        from .episodes import split_classes
        return split_classes(range(self.n_classes), fractions, seed,
                             groups=self.alphabet_of_class.tolist())

    def subset(self, class_ids) -> tuple[torch.Tensor, torch.Tensor]:
        """``(images, labels)`` of the given classes (labels keep their original ids)."""
        mask = torch.isin(self.labels, torch.as_tensor(list(class_ids)))
        return self.images[mask], self.labels[mask]


def _bezier(ctrl: torch.Tensor, n_points: int) -> torch.Tensor:
    """Points on cubic Béziers: ctrl ``(..., 4, 2)`` → ``(..., n_points, 2)``."""
    t = torch.linspace(0, 1, n_points).view(-1, 1)
    b = torch.cat([(1 - t) ** 3, 3 * (1 - t) ** 2 * t, 3 * (1 - t) * t ** 2, t ** 3], 1)  # (P, 4)
    return torch.einsum("pk,...kd->...pd", b, ctrl)


def _render(points: torch.Tensor, valid: torch.Tensor, width: torch.Tensor, chunk: int = 256) -> torch.Tensor:
    """Rasterize point clouds to images by distance to the nearest pen point.

    points ``(M, P, 2)`` in pixel coordinates, valid ``(M, P)`` bool, width ``(M,)`` pen radius
    in pixels → ``(M, 28, 28)`` ink in [0, 1] with one pixel of anti-aliasing.
    """
    ys, xs = torch.meshgrid(torch.arange(IMAGE_SIZE) + 0.5, torch.arange(IMAGE_SIZE) + 0.5, indexing="ij")
    grid = torch.stack([xs.flatten(), ys.flatten()], 1)  # (784, 2)
    out = []
    for i in range(0, len(points), chunk):
        p = points[i:i + chunk]
        d = torch.cdist(grid.expand(len(p), -1, -1), p)  # (c, 784, P)
        d = d.masked_fill(~valid[i:i + chunk, None, :], 1e4).amin(2)
        ink = (width[i:i + chunk, None] + 0.5 - d).clamp(0, 1)
        out.append(ink.view(-1, IMAGE_SIZE, IMAGE_SIZE))
    return torch.cat(out)


def _generate(n_alphabets: int, chars_per_alphabet: int, examples_per_char: int, seed: int) -> GlyphSet:
    g = torch.Generator().manual_seed(seed)
    rand = lambda *s: torch.rand(*s, generator=g)
    randn = lambda *s: torch.randn(*s, generator=g)
    n_prims, max_strokes, n_pts = 6, 4, 36
    A, C, E = n_alphabets, chars_per_alphabet, examples_per_char
    # Alphabet primitives: cubic Béziers in a unit box centred at 0, endpoints spread apart.
    prims = (rand(A, n_prims, 4, 2) - 0.5) * 1.6  # (A, 6, 4, 2)
    # Characters: each stroke is one of its alphabet's primitives, placed, scaled and rotated.
    n_strokes = 2 + torch.randint(0, max_strokes - 1, (A, C), generator=g)  # 2..4
    which = torch.randint(0, n_prims, (A, C, max_strokes), generator=g)
    base = torch.gather(prims.unsqueeze(1).expand(A, C, n_prims, 4, 2), 2,
                        which[..., None, None].expand(A, C, max_strokes, 4, 2))
    angle = rand(A, C, max_strokes) * 2 * math.pi
    rot = torch.stack([torch.cos(angle), -torch.sin(angle), torch.sin(angle), torch.cos(angle)], -1)
    rot = rot.view(A, C, max_strokes, 2, 2)
    scale = 0.45 + 0.45 * rand(A, C, max_strokes, 1, 1)
    offset = (rand(A, C, max_strokes, 1, 2) - 0.5) * 0.9
    strokes = torch.einsum("acsij,acskj->acski", rot, base) * scale + offset  # (A, C, S, 4, 2)
    # Examples: jitter every control point, then a global affine map into pixel space.
    strokes = strokes.view(A * C, 1, max_strokes, 4, 2).expand(-1, E, -1, -1, -1)
    strokes = strokes + 0.07 * randn(A * C, E, max_strokes, 4, 2)
    M = A * C * E
    strokes = strokes.reshape(M, max_strokes, 4, 2)
    theta = (rand(M) - 0.5) * math.radians(30)
    shear = (rand(M) - 0.5) * 0.4
    zoom = 12.0 * (0.85 + 0.3 * rand(M))
    aff = torch.stack([torch.cos(theta), -torch.sin(theta) + shear, torch.sin(theta), torch.cos(theta)], -1)
    aff = aff.view(M, 2, 2) * zoom.view(M, 1, 1)
    shift = IMAGE_SIZE / 2 + (rand(M, 2) - 0.5) * 6.0
    pts = _bezier(strokes, n_pts)  # (M, S, P, 2)
    pts = torch.einsum("mij,mspj->mspi", aff, pts) + shift.view(M, 1, 1, 2)
    stroke_ok = torch.arange(max_strokes).view(1, -1) < n_strokes.view(A * C, 1)
    valid = stroke_ok.repeat_interleave(E, 0)[:, :, None].expand(M, max_strokes, n_pts)
    width = 0.5 + 0.8 * rand(M)
    images = _render(pts.reshape(M, -1, 2), valid.reshape(M, -1), width)
    labels = torch.arange(A * C).repeat_interleave(E)
    return GlyphSet(images.unsqueeze(1).contiguous(), labels, torch.arange(A).repeat_interleave(C),
                    A, C, E)


def load_glyphs(n_alphabets: int = 40, chars_per_alphabet: int = 20, examples_per_char: int = 20,
                seed: int = 0, cache: bool = True) -> GlyphSet:
    """The glyph dataset (default: 40 alphabets × 20 characters × 20 examples = 16,000 images).

    Cached under ``data/cache/glyphs-<key>.pt``, keyed by the arguments and the generator version.
    """
    for name, v, lo in (("n_alphabets", n_alphabets, 1), ("chars_per_alphabet", chars_per_alphabet, 1),
                        ("examples_per_char", examples_per_char, 1)):
        if int(v) != v or v < lo:
            raise course_error(name, f"an integer >= {lo}", repr(v), f"pass a valid {name}")
    settings = dict(n_alphabets=n_alphabets, chars_per_alphabet=chars_per_alphabet,
                    examples_per_char=examples_per_char, seed=seed, version=GLYPHS_VERSION)
    build = lambda: _generate(n_alphabets, chars_per_alphabet, examples_per_char, seed)
    if not cache:
        return build()
    return cached_torch("glyphs", settings, build)


# ----------------------------------------------------------------------------- chapter 06's glyph tasks
@dataclass
class GlyphFusionData:
    """The chapter's glyph tasks (images average-pooled to ``14×14`` by default).

    * ``train``, ``val``, ``test``: ``(x, y)`` of the *target* task, classifying the characters of
      a few alphabets (labels ``0..n_classes-1``; examples of every character split between the three);
    * ``source``: ``(x, y)`` of *other* alphabets (labels ``0..n_source_classes-1``), for pre-training;
    * ``fewshot_x``, ``fewshot_y``, ``fewshot_classes``: images of the held-out (meta-test)
      alphabets for few-shot episodes (``EpisodeSampler(fewshot_x, fewshot_y, ..., classes=fewshot_classes)``).
    Target and source alphabets come from the meta-training split of :meth:`GlyphSet.class_split`,
    so no few-shot test alphabet is ever trained on.
    """
    train: tuple
    val: tuple
    test: tuple
    source: tuple
    fewshot_x: torch.Tensor
    fewshot_y: torch.Tensor
    fewshot_classes: list
    n_classes: int
    n_source_classes: int
    image_size: int


def glyph_fusion_data(n_target_alphabets: int = 5, n_source_alphabets: int = 16, seed: int = 0,
                      per_class=(10, 4, 6), pool: int = 2, glyphs=None) -> GlyphFusionData:
    """Build :class:`GlyphFusionData` from :func:`utils.glyphs.load_glyphs` (default set).

    ``seed`` chooses which meta-training alphabets are target and source; ``per_class`` is the
    number of train / val / test examples of each target character (at most the examples per
    character, 20 by default); ``pool`` the average-pooling factor (2: 28×28 → 14×14).
    """
    gs = load_glyphs() if glyphs is None else glyphs
    tr_ids, _, te_ids = gs.class_split()
    alph = gs.alphabet_of_class
    train_alphabets = torch.unique(alph[torch.as_tensor(tr_ids)])
    need = int(n_target_alphabets) + int(n_source_alphabets)
    if n_target_alphabets < 1 or n_source_alphabets < 1 or need > len(train_alphabets):
        raise course_error("n_target_alphabets + n_source_alphabets",
                           f"at least 1 each and at most {len(train_alphabets)} in all (the meta-training alphabets)",
                           f"{n_target_alphabets} + {n_source_alphabets}", "use fewer alphabets")
    per_class = [int(v) for v in per_class]
    if len(per_class) != 3 or min(per_class) < 1 or sum(per_class) > gs.examples_per_char:
        raise course_error("per_class", f"three positive counts summing to at most {gs.examples_per_char}",
                           repr(per_class), "lower the counts")
    perm = train_alphabets[torch.randperm(len(train_alphabets), generator=torch.Generator().manual_seed(seed))]
    target_a, source_a = perm[:n_target_alphabets], perm[n_target_alphabets:need]
    x = F.avg_pool2d(gs.images, pool) if pool > 1 else gs.images
    y = gs.labels

    def classes_of(alphabets):
        return torch.nonzero(torch.isin(alph, alphabets)).flatten()

    tgt = classes_of(target_a)
    remap = torch.full((gs.n_classes,), -1, dtype=torch.long)
    remap[tgt] = torch.arange(len(tgt))
    idx = torch.stack([torch.nonzero(y == c).flatten()[:sum(per_class)] for c in tgt.tolist()])
    a, b = per_class[0], per_class[0] + per_class[1]
    split = lambda ix: (x[ix.flatten()], remap[y[ix.flatten()]])
    src = classes_of(source_a)
    sremap = torch.full((gs.n_classes,), -1, dtype=torch.long)
    sremap[src] = torch.arange(len(src))
    smask = torch.isin(y, src)
    fmask = torch.isin(y, torch.as_tensor(te_ids))
    return GlyphFusionData(split(idx[:, :a]), split(idx[:, a:b]), split(idx[:, b:]),
                           (x[smask], sremap[y[smask]]), x[fmask], y[fmask], list(te_ids),
                           len(tgt), len(src), x.shape[-1])
