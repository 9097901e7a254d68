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
# modules whose callables must not be replaced (and those of every loaded utils.* module)
_WATCHED_MODULES = ("builtins", "math", "numpy", "torch", "torch.nn.functional", "torch.linalg",
                    "torch.func", "torch.autograd", "sys", "importlib", "copy")
_TOOLING = ("IPython.", "ipykernel.", "debugpy", "_pydevd", "pydevd", "traitlets.", "comm.",
            "jupyter_client.", "ipywidgets.", "matplotlib.", "matplotlib_inline.", "nbclient.",
            "papermill.", "tqdm.", "nbgrader.", "torch.")

_PROFILE = (sys.setprofile, sys.getprofile, sys.settrace, sys.gettrace)
_TORCH_DIR = str(__import__("pathlib").Path(torch.__file__).parent)
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


def _code_objects(obj) -> set:
    """Every code object of a function or a class's methods, nested functions included."""
    out, todo = set(), []
    if isinstance(obj, type):
        for v in vars(obj).values():
            v = getattr(v, "__func__", v)
            if isinstance(v, property):
                v = v.fget
            if isinstance(v, types.FunctionType):
                todo.append(v.__code__)
    else:
        f = getattr(obj, "__func__", obj)
        f = getattr(f, "__wrapped__", f)
        if isinstance(f, types.FunctionType):
            todo.append(f.__code__)
    while todo:
        c = todo.pop()
        if c in out:
            continue
        out.add(c)
        todo.extend(k for k in c.co_consts if isinstance(k, types.CodeType))
    return out


def _shell():
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython ships with the course
        return None
    return get_ipython()


def _callables(ns: dict) -> dict:
    return {k: v for k, v in list(ns.items())
            if callable(v) and not isinstance(v, types.ModuleType)}


def _origin(obj) -> str:
    obj = getattr(obj, "__func__", obj)
    return str(getattr(obj, "__module__", None) or getattr(type(obj), "__module__", "") or "")


class _Tripwire:
    """Stands in for a forbidden reference while the learner's code runs."""

    def __init__(self, hits: list, dotted: str):
        self._hits, self._dotted = hits, dotted

    def __call__(self, *args, **kwargs):
        self._hits.append(self._dotted)
        raise AssertionError(f"calling {self._dotted} is not allowed here")

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        self._hits.append(self._dotted)
        raise AssertionError(f"using {self._dotted} is not allowed here")


class _Forbid:
    """Context manager returned by :meth:`Refs.forbid` (re-usable, not re-entrant)."""

    def __init__(self, refs: "Refs", names: tuple[str, ...], task: str):
        self._refs, self._names, self._task = refs, names, task
        self._objs = {n: refs.ref(n) for n in names}
        codes = set()
        for obj in self._objs.values():
            codes |= _code_objects(obj)
        self._codes = frozenset(codes)

    def _message(self, dotted: str) -> str:
        return (f"this exercise asks you to write {self._task} yourself; calling {dotted} is not "
                "allowed here")

    def __enter__(self):
        self.hits, self._swapped, self._tamper = [], [], []
        hits, codes, by_code = self.hits, self._codes, {}
        for dotted, obj in self._objs.items():
            for c in _code_objects(obj):
                by_code[c] = dotted

        def hook(frame, event, arg):
            if event == "call" and frame.f_code in codes:
                hits.append(by_code.get(frame.f_code, "the reference"))

        self._hook = hook
        # tripwires wherever a module (or the notebook) holds the reference by name
        wanted = {id(obj): (dotted, obj) for dotted, obj in self._objs.items()}
        spaces = [m.__dict__ for m in list(sys.modules.values())
                  if isinstance(m, types.ModuleType) and hasattr(m, "__dict__")]
        shell = _shell()
        if shell is not None:
            spaces.append(shell.user_ns)
        seen = set()
        for ns in spaces:
            if id(ns) in seen:
                continue
            seen.add(id(ns))
            for k, v in list(ns.items()):
                hit = wanted.get(id(v))
                if hit is not None and v is hit[1]:
                    wire = _Tripwire(hits, hit[0])
                    ns[k] = wire
                    self._swapped.append((ns, k, v, wire))

        def guard(name):
            def blocked(*args, **kwargs):
                self._tamper.append(f"sys.{name}")
            return blocked

        self._sys_saved = {n: getattr(sys, n) for n in ("setprofile", "settrace")}
        self._prev_profile = _PROFILE[1]()
        _PROFILE[0](hook)
        sys.setprofile, sys.settrace = guard("setprofile"), guard("settrace")
        return self

    def __exit__(self, exc_type, exc, tb):
        still_ours = _PROFILE[1]() is self._hook
        _PROFILE[0](self._prev_profile)
        for name, fn in self._sys_saved.items():
            if getattr(sys, name) is not fn:
                setattr(sys, name, fn)
        for ns, k, v, wire in self._swapped:
            if ns.get(k) is wire:
                ns[k] = v
        if self.hits:
            raise AssertionError(self._message(self.hits[0])) from None
        if self._tamper or not still_ours:
            raise AssertionError(f"{self._task} changed the interpreter's profile/trace hooks "
                                 f"({', '.join(self._tamper) or 'sys.setprofile'}); that is not "
                                 "allowed in an answer") from None
        return False


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


def _module_space(name):
    m = sys.modules.get(name)
    return m.__dict__ if isinstance(m, types.ModuleType) else {}


def _watched() -> list[str]:
    return list(_WATCHED_MODULES) + sorted(n for n in list(sys.modules)
                                           if n == "utils" or n.startswith("utils."))


def _shell_state(shell) -> dict:
    if shell is None:
        return {}
    state = {}
    for attr in ("input_transformers_cleanup", "input_transformers_post", "ast_transformers"):
        state[attr] = list(getattr(shell, attr, []) or [])
    mgr = getattr(shell, "input_transformer_manager", None)
    for attr in ("cleanup_transforms", "line_transforms", "token_transformers"):
        state[f"input_transformer_manager.{attr}"] = list(getattr(mgr, attr, []) or [])
    state["custom_exceptions"] = tuple(getattr(shell, "custom_exceptions", ()) or ())
    state["CustomTB"] = getattr(shell, "CustomTB", None)
    events = getattr(shell, "events", None)
    state["events"] = {k: list(v) for k, v in getattr(events, "callbacks", {}).items()}
    for name, obj in (("shell", shell), ("shell.kernel", getattr(shell, "kernel", None)),
                      ("shell.kernel.session", getattr(getattr(shell, "kernel", None), "session", None)),
                      ("shell.display_pub", getattr(shell, "display_pub", None)),
                      ("shell.displayhook", getattr(shell, "displayhook", None))):
        if obj is None:
            continue
        state[f"{name} methods"] = _callables(getattr(obj, "__dict__", {}))
        for cls in type(obj).__mro__[:-1]:
            state[f"{cls.__module__}.{cls.__qualname__}"] = _callables(dict(vars(cls)))
    return state


def _snapshot() -> dict:
    shell = _shell()
    return {
        "modules": {name: _callables(_module_space(name)) for name in _watched()},
        "torch.Tensor": dict(vars(torch.Tensor)),
        "trace": (_PROFILE[3](), _PROFILE[1]()),
        "excepthook": sys.excepthook,
        "shell": _shell_state(shell),
        "shell_id": _id(shell),
    }


def _same(a, b) -> bool:
    """Identity, or the same bound method (IPython re-binds ``sys.excepthook`` every cell)."""
    if a is b:
        return True
    return (_type(a) is types.MethodType and _type(b) is types.MethodType
            and a.__func__ is b.__func__ and a.__self__ is b.__self__)


def _changed(before: dict, after: dict) -> list[str]:
    return sorted(k for k, v in before.items() if not _same(after.get(k, None), v))


def _torch_own_wrapper(new, old) -> bool:
    """torch wraps some of its functions when a submodule is first imported (``import
    torch._dynamo`` replaces ``torch.manual_seed`` by a wrapper of it): not tampering."""
    return (getattr(new, "__wrapped__", None) is old and _origin(new).startswith("torch")
            and _origin(old).startswith("torch")
            and getattr(getattr(new, "__code__", None), "co_filename", "").startswith(_TORCH_DIR))


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


def _from_tooling(obj) -> bool:
    return _origin(obj).startswith(_TOOLING) or _origin(type(obj)).startswith(_TOOLING)


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
