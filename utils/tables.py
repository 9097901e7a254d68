"""Result tables for the chapters: one helper instead of hand-aligned ``print(f"...")`` lines.

:func:`results_table` formats rows of values under a header, right-aligning numbers and left-
aligning text; :func:`show_table` prints it. Floats use ``floatfmt`` (``".3f"`` by default);
pairs ``(mean, half)`` print as ``mean ± half`` (a 95 % CI, see :func:`utils.stats.mean_ci95`).
"""
from __future__ import annotations

import math
from numbers import Number
from typing import Sequence

from .errors import course_error

__all__ = ["results_table", "show_table"]


def _cell(value, floatfmt: str) -> str:
    if isinstance(value, tuple) and len(value) == 2 and all(isinstance(v, Number) for v in value):
        return f"{format(float(value[0]), floatfmt)} ± {format(float(value[1]), floatfmt)}"
    if isinstance(value, bool) or value is None:
        return "—" if value is None else str(value)
    if isinstance(value, Number):
        v = float(value)
        if math.isnan(v):
            return "nan"
        return str(value) if isinstance(value, int) else format(v, floatfmt)
    return str(value)


def results_table(header: Sequence[str], rows: Sequence[Sequence], floatfmt: str = ".3f",
                  title: str | None = None) -> str:
    """The text of a table: ``header`` (column names, with units, e.g. ``"time (s)"``), then one
    line per row. Every row must have as many values as the header."""
    header = [str(h) for h in header]
    if not header:
        raise course_error("header", "at least one column name", "an empty header", "name the columns")
    cells = []
    for i, row in enumerate(rows):
        row = list(row)
        if len(row) != len(header):
            raise course_error(f"row {i}", f"{len(header)} values (one per column: {', '.join(header)})",
                               f"{len(row)} values: {row!r}", "add or remove values so each row matches the header")
        cells.append([_cell(v, floatfmt) for v in row])
    numeric = [all(isinstance(r[j], Number) or (isinstance(r[j], tuple)) for r in rows) and bool(rows)
               for j in range(len(header))]
    widths = [max([len(header[j])] + [len(c[j]) for c in cells]) for j in range(len(header))]
    fmt = lambda vals: "  ".join(v.rjust(w) if num else v.ljust(w)
                                 for v, w, num in zip(vals, widths, numeric)).rstrip()
    lines = ([title] if title else []) + [fmt(header), "  ".join("-" * w for w in widths)]
    lines += [fmt(c) for c in cells]
    return "\n".join(lines)


def show_table(header: Sequence[str], rows: Sequence[Sequence], floatfmt: str = ".3f",
               title: str | None = None) -> None:
    """Print :func:`results_table`."""
    print(results_table(header, rows, floatfmt, title))
