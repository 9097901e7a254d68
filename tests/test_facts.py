"""Facts the course once taught wrongly (issue 13, §1) stay right in the bank, the glossary and the
chapters, and the numbers they carry agree wherever they appear."""
from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import pytest

from utils.interview import load_bank

REPO = Path(__file__).resolve().parents[1]

#: Wrong statements that were once in the course, and why each is wrong.
WRONG = {
    "only if held-out accuracy improves": "a greedy soup keeps a candidate when held-out accuracy does not drop (>=)",
    "only if it improves": "a greedy soup keeps a candidate when held-out accuracy does not drop (>=)",
    "sends gradients into the teacher": "F.kl_div is differentiable in its target: the swapped form still trains "
                                        "the student, towards the reverse KL(student || teacher)",
    "is 20 in floating point": "0.7 * 30 == 21.0 exactly in IEEE double",
    "0.7 * 30 = 20.999": "0.7 * 30 == 21.0 exactly in IEEE double",
    "T = 4 apply to them compared with T = 1": "1/T^2 is the high-temperature limit, not exact near T = 1",
    "(here: one softmax over all meta-training characters)": "one softmax over all classes is one task, "
                                                             "not multi-task learning",
    "The pre-trained classifier *is* a": "one softmax over all classes is one task, not multi-task learning",
    "| Nichol et al. 2018, Table 1 |\n": "the first-order MAML Omniglot figures are Finn et al. 2017's, Table 1",
}


def _cell(chapter: str, cell_id: str):
    nb = nbformat.read(REPO / "solutions" / chapter / f"{chapter}.ipynb", as_version=4)
    cells = [c for c in nb.cells if c.get("id") == cell_id]
    assert len(cells) == 1, f"{chapter}: one cell with id {cell_id!r}"
    return cells[0]


def _course_texts():
    """(name, text) of the bank, the glossary, every solution notebook's cells and the engine."""
    yield "utils/question_bank.json", (REPO / "utils/question_bank.json").read_text(encoding="utf-8")
    yield "utils/glossary.json", (REPO / "utils/glossary.json").read_text(encoding="utf-8")
    for path in sorted((REPO / "solutions").glob("*/*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            yield f"{path.parent.name}#{cell.get('id')}", cell.source + "\n"
    for path in sorted((REPO / "utils").glob("*.py")):
        yield str(path.relative_to(REPO)), path.read_text(encoding="utf-8")


@pytest.mark.parametrize("wrong", sorted(WRONG))
def test_the_wrong_statement_is_gone(wrong):
    found = [name for name, text in _course_texts() if wrong in text]
    assert not found, f"{wrong!r} ({WRONG[wrong]}) still in: {found}"


def test_the_float_rounding_example_is_true():
    """Chapter 05 §3: the product that misses its integer is 0.7 * 90, not 0.7 * 30."""
    assert 0.7 * 90 == 62.99999999999999 and int(0.7 * 90) == 62 and round(0.7 * 90) == 63
    assert 0.7 * 30 == 21.0
    assert "62.99999999999999" in _cell("05_compression", "sec-prune").source
    assert "0.7 * 90 == 62.99999999999999" in _cell("05_compression", "prune-rounding").source   # its ch.claim


def _percent(text: str, label: str) -> float:
    m = re.search(re.escape(label) + r"[^\n\d]*?(\d+\.\d+)%", text)
    assert m, f"no percentage after {label!r}"
    return float(m.group(1))


def test_soup_figures_agree_and_keep_their_order():
    """CLIP ViT-B/32 on ImageNet (Wortsman et al. 2022): uniform soup < best single fine-tune < greedy soup."""
    table = _cell("06_fusion", "naive-discussion").source
    best, uniform, greedy = (_percent(table, f"| {row} |") for row in
                             ("best single fine-tune", "uniform soup", "greedy soup"))
    assert (uniform, best, greedy) == (79.97, 80.4, 81.03)
    assert uniform < best < greedy
    answer = load_bank()["fuse-soups"].model_answer
    for figure in ("79.97%", "about 80.4%", "81.03%"):
        assert figure in answer
    assert "does not drop (≥)" in answer
    glossary = {e["term"]: e for e in json.loads((REPO / "utils/glossary.json").read_text(encoding="utf-8"))}
    assert "does not drop (≥)" in glossary["model soup"]["definition"]


def test_t_squared_drill_asks_in_the_high_temperature_range_and_matches_its_hidden_answer():
    q = load_bank()["drill-t-squared"]
    assert "high-temperature limit" in q.question_en and "高温极限" in q.question_zh
    low, high = map(float, re.search(r"from (\d+) to (\d+)", q.question_en).groups())
    assert f"从 {low:g} 提高到 {high:g}" in q.question_zh
    hidden = _cell("07_interview", "test-t-squared").source
    value = float(re.search(r"ANSWER_T_SQUARED\S*\) - ([0-9.]+)\)", hidden).group(1))
    assert value == (low / high) ** 2
    # chapter 04 measures the same ratio, and asserts it where 1/T^2 holds
    measured = _cell("04_distillation", "gradient-scale").source
    assert f"grid.index({low:g})] / without_t2[grid.index({high:g})]" in measured
    assert "assert abs(shrink_high / 16 - 1)" in measured and (high / low) ** 2 == 16


def test_kl_direction_answer_says_the_swap_still_trains_the_student():
    answer = load_bank()["dist-kl-direction"].model_answer
    assert "still trains the student" in answer and "KL(student ‖ teacher)" in answer
    assert "mode-seeking" in answer


def test_omniglot_figures_are_attributed_to_finn_et_al_and_marked_transductive():
    table = _cell("02_maml_vs_transfer", "anchors-md").source
    rows = {line.split("|")[1].strip(): line for line in table.splitlines() if line.startswith("| Omniglot")}
    for method, figures in (("MAML", "98.7 ± 0.4% / 99.9 ± 0.1%"), ("first-order MAML", "98.3 ± 0.5% / 99.2 ± 0.2%")):
        row = rows[f"Omniglot 5-way 1-shot / 5-shot, {method}, **transductive**"]
        assert figures in row and "Finn et al. 2017, Table 1" in row and "+ Transduction" in row
    protonet = [r for k, r in rows.items() if "Prototypical" in k][0]
    assert "60-way" in protonet and "98.8% / 99.7%" in protonet
    strategies = _cell("01_mapping", "strategies-md").source
    assert "98.7 ± 0.4% (Finn et al., 2017, Table 1)" in strategies and "**transductive**" in strategies
    assert "60-way" in strategies
    bank = load_bank()["eval-transductive"].model_answer
    assert "Finn et al., 2017, Table 1" in bank and "+ Transduction" in bank


def test_multi_task_learning_is_not_one_softmax_and_question_3_keeps_its_answer():
    vs = _cell("01_mapping", "vs-md").source
    row = [line for line in vs.splitlines() if line.startswith("| **multi-task learning**")][0]
    assert "one loss (often one output head) per task" in row
    assert "is **not** a multi-task" in vs
    # question 3 labels the three-headed network of team C multi-task, the one-classifier team A transfer
    assert "three output heads" in _cell("01_mapping", "q-kind-md").source
    md = _cell("01_mapping", "q-kind-md").source
    assert "* (a) A: transfer learning, B: meta-learning, C: multi-task learning" in md
    assert 'what="ANSWER_KINDS") == "a"' in _cell("01_mapping", "test-q-kind").source
