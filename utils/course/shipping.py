"""``python -m utils.course train RECIPE`` and ``ship-cache``: re-create the shipped models.

* ``train ch02-sine [--seeds 0 1 2] [--methods ...]`` — chapter 02's sinusoid checkpoints
  (:func:`utils.sinusoid_lab.train_sine_checkpoint`);
* ``train ch03-cnp`` / ``train ch03-lopt [--seeds ...]`` — chapter 03's
  (:func:`utils.families.train_checkpoint`);
* ``ship-cache [01 02 03]`` — the FAST models in ``data/checkpoints/cache``
  (:func:`utils.checkpoints.ship_cache`).

The Omniglot ProtoNet is shipped by ``python -m utils.course bench lake --save-checkpoint``.
Every checkpoint is written by one writer, :func:`utils.checkpoints.save_checkpoint`.
"""
from __future__ import annotations

import json

__all__ = ["TRAINABLE", "train", "ship_cache"]

#: The recipe groups ``train`` re-creates.
TRAINABLE = ("ch02-sine", "ch03-cnp", "ch03-lopt")


def train(recipe: str, seeds, methods=None) -> int:
    """Train and save the full-mode checkpoints of ``recipe`` for ``seeds``; print one JSON line each."""
    import torch
    torch.set_num_threads(1)
    base = f"OMP_NUM_THREADS=1 python -m utils.course train {recipe}"
    for seed in seeds:
        if recipe == "ch02-sine":
            from ..sinusoid_lab import SINE_METHODS, train_sine_checkpoint
            for method in methods or SINE_METHODS:
                m = train_sine_checkpoint(method, seed, f"{base} --seeds {seed} --methods '{method}'")
                print(json.dumps({k: m[k] for k in ("name", "seconds", "metric")}), flush=True)
        else:
            from ..families import train_checkpoint
            m = train_checkpoint(recipe[len("ch03-"):], seed, f"{base} --seeds {seed}")
            print(json.dumps({k: m[k] for k in ("name", "seconds")}), flush=True)
    return 0


def ship_cache(chapters) -> int:
    """Re-create ``data/checkpoints/cache`` for ``chapters``; print each file written."""
    from ..cache import PROJECT_ROOT
    from ..checkpoints import ship_cache as ship
    for path in ship(chapters):
        print(f"{path.relative_to(PROJECT_ROOT)}  {path.stat().st_size / 1024:.0f} KiB")
    return 0
