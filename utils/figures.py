"""Headline figures: each notebook records a few numbers that ``course run`` prints in its table."""
from __future__ import annotations

import json
import math
import os
from pathlib import Path

from .cache import atomic_write_text
from .errors import course_error
from .runtime import FIGURES_DIR_ENV

__all__ = [
    "record_figures", "read_figures"
]


def record_figures(chapter: str, figures: dict) -> dict:
    """Record a chapter's headline figures (name -> number or short string).

    Writes ``$COURSE_FIGURES_DIR/<chapter>.json`` atomically when that variable is set (as
    ``python -m utils.course run`` does), merging with what the chapter recorded earlier in
    the same run; otherwise does nothing. Returns the figures so a cell can display them.
    """
    clean = {}
    for name, value in figures.items():
        if hasattr(value, "item"):
            value = value.item()
        if isinstance(value, float) and not math.isfinite(value):
            raise course_error(f"figure {name!r}", "a finite number", repr(value),
                               "check the computation that produced it")
        if not isinstance(value, (int, float, str, bool)):
            raise course_error(f"figure {name!r}", "an int, float, bool or short str",
                               type(value).__name__, "convert it with float(...) or str(...)")
        clean[name] = value
    folder = os.environ.get(FIGURES_DIR_ENV)
    if folder:
        path = Path(folder) / f"{chapter}.json"
        old = json.loads(path.read_text()) if path.exists() else {}
        old.update(clean)
        atomic_write_text(path, json.dumps(old, indent=2, sort_keys=True))
    return clean


def read_figures(folder: str | Path, chapter: str) -> dict:
    """Read what :func:`record_figures` wrote for ``chapter`` (empty dict if nothing)."""
    path = Path(folder) / f"{chapter}.json"
    return json.loads(path.read_text()) if path.exists() else {}
