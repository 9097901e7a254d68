"""Benchmarks: figures printed, never asserted. ``python -m utils.course bench NAME [options]``.

* ``maml-throughput`` — meta-iterations per second, vectorized (tasks folded into channel groups)
  vs per-task loop, quiet and with ``--contend N`` busy processes, ``--peers`` (learn2learn, higher).
* ``sinusoid``        — MAML 10-shot one-step MSE after a CPU time budget, beside pre-train + fine-tune.
* ``glyphs``          — 5-way 1-shot accuracy on held-out glyph classes: ProtoNet, MAML, ANIL,
  fine-tune baseline, pixel nearest neighbour; with training times.
* ``train-loop``      — supervised ``fit`` throughput, float32 vs mixed precision (AMP, CUDA).
* ``lake``            — 20-way within-alphabet one-shot error on held-out alphabets: meta-train on one
  shipped minimal Omniglot set, test on the other's new alphabets (``utils.lake``); per run and
  overall on the official runs of ``all_runs.zip`` when present.
* ``distributed``     — outer steps per second on 1 .. N processes (torch.distributed), scaling efficiency
  and communication share (:mod:`utils.course.bench_distributed`).
* ``class``           — a class of N generated submissions (correct, wrong, empty, hostile) autograded
  by ``course autograde``: wall time, time per submission, peak memory, gradebook check
  (:mod:`utils.course.bench_class`).
* ``story``           — every headline ranking in FAST and in full mode (recorded), and whether the
  order agrees (:mod:`utils.course.bench_story`).
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import torch

from .bench_class import add_arguments as _class_arguments, bench_class
from .bench_distributed import add_arguments as _distributed_arguments, distributed
from .bench_story import add_arguments as _story_arguments, bench_story
from .bench_maml import add_arguments as _maml_throughput_arguments, maml_throughput
from ..episodes import EpisodeSampler
from ..learners import ANIL, MAML, FineTuneBaseline, ProtoNet, episode_source, sinusoid_source
from ..learners import meta_evaluate
from ..models import MLP, ConvBackbone, conv4_classifier
from ..runtime import pick_device, seed_everything
from ..tasks import SinusoidFamily

__all__ = [
    "sinusoid", "glyphs", "LAKE_PUBLISHED", "lake", "train_loop", "BENCHMARKS", "build_parser", "main"
]


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


#: Published error rates on the official 20 runs, quoted next to ours (sources in benchmarks/README.md).
LAKE_PUBLISHED = ("published (Lake, Salakhutdinov & Tenenbaum 2015, Science 350:1332, on the official 20 runs "
                  "of the evaluation alphabets, learners trained on the full background set): people 4.5%, "
                  "Bayesian Program Learning 3.3% error. Lake et al. 2019 (Curr. Opin. Behav. Sci. 29:97) also "
                  "report models trained on the minimal sets; that figure is not checked here, so not quoted.")


def lake(args) -> dict:
    """Held-out-alphabet 20-way one-shot error (Lake-style) from the shipped minimal Omniglot sets.

    Meta-trains on ``--train-set`` (rotations as extra classes) after choosing hyperparameters on
    one held-out alphabet of that set; tests on within-alphabet runs (one drawer for the training
    images, another for the test images) from the other set's alphabets that the first lacks.
    With ``all_runs.zip`` in ``--root`` it also prints per-run and overall error on the official runs."""
    from .. import lake as L
    from ..errors import course_error
    from ..omniglot import DEFAULT_ROOT, SETS, load_omniglot, load_one_shot_runs, omniglot_available
    device = pick_device(args.device)
    root = args.root or DEFAULT_ROOT
    have = omniglot_available(root)
    train_name, test_name = args.train_set, L.OTHER_SET[args.train_set]
    if not have[f"{SETS[train_name]}.zip"]:
        raise course_error(f"{SETS[train_name]}.zip", f"a file in {root}", "no such file",
                           "restore data/omniglot/ from the repository, or pass --root to the folder holding it")
    seed_everything(args.seed)
    train_aug = load_omniglot(args.root, train_name, rotations=True)
    train_plain = load_omniglot(args.root, train_name)
    test_plain = load_omniglot(args.root, test_name) if have[f"{SETS[test_name]}.zip"] else None
    _header(f"lake: {args.method}, 20-way within-alphabet one-shot; meta-train on images_background_{train_name} "
            f"({train_aug.n_classes} classes with rotations)", device)
    out = {}
    runs = []
    if test_plain is not None:
        alphabets = L.held_out_alphabets(train_plain, test_plain)
        runs = L.alphabet_runs(test_plain, alphabets, args.runs, seed=L.CHECKPOINT_RUNS["seed"] + args.seed)
        print(f"held-out test runs: {len(runs)} from images_background_{test_name}'s {', '.join(alphabets)} "
              f"(not in the training set; shared Greek/Latin and alphabets under 20 characters left out)")
    else:
        print(f"images_background_{test_name}.zip not found: no held-out-alphabet runs")
    if args.method == "protonet":   # training ways, and whether to augment (random_affine)
        candidates = [dict(method="protonet", n_way=w, augment=a) for w in args.ways_grid for a in (False, True)]
    else:
        candidates = [dict(method=args.method, inner_lr=a) for a in args.inner_lr_grid]
    select_s = 60 * args.select_minutes
    base = dict(cpu_seconds=select_s, seed=args.seed, device=device)
    cpu0 = time.process_time()
    best, scores, val_alphabet = L.select_on_background(
        train_aug, train_plain, test_plain, [dict(base, **c) for c in candidates], n_val_runs=args.val_runs,
        seed=args.seed)
    print(f"hyperparameters chosen on {args.val_runs} validation runs of the held-out background alphabet "
          f"{val_alphabet} (trained {args.select_minutes:g} CPU min each on the other alphabets; "
          f"{time.process_time() - cpu0:.0f} CPU s in all):")
    for i, c in enumerate(candidates):
        print(f"  {c}: validation error {scores[i]}{'   <- chosen' if dict(base, **c) == best else ''}")
    final = L.train_learner(train_aug, list(range(train_aug.n_classes)),
                            **dict(best, cpu_seconds=60 * args.minutes))
    print(f"final {args.method}: {final.iterations} outer steps, {final.cpu_seconds:.0f} CPU s "
          f"({final.wall_seconds:.0f} s on the wall, torch threads: {torch.get_num_threads()}, load average "
          f"{os.getloadavg()[0]:.1f} at the end), "
          f"on all {len(train_aug.alphabets)} alphabets of images_background_{train_name}; settings {final.settings}")
    if runs:
        pix = L.evaluate_runs(L.NearestNeighbour(), runs)
        err = L.evaluate_runs(final.learner, runs)
        print(f"{'learner':<34} {'train CPU s':>11}   held-out-alphabet error (mean ± 95% CI over runs)")
        print(f"{'pixel nearest neighbour':<34} {0:>11}   {pix}")
        print(f"{args.method + ' (conv-4)':<34} {final.cpu_seconds:>11.0f}   {err}")
        out.update(heldout_error=err.mean, heldout_ci95=err.ci95, pixel_error=pix.mean, runs=len(runs))
    if args.save_checkpoint:
        if not runs or args.method != "protonet" or args.runs != L.CHECKPOINT_RUNS["n_runs"] or args.seed != 0:
            raise course_error("--save-checkpoint", f"a ProtoNet run with held-out runs, --runs "
                               f"{L.CHECKPOINT_RUNS['n_runs']} and --seed 0 (the runs a manifest records)",
                               f"method {args.method}, {len(runs)} runs, seed {args.seed}", "rerun with those settings")
        cmd = "OMP_NUM_THREADS=1 python -m utils.course bench " + " ".join(sys.argv[sys.argv.index("lake"):] if "lake" in sys.argv else ["lake"])
        path = L.save_trained(final, args.save_checkpoint, cmd, dict(
            heldout_error=round(err.mean, 6), heldout_ci95=round(err.ci95, 6), pixel_error=round(pix.mean, 6),
            runs=dict(L.CHECKPOINT_RUNS, train_set=train_name, test_set=test_name, alphabets=alphabets)),
            dict(validation_alphabet=val_alphabet, chosen={k: v for k, v in best.items() if k != "device"},
                 validation_errors={str({k: v for k, v in c.items()}): round(scores[i].mean, 4)
                                    for i, c in enumerate(candidates)}))
        print(f"saved {path.with_suffix('.pt')} and its manifest")
    if have["all_runs.zip"]:
        official = L.evaluate_runs(final.learner, load_one_shot_runs(root))
        for name, e in zip(official.names, official.errors):
            print(f"  official {name}: error {100 * e:5.1f}%")
        print(f"official runs, overall error: {100 * official.mean:.1f}% over {len(official.errors)} runs")
        out.update(official_error=official.mean, official_per_run=official.errors)
    else:
        print(f"all_runs.zip not in {root}: official runs skipped (download it with utils.omniglot.download_omniglot)")
    print(LAKE_PUBLISHED)
    out.update(method=args.method, iterations=final.iterations, cpu_seconds=final.cpu_seconds,
               wall_seconds=final.wall_seconds, chosen=best, validation_alphabet=val_alphabet)
    return out


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
              "train-loop": train_loop, "distributed": distributed, "class": bench_class,
              "story": bench_story}


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
        if name == "distributed":
            _distributed_arguments(s)
        if name == "class":
            _class_arguments(s)
        if name == "story":
            _story_arguments(s)
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
            s.add_argument("--root", default=None, help="folder with the Omniglot zips (default: the shipped data/omniglot)")
            s.add_argument("--train-set", choices=["small1", "small2"], default="small1",
                           help="minimal set to meta-train on; the other one provides the held-out alphabets")
            s.add_argument("--minutes", type=float, default=10.0, help="CPU minutes (process time) of the final training")
            s.add_argument("--select-minutes", type=float, default=2.0, help="CPU minutes per hyperparameter candidate")
            s.add_argument("--method", choices=["protonet", "maml", "fomaml"], default="protonet")
            s.add_argument("--ways-grid", type=int, nargs="+", default=[20, 60], help="ProtoNet training ways to choose from")
            s.add_argument("--inner-lr-grid", type=float, nargs="+", default=[0.03, 0.1, 0.4], help="MAML inner step sizes to choose from (0.4: Finn et al.'s 5-way Omniglot step)")
            s.add_argument("--runs", type=int, default=400, help="held-out-alphabet test runs")
            s.add_argument("--val-runs", type=int, default=100, help="validation runs per candidate")
            s.add_argument("--save-checkpoint", default=None, metavar="NAME",
                           help="ship the final ProtoNet as data/checkpoints/NAME (.pt + .json manifest)")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    result = BENCHMARKS[args.name](args)
    return 1 if isinstance(result, dict) and result.get("check") is False else 0


if __name__ == "__main__":
    sys.exit(main())
