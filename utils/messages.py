"""The engine's printed text in the chapter's language: :func:`t` looks the English text up in the
edition's message catalog.

One gettext catalog per language, ``utils/locale/<lang>/messages.po`` (the format of the chapters'
own catalogs in ``solutions/locale/``, so the same tools, poedit or ``msgfmt --check``, edit both):
``msgid`` is the English text exactly as the engine prints it, ``msgstr`` its translation;
``{name}`` fields are filled in after the look-up. English output is the key itself, unchanged.
A key may hold numbers: ``"600 test episodes"`` is found as ``"{0} test episodes"`` and its
numbers put back. The current language is set by :func:`utils.language.set_language` (the
chapter's ``LANGUAGE`` knob); this module imports no other module of ``utils`` so that
:mod:`utils.errors` can use it.

Taught in chapter 01, § Everything is a mapping.
"""
from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

__all__ = ["LANGUAGES", "CATALOG_DIR", "current_language", "catalog", "translate", "t"]

#: The editions of the course, by code.
LANGUAGES = ("en", "zh")
#: Where the engine's message catalogs live: ``<CATALOG_DIR>/<lang>/messages.po``.
CATALOG_DIR = Path(__file__).resolve().parent / "locale"
_NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?![\w.])")

_state = {"language": "en"}   # written by utils.language.set_language only


def current_language() -> str:
    """The language set by the last :func:`utils.language.set_language` (``"en"`` before any)."""
    return _state["language"]


@lru_cache(maxsize=None)
def catalog(language: str) -> dict[str, str]:
    """English message -> its translation, from ``utils/locale/<language>/messages.po`` (empty for
    ``"en"``; untranslated and fuzzy entries are left out, so they print in English)."""
    if language == "en":
        return {}
    path = CATALOG_DIR / language / "messages.po"
    if not path.is_file():
        return {}
    import polib
    return {e.msgid: e.msgstr for e in polib.pofile(str(path)) if e.msgstr and not e.fuzzy and not e.obsolete}


def translate(english: str, language: str) -> str:
    """``english`` in ``language``: its catalog entry; else, with the numbers in it replaced by
    ``{0}``, ``{1}`` ..., that template's entry with the numbers put back; else ``english``."""
    if language == "en" or not english:
        return english
    cat = catalog(language)
    found = cat.get(english)
    if found is not None:
        return found
    numbers = _NUMBER.findall(english)
    if numbers and "{" not in english:
        count = iter(range(len(numbers)))
        template = cat.get(_NUMBER.sub(lambda m: "{%d}" % next(count), english))
        if template is not None:
            return template.format(*numbers)
    return english


def t(english: str, language: str | None = None, /, **fields) -> str:
    """The text a learner reads: ``english`` (a catalog key) in the current language (or
    ``language``), then ``.format(**fields)`` when fields are given. Under ``"en"`` it is exactly
    ``english.format(**fields)``: the English output does not change.

    >>> t("95% CI over {covers}", "en", covers="3 training seeds")
    '95% CI over 3 training seeds'
    """
    message = translate(english, language or _state["language"])
    return message.format(**fields) if fields else message
