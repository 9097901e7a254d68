"""Result tables for the chapters: one helper instead of hand-aligned ``print(f"...")`` lines.

:func:`results_table` formats rows of values under a header, right-aligning numbers and left-
aligning text; :func:`show_table` prints it. Floats use ``floatfmt`` (``".3f"`` by default, or a
list with one format per column);
pairs ``(mean, half)`` print as ``mean ± half`` (a 95 % CI, see :func:`utils.stats.mean_ci95`), and
so does a result object (:class:`utils.results.MetaResult`, in the units it prints in). ``show_table``
also takes results alone: a dict ``name -> result`` or a list of results, one row each with what
its interval covers.
"""
from __future__ import annotations

import math
from numbers import Number
from typing import Sequence

from .errors import course_error
from .language import t
from .results import RESULT_HEADER, MetaResult

__all__ = ["display_width", "pad", "result_rows", "results_table", "show_table"]


def display_width(text: str) -> int:
    """Columns ``text`` takes in a terminal or notebook output: a wide (CJK) character takes two,
    every other character one (so for English text it is ``len(text)``)."""
    import unicodedata
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def pad(text: str, width: int, right: bool = False) -> str:
    """``text`` padded with spaces to ``width`` columns (:func:`display_width`), on the left when
    ``right`` (right-aligned): ``str.ljust`` / ``str.rjust`` for text with Chinese in it."""
    fill = " " * max(0, width - display_width(text))
    return fill + text if right else text + fill


def _is_result(value) -> bool:
    return isinstance(value, MetaResult)


def _cell(value, floatfmt: str) -> str:
    if _is_result(value):
        return _cell(value.scaled(), floatfmt)
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
    header = [t(str(h)) for h in header]   # column names in the chapter's language
    fmts = [floatfmt] * len(header) if isinstance(floatfmt, str) else [str(f) for f in floatfmt]
    if len(fmts) != len(header):
        raise course_error("floatfmt", f"one format, or one per column ({len(header)})",
                           f"{len(fmts)} formats", "give a format for every column")
    if not header:
        raise course_error("header", "at least one column name", "an empty header", "name the columns")
    cells = []
    for i, row in enumerate(rows):
        row = list(row)
        if len(row) != len(header):
            raise course_error(f"row {i}", f"{len(header)} values (one per column: {', '.join(header)})",
                               f"{len(row)} values: {row!r}", "add or remove values so each row matches the header")
        cells.append([_cell(v, f) for v, f in zip(row, fmts)])
    numeric = [all(isinstance(r[j], (Number, tuple, MetaResult)) for r in rows) and bool(rows)
               for j in range(len(header))]
    widths = [max([display_width(header[j])] + [display_width(c[j]) for c in cells]) for j in range(len(header))]
    fmt = lambda vals: "  ".join(pad(v, w, right=num)
                                 for v, w, num in zip(vals, widths, numeric)).rstrip()
    lines = ([t(title)] if title else []) + [fmt(header), "  ".join("-" * w for w in widths)]
    lines += [fmt(c) for c in cells]
    return "\n".join(lines)


def result_rows(results) -> tuple[list[str], list[list]]:
    """``(header, rows)`` for results alone: a dict ``name -> MetaResult`` (one named row each) or a
    list of them; every row says what its interval covers (columns :data:`utils.results.RESULT_HEADER`)."""
    if isinstance(results, dict) and results and all(_is_result(r) for r in results.values()):
        return ["result", *RESULT_HEADER], [r.row(str(name)) for name, r in results.items()]
    if isinstance(results, (list, tuple)) and results and all(_is_result(r) for r in results):
        return list(RESULT_HEADER), [r.row() for r in results]
    raise course_error("results", "a non-empty dict name -> MetaResult, or a list of MetaResult",
                       f"{type(results).__name__} {results!r:.80}",
                       "pass the results of meta_evaluate, or give a header and rows")


def show_table(header, rows: Sequence[Sequence] | None = None, floatfmt: str = ".3f",
               title: str | None = None) -> None:
    """Print :func:`results_table`. ``show_table(results)`` (no ``rows``) prints results alone,
    one row each (:func:`result_rows`); a cell of ``rows`` may also be a result."""
    if rows is None:
        header, rows = result_rows(header)
    print(results_table(header, rows, floatfmt, title))
