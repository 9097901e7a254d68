"""The course's command line: ``python -m utils.course COMMAND ...``.

Commands
  list   the chapters found in solutions/
  run    execute every chapter headless (papermill, FAST unless --full) and print a table
  sync   strip solutions/ and regenerate chapters/ with nbgrader (--check: only compare)
  grade  self-grade your notebook against the hidden tests (never modifies it)
  autograde  (instructors) autograde collected submissions of an nbgrader course, sandboxed
  progress  grade every chapter notebook you work in and print one table (your dashboard)
  bench  run a benchmark (utils.course.bench)
  bank   print (or --out: write) a practice sheet of the question bank: questions, then answers
  check-tests  autograde the chapter's catalogued wrong answers: which do the hidden tests let through?
  book   build the course as a static website: recorded full-mode outputs where current, else FAST
  train / ship-cache  (maintainers) re-create the shipped checkpoints / FAST models (utils.course.shipping)
  record (maintainers) after `run --full --build DIR`: the book's recorded runs, data/recorded/

Exit codes: 0 success, 1 a chapter failed / chapters out of sync, 2 bad usage or input.
"""
from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path

from .execute import add_run_options
from .notebooks import PROJECT_ROOT
from ..errors import CourseError, course_error

__all__ = [
    "COMMANDS", "PROG", "build_parser", "cmd_list", "cmd_run", "cmd_sync", "cmd_grade", "cmd_progress",
    "cmd_autograde", "cmd_bench", "cmd_check_tests", "cmd_bank", "cmd_book", "HANDLERS", "main"
]

COMMANDS = {
    "list": "list the chapters found in solutions/",
    "run": "execute every chapter headless with papermill and print a summary table",
    "sync": "strip solutions/ notebooks and regenerate chapters/ with nbgrader",
    "grade": "self-grade your notebook against the hidden tests (never modifies it)",
    "autograde": "instructors: autograde an nbgrader course's submissions with learner code sandboxed",
    "bench": "run a benchmark: bench NAME [ARGS...] (see bench --help)",
    "bank": "a practice sheet from the question bank: bank --lang zh --topic distillation",
    "progress": "grade every chapter notebook in chapters/ and print one table of where you stand",
    "check-tests": "autograde the catalogued wrong answers of chapters (tests/wrong_answers/): "
                   "which do the hidden tests let through?",
    "book": "build the course as a static website (HTML) from recorded or executed notebooks",
    "record": "maintainers: record full-mode runs (after `run --full --build DIR`) into data/recorded/ for the book",
    "train": "maintainers: re-create shipped checkpoints: train ch02-sine|ch03-cnp|ch03-lopt --seeds 0 1 2",
    "ship-cache": "maintainers: re-create data/checkpoints/cache (the FAST models of chapters 01, 02, 03)",
}
PROG = "python -m utils.course"


class _Parser(argparse.ArgumentParser):
    """argparse with errors in the course's expected / found / what-to-do style (exit code 2)."""

    def error(self, message: str):  # noqa: D401  (argparse API)
        if "invalid choice" in message and "command" in message.lower():
            found = message.split("invalid choice:", 1)[1].split("(", 1)[0].strip()
            message = (f"command: expected one of {', '.join(COMMANDS)}, found {found}. "
                       f"What to do: run `{PROG} --help` to see what each command does.")
        else:
            message = f"{message}. What to do: run `{self.prog} --help`."
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}\n")


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Keeps every command name on the line of its help (argparse under-counts their indent)."""

    def add_argument(self, action):
        super().add_argument(action)
        if isinstance(action, argparse._SubParsersAction):
            longest = max(len(name) for name in action.choices) + self._current_indent + 4
            self._action_max_length = max(self._action_max_length, longest)


def build_parser() -> argparse.ArgumentParser:
    """The CLI's argument parser (one sub-command per entry of :data:`COMMANDS`)."""
    p = _Parser(prog=PROG, description="Everything is a mapping: the course's tooling.",
                formatter_class=_Formatter,
                epilog=f"Run `{PROG} COMMAND --help` for a command's options. Exit codes: 0 done, "
                "1 a chapter failed or chapters/ is out of sync, 2 bad usage or input.")
    p.add_argument("--root", type=Path, default=PROJECT_ROOT,
                   help="the course checkout to work on (default: this repository)")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser,
                           title="commands")

    sub.add_parser("list", help=COMMANDS["list"])

    r = sub.add_parser("run", help=COMMANDS["run"])
    r.add_argument("--full", action="store_true", help="FAST=False: the complete, slower version")
    r.add_argument("--only", nargs="+", metavar="NN", help="only these chapters (number or name)")
    r.add_argument("--timeout", type=int, default=None, metavar="S",
                   help="per-cell time limit in seconds (default: none)")
    add_run_options(r)  # --build, --lang

    s = sub.add_parser("sync", help=COMMANDS["sync"])
    s.add_argument("--check", action="store_true",
                   help="regenerate into a temporary folder and report differences (exit 1 if any)")
    s.add_argument("--out", type=Path, default=None, metavar="DIR",
                   help="write the student versions into DIR instead of chapters/")

    g = sub.add_parser("grade", help=COMMANDS["grade"])
    g.add_argument("path", type=Path, help="your notebook, e.g. chapters/01_mapping/01_mapping.ipynb")
    g.add_argument("--chapter", default=None, help="grade as this chapter (default: detected)")
    g.add_argument("--timeout", type=int, default=None, metavar="S",
                   help="per-cell time limit in seconds (default: 120)")
    g.add_argument("--json", action="store_true", help="print the report as JSON")
    g.add_argument("--no-sandbox", action="store_true",
                   help="run your code without the sandbox (default: sandboxed where bubblewrap works)")

    a = sub.add_parser("autograde", help=COMMANDS["autograde"])
    a.add_argument("assignment", help="the assignment (chapter) to autograde, e.g. 02_maml_vs_transfer")
    a.add_argument("--course-dir", type=Path, default=Path("."), metavar="DIR",
                   help="the nbgrader course folder (gradebook.db, submitted/); default: here")
    a.add_argument("--student", nargs="+", default=None, metavar="ID",
                   help="only these students (default: every collected submission)")
    a.add_argument("--timeout", type=int, default=None, metavar="S",
                   help="per-cell time limit in seconds (default: the course's c.Execute.timeout)")
    a.add_argument("--unsafe", action="store_true",
                   help="run learner code WITHOUT the sandbox when none is available")

    pr = sub.add_parser("progress", help=COMMANDS["progress"])
    pr.add_argument("--chapters", type=Path, default=None, metavar="DIR",
                    help="the folder of your NN_name/NN_name.ipynb notebooks (default: ROOT/chapters)")
    pr.add_argument("--only", nargs="+", metavar="NN", help="only these chapters (number or name)")
    pr.add_argument("--jobs", type=int, default=None, metavar="N",
                    help="chapters graded at once (default: half the CPU cores)")
    pr.add_argument("--timeout", type=int, default=None, metavar="S",
                    help="per-cell time limit in seconds (default: 120)")
    pr.add_argument("--json", action="store_true", help="print the rows as JSON")

    c = sub.add_parser("check-tests", help=COMMANDS["check-tests"])
    c.add_argument("chapters", nargs="+", metavar="NN", help="chapters (number or name)")
    c.add_argument("--lang", default="en", choices=("en", "zh"), help="the edition handed in (zh: chapters_zh/)")
    c.add_argument("--timeout", type=int, default=None, metavar="S", help="per-cell time limit in seconds (default: 120)")

    b = sub.add_parser("bench", help=COMMANDS["bench"], add_help=False)
    b.add_argument("args", nargs=argparse.REMAINDER, help="NAME [ARGS...] passed to utils.course.bench")

    k = sub.add_parser("bank", help=COMMANDS["bank"])
    k.add_argument("--lang", default="both", metavar="LANG",
                   help="en (English), zh (中文) or both (default)")
    k.add_argument("--topic", action="append", default=None, metavar="TOPIC",
                   help="a topic of utils.interview.TOPICS (repeat for several; default: all)")
    k.add_argument("--out", type=Path, default=None, metavar="FILE.md",
                   help="write the sheet as Markdown to FILE.md instead of printing it")

    o = sub.add_parser("book", help=COMMANDS["book"])
    om = o.add_mutually_exclusive_group()
    om.add_argument("--full", action="store_true", help="execute full runs (FAST=False) now and show them")
    om.add_argument("--fast", action="store_true", help="FAST runs for every chapter, ignoring data/recorded/")
    o.add_argument("--out", type=Path, default=None, metavar="DIR",
                   help="where the site goes (default: ROOT/build/book/html, or build/book-full/html)")
    o.add_argument("--timeout", type=int, default=None, metavar="S",
                   help="per-cell time limit in seconds for chapters that must be run (default: none)")
    importlib.import_module("utils.course.book").add_lang_argument(o)
    from ..sinusoid_lab import REPTILE_SGD, SINE_METHODS
    from .shipping import TRAINABLE
    t = sub.add_parser("train", help=COMMANDS["train"])
    t.add_argument("recipe", choices=TRAINABLE)
    t.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    t.add_argument("--methods", nargs="+", default=None, choices=list(SINE_METHODS) + [REPTILE_SGD],
                   help="ch02-sine only (default: all five methods but the Reptile SGD variant)")
    t.add_argument("--nproc", type=int, default=None, help="meta-train on N processes (starts torchrun; gloo/NCCL)")
    t.add_argument("--iterations", type=int, default=None, help="ch02-sine smoke run: only the first N steps")
    sc = sub.add_parser("ship-cache", help=COMMANDS["ship-cache"])
    sc.add_argument("chapters", nargs="*", default=["01", "02", "03"])
    importlib.import_module("utils.course.recorded").add_record_parser(sub, COMMANDS["record"])
    return p


# --------------------------------------------------------------------------- commands
def cmd_list(args) -> int:
    from .notebooks import find_chapters, release_path

    chapters = find_chapters(args.root)
    if not chapters:
        print("No chapters yet: solutions/ holds no NN_name/NN_name.ipynb notebooks.")
        return 0
    for ch in chapters:
        student = "chapters/ ok" if release_path(args.root, ch).exists() else "no chapters/ copy: run sync"
        print(f"{ch:<24} solutions/{ch}/{ch}.ipynb  ({student})")
    return 0


def cmd_run(args) -> int:
    from .execute import edition_folders, format_table, run_chapter
    from .notebooks import find_chapters, select_chapters

    available = find_chapters(args.root)
    if not available:
        print("No chapters yet: solutions/ holds no NN_name/NN_name.ipynb notebooks, so there is "
              "nothing to run. Chapters appear as they are written.")
        return 0
    chapters = select_chapters(available, args.only)
    mode = "full" if args.full else "FAST"
    print(f"Running {len(chapters)} chapter(s) headless ({mode} mode)...", flush=True)
    runs = []
    for ch in chapters:
        runs.append(run_chapter(args.root, ch, fast=not args.full, timeout=args.timeout,
                                build=args.build, lang=args.lang))
        print(f"  {ch}: {runs[-1].status} ({runs[-1].seconds:.1f} s)", flush=True)
        for line in runs[-1].artefacts or ["no cached or shipped artefacts used"]:
            print(f"      {line}", flush=True)
    print()
    print(format_table(runs))
    print(f"\nTotal: {sum(r.seconds for r in runs):.1f} s for {len(runs)} chapter(s) ({mode} mode)")
    build = args.build or Path(args.root) / "build"
    print(f"\nExecuted notebooks: {edition_folders(build, args.lang)[0]}")
    failed = [r.chapter for r in runs if not r.ok]
    if failed:
        print(f"{len(failed)} chapter(s) failed: {', '.join(failed)}. Open the executed copy to see "
              "the failing cell.")
        return 1
    return 0


def cmd_sync(args) -> int:
    from .notebooks import find_chapters
    from .sync import check_sync, sync

    if not find_chapters(args.root):
        print("No chapters yet: solutions/ holds no NN_name/NN_name.ipynb notebooks; nothing to sync.")
        return 0
    if args.check:
        diffs = check_sync(args.root)
        if diffs:
            print("chapters/ is out of sync with solutions/:")
            print("\n".join(f"  {d}" for d in diffs))
            print(f"What to do: run `{PROG} sync` and commit the result.")
            return 1
        print("chapters/ is in sync with solutions/.")
        return 0
    stripped, generated = sync(args.root, args.out)
    for path in stripped:
        print(f"stripped  {path}")
    target = args.out or Path(args.root) / "chapters"
    for ch in generated:
        print(f"generated {Path(target) / ch}")
    return 0


def cmd_grade(args) -> int:
    from .grading import DEFAULT_CELL_TIMEOUT, grade_notebook

    if not args.path.exists():
        raise course_error(f"notebook {args.path}", "an existing .ipynb file", "no such file",
                           "pass the path of your notebook, e.g. "
                           "chapters/01_mapping/01_mapping.ipynb")
    timeout = args.timeout or DEFAULT_CELL_TIMEOUT
    if not args.json:
        print(f"Grading {args.path} in a temporary nbgrader course (this runs the notebook)...",
              flush=True)
    report = grade_notebook(args.path, root=args.root, chapter=args.chapter, timeout=timeout,
                            sandbox=False if args.no_sandbox else None)
    print(json.dumps(report.to_dict(), indent=2) if args.json else report.format())
    return 0


def cmd_progress(args) -> int:
    from .grading import DEFAULT_CELL_TIMEOUT
    from .progress import course_progress, format_progress, progress_json

    if args.jobs is not None and args.jobs < 1:
        raise course_error("--jobs", "a whole number of at least 1", str(args.jobs),
                           "pass --jobs 1 to grade one chapter at a time")
    if not args.json:
        print("Grading every chapter notebook in a temporary nbgrader course (FAST mode; your "
              "files are only read)...", flush=True)
    rows = course_progress(args.root, chapters_dir=args.chapters, only=args.only, jobs=args.jobs,
                           timeout=args.timeout or DEFAULT_CELL_TIMEOUT)
    print(progress_json(rows) if args.json else format_progress(rows))
    return 1 if any(r.error for r in rows) else 0


def cmd_autograde(args) -> int:
    from .autograde import autograde_course

    print(f"Autograding {args.assignment} in {args.course_dir.resolve()} (learner code sandboxed)...",
          flush=True)
    results = autograde_course(args.course_dir, args.assignment, students=args.student,
                               timeout=args.timeout, unsafe=args.unsafe)
    for r in results:
        print(r.format())
    bad = [r for r in results if not r.graded]
    print(f"{len(results) - len(bad)} notebook(s) autograded; scores are in the gradebook."
          + (f" {len(bad)} submission(s) NOT graded: " + ", ".join(r.student for r in bad) if bad else ""))
    return 1 if bad else 0


def cmd_bench(args) -> int:
    try:
        bench = importlib.import_module("utils.course.bench")
    except ModuleNotFoundError as exc:
        if exc.name not in ("utils.course.bench",):
            raise
        raise course_error("bench", "the benchmarks module utils/course/bench.py", "none in this checkout",
                           "update your checkout; benchmarks arrive with the engine") from None
    result = bench.main(list(args.args))
    return int(result or 0)


def cmd_check_tests(args) -> int:
    from .check_tests import check_chapter
    from .notebooks import find_chapters, select_chapters

    chapters = select_chapters(find_chapters(args.root), args.chapters)
    failed = []
    for ch in chapters:
        print(f"Autograding the wrong answers catalogued for {ch} (this runs the chapter)...", flush=True)
        result = check_chapter(args.root, ch, timeout=args.timeout, lang=args.lang)
        print(result.format(), flush=True)
        if not result.ok:
            failed.append(ch)
    if failed:
        print(f"Hidden tests let wrong answers through (or a row interferes) in: {', '.join(failed)}. "
              "What to do: strengthen the test cells named above, or mark an interfering row solo.")
        return 1
    return 0

def cmd_bank(args) -> int:
    from ..interview import LANGUAGES, TOPICS, load_bank, practice_sheet

    if args.lang not in LANGUAGES:
        raise course_error("--lang", "one of " + ", ".join(LANGUAGES), repr(args.lang),
                           "pass --lang en (English), --lang zh (中文) or --lang both")
    unknown = [t for t in args.topic or () if t not in TOPICS]
    if unknown:
        raise course_error("--topic", "one of " + ", ".join(TOPICS), repr(unknown[0]),
                           "pass a topic from that list, e.g. --topic distillation")
    sheet = practice_sheet(load_bank(), topics=args.topic, lang=args.lang)
    if args.out is None:
        sys.stdout.write(sheet)
        return 0
    if not args.out.parent.is_dir():
        raise course_error(f"--out {args.out}", "a file in an existing folder",
                           f"no folder {args.out.parent}", "create the folder or pick another path")
    args.out.write_text(sheet, encoding="utf-8")
    print(f"wrote {args.out} ({len(sheet.splitlines())} lines)")
    return 0


def cmd_book(args) -> int:
    from .book import MODES, build_book
    mode = MODES["full" if args.full else "FAST" if args.fast else "recorded"]
    print(f"Building the book: {mode} (executed copies are reused when current)...", flush=True)
    result = build_book(args.root, args.out, fast=not args.full, recorded=not args.fast,
                        timeout=args.timeout, lang=args.lang, log=lambda m: print(m, flush=True))
    print(result.summary())
    return 0


HANDLERS = {"list": cmd_list, "run": cmd_run, "sync": cmd_sync, "grade": cmd_grade,
            "autograde": cmd_autograde, "bench": cmd_bench, "bank": cmd_bank,
            "progress": cmd_progress, "check-tests": cmd_check_tests, "book": cmd_book,
            "record": lambda a: importlib.import_module("utils.course.recorded").cmd_record(a),
            "train": lambda a: importlib.import_module("utils.course.shipping").train_command(a),
            "ship-cache": lambda a: importlib.import_module("utils.course.shipping").ship_cache(a.chapters)}


def _command_index(argv: list[str]) -> int | None:
    """Position of the command word in ``argv`` (skipping the global options), or ``None``."""
    i = 0
    while i < len(argv):
        if argv[i] == "--root":
            i += 2
        elif argv[i].startswith("-"):
            i += 1
        else:
            return i
    return None


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` and run the command; return the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    i = _command_index(argv)
    if i is not None and argv[i] == "bench":  # the rest, --help included, belongs to utils.course.bench
        args = parser.parse_args(argv[: i + 1])
        args.args = argv[i + 1:]
    else:
        args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    root = Path(args.root)
    if not root.is_dir():
        print(f"{PROG}: error: --root: expected a course folder, found no folder {root}. "
              "What to do: pass the folder that holds solutions/.", file=sys.stderr)
        return 2
    try:
        return HANDLERS[args.command](args)
    except CourseError as exc:
        print(f"{PROG} {args.command}: error: {exc}", file=sys.stderr)
        return 2

