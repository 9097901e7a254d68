"""Chapter 02 §14's ProtoNet, meta-trained across processes: a registered, trainable recipe.

``torchrun --nproc_per_node 2 -m utils.course train ch02-protonet --seeds 0`` (or ``course train
ch02-protonet --nproc 2``) meta-trains it with the meta-batch of :func:`protonet_recipe` split over
the ranks (:meth:`utils.learners.Learner.meta_train` with the launch's world: gradients averaged,
batch-norm statistics summed over the ranks, since a ProtoNet encoder normalises the whole
meta-batch together). Rank 0 writes ``data/checkpoints/ch02-protonet-seed0``, and chapter 02 loads it
with ``utils.trained.trained("ch02-protonet")``: the learner the chapter evaluates was trained on
several processes, and its manifest says on how many.

* :func:`protonet_recipe` — the settings (FAST or full); :func:`make_protonet` — the untrained
  learner; :func:`train_protonet` — its meta-training; :func:`protonet_code_version` — the hash a
  shipped manifest must carry; :func:`train_protonet_checkpoint` — train and save (``course train``);
  :func:`glyph_episodes` — episodes of the recipe's training or test alphabets.

Shapes: glyph images ``(M, 1, 28, 28)`` in [0, 1] (:mod:`utils.glyphs`).

Taught in chapter 02, § 14 · Past one machine: the outer loop across processes.
"""
from __future__ import annotations

import time

import torch

__all__ = ["NAME", "protonet_recipe", "make_protonet", "train_protonet", "protonet_code_version",
           "checkpoint_name", "glyph_episodes", "train_protonet_checkpoint"]

#: The recipe's registered name (:func:`utils.trained.trained`) and ``course train`` group.
NAME = "ch02-protonet"


def protonet_recipe(fast: bool = False) -> dict:
    """ProtoNet (Snell et al. 2017) on conv-4 (32 channels) over 5-way 1-shot glyph episodes with 5
    queries per class from the training alphabets of 20 (split by alphabet, seed 0); meta-batch 4
    episodes (split over the ranks: 4 divides by 1, 2 and 4 processes), Adam 1e-3; 600 outer steps
    (FAST: 60)."""
    return dict(method="ProtoNet", data="glyphs", n_alphabets=20, n_way=5, k_shot=1, q_query=5, hidden=32,
                lr=1e-3, meta_batch=4, iterations=60 if fast else 600)


def make_protonet(settings: dict, seed: int, device="auto"):
    """The untrained learner: ``ProtoNet(ConvBackbone(hidden))``, weights from ``seed``."""
    from .learners import ProtoNet
    from .models import ConvBackbone
    torch.manual_seed(seed)
    encoder = ConvBackbone(hidden=settings["hidden"])
    # A conv bias right before batch norm computes nothing (the norm subtracts the mean), so its
    # gradient is float rounding noise, which Adam divides by its own tiny scale into steps of up to
    # ±lr: held still, so that the run on N ranks equals the one-process run (tests/test_distributed.py).
    for block in list(encoder)[:-1]:
        block[0].bias.requires_grad_(False)
    return ProtoNet(encoder, lr=settings["lr"], device=device)


def glyph_episodes(settings: dict, split: str, seed: int):
    """An :class:`~utils.episodes.EpisodeSampler` of ``split`` (``"train"`` or ``"test"``) classes of
    the recipe's glyph alphabets; the test alphabets are never met in training."""
    from .episodes import EpisodeSampler
    from .errors import course_error
    from .glyphs import load_glyphs
    if split not in ("train", "test"):
        raise course_error("split", "'train' or 'test'", repr(split), "pass one of those")
    glyphs = load_glyphs(n_alphabets=settings["n_alphabets"])
    train_ids, _, test_ids = glyphs.class_split(seed=0)
    return EpisodeSampler(glyphs.images, glyphs.labels, settings["n_way"], settings["k_shot"], settings["q_query"],
                          classes=train_ids if split == "train" else test_ids, seed=seed)


def train_protonet(learner, settings: dict, seed: int, iterations: int | None = None) -> list:
    """Meta-train ``learner`` for ``iterations`` (default the recipe's) outer steps of ``meta_batch``
    episodes; under torchrun every rank takes its share of each meta-batch. Per-step losses."""
    from .learners import episode_source
    source = episode_source(glyph_episodes(settings, "train", seed))
    steps = settings["iterations"] if iterations is None else iterations
    return learner.meta_train(source, steps, settings["meta_batch"], progress=False).loss


def protonet_code_version() -> str:
    """Hash of the recipe's settings, construction and training code (docstrings and comments left
    out): a shipped manifest with another ``code_version`` was trained by other code."""
    from .cache import code_version
    return code_version(protonet_recipe, make_protonet, glyph_episodes, train_protonet)


def checkpoint_name(seed: int) -> str:
    """``ch02-protonet-seed0``..."""
    return f"{NAME}-seed{seed}"


def train_protonet_checkpoint(seed: int, command: str, iterations: int | None = None, device="cpu") -> dict:
    """Train the full-mode recipe with ``seed`` (the first ``iterations`` steps only, for a smoke
    test: then into ``$COURSE_CHECKPOINT_DIR`` alone) and save it; return the manifest. Under
    torchrun every rank trains and rank 0 alone writes; ``device``: ``"cuda"`` on NCCL ranks (each on
    its own GPU), else the CPU."""
    import os
    from .checkpoints import learner_state, save_checkpoint, training_manifest
    from .errors import course_error
    from .runtime import CHECKPOINT_DIR_ENV
    if iterations is not None and not os.environ.get(CHECKPOINT_DIR_ENV):
        raise course_error("--iterations", f"{CHECKPOINT_DIR_ENV} set to a scratch folder", "it unset (the shipped "
                           "data/checkpoints would be replaced by a short run)", f"export {CHECKPOINT_DIR_ENV}=/tmp/ck")
    settings = protonet_recipe()
    learner = make_protonet(settings, seed, device=device)
    start = time.perf_counter()
    curve = train_protonet(learner, settings, seed, iterations)
    manifest = training_manifest(checkpoint_name(seed), command, settings, seed, curve, time.perf_counter() - start,
                                 code_version=protonet_code_version(), world_size=int(os.environ.get("WORLD_SIZE", "1")))
    save_checkpoint(manifest["name"], learner_state(learner), manifest)
    return manifest
