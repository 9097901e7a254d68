"""The course's vocabulary (utils.vocab) is what the engine's signatures say: every ``source``
parameter is a TaskSource, and the model-to-model maps of chapters 04-06 take and return Networks."""
import ast
import inspect
from pathlib import Path

import pytest

import utils
from utils import compress, distill, fuse, learners

UTILS = Path(utils.__file__).resolve().parent


def _engine_functions():
    """(file, function node) for every function or method defined in engine code."""
    for path in sorted(UTILS.rglob("*.py")):
        if "course" in path.relative_to(UTILS).parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                yield path.relative_to(UTILS.parent), node


def test_every_source_parameter_is_a_task_source():
    bad, seen = [], 0
    for path, fn in _engine_functions():
        for a in fn.args.args + fn.args.kwonlyargs:
            if a.arg == "source":
                seen += 1
                text = ast.unparse(a.annotation) if a.annotation is not None else None
                if text not in ("TaskSource", "str"):      # str: a file name in error messages
                    bad.append(f"{path}:{fn.lineno} {fn.name}(source: {text})")
    assert seen >= 4, "the scan found too few `source` parameters: is it still reading the engine?"
    assert not bad, "annotate these with utils.vocab.TaskSource (a count -> a batch of tasks): " + "; ".join(bad)


def test_the_scan_sees_an_unannotated_source(tmp_path):
    fn = ast.parse("def f(learner, source, n=1): pass").body[0]
    assert [a.arg for a in fn.args.args if a.arg == "source" and a.annotation is None] == ["source"]


@pytest.mark.parametrize("fn", [learners.episode_source, learners.sinusoid_source])
def test_task_source_factories_say_so(fn):
    assert inspect.signature(fn).return_annotation == "TaskSource"


MODEL_MAPS = [
    (distill.distill, ("student", "teachers"), None),
    (distill.copy_weights, ("student", "teacher"), "Network"),
    (distill.interpolate_weights, ("model_a", "model_b"), "Network"),
    (compress.prune_model, ("model",), None),
    (compress.quantize_model_int8, ("model",), "Network"),
    (compress.dequantize_model, ("model",), "Network"),
    (compress.make_permanent, ("model",), "Network"),
    (fuse.interpolate_models, ("a", "b"), "Network"),
    (fuse.average_models, ("models",), "Network"),
]


@pytest.mark.parametrize("fn,params,returns", MODEL_MAPS, ids=[f.__name__ for f, _, _ in MODEL_MAPS])
def test_model_to_model_maps_speak_the_vocabulary(fn, params, returns):
    sig = inspect.signature(fn)
    for p in params:
        assert "Network" in str(sig.parameters[p].annotation), f"{fn.__name__}({p}=...) should be a utils.vocab.Network"
    if returns is not None:
        assert sig.return_annotation == returns
