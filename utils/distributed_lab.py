"""What chapter 02 measures about meta-training on several processes, and ``bench distributed`` too.

:func:`measure_meta_train` meta-trains a learner on one rank of a :class:`utils.distributed.World`
and reports outer steps per second, the communication share of a step and how many numbers each
step all-reduces; :data:`WORKLOADS` are the learners it is timed on (functions importable by the
processes :func:`utils.distributed.run_ranks` starts).

Taught in chapter 02, § 14 · Past one machine: the outer loop across processes.
"""
from __future__ import annotations

from .distributed import World

__all__ = ["measure_meta_train", "measure_workloads", "make_sine", "sine_tasks", "make_conv4", "conv4_tasks", "WORKLOADS"]


def measure_meta_train(world: World, make, make_source, steps: int, meta_batch: int, warmup: int = 3) -> dict:
    """Meta-train ``make()`` on ``make_source()`` (both called here, on this rank) for ``warmup`` then
    ``steps`` outer steps with ``world``; what the timed steps cost and what they sent:

    ``steps_per_s``; ``comm_share`` (fraction of the wall time inside collectives: sending and
    waiting for the slowest rank); ``sent_per_step`` (numbers all-reduced per outer step: the
    gradient, one per meta-parameter, and the step's loss, accuracy and stop flag); ``parameters``
    (the model's); ``loss`` (the meta-training loss of every outer step, warm-up included, averaged
    over the ranks); ``state`` (the model's state dict after training, to compare ranks and runs).

    Taught in chapter 02, § 14 · Past one machine: the outer loop across processes.
    """
    import time
    from .runtime import synchronize
    learner, tasks = make(), make_source()
    learner.meta_train(tasks, warmup, meta_batch, progress=False, world=world)
    synchronize(learner.device)
    world.comm_seconds, world.sent_numbers = 0.0, 0
    start = time.perf_counter()
    learner.meta_train(tasks, steps, meta_batch, progress=False, world=world)
    synchronize(learner.device)
    wall = time.perf_counter() - start
    return dict(steps_per_s=steps / wall, comm_share=world.comm_seconds / wall, sent_per_step=world.sent_numbers / steps,
                parameters=sum(p.numel() for p in learner.model.parameters()), loss=list(learner.history.loss),
                state={k: v.detach().cpu().clone() for k, v in learner.model.state_dict().items()})


def make_sine(device: str = "cpu"):
    """Chapter 02's sinusoid MAML (second order, inner step 0.01), seed 0."""
    import torch
    from .learners import MAML
    from .models import MLP
    torch.manual_seed(0)
    return MAML(MLP([1, 40, 40, 1]), inner_lr=0.01, outer_lr=4e-3, device=device, threads=1)


def sine_tasks():
    from .learners import sinusoid_source
    from .tasks import SinusoidFamily
    return sinusoid_source(SinusoidFamily(), 10, 10, seed=1)


def make_conv4(device: str = "cpu"):
    """Second-order MAML on conv-4 (64 channels, batch statistics per task), seed 0."""
    import torch
    from .learners import MAML
    from .models import conv4_classifier
    torch.manual_seed(0)
    return MAML(conv4_classifier(5, hidden=64, track_running_stats=False), inner_lr=0.4, device=device, threads=1)


def conv4_tasks():
    """5-way 1-shot episodes with 15 queries of random 28×28 images (speed only)."""
    import torch
    from .episodes import EpisodeSampler
    from .learners import episode_source
    images = torch.rand(20 * 20, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    return episode_source(EpisodeSampler(images, torch.arange(20).repeat_interleave(20), 5, 1, 15, seed=2))


#: name -> (meta-batch, what it is, make(device) -> learner, tasks() -> source): importable by spawned ranks.
WORKLOADS = {"sinusoid": (100, "MAML, MLP 1-40-40-1, 10-shot sinusoids", make_sine, sine_tasks),
             "conv4": (4, "MAML (2nd order), conv-4 64 ch, 5-way 1-shot 28x28, 15 queries", make_conv4, conv4_tasks)}


def measure_workloads(world: World, steps: dict, warmup: int = 2) -> dict:
    """:func:`measure_meta_train` of each workload named in ``steps`` (name -> timed outer steps) of
    :data:`WORKLOADS`, one after the other on the same ranks: name -> its figures.

    Taught in chapter 02, § 14 · Past one machine: the outer loop across processes.
    """
    return {name: measure_meta_train(world, WORKLOADS[name][2], WORKLOADS[name][3], n, WORKLOADS[name][0], warmup)
            for name, n in steps.items()}
