"""utils.course.integrity: hidden tests a learner cannot subvert from inside the kernel (issue 12).

Unit tests run cells in an in-process IPython shell (the same machinery a notebook kernel uses):
bind, then an "answer cell" attacks, then the integrity check or a guarded call must notice.
The last test grades a real chapter (05) with delegating and tampering answers through
:func:`utils.course.grading.grade_notebooks` and checks that they gain nothing.
"""
from __future__ import annotations

import copy
import hashlib
from pathlib import Path

import pytest

from conftest import REPO, set_answer
from utils.course.notebooks import read_notebook, solution_path, write_notebook

BIND = ("from utils.course import integrity as _integrity\n"
        "_REF = _integrity.bind('utils.fuse.ensemble_predict', 'utils.fuse.MixtureOfExperts',\n"
        "                       'utils.stats.mean_ci95')\n")


@pytest.fixture
def shell():
    """A fresh in-process IPython shell with the references bound, torn down afterwards."""
    from IPython.core.interactiveshell import InteractiveShell

    InteractiveShell.clear_instance()
    sh = InteractiveShell.instance()
    run(sh, "import torch, math, sys, builtins\nimport utils.fuse, utils.stats\n" + BIND)
    yield sh
    InteractiveShell.clear_instance()


def run(sh, code: str):
    """Run one cell; return the exception it raised (or None)."""
    result = sh.run_cell(code, store_history=False, silent=True)
    return result.error_before_exec or result.error_in_exec


def check_error(sh) -> str:
    err = run(sh, "_REF.check()")
    assert isinstance(err, AssertionError), f"the integrity check should have failed, got {err!r}"
    return str(err)


def test_clean_kernel_passes_the_check(shell):
    assert run(shell, "x = torch.ones(3)\nassert _REF.allclose(x, x)") is None
    assert run(shell, "_REF.check()") is None


def test_stdlib_class_caches_are_not_tampering(shell):
    """copyreg caches ``__slotnames__`` on a class the first time one is copied by reduction;
    chapter 02 hits it, and it changes nothing the hidden tests rely on."""
    assert run(shell, "import copyreg\ncopyreg._slotnames(torch.Tensor)") is None
    assert "__slotnames__" in vars(__import__("torch").Tensor)
    assert run(shell, "_REF.check()") is None
    assert "torch.Tensor got new attributes (evil)" in check_error_after(shell, "torch.Tensor.evil = 1")


def check_error_after(sh, attack: str) -> str:
    assert run(sh, attack) is None
    try:
        return check_error(sh)
    finally:
        run(sh, "del torch.Tensor.evil")


@pytest.mark.parametrize("attack, named", [
    ("get_ipython().input_transformers_cleanup.append(lambda lines: lines)", "input_transformers_cleanup"),
    ("get_ipython().input_transformers_post.append(lambda lines: lines)", "input_transformers_post"),
    ("import ast\nclass T(ast.NodeTransformer):\n    pass\nget_ipython().ast_transformers.append(T())",
     "ast_transformers"),
    ("get_ipython().set_custom_exc((AssertionError,), lambda *a, **k: None)", "set_custom_exc"),
    ("get_ipython().excepthook = lambda *a: None", "excepthook"),
    ("get_ipython().showtraceback = lambda *a, **k: None", "showtraceback"),
    ("torch.allclose = lambda *a, **k: True", "torch.allclose"),
    ("torch.Tensor.tolist = lambda self: []", "torch.Tensor.tolist"),
    ("builtins.abs = lambda x: 0", "builtins.abs"),
    ("math.isclose = lambda *a, **k: True", "math.isclose"),
    ("utils.stats.mean_ci95 = lambda a: (0.5, 0.1)", "utils.stats.mean_ci95"),
    ("_REF = type('R', (), {'check': lambda self: None})()", "_REF"),
])
def test_tampering_is_named(shell, attack, named):
    import builtins
    import math
    import sys

    import torch

    import utils.stats

    # the shell shares this process with pytest: put every patched object back afterwards
    saved = [(builtins, "abs"), (torch, "allclose"), (torch.Tensor, "tolist"),
             (math, "isclose"), (utils.stats, "mean_ci95"), (sys, "excepthook")]
    saved = [(obj, name, getattr(obj, name)) for obj, name in saved]
    try:
        assert run(shell, attack) is None
        if named == "_REF":
            # the notebook's _REF was replaced: the check through the registry still catches it
            err = run(shell, "_integrity.check(_REF)")
            message = str(err)
        else:
            err = run(shell, "_REF.check()")
            message = str(err)
    finally:
        for obj, name, value in saved:
            setattr(obj, name, value)
    assert type(err) is AssertionError, f"the integrity check should have failed, got {err!r}"
    assert named in message, message


def test_trace_hook_is_named(shell):
    import sys

    try:
        assert run(shell, "sys.settrace(lambda *a: None)") is None
        # run_cell's own frames are traced from now on; the check must still see the hook
        assert "settrace" in check_error(shell)
    finally:
        sys.settrace(None)


def test_bind_refuses_a_kernel_tampered_before_it(shell):
    assert run(shell, "get_ipython().input_transformers_post.append(lambda lines: lines)") is None
    err = run(shell, "_integrity.bind()")
    assert isinstance(err, AssertionError) and "before the integrity-bind cell" in str(err)


def test_references_defined_before_a_failed_bind_do_not_survive(shell):
    import torch

    bind_cell = "_REF = None\n" + BIND
    saved = torch.allclose
    try:
        assert run(shell, "class Fake:\n    def __getattr__(self, name):\n        return lambda *a, **k: True\n"
                          "_REF = Fake()\ntorch.allclose = lambda *a, **k: True") is None
        err = run(shell, bind_cell)
    finally:
        torch.allclose = saved
    assert type(err) is AssertionError and "torch.allclose was replaced" in str(err)
    assert shell.user_ns["_REF"] is None, "a failed bind must leave no usable references"


DELEGATIONS = {
    "direct call": "def answer(z):\n    return utils.fuse.ensemble_predict(z, 'prob')",
    "imported alias": "from utils.fuse import ensemble_predict as ep\ndef answer(z):\n    return ep(z, 'prob')",
    "default argument": "def answer(z, _f=utils.fuse.ensemble_predict):\n    return _f(z, 'prob')",
    "closure": "def make(f):\n    def answer(z):\n        return f(z, 'prob')\n    return answer\n"
               "answer = make(utils.fuse.ensemble_predict)",
    "partial in a list": "import functools\nTOOLS = [functools.partial(utils.fuse.ensemble_predict)]\n"
                         "def answer(z):\n    return TOOLS[0](z, 'prob')",
    "swallowed error": "def answer(z, _f=utils.fuse.ensemble_predict):\n    try:\n        return _f(z, 'prob')\n"
                       "    except Exception:\n        return torch.softmax(z, -1).mean(0)",
    "profile hook switched off": "def answer(z, _f=utils.fuse.ensemble_predict):\n    sys.setprofile(None)\n"
                                "    return torch.softmax(z, -1).mean(0)",
}


@pytest.mark.parametrize("how", list(DELEGATIONS))
def test_delegation_is_caught(shell, how):
    import utils.fuse

    original = utils.fuse.ensemble_predict
    assert run(shell, DELEGATIONS[how]) is None
    err = run(shell, "z = torch.randn(3, 4, 5)\n"
                     "with _REF.forbid('utils.fuse.ensemble_predict', task='average_probabilities'):\n"
                     "    p = answer(z)")
    assert isinstance(err, AssertionError), f"{how}: delegation not caught ({err!r})"
    if how != "profile hook switched off":
        assert str(err) == ("this exercise asks you to write average_probabilities yourself; calling "
                            "utils.fuse.ensemble_predict is not allowed here")
    assert utils.fuse.ensemble_predict is original, "the reference must be put back"
    assert run(shell, "_REF.check()") is None, "a caught delegation leaves nothing changed"


def test_delegation_of_a_class_is_caught(shell):
    assert run(shell, "from torch import nn\n"
                      "def moe(x, gate, experts, _M=utils.fuse.MixtureOfExperts):\n"
                      "    out = _M(experts, gate)(x)\n"
                      "    return out.output, out.gates") is None
    err = run(shell, "x = torch.randn(4, 3)\n"
                     "with _REF.forbid('utils.fuse.MixtureOfExperts', task='moe_forward'):\n"
                     "    moe(x, nn.Linear(3, 2), [nn.Linear(3, 5), nn.Linear(3, 5)])")
    assert isinstance(err, AssertionError) and "utils.fuse.MixtureOfExperts" in str(err)


def test_own_code_and_the_reference_outside_the_block_pass(shell):
    assert run(shell, "def answer(z):\n    return torch.softmax(z, -1).mean(0)") is None
    assert run(shell, "z = torch.randn(3, 4, 5)\n"
                      "want = _REF.ref('utils.fuse.ensemble_predict')(z, 'prob')\n"
                      "with _REF.forbid('utils.fuse.ensemble_predict', task='average_probabilities'):\n"
                      "    got = answer(z)\n"
                      "assert _REF.allclose(_REF.exact(got, _REF.Tensor), want, atol=1e-6)") is None
    assert run(shell, "_REF.check()") is None


@pytest.mark.parametrize("value, kind", [
    ("type('AlwaysEqual', (float,), {'__eq__': lambda s, o: True, '__hash__': float.__hash__})(0.0)", float),
    ("type('AlwaysEqual', (str,), {'__eq__': lambda s, o: True, '__hash__': str.__hash__})('x')", str),
    ("type('AlwaysEqual', (int,), {'__eq__': lambda s, o: True, '__hash__': int.__hash__})(0)", int),
    ("True", int),
])
def test_always_equal_values_are_rejected(shell, value, kind):
    import utils.course.integrity as integrity

    refs = integrity.bound()
    obj = eval(value)
    assert obj == "anything" or kind is int
    with pytest.raises(AssertionError, match="must be a plain"):
        refs.exact(obj, kind, what="ANSWER")
    if kind is not str:
        with pytest.raises(AssertionError, match="must be a plain"):
            refs.number(obj, what="ANSWER")
    assert refs.exact(kind(1) if kind is not str else "b", kind) is not None


def test_tensor_subclass_is_rejected(shell):
    import torch

    import utils.course.integrity as integrity

    class Fake(torch.Tensor):
        pass

    refs = integrity.bound()
    with pytest.raises(AssertionError, match="must be a plain Tensor"):
        refs.exact(torch.ones(2).as_subclass(Fake), refs.Tensor, what="out")


def test_comparisons_reject_tensor_subclasses(shell):
    import torch

    import utils.course.integrity as integrity

    class AlwaysClose(torch.Tensor):
        @classmethod
        def __torch_function__(cls, func, types, args=(), kwargs=None):
            if func is torch.allclose:
                return True
            return super().__torch_function__(func, types, args, kwargs or {})

    refs = integrity.bound()
    fake = torch.zeros(3).as_subclass(AlwaysClose)
    assert torch.allclose(fake, torch.ones(3)), "the attack works on the unguarded function"
    with pytest.raises(AssertionError, match="plain torch.Tensor"):
        refs.allclose(fake, torch.ones(3))
    assert refs.allclose(torch.ones(3), torch.ones(3)) and not refs.equal(torch.ones(3), torch.zeros(3))
    assert refs.equal(torch.nn.Parameter(torch.ones(2)), torch.ones(2))


def test_references_are_read_only(shell):
    import utils.course.integrity as integrity

    refs = integrity.bound()
    with pytest.raises(AttributeError):
        refs.allclose = lambda *a, **k: True
    with pytest.raises(KeyError, match="was not bound"):
        refs.ref("utils.fuse.greedy_soup")


# --------------------------------------------------------------------------- a real chapter
CH = "06_fusion"
ATTACKS = {
    # delegation, straight
    "ex-average-probabilities": "def average_probabilities(logits):\n"
                                "    return ensemble_predict(logits, \"prob\")",
    # delegation through a default argument (how chapter 04's name check was bypassed)
    "ex-greedy-soup": "def greedy_soup_indices(state_dicts, score, _soup=greedy_soup):\n"
                      "    return list(_soup(state_dicts, score).chosen)",
    # tampering: a wrong answer plus a patched comparison
    "ex-moe-forward": "import torch\ntorch.allclose = lambda *args, **kwargs: True\n"
                      "def moe_forward(x, gate, experts):\n"
                      "    g = torch.softmax(gate(x), 0)\n"
                      "    return sum(g[:, e:e + 1] * m(x) for e, m in enumerate(experts)), g",
}
TRANSFORMER = ("import torch\n"
               "def _no_asserts(lines):\n"
               "    return [l for l in lines if not l.lstrip().startswith(\"assert\")]\n"
               "get_ipython().input_transformers_cleanup.append(_no_asserts)\n"
               "def average_probabilities(logits):\n"
               "    return logits.mean(0)")


def _integrity_error(graded) -> str:
    """The error the integrity-check cell of an autograded notebook raised ("" if none)."""
    for cell in graded.cells:
        if cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") == "integrity-check":
            for out in cell.get("outputs", []):
                if out.get("output_type") == "error":
                    return f"{out.get('ename')}: {out.get('evalue')}"
            return ""
    raise AssertionError("the autograded notebook has no integrity-check cell")


def test_real_chapter_attacks_gain_nothing(tmp_path, generated_chapters, monkeypatch):
    """Delegation (plain and by default argument), a patched torch.allclose and an input
    transformer, answered in chapter 06 and graded as a learner would: no points for those
    exercises, the integrity check fails naming what changed, and the learner's files are unchanged."""
    import utils.course.grading
    from utils.course.grading import grade_notebooks

    # keep the autograded notebooks to see which cells raised (the integrity check is worth 0
    # points; the grader zeroes the chapter when it raised)
    graded = []
    original = utils.course.grading.TempCourse.autograded_notebook

    def keep(self, *args, **kwargs):
        nb = original(self, *args, **kwargs)
        graded.append(nb)
        return nb

    monkeypatch.setattr(utils.course.grading.TempCourse, "autograded_notebook", keep)

    release = read_notebook(generated_chapters / CH / f"{CH}.ipynb")
    solution = read_notebook(solution_path(REPO, CH))
    sol_answers = {c.metadata["nbgrader"]["grade_id"]: c.source for c in solution.cells
                   if c.metadata.get("nbgrader", {}).get("solution")}
    delegating = copy.deepcopy(release)
    for gid, src in sol_answers.items():
        set_answer(delegating, gid, ATTACKS.get(gid, src))
    transformed = copy.deepcopy(release)
    for gid, src in sol_answers.items():
        set_answer(transformed, gid, TRANSFORMER if gid == "ex-average-probabilities" else src)
    paths = [tmp_path / "delegating" / f"{CH}.ipynb", tmp_path / "transformer" / f"{CH}.ipynb"]
    for nb, path in zip((delegating, transformed), paths):
        write_notebook(nb, path)
    digests = [hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in paths]

    reports = grade_notebooks(paths, root=REPO, timeout=300)

    assert [hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in paths] == digests, \
        "grading must not change the learner's files"
    assert len(graded) == 2
    got = reports[0].points()
    for gid in ("test-average-probabilities", "test-greedy-soup", "test-moe-forward"):
        assert got[gid] == 0, reports[0].format()
    msgs = {e.grade_id: e.message for e in reports[0].exercises}
    assert "write average_probabilities yourself" in msgs["test-average-probabilities"], reports[0].format()
    assert "utils.fuse.greedy_soup is not allowed" in msgs["test-greedy-soup"], reports[0].format()
    assert "torch.allclose was replaced" in _integrity_error(graded[0])

    assert reports[1].points()["test-average-probabilities"] == 0, reports[1].format()
    assert "input_transformers_cleanup" in _integrity_error(graded[1])
