"""Wrong answers as small patches of the reference answer (see README.md in this folder).

A catalogue module loads this file and writes each wrong answer as ``old -> new`` edits of the
reference answer cell from ``solutions/`` (the cell as a learner who got it right hands it in:
the solution's source without its ``### BEGIN/END SOLUTION`` lines)::

    import runpy
    from pathlib import Path
    ref = runpy.run_path(str(Path(__file__).with_name("_patch.py")))["Reference"](__file__)

    WRONG_ANSWERS = [
        ("ex-sampler", "classes not shuffled",
         ref.patch("ex-sampler", "classes[torch.randperm(len(classes))]", "classes"), ["test-sampler"]),
    ]

Each ``old`` must occur exactly once in the reference (else a clear error), so a wrong answer
stays a few lines and follows the reference when the reference changes elsewhere.
"""
from __future__ import annotations

from pathlib import Path

from utils.course.notebooks import (cell_by_grade_id, read_notebook, remove_marker_lines,
                                    solution_path)
from utils.errors import course_error


class Reference:
    """The reference answer cells of the chapter a catalogue file is named after."""

    def __init__(self, catalogue_file: str | Path):
        path = Path(catalogue_file)
        self.chapter, root = path.stem, path.resolve().parents[2]
        cells = cell_by_grade_id(read_notebook(solution_path(root, self.chapter)))
        self.answers = {gid: remove_marker_lines(c.source) for gid, c in cells.items()}

    def source(self, grade_id: str) -> str:
        """The reference source of answer cell ``grade_id`` (marker lines removed)."""
        if grade_id not in self.answers:
            raise course_error(f"wrong answers of {self.chapter}", "an answer cell grade_id: "
                               + ", ".join(sorted(self.answers)), repr(grade_id),
                               "use the grade_id of the answer cell the row patches")
        return self.answers[grade_id]

    def patch(self, grade_id: str, old: str, new: str, *more: tuple[str, str]) -> str:
        """The reference of ``grade_id`` with ``old`` replaced by ``new`` (then each further
        ``(old, new)`` pair of ``more``, in order); each ``old`` must occur exactly once."""
        text = self.source(grade_id).rstrip("\n") + "\n"   # a cell as a learner leaves it
        for before, after in ((old, new), *more):
            n = text.count(before)
            if n != 1:
                raise course_error(f"wrong answers of {self.chapter}, patch of {grade_id}",
                                   "the old text exactly once in the reference answer",
                                   f"{n} occurrences of {before[:60]!r}",
                                   "quote more (or exactly) of the reference in solutions/")
            text = text.replace(before, after)
        return text
