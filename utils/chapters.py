"""Facts about the course's chapters, in one place: their names, the patterns those names follow,
where each chapter's notebooks live, and the anchors of their headings (the targets of links from
the glossary and the question bank).

Everything that needs the chapter list imports it from here (the command line, the glossary, the
question bank, the tests), so renumbering the course is an edit of :data:`CHAPTERS` and a rename of
the folders, nothing else. Pure Python: importing this module loads neither torch nor nbformat.
"""
from __future__ import annotations

import re
from pathlib import Path

from .errors import course_error

__all__ = [
    "CHAPTERS", "CONTENT_CHAPTERS", "CHAPTER_RE", "CHAPTER_REF_RE", "CHAPTER_LINK_RE",
    "chapter_number", "find_chapters", "solution_path", "release_path", "select_chapters",
    "heading_texts", "heading_anchors",
]

#: The chapters of the course, in reading order (folder names under ``solutions/`` and ``chapters/``).
CHAPTERS = ("01_mapping", "02_maml_vs_transfer", "03_families", "04_distillation",
            "05_compression", "06_fusion", "07_interview")
#: The chapters that teach (the last one is interview practice over all of them).
CONTENT_CHAPTERS = CHAPTERS[:-1]

#: A chapter folder/notebook name: two digits, an underscore, lowercase words (``02_maml_vs_transfer``).
CHAPTER_RE = re.compile(r"^\d{2}_[a-z0-9_]+$")
#: A chapter reference with an optional heading anchor: ``02_maml_vs_transfer#3-·-Results``.
CHAPTER_REF_RE = re.compile(r"^(\d{2}_[a-z0-9_]+)(?:#([A-Za-z0-9][A-Za-z0-9\-]*))?$")
#: A link to a student notebook's heading: ``chapters/NN_name/NN_name.ipynb#Anchor``.
CHAPTER_LINK_RE = re.compile(r"^chapters/(\d{2}_[a-z0-9_]+)/(\d{2}_[a-z0-9_]+)\.ipynb#([^\s#]+)$")

_HEADING_RE = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$")


def chapter_number(chapter: str) -> str:
    """``"02_maml_vs_transfer"`` -> ``"02"``."""
    return chapter.split("_", 1)[0]


def find_chapters(root: str | Path) -> list[str]:
    """Chapter names found under ``<root>/solutions``, sorted: folders ``NN_name`` holding ``NN_name.ipynb``."""
    sol = Path(root) / "solutions"
    if not sol.is_dir():
        return []
    return sorted(d.name for d in sol.iterdir()
                  if d.is_dir() and CHAPTER_RE.match(d.name) and (d / f"{d.name}.ipynb").is_file())


def solution_path(root: str | Path, chapter: str) -> Path:
    """``<root>/solutions/<chapter>/<chapter>.ipynb`` (the instructor source)."""
    return Path(root) / "solutions" / chapter / f"{chapter}.ipynb"


def release_path(root: str | Path, chapter: str) -> Path:
    """``<root>/chapters/<chapter>/<chapter>.ipynb`` (the generated student version)."""
    return Path(root) / "chapters" / chapter / f"{chapter}.ipynb"


def select_chapters(available: list[str], wanted: list[str] | None) -> list[str]:
    """Pick chapters by full name or by number prefix (``02`` or ``02_maml_vs_transfer``).

    Raises a :class:`~utils.errors.CourseError` naming the available chapters for an unknown one.
    """
    if not wanted:
        return list(available)
    picked = []
    for w in wanted:
        hits = [c for c in available if c == w or chapter_number(c) == w]
        if not hits:
            raise course_error(f"chapter {w!r}",
                               "one of " + (", ".join(available) or "(no chapters yet)"),
                               repr(w), "pass a chapter number like 02 or a full name")
        picked += [h for h in hits if h not in picked]
    return picked


def heading_texts(nb) -> list[str]:
    """The text of every Markdown heading of the notebook ``nb`` (an nbformat ``NotebookNode``), in
    order (``## 2 · Output ensembles`` -> ``2 · Output ensembles``); lines inside fenced code blocks
    are not headings."""
    texts = []
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        in_code = False
        for line in cell.source.splitlines():
            if line.lstrip().startswith("```"):
                in_code = not in_code
            m = None if in_code else _HEADING_RE.match(line)
            if m:
                texts.append(m.group(1).strip())
    return texts


def heading_anchors(nb) -> set[str]:
    """The link targets JupyterLab gives the Markdown headings of ``nb``: the heading's text with
    spaces turned into hyphens (``## 2 · Output ensembles`` -> ``2-·-Output-ensembles``), so that
    ``NN_name.ipynb#2-·-Output-ensembles`` opens the notebook at that heading."""
    return {text.replace(" ", "-") for text in heading_texts(nb)}
