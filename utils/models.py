"""The course's models: an MLP, the standard 4-block conv backbone, and small classifiers.

All are plain ``nn.Module``s whose parameters have readable names (``features.*`` and
``head.*`` for classifiers), so the meta-learners can adapt a subset by name (ANIL adapts
``head.*`` only).
"""
from __future__ import annotations

import torch
from torch import nn

from .errors import course_error

__all__ = [
    "MLP", "BatchStatNorm", "use_batch_statistics", "conv_block", "ConvBackbone", "Classifier",
    "conv4_classifier", "mlp_classifier", "count_parameters",
]


class MLP(nn.Sequential):
    """Fully connected ReLU network ``sizes[0] -> sizes[1] -> ... -> sizes[-1]``.

    ``MLP([1, 40, 40, 1])`` is the sinusoid network of Finn et al. (2017). Input ``(B, sizes[0])``
    (or ``(B, ...)`` flattened when ``flatten=True``), output ``(B, sizes[-1])``.
    """

    def __init__(self, sizes, flatten: bool = False, dropout: float = 0.0):
        sizes = list(sizes)
        if len(sizes) < 2 or any(int(s) != s or s < 1 for s in sizes):
            raise course_error("sizes", "at least two positive layer widths, e.g. [1, 40, 40, 1]",
                               repr(sizes), "pass input, hidden and output widths")
        layers: list[nn.Module] = [nn.Flatten()] if flatten else []
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers.append(nn.Linear(a, b))
            if i < len(sizes) - 2:
                layers.append(nn.ReLU())
                if dropout:
                    layers.append(nn.Dropout(dropout))
        super().__init__(*layers)


class BatchStatNorm(nn.Module):
    """Batch normalization that always uses the current batch's statistics, written with plain ops.

    Same maths as ``nn.BatchNorm2d(c, track_running_stats=False)`` (affine, biased variance), but
    built from ``mean``/``var``/``rsqrt`` so that its second derivatives are right under
    ``torch.func.vmap(grad(...))``. In torch 2.13 the fused batch-norm kernel's double backward
    inside ``vmap`` gives wrong second-order MAML meta-gradients (``tests/test_meta.py`` checks
    ours against finite differences); first-order gradients are unaffected.
    Input ``(B, C, ...)``; statistics over every dimension but ``C``.
    """

    def __init__(self, num_features: int, eps: float = 1e-5):
        super().__init__()
        self.num_features, self.eps = num_features, eps
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dims = [0, *range(2, x.dim())]
        shape = [1, -1] + [1] * (x.dim() - 2)
        mean = x.mean(dims, keepdim=True)
        var = x.var(dims, unbiased=False, keepdim=True)
        return (x - mean) * torch.rsqrt(var + self.eps) * self.weight.view(shape) + self.bias.view(shape)

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}"


def use_batch_statistics(model: nn.Module) -> nn.Module:
    """Replace every ``nn.BatchNorm1d/2d/3d`` in ``model`` (in place) by a :class:`BatchStatNorm`
    with the same affine parameters; running statistics are dropped. Returns ``model``."""
    for name, child in model.named_children():
        if isinstance(child, nn.modules.batchnorm._BatchNorm):
            new = BatchStatNorm(child.num_features, child.eps)
            if child.affine:
                new = new.to(device=child.weight.device, dtype=child.weight.dtype)
            if child.affine:
                with torch.no_grad():
                    new.weight.copy_(child.weight)
                    new.bias.copy_(child.bias)
            setattr(model, name, new)
        else:
            use_batch_statistics(child)
    return model


def conv_block(c_in: int, c_out: int, track_running_stats: bool = True) -> nn.Sequential:
    """3×3 conv (padding 1) → BatchNorm → ReLU → 2×2 max-pool; halves height and width.

    ``track_running_stats=False`` uses :class:`BatchStatNorm` (batch statistics always)."""
    norm = nn.BatchNorm2d(c_out) if track_running_stats else BatchStatNorm(c_out)
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1),
        norm,
        nn.ReLU(),
        nn.MaxPool2d(2),
    )


class ConvBackbone(nn.Sequential):
    """The standard few-shot backbone: ``blocks`` conv blocks of ``hidden`` channels, then flatten.

    For 28×28 inputs and 4 blocks the feature vector has ``hidden`` entries (28→14→7→3→1).
    ``track_running_stats=False`` makes BatchNorm always use the batch's statistics, as MAML's
    reference implementation does; it is also what lets ``torch.func.vmap`` run over tasks
    without in-place buffer updates.
    Input ``(B, in_channels, H, W)``, output ``(B, feature_dim)``.
    """

    def __init__(self, in_channels: int = 1, hidden: int = 64, blocks: int = 4,
                 image_size: int = 28, track_running_stats: bool = True):
        layers = [conv_block(in_channels if i == 0 else hidden, hidden, track_running_stats)
                  for i in range(blocks)]
        side = image_size
        for _ in range(blocks):
            side //= 2
        if side < 1:
            raise course_error("blocks", f"at most {int(torch.log2(torch.tensor(image_size)))} "
                               f"blocks for {image_size}×{image_size} images", str(blocks),
                               "use fewer blocks or larger images")
        super().__init__(*layers, nn.Flatten())
        self.feature_dim = hidden * side * side


class Classifier(nn.Module):
    """``features`` (any module mapping inputs to ``(B, D)``) followed by a linear ``head`` ``D → n_classes``."""

    def __init__(self, features: nn.Module, feature_dim: int, n_classes: int):
        super().__init__()
        self.features = features
        self.head = nn.Linear(feature_dim, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, n_classes)``."""
        return self.head(self.features(x))


def conv4_classifier(n_classes: int, in_channels: int = 1, hidden: int = 64, image_size: int = 28,
                     blocks: int = 4, track_running_stats: bool = True) -> Classifier:
    """The conv-4 backbone with a linear head: the few-shot literature's standard model."""
    backbone = ConvBackbone(in_channels, hidden, blocks, image_size, track_running_stats)
    return Classifier(backbone, backbone.feature_dim, n_classes)


def mlp_classifier(in_features: int, hidden, n_classes: int, dropout: float = 0.0) -> Classifier:
    """An MLP classifier on flattened inputs, with the same ``features`` / ``head`` naming."""
    hidden = list(hidden)
    feats = nn.Sequential(nn.Flatten(), MLP([in_features, *hidden], dropout=dropout), nn.ReLU())
    return Classifier(feats, hidden[-1], n_classes)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable scalars."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
