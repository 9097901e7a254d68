"""Runtime, stats, cache and model/loop basics."""
import math

import pytest
import torch

from utils.cache import atomic_write_bytes, settings_key
from utils.errors import CourseError
from utils.models import MLP, ConvBackbone, conv4_classifier, count_parameters
from utils.runtime import pick_device, resolve_fast, seed_everything
from utils.stats import mean_ci95
from utils.training import evaluate, fit


def test_pick_device():
    assert pick_device("cpu").type == "cpu"
    assert pick_device("auto").type in ("cpu", "cuda", "mps")
    with pytest.raises(CourseError, match="one of 'auto'"):
        pick_device("tpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_request_without_gpu_fails_clearly():
    with pytest.raises(CourseError, match=r"device: expected a machine with a CUDA GPU.*What to do"):
        pick_device("cuda")
    with pytest.raises(CourseError, match="CUDA"):
        fit(MLP([2, 1]), (torch.zeros(4, 2), torch.zeros(4, 1)), epochs=1, device="cuda",
            loss_fn=torch.nn.functional.mse_loss, progress=False)


def test_resolve_fast(monkeypatch):
    monkeypatch.delenv("COURSE_FAST", raising=False)
    assert resolve_fast(False) is False and resolve_fast(True) is True
    monkeypatch.setenv("COURSE_FAST", "1")
    assert resolve_fast(False) is True


def test_mean_ci95_matches_formula():
    vals = [0.2, 0.4, 0.6, 0.8]
    mean, half = mean_ci95(vals)
    sd = math.sqrt(sum((v - 0.5) ** 2 for v in vals) / 3)
    assert mean == pytest.approx(0.5) and half == pytest.approx(1.96 * sd / 2)
    with pytest.raises(CourseError, match="at least 2"):
        mean_ci95([0.5])


def test_atomic_write_leaves_no_partial_file(tmp_path):
    target = tmp_path / "a" / "f.bin"
    atomic_write_bytes(target, b"abc")
    assert target.read_bytes() == b"abc"
    with pytest.raises(TypeError):
        atomic_write_bytes(target, 12345)  # not bytes: fails while writing
    assert target.read_bytes() == b"abc"
    assert [p.name for p in target.parent.iterdir()] == ["f.bin"]
    assert settings_key({"a": 1, "b": 2}) == settings_key({"b": 2, "a": 1})


def test_models_shapes():
    assert MLP([1, 40, 40, 1])(torch.zeros(5, 1)).shape == (5, 1)
    bb = ConvBackbone()
    assert bb(torch.zeros(2, 1, 28, 28)).shape == (2, bb.feature_dim) and bb.feature_dim == 64
    clf = conv4_classifier(5)
    assert clf(torch.zeros(3, 1, 28, 28)).shape == (3, 5)
    assert count_parameters(MLP([1, 40, 40, 1])) == 1761
    with pytest.raises(CourseError, match="sizes"):
        MLP([3])
    with pytest.raises(CourseError, match="blocks"):
        ConvBackbone(image_size=8, blocks=4)


def test_fit_is_deterministic_and_learns():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, 2, generator=g)
    y = (x[:, 0] + x[:, 1] > 0).long()
    runs = []
    for _ in range(2):
        seed_everything(0)
        model = MLP([2, 16, 2])
        h = fit(model, (x, y), (x, y), epochs=5, lr=1e-2, seed=0, progress=False, device="cpu")
        runs.append((h.train_loss, [p.detach().clone() for p in model.parameters()]))
    assert runs[0][0] == runs[1][0]
    for a, b in zip(runs[0][1], runs[1][1]):
        torch.testing.assert_close(a, b)
    assert h.val_acc[-1] > 0.9 and len(h.seconds) == 5
    assert evaluate(model, (x, y), "cpu")["accuracy"] == pytest.approx(h.val_acc[-1])
    with pytest.raises(CourseError, match="as many targets"):
        fit(model, (x, y[:10]), epochs=1, progress=False)
    with pytest.raises(CourseError, match="optimizer"):
        fit(model, (x, y), epochs=1, optimizer="lbfgs", progress=False)


# --------------------------------------------------------------------------- the environment of headless runs
def test_headless_env_separates_size_from_who_is_looking():
    from utils.runtime import FAST_ENV, HEADLESS_ENV, headless_env
    base = {"COURSE_FAST": "1", "OMP_NUM_THREADS": "7", "OTHER": "x"}
    full = headless_env(fast=False, base=base)
    assert full[HEADLESS_ENV] == "1" and FAST_ENV not in full      # an outer FAST does not leak in
    assert full["OMP_NUM_THREADS"] == "7" and full["MKL_NUM_THREADS"] == "2" and full["OTHER"] == "x"
    assert base == {"COURSE_FAST": "1", "OMP_NUM_THREADS": "7", "OTHER": "x"}   # untouched
    quick = headless_env(fast=True, base={})
    assert quick[FAST_ENV] == "1" and quick[HEADLESS_ENV] == "1"


def test_is_headless_reads_only_course_headless(monkeypatch):
    from utils.widgets import is_headless
    monkeypatch.delenv("COURSE_HEADLESS", raising=False)
    monkeypatch.setenv("COURSE_FAST", "1")          # a learner running FAST in JupyterLab is looking
    assert is_headless() is False
    assert resolve_fast(False) is True              # ... and still gets the FAST sizes
    monkeypatch.setenv("COURSE_HEADLESS", "1")
    monkeypatch.delenv("COURSE_FAST")
    assert is_headless() is True and resolve_fast(False) is False


def test_every_course_variable_is_named_in_runtime_only():
    """utils.runtime owns the COURSE_* names: no other engine or machinery file spells one out."""
    import re
    from pathlib import Path

    import utils
    from utils.runtime import COURSE_ENV_NAMES
    root = Path(utils.__file__).resolve().parent
    files = [p for p in root.rglob("*.py") if p.name != "runtime.py"] + [root.parent / "nbgrader_config.py"]
    spelled = {}
    for p in files:
        for name in re.findall(r"""["'](COURSE_[A-Z_]+)["']""", p.read_text(encoding="utf-8")):
            spelled.setdefault(name, []).append(str(p.relative_to(root.parent)))
    assert not spelled, f"use the constants of utils.runtime instead of the literal names: {spelled}"
    runtime_text = (root / "runtime.py").read_text(encoding="utf-8")
    assert all(f'"{n}"' in runtime_text for n in COURSE_ENV_NAMES)


def test_thread_policy_small_work_override_and_bad_value(monkeypatch):
    from utils.runtime import THREADS_ENV, free_cores, threads_for, torch_threads, usable_cores
    monkeypatch.delenv(THREADS_ENV, raising=False)
    assert threads_for(1e3) == 1 and threads_for(None) == 1  # a sinusoid MLP step: one thread
    assert 1 <= threads_for(1e12) <= usable_cores()
    assert 0.0 <= free_cores(0.02) <= usable_cores()
    assert threads_for(1e3, threads=3) == 3
    monkeypatch.setenv(THREADS_ENV, "2")
    assert threads_for(1e3) == 2 and threads_for(1e12, threads=1) == 1
    monkeypatch.setenv(THREADS_ENV, "many")
    with pytest.raises(CourseError, match=THREADS_ENV):
        threads_for(1e3)
    before = torch.get_num_threads()
    with pytest.raises(RuntimeError):
        with torch_threads(before + 1):
            assert torch.get_num_threads() == before + 1
            raise RuntimeError("boom")
    assert torch.get_num_threads() == before


def test_headless_widgets_draw_once_and_display_no_output_widget(monkeypatch):
    """Headless, interactive_figure draws the default figure once and displays no widget (an
    Output widget capturing a figure can stall papermill's client), live it wires the controls."""
    import ipywidgets as widgets
    import IPython.display

    from utils.runtime import HEADLESS_ENV
    from utils.widgets import interactive_figure
    calls, shown = [], []
    monkeypatch.setattr(IPython.display, "display", lambda *a, **k: shown.append(a))
    monkeypatch.setenv(HEADLESS_ENV, "1")
    box = interactive_figure(lambda n: calls.append(n), n=widgets.IntSlider(value=3))
    assert calls == [3] and shown == [] and not any(isinstance(w, widgets.Output) for w in box.children)
    monkeypatch.delenv(HEADLESS_ENV)
    calls.clear()
    box = interactive_figure(lambda n: calls.append(n), n=widgets.IntSlider(value=4))
    assert shown and any(isinstance(w, widgets.Output) for w in box.children)
