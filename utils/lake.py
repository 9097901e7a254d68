"""Lake-style one-shot classification on held-out Omniglot alphabets, from the shipped minimal sets.

Lake, Salakhutdinov & Tenenbaum (2015) test one-shot learning with 20-way *within-alphabet* runs:
20 characters of one alphabet, one drawing of each by one person (the "training" images) and one
drawing of each by another person (the "test" images); every test image is matched to one of the
20 training images. This module builds such runs from the alphabets of one minimal background set
that the other set lacks (Greek and Latin are in both, so they are left out), and trains learners
on the other set, so every test alphabet is new to the learner.

Hyperparameters are chosen on **validation runs built the same way from one alphabet of the
training set held out from training** (:func:`split_background`), never on the test runs nor on
the official ``all_runs.zip``. Budgets are in CPU seconds of this process
(``time.process_time``: all threads), so a busy machine slows the clock on the wall, not the
amount of training.

Used by ``python -m utils.course bench lake`` and by chapters 01–03's "real Omniglot" cells.
Shapes: images ``(M, 1, 28, 28)`` in [0, 1], ink ≈ 1 (:mod:`utils.omniglot`).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.nn import functional as F

from .episodes import EpisodeSampler
from .errors import course_error
from .learners import MAML, ProtoNet
from .models import ConvBackbone, conv4_classifier
from .omniglot import OmniglotSet, OneShotRun
from .stats import mean_ci95

#: The other minimal set of each: train on the key, test on the held-out alphabets of the value.
OTHER_SET = {"small1": "small2", "small2": "small1"}


def alphabet_classes(data: OmniglotSet, alphabets) -> list[int]:
    """Class ids of ``data`` whose alphabet is in ``alphabets`` (names); all rotations included."""
    wanted = [data.alphabets.index(a) for a in alphabets if a in data.alphabets]
    missing = [a for a in alphabets if a not in data.alphabets]
    if missing:
        raise course_error("alphabets", f"names among {data.alphabets}", repr(missing),
                           "use the alphabet names of this set")
    return [c for c in range(data.n_classes) if int(data.alphabet_of_class[c]) in wanted]


def held_out_alphabets(train: OmniglotSet, test: OmniglotSet, ways: int = 20) -> list[str]:
    """The alphabets of ``test`` that ``train`` lacks and that have at least ``ways`` characters
    (Tagalog has 17, so it cannot host a 20-way within-alphabet run)."""
    new = [a for a in test.alphabets if a not in train.alphabets]
    counts = {a: len(alphabet_classes(test, [a])) for a in new}
    ok = [a for a in new if counts[a] >= ways]
    if not ok:
        raise course_error("held-out alphabets", f"an alphabet of the test set, absent from the training set, "
                           f"with at least {ways} characters", f"{counts}",
                           "use the other minimal set (or the evaluation set) as the test set, or fewer ways")
    return ok


def split_background(data: OmniglotSet, other: OmniglotSet | None = None, ways: int = 20) -> tuple[list, str]:
    """Hold out one alphabet of a background set for validation: ``(training alphabets, validation
    alphabet)``. The validation alphabet is the largest one that ``other`` (the test set) lacks, so
    that it is as unlike the test alphabets' neighbours as any, and has room for ``ways``-way runs."""
    sizes = {a: len(alphabet_classes(data, [a])) for a in data.alphabets}
    pool = [a for a in data.alphabets if (other is None or a not in other.alphabets) and sizes[a] >= ways]
    if not pool or len(data.alphabets) < 2:
        raise course_error("validation alphabet", f"an alphabet with at least {ways} characters to hold out",
                           f"{sizes}", "use a larger background set or fewer ways")
    val = max(pool, key=lambda a: (sizes[a], a))
    return [a for a in data.alphabets if a != val], val


def alphabet_runs(data: OmniglotSet, alphabets, n_runs: int, ways: int = 20, seed: int = 0) -> list[OneShotRun]:
    """``n_runs`` within-alphabet ``ways``-way one-shot runs, as in the official benchmark.

    Each run takes one alphabet (in turn), ``ways`` of its characters and two different drawers:
    the first drew the ``ways`` training images ``(ways, 1, 28, 28)``, the second the test images
    (one per character, shuffled; ``test_targets[j]`` is the training image test image ``j``
    shows). ``data`` must be loaded without rotations and carry ``drawers``.
    """
    if data.drawers is None or bool((data.drawers < 0).any()):
        raise course_error("Omniglot set", "images with drawer ids (file names <id>_<drawer>.png)",
                           "no drawer ids", "load the official zips with utils.omniglot.load_omniglot")
    if any(n.endswith(("rot090", "rot180", "rot270")) for n in data.class_names):
        raise course_error("Omniglot set", "the characters as drawn (rotations=False)",
                           "a set with rotated copies as classes", "load it with rotations=False")
    rng = np.random.default_rng(seed)
    runs = []
    for r in range(n_runs):
        alphabet = alphabets[r % len(alphabets)]
        classes = alphabet_classes(data, [alphabet])
        if len(classes) < ways:
            raise course_error(f"alphabet {alphabet}", f"at least {ways} characters", str(len(classes)),
                               "choose alphabets with enough characters or fewer ways")
        chars = rng.choice(classes, ways, replace=False)
        common = set(data.drawers[data.labels == int(chars[0])].tolist())
        for c in chars[1:]:
            common &= set(data.drawers[data.labels == int(c)].tolist())
        d_train, d_test = rng.choice(sorted(common), 2, replace=False)
        pick = lambda c, d: int(torch.nonzero((data.labels == int(c)) & (data.drawers == int(d)))[0])
        order = rng.permutation(ways)
        train = data.images[[pick(c, d_train) for c in chars]]
        test = data.images[[pick(chars[i], d_test) for i in order]]
        runs.append(OneShotRun(f"{alphabet}-{r + 1:03d}", train, test, torch.as_tensor(order)))
    return runs


class NearestNeighbour:
    """Each test item takes the label of the nearest training item (Euclidean), on whatever it is
    given. On pixels it is the no-learning floor (the release's own baseline uses a modified
    Hausdorff distance instead: 38.8% error on the official runs, its demo script); on a ProtoNet's
    embeddings it is exactly ProtoNet's one-shot rule (with one shot, the prototype is the example)."""

    def evaluate_task(self, support_x, support_y, query_x, query_y, steps=None):
        d = torch.cdist(query_x.flatten(1).float(), support_x.flatten(1).float())
        acc = float((support_y[d.argmin(1)] == query_y).float().mean())
        return float("nan"), acc


@dataclass
class RunErrors:
    """Per-run error rates (fractions) with their mean and 95% CI over runs."""
    names: list
    errors: list
    mean: float = field(init=False)
    ci95: float = field(init=False)

    def __post_init__(self):
        self.mean, self.ci95 = mean_ci95(self.errors) if len(self.errors) > 1 else (float(self.errors[0]), float("nan"))

    def __str__(self) -> str:
        return f"{100 * self.mean:.1f}% ± {100 * self.ci95:.1f}% error over {len(self.errors)} runs"


def evaluate_runs(learner, runs) -> RunErrors:
    """Error of ``learner`` (anything with ``evaluate_task``) on each run; one-shot, no tuning."""
    errors = []
    for run in runs:
        _, acc = learner.evaluate_task(run.train_images, torch.arange(len(run.train_images)),
                                       run.test_images, run.test_targets)
        errors.append(1.0 - acc)
    return RunErrors([r.name for r in runs], errors)


@dataclass
class Trained:
    """A learner and what its training cost: outer steps, CPU seconds (all threads), wall seconds."""
    learner: object
    settings: dict
    iterations: int
    cpu_seconds: float
    wall_seconds: float
    curve: list


def random_affine(images: torch.Tensor, generator: torch.Generator, degrees: float = 10.0,
                  scale: tuple = (0.9, 1.1), shift: float = 0.08) -> torch.Tensor:
    """Each image ``(B, 1, H, W)`` turned, scaled and shifted at random (shift in units of half the
    image side), as a drawer's hand would vary: a training-time augmentation, never used in tests."""
    b = images.shape[0]
    u = lambda lo, hi: lo + (hi - lo) * torch.rand(b, generator=generator)
    angle = u(-degrees, degrees) * torch.pi / 180
    s = u(*scale)
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0], theta[:, 0, 1] = torch.cos(angle) / s, -torch.sin(angle) / s
    theta[:, 1, 0], theta[:, 1, 1] = torch.sin(angle) / s, torch.cos(angle) / s
    theta[:, :, 2] = (torch.rand(b, 2, generator=generator) * 2 - 1) * shift
    grid = F.affine_grid(theta.to(images), list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, align_corners=False, padding_mode="zeros")


#: The learners :func:`train_learner` builds: ProtoNet (Snell et al. 2017) and MAML (Finn et al. 2017),
#: second- or first-order, all on the conv-4 backbone with 64 channels.
METHODS = ("protonet", "maml", "fomaml")


def make_learner(method: str, n_way: int = 20, lr: float = 1e-3, inner_lr: float = 0.4, eval_steps: int = 3,
                 device="cpu"):
    """A fresh learner of ``method`` (one of :data:`METHODS`). MAML's head has ``n_way`` outputs and its
    BatchNorm uses batch statistics (the query batch is normalised together: transductive)."""
    if method == "protonet":
        return ProtoNet(ConvBackbone(hidden=64), lr=lr, device=device)
    if method in ("maml", "fomaml"):
        return MAML(conv4_classifier(n_way, hidden=64, track_running_stats=False), inner_lr=inner_lr,
                    inner_steps=1, eval_steps=eval_steps, first_order=method == "fomaml", outer_lr=lr,
                    device=device)
    raise course_error("method", f"one of {METHODS}", repr(method), "pick one of those")


def train_learner(data: OmniglotSet, classes, *, method: str = "protonet", cpu_seconds: float, n_way: int = 20,
                  q_query: int = 5, lr: float = 1e-3, meta_batch: int | None = None, inner_lr: float = 0.4,
                  eval_steps: int = 3, augment: bool = False, seed: int = 0, device="cpu",
                  max_iterations: int | None = None) -> Trained:
    """Meta-train a :func:`make_learner` on 1-shot ``n_way`` episodes of ``classes`` (rotated copies
    count as classes) for ``cpu_seconds`` of process CPU time (or ``max_iterations`` outer steps).
    ProtoNet takes one episode per step, MAML ``meta_batch`` (default 4). The outer step size
    halves at 50% and 75% of the budget (ProtoNet's recipe halves it on a fixed schedule too).
    ``augment``: every training image passes through :func:`random_affine` first."""
    torch.manual_seed(seed)
    learner = make_learner(method, n_way, lr, inner_lr, eval_steps, device)
    meta_batch = meta_batch or (1 if method == "protonet" else 4)
    per_class = int(torch.bincount(data.labels)[torch.as_tensor(classes)].min())
    q_query = max(1, min(q_query, per_class - 1))  # small stand-ins hold fewer drawings than Omniglot's 20
    sampler = EpisodeSampler(data.images, data.labels, n_way, 1, q_query, classes=classes, seed=seed)
    gen = torch.Generator().manual_seed(seed + 12345)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    curve, halved = [], 0
    while True:
        used = time.process_time() - cpu0
        if used >= cpu_seconds or (max_iterations is not None and len(curve) >= max_iterations):
            break
        if halved < 2 and used >= cpu_seconds * (0.5 + 0.25 * halved):
            halved += 1
            for g in learner.optimizer.param_groups:
                g["lr"] = lr * 0.5 ** halved
        e = sampler.sample_batch(meta_batch)
        sx, qx = e.support_x, e.query_x
        if augment:
            sx = random_affine(sx.flatten(0, 1), gen).view_as(sx)
            qx = random_affine(qx.flatten(0, 1), gen).view_as(qx)
        batch = tuple(t.to(learner.device) for t in (sx, e.support_y, qx, e.query_y))
        curve.append(learner.meta_step(batch)[0])
    settings = dict(method=method, backbone="conv4-64", n_way=n_way, k_shot=1, q_query=q_query, lr=lr,
                    lr_halved_at=(0.5, 0.75), meta_batch=meta_batch, augment=augment, seed=seed,
                    cpu_seconds=cpu_seconds)
    if method != "protonet":
        settings.update(inner_lr=inner_lr, inner_steps=1, eval_steps=eval_steps)
    return Trained(learner, settings, len(curve), time.process_time() - cpu0, time.perf_counter() - wall0, curve)


def select_on_background(train_aug: OmniglotSet, train_plain: OmniglotSet, test_plain: OmniglotSet | None,
                         candidates, train_fn=None, *, n_val_runs: int = 100, ways: int = 20, seed: int = 0):
    """Choose among ``candidates`` (dicts of keyword arguments for ``train_fn``, default
    :func:`train_learner`) on validation runs.

    ``train_aug`` is the background set with rotations (training pool), ``train_plain`` the same
    set without (for validation runs). One alphabet is held out (:func:`split_background`); each
    candidate is trained on the others and scored by its mean error on ``n_val_runs`` within-
    alphabet runs of the held-out one. Returns ``(best candidate, {index: RunErrors}, validation
    alphabet)``. The test runs are never touched here."""
    train_alphabets, val_alphabet = split_background(train_plain, test_plain, ways)
    pool = alphabet_classes(train_aug, train_alphabets)
    val_runs = alphabet_runs(train_plain, [val_alphabet], n_val_runs, ways, seed=seed + 7)
    train_fn = train_fn or train_learner
    scores = {}
    for i, cand in enumerate(candidates):
        trained = train_fn(train_aug, pool, **cand)
        scores[i] = evaluate_runs(trained.learner, val_runs)
    best = min(scores, key=lambda i: scores[i].mean)
    return candidates[best], scores, val_alphabet


#: The shipped checkpoint of the benchmark's chosen learner (``data/checkpoints/NAME.pt`` + ``.json``).
CHECKPOINT = "omniglot-protonet-small1"
#: Seed and count of the held-out runs whose error a checkpoint's manifest records (and loading reproduces).
CHECKPOINT_RUNS = dict(seed=1, n_runs=400)


def training_code_version() -> str:
    """Hash of the code that trains a checkpoint (:func:`train_learner`, :func:`make_learner`,
    :func:`random_affine`): a manifest whose ``code_version`` differs was trained by older code."""
    from .cache import code_version
    return code_version(train_learner, make_learner, random_affine)


def save_trained(trained: Trained, name: str, command: str, metric: dict, extra: dict | None = None):
    """Ship ``trained`` (a ProtoNet) as ``data/checkpoints/NAME``: its encoder's weights and a manifest
    with the command, settings, code version, the first training losses and ``metric``."""
    from .cache import settings_key
    from .checkpoints import save_checkpoint
    manifest = dict(name=name, command=command, settings=trained.settings, settings_hash=settings_key(trained.settings),
                    seed=trained.settings["seed"], code_version=training_code_version(),
                    curve_head=[round(v, 6) for v in trained.curve[:50]], iterations=trained.iterations,
                    cpu_seconds=round(trained.cpu_seconds, 1), wall_seconds=round(trained.wall_seconds, 1),
                    threads=torch.get_num_threads(), torch=torch.__version__, metric=metric,
                    created=time.strftime("%Y-%m-%d"), **(extra or {}))
    state = {k: v.detach().cpu() for k, v in trained.learner.model.state_dict().items()}
    return save_checkpoint(name, state, manifest)


def heldout_set(train_set: str = "small1", ways: int = 5) -> OmniglotSet:
    """The alphabets of the other shipped minimal set that ``train_set`` lacks (and that have at
    least ``ways`` characters), as drawn (no rotations), relabelled ``0..C-1``."""
    from .omniglot import load_omniglot
    train, test = load_omniglot(background=train_set), load_omniglot(background=OTHER_SET[train_set])
    alphabets = held_out_alphabets(train, test, ways)
    classes = alphabet_classes(test, alphabets)
    keep = torch.isin(test.labels, torch.tensor(classes))
    remap = torch.full((test.n_classes,), -1, dtype=torch.long)
    remap[torch.tensor(classes)] = torch.arange(len(classes))
    alpha_ids = [test.alphabets.index(a) for a in alphabets]
    return OmniglotSet(test.images[keep], remap[test.labels[keep]],
                       torch.tensor([alpha_ids.index(int(test.alphabet_of_class[c])) for c in classes]),
                       [test.class_names[c] for c in classes], alphabets, test.drawers[keep])


def heldout_features(learner, manifest: dict, train_set: str = "small1", ways: int = 5) -> OmniglotSet:
    """:func:`heldout_set` with each image replaced by ``learner``'s embedding ``(M, D, 1, 1)``
    (``learner.model`` in eval mode). Cached under ``data/cache`` (written atomically), keyed by the
    checkpoint's manifest and by both zips' SHA-256, so chapters 01–03 embed the images once."""
    from .cache import cached_torch
    from .omniglot import SETS, SHIPPED_SHA256
    pix = heldout_set(train_set, ways)

    def build():
        model = learner.model.eval()
        with torch.no_grad():
            return torch.cat([model(x.to(learner.device)).cpu() for x in pix.images.split(512)])
    key = dict(checkpoint=manifest.get("settings_hash"), code=manifest.get("code_version"),
               created=manifest.get("created"), iterations=manifest.get("iterations"),
               sets=[SHIPPED_SHA256[f"{SETS[n]}.zip"] for n in (train_set, OTHER_SET[train_set])],
               alphabets=pix.alphabets)
    emb = cached_torch("omniglot-heldout-features", key, build)
    return OmniglotSet(emb.view(len(emb), -1, 1, 1), pix.labels, pix.alphabet_of_class, pix.class_names,
                       pix.alphabets, pix.drawers)


def headline(learner, manifest: dict, n_episodes: int = 200, n_runs: int = 100, n_way: int = 5,
             q_query: int = 10, seed: int = 0) -> dict:
    """The shipped ProtoNet ``learner`` (:data:`CHECKPOINT` with its ``manifest``, meta-trained on the
    minimal set ``small1`` by ``bench lake``; get both from
    ``utils.trained.trained(CHECKPOINT, device=...)``) on alphabets it never saw, next to pixels;
    the figure chapters 01 and 02 show.

    Returns ``{"fiveway": {"ProtoNet": MetaResult, "pixels": MetaResult}`` (``n_way``-way 1-shot
    accuracy over ``n_episodes`` episodes of the held-out alphabets of ``small2``),
    ``"within": {"ProtoNet": RunErrors, "pixels": RunErrors}`` (20-way within-alphabet one-shot
    error over ``n_runs`` Lake-style runs), ``"manifest"``, ``"alphabets"``, ``"learner"``,
    ``"images"`` (the held-out set's pixels, :func:`heldout_set`)}. Both learners meet the same
    episodes and runs (same seeds, same labels and drawers)."""
    from .learners import episode_source
    from .learners import meta_evaluate
    feats = heldout_features(learner, manifest, ways=n_way)
    pix = heldout_set(ways=n_way)
    out = dict(fiveway={}, within={}, manifest=manifest, alphabets=feats.alphabets, learner=learner, images=pix)
    within_alphabets = [a for a in feats.alphabets if len(alphabet_classes(feats, [a])) >= 20]
    for name, data in (("ProtoNet", feats), ("pixels", pix)):
        sampler = EpisodeSampler(data.images, data.labels, n_way, 1, q_query, seed=seed + 11)
        out["fiveway"][name] = meta_evaluate(NearestNeighbour(), episode_source(sampler), n_episodes)
        out["within"][name] = evaluate_runs(NearestNeighbour(),
                                            alphabet_runs(data, within_alphabets, n_runs, 20, seed=seed + 1))
    return out


__all__ = ["OTHER_SET", "alphabet_classes", "held_out_alphabets", "split_background", "alphabet_runs",
           "NearestNeighbour", "RunErrors", "CHECKPOINT", "CHECKPOINT_RUNS", "save_trained",
           "training_code_version", "heldout_set", "heldout_features", "headline", "evaluate_runs", "Trained", "METHODS", "random_affine", "make_learner", "train_learner",
           "select_on_background"]
