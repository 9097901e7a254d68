"""Tells beyond length and letter: what a test-wise guesser exploits in each set a learner meets.

:mod:`utils.course.mc_fairness` finds the questions and scores "pick the longest" and "always the
same letter" course-wide. This module scores more blind strategies (avoid the longest, pick the
shortest, avoid absolute wording, prefer hedged wording, pick the option sharing most words with the
stem) in every subset a learner meets (each chapter, each bank topic, the spot-the-bug questions), and
flags stems that contain the key's distinctive words. ``tests/test_mc_fairness.py`` fails on any tell.
"""
from __future__ import annotations

import re

from .mc_fairness import MAX_ADVANTAGE, MCQuestion, all_questions, chance, longest_score

__all__ = ["ABSOLUTE_RE", "HEDGED_RE", "GIVEAWAY_WORDS", "MIN_SUBSET", "STRATEGIES", "avoid_absolute_score",
           "prefer_hedged_score", "stem_overlap_score", "stem_gives_away", "avoid_longest_score", "shortest_score",
           "subsets", "tells", "subset_report", "main"]


#: Absolute wording: a test-wise guesser drops these options ("Only when ...", "Nothing: ...").
ABSOLUTE_RE = re.compile(r"\b(only|always|never|nothing|none|every|whenever|cannot|impossible|"
                         r"guaranteed?|entirely|completely|exactly|must)\b", re.I)
#: Hedged wording: a test-wise guesser prefers these options.
HEDGED_RE = re.compile(r"\b(may|might|often|usually|typically|tends?|partly|partially|mostly|"
                       r"generally|likely|roughly|some|depends?)\b", re.I)
_STOP = set("""the a an and or of to in on for by with from at as is are be it its this that these
those which what when where how why than then there their them they not no into can does do one
two set answer option options bug below above each""".split())


#: How many of the key's distinctive words a stem may contain before it gives the answer away.
GIVEAWAY_WORDS = 2


def _words(text: str) -> set[str]:
    """Content words of ``text``, lower-cased, cut to a 6-letter stem (``probabilities`` and
    ``probability`` -> ``probab``), without short and function words."""
    return {w[:6] for w in re.findall(r"[a-z][a-z0-9²]+", text.lower()) if len(w) > 3 and w not in _STOP}


def _pick_score(questions: list[MCQuestion], candidates) -> float:
    """Expected fraction right when guessing at random among ``candidates(q)`` (all if empty)."""
    hits = 0.0
    for q in questions:
        pool = [k for k in candidates(q) if 0 <= k < len(q.options)] or list(range(len(q.options)))
        hits += (q.answer in pool) / len(pool)
    return hits / len(questions)


def _lengths(q: MCQuestion) -> list[int]:
    return [len(" ".join(o.split())) for o in q.options]


def avoid_longest_score(questions: list[MCQuestion]) -> float:
    """Guess among the options that are NOT the longest: the counter-tell of a bank whose keys were
    made shorter than their distractors to defeat "pick the longest"."""
    return _pick_score(questions, lambda q: [k for k, n in enumerate(_lengths(q)) if n < max(_lengths(q))])


def shortest_score(questions: list[MCQuestion]) -> float:
    """Guess among the shortest options (ties at random)."""
    return _pick_score(questions, lambda q: [k for k, n in enumerate(_lengths(q)) if n == min(_lengths(q))])


def avoid_absolute_score(questions: list[MCQuestion]) -> float:
    """Guess among the options WITHOUT absolute wording ("only", "always", "never", "nothing", ...)."""
    return _pick_score(questions, lambda q: [k for k, o in enumerate(q.options) if not ABSOLUTE_RE.search(o)])


def prefer_hedged_score(questions: list[MCQuestion]) -> float:
    """Guess among the options WITH hedged wording ("may", "often", "typically", ...)."""
    return _pick_score(questions, lambda q: [k for k, o in enumerate(q.options) if HEDGED_RE.search(o)])


def stem_overlap_score(questions: list[MCQuestion]) -> float:
    """Guess among the options sharing the most content words with the stem (all if none shares)."""
    def best(q):
        stem = _words(q.stem)
        shared = [len(_words(o) & stem) for o in q.options]
        return [k for k, n in enumerate(shared) if n == max(shared)] if max(shared) else []
    return _pick_score(questions, best)


def stem_gives_away(q: MCQuestion) -> set[str]:
    """The key's distinctive words (in no distractor) that the stem contains."""
    others = set().union(*(_words(o) for k, o in enumerate(q.options) if k != q.answer))
    return (_words(q.options[q.answer]) - others) & _words(q.stem)


#: The blind strategies scored in every subset: name -> score function.
STRATEGIES = {"longest option": longest_score, "avoid the longest": avoid_longest_score,
              "shortest option": shortest_score, "avoid absolute wording": avoid_absolute_score,
              "prefer hedged wording": prefer_hedged_score, "most words shared with the stem": stem_overlap_score}


def subsets(questions: list[MCQuestion]) -> dict[str, list[MCQuestion]]:
    """The sets a learner meets: all, each chapter (and the bank), each topic, the spot-the-bug questions."""
    out: dict[str, list[MCQuestion]] = {"all": list(questions)}
    for q in questions:
        out.setdefault(f"chapter {q.where.split()[0]}" if not q.where.startswith("question bank")
                       else "question bank", []).append(q)
        if q.topic and q.topic != q.where.split()[0]:
            out.setdefault(f"topic {q.topic}", []).append(q)
        if re.search(r"\bex-bug", q.where):
            out.setdefault("spot-the-bug", []).append(q)
    return out


#: Rates are judged in subsets of at least this many questions: over one question any strategy scores
#: 0% or 100% (or 1/k with ties), which says nothing about a bias of the bank.
MIN_SUBSET = 4


def tells(questions: list[MCQuestion]) -> list[str]:
    """Every (subset, strategy) where a blind strategy beats chance by more than :data:`MAX_ADVANTAGE`
    (subsets of at least :data:`MIN_SUBSET` questions), and every question whose stem contains the key's
    distinctive words; empty when fair."""
    found = []
    for name, qs in subsets(questions).items():
        if len(qs) < MIN_SUBSET:
            continue
        base = chance(qs)
        for strategy, score in STRATEGIES.items():
            if score(qs) > base + MAX_ADVANTAGE + 1e-9:
                found.append(f"{name} ({len(qs)} questions): '{strategy}' scores {score(qs):.1%}, chance {base:.1%}")
    found += [f"{q.where}: the stem contains the key's distinctive words {sorted(stem_gives_away(q))}"
              for q in questions if len(stem_gives_away(q)) >= GIVEAWAY_WORDS]
    return found


def subset_report(questions: list[MCQuestion]) -> str:
    """A table: per subset, chance and the score of each blind strategy."""
    lines = [f"{'subset':34s} {'n':>3s} {'chance':>7s} " + " ".join(f"{s[:14]:>14s}" for s in STRATEGIES)]
    for name, qs in subsets(questions).items():
        lines.append(f"{name:34s} {len(qs):3d} {chance(qs):7.1%} "
                     + " ".join(f"{f(qs):14.1%}" for f in STRATEGIES.values()))
    return "\n".join(lines)


def main() -> int:
    """Print the subset table and every tell; exit status 1 when there is one."""
    qs = all_questions()
    print(subset_report(qs))
    found = tells(qs)
    print("\n".join(["tells:"] + found) if found else "no tell in any subset")
    return int(bool(found))


if __name__ == "__main__":
    raise SystemExit(main())
