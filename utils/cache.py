"""Caches under ``data/cache/``: atomic writes and keys derived from the settings that made a file."""
from __future__ import annotations

import copy
import hashlib
import inspect
import io
import json
import marshal
import os
import tempfile
import time
from pathlib import Path

import torch

from .errors import course_error
from .runtime import ARTEFACT_LOG_ENV, CACHE_DIR_ENV, SHIPPED_CACHE_DIR_ENV  # noqa: F401 (re-exported)

__all__ = [
    "PROJECT_ROOT", "note_artefact", "cache_dir", "shipped_cache_dir", "ORIGIN", "cache_origin",
    "settings_key", "code_version", "atomic_write_bytes", "atomic_write_text", "atomic_torch_save",
    "cached_torch", "cpu_copy"
]

#: Project root (the folder holding ``utils/``) and the cache folder, overridable for tests.
PROJECT_ROOT = Path(__file__).resolve().parent.parent


def note_artefact(name: str, status: str, path: str | Path | None = None,
                  seconds: float | None = None) -> None:
    """Append ``{"artefact": name, "status": status, ...}`` as one JSON line to ``$COURSE_ARTEFACT_LOG``.

    ``status`` says where the object came from (``"cache hit"``, ``"built"``, ``"shipped"``);
    ``seconds`` how long building took. Nothing happens when the variable is unset. One
    ``O_APPEND`` write per line, so concurrent writers never interleave inside a line.
    """
    log = os.environ.get(ARTEFACT_LOG_ENV)
    if not log:
        return
    record = {"artefact": str(name), "status": str(status)}
    if path is not None:
        record["path"] = str(path)
    if seconds is not None:
        record["seconds"] = round(float(seconds), 2)
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (json.dumps(record, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8"))
    finally:
        os.close(fd)


def cache_dir() -> Path:
    """The cache folder: ``$COURSE_CACHE_DIR`` if set, else ``<project>/data/cache``."""
    return Path(os.environ.get(CACHE_DIR_ENV, PROJECT_ROOT / "data" / "cache"))


def shipped_cache_dir() -> Path:
    """Cache files shipped with the course: ``$COURSE_SHIPPED_CACHE_DIR`` if set (tests), else
    ``<project>/data/checkpoints/cache``. They hold what a FAST run of a chapter would otherwise
    train (keyed exactly like :func:`cached_torch`, code versions included), so a first run from an
    empty cache is quick; ``python -m utils.course ship-cache`` re-creates them."""
    return Path(os.environ.get(SHIPPED_CACHE_DIR_ENV, PROJECT_ROOT / "data" / "checkpoints" / "cache"))


#: Where the last :func:`cached_torch` call of each name found its object: ``"cache"``
#: (``data/cache``), ``"shipped"`` (:func:`shipped_cache_dir`) or ``"built"`` (trained in this run).
ORIGIN: dict[str, str] = {}

_ORIGIN_TEXT = {"cache": "loaded from data/cache", "shipped": "shipped in data/checkpoints/cache",
                "built": "trained in this run"}


def cache_origin(name: str) -> str:
    """Where the last :func:`cached_torch` call for ``name`` got its object, in words (for labels)."""
    if name not in ORIGIN:
        raise course_error("name", f"one of the names cached in this session: {sorted(ORIGIN)}", repr(name),
                           "call cached_torch (or utils.trained.trained) with that name first")
    return _ORIGIN_TEXT[ORIGIN[name]]


def settings_key(settings: dict) -> str:
    """A short stable hash of a settings dict (JSON with sorted keys), for cache file names."""
    blob = json.dumps(settings, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def _source_of(obj) -> bytes:
    """The source text of a function, class or module; for a function whose source cannot be
    found, its compiled code (stable for one Python version)."""
    try:
        return inspect.getsource(obj).encode()
    except (OSError, TypeError):
        code = getattr(obj, "__code__", None)
        if code is not None:
            return marshal.dumps(code)
        raise course_error("code", "functions, classes or modules whose source Python can find",
                           f"{type(obj).__name__} {obj!r}", "pass the training function itself")


def code_version(*objects) -> str:
    """A short hash of the source code of ``objects`` (functions, classes, modules).

    Put it in a cache key (``cached_torch(..., code=...)`` does) so that a cached model trained
    by an older version of the code is not handed back after the code changed. Functions defined
    in a notebook cell work too: IPython keeps the cell's source where ``inspect`` finds it.
    """
    if not objects:
        raise course_error("objects", "at least one function, class or module", "nothing",
                           "pass the functions that train the cached object")
    h = hashlib.sha256()
    for obj in objects:
        h.update(_source_of(obj))
        h.update(b"\0")
    return h.hexdigest()[:16]


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` via a temporary file and ``os.replace``: never half-written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Text version of :func:`atomic_write_bytes` (UTF-8)."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_torch_save(obj, path: str | Path) -> Path:
    """``torch.save`` to ``path`` atomically."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    return atomic_write_bytes(path, buf.getvalue())


def cached_torch(name: str, settings: dict, build, *, refresh: bool = False, code=()):
    """Load ``<cache>/<name>-<key>.pt`` if present, else ``build()`` it, save it atomically, return it.

    ``settings`` must hold everything that changes the result (sizes, seeds, versions). The key
    also holds the :func:`code_version` of ``build`` and of every object in ``code`` (the
    functions and classes that train: e.g. ``(ProtoNet, FineTuneBaseline)``), so editing the
    training code retrains instead of returning a model from an older version.
    A file that fails to load is rebuilt rather than trusted. Looked up first in :func:`cache_dir`,
    then among the files shipped with the course (:func:`shipped_cache_dir`); :func:`cache_origin`
    says which one answered.
    """
    key = dict(settings, code_version=code_version(build, *code))
    path = cache_dir() / f"{name}-{settings_key(key)}.pt"
    status = "built"
    for origin, found in (("cache", path), ("shipped", shipped_cache_dir() / path.name)):
        if found.exists() and not refresh:
            try:
                obj = torch.load(found, weights_only=False)
            except Exception:  # corrupt or from an incompatible version: rebuild
                status = "rebuilt (unreadable cache file)"
                continue
            ORIGIN[name] = origin
            note_artefact(name, "cache hit" if origin == "cache" else "shipped", found.name)
            return obj
    start = time.perf_counter()
    obj = build()
    atomic_torch_save(obj, path)
    ORIGIN[name] = "built"
    note_artefact(name, status, path.name, time.perf_counter() - start)
    return obj


def cpu_copy(obj):
    """``obj`` (tensors in nested dicts / lists) with every tensor detached, cloned, on the CPU."""
    if torch.is_tensor(obj):
        return obj.detach().cpu().clone()
    if isinstance(obj, dict):
        return {k: cpu_copy(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(cpu_copy(v) for v in obj)
    return copy.deepcopy(obj)
