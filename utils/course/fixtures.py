"""Write an Omniglot-format stand-in made of glyphs, for tests and offline demos of the real loader.

The files have the official names and layout (``images_background.zip``,
``images_evaluation.zip``, ``all_runs.zip``; 105×105 PNGs, dark ink on white), but the
characters are the course's procedural glyphs. Figures measured on them are **not** Omniglot
figures; they only show that the real-data pipeline runs end to end.
"""
from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from ..glyphs import load_glyphs

__all__ = ["write_glyph_omniglot"]


def _png(img28: torch.Tensor) -> bytes:
    from PIL import Image
    big = F.interpolate(img28.view(1, 1, 28, 28), size=(105, 105), mode="bilinear", align_corners=False)[0, 0]
    ink = (big > 0.5).numpy()
    buf = io.BytesIO()
    Image.fromarray(np.where(ink, 0, 255).astype(np.uint8)).convert("1").save(buf, format="PNG")
    return buf.getvalue()


def write_glyph_omniglot(root, n_background: int = 6, n_evaluation: int = 4, chars: int = 20,
                         drawers: int = 20, runs: int = 20, seed: int = 0) -> Path:
    """Write the three zips into ``root``; returns ``root``. ``chars`` must be ≥ 20 for the runs."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    gs = load_glyphs(n_background + n_evaluation, chars, drawers, seed=seed, cache=False)
    by_class = {c: gs.images[gs.labels == c] for c in range(gs.n_classes)}
    sets = {"images_background": range(n_background),
            "images_evaluation": range(n_background, n_background + n_evaluation)}
    for set_name, alphabets in sets.items():
        with zipfile.ZipFile(root / f"{set_name}.zip", "w") as zf:
            for a in alphabets:
                for c in range(chars):
                    for d, img in enumerate(by_class[a * chars + c]):
                        zf.writestr(f"{set_name}/Glyph_{a:02d}/character{c + 1:02d}/{a:02d}{c:02d}_{d + 1:02d}.png",
                                    _png(img))
    rng = np.random.default_rng(seed)
    with zipfile.ZipFile(root / "all_runs.zip", "w") as zf:
        for r in range(1, runs + 1):
            run = f"run{r:02d}"
            a = n_background + r % n_evaluation
            picked = rng.choice(chars, 20, replace=False)
            d_train, d_test = rng.choice(drawers, 2, replace=False)
            order = rng.permutation(20)
            lines = []
            for i, c in enumerate(picked):
                zf.writestr(f"{run}/training/class{i + 1:02d}.png", _png(by_class[a * chars + c][d_train]))
            for j, i in enumerate(order):
                c = picked[i]
                zf.writestr(f"{run}/test/item{j + 1:02d}.png", _png(by_class[a * chars + c][d_test]))
                lines.append(f"{run}/test/item{j + 1:02d}.png {run}/training/class{i + 1:02d}.png")
            zf.writestr(f"{run}/class_labels.txt", "\n".join(lines) + "\n")
    return root


if __name__ == "__main__":
    import sys
    out = write_glyph_omniglot(sys.argv[1] if len(sys.argv) > 1 else "data/glyph_omniglot")
    print(f"wrote glyph stand-ins in the Omniglot format to {out}")
