"""What the learner handed in, checked before grading: which chapter the notebook belongs to,
locked test cells that were edited or deleted, pasted copies of an answer cell, duplicated cell
ids, a notebook too large or not a notebook at all, one handed in under another file name (see
:mod:`utils.course.grading`; :func:`prepare_submission` does all of it for one submission of a
class, :mod:`utils.course.autograde`)."""
from __future__ import annotations

import copy
import re
import shutil
from pathlib import Path

from nbformat import NotebookNode

from ..errors import course_error
from .notebooks import (CHAPTER_RE, cell_by_grade_id, find_chapters, grade_ids, nbgrader_meta, read_notebook,
                        solution_path)

__all__ = ["MAX_NOTEBOOK_BYTES", "identify_chapter", "check_locked_cells", "dedupe_grade_ids",
           "dedupe_cell_ids", "read_submission", "prepare_submission"]

#: The largest notebook file graded (bytes): a chapter with its outputs is a few MB; anything
#: much larger is refused before it is parsed (parsing takes several times its size in memory).
MAX_NOTEBOOK_BYTES = 64 << 20


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


def dedupe_cell_ids(nb: dict) -> tuple[dict, list[str]]:
    """Give every cell after the first with the same ``id`` a new one (nbformat requires them
    unique; nbgrader matches cells by grade id, not by cell id). Returns the notebook and notes."""
    out = copy.deepcopy(nb)
    seen, dupes = set(), []
    for k, cell in enumerate(out["cells"]):
        cid = cell.get("id")
        if cid is None:
            continue
        if cid in seen:
            new = f"{cid}-dup{k}"
            while new in seen:
                new += "x"
            cell["id"] = new
            dupes.append(cid)
        seen.add(cell["id"])
    notes = [f"cell id {cid!r} was used by several cells; the later ones were renamed for grading."
             for cid in dict.fromkeys(dupes)]
    return out, notes


def read_submission(path: Path, max_bytes: int = MAX_NOTEBOOK_BYTES) -> tuple[NotebookNode, list[str]]:
    """The notebook at ``path`` and notes (duplicated cell ids renamed), refused with a
    CourseError when it is larger than ``max_bytes`` (checked before reading it) or is not a
    Jupyter notebook (invalid JSON, JSON of another kind, cells nbformat cannot read)."""
    from .sandbox_limits import format_size

    size = path.stat().st_size
    if size > max_bytes:
        raise course_error(f"notebook {path.name}", f"at most {format_size(max_bytes)}",
                           format_size(size), "clear the outputs (Edit > Clear Outputs of All Cells), "
                           "save and submit again; large data belongs in files, not outputs")
    import json
    import warnings

    text = path.read_bytes().decode("utf-8", errors="replace")
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise course_error(f"notebook {path.name}", "a Jupyter notebook (valid JSON)",
                           f"invalid JSON ({getattr(exc, 'msg', exc)} at line {getattr(exc, 'lineno', '?')})",
                           "open it in Jupyter: if it does not open, submit the last saved copy "
                           "(File > Revert Notebook to Checkpoint)") from None
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list) or "nbformat" not in data:
        raise course_error(f"notebook {path.name}", "a Jupyter notebook with 'cells' and 'nbformat'",
                           "JSON of another kind", "submit the .ipynb file saved by Jupyter")
    if not all(isinstance(c, dict) for c in data["cells"]):
        raise course_error(f"notebook {path.name}", "cells that are JSON objects", "something else",
                           "open and save it in Jupyter, then submit again")
    data, notes = dedupe_cell_ids(data)  # before nbformat, which would rename them silently
    import nbformat
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return nbformat.reads(json.dumps(data), as_version=4), notes
        except Exception as exc:  # noqa: BLE001  (nbformat raises several kinds)
            raise course_error(f"notebook {path.name}", "a notebook nbformat can read",
                               f"{type(exc).__name__}: {str(exc)[:200]}",
                               "open and save it in Jupyter, then submit again") from None


def _chapter_notebook(folder: Path, notebook: str) -> tuple[Path, list[str]]:
    """The file graded as ``notebook``.ipynb in a submission folder (a single notebook under
    another name is taken, and named)."""
    want = folder / f"{notebook}.ipynb"
    if want.is_file():
        return want, []
    others = sorted(p for p in folder.glob("*.ipynb") if p.is_file())
    if len(others) == 1:
        return others[0], [f"the notebook was handed in as {others[0].name!r}; it was graded as "
                           f"{notebook}.ipynb."]
    found = ", ".join(repr(p.name) for p in others) or "no notebook"
    raise course_error(f"submission folder {folder.name}", f"the notebook {notebook}.ipynb", found,
                       f"hand in the chapter's notebook under its own name, {notebook}.ipynb")


def prepare_submission(src: Path, dst: Path, notebook: str, source: NotebookNode,
                       release: NotebookNode | None = None, *, course_root: Path | None = None,
                       max_bytes: int = MAX_NOTEBOOK_BYTES) -> list[str]:
    """Copy one submission folder ``src`` to ``dst`` ready for nbgrader, and say what was fixed.

    The learner's files are only read. A CourseError (the submission cannot be graded) names
    what is wrong: no notebook, too large, not a notebook, a notebook of another chapter (its
    exercises' grade ids decide, :func:`identify_chapter`, when ``course_root`` has
    ``solutions/``). Otherwise duplicated cell ids and pasted answer cells are resolved and,
    given the ``release``, deleted locked cells are put back; the notes say so.
    """
    path, notes = _chapter_notebook(src, notebook)
    nb, more = read_submission(path, max_bytes)
    notes += more
    if course_root is not None and (course_root / "solutions").is_dir():
        chapter, more = identify_chapter(nb, path.with_name(f"{notebook}.ipynb"), course_root)
        if chapter != notebook:
            raise course_error(f"notebook {path.name}", f"the exercises of {notebook}",
                               f"those of {chapter}", f"hand in {notebook}.ipynb (this one belongs "
                               f"to {chapter})")
        notes += more
    nb, more = dedupe_grade_ids(nb)
    notes += more
    if release is not None:
        nb, more = check_locked_cells(nb, release, source)
        notes += more
    if dst.exists():
        shutil.rmtree(dst)
    dst.mkdir(parents=True)
    for f in src.iterdir():
        if f.is_file() and not f.is_symlink() and f.suffix != ".ipynb" and f.stat().st_size <= max_bytes:
            shutil.copyfile(f, dst / f.name)
    from .notebooks import write_notebook

    write_notebook(nb, dst / f"{notebook}.ipynb")
    return notes

