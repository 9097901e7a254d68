"""Hidden tests a learner cannot subvert from inside the kernel (every chapter's graded cells).

Used by the hidden tests of every chapter (``solutions/NN_*/``): the locked cell
``integrity-bind`` near the top binds the references, the hidden tests use them, and the locked
autograded cell ``integrity-check`` at the end of the chapter verifies nothing was tampered with
(issue 12: "Tests a learner cannot subvert from inside"). The grader sets a chapter's autograded
score to 0 when ``integrity-check`` raised.

Interface (what a chapter's cells write)::

    _REF = None                                                     # locked cell "integrity-bind"
    from utils.course import integrity as _integrity
    _REF = _integrity.bind("utils.fuse.ensemble_predict", "utils.fuse.MixtureOfExperts")

    # in a hidden test
    _want = _REF.ref("utils.fuse.ensemble_predict")(z, "prob")     # the reference, bound early
    with _REF.forbid("utils.fuse.ensemble_predict", task="average_probabilities"):
        _got = average_probabilities(z)                              # the learner's code runs here
    _REF.exact(_got, _REF.Tensor, what="average_probabilities(...)")
    assert _REF.allclose(_got, _want)

    import utils.course.integrity as _fresh_integrity                     # locked cell "integrity-check"
    _fresh_integrity.check(_REF)                                   # (0 points, the last cell)

- :func:`bind` captures, before any learner code runs, the builtins, comparison functions
  (``torch.allclose``, ``torch.equal``, ``math.isclose``, ``numpy.array_equal`` ...), the named
  engine references, and a snapshot of what tampering would change (module attributes,
  ``torch.Tensor``'s methods, IPython's input transformers, exception handlers, trace hooks).
- :meth:`Refs.exact` checks a value's exact type (``type(x) is float``), so a subclass whose
  ``__eq__`` is always true is rejected.
- :meth:`Refs.forbid` is delegation detection: while the learner's function runs inside it, the
  named references are replaced by tripwires in every module namespace (``sys.modules``, the
  notebook's globals), and a profile hook records any entry into their code objects, however the
  learner reached them (a default argument, a closure, a ``functools.partial``, a list). Either
  raises ``AssertionError("this exercise asks you to write X yourself; calling utils.Y is not
  allowed here")`` when the block ends.
- :meth:`Refs.check` (and :func:`check`) raises ``AssertionError`` naming what was changed.

Limits (said plainly): everything here runs in the learner's own process. It catches the attacks
issue 12 names (delegation, default-argument bypass, input/AST transformers, custom exception
handlers, trace/profile hooks, patched comparisons or references, always-equal return values);
a learner who studies this module and attacks it by name can still defeat it in-process. The
sandbox (scores computed outside the kernel, :mod:`utils.course.grading`) and an instructor reading
suspicious answer cells are the defence beyond that.
"""
from __future__ import annotations

import builtins
import importlib
import math
import sys
import types

import numpy as np
import torch

__all__ = ["Refs", "bind", "check", "bound", "INTEGRITY_GRADE_ID", "BIND_GRADE_ID"]

INTEGRITY_GRADE_ID = "integrity-check"
BIND_GRADE_ID = "integrity-bind"

_BUILTIN_NAMES = ("isinstance", "issubclass", "type", "float", "int", "str", "bool", "abs", "len",
                  "all", "any", "max", "min", "sum", "sorted", "set", "frozenset", "list", "tuple",
                  "dict", "zip", "range", "round", "getattr", "hasattr", "callable", "id",
                  "repr", "map", "enumerate")
# module attributes the hidden tests compare with: bound as Refs.<alias>
_COMPARISONS = {"allclose": (torch, "allclose"), "equal": (torch, "equal"),
                "is_tensor": (torch, "is_tensor"), "isfinite": (torch, "isfinite"),
                "Tensor": (torch, "Tensor"), "isclose": (math, "isclose"),
                "array_equal": (np, "array_equal"), "np_allclose": (np, "allclose")}
from .integrity_forbid import _Forbid
from .integrity_snapshot import (_PROFILE, _callables, _changed, _from_tooling, _module_space, _origin,
                                 _same, _shell, _shell_state, _snapshot, _torch_own_wrapper)

_REGISTRY: list["Refs"] = []


def _resolve(dotted: str):
    """``"utils.fuse.ensemble_predict"`` -> (module, attribute name, object)."""
    parts = dotted.split(".")
    for i in range(len(parts) - 1, 0, -1):
        try:
            module = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        obj = module
        for name in parts[i:-1]:
            obj = getattr(obj, name)
        return obj, parts[-1], getattr(obj, parts[-1])
    raise ValueError(f"cannot resolve {dotted!r}: expected 'package.module.name', e.g. "
                     "'utils.fuse.ensemble_predict'")


class Refs:
    """References bound before any learner code runs (see the module docstring).

    Attributes: the builtins in ``_BUILTIN_NAMES`` (``_REF.isinstance``, ``_REF.float`` ...) and
    the comparisons ``allclose``, ``equal``, ``is_tensor``, ``isfinite``, ``Tensor`` (torch),
    ``isclose`` (math), ``array_equal``, ``np_allclose`` (numpy). ``allclose``, ``equal`` and
    ``isfinite`` reject tensor subclasses (AssertionError) before comparing.
    """

    def __init__(self, names: tuple[str, ...]):
        d = object.__getattribute__(self, "__dict__")
        for n in _BUILTIN_NAMES:
            d[n] = getattr(builtins, n)
        for alias, (mod, attr) in _COMPARISONS.items():
            d[alias] = getattr(mod, attr)
        for alias in ("allclose", "equal", "isfinite"):
            d[alias] = _plain_tensors_only(d[alias], f"torch.{alias}")
        d["_refs"] = {}
        d["_homes"] = {}
        for dotted in names:
            home, attr, obj = _resolve(dotted)
            if not _origin(obj).startswith("utils"):
                raise ValueError(f"{dotted} is not an engine reference (defined in "
                                 f"{_origin(obj)!r}): bind() must run before any answer cell")
            d["_refs"][dotted] = obj
            d["_homes"][dotted] = (home, attr)
        d["_snapshot"] = _snapshot()
        d["_frozen"] = dict(d)

    def __setattr__(self, name, value):
        raise AttributeError("the bound references are read-only")

    __delattr__ = __setattr__

    def ref(self, dotted: str):
        """The engine reference ``dotted`` as it was at :func:`bind` time."""
        refs = object.__getattribute__(self, "_refs")
        if dotted not in refs:
            home, attr, obj = _resolve(dotted)
            raise KeyError(f"{dotted} was not bound: add it to the integrity-bind cell's bind(...)")
        return refs[dotted]

    def exact(self, value, *kinds, what: str = "the answer"):
        """``value`` if its type is exactly one of ``kinds`` (not a subclass), else AssertionError."""
        t = _type(value)
        if not any(t is k for k in kinds):
            names = " or ".join(k.__name__ for k in kinds)
            raise AssertionError(f"{what} must be a plain {names}, found "
                                 f"{getattr(t, '__module__', '?')}.{getattr(t, '__qualname__', '?')}")
        return value

    def number(self, value, what: str = "the answer") -> float:
        """A plain Python/NumPy number as a float; a subclass (always-equal tricks) is rejected."""
        self.exact(value, int, float, np.float64, np.float32, np.int64, np.int32, what=what)
        return _float(value)

    def forbid(self, *dotted: str, task: str) -> _Forbid:
        """Delegation detection around the learner's call (see the module docstring)."""
        return _Forbid(self, dotted, task)

    def check(self, shell=None) -> None:
        """Raise AssertionError naming what changed since :func:`bind` (locked integrity-check cell)."""
        check(self, shell)


_type, _float, _id = type, float, id
_PLAIN_TENSORS = (torch.Tensor, torch.nn.Parameter)
#: Attributes the standard library caches on a class the first time its instances are copied or
#: pickled (``copyreg._slotnames`` stores ``__slotnames__``): legitimate, not tampering.
_STDLIB_CLASS_CACHES = frozenset({"__slotnames__"})


def _plain_tensors_only(fn, name: str):
    """``fn`` that first rejects tensor subclasses (a ``__torch_function__`` could fake the result)."""
    def compare(*args, **kwargs):
        for a in args:
            t = _type(a)
            if isinstance(a, torch.Tensor) and not any(t is k for k in _PLAIN_TENSORS):
                raise AssertionError(f"{name}: expected a plain torch.Tensor, found the subclass "
                                     f"{getattr(t, '__qualname__', t)}; return an ordinary tensor")
        return fn(*args, **kwargs)

    compare.__name__ = compare.__qualname__ = name.rsplit(".", 1)[-1]
    compare.__wrapped_reference__ = fn
    return compare


def check(refs: "Refs | None" = None, shell=None) -> None:
    """Raise ``AssertionError`` naming everything tampered with since :func:`bind`.

    Checks: ``refs`` is the object :func:`bind` returned, with its bound values unchanged; the
    builtins and the callables of torch / math / numpy / the ``utils`` modules are the ones bound;
    ``torch.Tensor``'s methods; IPython's input and AST transformers, custom exception handler,
    event callbacks and the methods of the shell, kernel and session objects; ``sys.excepthook``;
    ``sys.settrace`` / ``sys.setprofile`` hooks.
    """
    problems = []
    if refs is None:
        refs = bound()
    if _type(refs) is not Refs or not any(refs is r for r in _REGISTRY):
        raise AssertionError("integrity check: the bound references (_REF) were replaced; run the "
                             "chapter from the top without redefining _REF")
    d = object.__getattribute__(refs, "__dict__")
    frozen = d["_frozen"]
    bad = [k for k in frozen if d.get(k) is not frozen[k]] + [k for k in d if k not in frozen and k != "_frozen"]
    if bad:
        problems.append(f"the bound references were changed ({', '.join(sorted(bad))})")
    for dotted, obj in d["_refs"].items():
        home, attr = d["_homes"][dotted]
        if getattr(home, attr, None) is not obj:
            problems.append(f"{dotted} was replaced")
    snap = d["_snapshot"]
    for name, before in snap["modules"].items():
        now = _callables(_module_space(name))
        for k in _changed(before, now):
            if _torch_own_wrapper(now.get(k), before[k]):
                continue
            if k in now or name == "builtins":
                problems.append(f"{name}.{k} was {'replaced' if k in now else 'deleted'}")
    for k in _changed(snap["torch.Tensor"], dict(vars(torch.Tensor))):
        problems.append(f"torch.Tensor.{k} was replaced")
    extra = sorted(set(vars(torch.Tensor)) - set(snap["torch.Tensor"]) - _STDLIB_CLASS_CACHES)
    if extra:
        problems.append(f"torch.Tensor got new attributes ({', '.join(extra)})")
    if (_PROFILE[3](), _PROFILE[1]()) != snap["trace"]:
        problems.append("a sys.settrace / sys.setprofile hook was installed")
    if not _same(sys.excepthook, snap["excepthook"]):
        problems.append("sys.excepthook was replaced")
    shell = _shell() if shell is None else shell
    if _id(shell) != snap["shell_id"]:
        problems.append("the IPython shell was replaced")
    now = _shell_state(shell)
    for key, before in snap["shell"].items():
        after = now.get(key)
        if key == "events":
            for ev, cbs in (after or {}).items():
                old = before.get(ev, [])
                added = [cb for cb in cbs if not any(cb is b for b in old) and not _from_tooling(cb)]
                if added:
                    problems.append(f"IPython event callbacks were added for {ev!r}")
        elif isinstance(before, dict):
            changed = _changed(before, after or {})
            added = sorted(set(after or {}) - set(before))
            if changed or added:
                problems.append(f"{key} changed ({', '.join(changed + added)})")
        elif key == "custom_exceptions":
            if tuple(after or ()) != tuple(before):
                problems.append("a custom exception handler was set (set_custom_exc)")
        elif isinstance(before, list):
            added = [t for t in (after or []) if not any(t is b for b in before) and not _from_tooling(t)]
            missing = [t for t in before if not any(t is a for a in (after or []))]
            if added or missing:
                problems.append(f"IPython {key} changed (an input transformer?)")
        elif not _same(after, before):
            problems.append(f"IPython {key} changed (set_custom_exc?)")
    if problems:
        raise AssertionError("integrity check failed, so this chapter's autograded score is 0: "
                             + "; ".join(problems))


def bind(*references: str) -> Refs:
    """Bind the comparison functions, builtins and the engine ``references`` (dotted names).

    Call it in the locked ``integrity-bind`` cell, before any answer cell runs. Raises
    ValueError if a name does not resolve, or if what it resolves to is not defined in ``utils``
    (replaced before binding); AssertionError if tampering is already visible (an input or
    AST transformer, exception handler or trace hook that IPython and the kernel do not install).
    """
    _check_fresh()
    refs = Refs(tuple(references))
    _REGISTRY.append(refs)
    return refs


def bound() -> Refs:
    """The references bound last in this process."""
    if not _REGISTRY:
        raise AssertionError("the references were never bound: run the chapter from the top "
                             "(the locked integrity-bind cell)")
    return _REGISTRY[-1]


def _check_fresh() -> None:
    """Refuse to bind in a kernel that already shows tampering (code run before the bind cell)."""
    shell, problems = _shell(), []
    for hook in (_PROFILE[3](), _PROFILE[1]()):
        if hook is not None and not _from_tooling(hook):
            problems.append("a sys.settrace / sys.setprofile hook is installed")
    if shell is not None:
        for attr in ("input_transformers_cleanup", "input_transformers_post", "ast_transformers"):
            for t in getattr(shell, attr, []) or []:
                if not _from_tooling(t):
                    problems.append(f"{attr} holds {t!r}")
        if getattr(shell, "custom_exceptions", ()):
            problems.append("a custom exception handler is set (set_custom_exc)")
    for alias, (mod, attr) in _COMPARISONS.items():
        obj = getattr(mod, attr)
        if not _origin(obj).startswith(("torch", "math", "numpy", "builtins")) and alias != "Tensor":
            problems.append(f"{mod.__name__}.{attr} was replaced")
    if problems:
        raise AssertionError("cannot bind the graders' references, the kernel was tampered with "
                             "before the integrity-bind cell: " + "; ".join(problems)
                             + ". Restart the kernel and run the chapter from the top.")
