"""Does FAST tell the same story as full mode? ``python -m utils.course bench story``.

Every headline ranking a chapter states goes through ``ch.ranking`` (:mod:`utils.story`), which
records it per run. This benchmark runs the chapters in FAST mode (or reads a FAST build with
``--fast-build``), reads the full-mode rankings recorded from a run of the shipped code
(``data/recorded/<chapter>.json``, written by ``course record``; or a fresh full build with
``--full-build``) and prints, per chapter and ranking, both orders and a verdict:

* ``agree``: every pair FAST separates (``>``) is separated the same way in full mode, and FAST
  separates every pair that full mode separates;
* ``FAST cannot rank (labelled)``: FAST leaves pairs unseparated (``~``), or the chapter declares that
  FAST's smaller runs do not decide this ranking (``ch.ranking(..., fast_decides=False)``), and says
  so in the notebook, where ``ch.ranking`` prints the recorded full-mode ranking beside it; nothing
  FAST separates contradicts full mode;
* ``DISAGREE``: FAST separates a pair the other way round, or separates a pair full mode does not;
* ``full mode only``: FAST does not run this comparison at all (e.g. a second sparsity), so it
  shows no ranking that could contradict it;
* ``no full record``: nothing recorded in full mode (record the chapter: ``course record``).

It exits 1 unless every row agrees, is labelled or is full mode only (the floor of issue 24, item 4).
"""
from __future__ import annotations

import tempfile
from pathlib import Path

from ..story import order_text, read_story, recorded_story
from .execute import run_chapter
from .notebooks import find_chapters

__all__ = ["add_arguments", "verdict", "story_rows", "bench_story"]


def add_arguments(parser) -> None:
    parser.add_argument("--only", nargs="+", default=None, metavar="NN", help="chapters by number or name")
    parser.add_argument("--fast-build", default=None, metavar="DIR",
                        help="read the FAST stories of an earlier `course run --build DIR` instead of running FAST")
    parser.add_argument("--full-build", default=None, metavar="DIR",
                        help="read the full stories of `course run --full --build DIR` instead of data/recorded/")


def _pairs(ranking: dict) -> dict[tuple[str, str], bool]:
    """``{(above, below): separated}`` for every pair of methods, ``separated`` when every step
    between them is."""
    order, sep = ranking["order"], ranking["separated"]
    return {(order[i], order[j]): all(sep[i:j]) for i in range(len(order)) for j in range(i + 1, len(order))}


def verdict(fast: dict | None, full: dict | None) -> str:
    """The verdict for one ranking (fields of :class:`utils.story.Ranking`, or None if missing)."""
    if full is None:
        return "no full record"
    if fast is None:
        return "full mode only"
    if not fast.get("fast_decides", True):
        return "FAST cannot rank (labelled)"
    fp, up = _pairs(fast), _pairs(full)
    for (a, b), separated in fp.items():
        if separated and not up.get((a, b), False):
            return "DISAGREE"
    if all(fp.get(pair, False) for pair, separated in up.items() if separated) and all(fast["separated"]):
        return "agree"
    return "FAST cannot rank (labelled)"


def _show(ranking: dict | None) -> str:
    if ranking is None:
        return "-"
    return f"{order_text(ranking['order'], ranking['separated'])} [{ranking['seeds']} seed(s)]"


def story_rows(chapters, fast_stories: dict, full_stories: dict) -> list[tuple[str, str, str, str, str]]:
    """``(chapter, ranking, FAST, full, verdict)`` for every ranking on either side."""
    rows = []
    for chapter in chapters:
        fast = fast_stories.get(chapter, {}).get("rankings", {})
        full = full_stories.get(chapter, {}).get("rankings", {})
        for name in sorted(set(fast) | set(full)):
            rows.append((chapter, name, _show(fast.get(name)), _show(full.get(name)),
                         verdict(fast.get(name), full.get(name))))
    return rows


def _select(chapters: list[str], only) -> list[str]:
    if not only:
        return chapters
    return [c for c in chapters if any(c == o or c.split("_")[0] == o.zfill(2) for o in only)]


def bench_story(args) -> dict:
    """FAST vs full: every headline ranking of every chapter in both modes, and whether they agree."""
    chapters = _select(find_chapters("."), args.only)
    if args.fast_build:
        fast_build = Path(args.fast_build)
    else:
        fast_build = Path(tempfile.mkdtemp(prefix="course-story-"))
        for chapter in chapters:
            run = run_chapter(".", chapter, fast=True, build=fast_build)
            print(f"FAST {chapter}: {'ok' if run.ok else 'FAILED ' + run.error} ({run.seconds:.0f} s)")
    fast = {c: read_story(fast_build / "figures", c) for c in chapters}
    full = ({c: read_story(Path(args.full_build) / "figures", c) for c in chapters} if args.full_build
            else {c: recorded_story(c) for c in chapters})
    rows = story_rows(chapters, fast, full)
    header = ("chapter", "ranking", "FAST", "full", "verdict")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(5)]
    for r in [header, *rows]:
        print(" | ".join(str(v).ljust(w) for v, w in zip(r, widths)))
    for c in chapters:
        print(f"{c}: claims checked FAST {len(fast[c].get('claims', {}))}, full {len(full[c].get('claims', {}))}")
    bad = [r for r in rows if r[4] not in ("agree", "FAST cannot rank (labelled)", "full mode only")]
    print(f"{len(rows)} rankings; {len(rows) - len(bad)} agree or are labelled; {len(bad)} do not")
    return {"rows": rows, "check": not bad and bool(rows)}
