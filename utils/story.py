"""The story a chapter tells: its checked claims and its headline rankings, in FAST and full mode.

Two things a notebook does through its session object (:class:`utils.chapter.Chapter`):

* ``ch.claim("name", "cell-id", holds, "what failed")`` checks one claim of the prose (the
  markdown cell ``cell-id`` carries the tag ``[✓ name]``; :mod:`utils.course.claims` scans for
  both ends). A claim that does not hold stops the notebook with an ``AssertionError``.
* ``ch.ranking("name", {method: per-seed figures}, higher_is_better=...)`` reads a ranking the
  way the course teaches it: the order of the means, and whether each method beats the next on
  **every** training seed, on at least :data:`MIN_SEEDS` seeds. With fewer seeds, or seeds that
  disagree, the ranking is *not separated*; in FAST mode it then prints the ranking recorded from a
  full-mode run of the shipped code (:data:`RECORDED_PATH`), so a learner sees what full mode says.

Both are written to ``$COURSE_FIGURES_DIR/<chapter>.story.json`` when ``course run`` sets that
folder; ``python -m utils.course bench story`` compares the FAST and full records.

Taught in chapter 01, § One training seed means little too.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from .cache import PROJECT_ROOT, atomic_write_text
from .errors import course_error
from .language import t
from .runtime import FIGURES_DIR_ENV

__all__ = ["MIN_SEEDS", "RECORDED_DIR", "recorded_path", "Ranking", "order_text", "read_ranking", "recorded_story",
           "recorded_rankings", "record_story", "read_story", "check_claim"]

#: A ranking rests on at least this many training seeds.
MIN_SEEDS = 3
#: Recorded full-mode runs of the shipped code, one ``<chapter>.json`` each (``course record``):
#: outputs, figures and the story (``{"story": {"rankings": ..., "claims": ...}}``).
RECORDED_DIR = PROJECT_ROOT / "data" / "recorded"


def recorded_path(chapter: str) -> Path:
    """Where the recorded full-mode run of ``chapter`` lives (``data/recorded/<chapter>.json``)."""
    return RECORDED_DIR / f"{chapter}.json"


@dataclass
class Ranking:
    """A ranking of methods by their mean over training seeds.

    ``order`` lists the methods best first; ``means`` their mean figure over seeds; ``seeds`` the
    number of seeds; ``separated[i]`` whether ``order[i]`` beats ``order[i + 1]`` on every seed
    (always False with fewer than :data:`MIN_SEEDS` seeds).
    """
    name: str
    order: list
    means: dict
    seeds: int
    separated: list
    higher_is_better: bool = True
    mode: str = "full"
    fast_decides: bool = True   # False: the chapter says FAST's runs are too small to decide this ranking

    @property
    def holds(self) -> bool:
        """Whether the whole order is separated (every neighbour pair on every seed)."""
        return bool(self.separated) and all(self.separated)

    def pair_holds(self, better: str, worse: str) -> bool:
        """Whether method ``better`` is ranked above ``worse`` with every step between separated."""
        i, j = self.order.index(better), self.order.index(worse)
        return i < j and all(self.separated[i:j])

    def format(self) -> str:
        verdict = (t("separated on every one of the seeds") if self.holds
                   else t("'~': not separated on these {seeds} seed(s)", seeds=self.seeds))
        return t("{name}: {order}  ({mode}, {seeds} seed(s); {verdict})", name=self.name,
                 order=order_text(self.order, self.separated), mode=t(self.mode), seeds=self.seeds, verdict=verdict)

    def __str__(self) -> str:
        return self.format()


def order_text(order, separated) -> str:
    """``"A > B ~ C"``: methods best first, ``>`` where separated on every seed, ``~`` where not."""
    return order[0] + "".join((" > " if sep else " ~ ") + m for m, sep in zip(order[1:], separated))


def _per_seed(values) -> list[float]:
    out = []
    for v in (values if isinstance(values, (list, tuple)) else list(values)):
        out.append(float(v.mean if hasattr(v, "ci95") else v))   # a MetaResult counts as its mean
    return out


def read_ranking(name: str, scores: dict, *, higher_is_better: bool = True, mode: str = "full",
                 fast_decides: bool = True) -> Ranking:
    """Build a :class:`Ranking` from ``{method: [figure per seed, same seed order]}`` (a figure may be
    a :class:`utils.results.MetaResult`: its mean is used)."""
    if not isinstance(scores, dict) or len(scores) < 2:
        raise course_error(f"ranking {name!r}", "a dict of at least two methods -> per-seed figures",
                           repr(type(scores).__name__), "pass e.g. {'ProtoNet': [0.91, 0.9, 0.92], 'MAML': [...]}")
    per = {m: _per_seed(v) for m, v in scores.items()}
    lengths = {len(v) for v in per.values()}
    if len(lengths) != 1 or 0 in lengths:
        raise course_error(f"ranking {name!r}", "the same number (at least 1) of per-seed figures for every method",
                           str({m: len(v) for m, v in per.items()}), "measure every method on the same seeds")
    n = lengths.pop()
    sign = 1.0 if higher_is_better else -1.0
    means = {m: sum(v) / n for m, v in per.items()}
    order = sorted(per, key=lambda m: -sign * means[m])
    separated = [n >= MIN_SEEDS and all(sign * (x - y) > 0 for x, y in zip(per[a], per[b]))
                 for a, b in zip(order, order[1:])]
    return Ranking(name, order, {m: round(means[m], 6) for m in order}, n, separated, higher_is_better, mode,
                   fast_decides)


def recorded_story(chapter: str, path: Path | None = None) -> dict:
    """The story (``{"rankings": ..., "claims": ...}``) of the recorded full-mode run of ``chapter``,
    each ranking with the run's ``date``; empty if none is recorded."""
    path = Path(path or recorded_path(chapter))
    if not path.exists():
        return {"rankings": {}, "claims": {}}
    data = json.loads(path.read_text(encoding="utf-8"))
    story = data.get("story", {})
    rankings = {name: {**r, "date": data.get("date", "?")} for name, r in story.get("rankings", {}).items()}
    return {"rankings": rankings, "claims": story.get("claims", {})}


def recorded_rankings(chapter: str, path: Path | None = None) -> dict[str, dict]:
    """The full-mode rankings recorded for ``chapter`` (``{name: Ranking fields + "date"}``)."""
    return recorded_story(chapter, path)["rankings"]


def _story_path(chapter: str) -> Path | None:
    folder = os.environ.get(FIGURES_DIR_ENV)
    return Path(folder) / f"{chapter}.story.json" if folder else None


def read_story(folder: Path | str, chapter: str) -> dict:
    """What a run recorded for ``chapter``: ``{"rankings": {...}, "claims": {...}}`` (empty if nothing)."""
    path = Path(folder) / f"{chapter}.story.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {"rankings": {}, "claims": {}}


def record_story(chapter: str, *, ranking: Ranking | None = None, claim: str | None = None) -> None:
    """Add a ranking or a checked claim to this run's story file (atomic; nothing without
    ``$COURSE_FIGURES_DIR``)."""
    path = _story_path(chapter)
    if path is None:
        return
    story = read_story(path.parent, chapter)
    if ranking is not None:
        story["rankings"][ranking.name] = asdict(ranking)
    if claim is not None:
        story["claims"][claim] = True
    atomic_write_text(path, json.dumps(story, indent=1, sort_keys=True))


def check_claim(chapter: str, name: str, cell: str, holds, message: str = "") -> None:
    """Assert one claim of the prose (tag ``[✓ name]`` in markdown cell ``cell``) and record it."""
    if not bool(holds):
        raise AssertionError(f"claim [✓ {name}] (cell {cell}) does not hold" + (f": {message}" if message else ""))
    record_story(chapter, claim=name)
