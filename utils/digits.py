"""scikit-learn's bundled handwritten digits (1797 images of 8×8, ten classes) as tensors."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["Split", "load_digits_split"]


@dataclass
class Split:
    """One split: ``x`` ``(M, 1, 8, 8)`` floats in [0, 1], ``y`` ``(M,)`` int64 labels 0..9."""
    x: torch.Tensor
    y: torch.Tensor

    def __iter__(self):  # allows ``x, y = split``
        return iter((self.x, self.y))

    def __len__(self) -> int:
        return len(self.y)

    def flat(self) -> torch.Tensor:
        """``x`` flattened to ``(M, 64)`` for MLPs."""
        return self.x.flatten(1)


def load_digits_split(seed: int = 0, fractions=(0.6, 0.2, 0.2)) -> dict[str, Split]:
    """The digits, shuffled with ``seed`` and split (stratified) into train / val / test.

    Returns ``{"train": Split, "val": Split, "test": Split}``; pixel values scaled from 0..16 to [0, 1].
    The split is fixed by ``seed`` (seed 0 is the course's standard split).
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = load_digits()
    x = data.images.astype(np.float32) / 16.0
    y = data.target.astype(np.int64)
    idx = np.arange(len(y))
    test_frac = fractions[2]
    val_frac = fractions[1] / (fractions[0] + fractions[1])
    rest, test = train_test_split(idx, test_size=test_frac, random_state=seed, stratify=y)
    train, val = train_test_split(rest, test_size=val_frac, random_state=seed, stratify=y[rest])
    mk = lambda ix: Split(torch.from_numpy(x[ix]).unsqueeze(1), torch.from_numpy(y[ix]))
    return {"train": mk(np.sort(train)), "val": mk(np.sort(val)), "test": mk(np.sort(test))}
