"""``bench maml-throughput``: meta-iterations per second of second-order MAML, quiet and under load.

For the sinusoid MLP (meta-batch 25, K = 10) and the conv-4 5-way 1-shot setting (15 queries,
meta-batch 8), one inner step, it times the per-task loop and the vectorized path (tasks folded
into channel groups, :mod:`utils.learners.folded`), each on the CPU threads the engine's policy chooses
(:func:`utils.runtime.threads_for`; ``--threads`` or ``COURSE_THREADS`` override it).

* ``--contend N`` starts N busy processes of its own (each stops by itself after
  ``--contend-seconds`` at the latest, and all are killed when the bench ends, fails or is
  interrupted) and times every path quiet and contended, alternating the two phases round by
  round, so that both see the same drift of the machine.
* ``--peers`` adds, in the same rounds, learn2learn's MAML (second and first order), higher's
  ``innerloop_ctx`` (second order) and a plain ``torch.func.vmap`` of the inner loop, each with
  the same model, data, threads and Adam outer step. The peer libraries are optional: those not
  importable are listed as missing (``PYTHONPATH`` may point to a private folder holding them).

Figures are medians over rounds; the table printed at the end is Markdown, ready to paste.
"""
from __future__ import annotations

import importlib
import importlib.util
import os
import signal
import statistics
import subprocess
import sys
import time
import types
from contextlib import contextmanager

import torch
from torch import nn

from ..learners import inner_loop as Fn
from ..errors import course_error
from ..episodes import EpisodeSampler
from ..learners import MAML
from ..models import MLP, conv4_classifier, use_batch_statistics
from ..runtime import pick_device, synchronize, torch_threads
from ..tasks import SinusoidFamily

__all__ = ["busy_processes", "maml_throughput", "add_arguments"]

_BUSY = "import sys, time\nend = time.monotonic() + float(sys.argv[1])\nwhile time.monotonic() < end:\n    pass\n"


@contextmanager
def busy_processes(n: int, seconds: float):
    """Run the block while ``n`` CPU-bound processes spin (each ends by itself after ``seconds``).

    Each contender gets its own process group and is killed (SIGKILL to the group) when the block
    ends, raises or is interrupted with Ctrl-C."""
    procs = []
    try:
        for _ in range(int(n)):
            procs.append(subprocess.Popen([sys.executable, "-c", _BUSY, str(float(seconds))],
                                          stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL, start_new_session=True))
        time.sleep(0.3 if procs else 0.0)  # let them get going
        yield procs
    finally:
        for p in procs:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        for p in procs:
            p.wait()


def _load_learn2learn():
    """learn2learn's MAML class, or ``None``. Its package ``__init__`` imports gym and torchvision
    (for its environments and datasets); when those are missing only the two pure-Python modules
    the MAML algorithm needs are loaded."""
    try:
        import learn2learn
        return learn2learn.algorithms.MAML
    except ImportError:
        pass
    spec = importlib.util.find_spec("learn2learn")
    if spec is None or not spec.submodule_search_locations:
        return None
    root = list(spec.submodule_search_locations)[0]
    for name, path in (("learn2learn", root), ("learn2learn.algorithms", os.path.join(root, "algorithms"))):
        pkg = types.ModuleType(name)
        pkg.__path__ = [path]
        sys.modules[name] = pkg
    try:
        return importlib.import_module("learn2learn.algorithms.maml").MAML
    except ImportError:
        return None


def _load_higher():
    try:
        return importlib.import_module("higher")
    except ImportError:
        return None


def _setups(device):
    fam = SinusoidFamily()
    b = fam.sample(25, 10, 10, generator=torch.Generator().manual_seed(0))
    sine = tuple(getattr(b, k).to(device) for k in ("support_x", "support_y", "query_x", "query_y"))
    images = torch.rand(200, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    labels = torch.arange(10).repeat_interleave(20)
    ep = EpisodeSampler(images, labels, 5, 1, 15, seed=0).sample_batch(8)
    conv = tuple(getattr(ep, k).to(device) for k in ("support_x", "support_y", "query_x", "query_y"))
    # make(fused): the network; with fused=True its norms are nn.BatchNorm2d (see _fused_norm)
    return {"sinusoid": (lambda fused=False: MLP([1, 40, 40, 1]), sine, 0.01),
            "conv-4": (lambda fused=False: conv4_classifier(5, track_running_stats=fused), conv, 0.4)}


def _fused_norm(model: nn.Module) -> nn.Module:
    """``model`` with every BatchNorm switched to batch statistics in torch's own fused kernel, as
    a learn2learn or higher user would write it (right outside ``vmap``)."""
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.track_running_stats = False
            m.running_mean = m.running_var = m.num_batches_tracked = None
    return model


def _peer_steps(make, batch, lr, device, l2l_maml, higher):
    """Meta-iteration closures for the peer libraries and a plain vmap (same data, step sizes).

    The peers get the network with torch's fused batch norm; the vmap needs the course's
    :class:`~utils.models.BatchStatNorm` (the fused kernel's double backward is wrong in vmap)."""
    sx, sy, qx, qy = batch
    T = sx.shape[0]
    loss_fn = Fn.task_loss
    steps = {}

    def fresh(fused: bool = True):
        torch.manual_seed(0)
        model = make(fused)
        return (_fused_norm(model) if fused else use_batch_statistics(model)).to(device)

    def vmap_step():
        model = fresh(fused=False)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)

        def step():
            p, b = Fn.model_params(model)
            opt.zero_grad(set_to_none=True)
            Fn.vmap_meta_loss(model, (p, b), (sx, sy, qx, qy), steps=1, lr=lr)[0].mean().backward()
            opt.step()
        return step
    steps["torch.func vmap, 2nd order"] = vmap_step()

    if l2l_maml is not None:
        for first in (False, True):
            maml = l2l_maml(fresh(), lr=lr, first_order=first)
            opt = torch.optim.Adam(maml.parameters(), lr=1e-3)

            def step(maml=maml, opt=opt):
                opt.zero_grad(set_to_none=True)
                total = 0.0
                for t in range(T):
                    learner = maml.clone()
                    learner.adapt(loss_fn(learner(sx[t]), sy[t]))
                    total = total + loss_fn(learner(qx[t]), qy[t])
                (total / T).backward()
                opt.step()
            steps[f"learn2learn, {'1st' if first else '2nd'} order"] = step

    if higher is not None:
        model = fresh()
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        inner = torch.optim.SGD(model.parameters(), lr=lr)

        def h_step():
            opt.zero_grad(set_to_none=True)
            for t in range(T):
                with higher.innerloop_ctx(model, inner, copy_initial_weights=False) as (fmodel, diffopt):
                    diffopt.step(loss_fn(fmodel(sx[t]), sy[t]))
                    (loss_fn(fmodel(qx[t]), qy[t]) / T).backward()
            opt.step()
        steps["higher, 2nd order"] = h_step
    return steps


def _rate(step, iters: int, device) -> float:
    synchronize(device)
    t0 = time.perf_counter()
    for _ in range(iters):
        step()
    synchronize(device)
    return iters / (time.perf_counter() - t0)


def maml_throughput(args) -> dict:
    """Vectorized vs per-task-loop second-order MAML (sinusoid, conv-4), quiet and contended."""
    device = pick_device(args.device)
    contend = int(getattr(args, "contend", 0) or 0)
    peers = bool(getattr(args, "peers", False))
    l2l_maml = _load_learn2learn() if peers else None
    higher = _load_higher() if peers else None
    wanted = [s.strip() for s in args.setups.split(",")]
    all_setups = _setups(device)
    unknown = [w for w in wanted if w not in all_setups]
    if unknown or not wanted:
        raise course_error("--setups", "a comma-separated list of " + ", ".join(all_setups),
                           repr(args.setups), "pass e.g. --setups sinusoid,conv-4")
    setups = {k: v for k, v in all_setups.items() if k in wanted}
    print(f"\n== maml-throughput (second-order MAML, one inner step) ==  device={device}  "
          f"torch={torch.__version__}  cores={os.cpu_count()}  contenders={contend}  rounds={args.rounds}")
    if peers:
        missing = [n for n, m in (("learn2learn", l2l_maml), ("higher", higher)) if m is None]
        print("peer libraries: " + ("all importable" if not missing else "missing: " + ", ".join(missing)
                                    + " (pip install them into a folder on PYTHONPATH)"))
    # contenders: name -> (setting, step closure, learner or None)
    paths = {}
    for name, (make, batch, lr) in setups.items():
        for label, kw in (("per-task loop", dict(vectorize=False)), ("vectorized", dict(vectorize=True)),
                          ("vectorized, 1st order", dict(vectorize=True, first_order=True))):
            if label.endswith("1st order") and not peers:
                continue
            torch.manual_seed(0)
            learner = MAML(make(), inner_lr=lr, device=device, threads=args.threads, **kw)
            paths[(name, "course " + label)] = (lambda lr_=learner, b=batch: lr_.meta_step(b), learner, batch)
        if peers:
            for label, step in _peer_steps(make, batch, lr, device, l2l_maml, higher).items():
                paths[(name, label)] = (step, None, batch)
    phases = ["quiet"] + ([f"{contend} busy"] if contend else [])
    rates = {(key, ph): [] for key in paths for ph in phases}
    threads = {(name, ph): [] for name in setups for ph in phases}
    for (name, label), (step, _, _) in paths.items():  # warm-up, untimed
        with torch_threads(1):
            step()
    budget = args.contend_seconds
    for r in range(args.rounds):
        for ph in phases:
            with busy_processes(contend if ph != "quiet" else 0, budget):
                for name, (_, batch, _) in setups.items():
                    # one thread count per setting and phase, chosen by the course's policy, for every path
                    course = paths[(name, "course vectorized")][1]
                    course._thread_choice = (None, -1e9)
                    n = course.step_threads(batch)
                    threads[(name, ph)].append(n)
                    for (nm, label), (step, learner, _) in paths.items():
                        if nm != name:
                            continue
                        if learner is not None:
                            learner._thread_choice = (n, time.perf_counter() + 1e9)
                        iters = args.iters if name == "conv-4" else 10 * args.iters
                        with torch_threads(n):
                            rates[((nm, label), ph)].append(_rate(step, iters, device))
        print(f"round {r + 1}/{args.rounds} done", flush=True)
    med = {k: statistics.median(v) for k, v in rates.items()}
    head = "| setting | path | threads | " + " | ".join(f"{ph} it/s" for ph in phases)
    head += " | busy ÷ quiet |" if contend else " |"
    print("\n" + head)
    print("|" + "---|" * (head.count("|") - 1))
    out = {}
    for (name, label) in paths:
        th = "/".join(str(int(statistics.median(threads[(name, ph)]))) for ph in phases)
        row = f"| {name} | {label} | {th} | " + " | ".join(f"{med[((name, label), ph)]:.2f}" for ph in phases)
        if contend:
            row += f" | {med[((name, label), phases[1])] / med[((name, label), 'quiet')]:.2f} |"
        else:
            row += " |"
        print(row)
        out[f"{name} / {label}"] = {ph: med[((name, label), ph)] for ph in phases}
    print()
    for name in setups:
        for ph in phases:
            vec, loop = med[((name, "course vectorized"), ph)], med[((name, "course per-task loop"), ph)]
            line = f"- {name}, {ph}: vectorized ÷ loop {vec / loop:.2f}×"
            for peer in ("learn2learn, 2nd order", "higher, 2nd order", "torch.func vmap, 2nd order"):
                if ((name, peer), ph) in med:
                    line += f"; vectorized ÷ {peer} {vec / med[((name, peer), ph)]:.2f}×"
            if ((name, "learn2learn, 1st order"), ph) in med:
                fo = med[((name, "course vectorized, 1st order"), ph)] / med[((name, "learn2learn, 1st order"), ph)]
                line += f"; 1st order: vectorized ÷ learn2learn {fo:.2f}×"
            print(line)
    return out


def add_arguments(s) -> None:
    """The options of ``bench maml-throughput``."""
    s.add_argument("--iters", type=int, default=3,
                   help="timed meta-iterations per path and round (conv-4; sinusoid runs 10x as many)")
    s.add_argument("--rounds", type=int, default=3, help="alternating quiet/contended rounds (median taken)")
    s.add_argument("--contend", type=int, default=0, metavar="N", help="busy processes for the contended phase")
    s.add_argument("--contend-seconds", type=float, default=600.0,
                   help="upper bound on each busy process's life, in seconds")
    s.add_argument("--peers", action="store_true",
                   help="compare with learn2learn, higher and a plain torch.func vmap (those importable)")
    s.add_argument("--setups", default="sinusoid,conv-4", help="comma-separated: sinusoid, conv-4")
