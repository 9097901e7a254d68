"""One way to a trained learner: a registry of recipes and :func:`trained`.

A *recipe* says how to build a learner, how to train it, with which settings (FAST or full mode),
and where its shipped checkpoint lives. :func:`trained` then

1. loads the shipped checkpoint ``data/checkpoints/NAME`` when its key matches (the manifest's
   ``settings_hash`` equals the full-mode settings' hash and, where the recipe has one, its
   ``code_version`` equals the recipe's current code version);
2. else loads the settings-keyed cache (:func:`utils.cache.cached_torch`, ``data/cache``);
3. else trains with the recipe and caches the result atomically;

and says which in the returned :class:`TrainedInfo` (``info.how`` is ``"shipped"``, ``"cache"``
or ``"trained"``; ``info.source`` is a label for figures and tables).

>>> learner, info = trained("ch02-sine-maml", seed=0, fast=FAST, device=DEVICE)  # doctest: +SKIP
>>> info.source                                                                  # doctest: +SKIP
'loaded shipped checkpoint data/checkpoints/ch02-sine-maml-seed0 (full-mode training, 70,000 iterations x 25 tasks, seed 0)'

Taught in chapter 02, § 2 · Five ways to meet a new task.
"""
from __future__ import annotations

import fnmatch
import time
from dataclasses import dataclass, field
from typing import Callable

import torch

from .cache import cache_origin, cached_torch, settings_key
from .errors import course_error
from .runtime import pick_device, synchronize

__all__ = ["Recipe", "TrainedInfo", "recipe", "recipes", "trained"]


@dataclass(frozen=True)
class Recipe:
    """How to get one family of trained learners.

    Attributes:
        pattern: the recipe's name (``"ch02-sine-maml"``); ``fnmatch`` wildcards allowed
            (``"ch02-sine-*"``), then ``settings``/``make``/``train`` receive the requested name.
        settings: ``settings(name, fast) -> dict``, everything that changes the result.
        make: ``make(name, settings, seed, device) -> learner``, untrained.
        train: ``train(name, learner, settings, seed) -> list`` of per-iteration losses, or ``None``
            for a learner that only ships (e.g. the Omniglot ProtoNet, trained by ``bench lake``).
        checkpoint: ``checkpoint(name, seed) -> str`` file stem in ``data/checkpoints``, or ``None``.
        state: ``state(learner) -> dict`` what is saved (default ``learner.state_dict(resume=False)``).
        load: ``load(learner, state)`` restores it (default ``learner.load_state_dict(state)``).
        code_version: ``code_version() -> str`` that a shipped manifest's ``code_version`` must equal
            (``None``: only the settings hash is checked).
        code: further functions/classes whose source keys the cache.
        how_to_ship: the command that re-creates the shipped checkpoint (for error messages).
    """
    pattern: str
    settings: Callable
    make: Callable
    train: Callable | None
    checkpoint: Callable | None = None
    state: Callable | None = None
    load: Callable | None = None
    code_version: Callable | None = None
    code: tuple = ()
    how_to_ship: str = ""

    def save_state(self, learner) -> dict:
        if self.state:
            return self.state(learner)
        if isinstance(learner, torch.nn.Module):       # a trained model rather than a learner
            return {k: v.detach().cpu().clone() for k, v in learner.state_dict().items()}
        return learner.state_dict(resume=False)

    def load_state(self, learner, state: dict) -> None:
        (self.load or (lambda lrn, s: lrn.load_state_dict(s)))(learner, state)


@dataclass
class TrainedInfo:
    """What :func:`trained` did: ``how`` (``"shipped"``, ``"cache"``, ``"trained"``), ``source`` (a
    label for figures), the ``settings`` used, ``seconds`` of training (machine-dependent),
    ``curve`` (training losses; means of 20 when shipped), the shipped ``manifest`` (or ``{}``),
    ``extras`` (further per-iteration records the training returned, e.g. ``{"accuracy": [...]}``),
    and :attr:`iterations`, :attr:`from_cache`."""
    name: str
    how: str
    source: str
    settings: dict
    seconds: float = float("nan")
    curve: list = field(default_factory=list)
    manifest: dict = field(default_factory=dict)
    extras: dict = field(default_factory=dict)

    @property
    def from_cache(self) -> bool:
        """True unless the learner was trained in this run."""
        return self.how != "trained"

    def __str__(self) -> str:
        return self.source

    @property
    def iterations(self) -> int:
        """Training iterations (or epochs) behind the weights: the shipped manifest's count, else
        the length of the recorded curve."""
        if self.how == "shipped" and "iterations" in self.manifest:
            return int(self.manifest["iterations"])
        if self.how == "shipped" and "iterations" in self.settings:
            return int(self.settings["iterations"])
        return len(self.curve)


_REGISTRY: list[Recipe] = []


def recipe(pattern: str, settings, make, train, **options) -> Recipe:
    """Register (or replace) the recipe named ``pattern``; returns it. A notebook whose settings are
    computed in a cell registers its recipe here. Options: see :class:`Recipe`."""
    r = Recipe(pattern, settings, make, train, **options)
    _REGISTRY[:] = [old for old in _REGISTRY if old.pattern != pattern] + [r]
    return r


def recipes() -> list[str]:
    """The registered recipe names (patterns), sorted."""
    _register_course_recipes()
    return sorted(r.pattern for r in _REGISTRY)


def _find(name: str) -> Recipe:
    _register_course_recipes()
    for r in reversed(_REGISTRY):
        if fnmatch.fnmatchcase(name, r.pattern):
            return r
    raise course_error("recipe name", "one of " + ", ".join(recipes()), repr(name),
                       "use a registered name, or register yours with utils.trained.recipe(...)")


def _sizes(settings: dict) -> str:
    if "iterations" in settings and "meta_batch" in settings:
        return f"{settings['iterations']:,} iterations x {settings['meta_batch']} tasks"
    if "iterations" in settings:
        return f"{settings['iterations']:,} iterations"
    return "settings " + settings_key(settings)[:8]


def _shipped(r: Recipe, name: str, seed: int, device):
    """``(learner, info)`` from the shipped checkpoint when its key matches, else ``None``."""
    from .checkpoints import checkpoint_dir, load_checkpoint, read_manifest
    if r.checkpoint is None:
        return None
    stem = r.checkpoint(name, seed)
    if not (checkpoint_dir() / f"{stem}.json").exists():
        return None
    settings = r.settings(name, False)
    manifest = read_manifest(stem)
    if settings is not None and manifest.get("settings_hash") != settings_key(settings):
        return None
    if r.code_version is not None and manifest.get("code_version") != r.code_version():
        return None
    state, manifest = load_checkpoint(stem)
    learner = r.make(name, manifest["settings"] if settings is None else settings, seed, device)
    r.load_state(learner, state)
    shown = settings if settings is not None else dict(manifest["settings"], **(
        {"iterations": manifest["iterations"]} if "iterations" in manifest else {}))
    source = (f"loaded shipped checkpoint data/checkpoints/{stem} (full-mode training, {_sizes(shown)}, "
              f"seed {seed})")
    return learner, TrainedInfo(name, "shipped", source, shown, float(manifest.get("seconds", float("nan"))),
                                list(manifest.get("curve_means_of_20", [])), manifest)


def trained(name: str, *, seed: int = 0, fast: bool = False, device="auto", retrain: bool = False,
            refresh: bool = False, settings: dict | None = None, make=None, train=None, code=()):
    """``(learner, info)``: the trained learner of recipe ``name`` and a :class:`TrainedInfo`.

    A chapter that trains a learner of its own (settings computed in its cells) passes the recipe
    inline: ``trained("ch01-protonet", settings={...}, make=make_protonet, train=train_protonet,
    seed=SEED, device=device)``, where ``make()`` builds the untrained learner (or model) and
    ``train(learner)`` trains it in place and returns its per-iteration losses, or a dict
    ``{"curve": losses, "accuracy": [...], ...}`` whose other entries come back in ``info.extras``.
    ``code``: further functions whose source keys the cache (with ``make``'s and ``train``'s).

    Args:
        name: a registered recipe name (:func:`recipes` lists them), e.g. ``"ch02-sine-maml"``, or
            the cache name of an inline recipe.
        seed: the training seed (also picks the shipped checkpoint ``...-seed{seed}``).
        fast: the chapter's FAST knob: a learner trained here uses the FAST settings.
        device: ``"auto"`` (CUDA, then MPS, then CPU) or an explicit device.
        retrain: skip the shipped checkpoint (the chapter's ``RETRAIN`` knob).
        refresh: when not loading a shipped checkpoint, skip the cache and train (``REFRESH_CACHE``).

    Unknown names raise a :class:`~utils.errors.CourseError` listing the known ones.

    Taught in chapter 02, § 2 · Five ways to meet a new task.
    """
    r = _inline(name, settings, make, train, code) if make is not None or train is not None else _find(name)
    device = pick_device(device)
    if not retrain:
        got = _shipped(r, name, seed, device)
        if got is not None:
            return got
    settings = r.settings(name, fast)
    if r.train is None:
        raise course_error(f"trained learner {name!r}", "a shipped checkpoint whose key matches this code",
                           "none (this recipe only ships)", r.how_to_ship or "re-create the checkpoint")
    learner = r.make(name, settings, seed, device)
    built = []

    def build():
        start = time.perf_counter()
        out = r.train(name, learner, settings, seed)
        synchronize(device)
        built.append(True)
        record = dict(out) if isinstance(out, dict) else {"curve": out}
        curve = [float(v) for v in (record.pop("curve", None) or [])]
        return {"state": r.save_state(learner), "seconds": time.perf_counter() - start, "curve": curve,
                "extras": {k: [float(v) for v in vals] for k, vals in record.items()}}

    classes = [c for c in type(learner).__mro__ if c.__module__.startswith("utils.")]
    key = dict(recipe=r.pattern, name=name, settings=settings, seed=seed, device=device.type)
    saved = cached_torch(f"{name}-seed{seed}", key, build, refresh=refresh,
                         code=(r.settings, r.make, r.train, *classes, *r.code))
    if not built:
        r.load_state(learner, saved["state"])
    how = "trained" if built else "cache"
    where = ("trained in this run" if built else "loaded from data/checkpoints/cache (shipped FAST model)"
             if cache_origin(f"{name}-seed{seed}") == "shipped" else "loaded from data/cache")
    source = f"{where} ({_sizes(settings)}{', FAST budget' if fast else ''}, seed {seed})"
    return learner, TrainedInfo(name, how, source, settings, float(saved["seconds"]), saved["curve"],
                                extras=saved.get("extras", {}))


def _inline(name: str, settings, make, train, code) -> Recipe:
    """The one-off recipe of a chapter's own learner (see :func:`trained`)."""
    if make is None or train is None or settings is None:
        missing = [k for k, v in (("settings", settings), ("make", make), ("train", train)) if v is None]
        raise course_error(f"inline recipe {name!r}", "settings=, make= and train= together",
                           "no " + ", ".join(missing), "pass all three, or use a registered recipe name alone")
    if not isinstance(settings, dict):
        raise course_error("settings", "a dict of everything that changes the result", type(settings).__name__,
                           "pass settings=dict(...)")
    return Recipe(name, settings=lambda n, fast: settings, make=lambda n, s, seed, device: make(),
                  train=lambda n, learner, s, seed: train(learner), code=(make, train, *code))


# ----------------------------------------------------------------------------- the course's recipes

_registered = []


def _register_course_recipes() -> None:
    """Register the recipes of the chapters' shipped learners (once, lazily: no import cycle)."""
    if _registered:
        return
    _registered.append(True)
    from . import families as fam
    from . import sinusoid_lab as sine
    from .sinusoid_lab import sine_code_version, sine_name
    from .checkpoints import learner_state, load_learner_state

    slugs = {sine_name(m, 0)[len("ch02-sine-"):-len("-seed0")]: m for m in (*sine.SINE_METHODS, sine.REPTILE_SGD)}
    for slug, method in slugs.items():
        recipe(f"ch02-sine-{slug}",
               settings=lambda name, fast, m=method: sine.sine_recipe(m, fast=fast),
               make=lambda name, s, seed, device: sine.make_sine_learner(s, seed, device),
               train=lambda name, lrn, s, seed: sine.train_sine_learner(lrn, s, seed),
               checkpoint=lambda name, seed, m=method: sine_name(m, seed),
               code_version=sine_code_version, code=(sine.sine_recipe, sine.make_sine_learner, sine.train_sine_learner),
               how_to_ship=f"python -m utils.course train ch02-sine --methods '{method}'")
    for group, (settings_of, make, train) in fam.GROUPS.items():
        recipe(f"ch03-{group}",
               settings=lambda name, fast, f=settings_of: f(fast=fast),
               make=lambda name, s, seed, device, f=make: f(s, seed, device),
               train=lambda name, lrn, s, seed, f=train: f(lrn, s, seed),
               checkpoint=lambda name, seed, g=group: fam.checkpoint_name(g, seed),
               state=learner_state, load=load_learner_state, code=(settings_of, make, train),
               how_to_ship=f"python -m utils.course train ch03-{group}")

    from . import protonet_ranks as pr
    recipe(pr.NAME, settings=lambda name, fast: pr.protonet_recipe(fast=fast),
           make=lambda name, s, seed, device: pr.make_protonet(s, seed, device),
           train=lambda name, lrn, s, seed: pr.train_protonet(lrn, s, seed),
           checkpoint=lambda name, seed: pr.checkpoint_name(seed), code_version=pr.protonet_code_version,
           state=learner_state, load=load_learner_state,
           code=(pr.protonet_recipe, pr.make_protonet, pr.glyph_episodes, pr.train_protonet),
           how_to_ship=f"torchrun --nproc_per_node 2 -m utils.course train {pr.NAME}")

    def make_protonet(name, settings, seed, device):
        from .lake import make_learner
        learner = make_learner("protonet", device=device)
        learner.train_mode(False)
        return learner

    from .lake import CHECKPOINT, training_code_version
    recipe(CHECKPOINT, settings=lambda name, fast: None, make=make_protonet, train=None,
           checkpoint=lambda name, seed: CHECKPOINT, code_version=training_code_version,
           state=lambda lrn: {k: v.detach().cpu() for k, v in lrn.model.state_dict().items()},
           load=lambda lrn, s: lrn.model.load_state_dict(s),
           how_to_ship="python -m utils.course bench lake --save-checkpoint")
