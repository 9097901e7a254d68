"""The language a chapter prints in: ``"en"`` (the English edition) or ``"zh"`` (the Chinese one).

Every chapter's parameters cell has ``LANGUAGE = "en"`` (the Chinese edition's generated notebooks
set ``"zh"``) and passes it to :func:`utils.chapter.start_chapter`, which calls
:func:`set_language`. Engine code that prints for a learner (table headers, figure labels, progress
and grade reports, widget labels) goes through :func:`t`: the English text is the key, looked up in
the edition's message catalog ``utils/locale/<lang>/messages.po`` (:mod:`utils.messages`). English
output is the key itself, unchanged.

Under ``"zh"`` :func:`set_language` also gives matplotlib a CJK font found on the machine
(:func:`find_cjk_font`), after DejaVu Sans, so Latin text and math look as in English and Chinese
glyphs fall back to the CJK font; with none found it warns once how to install one.

Taught in chapter 01, § Everything is a mapping.
"""
from __future__ import annotations

import re
import warnings
from pathlib import Path

from . import messages
from .errors import course_error
from .messages import CATALOG_DIR, LANGUAGES, catalog, current_language, t, translate

__all__ = ["LANGUAGES", "CATALOG_DIR", "CJK_FONTS", "set_language", "current_language", "t",
           "catalog", "translate", "find_cjk_font", "configure_fonts", "notebook_language"]

#: CJK font families tried in this order (matplotlib family names).
CJK_FONTS = ("Noto Sans CJK SC", "Noto Sans CJK JP", "Noto Sans CJK TC", "Noto Serif CJK SC",
             "Noto Serif CJK JP", "Source Han Sans SC", "Source Han Sans CN", "Source Han Sans",
             "WenQuanYi Zen Hei", "WenQuanYi Micro Hei", "Droid Sans Fallback", "PingFang SC",
             "Microsoft YaHei", "SimHei", "Heiti SC", "Arial Unicode MS")
#: Font files that hold such a family, for a matplotlib font cache built before they were installed.
_CJK_FILES = re.compile(r"(NotoSansCJK|NotoSerifCJK|SourceHanSans|wqy|DroidSansFallback|PingFang|"
                        r"msyh|simhei)", re.IGNORECASE)
_FONT_KEYS = ("font.family", "font.sans-serif")

_saved_fonts: dict | None = None   # matplotlib's font settings before zh changed them


def set_language(language: str) -> str:
    """Make ``language`` the one engine text is printed in (and figures drawn with); returns it."""
    if language not in LANGUAGES:
        raise course_error("LANGUAGE", "one of " + ", ".join(repr(x) for x in LANGUAGES), repr(language),
                           'set LANGUAGE = "en" or LANGUAGE = "zh" in the parameters cell')
    messages._state["language"] = language
    configure_fonts(language)
    return language


def notebook_language(path) -> str:
    """The edition of the notebook at ``path``: its ``metadata.course.language`` (``"zh"`` for the
    Chinese edition), ``"en"`` when it has none or cannot be read."""
    import json
    try:
        meta = json.loads(Path(path).read_text(encoding="utf-8")).get("metadata", {})
    except (OSError, ValueError, AttributeError):
        return "en"
    language = (meta.get("course") or {}).get("language", "en") if isinstance(meta, dict) else "en"
    return language if language in LANGUAGES else "en"


def find_cjk_font() -> str | None:
    """The first family of :data:`CJK_FONTS` matplotlib can use, or ``None``. Font files installed
    after matplotlib built its font cache (``fonts-noto-cjk``) are added to it first."""
    from matplotlib import font_manager
    names = {f.name for f in font_manager.fontManager.ttflist}
    if not names.intersection(CJK_FONTS):
        for path in font_manager.findSystemFonts():
            if _CJK_FILES.search(Path(path).name):
                try:
                    font_manager.fontManager.addfont(path)
                except (OSError, RuntimeError, ValueError):
                    continue
        names = {f.name for f in font_manager.fontManager.ttflist}
    return next((name for name in CJK_FONTS if name in names), None)


def configure_fonts(language: str) -> str | None:
    """Under ``"zh"``: matplotlib draws with DejaVu Sans, falling back to a CJK font for Chinese
    glyphs (returns the CJK family; warns, in one line, when there is none). Under ``"en"``: the
    font settings from before ``"zh"`` are put back (nothing happens if ``"zh"`` never ran)."""
    global _saved_fonts
    if language == "en":
        if _saved_fonts is not None:
            import matplotlib
            matplotlib.rcParams.update(_saved_fonts)
            _saved_fonts = None
        return None
    import matplotlib
    cjk = find_cjk_font()
    if cjk is None:
        warnings.warn("no CJK font found, so Chinese text in figures shows as boxes; install one "
                      "(Debian/Ubuntu: apt-get install fonts-noto-cjk) and restart the kernel", stacklevel=3)
        return None
    if _saved_fonts is None:
        _saved_fonts = {k: matplotlib.rcParams[k] for k in _FONT_KEYS}
    # matplotlib falls back glyph by glyph along font.family (a generic name counts as its first font)
    family = [f for f in _saved_fonts["font.family"] if f != cjk]
    rest = [f for f in _saved_fonts["font.sans-serif"] if f != "DejaVu Sans"]
    matplotlib.rcParams.update({"font.family": [*family, cjk], "font.sans-serif": ["DejaVu Sans", *rest]})
    return cjk
