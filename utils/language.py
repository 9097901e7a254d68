"""The language a chapter prints in: ``"en"`` (the English edition) or ``"zh"`` (the Chinese one).

Every chapter's parameters cell has ``LANGUAGE = "en"`` (the Chinese edition's generated notebooks
set ``"zh"``) and passes it to :func:`utils.chapter.start_chapter`, which calls
:func:`set_language`. Engine code that prints for a learner (table headers, figure labels, progress
and grade reports, widget labels) asks :func:`current_language` and :func:`text`.

Taught in chapter 01, § Everything is a mapping.
"""
from __future__ import annotations

from .errors import course_error

__all__ = ["LANGUAGES", "set_language", "current_language", "text"]

#: The editions of the course, by code.
LANGUAGES = ("en", "zh")

_current = "en"


def set_language(language: str) -> str:
    """Make ``language`` the one engine text is printed in; returns it."""
    global _current
    if language not in LANGUAGES:
        raise course_error("LANGUAGE", "one of " + ", ".join(repr(x) for x in LANGUAGES), repr(language),
                           'set LANGUAGE = "en" or LANGUAGE = "zh" in the parameters cell')
    _current = language
    return language


def current_language() -> str:
    """The language set by the last :func:`set_language` (``"en"`` before any)."""
    return _current


def text(en: str, zh: str) -> str:
    """``en`` or ``zh``, whichever the current language is: one string a learner reads, both editions."""
    return zh if _current == "zh" else en
