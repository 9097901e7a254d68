"""Every claim in a chapter's prose names its check, and every check names its cell (issue 24, item 3).

The scan is :mod:`utils.course.claims`; ``python -m utils.course.claims`` prints what it finds.
"""
from __future__ import annotations

from pathlib import Path

import nbformat

from utils.course.claims import is_claim, scan_course, scan_notebook, sentences

REPO = Path(__file__).resolve().parents[1]


def notebook(*cells) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    for i, (kind, source) in enumerate(cells):
        make = nbformat.v4.new_markdown_cell if kind == "md" else nbformat.v4.new_code_cell
        nb.cells.append(make(source, id=f"c{i}"))
    return nb


def test_every_claim_in_the_prose_is_linked_to_its_check():
    problems = []
    for r in scan_course(REPO):
        problems += [f"{r.chapter} [{cid}] unlinked: {s}" for cid, s in r.unlinked]
        problems += [f"{r.chapter} [{cid}] tag [✓ {n}] has no ch.claim" for cid, n in r.dangling]
        problems += [f"{r.chapter}: ch.claim({n!r}, {t!r}) but that cell lacks the tag" for n, t in r.misplaced]
        problems += [f"{r.chapter}: tag {n} placed or checked twice" for n in r.duplicated]
        problems += [f"{r.chapter}: stale exemption: {s}" for s in r.stale]
    assert not problems, (f"{len(problems)} claim problems (run `python -m utils.course.claims`):\n"
                          + "\n".join(problems[:60]))


def test_the_course_has_checked_claims_in_every_content_chapter():
    reports = {r.chapter: r for r in scan_course(REPO)}
    for chapter in list(reports)[:6]:
        assert reports[chapter].linked >= 5, f"{chapter}: only {reports[chapter].linked} linked claims"


def test_what_counts_as_a_claim():
    assert is_claim("ProtoNet beats MAML on every seed.")
    assert is_claim("The error falls by 12%.")
    assert is_claim("It is 3.4 points ahead.")
    assert is_claim("Fine-tuning dispatches several times more operators.")
    assert is_claim("MAML is slower than ProtoNet.")
    assert not is_claim("### Exercise 2 (2 points)")
    assert not is_claim("Implement $\\theta_1 = \\theta_0 - 0.01 \\nabla L$ in `inner_step(0.5)`.")
    assert not is_claim("Snell et al. 2017 introduced prototypes (chapter 03).")


def test_sentences_split_lists_and_tables_and_skip_headings():
    got = sentences("## Title 1.5%\n\nOne. Two beats three.\n\n* item 50%\n* other\n\n| a | b |\n|---|---|\n| x | 9.5 |")
    assert got == ["One.", "Two beats three.", "* item 50%", "* other", "| a | b |", "| x | 9.5 |"]


def test_a_tag_and_its_check_link_both_ways():
    good = notebook(("md", "ProtoNet beats MAML [✓ proto-ahead]."),
                    ("code", 'ch.claim("proto-ahead", "c0", a > b, "ProtoNet should lead")'))
    assert scan_notebook(good, "x").ok and scan_notebook(good, "x").linked == 1
    unlinked = notebook(("md", "ProtoNet beats MAML."), ("code", "assert a > b"))
    assert scan_notebook(unlinked, "x").unlinked == [("c0", "ProtoNet beats MAML.")]
    dangling = notebook(("md", "ProtoNet beats MAML [✓ proto-ahead]."), ("code", "assert a > b"))
    assert scan_notebook(dangling, "x").dangling == [("c0", "proto-ahead")]
    wrong_cell = notebook(("md", "ProtoNet beats MAML [✓ proto-ahead]."), ("md", "Other text."),
                          ("code", 'ch.claim("proto-ahead", "c1", True)'))
    assert scan_notebook(wrong_cell, "x").misplaced == [("proto-ahead", "c1")]


def test_an_exemption_is_for_one_exact_sentence_and_goes_stale():
    nb = notebook(("md", "Snell et al. report 49.4% at 5-way 1-shot."))
    exempt = {"Snell et al. report 49.4% at 5-way 1-shot.": "cited figure (REFERENCES.md)"}
    assert scan_notebook(nb, "x", exempt).ok and scan_notebook(nb, "x", exempt).exempt == 1
    reworded = notebook(("md", "Snell et al. report 49.4% on 5-way 1-shot."))
    report = scan_notebook(reworded, "x", exempt)
    assert report.unlinked and report.stale == list(exempt)
