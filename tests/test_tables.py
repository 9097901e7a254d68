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
