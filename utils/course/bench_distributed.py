"""``bench distributed``: outer steps per second of meta-training on 1, 2, … N processes (issue 28).

Each configuration is a fresh launch of ``n`` ranks (:func:`utils.distributed.run_ranks`; gloo on CPU
with ONE thread per rank, NCCL with one GPU per rank; 1 process: this one) that meta-trains with
:meth:`utils.learners.Learner.meta_train` and a :class:`utils.distributed.World`: the meta-batch is
split over the ranks, their gradients averaged by one all-reduce per step. Rank 0 reports steps per
second over the timed steps (after warm-up) and the communication share: the fraction of the step's
wall time spent inside collectives (sending, and waiting for the slowest rank).

Workloads: ``sinusoid`` (MAML, MLP 1-40-40-1, 10-shot, meta-batch 100: chapter 02's recipe) and
``conv4`` (second-order MAML, conv-4 with 64 channels, 5-way 1-shot 28×28 with 15 queries, meta-batch 4).
The scaling efficiency is ``(steps/s with n) / (n × steps/s with 1)``. Figures are printed, never asserted.
"""
from __future__ import annotations

import os

__all__ = ["add_arguments", "distributed"]

from ..distributed_lab import WORKLOADS


def _run(workload: str, n: int, steps: int, warmup: int, device: str) -> dict:
    from functools import partial
    from ..distributed import World, run_ranks
    from ..distributed_lab import measure_meta_train
    make, tasks = WORKLOADS[workload][2:]
    target = partial(measure_meta_train, make=partial(make, device), make_source=tasks, steps=steps,
                     meta_batch=WORKLOADS[workload][0], warmup=warmup)
    if n == 1:
        import torch
        torch.set_num_threads(1)
        return target(World())
    return run_ranks(target, n, timeout_s=120, device=device)[0]


def add_arguments(parser) -> None:
    parser.add_argument("--nproc", type=int, default=2, help="measure 1 .. N processes (default 2)")
    parser.add_argument("--steps", type=int, default=None, help="timed outer steps (default: sinusoid 200, conv4 10)")
    parser.add_argument("--warmup", type=int, default=3, help="outer steps before timing")
    parser.add_argument("--workloads", nargs="+", choices=list(WORKLOADS), default=list(WORKLOADS))


def distributed(args) -> dict:
    """Outer steps per second on 1 .. N processes (gloo one thread each, or NCCL), scaling efficiency."""
    from ..tables import show_table
    device = "cuda" if args.device == "cuda" else "cpu"
    print(f"\n== distributed meta-training: 1..{args.nproc} processes, device={device}, "
          f"{'NCCL, one GPU' if device == 'cuda' else 'gloo, one CPU thread'} per rank, cores={os.cpu_count()} ==")
    rows, out = [], {}
    for workload in args.workloads:
        steps = args.steps or (200 if workload == "sinusoid" else 10)
        for n in range(1, args.nproc + 1):
            r = _run(workload, n, steps, args.warmup, device)
            base = out.get((workload, 1), r)["steps_per_s"]
            out[workload, n] = r
            rows.append((workload, WORKLOADS[workload][0], n, r["steps_per_s"], r["steps_per_s"] / base,
                         100 * r["steps_per_s"] / (n * base), 100 * r["comm_share"]))
    show_table(["workload", "meta-batch", "processes", "outer steps/s", "x 1 process", "scaling efficiency (%)",
                "communication share of a step (%)"], rows, floatfmt=".2f",
               title="; ".join(f"{k}: {v[1]}" for k, v in WORKLOADS.items()))
    return {f"{w}-{n}": v for (w, n), v in out.items()}

