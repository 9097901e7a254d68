"""Every claim in a chapter's prose is computed: the lexical scan behind that rule.

A sentence in a markdown cell of a ``solutions/`` notebook that states a comparison or a number
(a percentage, points, a ratio, a decimal figure, "beats", "ahead", "within", "more … than",
"several times", "best", "chance", …) must carry a **claim tag** ``[✓ name]`` that names the check
behind it, and the notebook must check it in a code cell with
``ch.claim("name", "cell-id", holds, "what failed")`` (:meth:`utils.chapter.Chapter.claim`), where
``cell-id`` is the markdown cell holding the tag: the claim names its check, the check names its
cell. A claim checked only in full mode sits under ``if not FAST:``; the tag is the same.

Sentences that look like claims but are not measurements of this notebook (a figure cited from a
paper with its reference, a setting such as a step size, the size of a FAST run) are listed in
:data:`EXEMPTIONS_DIR` (``<chapter>.json``) with the reason, keyed by the sentence's exact text: rewording an exempt
sentence makes it a claim again, and an exemption whose sentence is gone is itself reported, so the
list cannot go stale. ``tests/test_claims.py`` fails on any unlinked claim, dangling tag, check
naming the wrong cell, or stale exemption; ``python -m utils.course.claims`` prints them.

Taught in chapter 01, § How meta-learning is judged (a claim is a number with its check).
"""
from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .notebooks import find_chapters, read_notebook, solution_path

__all__ = ["TAG", "CHECK", "EXEMPTIONS_DIR", "ClaimReport", "sentences", "is_claim", "load_exemptions",
           "scan_notebook", "scan_course", "main"]

#: ``[✓ name]`` in a markdown cell: the sentence before it is checked by ``ch.claim("name", …)``.
TAG = re.compile(r"\[✓ ([a-z0-9][a-z0-9-]*)\]")
#: ``ch.claim("name", "cell-id", …)`` in a code cell (any receiver named ``ch``).
CHECK = re.compile(r"\bch\.claim\(\s*[\"']([a-z0-9][a-z0-9-]*)[\"']\s*,\s*[\"']([A-Za-z0-9_.-]+)[\"']")

#: One file per chapter, ``<chapter>.json``: the sentences the scan flags that are not claims of
#: that notebook, each with its reason (``[{"sentence": ..., "why": ...}]``).
EXEMPTIONS_DIR = Path(__file__).with_name("claims_exempt")

_STRIP = [
    re.compile(r"```.*?```", re.S),            # fenced code
    re.compile(r"\$\$.*?\$\$", re.S),          # display math
    re.compile(r"\$[^$\n]+\$"),                # inline math
    re.compile(r"`[^`\n]+`"),                  # inline code
    re.compile(r"<[^>\n]+>"),                  # html tags
    re.compile(r"\]\([^)\s]+\)"),              # link targets (keep the link text)
]
_NOT_A_FIGURE = re.compile(
    r"\(\d+ points?\)|\b\d+ points? each\b|\b(?:19|20)\d\d[a-z]?\b|§\s*[\d.]+|\bchapters? \d+(?:\.\d+)?\b"
    r"|\bsection \d+(?:\.\d+)?\b|\bexercises? \d+\b|\bquestions? \d+\b|\bpart \d+\b|\bv\d+(?:\.\d+)+\b"
    r"|\btorch \d+(?:\.\d+)+\b|\b\d+(?:\.\d+)*\.\s", re.I)
_CLAIM = re.compile(
    r"\d\s*%|\bper ?cent\b|\b\d+(?:\.\d+)?\s*(?:percentage )?points?\b|\d\s*×|×\s*\d|\b\d+\.\d+\b"
    r"|\b(?:several|many|\d+|two|three|four|five|ten) times\b|\btwice\b|\bhalf as\b|\border of magnitude\b"
    r"|\bbeats?\b|\bbeaten\b|\bbeating\b|\boutperform\w*|\bwins?\b|\bahead\b|\bexceeds?\b|\bwithin\b"
    r"|\b\w+er than\b|\b(?:more|less|fewer) \w+(?: \w+)? than\b|\b(?:best|worst)\b"
    r"|\bchance\b|\bseparated\b|\bon every seed\b|\bsignificant\w*"
    r"|\b(?:leads?|trails?|loses|superior|inferior|dominates|stronger|weaker|strongest|weakest|cheapest"
    r"|fastest|slowest|largest|smallest|highest|lowest)\b", re.I)


def _clean(markdown: str) -> str:
    for pattern in _STRIP:
        markdown = pattern.sub(lambda m: "]" if m.group(0).startswith("](") else " ", markdown)
    return markdown


def sentences(markdown: str) -> list[str]:
    """The sentences of one markdown cell, as the scan sees them (one line per sentence, code,
    math and html removed). Headings are skipped; each table row and list item is a sentence."""
    out = []
    for block in re.split(r"\n\s*\n|\n(?=\s*(?:(?:[-*+]|\d+\.)\s|\|))", markdown):
        block = block.strip()
        if not block or block.startswith("#") or re.fullmatch(r"[|\s:-]+", block):
            continue
        text = " ".join(block.split())
        for part in re.split(r"(?<=[.!?])\s+(?=[A-Z*(\[\"'`$])", text):
            if part.strip():
                out.append(part.strip())
    return out


def is_claim(sentence: str) -> bool:
    """Whether a sentence states a comparison or a number (after code and math are removed)."""
    text = _NOT_A_FIGURE.sub(" ", _clean(sentence))
    return bool(_CLAIM.search(text))


def load_exemptions(folder: Path | None = None) -> dict[str, dict[str, str]]:
    """``{chapter: {sentence: reason}}`` from the exemption files (empty where there is none)."""
    out = {}
    for path in sorted(Path(folder or EXEMPTIONS_DIR).glob("*.json")):
        entries = json.loads(path.read_text(encoding="utf-8"))
        out[path.stem] = {" ".join(e["sentence"].split()): e["why"] for e in entries}
    return out


@dataclass
class ClaimReport:
    """What the scan found in one chapter: every list empty means every claim is linked."""
    chapter: str
    claims: int = 0                                      # claim sentences seen
    linked: int = 0                                      # ... of which carry a tag
    exempt: int = 0                                      # ... of which are exempt
    unlinked: list = field(default_factory=list)         # (cell id, sentence)
    dangling: list = field(default_factory=list)         # (cell id, tag): no ch.claim names it here
    misplaced: list = field(default_factory=list)        # (tag, named cell): that cell lacks the tag
    duplicated: list = field(default_factory=list)       # tags checked or placed twice
    stale: list = field(default_factory=list)            # exempt sentences no longer in the notebook

    @property
    def ok(self) -> bool:
        return not (self.unlinked or self.dangling or self.misplaced or self.duplicated or self.stale)


def _sentence_key(sentence: str) -> str:
    return " ".join(sentence.split())


def scan_notebook(nb, chapter: str, exemptions: dict[str, str] | None = None) -> ClaimReport:
    """Scan one notebook (a ``nbformat`` node): claims, tags and ``ch.claim`` checks."""
    exemptions = dict(exemptions or {})
    report = ClaimReport(chapter)
    tags: dict[str, list[str]] = {}
    checks: dict[str, list[str]] = {}
    seen = set()
    for cell in nb.cells:
        cid = cell.get("id", "?")
        if cell.cell_type == "code":
            for name, target in CHECK.findall(cell.source):
                checks.setdefault(name, []).append(target)
            continue
        if cell.cell_type != "markdown":
            continue
        for name in TAG.findall(cell.source):
            tags.setdefault(name, []).append(cid)
        for sentence in sentences(cell.source):
            key = _sentence_key(sentence)
            seen.add(key)
            if not is_claim(sentence):
                continue
            report.claims += 1
            if TAG.search(sentence):
                report.linked += 1
            elif key in exemptions:
                report.exempt += 1
            else:
                report.unlinked.append((cid, key))
    for name, cells in tags.items():
        if name not in checks:
            report.dangling += [(c, name) for c in cells]
    for name, targets in checks.items():
        for target in targets:
            if target not in tags.get(name, []):
                report.misplaced.append((name, target))
    report.duplicated = sorted({n for n, c in tags.items() if len(c) > 1}
                               | {n for n, t in checks.items() if len(set(t)) > 1})
    report.stale = [s for s in exemptions if s not in seen]
    return report


def scan_course(root: Path | str = ".", exemptions_dir: Path | None = None) -> list[ClaimReport]:
    """Scan every chapter's solution notebook under ``root``."""
    exemptions = load_exemptions(exemptions_dir)
    return [scan_notebook(read_notebook(solution_path(root, chapter)), chapter, exemptions.get(chapter))
            for chapter in find_chapters(root)]


def main(argv: list[str] | None = None) -> int:
    """Print each chapter's claim count and every problem; exit 1 if there is one."""
    reports = scan_course(argv[0] if argv else ".")
    for r in reports:
        print(f"{r.chapter}: {r.claims} claim sentences, {r.linked} linked, {r.exempt} exempt, "
              f"{len(r.unlinked)} unlinked")
        for cid, sentence in r.unlinked:
            print(f"  unlinked [{cid}] {sentence}")
        for cid, name in r.dangling:
            print(f"  dangling tag [✓ {name}] in cell {cid}: no ch.claim(\"{name}\", \"{cid}\", ...) checks it")
        for name, target in r.misplaced:
            print(f"  ch.claim(\"{name}\", \"{target}\", ...): cell {target} has no tag [✓ {name}]")
        for name in r.duplicated:
            print(f"  tag {name} is placed or checked in two places")
        for sentence in r.stale:
            print(f"  stale exemption (sentence no longer in the notebook): {sentence}")
    return 0 if all(r.ok for r in reports) else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv[1:]))
