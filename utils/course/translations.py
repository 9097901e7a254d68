"""The Chinese edition's prose: one gettext catalog per chapter, checked against the English source.

Each markdown cell of ``solutions/NN_name/NN_name.ipynb`` is one entry of the chapter's catalog
``solutions/locale/zh/NN_name.po`` (gettext, read and written with ``polib``): ``msgctxt`` is the
cell id, ``msgid`` the English cell, ``msgstr`` its Chinese. Code cells, exercises, hidden tests,
points and grade ids are not in the catalog: both editions share them.

* ``python -m utils.course.translations extract [NN ...]`` adds an entry for every new markdown
  cell, and marks an entry **fuzzy** (keeping the old English as ``previous_msgid``) when its
  English cell changed: the translation is stale until a translator updates it and removes the
  flag, the way Sphinx's and CPython's documentation catalogs work (sphinx-intl, msgmerge).
  Entries of deleted cells become obsolete.
* ``python -m utils.course.translations check [NN ...]`` lists what is missing or stale, and where
  a Chinese cell does not carry the same numbers, claim tags ``[✓ name]``, inline code and math as
  its English cell (formulas and code are not translated; every number stays a number).

Why gettext and not twin cells: the English notebook stays the one source the course already
edits, grades and runs; a catalog is what translation tools (Poedit, Weblate, sphinx-intl) read;
and "fuzzy" is the standard, tool-supported way to flag a translation whose source changed.
"""
from __future__ import annotations

import re
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import course_error
from .notebooks import find_chapters, read_notebook, solution_path

__all__ = ["LANGUAGES", "catalog_path", "extract_catalog", "CatalogReport", "check_catalog",
           "translation_of", "translated_notebook", "main"]

#: Editions besides English, by gettext language code.
LANGUAGES = ("zh",)

_NUMBER = re.compile(r"(?<![\w.])\d+(?:[.,]\d+)*(?![\w])")
_CODE = re.compile(r"`[^`\n]+`")
_MATH = re.compile(r"\$\$.*?\$\$|\$[^$\n]+\$", re.S)
_TAG = re.compile(r"\[✓ [a-z0-9-]+\]")
_SOLUTION_MARK = re.compile(r"^[ \t]*### (?:BEGIN|END) SOLUTION[ \t]*$", re.M)


def catalog_path(root: Path | str, chapter: str, lang: str = "zh") -> Path:
    """``solutions/locale/<lang>/<chapter>.po``: the chapter's catalog for ``lang`` (beside the
    chapters' folders, not in them: nbgrader copies a chapter folder's files into the release)."""
    if lang not in LANGUAGES:
        raise course_error("language", "one of " + ", ".join(LANGUAGES), repr(lang), "pass lang='zh'")
    return Path(root) / "solutions" / "locale" / lang / f"{chapter}.po"


def _markdown_cells(root, chapter) -> list[tuple[str, str]]:
    nb = read_notebook(solution_path(root, chapter))
    return [(c.get("id"), c.source) for c in nb.cells if c.cell_type == "markdown"]


def _load(path: Path, chapter: str, lang: str):
    import polib

    if path.exists():
        return polib.pofile(str(path), wrapwidth=0)
    po = polib.POFile(wrapwidth=0)
    po.metadata = {"Project-Id-Version": f"everything-is-a-mapping {chapter}", "Language": lang,
                   "MIME-Version": "1.0", "Content-Type": "text/plain; charset=UTF-8",
                   "Content-Transfer-Encoding": "8bit"}
    return po


def extract_catalog(root: Path | str, chapter: str, lang: str = "zh") -> dict[str, int]:
    """Bring the chapter's catalog up to date with its English cells; returns the counts
    ``{"added", "fuzzy", "obsolete", "current"}``. Writes the file atomically."""
    from ..cache import atomic_write_text

    path = catalog_path(root, chapter, lang)
    path.parent.mkdir(parents=True, exist_ok=True)
    po = _load(path, chapter, lang)
    by_id = {e.msgctxt: e for e in po if not e.obsolete}
    counts = Counter()
    import polib

    cells = _markdown_cells(root, chapter)
    for cid, source in cells:
        entry = by_id.get(cid)
        if entry is None:
            po.append(polib.POEntry(msgctxt=cid, msgid=source, msgstr=""))
            counts["added"] += 1
        elif entry.msgid != source:
            if entry.msgstr and "fuzzy" not in entry.flags:
                entry.previous_msgid = entry.msgid
                entry.flags.append("fuzzy")
            entry.msgid = source
            counts["fuzzy"] += 1
        else:
            counts["current"] += 1
    live = {cid for cid, _ in cells}
    for entry in po:
        if not entry.obsolete and entry.msgctxt not in live:
            entry.obsolete = True
            counts["obsolete"] += 1
    atomic_write_text(path, str(po))
    return dict(counts)


@dataclass
class CatalogReport:
    """What :func:`check_catalog` found for one chapter (every list empty: the edition is current)."""
    chapter: str
    cells: int = 0
    translated: int = 0
    characters: int = 0                                  # Chinese characters written
    missing: list = field(default_factory=list)          # cell ids without a translation
    stale: list = field(default_factory=list)            # cell ids whose English changed (fuzzy / other msgid)
    mismatched: list = field(default_factory=list)       # (cell id, what differs)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.stale or self.mismatched)


def _differences(english: str, chinese: str) -> list[str]:
    out = []
    for name, pattern in (("numbers", _NUMBER), ("inline code", _CODE), ("math", _MATH), ("claim tags", _TAG),
                          ("solution markers", _SOLUTION_MARK)):
        en = _strip_for(name, english, pattern)
        zh = _strip_for(name, chinese, pattern)
        if en != zh:
            only_en, only_zh = sorted((en - zh).elements()), sorted((zh - en).elements())
            out.append(f"{name}: English only {only_en[:6]}, Chinese only {only_zh[:6]}")
    return out


def _strip_for(name: str, text: str, pattern) -> Counter:
    if name == "numbers":   # numbers outside code and math (those are compared whole)
        text = _MATH.sub(" ", _CODE.sub(" ", text))
        return Counter(m.replace(",", "") for m in pattern.findall(text))
    return Counter(pattern.findall(text))


def check_catalog(root: Path | str, chapter: str, lang: str = "zh") -> CatalogReport:
    """Check the chapter's catalog against today's English cells."""
    report = CatalogReport(chapter)
    path = catalog_path(root, chapter, lang)
    cells = _markdown_cells(root, chapter)
    report.cells = len(cells)
    if not path.exists():
        report.missing = [cid for cid, _ in cells]
        return report
    po = _load(path, chapter, lang)
    by_id = {e.msgctxt: e for e in po if not e.obsolete}
    current = {}
    for cid, source in cells:
        entry = by_id.get(cid)
        if entry is None or not entry.msgstr.strip():
            report.missing.append(cid)
            continue
        if "fuzzy" in entry.flags or entry.msgid != source:
            report.stale.append(cid)
            continue
        report.translated += 1
        report.characters += len(entry.msgstr)
        current[cid] = entry.msgstr
        for what in _differences(source, entry.msgstr):
            report.mismatched.append((cid, what))
    # the chapter is one unit for the glossary rule: English in （…） at a concept's first use
    from ..glossary_zh import gloss_problems
    for problem in gloss_problems(current):
        report.mismatched.append((problem.where, f"glossary term {problem.kind}: …{problem.snippet}…"))
    return report


def translation_of(root: Path | str, chapter: str, lang: str = "zh") -> dict[str, str]:
    """``{cell id: translated markdown}`` for the chapter; a :func:`course_error` naming the cells
    and the fix when a translation is missing, stale or mismatched (an edition is never generated
    half-translated)."""
    report = check_catalog(root, chapter, lang)
    if not report.ok:
        found = (f"{len(report.missing)} missing {report.missing[:5]}, {len(report.stale)} stale {report.stale[:5]}, "
                 f"{len(report.mismatched)} mismatched {[c for c, _ in report.mismatched[:5]]}")
        raise course_error(f"the {lang} translation of {chapter}", "a current translation of every markdown cell",
                           found, f"run `python -m utils.course.translations extract {chapter[:2]}`, translate "
                           f"the empty and fuzzy entries of {catalog_path(root, chapter, lang)}, then "
                           f"`python -m utils.course.translations check {chapter[:2]}`")
    po = _load(catalog_path(root, chapter, lang), chapter, lang)
    return {e.msgctxt: e.msgstr for e in po if not e.obsolete}


def translated_notebook(nb, root: Path | str, chapter: str, lang: str = "zh"):
    """A copy of ``nb`` (a solution or student notebook of ``chapter``, nbformat) in ``lang``: each
    markdown cell replaced by its translation (cell id, metadata and attachments kept), an HTML
    anchor with the English heading's link target before each translated cell that had headings
    (so links between chapters and from the glossary keep working), the parameters cell's
    ``LANGUAGE = "en"`` set to ``lang``, and ``metadata.course.language`` set. Code cells are
    untouched: both editions share them, and so their grading."""
    import copy

    from ..chapters import heading_texts

    out = copy.deepcopy(nb)
    zh = translation_of(root, chapter, lang)
    english = dict(_markdown_cells(root, chapter))
    for cell in out.cells:
        if cell.cell_type == "markdown" and cell.get("id") in zh:
            anchors = [t.replace(" ", "-") for t in heading_texts(_one_cell(cell))]
            cell.source = ("".join(f'<a id="{a}"></a>\n' for a in anchors)
                           + _as_released(cell, zh[cell["id"]], english.get(cell["id"])))
        elif cell.cell_type == "code" and "parameters" in cell.get("metadata", {}).get("tags", []):
            cell.source = re.sub(r'^LANGUAGE = "en"', f'LANGUAGE = "{lang}"', cell.source, flags=re.M)
    out.metadata.setdefault("course", {})["language"] = lang
    return out


def _as_released(cell, translation: str, english: str | None) -> str:
    """``translation`` cleared the way nbgrader cleared ``cell``: when ``cell`` is a written-answer
    (nbgrader solution) cell whose source is no longer its English source (a student version:
    nbgrader replaced the model answer by its stub), the translation's ``### BEGIN SOLUTION``
    region is replaced by the same stub with nbgrader's own ClearSolutions, so no model answer
    reaches a student edition. A solution notebook's cells are kept whole."""
    import copy

    if cell.source == english or not cell.get("metadata", {}).get("nbgrader", {}).get("solution"):
        return translation
    from nbgrader.preprocessors import ClearSolutions

    probe = copy.deepcopy(cell)
    probe.source = translation
    ClearSolutions().preprocess_cell(probe, {"language": "python"}, 0)
    return probe.source


def _one_cell(cell):
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [cell]
    return nb


def main(argv: list[str] | None = None) -> int:
    """``extract [NN ...]`` or ``check [NN ...]``; exit 1 when ``check`` finds a problem."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in ("extract", "check"):
        print("usage: python -m utils.course.translations extract|check [NN ...]")
        return 2
    command, only = argv[0], argv[1:]
    chapters = [c for c in find_chapters(".") if not only or c.split("_")[0] in [o.zfill(2) for o in only]]
    bad = False
    for chapter in chapters:
        if command == "extract":
            print(chapter, extract_catalog(".", chapter))
            continue
        r = check_catalog(".", chapter)
        print(f"{chapter}: {r.translated}/{r.cells} cells translated ({r.characters} characters), "
              f"{len(r.missing)} missing, {len(r.stale)} stale, {len(r.mismatched)} mismatched")
        for cid, what in r.mismatched:
            print(f"  [{cid}] {what}")
        bad = bad or not r.ok
    return 1 if bad else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
