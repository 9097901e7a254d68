"""Recorded full-mode runs (``utils.course.recorded``, ``python -m utils.course record``): what a
recording holds, when it is current, which runs it refuses; and, over the real course, that every
recording in ``data/recorded/`` is current with today's ``solutions/``.

The recording round trip through a real ``course run --full`` and the book's pages is in
``tests/test_book.py`` (``test_toy_book_shows_a_current_recording_and_falls_back_to_fast_when_stale``);
here the executed notebooks are made by hand (no kernel), so every refusal is cheap to reach.
"""
from __future__ import annotations

import base64
import copy
import hashlib
import json
import os
from datetime import datetime, timezone

import pytest
from nbformat.v4 import new_output

from conftest import REPO, write_toy_course
from utils.course.cli import main
from utils.course.notebooks import read_notebook, solution_path, write_notebook
from utils.course.recorded import (EMPTY_STORY, code_cells, is_recording_current, load_recording,
                                   record_build, recorded_notebook, recording_path, stale_recordings)
from utils.errors import CourseError

#: The fields every recording has (other code reads them: the book, utils.story).
FIELDS = {"chapter", "mode", "date", "machine", "seconds", "code_cells", "outputs", "figures", "story"}
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + bytes(64)).decode()
WIDGET = "application/vnd.jupyter.widget-view+json"


def _executed(solution, *, fast=False, exception=False, error=False):
    """``solution`` as papermill would leave it: parameters, times, outputs on the code cells."""
    nb = copy.deepcopy(solution)
    nb.metadata["papermill"] = {"parameters": {"FAST": fast}, "exception": exception,
                                "start_time": "2026-11-30T09:00:00+00:00", "end_time": "2026-11-30T09:20:00+00:00",
                                "duration": 1200.04}
    for n, cell in enumerate(c for c in nb.cells if c.cell_type == "code"):
        cell.execution_count = n + 1
        cell.outputs = [new_output("stream", name="stdout", text=f"cell {cell.id} says FAST={fast}\n")]
    setup = next((c for c in nb.cells if c.get("id") == "setup"), None)
    if setup is None:  # 02_other: plain outputs only
        return nb
    setup.outputs += [
        new_output("stream", name="stderr", text="a warning\r10%\r20%\n"),
        new_output("display_data", data={"image/png": PNG, "text/plain": "<Figure>"}),
        new_output("display_data", data={WIDGET: {"model_id": "abc", "version_major": 2, "version_minor": 0},
                                         "text/plain": "IntSlider(value=1)"}),
        new_output("execute_result", data={"text/plain": "42"}, execution_count=7)]
    if error:
        setup.outputs.append(new_output("error", ename="ValueError", evalue="boom", traceback=[]))
    return nb


@pytest.fixture
def course(tmp_path):
    """A toy course with a hand-made full run of both chapters under ``build/``."""
    root = write_toy_course(tmp_path / "course")
    for ch in ("01_toy", "02_other"):
        write_notebook(_executed(read_notebook(solution_path(root, ch))),
                       root / "build" / "executed" / ch / f"{ch}.ipynb")
    figures = root / "build" / "figures"
    figures.mkdir()
    (figures / "01_toy.json").write_text(json.dumps({"toy_answer": 42, "fast": False}), encoding="utf-8")
    story = {"rankings": {"toy": {"order": ["a", "b"], "seeds": 3}}, "claims": {"toy-claim": True}}
    (figures / "01_toy.story.json").write_text(json.dumps(story), encoding="utf-8")
    return root


def _replace_run(root, chapter, nb):
    write_notebook(nb, root / "build" / "executed" / chapter / f"{chapter}.ipynb")


def test_a_recording_holds_the_fields_outputs_figures_and_story(course):
    paths = record_build(course, course / "build", log=lambda m: None)
    assert paths == [recording_path(ch, course) for ch in ("01_toy", "02_other")]
    text = paths[0].read_text(encoding="utf-8")
    rec = json.loads(text)
    assert text == json.dumps(rec, sort_keys=True, indent=1, ensure_ascii=False) + "\n"
    assert set(rec) == FIELDS
    assert (rec["chapter"], rec["mode"], rec["date"], rec["seconds"]) == ("01_toy", "full", "2026-11-30", 1200.0)
    solution = read_notebook(solution_path(course, "01_toy"))
    code = [c for c in solution.cells if c.cell_type == "code"]
    assert rec["code_cells"] == {c.id: hashlib.sha256(c.source.encode()).hexdigest() for c in code}
    assert set(rec["outputs"]) == {c.id for c in code}
    setup = rec["outputs"]["setup"]
    kinds = [(o["output_type"], o.get("name"), sorted(o.get("data", {}))) for o in setup]
    # stdout and the PNG stay; stderr and the widget (no static view) go; execution counts go
    assert kinds == [("stream", "stdout", []), ("display_data", None, ["image/png", "text/plain"]),
                     ("execute_result", None, ["text/plain"])]
    assert setup[1]["data"]["image/png"] == PNG and setup[2]["execution_count"] is None
    assert rec["figures"] == {"toy_answer": 42, "fast": False}
    assert rec["story"]["claims"] == {"toy-claim": True}
    other = load_recording("02_other", course)
    assert other["figures"] == {} and other["story"] == EMPTY_STORY


def test_a_recording_is_current_until_a_code_cell_changes(course):
    record_build(course, course / "build", log=lambda m: None)
    assert is_recording_current("01_toy", course) and stale_recordings(course) == []
    path = solution_path(course, "01_toy")
    nb = read_notebook(path)
    nb.cells[0].source += "\n\nProse may change: the book takes it from today's notebook."
    write_notebook(nb, path)
    assert is_recording_current("01_toy", course)
    setup = next(c for c in nb.cells if c.get("id") == "setup")
    setup.source += "\nprint('one more line')"
    write_notebook(nb, path)
    assert not is_recording_current("01_toy", course)
    assert stale_recordings(course) == ["01_toy"]
    shown = recorded_notebook(load_recording("01_toy", course), nb)
    assert [o["text"] for o in next(c for c in shown.cells if c.get("id") == "figures").outputs] == \
        ["cell figures says FAST=False\n"]
    assert not is_recording_current("03_missing", course)


@pytest.mark.parametrize("how, found", [
    ("fast", "found a run with FAST = True"),
    ("exception", "found a run that raised. "),
    ("error", "found a run that raised (ValueError: boom)"),
    ("not papermill", "found no papermill parameters (not a `course run` output)"),
])
def test_record_refuses_a_fast_or_failed_run(course, how, found):
    solution = read_notebook(solution_path(course, "01_toy"))
    nb = _executed(solution, fast=how == "fast", exception=how == "exception", error=how == "error")
    if how == "not papermill":
        del nb.metadata["papermill"]
    _replace_run(course, "01_toy", nb)
    with pytest.raises(CourseError) as err:
        record_build(course, course / "build", log=lambda m: None)
    message = str(err.value)
    assert found in message and "run --full --only 01" in message and "record --build" in message
    assert "1 of 2 run(s) refused, nothing recorded" in message
    assert not (course / "data" / "recorded").exists()  # the good run of 02_other is not written either


def test_record_refuses_a_story_left_by_an_earlier_run(course):
    """`course run` merges into the story file: one older than the run is an earlier run's."""
    story = course / "build" / "figures" / "01_toy.story.json"
    early = datetime(2026, 11, 30, 8, 59, tzinfo=timezone.utc).timestamp()  # the run began at 09:00
    os.utime(story, (early, early))
    with pytest.raises(CourseError, match=r"01_toy\.story\.json, older than the run \(an earlier run's\)\. "
                                          r"What to do: delete it, then run it again in full mode"):
        record_build(course, course / "build", log=lambda m: None)


def test_record_refuses_a_run_of_other_code_cells(course):
    solution = read_notebook(solution_path(course, "01_toy"))
    nb = _executed(solution)
    next(c for c in nb.cells if c.get("id") == "setup").source += "\n# edited after the run"
    nb.cells = [c for c in nb.cells if c.get("id") != "figures"]
    extra = copy.deepcopy(next(c for c in nb.cells if c.get("id") == "setup"))
    extra.id = "scratch"
    nb.cells.append(extra)
    _replace_run(course, "01_toy", nb)
    with pytest.raises(CourseError) as err:
        record_build(course, course / "build", only=["01"], log=lambda m: None)
    message = str(err.value)
    assert "expected code cells equal to today's solutions/01_toy" in message
    assert ("found code cells changed since the run: setup; new since the run: figures; "
            "gone since the run: scratch") in message


def test_record_command_and_its_errors(course, tmp_path, capsys):
    assert main(["--root", str(course), "record", "--build", str(course / "build"), "--only", "02"]) == 0
    out = capsys.readouterr().out
    assert "recorded 02_other: full run of 2026-11-30" in out and "1 chapter(s) recorded" in out
    assert [p.name for p in (course / "data" / "recorded").iterdir()] == ["02_other.json"]
    assert main(["--root", str(course), "record", "--build", str(tmp_path / "empty")]) == 2
    err = capsys.readouterr().err
    assert "expected executed chapters in" in err and "run --full --build" in err


def test_recordings_are_current():
    """Every recording shipped in data/recorded/ was made from today's code cells (none yet is fine)."""
    stale = stale_recordings(REPO)
    assert not stale, (
        f"recorded full-mode runs older than the chapter's code: {', '.join(stale)}. What to do: "
        + "; ".join(f"`python -m utils.course run --full --only {ch[:2]} --build build/full && "
                    f"python -m utils.course record --build build/full --only {ch[:2]}`" for ch in stale)
        + ", then commit data/recorded/ (CONTRIBUTING.md, 'Recorded full-mode runs')")
    for path in sorted((REPO / "data" / "recorded").glob("*.json")):
        rec = json.loads(path.read_text(encoding="utf-8"))
        assert set(rec) == FIELDS and rec["chapter"] == path.stem and rec["mode"] == "full", path
        assert code_cells(read_notebook(solution_path(REPO, path.stem))) == rec["code_cells"]
