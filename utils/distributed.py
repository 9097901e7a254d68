"""Meta-training across processes with ``torch.distributed`` (issue 28): the world, its collectives.

The outer loop's meta-batch is the unit spread over processes: with ``N`` ranks and a meta-batch of
``B`` tasks, every rank draws the SAME ``B`` tasks from the same seeded source and keeps its share
(:meth:`World.share`: tasks ``rank·B/N .. (rank+1)·B/N``), so the union of the ranks' tasks is the
single-process meta-batch. Each rank computes the meta-gradient of its share; before the outer
optimizer steps, the ranks average the gradients (one ``all_reduce`` of a flat vector the size of the
model, :func:`average_gradients`), so every rank applies the same update and the parameters stay
equal to a one-process run (up to the order of float additions). The inner loop runs on each rank
for its own tasks: it needs no communication.

Batch-norm statistics: the MAML family normalises each task by its own statistics
(:class:`utils.models.BatchStatNorm`, per task): nothing to share. Metric learners (ProtoNet and
friends) pass all the meta-batch's images through the encoder together, so its batch norm sees the
statistics of all ``B`` tasks; :func:`synced_batch_norm` makes each rank compute them over every
rank's images (sums all-reduced with ``torch.distributed.nn``, differentiable), running statistics
included, exactly as one process would.

The communication is PyTorch's (gloo on CPU, NCCL on GPU; launched with ``torchrun``, which sets
``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``); this module only
decides what is sent and turns a failed collective into an error naming the rank that stopped.

Taught in chapter 02, § 14 · Past one machine: the outer loop across processes.
"""
from __future__ import annotations

import contextlib
import datetime
import os
import time
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from .errors import CourseError, course_error
from .models import BatchStatNorm

__all__ = ["World", "LAUNCH", "world_from_env", "init_world", "launched", "current_world", "use_world",
           "is_writer", "average_gradients", "averaging_gradients", "synced_batch_norm", "run_ranks"]

#: How to launch a run on several processes (for error messages).
LAUNCH = ("launch it with `torchrun --nproc_per_node N -m utils.course train RECIPE ...` (torchrun sets RANK, "
          "WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT)")


@dataclass
class World:
    """This process's place among the ranks of one run.

    Attributes:
        rank: this process's index ``0 .. size - 1``; rank 0 alone logs and writes checkpoints.
        size: number of processes (1: a plain single-process run, no process group).
        local_rank: index on this machine (the GPU a NCCL rank uses).
        backend: ``"gloo"``, ``"nccl"``, or ``"none"`` for one process.
        timeout_s: seconds a collective waits for the other ranks before it fails.
        comm_seconds: wall seconds spent inside collectives so far (sending, and waiting for the
            slowest rank); ``collectives`` counts them, ``sent_numbers`` the tensor entries they
            all-reduced; ``step`` is the outer step being run.
    """
    rank: int = 0
    size: int = 1
    local_rank: int = 0
    backend: str = "none"
    timeout_s: float = 60.0
    comm_seconds: float = 0.0
    collectives: int = 0
    sent_numbers: int = 0
    step: int = -1

    @property
    def main(self) -> bool:
        """Rank 0: the one that logs, shows progress and writes checkpoints."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    def share(self, meta_batch: int) -> slice:
        """This rank's tasks of a meta-batch of ``meta_batch`` tasks (equal shares, in rank order).

        Taught in chapter 02, § 14 · Past one machine: the outer loop across processes.
        """
        if meta_batch % self.size:
            fits = [n for n in range(1, meta_batch + 1) if meta_batch % n == 0]
            raise course_error("meta_batch", f"a multiple of the {self.size} ranks (each rank meta-trains on "
                               f"meta_batch / {self.size} of the tasks)", str(meta_batch),
                               f"pass meta_batch={meta_batch - meta_batch % self.size or self.size} or launch "
                               f"a number of ranks among {fits}")
        n = meta_batch // self.size
        return slice(self.rank * n, (self.rank + 1) * n)

    def all_reduce(self, tensor: torch.Tensor, what: str, differentiable: bool = False) -> torch.Tensor:
        """The sum of ``tensor`` over the ranks (in place unless ``differentiable``: then a new tensor
        through which autograd sums the ranks' gradients); timed into :attr:`comm_seconds`."""
        start = time.perf_counter()
        try:
            if differentiable:
                import torch.distributed.nn.functional as dnn
                tensor = dnn.all_reduce(tensor)
            else:
                dist.all_reduce(tensor)
        except (RuntimeError, dist.DistBackendError, ValueError) as err:
            raise self.failure(what, err) from err
        self.comm_seconds += time.perf_counter() - start
        self.collectives += 1
        self.sent_numbers += tensor.numel()
        return tensor

    def failure(self, what: str, err: BaseException) -> CourseError:
        """The error a rank raises when a collective failed: which rank stopped, and what to do."""
        others = [r for r in range(self.size) if r != self.rank]
        suspect = f"rank {others[0]}" if len(others) == 1 else self._unresponsive()
        detail = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
        return course_error(f"rank {self.rank}: {what} at outer step {self.step}",
                            f"all {self.size} ranks to join it within the {self.timeout_s:g} s timeout",
                            f"{suspect} did not (it died, was killed or hangs; {self.backend} said: {detail})",
                            "read that rank's own output for why it stopped; the last checkpoint written stays "
                            "intact: rerun the same command and training resumes from it")

    def _unresponsive(self) -> str:
        """Which ranks did not answer a short monitored barrier (gloo), as words."""
        if self.backend != "gloo":
            return "another rank"
        try:
            dist.monitored_barrier(timeout=datetime.timedelta(seconds=min(10.0, self.timeout_s)), wait_all_ranks=True)
        except RuntimeError as err:
            return (str(err).strip().splitlines() or ["another rank"])[0][:200]
        return "another rank"


def world_from_env(env=None) -> World | None:
    """The :class:`World` that torchrun's variables describe (``None`` when none is set).

    Taught in chapter 02, § 14 · Past one machine: the outer loop across processes.
    """
    env = os.environ if env is None else env
    if "WORLD_SIZE" not in env and "RANK" not in env:
        return None
    raw = {k: env.get(k, "") for k in ("RANK", "WORLD_SIZE")}
    try:
        rank, size = int(raw["RANK"]), int(raw["WORLD_SIZE"])
        local = int(env.get("LOCAL_RANK", rank))
    except ValueError:
        raise course_error("RANK and WORLD_SIZE", "integers", f"RANK={raw['RANK']!r}, WORLD_SIZE={raw['WORLD_SIZE']!r}",
                           LAUNCH) from None
    if size < 1:
        raise course_error("WORLD_SIZE", "at least 1 process", str(size), "pass --nproc_per_node 1 or more to torchrun")
    if not 0 <= rank < size:
        raise course_error("RANK", f"0 .. {size - 1} (WORLD_SIZE={size})", str(rank), LAUNCH)
    return World(rank, size, local)


def init_world(backend: str = "auto", timeout_s: float = 60.0, device="auto", env=None) -> World:
    """Join the run torchrun started: the process group (``backend`` ``"auto"``: NCCL when
    ``device`` is CUDA, else gloo), with ``timeout_s`` for rendezvous and every collective. Without
    torchrun's variables, or with one process, returns a one-process :class:`World` (no group).

    Taught in chapter 02, § 14 · Past one machine: the outer loop across processes.
    """
    world = world_from_env(env) or World()
    world.timeout_s = float(timeout_s)
    if world.size == 1:
        return world
    env = os.environ if env is None else env
    missing = [k for k in ("MASTER_ADDR", "MASTER_PORT") if not env.get(k)]
    if missing:
        raise course_error("rendezvous", "MASTER_ADDR and MASTER_PORT", "no " + " and no ".join(missing), LAUNCH)
    if backend == "auto":
        from .runtime import pick_device
        backend = "nccl" if pick_device(device).type == "cuda" else "gloo"
    if backend == "nccl":
        gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if gpus <= world.local_rank:
            raise course_error("backend='nccl'", f"a CUDA GPU for local rank {world.local_rank}",
                               f"{gpus} CUDA GPU(s) on this machine",
                               "use gloo on CPUs (device='cpu' or backend='gloo'), or launch at most one rank per GPU "
                               "(--nproc_per_node <= number of GPUs)")
        torch.cuda.set_device(world.local_rank)
    elif backend != "gloo":
        raise course_error("backend", "'auto', 'gloo' (CPU) or 'nccl' (GPU)", repr(backend), "pick one")
    try:
        dist.init_process_group(backend, rank=world.rank, world_size=world.size, init_method="env://",
                                timeout=datetime.timedelta(seconds=world.timeout_s))
    except (RuntimeError, dist.DistError, ValueError) as err:
        raise course_error(f"rank {world.rank}: rendezvous at {env['MASTER_ADDR']}:{env['MASTER_PORT']}",
                           f"all {world.size} ranks within {world.timeout_s:g} s",
                           (str(err).strip().splitlines() or ["a failure"])[0][:200],
                           "start every rank (torchrun does) with the same MASTER_ADDR, MASTER_PORT and WORLD_SIZE") from err
    world.backend = backend
    return world


_CURRENT: list[World] = []


def current_world() -> World | None:
    """The world of the innermost :func:`use_world` / :func:`launched` block, or ``None``: the
    learners' ``meta_train`` uses it when no ``world=`` is passed."""
    return _CURRENT[-1] if _CURRENT else None


@contextlib.contextmanager
def use_world(world: World | None):
    """Make ``world`` the :func:`current_world` inside the block."""
    _CURRENT.append(world)
    try:
        yield world
    finally:
        _CURRENT.pop()


@contextlib.contextmanager
def launched(backend: str = "auto", timeout_s: float = 60.0, device="auto"):
    """``with launched() as world:`` — :func:`init_world`, make it current, leave the group after.

    Taught in chapter 02, § 14 · Past one machine: the outer loop across processes.
    """
    world = init_world(backend, timeout_s, device)
    try:
        with use_world(world):
            yield world
    finally:
        if world.distributed and dist.is_initialized():
            dist.destroy_process_group()


def is_writer() -> bool:
    """Whether this process writes files: rank 0 of a torchrun launch, or any single process
    (the rule :func:`utils.checkpoints.save_checkpoint` follows too)."""
    world = current_world()
    return world.main if world is not None else os.environ.get("RANK", "0") == "0"


def average_gradients(params, world: World, what: str = "gradient all-reduce") -> None:
    """Replace each parameter's ``.grad`` by its mean over the ranks: one all-reduce of a flat
    vector per dtype (the size of the model; a missing gradient counts as zeros).

    Taught in chapter 02, § 14 · Past one machine: the outer loop across processes.
    """
    params = [p for p in params if p.requires_grad]
    groups: dict = {}
    for p in params:
        groups.setdefault((p.dtype, p.device), []).append(p)
    for group in groups.values():
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in group]
        flat = torch.cat([g.reshape(-1) for g in grads])
        world.all_reduce(flat, what).div_(world.size)
        offset = 0
        for p in group:
            p.grad = flat[offset:offset + p.numel()].view_as(p)
            offset += p.numel()


@contextlib.contextmanager
def averaging_gradients(optimizer: torch.optim.Optimizer, world: World):
    """Inside the block, every ``optimizer.step()`` first averages the gradients over the ranks
    (a step pre-hook), whatever computed them (``backward``, Reptile's ``θ - mean φ``)."""
    params = [p for g in optimizer.param_groups for p in g["params"]]
    handle = optimizer.register_step_pre_hook(lambda opt, args, kwargs: average_gradients(params, world))
    try:
        yield
    finally:
        handle.remove()


def _synced_norm(module: nn.Module, world: World, x: torch.Tensor) -> torch.Tensor:
    """Batch norm of ``x`` ``(n, C, ...)`` with the mean and biased variance over every rank's batch."""
    tracking = isinstance(module, nn.modules.batchnorm._BatchNorm) and module.track_running_stats
    if not module.training and tracking:
        return type(module).forward(module, x)
    dims, shape = [0, *range(2, x.dim())], [1, -1] + [1] * (x.dim() - 2)
    total = world.all_reduce(torch.cat([x.sum(dims), x.new_full((1,), x.numel() // x.shape[1])]),
                             "batch-norm statistics", differentiable=True)
    count, mean = total[-1], total[:-1] / total[-1]
    var = world.all_reduce(((x - mean.view(shape)) ** 2).sum(dims), "batch-norm statistics", differentiable=True) / count
    if tracking and module.training:
        with torch.no_grad():
            module.num_batches_tracked += 1
            m = module.momentum if module.momentum is not None else 1.0 / float(module.num_batches_tracked)
            module.running_mean.mul_(1 - m).add_(m * mean.detach())
            module.running_var.mul_(1 - m).add_(m * var.detach() * count / (count - 1))
    y = (x - mean.view(shape)) * torch.rsqrt(var.view(shape) + module.eps)
    if getattr(module, "weight", None) is not None:
        y = y * module.weight.view(shape) + module.bias.view(shape)
    return y


@contextlib.contextmanager
def synced_batch_norm(model: nn.Module, world: World):
    """Inside the block, ``model``'s batch norms (``nn.BatchNorm*d``, :class:`~utils.models.BatchStatNorm`)
    in training mode normalise with the statistics of every rank's batch, and update their running
    statistics with them: what one process computes on the whole meta-batch. For learners whose
    tasks share the encoder's batch (metric learners); the MAML family normalises per task.

    Taught in chapter 02, § 14 · Past one machine: the outer loop across processes.
    """
    norms = [m for m in model.modules() if isinstance(m, (nn.modules.batchnorm._BatchNorm, BatchStatNorm))]
    if not world.distributed or not norms:
        yield
        return
    for m in norms:
        m.forward = lambda x, m=m: _synced_norm(m, world, x)
    try:
        yield
    finally:
        for m in norms:
            del m.forward


def _rank_main(rank: int, size: int, port: int, target, out: str, timeout_s: float, device: str) -> None:
    """One process of :func:`run_ranks`: torchrun's variables, one thread, ``target(world)`` saved."""
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(size), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.set_num_threads(1)
    with launched("nccl" if device == "cuda" else "gloo", timeout_s, device) as world:
        result = target(world)
    torch.save(result, os.path.join(out, f"rank{rank}.pt"))


def run_ranks(target, n: int, timeout_s: float = 60.0, device: str = "cpu") -> list:
    """Run ``target(world)`` on ``n`` fresh processes of this machine (``device="cpu"``: gloo, one
    thread each; ``"cuda"``: NCCL, one GPU each), rendezvous on 127.0.0.1 at a free port, as torchrun
    would; the ranks' return values, in rank order.
    ``target`` must be importable by the new processes (a module's function, or a
    ``functools.partial`` of one), not a function defined in a notebook cell.

    Taught in chapter 02, § 14 · Past one machine: the outer loop across processes.
    """
    import socket
    import tempfile
    import torch.multiprocessing as mp
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with tempfile.TemporaryDirectory() as out:
        try:
            mp.start_processes(_rank_main, args=(n, port, target, out, timeout_s, device), nprocs=n, join=True,
                               start_method="spawn")
        except mp.ProcessRaisedException as err:
            raise course_error(f"run_ranks on {n} processes", "every rank to finish", "a rank that raised",
                               "read its traceback: " + str(err).strip().splitlines()[-1][:300]) from None
        return [torch.load(os.path.join(out, f"rank{r}.pt"), weights_only=False) for r in range(n)]
