"""Delegation detection (part of :mod:`utils.course.integrity`): while the learner's function
runs inside :meth:`utils.course.integrity.Refs.forbid`, the named references are replaced by
tripwires in every module namespace and the notebook's globals, and a profile hook records any
entry into their code objects, however the learner reached them.
"""
from __future__ import annotations

__all__: list[str] = []   # nothing public: utils.course.integrity is the interface

import sys
import types

from .integrity_snapshot import _PROFILE, _shell


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
