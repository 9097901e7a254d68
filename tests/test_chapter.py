"""utils.chapter: one call starts a chapter (seeds, FAST, device, threads) and finish() records figures."""
import json

import pytest
import torch

from utils.chapter import start_chapter
from utils.errors import CourseError
from utils.runtime import FAST_ENV, FIGURES_DIR_ENV


def test_start_chapter_seeds(monkeypatch):
    monkeypatch.delenv(FAST_ENV, raising=False)
    start_chapter("03_families", SEED=7)
    a = torch.rand(3)
    start_chapter("03_families", SEED=7)
    assert torch.equal(a, torch.rand(3))
    start_chapter("03_families", SEED=8)
    assert not torch.equal(a, torch.rand(3))


def test_fast_forced_by_environment(monkeypatch):
    monkeypatch.delenv(FAST_ENV, raising=False)
    assert start_chapter("01_mapping", FAST=False).fast is False
    monkeypatch.setenv(FAST_ENV, "1")
    ch = start_chapter("01_mapping", FAST=False)
    assert ch.fast is True and ch.size(fast=3, full=30) == 3


def test_device_and_threads():
    before = torch.get_num_threads()
    try:
        ch = start_chapter("02_maml_vs_transfer", DEVICE="cpu", threads=1)
        assert ch.device == torch.device("cpu") and torch.get_num_threads() == 1
        assert start_chapter("02_maml_vs_transfer").device.type in ("cpu", "cuda", "mps")
        with pytest.raises(CourseError, match="threads"):
            start_chapter("02_maml_vs_transfer", threads=0)
    finally:
        torch.set_num_threads(before)


def test_unknown_chapter_lists_known_ones():
    with pytest.raises(CourseError) as err:
        start_chapter("03_familes")
    assert "03_families" in str(err.value) and "07_interview" in str(err.value)


def test_finish_records_only_when_figures_dir_set(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv(FIGURES_DIR_ENV, raising=False)
    ch = start_chapter("05_compression", DEVICE="cpu")
    out = ch.finish({"acc": 0.5}, show=True)
    assert out == {"acc": 0.5} and not list(tmp_path.iterdir())
    assert "acc" in capsys.readouterr().out
    monkeypatch.setenv(FIGURES_DIR_ENV, str(tmp_path))
    ch.finish({"acc": 0.75}, show=False)
    written = json.loads((tmp_path / "05_compression.json").read_text())
    assert written == {"acc": 0.75}


def test_finish_rejects_non_finite(monkeypatch):
    monkeypatch.delenv(FIGURES_DIR_ENV, raising=False)
    with pytest.raises(CourseError, match="finite"):
        start_chapter("05_compression", DEVICE="cpu").finish({"acc": float("nan")}, show=False)
