"""The course's machinery: everything that runs, syncs, grades and publishes the chapters.

``python -m utils.course --help`` lists the commands (:mod:`utils.course.cli`). The engine
(:mod:`utils`) never imports this package; the chapters import only :mod:`utils.course.integrity`
(the locked grading cells). Every module, by job:

Command line
    - :mod:`utils.course.cli`            ``python -m utils.course`` (also ``__main__``)
    - :mod:`utils.course.shipping`       ``course train`` / ``course ship-cache``: re-create the shipped models
    - :mod:`utils.course.bench`          ``course bench``: speed and accuracy benchmarks
    - :mod:`utils.course.bench_maml`     ``bench maml-throughput``: quiet vs contended, peer libraries
    - :mod:`utils.course.bench_distributed` ``bench distributed``: 1 vs N processes (torch.distributed)
    - :mod:`utils.course.bench_class`    ``bench class``: a class of N submissions autograded, gradebook check
    - :mod:`utils.course.bench_story`    ``bench story``: every headline ranking in FAST and full mode, agreed or not
    - :mod:`utils.course.progress`       ``course progress``: the learner's grade dashboard
    - :mod:`utils.course.book`           ``course book``: the course as a static website (the Sphinx build)
    - :mod:`utils.course.book_runs`      the book's executed notebooks, reused while current
    - :mod:`utils.course.recorded`       ``course record``: the recorded full-mode runs the book shows (data/recorded/)
    - :mod:`utils.course.book_pages`     the book's pages: chapters, landing page, glossary, bank
    - :mod:`utils.course.book_leaks`     the leak scan of a built book
    - :mod:`utils.course.book_zh`        the book's Chinese edition and its language switch

Notebooks
    - :mod:`utils.course.notebooks`      read, strip, compare, find answer cells and leaks
    - :mod:`utils.course.execute`        run a chapter headless with papermill
    - :mod:`utils.course.conventions`    the notebook conventions (shared setup cell, knobs, 40-line cells)
    - :mod:`utils.course.sync`           ``solutions/`` -> ``chapters/`` through nbgrader
    - :mod:`utils.course.nbgrader_course` nbgrader glue: temporary courses, environment

Grading
    - :mod:`utils.course.grading`        self-grading: the run (``course grade``)
    - :mod:`utils.course.grading_intake` what was handed in: chapter, locked cells, pasted copies
    - :mod:`utils.course.grading_scores` the points, the integrity rule, the gradebook comparison
    - :mod:`utils.course.grading_report` the grade report and why a test failed
    - :mod:`utils.course.autograde`      ``course autograde`` for instructors
    - :mod:`utils.course.sandbox`        bubblewrap sandbox around every learner notebook
    - :mod:`utils.course.sandbox_exec`   the notebook runner inside the sandbox
    - :mod:`utils.course.sandbox_limits` the bounds per submission: memory, processes, disk, CPU, output
    - :mod:`utils.course.sandbox_cgroup` a cgroup around one sandbox run, where one can be made
    - :mod:`utils.course.nbgrader_sandbox` nbgrader autograde with the sandboxed executor
    - :mod:`utils.course.integrity`      the locked cells that stop delegation and tampering
    - :mod:`utils.course.integrity_forbid`   its delegation detection (tripwires, profile hook)
    - :mod:`utils.course.integrity_snapshot` its record of what tampering would change
    - :mod:`utils.course.check_tests`    the wrong-answer catalogue against the hidden tests
    - :mod:`utils.course.mc_fairness`    multiple-choice questions without give-aways
    - :mod:`utils.course.mc_tells`       finer tells (wording, stems) in every subset a learner meets
    - :mod:`utils.course.claims`         every claim in the prose names its check (``ch.claim``), and back
    - :mod:`utils.course.translations`   the Chinese edition's gettext catalogs: extract, stale (fuzzy), check

Test fixtures
    - :mod:`utils.course.fixtures`       an Omniglot-format stand-in for the loader's tests
"""

__all__ = ["MODULES"]

#: Every module of the machinery (tests/test_layout.py keeps this complete).
MODULES = ("cli", "shipping", "bench", "bench_maml", "bench_distributed", "bench_class", "bench_story", "progress", "book", "book_runs", "recorded", "book_pages", "book_leaks", "book_zh", "notebooks",
           "execute", "conventions", "sync", "nbgrader_course",
           "grading", "grading_intake", "grading_scores", "grading_report", "autograde", "sandbox", "sandbox_exec", "sandbox_limits", "sandbox_cgroup", "nbgrader_sandbox", "integrity",
           "integrity_forbid", "integrity_snapshot",
           "check_tests", "mc_fairness", "mc_tells", "claims", "translations", "fixtures")
