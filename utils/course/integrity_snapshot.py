"""What tampering would change, captured at bind time and compared at check time (part of
:mod:`utils.course.integrity`): the callables of the watched modules (and every loaded ``utils.*``
module), ``torch.Tensor``'s methods, trace/profile hooks, ``sys.excepthook`` and the IPython
shell's input transformers, exception handlers, event callbacks and methods.
"""
from __future__ import annotations

__all__: list[str] = []   # nothing public: utils.course.integrity is the interface

import sys
import types

import torch

_type, _id = type, id

# modules whose callables must not be replaced (and those of every loaded utils.* module)
_WATCHED_MODULES = ("builtins", "math", "numpy", "torch", "torch.nn.functional", "torch.linalg",
                    "torch.func", "torch.autograd", "sys", "importlib", "copy")
_TOOLING = ("IPython.", "ipykernel.", "debugpy", "_pydevd", "pydevd", "traitlets.", "comm.",
            "jupyter_client.", "ipywidgets.", "matplotlib.", "matplotlib_inline.", "nbclient.",
            "papermill.", "tqdm.", "nbgrader.", "torch.")

_PROFILE = (sys.setprofile, sys.getprofile, sys.settrace, sys.gettrace)
_TORCH_DIR = str(__import__("pathlib").Path(torch.__file__).parent)


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


def _from_tooling(obj) -> bool:
    return _origin(obj).startswith(_TOOLING) or _origin(type(obj)).startswith(_TOOLING)
