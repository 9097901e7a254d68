"""Intervals that are right: Student's t over a few seeds, the normal z only over many episodes.

Issue 24 item 1. ``utils.stats.mean_ci95_t`` against the t formula, the t/z width ratio at n = 3,
and a scan of the solution notebooks that fails when an interval over training seeds is computed
with the normal quantile (``mean_ci95`` or a literal 1.96).
"""
from __future__ import annotations

import ast
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from utils.stats import mean_ci95, mean_ci95_t, seed_interval, seed_spread, t_quantile95

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "solutions").glob("*/*.ipynb"))
NORMAL_CALLS = {"mean_ci95", "mean_with_ci95"}          # helpers that use z = 1.96
SEED_LABEL = re.compile(r"CI over \S*\s*(training )?seeds\b", re.IGNORECASE)


def test_t_interval_of_a_known_sample_matches_the_formula():
    values = [0.61, 0.66, 0.70]
    mean, half = mean_ci95_t(values)
    s = float(np.std(values, ddof=1))
    assert mean == pytest.approx(np.mean(values))
    assert half == pytest.approx(4.302652729911275 * s / math.sqrt(3), rel=1e-9)


def test_t_over_z_width_ratio_for_three_seeds():
    values = [1.0, 2.0, 4.0]
    ratio = mean_ci95_t(values)[1] / mean_ci95(values)[1]
    assert ratio == pytest.approx(4.303 / 1.960, abs=1e-3)
    assert t_quantile95(2) == pytest.approx(12.706, abs=1e-3)


def test_t_meets_z_over_many_episodes():
    values = np.random.default_rng(0).uniform(0, 1, 600).tolist()
    assert mean_ci95_t(values)[1] == pytest.approx(mean_ci95(values)[1], rel=0.01)


def test_seed_interval_says_it_covers_training_seeds():
    r = seed_interval([0.5, 0.6, 0.7])
    assert r.over == "3 training seeds" and "95% CI over 3 training seeds" in r.format(covers=True)
    assert r.ci95 == pytest.approx(mean_ci95_t([0.5, 0.6, 0.7])[1])
    assert seed_spread([0.5, 0.6, 0.7]).ci95 == pytest.approx(r.ci95)


def test_t_interval_refuses_a_single_value():
    with pytest.raises(Exception, match="seed"):
        mean_ci95_t([0.5])


def _names(node) -> set:
    """Names and attributes in ``node``, not those inside an index (``SEEDS[0]`` is one seed)."""
    if isinstance(node, ast.Subscript):
        return _names(node.value)
    own = {node.id} if isinstance(node, ast.Name) else {node.attr} if isinstance(node, ast.Attribute) else set()
    return own.union(*(_names(c) for c in ast.iter_child_nodes(node)))


def _strings(node) -> list:
    """Every string literal in ``node``; an f-string as its source (``"CI over {n} seeds"``)."""
    return [ast.unparse(n) if isinstance(n, ast.JoinedStr) else n.value for n in ast.walk(node)
            if isinstance(n, ast.JoinedStr) or (isinstance(n, ast.Constant) and isinstance(n.value, str))]


def normal_intervals_over_seeds(source: str) -> list:
    """Lines of ``source`` where an interval over training seeds uses the normal quantile.

    A call to a z = 1.96 helper is seed-level when its argument names a seed (``seed_means(...)``,
    ``per_seed``), when it sits in a function named after seeds (``over_seeds``), or when the block
    around it labels its interval "CI ... over ... seeds".
    """
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    found = []

    def visit(block, context_seed: bool):
        label = any(SEED_LABEL.search(t) for t in _strings(ast.Module(body=list(block), type_ignores=[])))
        for stmt in block:
            inner = context_seed or (isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)) and "seed" in stmt.name.lower())
            for child in ("body", "orelse", "finalbody"):
                if isinstance(getattr(stmt, child, None), list) and getattr(stmt, child) and \
                        isinstance(getattr(stmt, child)[0], ast.stmt):
                    visit(getattr(stmt, child), inner)
            simple = [stmt] if not hasattr(stmt, "body") else \
                [getattr(stmt, f) for f in ("test", "iter", "value") if getattr(stmt, f, None) is not None]
            for part in simple:
                for call in (n for n in ast.walk(part) if isinstance(n, ast.Call)):
                    fn = call.func.id if isinstance(call.func, ast.Name) else getattr(call.func, "attr", "")
                    if fn not in NORMAL_CALLS:
                        continue
                    args_seed = any("seed" in n.lower() for a in call.args for n in _names(a))
                    if inner or args_seed or label:
                        found.append(call.lineno)

    visit(tree.body, False)
    return found


def test_the_scan_catches_a_normal_interval_over_seeds():
    assert normal_intervals_over_seeds("def over_seeds(v):\n    return mean_ci95(v)\n") == [2]
    assert normal_intervals_over_seeds("m, h = mean_ci95(seed_means('x'))\n") == [1]
    assert normal_intervals_over_seeds("for s in S:\n    m, h = mean_ci95(d)\n    print(f'{m} (95% CI over {n} seeds)')\n") == [2]
    assert normal_intervals_over_seeds("m, h = mean_ci95(episodes)\nprint('95% CI over 600 test episodes')\n") == []
    assert normal_intervals_over_seeds("def over_seeds(v):\n    return mean_ci95_t(v)\n") == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.parent.name)
def test_no_seed_level_interval_uses_the_normal_quantile(path):
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    bad = [(c.get("id"), line) for c in cells if c["cell_type"] == "code"
           for line in normal_intervals_over_seeds("".join(c["source"]))]
    assert not bad, (f"{path.name}: intervals over training seeds computed with z = 1.96 in cells {bad}; "
                     "over a few seeds use utils.stats.mean_ci95_t (Student's t) or seed_interval")
