"""utils.tables and utils.plots.labelled_axes: the chapters' shared table and figure helpers."""
import matplotlib
import pytest

matplotlib.use("Agg")

from utils.errors import CourseError  # noqa: E402
from utils.plots import labelled_axes  # noqa: E402
from utils.tables import results_table  # noqa: E402


def test_table_aligns_numbers_right_and_text_left_and_formats_cis():
    text = results_table(["method", "MSE", "n"], [["MAML", (0.41, 0.05), 3], ["fine-tune", 2.4, 12]])
    lines = text.splitlines()
    assert lines[0].split() == ["method", "MSE", "n"]
    assert "0.410 ± 0.050" in lines[2] and lines[3].startswith("fine-tune")
    assert lines[2].endswith(" 3") and lines[3].endswith("12")
    assert len({len(l) for l in lines[1:]}) == 1, "rows line up"


def test_table_rejects_a_row_of_the_wrong_length_with_a_clear_error():
    with pytest.raises(CourseError, match="2 values"):
        results_table(["a", "b"], [[1, 2, 3]])


def test_labelled_axes_label_every_axis():
    fig, axes = labelled_axes("inner steps", ["query MSE", "accuracy (%)"], title="t", ncols=2)
    assert [a.get_xlabel() for a in axes] == ["inner steps"] * 2
    assert [a.get_ylabel() for a in axes] == ["query MSE", "accuracy (%)"]
    fig, ax = labelled_axes("x (units)", "y (units)", title="one")
    assert ax.get_title() == "one" and ax.get_xlabel() == "x (units)"


def test_table_takes_one_float_format_per_column():
    text = results_table(["name", "accuracy", "ms"], [["a", 0.9123, 1.23456]], floatfmt=["", ".1%", ".2f"])
    assert text.splitlines()[2].split() == ["a", "91.2%", "1.23"]
    with pytest.raises(CourseError, match="one per column"):
        results_table(["a", "b"], [[1, 2]], floatfmt=[".1f"])


def test_labelled_axes_grid_labels_every_row():
    fig, rows = labelled_axes(["", "class"], ["", "probability"], ncols=2, nrows=2,
                              gridspec_kw={"width_ratios": [1, 3]})
    assert len(rows) == 2 and all(r[1].get_xlabel() == "class" and r[1].get_ylabel() == "probability" for r in rows)


def test_show_table_takes_results(capsys):
    from utils.results import MetaResult
    from utils.tables import show_table
    r = MetaResult("accuracy", 0.5, 0.01, [0.5] * 600)
    show_table({"ProtoNet": r, "MAML": MetaResult("accuracy", 0.4, 0.02, [0.4] * 3, covers="3 seeds")})
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["result", "metric", "mean", "±", "95%", "CI", "over"]
    assert "50.00 ± 1.00" in out[2] and "600 test episodes" in out[2] and "3 seeds" in out[3]
    show_table(["learner", "1-shot (%)"], [["ProtoNet", r]], floatfmt=".1f")   # a result as a cell
    assert "50.0 ± 1.0" in capsys.readouterr().out


def test_show_table_rejects_a_bare_non_result():
    import pytest
    from utils.errors import CourseError
    from utils.tables import show_table
    with pytest.raises(CourseError, match="MetaResult"):
        show_table({"a": 1})
