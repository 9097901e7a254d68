"""The course's bilingual glossary (English / 中文), kept as data in ``utils/glossary.json``.

Every entry has

* ``term``: the English term, as the chapters write it (``"support set"``);
* ``chinese``: the usual Chinese term (``"支持集"``);
* ``definition``: one or two sentences in English;
* ``chapter``: where the course teaches it, ``"NN_name"`` or ``"NN_name#Section-title"``: a
  chapter folder, optionally followed by the anchor JupyterLab gives a heading (its text with
  spaces turned into ``-``), e.g. ``"01_mapping#Episodes"``;
* optionally ``aliases``: other spellings a look-up should accept (``["FOMAML"]``);
* optionally ``not_zh``: other Chinese renderings of the concept that the course does not use
  (``["情节"]`` for episode, which reads as a story's plot): one term per concept everywhere, checked
  by ``tests/test_glossary.py`` over the bank, the glossary and every notebook.

:func:`load_glossary` reads and validates the file (unique terms, non-empty fields, known
chapters) and returns :class:`GlossaryEntry` objects; :func:`glossary_table` gives the rows of
one chapter (or all) as a :class:`GlossaryTable`, which a notebook displays as a Markdown table;
:func:`lookup` finds one entry by English term, alias or Chinese term.
"""
from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from pathlib import Path

from .chapters import CHAPTERS, CHAPTER_REF_RE
from .errors import course_error, read_json_file

__all__ = [
    "GLOSSARY_PATH", "GlossaryEntry", "validate_entries", "load_glossary", "GlossaryTable",
    "glossary_table", "lookup",
]

#: The glossary file shipped with the package.
GLOSSARY_PATH = Path(__file__).with_name("glossary.json")


_FIELDS = ("term", "chinese", "definition", "chapter")
_OPTIONAL = ("aliases", "not_zh")
_CJK_RE = re.compile(r"[\u4e00-\u9fff]")


@dataclass(frozen=True)
class GlossaryEntry:
    """One glossary term. ``chapter`` is ``"NN_name"`` or ``"NN_name#Section-title"``."""
    term: str
    chinese: str
    definition: str
    chapter: str
    aliases: tuple[str, ...] = ()
    not_zh: tuple[str, ...] = ()

    @property
    def chapter_name(self) -> str:
        """The chapter folder, e.g. ``"01_mapping"``."""
        return self.chapter.split("#", 1)[0]

    @property
    def section(self) -> str:
        """The section title the anchor points to (``""`` when the entry names a chapter only)."""
        return self.chapter.split("#", 1)[1].replace("-", " ") if "#" in self.chapter else ""

    def link(self, from_chapter: bool = False) -> str:
        """A relative link to the teaching notebook (from the repository root, or from a
        chapter folder with ``from_chapter=True``)."""
        anchor = "#" + self.chapter.split("#", 1)[1] if "#" in self.chapter else ""
        base = f"../{self.chapter_name}" if from_chapter else f"chapters/{self.chapter_name}"
        return f"{base}/{self.chapter_name}.ipynb{anchor}"

    def names(self) -> tuple[str, ...]:
        """Every name a look-up accepts: the term, its aliases and the Chinese term."""
        return (self.term, *self.aliases, self.chinese)


def _entry_error(i: int, raw, what: str, expected: str, found: str, fix: str, source: str):
    name = raw.get("term") if isinstance(raw, dict) and isinstance(raw.get("term"), str) else None
    label = f"{source} entry {i}" + (f" ({name!r})" if name else "")
    return course_error(f"{label}: {what}", expected, found, fix)


def validate_entries(raw_entries, source: str = "glossary.json") -> list[GlossaryEntry]:
    """Check raw JSON entries and turn them into :class:`GlossaryEntry` objects.

    Raises a :class:`~utils.errors.CourseError` naming the entry and the field at the first
    problem: not a list of objects, a missing / empty / non-string field, an unknown field, a
    ``chapter`` that is not ``NN_name[#Section-title]`` of a course chapter, a ``chinese`` field
    without Chinese characters, or a term (or alias) used twice (case-insensitive).
    """
    if not isinstance(raw_entries, list) or not raw_entries:
        raise course_error(source, "a non-empty JSON list of entries",
                           type(raw_entries).__name__ if raw_entries else "an empty list",
                           "write the glossary as [ {\"term\": ..., ...}, ... ]")
    entries, seen = [], {}
    for i, raw in enumerate(raw_entries):
        if not isinstance(raw, dict):
            raise _entry_error(i, raw, "entry", "a JSON object", type(raw).__name__,
                               "write each entry as {\"term\": ..., \"chinese\": ..., ...}", source)
        unknown = sorted(set(raw) - set(_FIELDS) - set(_OPTIONAL))
        if unknown:
            raise _entry_error(i, raw, "fields", "only " + ", ".join(_FIELDS + _OPTIONAL),
                               ", ".join(unknown), "remove or rename the unknown fields", source)
        for key in _FIELDS:
            value = raw.get(key)
            if not isinstance(value, str) or not value.strip():
                found = "missing" if key not in raw else repr(value)
                raise _entry_error(i, raw, f"field {key!r}", "a non-empty string", found,
                                   f"fill in {key!r}", source)
        aliases = raw.get("aliases", [])
        if not isinstance(aliases, list) or not all(isinstance(a, str) and a.strip() for a in aliases):
            raise _entry_error(i, raw, "field 'aliases'", "a list of non-empty strings",
                               repr(aliases), "write e.g. [\"FOMAML\"] or leave the field out", source)
        not_zh = raw.get("not_zh", [])
        if not isinstance(not_zh, list) or not all(isinstance(a, str) and _CJK_RE.search(a) for a in not_zh):
            raise _entry_error(i, raw, "field 'not_zh'", "a list of Chinese renderings the course avoids",
                               repr(not_zh), "write e.g. [\"情节\"] or leave the field out", source)
        m = CHAPTER_REF_RE.match(raw["chapter"].strip())
        if not m or m.group(1) not in CHAPTERS:
            raise _entry_error(i, raw, "field 'chapter'",
                               "NN_name or NN_name#Section-title with NN_name one of "
                               + ", ".join(CHAPTERS), repr(raw["chapter"]),
                               "name the chapter folder that teaches the term", source)
        if not _CJK_RE.search(raw["chinese"]):
            raise _entry_error(i, raw, "field 'chinese'", "the Chinese term (with Chinese characters)",
                               repr(raw["chinese"]), "write the usual Chinese term", source)
        entry = GlossaryEntry(raw["term"].strip(), raw["chinese"].strip(), raw["definition"].strip(),
                              raw["chapter"].strip(), tuple(a.strip() for a in aliases),
                              tuple(a.strip() for a in not_zh))
        for name in (entry.term, *entry.aliases):
            key = name.casefold()
            if key in seen:
                raise _entry_error(i, raw, "term", "a term or alias used by one entry only",
                                   f"{name!r} again (first in entry {seen[key]})",
                                   "merge the two entries or rename one", source)
            seen[key] = i
        entries.append(entry)
    return entries


def load_glossary(path: str | Path | None = None) -> list[GlossaryEntry]:
    """Read and validate the glossary (default: the one shipped in ``utils/glossary.json``).

    Returns the entries in file order. Raises a :class:`~utils.errors.CourseError` for a
    missing file, a file that is not JSON, or an invalid entry (see :func:`validate_entries`).
    """
    path = Path(path) if path is not None else GLOSSARY_PATH
    data = read_json_file(path, "glossary", "reinstall the course package or pass the right path")
    return validate_entries(data, source=path.name)


def _chapter_filter(chapter: str | None) -> str | None:
    """Accept ``None``, ``"01"`` or ``"01_mapping"``; return the chapter folder (or ``None``)."""
    if chapter is None:
        return None
    hits = [c for c in CHAPTERS if chapter in (c, c.split("_", 1)[0])]
    if not hits:
        raise course_error("chapter", "None, a chapter number like '01' or one of " + ", ".join(CHAPTERS),
                           repr(chapter), "pass a course chapter")
    return hits[0]


class GlossaryTable(list):
    """Rows of the glossary (dicts with ``term``, ``chinese``, ``definition``, ``chapter``).

    A list, so it can be counted, filtered and indexed; displayed in a notebook it renders as a
    Markdown table (:meth:`to_markdown`), and ``str()`` gives the same Markdown.
    """

    COLUMNS = (("term", "English"), ("chinese", "中文"), ("definition", "definition"),
               ("chapter", "taught in"))

    def to_markdown(self) -> str:
        """The rows as a GitHub-flavoured Markdown table (``|`` in cells escaped)."""
        esc = lambda s: str(s).replace("|", "\\|").replace("\n", " ")
        head = "| " + " | ".join(title for _, title in self.COLUMNS) + " |"
        rule = "|" + "|".join("---" for _ in self.COLUMNS) + "|"
        body = ["| " + " | ".join(esc(row[key]) for key, _ in self.COLUMNS) + " |" for row in self]
        return "\n".join([head, rule, *body])

    def _repr_markdown_(self) -> str:
        return self.to_markdown()

    def __str__(self) -> str:
        return self.to_markdown()


def glossary_table(chapter: str | None = None, entries: list[GlossaryEntry] | None = None,
                   sort: bool = False) -> GlossaryTable:
    """The glossary's rows, all of them or those taught in ``chapter`` (``"01"`` or ``"01_mapping"``).

    Args:
        chapter: restrict to one chapter; ``None`` keeps every entry.
        entries: the entries to tabulate (default: :func:`load_glossary`).
        sort: sort rows by English term (default: file order, which follows the course).
    Returns:
        a :class:`GlossaryTable`: a list of row dicts that displays as a Markdown table.
    """
    wanted = _chapter_filter(chapter)
    entries = load_glossary() if entries is None else entries
    rows = [dict(term=e.term + (f" ({', '.join(e.aliases)})" if e.aliases else ""),
                 chinese=e.chinese, definition=e.definition, chapter=e.chapter)
            for e in entries if wanted is None or e.chapter_name == wanted]
    if sort:
        rows.sort(key=lambda r: r["term"].casefold())
    return GlossaryTable(rows)


def lookup(name: str, entries: list[GlossaryEntry] | None = None) -> GlossaryEntry:
    """The entry whose term, alias or Chinese term is ``name`` (case-insensitive).

    Raises a :class:`~utils.errors.CourseError` suggesting close terms when there is none.
    """
    entries = load_glossary() if entries is None else entries
    key = str(name).strip().casefold()
    for e in entries:
        if key in (n.casefold() for n in e.names()):
            return e
    close = difflib.get_close_matches(key, [n.casefold() for e in entries for n in e.names()], n=3)
    raise course_error("glossary term", "a term, alias or Chinese term of the glossary", repr(name),
                       ("try " + ", ".join(map(repr, close))) if close
                       else "see glossary_table() for the list")
