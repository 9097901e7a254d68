"""Reading goes both ways: an engine function a chapter teaches says so in its docstring
("Taught in chapter 02, § <heading text>.", as d2l's "Defined in"), and every such reference names
a chapter of the course and a heading that chapter's notebook really has."""
import ast
import re
from pathlib import Path

import nbformat
import pytest

import utils
from utils.chapters import CHAPTERS, heading_texts, solution_path

REPO = Path(utils.__file__).resolve().parents[1]
UTILS = REPO / "utils"
REF_RE = re.compile(r"Taught in chapter (\d{2}), § ")


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _docstrings():
    """(where, docstring) of every module, class and function of engine code."""
    for path in sorted(UTILS.rglob("*.py")):
        if "course" in path.relative_to(UTILS).parts:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in [tree, *ast.walk(tree)]:
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                doc = ast.get_docstring(node, clean=True)
                if doc:
                    name = getattr(node, "name", path.stem)
                    yield f"{path.relative_to(REPO)}::{name}", doc


def _headings(chapter: str) -> list[str] | None:
    path = solution_path(REPO, chapter)
    if not path.is_file():
        return None
    return [_norm(h) for h in heading_texts(nbformat.read(path, as_version=4))]


def check_references(doc: str, headings_of) -> list[str]:
    """Problems with the "Taught in" references of one docstring (empty: all resolve).

    ``headings_of(number)`` -> the chapter's heading texts, ``None`` for a chapter whose notebook
    is not written yet (allowed only for a chapter in the course's list), or raises KeyError for a
    chapter number the course does not have.
    """
    problems = []
    for m in REF_RE.finditer(doc):
        number, rest = m.group(1), _norm(doc[m.end():])
        try:
            headings = headings_of(number)
        except KeyError:
            problems.append(f"chapter {number} is not in utils.chapters.CHAPTERS")
            continue
        if headings is None:
            continue
        if not any(rest.startswith(h) and rest[len(h):len(h) + 1] in ("", ".", ";", ",", ")")
                   for h in headings):
            problems.append(f"chapter {number} has no heading that starts {rest[:70]!r}")
    return problems


def _headings_of(number: str):
    matches = [c for c in CHAPTERS if c.startswith(number + "_")]
    if not matches:
        raise KeyError(number)
    return _headings(matches[0])


def test_taught_in_references_name_real_chapters_and_headings():
    problems, count = [], 0
    for where, doc in _docstrings():
        count += len(REF_RE.findall(doc))
        problems += [f"{where}: {p}" for p in check_references(doc, _headings_of)]
    assert count >= 100, f"only {count} 'Taught in chapter NN, § ...' references found in the engine"
    assert not problems, ("fix the reference or the heading (utils.chapters.heading_texts of "
                          "solutions/NN_*/NN_*.ipynb):\n" + "\n".join(problems))


def test_the_main_entry_points_say_where_they_are_taught():
    from utils import compress, distill, fuse, learners
    for obj in (learners.MAML, learners.MAML.variant, learners.ProtoNet, learners.Adaptation, learners.run_inner_loop, distill.kd_loss, distill.distill,
                compress.magnitude_mask, compress.quantize_int8, compress.low_rank_factors,
                fuse.ensemble_predict, fuse.greedy_soup, fuse.MixtureOfExperts, learners.meta_evaluate):
        assert REF_RE.search(obj.__doc__ or ""), f"{obj.__qualname__}: add 'Taught in chapter NN, § <heading>.'"


def test_the_check_can_fail():
    headings = {"02": ["2 · Five ways to meet a new task", "3 · One new task"], "03": None}

    def of(n):
        return headings[n]

    assert check_references("Taught in chapter 02, § 2 · Five ways to meet a new task.", of) == []
    assert check_references("Taught in chapter 02, § 2 · Five ways\n    to meet a new task.", of) == []
    assert check_references("Taught in chapter 03, § anything (not written yet).", of) == []
    assert check_references("Taught in chapter 02, § 2 · Six ways to meet a new task.", of)
    assert check_references("Taught in chapter 02, § 3 · One new task is here.", of)   # a heading's prefix is not enough
    assert check_references("Taught in chapter 09, § Nowhere.", of)


@pytest.mark.parametrize("chapter", [c for c in CHAPTERS if _headings(c) is not None])
def test_every_written_chapter_has_headings(chapter):
    assert len(_headings(chapter)) >= 3
