"""What the learner handed in, checked before grading: which chapter the notebook belongs to,
locked test cells that were edited or deleted, pasted copies of an answer cell (see
:mod:`utils.course.grading`)."""
from __future__ import annotations

import copy
import re
from pathlib import Path

from nbformat import NotebookNode

from ..errors import course_error
from .notebooks import (CHAPTER_RE, cell_by_grade_id, find_chapters, grade_ids, nbgrader_meta, read_notebook,
                        solution_path)

__all__ = ["identify_chapter", "check_locked_cells", "dedupe_grade_ids"]


# --------------------------------------------------------------------------- which chapter
def _chapter_from_name(path: Path, chapters: list[str]) -> str | None:
    """The chapter a file name points to (``02_maml_vs_transfer-Copy1.ipynb`` -> ``02_...``)."""
    for name in (path.stem, path.parent.name):
        for ch in chapters:
            if name == ch or name.startswith(ch):
                return ch
        if CHAPTER_RE.match(name) or re.match(r"^\d{2}_", name):
            hits = [ch for ch in chapters if ch[:3] == name[:3]]
            if len(hits) == 1:
                return hits[0]
    return None


def identify_chapter(nb: NotebookNode, path: Path, root: Path,
                     chapter: str | None = None) -> tuple[str, list[str]]:
    """Decide which chapter ``nb`` belongs to; return it and notes for the learner.

    The exercises' grade ids decide (the chapter sharing most of them wins); the file name
    breaks ties and triggers a note when it disagrees. Raises a CourseError when no chapter
    shares any exercise with the notebook.
    """
    chapters = find_chapters(root)
    if not chapters:
        raise course_error(f"{root / 'solutions'}", "chapter sources solutions/NN_name/NN_name.ipynb",
                           "no chapters", "grade from a checkout of the course that has solutions/")
    if chapter is not None and chapter not in chapters:
        hits = [c for c in chapters if c[:2] == chapter[:2]]
        if len(hits) != 1:
            raise course_error(f"--chapter {chapter}", "one of " + ", ".join(chapters), repr(chapter),
                               "pass a chapter name from python -m utils.course list")
        chapter = hits[0]
    ids = set(grade_ids(nb))
    overlap = {ch: len(ids & set(grade_ids(read_notebook(solution_path(root, ch))))) for ch in chapters}
    by_name = _chapter_from_name(path, chapters)
    notes = []
    if chapter is not None:
        if overlap[chapter] == 0:
            raise course_error(f"notebook {path}", f"the exercise cells of chapter {chapter}",
                               "none of them", f"start from chapters/{chapter}/{chapter}.ipynb")
        return chapter, notes
    best = max(chapters, key=lambda ch: (overlap[ch], ch == by_name))
    if overlap[best] == 0:
        expected = f"the exercise cells of chapter {by_name}" if by_name else \
            "the exercise cells (nbgrader grade ids) of one of the chapters " + ", ".join(chapters)
        raise course_error(f"notebook {path}", expected,
                           "no exercise of any chapter" if ids else "no nbgrader exercise cells at all",
                           "grade the notebook you worked in, which started as "
                           "chapters/NN_name/NN_name.ipynb (cells copied into a new notebook lose "
                           "their grading metadata)")
    if by_name is None:
        notes.append(f"{path.name} is not named after a chapter; its exercises are those of "
                     f"{best}, so it is graded as {best}.")
    elif by_name != best:
        notes.append(f"{path.name} is named like chapter {by_name}, but its exercises belong to "
                     f"chapter {best}; it is graded as {best}.")
    unknown = ids - set(grade_ids(read_notebook(solution_path(root, best))))
    if unknown:
        notes.append(f"cells with grade ids not in {best} are graded as ordinary cells: "
                     + ", ".join(sorted(unknown)))
    return best, notes


# --------------------------------------------------------------------------- locked cells
def check_locked_cells(learner: NotebookNode, release: NotebookNode,
                       source: NotebookNode) -> tuple[NotebookNode, list[str]]:
    """Compare the learner's locked cells with the released ones.

    Returns the notebook to submit and notes. Edited locked cells are left for nbgrader, which
    puts the original back (its checksum check) before running them; deleted ones are put
    back here, after the nearest cell that precedes them in the release. A locked cell equal
    to the instructor source (the solutions notebook itself) is not an edit.
    """
    out = copy.deepcopy(learner)
    notes = []
    have = cell_by_grade_id(out)
    src = cell_by_grade_id(source)
    order = [nbgrader_meta(c).get("grade_id") for c in release.cells]
    for i, cell in enumerate(release.cells):
        m = nbgrader_meta(cell)
        gid = m.get("grade_id")
        if not (gid and m.get("locked")):
            continue
        mine = have.get(gid)
        if mine is None:
            before = [g for g in order[:i] if g and g in have]
            at = out.cells.index(have[before[-1]]) + 1 if before else 0
            out.cells.insert(at, copy.deepcopy(cell))
            have[gid] = out.cells[at]
            notes.append(f"locked cell {gid!r} is missing from your notebook; the grader put the "
                         "original back (your file is unchanged).")
        elif mine.source != cell.source and (gid not in src or mine.source != src[gid].source):
            notes.append(f"locked cell {gid!r} was edited; nbgrader graded with the original "
                         "test instead (your file keeps your edit).")
    return out, notes


# --------------------------------------------------------------------------- duplicates
def dedupe_grade_ids(nb: NotebookNode) -> tuple[NotebookNode, list[str]]:
    """Keep the nbgrader metadata of the first cell with each grade id; later copies (a pasted
    answer cell) become ordinary cells that still run. Returns the notebook and notes."""
    out = copy.deepcopy(nb)
    seen, dupes = set(), {}
    for cell in out.cells:
        gid = nbgrader_meta(cell).get("grade_id")
        if not gid:
            continue
        if gid in seen:
            dupes[gid] = dupes.get(gid, 1) + 1
            cell.metadata.pop("nbgrader", None)
        seen.add(gid)
    notes = [f"cell {gid!r} appears {n} times in your notebook; the first copy was graded and the "
             "others ran as ordinary cells (delete the extra copies)." for gid, n in dupes.items()]
    return out, notes
