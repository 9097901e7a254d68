"""Benchmarks: figures printed, never asserted. ``python -m utils.course bench NAME [options]``.

* ``maml-throughput`` — meta-iterations per second, vectorized (tasks folded into channel groups)
  vs per-task loop, quiet and with ``--contend N`` busy processes, ``--peers`` (learn2learn, higher).
* ``sinusoid``        — MAML 10-shot one-step MSE after a CPU time budget, beside pre-train + fine-tune.
* ``glyphs``          — 5-way 1-shot accuracy on held-out glyph classes: ProtoNet, MAML, ANIL,
  fine-tune baseline, pixel nearest neighbour; with training times.
* ``train-loop``      — supervised ``fit`` throughput, float32 vs mixed precision (AMP, CUDA).
* ``lake``            — meta-train on a real Omniglot background set, then the error rate on the 20
  one-shot runs of ``all_runs.zip`` (20-way, within-alphabet), per run and overall.
"""
from __future__ import annotations

import argparse
import sys
import time

import torch

from .bench_maml import add_arguments as _maml_throughput_arguments, maml_throughput
from ..episodes import EpisodeSampler
from ..meta import ANIL, MAML, FineTuneBaseline, ProtoNet, episode_source, sinusoid_source
from ..meta_eval import meta_evaluate
from ..models import MLP, ConvBackbone, conv4_classifier
from ..runtime import pick_device, seed_everything
from ..tasks import SinusoidFamily


def _header(title: str, device) -> None:
    print(f"\n== {title} ==  device={device}  torch={torch.__version__}  cpu_threads={torch.get_num_threads()}")


def sinusoid(args) -> dict:
    """MAML on sinusoids within a time budget; 10-shot MSE after one step over 600 test tasks."""
    device = pick_device(args.device)
    _header(f"sinusoid (MAML vs pre-train + fine-tune, {args.budget:.0f} s budget each)", device)
    seed_everything(args.seed)
    fam = SinusoidFamily()
    train = sinusoid_source(fam, 10, 10, seed=args.seed)
    rows = {}
    maml = MAML(MLP([1, 40, 40, 1]), inner_lr=args.inner_lr, outer_lr=1e-3, device=device)
    h = maml.meta_train(train, 10**7, 25, progress=False, time_budget_s=args.budget)
    rows["MAML (2nd order)"] = (maml, len(h.loss), h.total_seconds)
    base = FineTuneBaseline(MLP([1, 40, 40, 1]), lr=1e-3, finetune_lr=args.inner_lr, device=device)
    hb = base.meta_train(train, 10**7, 25, progress=False, time_budget_s=args.budget)
    rows["pre-train + fine-tune"] = (base, len(hb.loss), hb.total_seconds)
    print(f"{'method':<24} {'iters':>7} {'train s':>8}   10-shot MSE after 1 step (600 tasks, 95% CI)")
    out = {}
    for name, (learner, iters, secs) in rows.items():
        r = meta_evaluate(learner, sinusoid_source(fam, 10, 10, seed=10_000 + args.seed), 600, steps=1)
        print(f"{name:<24} {iters:>7} {secs:>8.1f}   {r.mean:.3f} ± {r.ci95:.3f}")
        out[name] = dict(mse=r.mean, ci95=r.ci95, iterations=iters, seconds=secs)
    print("reference: Finn et al. 2017 (MAML) report this setting as curves (Figs. 2-3), not as a table")
    return out


def glyphs(args) -> dict:
    """5-way 1-shot on held-out glyph alphabets for several learners."""
    from ..glyphs import load_glyphs
    device = pick_device(args.device)
    _header(f"glyphs 5-way {args.shots}-shot on held-out alphabets ({args.seconds:.0f} s training each)", device)
    seed_everything(args.seed)
    gs = load_glyphs()
    train_ids, _, test_ids = gs.class_split()
    n, k = 5, args.shots
    test = lambda s: episode_source(EpisodeSampler(gs.images, gs.labels, n, k, 15, classes=test_ids, seed=s))
    out = {}
    accs = []
    sampler = EpisodeSampler(gs.images, gs.labels, n, k, 15, classes=test_ids, seed=1)
    for _ in range(600):
        e = sampler.sample()
        d = torch.cdist(e.query_x.flatten(1), e.support_x.flatten(1))
        accs.append(float((e.support_y[d.argmin(1)] == e.query_y).float().mean()))
    from ..stats import mean_ci95
    m, h = mean_ci95(accs)
    print(f"{'method':<28} {'train s':>8}   accuracy (600 episodes, 95% CI)")
    print(f"{'pixel nearest neighbour':<28} {0.0:>8.1f}   {100 * m:.2f} ± {100 * h:.2f}%")
    out["pixel-nn"] = dict(acc=m, ci95=h, seconds=0.0)
    learners = {
        "ProtoNet": (lambda: ProtoNet(ConvBackbone(), device=device),
                     EpisodeSampler(gs.images, gs.labels, 20, k, 5, classes=train_ids, seed=0), 1),
        "MAML (1st order)": (lambda: MAML(conv4_classifier(n, track_running_stats=False), inner_lr=0.4,
                                          inner_steps=1, eval_steps=3, first_order=True, device=device),
                             EpisodeSampler(gs.images, gs.labels, n, k, 15, classes=train_ids, seed=0), 8),
        "MAML (2nd order)": (lambda: MAML(conv4_classifier(n, track_running_stats=False), inner_lr=0.4,
                                          inner_steps=1, eval_steps=3, device=device),
                             EpisodeSampler(gs.images, gs.labels, n, k, 15, classes=train_ids, seed=0), 8),
        "ANIL": (lambda: ANIL(conv4_classifier(n, track_running_stats=False), inner_lr=0.4, inner_steps=1,
                              eval_steps=5, device=device),
                 EpisodeSampler(gs.images, gs.labels, n, k, 15, classes=train_ids, seed=0), 8),
    }
    for name, (make, train_sampler, batch) in learners.items():
        torch.manual_seed(args.seed)
        learner = make()
        hist = learner.meta_train(episode_source(train_sampler), 10**7, batch, progress=False,
                                  time_budget_s=args.seconds)
        r = meta_evaluate(learner, test(2), 600)
        print(f"{name:<28} {hist.total_seconds:>8.1f}   {100 * r.mean:.2f} ± {100 * r.ci95:.2f}%  ({len(hist.loss)} iterations)")
        out[name] = dict(acc=r.mean, ci95=r.ci95, seconds=hist.total_seconds)
    # fine-tune baseline: supervised pre-training on all meta-training classes
    x, y = gs.subset(train_ids)
    remap = {c: i for i, c in enumerate(train_ids)}
    y = torch.tensor([remap[int(c)] for c in y])
    torch.manual_seed(args.seed)
    base = FineTuneBaseline(conv4_classifier(len(train_ids)), finetune_lr=0.01, finetune_steps=50,
                            finetune="head", device=device)
    t0 = time.perf_counter()
    epochs = 0
    while time.perf_counter() - t0 < args.seconds:
        base.pretrain_classes(x, y, epochs=1, progress=False, seed=epochs)
        epochs += 1
    secs = time.perf_counter() - t0
    r = meta_evaluate(base, test(2), 600)
    print(f"{'fine-tune baseline (head)':<28} {secs:>8.1f}   {100 * r.mean:.2f} ± {100 * r.ci95:.2f}%  ({epochs} epochs)")
    out["fine-tune"] = dict(acc=r.mean, ci95=r.ci95, seconds=secs)
    return out


def lake(args) -> dict:
    """Meta-train on an Omniglot background set, report the 20-run one-shot error rates."""
    from ..omniglot import load_omniglot, load_one_shot_runs, omniglot_available
    from ..errors import course_error
    device = pick_device(args.device)
    have = omniglot_available(args.root)
    order = [args.background] if args.background else ["background", "small1", "small2"]
    found = [b for b in order if have[f"images_{'background' if b == 'background' else 'background_' + b}.zip"]]
    if not found:
        raise course_error("Omniglot background zip", "images_background.zip or images_background_small1/2.zip "
                           f"in {args.root}", "none of them", "copy the official zips into that folder")
    runs = load_one_shot_runs(args.root)
    data = load_omniglot(args.root, background=found[0], rotations=True)
    _header(f"lake: {args.method} meta-trained {args.minutes:g} min on images_{found[0]} "
            f"({data.n_classes} classes with rotations), 20-way one-shot runs", device)
    seed_everything(args.seed)
    ways = 20
    queries = max(1, min(5, int(torch.bincount(data.labels).min()) - 1))
    sampler = EpisodeSampler(data.images, data.labels, ways, 1, queries, seed=args.seed)
    if args.method == "protonet":
        learner = ProtoNet(ConvBackbone(), device=device)
        batch = 1
    else:
        learner = MAML(conv4_classifier(ways, track_running_stats=False), inner_lr=0.1, inner_steps=1,
                       eval_steps=5, first_order=args.method == "fomaml", device=device)
        batch = 4
    hist = learner.meta_train(episode_source(sampler), 10**7, batch, progress=False,
                              time_budget_s=60 * args.minutes)
    print(f"trained {len(hist.loss)} iterations in {hist.total_seconds:.0f} s")
    errors = []
    for run in runs:
        sy = torch.arange(len(run.train_images))
        _, acc = learner.evaluate_task(run.train_images, sy, run.test_images, run.test_targets)
        errors.append(1 - acc)
        print(f"  {run.name}: error {100 * (1 - acc):5.1f}%")
    overall = sum(errors) / len(errors)
    print(f"overall error rate: {100 * overall:.1f}% over {len(runs)} runs "
          "(reference: the modified-Hausdorff pixel baseline of the release's demo script: 38.8%)")
    return dict(error=overall, per_run=errors, iterations=len(hist.loss))


def train_loop(args) -> dict:
    """Supervised ``fit`` throughput (images/s) of the conv-4 classifier, with and without AMP."""
    from ..training import fit
    device = pick_device(args.device)
    _header("train-loop: utils.training.fit on conv-4, 64 classes of 28x28 glyph-like images", device)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(args.samples, 1, 28, 28, generator=g)
    y = torch.randint(0, 64, (args.samples,), generator=g)
    out = {}
    for amp in ((False, True) if device.type == "cuda" else (False,)):
        torch.manual_seed(0)
        model = conv4_classifier(64)
        fit(model, (x[:512], y[:512]), epochs=1, batch_size=args.batch, device=device, amp=amp, progress=False)
        h = fit(model, (x, y), epochs=args.epochs, batch_size=args.batch, device=device, amp=amp, progress=False)
        rate = args.samples * args.epochs / h.total_seconds
        print(f"amp={str(h.amp):<5} batch={args.batch}  {rate:,.0f} images/s  (final train loss {h.train_loss[-1]:.3f})")
        out[f"amp={amp}"] = rate
    if device.type != "cuda":
        print("AMP applies on CUDA only; on this device fit() runs in float32.")
    return out


BENCHMARKS = {"maml-throughput": maml_throughput, "sinusoid": sinusoid, "glyphs": glyphs, "lake": lake,
              "train-loop": train_loop}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m utils.course bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="name", required=True, metavar="NAME")
    for name in BENCHMARKS:
        s = sub.add_parser(name, help=(BENCHMARKS[name].__doc__ or "").strip().splitlines()[0])
        s.add_argument("--device", default="auto", help='"auto", "cpu", "cuda" or "mps"')
        s.add_argument("--seed", type=int, default=0)
        s.add_argument("--threads", type=int, default=None,
                       help="torch CPU threads (default: torch's choice; maml-throughput: the course's "
                            "thread policy, utils.runtime.threads_for)")
        if name == "maml-throughput":
            _maml_throughput_arguments(s)
        if name == "sinusoid":
            s.add_argument("--budget", type=float, default=90.0, help="meta-training seconds per method")
            s.add_argument("--inner-lr", type=float, default=0.01)
        if name == "glyphs":
            s.add_argument("--seconds", type=float, default=60.0, help="training seconds per learner")
            s.add_argument("--shots", type=int, default=1)
        if name == "train-loop":
            s.add_argument("--samples", type=int, default=8192)
            s.add_argument("--epochs", type=int, default=3)
            s.add_argument("--batch", type=int, default=256)
        if name == "lake":
            s.add_argument("--root", required=True, help="folder with the official Omniglot zips")
            s.add_argument("--minutes", type=float, default=5.0)
            s.add_argument("--method", choices=["protonet", "maml", "fomaml"], default="protonet")
            s.add_argument("--background", choices=["background", "small1", "small2"], default=None)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    BENCHMARKS[args.name](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
