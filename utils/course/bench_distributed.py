"""``bench distributed``: outer steps per second of meta-training on 1, 2, … N processes (issue 28).

Each configuration is a fresh launch of ``n`` ranks (this module run as a script with torchrun's
variables; gloo on CPU with ONE thread per rank, NCCL with one GPU per rank) that meta-trains with
:meth:`utils.learners.Learner.meta_train` and a :class:`utils.distributed.World`: the meta-batch is
split over the ranks, their gradients averaged by one all-reduce per step. Rank 0 reports steps per
second over the timed steps (after warm-up) and the communication share: the fraction of the step's
wall time spent inside collectives (sending, and waiting for the slowest rank).

Workloads: ``sinusoid`` (MAML, MLP 1-40-40-1, 10-shot, meta-batch 100: chapter 02's recipe) and
``conv4`` (second-order MAML, conv-4 with 64 channels, 5-way 1-shot 28×28 with 15 queries, meta-batch 4).
The scaling efficiency is ``(steps/s with n) / (n × steps/s with 1)``. Figures are printed, never asserted.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

__all__ = ["WORKLOADS", "add_arguments", "distributed", "worker"]

#: name -> (meta-batch, what it is)
WORKLOADS = {"sinusoid": (100, "MAML, MLP 1-40-40-1, 10-shot sinusoids"),
             "conv4": (4, "MAML (2nd order), conv-4 64 ch, 5-way 1-shot 28x28, 15 queries")}


def _learner(workload: str, device):
    import torch
    from ..episodes import EpisodeSampler
    from ..learners import MAML, episode_source, sinusoid_source
    from ..models import MLP, conv4_classifier
    from ..tasks import SinusoidFamily
    torch.manual_seed(0)
    if workload == "sinusoid":
        return (MAML(MLP([1, 40, 40, 1]), inner_lr=0.01, outer_lr=4e-3, device=device, threads=1),
                sinusoid_source(SinusoidFamily(), 10, 10, seed=1))
    images = torch.rand(20 * 20, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    sampler = EpisodeSampler(images, torch.arange(20).repeat_interleave(20), 5, 1, 15, seed=2)
    return (MAML(conv4_classifier(5, hidden=64, track_running_stats=False), inner_lr=0.4, device=device, threads=1),
            episode_source(sampler))


def worker(workload: str, steps: int, warmup: int, device: str, out: str) -> None:
    """One rank of one configuration; rank 0 writes ``{"steps_per_s", "comm_share"}`` to ``out``."""
    import torch
    from ..distributed import launched
    from ..runtime import synchronize
    torch.set_num_threads(1)
    with launched(backend="nccl" if device == "cuda" else "gloo", timeout_s=120, device=device) as world:
        learner, source = _learner(workload, "cuda" if device == "cuda" else "cpu")
        meta_batch = WORKLOADS[workload][0]
        learner.meta_train(source, warmup, meta_batch, progress=False)
        synchronize(learner.device)
        world.comm_seconds = 0.0
        start = time.perf_counter()
        learner.meta_train(source, steps, meta_batch, progress=False)
        synchronize(learner.device)
        wall = time.perf_counter() - start
        if world.main:
            Path(out).write_text(json.dumps(dict(steps_per_s=steps / wall, comm_share=world.comm_seconds / wall)))


def _run(workload: str, n: int, steps: int, warmup: int, device: str) -> dict:
    from ..cache import PROJECT_ROOT
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with tempfile.TemporaryDirectory() as tmp:
        out = str(Path(tmp) / "rank0.json")
        env = dict(os.environ, MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(n),
                   OMP_NUM_THREADS="1", COURSE_THREADS="1", PYTHONPATH=str(PROJECT_ROOT))
        procs = [subprocess.Popen([sys.executable, "-m", "utils.course.bench_distributed", workload, str(steps),
                                   str(warmup), device, out], cwd=PROJECT_ROOT,
                                  env=dict(env, RANK=str(r), LOCAL_RANK=str(r))) for r in range(n)]
        codes = [p.wait() for p in procs]
        if any(codes):
            from ..errors import course_error
            raise course_error(f"bench distributed {workload} on {n} processes", "every rank to exit 0",
                               f"exit codes {codes}", "read the ranks' output above")
        return json.loads(Path(out).read_text())


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


if __name__ == "__main__":
    worker(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5])
