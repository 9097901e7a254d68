"""``python -m utils.course train RECIPE`` and ``ship-cache``: re-create the shipped models.

* ``train ch02-sine [--seeds 0 1 2] [--methods ...]`` — chapter 02's sinusoid checkpoints
  (:func:`utils.sinusoid_lab.train_sine_checkpoint`);
* ``train ch03-cnp`` / ``train ch03-lopt [--seeds ...]`` — chapter 03's
  (:func:`utils.families.train_checkpoint`);
* ``train ch02-protonet [--seeds ...]`` — chapter 02 §14's glyph ProtoNet, shipped from a 2-process run
  (:func:`utils.protonet_ranks.train_protonet_checkpoint`);
* ``ship-cache [01 02 03]`` — the FAST models in ``data/checkpoints/cache``
  (:func:`utils.checkpoints.ship_cache`).

The Omniglot ProtoNet is shipped by ``python -m utils.course bench lake --save-checkpoint``.
Every checkpoint is written by one writer, :func:`utils.checkpoints.save_checkpoint`.

Across processes (issue 28): ``torchrun --nproc_per_node N -m utils.course train ch02-sine ...`` (or
``train ... --nproc N``, which starts torchrun) meta-trains with ``N`` ranks (:mod:`utils.distributed`:
the meta-batch split over them, gradients averaged); rank 0 alone prints and writes the checkpoint,
the same file a one-process run writes and chapters load through :func:`utils.trained.trained`.
``--iterations N`` (``ch02-sine``: at most the cosine schedule's first piece; ``ch02-protonet``) trains
only the start of the full run, for a smoke test; it writes into ``$COURSE_CHECKPOINT_DIR`` only, never over the
shipped checkpoints.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

__all__ = ["TRAINABLE", "train", "train_command", "ship_cache"]

#: The recipe groups ``train`` re-creates.
TRAINABLE = ("ch02-sine", "ch02-protonet", "ch03-cnp", "ch03-lopt")


def train_command(args) -> int:
    """``course train`` from its parsed arguments (``--nproc N > 1`` outside torchrun: start torchrun)."""
    nproc, iterations = getattr(args, "nproc", None), getattr(args, "iterations", None)
    if nproc is not None and nproc > 1 and "WORLD_SIZE" not in os.environ:
        argv = ["train", args.recipe, "--seeds", *map(str, args.seeds)]
        argv += ["--methods", *args.methods] if args.methods else []
        argv += ["--iterations", str(iterations)] if iterations else []
        return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                               f"--nproc_per_node={nproc}", "-m", "utils.course", *argv]).returncode
    return train(args.recipe, args.seeds, args.methods, iterations=iterations)


def train(recipe: str, seeds, methods=None, iterations: int | None = None) -> int:
    """Train and save the full-mode checkpoints of ``recipe`` for ``seeds``; print one JSON line each
    (rank 0). Under torchrun, every rank takes part (:func:`utils.distributed.launched`)."""
    import torch
    from ..distributed import launched
    from ..errors import course_error
    torch.set_num_threads(1)
    if iterations is not None and recipe not in ("ch02-sine", "ch02-protonet"):
        raise course_error("--iterations", "the ch02-sine or ch02-protonet recipe", recipe,
                           "drop --iterations for this recipe")
    if recipe == "ch03-lopt" and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise course_error("ch03-lopt with several ranks", "a learner meta-trained by Learner.meta_train",
                           "the learned optimiser's own single-process loop", "train it with one process")
    base = f"OMP_NUM_THREADS=1 python -m utils.course train {recipe}"
    with launched(backend="gloo" if recipe == "ch02-sine" else "auto") as world:
        for seed in seeds:
            if recipe == "ch02-sine":
                from ..sinusoid_lab import SINE_METHODS, train_sine_checkpoint
                for method in methods or SINE_METHODS:
                    cmd = f"{base} --seeds {seed} --methods '{method}'"
                    if iterations is not None:
                        m = _smoke(method, seed, iterations, f"{cmd} --iterations {iterations}", world)
                    else:
                        m = train_sine_checkpoint(method, seed, cmd)
                    _report(world, m, ("name", "seconds", "metric", "iterations", "world_size"))
            elif recipe == "ch02-protonet":
                from ..protonet_ranks import train_protonet_checkpoint
                cmd = f"torchrun --nproc_per_node {world.size} -m utils.course train {recipe} --seeds {seed}"
                cmd += f" --iterations {iterations}" if iterations is not None else ""
                m = train_protonet_checkpoint(seed, cmd, iterations, device="cuda" if world.backend == "nccl" else "cpu")
                _report(world, m, ("name", "seconds", "iterations", "world_size"))
            else:
                from ..families import train_checkpoint
                m = train_checkpoint(recipe[len("ch03-"):], seed, f"{base} --seeds {seed}")
                _report(world, m, ("name", "seconds"))
    return 0


def _report(world, manifest: dict, keys) -> None:
    if world.main:
        print(json.dumps({k: manifest[k] for k in keys if k in manifest}), flush=True)


def _smoke(method: str, seed: int, iterations: int, command: str, world) -> dict:
    """The first ``iterations`` steps of the full-mode run of ``method`` (exactly those of the full run),
    saved as its checkpoint in ``$COURSE_CHECKPOINT_DIR``; the manifest records the steps done."""
    import time
    from ..checkpoints import save_checkpoint, training_manifest
    from ..errors import course_error
    from ..runtime import CHECKPOINT_DIR_ENV
    from ..sinusoid_lab import make_sine_learner, sine_code_version, sine_name, sine_recipe, train_sine_learner
    if not os.environ.get(CHECKPOINT_DIR_ENV):
        raise course_error("--iterations", f"{CHECKPOINT_DIR_ENV} set to a scratch folder", "it unset (the shipped "
                           "data/checkpoints would be replaced by a short run)", f"export {CHECKPOINT_DIR_ENV}=/tmp/ck")
    settings = sine_recipe(method)
    learner = make_sine_learner(settings, seed)
    start = time.perf_counter()
    curve = train_sine_learner(learner, settings, seed, iterations=iterations)
    manifest = training_manifest(sine_name(method, seed), command, settings, seed, curve, time.perf_counter() - start,
                                 code_version=sine_code_version(), world_size=world.size)
    save_checkpoint(manifest["name"], learner.state_dict(resume=False), manifest)
    return manifest


def ship_cache(chapters) -> int:
    """Re-create ``data/checkpoints/cache`` for ``chapters``; print each file written."""
    from ..cache import PROJECT_ROOT
    from ..checkpoints import ship_cache as ship
    for path in ship(chapters):
        print(f"{path.relative_to(PROJECT_ROOT)}  {path.stat().st_size / 1024:.0f} KiB")
    return 0
