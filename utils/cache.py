"""Caches under ``data/cache/``: atomic writes and keys derived from the settings that made a file."""
from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
from pathlib import Path

import torch

#: Project root (the folder holding ``utils/``) and the cache folder, overridable for tests.
PROJECT_ROOT = Path(__file__).resolve().parent.parent


def cache_dir() -> Path:
    """The cache folder: ``$COURSE_CACHE_DIR`` if set, else ``<project>/data/cache``."""
    return Path(os.environ.get("COURSE_CACHE_DIR", PROJECT_ROOT / "data" / "cache"))


def settings_key(settings: dict) -> str:
    """A short stable hash of a settings dict (JSON with sorted keys), for cache file names."""
    blob = json.dumps(settings, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


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


def cached_torch(name: str, settings: dict, build, *, refresh: bool = False):
    """Load ``<cache>/<name>-<key>.pt`` if present, else ``build()`` it, save it atomically, return it.

    ``settings`` must hold everything that changes the result (sizes, seeds, versions).
    A file that fails to load is rebuilt rather than trusted.
    """
    path = cache_dir() / f"{name}-{settings_key(settings)}.pt"
    if path.exists() and not refresh:
        try:
            return torch.load(path, weights_only=False)
        except Exception:  # corrupt or from an incompatible version: rebuild
            pass
    obj = build()
    atomic_torch_save(obj, path)
    return obj
