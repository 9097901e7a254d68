"""The leak scan of a built book: no solution or hidden test may reach the site (see
:mod:`utils.course.book`, step 2; ``tests/test_book.py`` fails on any)."""
from __future__ import annotations

import html
import re
from pathlib import Path

import nbformat

from .notebooks import find_chapters, read_notebook, release_path, secret_lines, solution_path

__all__ = ["site_text", "find_site_leaks"]


# --------------------------------------------------------------------------- leak scan
_MARKUP = re.compile(r"[*_`$\\{}()\[\]#>|~]")


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", _MARKUP.sub(" ", text)).strip().lower()


_BLOCK_TAG = re.compile(r"</?(?:p|div|pre|li|ul|ol|tr|td|th|table|h[1-6]|br|details|summary|section|"
                        r"blockquote|dt|dd|figure|figcaption)\b[^>]*>", re.IGNORECASE)


def site_text(path: Path) -> str:
    """The readable text of one built file: HTML without tags, a notebook's sources and outputs."""
    raw = path.read_text(encoding="utf-8", errors="replace")
    if path.suffix == ".ipynb":
        try:
            nb = nbformat.reads(raw, as_version=4)
        except Exception:
            return raw
        parts = []
        for c in nb.cells:
            parts.append(c.source)
            for o in c.get("outputs", []):
                parts.append(str(o.get("text", "")))
                parts += [str(v) for v in o.get("data", {}).values() if isinstance(v, str)]
        return "\n".join(parts)
    if path.suffix in (".html", ".htm"):
        raw = _BLOCK_TAG.sub("\n", raw)     # a block starts a new line
        raw = re.sub(r"<[^>]+>", "", raw)  # inline tags split code tokens: nothing in their place
    return html.unescape(raw)


def find_site_leaks(site: str | Path, root: str | Path, chapters: list[str] | None = None) -> list[str]:
    """Solution or hidden-test text of ``solutions/`` found in the built site, as
    ``"<file>: <line>"`` (empty: no leak).

    The secrets are :func:`utils.course.notebooks.secret_lines` of every solution notebook: each line
    between BEGIN/END SOLUTION or BEGIN/END HIDDEN TESTS (code answers, hidden asserts, model
    answers of written questions) that does not also appear outside those regions, nor in any
    chapter's student version (a line public in chapter 01 is no secret of chapter 07). A secret is
    found when a line of a built file equals it once both are stripped of Markdown/HTML markup
    and their whitespace is collapsed, so a model answer rendered as a paragraph is still found
    (the same line-by-line rule as :func:`utils.course.notebooks.find_leaks` for ``chapters/``).

    When the course has Chinese catalogs, the Chinese edition counts too: the secrets of each
    solution notebook in Chinese prose (a written question's translated model answer) and, as
    public, the Chinese student version the book shows (:func:`.book_zh.chinese_student`).
    """
    from .book_zh import chinese_student, zh_ready
    from .translations import translated_notebook

    site, root = Path(site), Path(root)
    chapters = chapters if chapters is not None else find_chapters(root)
    zh = zh_ready(root, chapters)
    public = set()  # every line a learner sees anyway, in any chapter's student version
    for ch in chapters:
        if release_path(root, ch).exists():
            for nb in [read_notebook(release_path(root, ch))] + ([chinese_student(root, ch)] if zh else []):
                for cell in nb.cells:
                    public.update(_norm(line) for line in cell.source.splitlines())
    secrets = {}
    for ch in chapters:
        solution = read_notebook(solution_path(root, ch))
        editions = [solution] + ([translated_notebook(solution, root, ch, "zh")] if zh else [])
        for line in set().union(*map(secret_lines, editions)):
            n = _norm(line)
            if len(n.replace(" ", "")) >= 8 and n not in public:
                secrets[n] = line
    leaks = []
    for path in sorted(site.rglob("*")):
        if not path.is_file() or path.suffix not in (".html", ".txt", ".ipynb", ".js", ".md"):
            continue
        if "mathjax" in path.parts:
            continue
        lines = {_norm(line) for line in site_text(path).splitlines()}
        leaks += [f"{path.relative_to(site)}: {line}" for n, line in secrets.items() if n in lines]
    return leaks
