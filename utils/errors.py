"""The course's one exception type, with messages that say expected / found / what to do."""
from __future__ import annotations

from .messages import t

__all__ = ["CourseError", "course_error", "check_number", "check_shape", "read_json_file"]


class CourseError(ValueError):
    """A bad input to the course's engine.

    Subclasses ``ValueError`` so generic handlers still catch it. Build it with
    :func:`course_error` so every message has the same three parts.
    """


def course_error(what: str, expected: str, found: str, fix: str) -> CourseError:
    """Make a :class:`CourseError` whose message names what was expected, what was found and a fix.

    >>> str(course_error("n_way", "at most 5 classes", "7", "lower n_way"))
    'n_way: expected at most 5 classes, found 7. What to do: lower n_way.'

    The frame words follow the chapter's language (:func:`utils.messages.t`; in Chinese
    "应为 … 实际为 … 怎么办"); ``what``, ``expected``, ``found`` and ``fix`` are printed as given.
    """
    return CourseError(t("{what}: expected {expected}, found {found}. What to do: {fix}.", what=what,
                         expected=expected, found=found, fix=fix))


def check_number(value, what: str, expected: str, fix: str, low: float = -float("inf"),
                 high: float = float("inf"), low_open: bool = False) -> float:
    """``value`` as a float, or a :class:`CourseError` (``what``: expected ``expected``, found
    ``repr(value)``; what to do: ``fix``) when it is not a finite number in ``[low, high]``
    (``(low, high]`` with ``low_open``)."""
    import math
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise course_error(what, expected, repr(value), fix) from None
    if not math.isfinite(v) or v > high or v < low or (low_open and v == low):
        raise course_error(what, expected, repr(value), fix)
    return v


def check_shape(name: str, tensor, expected: tuple) -> None:
    """Raise a :class:`CourseError` unless ``tensor.shape`` matches ``expected``.

    ``expected`` may hold ``None`` for "any size" in a dimension, e.g. ``(None, 1)``.
    """
    shape = tuple(tensor.shape)
    ok = len(shape) == len(expected) and all(e is None or e == s for e, s in zip(expected, shape))
    if not ok:
        pretty = "(" + ", ".join("*" if e is None else str(e) for e in expected) + ")"
        raise course_error(f"shape of {name}", pretty, str(shape),
                           f"reshape or fix how {name} is built")


def read_json_file(path, what: str, missing_fix: str):
    """Parse the JSON file ``path``; a :class:`CourseError` naming ``what`` when it is missing
    (the message suggests ``missing_fix``) or not valid JSON (it gives the line and column)."""
    import json
    from pathlib import Path

    path = Path(path)
    if not path.is_file():
        raise course_error(f"{what} {path}", "an existing JSON file", "no such file", missing_fix)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise course_error(f"{what} {path}", "valid JSON",
                           f"{exc.msg} at line {exc.lineno}, column {exc.colno}",
                           "fix the JSON syntax there (a missing comma or quote?)") from None
