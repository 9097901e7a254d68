"""What :meth:`utils.learners.Learner.meta_train` does with several ranks, and its resumable checkpoints.

* :func:`ranks_in_step` — the block inside which an outer step is a distributed one: the outer
  optimizer averages gradients over the ranks before it steps, and (for learners whose tasks pass
  through the network together, ``learner.TASKS_SHARE_BATCH``) batch norm uses every rank's statistics;
* :func:`mean_over_ranks` — the step's loss and accuracy over all ranks (every rank records the
  one-process figures), and whether any rank ran out of its time budget (all stop together);
* :func:`save_progress` / :func:`resume` — a meta-training checkpoint (the learner's resumable state,
  written atomically by rank 0 through :func:`utils.checkpoints.save_checkpoint`) and the resume from
  it, with any number of ranks: the source is replayed over the steps already done, so the resumed run
  meets the same tasks as an uninterrupted one.

The collectives themselves are :mod:`utils.distributed`'s (``torch.distributed``).

Taught in chapter 02, § 14 · Past one machine: the outer loop across processes.
"""
from __future__ import annotations

import contextlib

import torch

from ..distributed import World, averaging_gradients, synced_batch_norm
from ..vocab import TaskSource

__all__ = ["ranks_in_step", "mean_over_ranks", "save_progress", "resume"]

#: Manifest ``kind`` of a meta-training checkpoint (it holds the optimizer and the history too).
KIND = "meta-training progress"


@contextlib.contextmanager
def ranks_in_step(learner, world: World | None):
    """Gradient averaging on ``learner.optimizer`` and, where the tasks share the network's batch,
    synced batch norm on every module of the learner; nothing with one process."""
    if world is None or not world.distributed:
        yield
        return
    with contextlib.ExitStack() as stack:
        stack.enter_context(averaging_gradients(learner.optimizer, world))
        if getattr(learner, "TASKS_SHARE_BATCH", True):
            for module in learner.modules():
                stack.enter_context(synced_batch_norm(module, world))
        yield


def mean_over_ranks(world: World, loss: float, accuracy: float, over_budget: bool) -> tuple[float, float, bool]:
    """``(mean loss, mean accuracy, any rank over budget)`` over the ranks: one small all-reduce."""
    t = torch.tensor([loss, accuracy, float(over_budget)], dtype=torch.float64)
    if world.backend == "nccl":
        t = t.cuda()
    world.all_reduce(t, "loss and accuracy all-reduce")
    return float(t[0]) / world.size, float(t[1]) / world.size, bool(t[2] > 0)


def save_progress(learner, name: str, step: int, iterations: int, meta_batch: int, world: World | None) -> None:
    """Rank 0 writes checkpoint ``name`` (``.pt`` + ``.json`` manifest, atomically): the learner's
    resumable state after ``step`` of ``iterations`` outer steps."""
    if world is not None and not world.main:
        return
    from ..checkpoints import save_checkpoint
    manifest = dict(name=name, kind=KIND, step=int(step), iterations=int(iterations), meta_batch=int(meta_batch),
                    world_size=1 if world is None else world.size, learner=type(learner).__name__)
    save_checkpoint(name, learner.state_dict(resume=True), manifest)


def resume(learner, name: str, source: TaskSource, meta_batch: int) -> int:
    """Load checkpoint ``name`` into ``learner`` when it exists (any rank count wrote it) and replay
    ``source`` over the steps it holds; the number of steps already done (0 without a checkpoint)."""
    from ..checkpoints import checkpoint_dir, load_checkpoint
    from ..errors import course_error
    if not (checkpoint_dir() / f"{name}.json").exists():
        return 0
    state, manifest = load_checkpoint(name)
    if manifest.get("kind") != KIND or manifest.get("meta_batch") != meta_batch:
        raise course_error(f"checkpoint {name}", f"a meta-training checkpoint with meta_batch={meta_batch}",
                           f"kind {manifest.get('kind')!r}, meta_batch {manifest.get('meta_batch')!r}",
                           "pass another checkpoint name, or the meta_batch it was written with")
    learner.load_state_dict(state)
    for _ in range(int(manifest["step"])):
        source(meta_batch)
    return int(manifest["step"])
