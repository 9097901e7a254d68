"""utils.results: a result says what its interval covers, prints, renders as HTML and as a table row;
utils.plots.plot_intervals draws intervals with that label."""
import pickle

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pytest

from utils.errors import CourseError
from utils.plots import plot_intervals
from utils.results import RESULT_HEADER, MetaResult


def test_positional_constructor_and_default_covers():
    r = MetaResult("accuracy", 0.482, 0.011, [0.5] * 600)
    assert r.covers == "600 test episodes"
    assert MetaResult("mse", 0.1, 0.01, [0.1]).covers == "1 test episode"
    assert MetaResult("mse", 0.1, 0.01, [1, 2, 3], covers="3 training seeds").covers == "3 training seeds"


def test_format_str_and_html():
    r = MetaResult("accuracy", 0.482, 0.011, [0.5] * 600)
    assert str(r) == "48.20 ± 1.10% accuracy"
    assert r.format(digits=1, covers=True) == "48.2 ± 1.1% accuracy (95% CI over 600 test episodes)"
    assert str(MetaResult("mse", 0.25, 0.01, [0.2] * 10)) == "0.250 ± 0.010 mse"
    html = MetaResult("a<b", 1.0, 0.1, [1, 2])._repr_html_()
    assert "a&lt;b" in html and "95% CI over 2 test episodes" in html
    with pytest.raises(CourseError, match="digits"):
        r.format(digits=-1)


def test_row_matches_header():
    r = MetaResult("accuracy", 0.5, 0.01, [0.5] * 100, covers="3 seeds")
    assert r.row("ProtoNet") == ["ProtoNet", "accuracy (%)", "50.00 ± 1.00", "3 seeds"]
    assert len(r.row()) == len(RESULT_HEADER)


def test_results_pickled_before_covers_still_label_themselves():
    r = MetaResult("accuracy", 0.5, 0.01, [0.5] * 4)
    del r.__dict__["covers"]          # what an object pickled by the older class holds
    r2 = pickle.loads(pickle.dumps(r))
    assert r2.interval_label() == "95% CI over 4 test episodes"


def test_plot_intervals_labels_what_the_interval_covers():
    fig, ax = plt.subplots()
    plot_intervals(ax, [1, 5], [MetaResult("accuracy", 0.5, 0.02, [0.5] * 600)] * 2, label="ProtoNet")
    plot_intervals(ax, [1, 5], [0.3, 0.4], [0.1, 0.1], covers="3 seeds", interval="± 1 std", kind="band")
    (text,) = ax.texts
    assert text.get_text() == "95% CI over 600 test episodes; ± 1 std over 3 seeds"
    (line, ) = [c for c in ax.containers]                      # the errorbar container
    assert list(line.lines[0].get_ydata()) == [50.0, 50.0]     # accuracies drawn in %
    with pytest.raises(CourseError, match="covers"):
        plot_intervals(ax, [1], [0.3], [0.1])
    with pytest.raises(CourseError, match="kind"):
        plot_intervals(ax, [1], [0.3], [0.1], covers="3 seeds", kind="violin")
    plt.close(fig)
