"""Keep ``chapters/`` generated from ``solutions/`` (``python -m utils.course sync [--check]``).

:func:`sync` strips the instructor notebooks in place (outputs, execution counts, widget state;
cell ids kept, missing ones added) and regenerates each chapter's student version with
``nbgrader generate_assignment``, then tags the student version's exercise cells (answer stubs
and autograded tests) with nbval's ``raises-exception`` (:func:`tag_expected_errors`), so
``pytest --nbval-lax chapters/`` accepts errors there and nowhere else. :func:`check_sync` does
the same into a temporary folder and lists every difference with the committed ``chapters/``,
without writing anything.

**Editions.** A course with a translation folder ``solutions/locale/<lang>/`` (today ``zh``) has a
second student edition, ``chapters_<lang>/<chapter>/<chapter>.ipynb``: :func:`generate_editions`
builds it from the English student version with
:func:`utils.course.translations.translated_notebook`, so code cells, stubs, hidden-test removal,
grade ids, points and nbval tags are the English ones; only markdown (and ``LANGUAGE``) differ.
Same assignment and notebook names: an instructor releases either edition under the same nbgrader
assignment and gradebook. A missing or stale translation is a :func:`course_error` from ``sync``
and a difference line from :func:`check_sync`, never a half-translated edition.
"""
from __future__ import annotations

import filecmp
import shutil
import tempfile
from pathlib import Path

from ..errors import CourseError, course_error
from .nbgrader_course import TempCourse
from .notebooks import (compare_notebooks, ensure_cell_ids, find_chapters, nbgrader_meta,
                        read_notebook, solution_path, strip_notebook, unstripped_problems,
                        write_notebook)

__all__ = [
    "RAISES_TAG", "NEVER_RAISES", "tag_expected_errors", "expected_errors_preprocessor",
    "strip_solutions", "generate_chapters", "editions", "edition_dir", "generate_editions", "sync",
    "compare_dirs", "check_sync",
]

#: nbval's cell tag for "this cell may raise": a learner running the untouched student version
#: top to bottom sees an error there and nowhere else (``tests/test_nbval.py`` checks it).
RAISES_TAG = "raises-exception"
#: grade_ids of locked autograded cells that must run cleanly in an untouched notebook (never tagged).
NEVER_RAISES = frozenset({"integrity-check"})


def tag_expected_errors(nb) -> list[str]:
    """Tag the exercise cells of a student notebook ``raises-exception`` (in place); return their ids.

    Those are the code cells nbgrader marks as a learner's answer (``solution``) or as an
    autograded test (``grade``): the stub raises ``NotImplementedError`` and its tests fail until
    the learner fills it in. Cells whose grade_id is in :data:`NEVER_RAISES` are left alone.
    """
    tagged = []
    for cell in nb.cells:
        meta = nbgrader_meta(cell)
        if cell.cell_type != "code" or not (meta.get("solution") or meta.get("grade")):
            continue
        if meta.get("grade_id") in NEVER_RAISES:
            continue
        tags = cell.metadata.setdefault("tags", [])
        if RAISES_TAG not in tags:
            tags.append(RAISES_TAG)
        tagged.append(cell.get("id"))
    return tagged


def expected_errors_preprocessor():
    """An nbconvert preprocessor class that runs :func:`tag_expected_errors` on each notebook
    nbgrader generates; ``nbgrader_config.py`` appends it to ``GenerateAssignment.preprocessors``
    so a plain ``nbgrader generate_assignment`` tags the student version like ``course sync``."""
    from nbconvert.preprocessors import Preprocessor

    class TagExpectedErrors(Preprocessor):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.enabled = True  # nbconvert preprocessors are off unless enabled

        def preprocess(self, nb, resources):
            tag_expected_errors(nb)
            return nb, resources

    return TagExpectedErrors


def strip_solutions(root: str | Path, chapters: list[str] | None = None) -> list[Path]:
    """Strip every notebook in ``solutions/<chapter>/`` in place; return the files that changed."""
    root = Path(root)
    changed = []
    for ch in chapters if chapters is not None else find_chapters(root):
        for path in sorted(solution_path(root, ch).parent.glob("*.ipynb")):
            nb = strip_notebook(read_notebook(path))
            ensure_cell_ids(nb)
            if write_notebook(nb, path):
                changed.append(path)
    return changed


def generate_chapters(root: str | Path, out: str | Path, chapters: list[str] | None = None) -> list[str]:
    """Generate the student version of each chapter into ``<out>/<chapter>/``; return the chapters.

    Works on stripped copies in a temporary nbgrader course, so ``solutions/`` is only read.
    Each ``<out>/<chapter>/`` is replaced as a whole.
    """
    root, out = Path(root), Path(out)
    chapters = find_chapters(root) if chapters is None else chapters
    if not chapters:
        return []
    with TempCourse(root) as course:
        for ch in chapters:
            course.add_chapter(ch)
            for path in (course.path / "solutions" / ch).glob("*.ipynb"):
                nb = read_notebook(path)
                if ensure_cell_ids(nb):
                    write_notebook(nb, path)
        release = course.generate(db=False)
        for ch in chapters:
            dst = out / ch
            if dst.exists():
                shutil.rmtree(dst)
            shutil.copytree(release / ch, dst)
            for path in dst.glob("*.ipynb"):  # nbgrader's layout -> ours (stable text)
                nb = read_notebook(path)
                tag_expected_errors(nb)
                write_notebook(nb, path)
                path.chmod(0o644)
    return chapters


def editions(root: str | Path) -> list[str]:
    """The course's languages besides English: those of :data:`~utils.course.translations.LANGUAGES`
    with a catalog folder ``solutions/locale/<lang>/`` (a course without one has no second edition)."""
    from .translations import LANGUAGES

    return [lang for lang in LANGUAGES if (Path(root) / "solutions" / "locale" / lang).is_dir()]


def edition_dir(english: str | Path, lang: str) -> Path:
    """Where the ``lang`` edition of the student folder ``english`` goes: its sibling
    ``<name>_<lang>`` (``chapters/`` -> ``chapters_zh/``)."""
    english = Path(english)
    return english.with_name(f"{english.name}_{lang}")


def generate_editions(root: str | Path, english: str | Path, chapters: list[str],
                      lang: str, out: str | Path | None = None) -> tuple[list[str], list[str]]:
    """Translate each chapter's English student notebook in ``english/<chapter>/`` into
    ``out/<chapter>/`` (default :func:`edition_dir`); returns (chapters written, problems).

    A chapter whose translation is missing or stale is not written (its folder is left as it
    was) and yields one problem line: what :func:`~utils.course.translations.translation_of` says.
    """
    from .translations import translated_notebook

    root, english = Path(root), Path(english)
    out = Path(out) if out else edition_dir(english, lang)
    written, problems = [], []
    for ch in chapters:
        src = english / ch / f"{ch}.ipynb"
        try:
            nb = translated_notebook(read_notebook(src), root, ch, lang)
        except CourseError as exc:
            problems.append(f"{out.name}/{ch}: not generated: {exc}")
            continue
        dst = out / ch
        if dst.exists():
            shutil.rmtree(dst)
        shutil.copytree(english / ch, dst)     # the same files as the English chapter folder
        write_notebook(nb, dst / src.name)
        written.append(ch)
    return written, problems


def sync(root: str | Path, out: str | Path | None = None) -> tuple[list[Path], list[str]]:
    """Strip ``solutions/`` in place and regenerate ``chapters/`` (or ``out``) and every edition
    (``chapters_zh/``, or ``<out>_zh``).

    Returns (solution files that were stripped, chapters generated). Raises a
    :func:`course_error` listing the chapters of an edition that could not be translated, after
    writing everything else.
    """
    root = Path(root)
    stripped = strip_solutions(root)
    target = Path(out) if out else root / "chapters"
    generated = generate_chapters(root, target)
    problems = []
    for lang in editions(root):
        problems += generate_editions(root, target, generated, lang)[1]
    if problems:
        raise course_error("the translated editions", "a current translation of every chapter",
                           f"{len(problems)} chapter(s) not generated:\n  " + "\n  ".join(problems),
                           "translate the entries named above, then run sync again "
                           "(chapters/ itself was regenerated)")
    return stripped, generated


def compare_dirs(expected: Path, found: Path, label: str) -> list[str]:
    """Differences between a generated chapter folder and a committed one (notebooks cell by cell)."""
    diffs = []
    exp_files = {p.relative_to(expected) for p in expected.rglob("*") if p.is_file()}
    got_files = {p.relative_to(found) for p in found.rglob("*") if p.is_file()} if found.is_dir() else set()
    for rel in sorted(exp_files - got_files):
        diffs.append(f"{label}/{rel}: missing (sync would create it)")
    for rel in sorted(got_files - exp_files):
        if ".ipynb_checkpoints" not in rel.parts:
            diffs.append(f"{label}/{rel}: not generated from solutions/ (sync would delete it)")
    for rel in sorted(exp_files & got_files):
        if rel.suffix == ".ipynb":
            for d in compare_notebooks(read_notebook(expected / rel), read_notebook(found / rel)):
                diffs.append(f"{label}/{rel}: {d}")
        elif not filecmp.cmp(expected / rel, found / rel, shallow=False):
            diffs.append(f"{label}/{rel}: content differs")
    return diffs


def check_sync(root: str | Path) -> list[str]:
    """Differences between ``chapters/`` and what ``sync`` would write (empty list: in sync).

    Also reports instructor notebooks that still carry outputs, counts, widget state or lack ids.
    """
    root = Path(root)
    chapters = find_chapters(root)
    diffs = []
    for ch in chapters:
        for path in sorted(solution_path(root, ch).parent.glob("*.ipynb")):
            for problem in unstripped_problems(read_notebook(path)):
                diffs.append(f"solutions/{ch}/{path.name}: {problem} (sync strips it)")
    with tempfile.TemporaryDirectory(prefix="course-sync-") as tmp:
        english = Path(tmp) / "chapters"
        generate_chapters(root, english, chapters)
        trees = [("chapters", chapters)]
        for lang in editions(root):
            written, problems = generate_editions(root, english, chapters, lang)
            diffs += problems
            trees.append((edition_dir(english, lang).name, written))
        for name, done in trees:
            diffs += _compare_tree(Path(tmp) / name, root / name, name, done, chapters)
    return diffs


def _compare_tree(generated: Path, committed: Path, name: str, done: list[str], chapters: list[str]) -> list[str]:
    diffs = []
    for ch in done:
        diffs += compare_dirs(generated / ch, committed / ch, f"{name}/{ch}")
    if committed.is_dir():
        for d in sorted(committed.iterdir()):
            if d.is_dir() and d.name not in chapters and not d.name.startswith("."):
                diffs.append(f"{name}/{d.name}: no solutions/{d.name} to generate it from")
    return diffs
