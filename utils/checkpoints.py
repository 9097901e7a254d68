"""Small trained checkpoints shipped with the course under ``data/checkpoints/``.

FAST mode must not show comparisons between learners that were trained too briefly to mean
anything. Chapters therefore load learners that the course's own training code trained with the
full-mode budget (chapter 02's sinusoid learners: a few kB each), and label what they show
"loaded from data/checkpoints (full-mode training, N iterations)". A ``RETRAIN`` knob in the
chapter's parameters cell trains instead.

Each checkpoint ``NAME.pt`` (the learner's state, ``learner.state_dict(resume=False)``) has a
manifest ``NAME.json`` next to it:

* ``command`` — the command that produced it (``python -m utils.course train ...``);
* ``settings`` and ``settings_hash`` — the recipe (:func:`utils.sinusoid_lab.sine_recipe`);
* ``seed``; ``code_version`` — :func:`utils.sinusoid_lab.sine_code_version` (the recipe's logic);
* ``metric`` — what the full run measured on validation tasks (query MSE after 1 and 10 steps
  for each step size of :data:`utils.sinusoid_lab.SINE_STEP_GRID`);
* ``curve_head`` — the first training losses, which a short retrain must reproduce
  (``tests/test_checkpoints.py``); ``curve_means_of_20`` — the whole training curve, as means of
  20 iterations (for the chapter's figure); ``seconds`` — the training wall time (machine-dependent).

Produce them with ``OMP_NUM_THREADS=1 python -m utils.course train ch02-sine --seeds 0 1 2``.

``data/checkpoints/cache/`` holds, besides, the models a FAST run of chapters 01 and 02 trains, as
:func:`utils.cache.cached_torch` files (keyed by settings and code versions, so they are loaded only
by the code that trained them): ``python -m utils.course ship-cache`` re-creates them.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch

from .cache import PROJECT_ROOT, atomic_torch_save, atomic_write_text, note_artefact, settings_key
from .errors import course_error
from .runtime import CACHE_DIR_ENV, CHECKPOINT_DIR_ENV, SHIPPED_CACHE_DIR_ENV

__all__ = [
    "CURVE_HEAD", "checkpoint_dir", "logic_source", "training_manifest", "save_checkpoint", "read_manifest",
    "load_checkpoint",
    "checkpoint_label", "SHIPPED_CACHE", "ship_cache", "learner_state", "load_learner_state"
]

#: How many first training losses a manifest keeps for the retrain check.
CURVE_HEAD = 50


def checkpoint_dir() -> Path:
    """``$COURSE_CHECKPOINT_DIR`` if set (tests), else ``<project>/data/checkpoints``."""
    return Path(os.environ.get(CHECKPOINT_DIR_ENV, PROJECT_ROOT / "data" / "checkpoints"))


def logic_source(fn) -> str:
    """``fn``'s source without docstrings, comments or import statements (``ast`` round trip): what
    changes behaviour. Imports are left out because they say where a function lives, not what it
    computes: moving an engine module (as the layout of issue 15 did) must not retire a checkpoint."""
    import ast
    import inspect
    import textwrap
    tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and body
                and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
        if body and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            node.body = [b for b in node.body if not isinstance(b, (ast.Import, ast.ImportFrom))] or [ast.Pass()]
    return ast.unparse(tree)


def training_manifest(name: str, command: str, settings: dict, seed: int, curve, seconds: float, **extra) -> dict:
    """The manifest every ``course train`` writer saves: ``name``, ``command``, ``settings`` and their
    hash, ``seed``, ``iterations`` and the curve (``curve_head``: the first :data:`CURVE_HEAD` losses,
    ``curve_means_of_20``), ``seconds`` of training, the torch version, threads and date; ``extra``
    adds the writer's own fields (``code_version``, ``metric``, ``world_size``...)."""
    import datetime
    curve = [float(v) for v in curve]
    return dict(name=name, command=command, settings=settings, settings_hash=settings_key(settings), seed=seed,
                iterations=len(curve), curve_head=[round(v, 6) for v in curve[:CURVE_HEAD]],
                curve_means_of_20=[round(sum(curve[i:i + 20]) / len(curve[i:i + 20]), 5)
                                   for i in range(0, len(curve), 20)],
                seconds=round(seconds, 1), torch=torch.__version__, threads=torch.get_num_threads(),
                created=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d"), **extra)


def save_checkpoint(name: str, state: dict, manifest: dict) -> Path:
    """Write ``NAME.pt`` and ``NAME.json`` atomically; returns the manifest's path. In a run launched
    on several processes (torchrun sets ``RANK``) only rank 0 writes; the others return the path."""
    d = checkpoint_dir()
    if os.environ.get("RANK", "0") != "0":
        return d / f"{name}.json"
    atomic_torch_save(state, d / f"{name}.pt")
    return atomic_write_text(d / f"{name}.json", json.dumps(manifest, indent=1, sort_keys=True) + "\n")


def read_manifest(name: str) -> dict:
    """The manifest of checkpoint ``name`` (clear error if it is missing)."""
    path = checkpoint_dir() / f"{name}.json"
    if not path.exists():
        raise course_error(f"checkpoint {name}", f"{path} and {name}.pt", "no such file",
                           "set RETRAIN = True in the parameters cell, or run "
                           "`OMP_NUM_THREADS=1 python -m utils.course train ch02-sine`")
    return json.loads(path.read_text())


def load_checkpoint(name: str, settings: dict | None = None) -> tuple[dict, dict]:
    """``(state, manifest)`` of checkpoint ``name``.

    With ``settings``, the manifest's settings hash must equal ``settings_key(settings)``: a
    checkpoint trained with other settings than the chapter asks for is refused (what to do:
    retrain). The caller restores the state with ``learner.load_state_dict(state)``.
    """
    manifest = read_manifest(name)
    if settings is not None and manifest["settings_hash"] != settings_key(settings):
        raise course_error(f"checkpoint {name}", f"settings {settings}",
                           f"settings {manifest['settings']} (hash {manifest['settings_hash']})",
                           "the recipe changed since the checkpoint was trained: set RETRAIN = True, "
                           f"or re-create it with `{manifest['command']}`")
    path = checkpoint_dir() / f"{name}.pt"
    state = torch.load(path, weights_only=True)
    note_artefact(_shown(path.with_suffix("")), "shipped", path.name)
    return state, manifest


def _shown(path: Path) -> str:
    """``path`` relative to the project (``data/checkpoints/NAME``) when inside it, else as given."""
    try:
        return path.resolve().relative_to(PROJECT_ROOT).as_posix()
    except ValueError:
        return str(path)


def checkpoint_label(manifest: dict) -> str:
    """``loaded from data/checkpoints (full-mode training, N iterations)``, for figures/tables."""
    s = manifest["settings"]
    return (f"loaded from data/checkpoints (full-mode training, {s['iterations']:,} iterations "
            f"x {s['meta_batch']} tasks, seed {manifest['seed']})")


#: Cache-file prefixes of the FAST-mode models shipped in ``data/checkpoints/cache`` (per chapter).
SHIPPED_CACHE = {"01": ("ch01-",), "02": ("ch02-glyphs-",), "03": ("ch03-glyphs-",)}


def ship_cache(chapters=("01", "02", "03")) -> list[Path]:
    """Run ``chapters`` in FAST mode with an empty cache and copy the models they trained (files
    named by :data:`SHIPPED_CACHE`) to :func:`utils.cache.shipped_cache_dir`, replacing the old ones.

    Run it after changing a chapter's training code or the engine classes it keys on: a shipped file
    whose key no longer matches is never loaded (the chapter trains instead, correct but slower).
    """
    import shutil
    import subprocess
    import tempfile
    from .cache import shipped_cache_dir
    unknown = [c for c in chapters if c not in SHIPPED_CACHE]
    if unknown:
        raise course_error("chapters", f"some of {sorted(SHIPPED_CACHE)}", repr(unknown), "ship only those chapters")
    out = shipped_cache_dir()
    out.mkdir(parents=True, exist_ok=True)
    written = []
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, **{CACHE_DIR_ENV: tmp, SHIPPED_CACHE_DIR_ENV: str(Path(tmp) / "none")})
        subprocess.run([sys.executable, "-m", "utils.course", "run", "--only", *chapters], cwd=PROJECT_ROOT,
                       env=env, check=True)
        for ch in chapters:
            for prefix in SHIPPED_CACHE[ch]:
                for old in out.glob(f"{prefix}*.pt"):
                    old.unlink()
                for new in sorted(Path(tmp).glob(f"{prefix}*.pt")):
                    written.append(Path(shutil.copyfile(new, out / new.name)))
    return written


def learner_state(learner) -> dict:
    """Model weights (CPU copies) and, for Meta-SGD, the learned step sizes of any learner with a
    ``model`` (also those outside :mod:`utils.learners`; learners of :mod:`utils.learners` have
    ``learner.state_dict(resume=False)``, the same format)."""
    state = {"model": {k: v.detach().cpu().clone() for k, v in learner.model.state_dict().items()}}
    lr = getattr(learner, "inner_lr", None)
    if isinstance(lr, dict):
        state["inner_lr"] = {k: v.detach().cpu().clone() for k, v in lr.items()}
    return state


def load_learner_state(learner, state: dict) -> None:
    """Inverse of :func:`learner_state` (in place, on the learner's device)."""
    learner.model.load_state_dict(state["model"])
    if "inner_lr" in state:
        with torch.no_grad():
            for k, v in state["inner_lr"].items():
                learner.inner_lr[k].copy_(v)
