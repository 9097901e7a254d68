"""The engine of "Everything is a mapping", a notebook course on meta-learning and fast adaptation.

Import what you need, e.g. ``from utils.learners import MAML``. Every module is listed here, by room;
``tests/test_layout.py`` fails when one is missing and checks that the engine never imports
:mod:`utils.course`; ``tests/test_house_rules.py`` checks the size and naming rules (no module over
400 lines, ``__all__`` in every public module, no notebook using a private name). CONTRIBUTING.md
has the map.

The course's words
    - :mod:`utils.vocab`        the mapping types (Model, Learner, TaskSource, MetaLearner, ModelMap, Network),
      the ``TaskTensors`` base of task batches and ``split_batch``
    - :mod:`utils.chapters`     the chapter list, their name patterns and heading anchors

Foundations
    - :mod:`utils.errors`       ``CourseError``: what was expected, what was found, what to do
    - :mod:`utils.runtime`      device choice, seeding, FAST mode, every ``COURSE_*`` name and ``headless_env``, timing
    - :mod:`utils.cache`        atomic writes and the settings-keyed cache under ``data/cache/``
    - :mod:`utils.stats`        mean ± 95 % CI, seed spreads, choosing on validation data
    - :mod:`utils.results`      results that present themselves (``MetaResult``: mean, CI, what it covers)
    - :mod:`utils.tables`       result tables (``show_table``) instead of hand-aligned prints
    - :mod:`utils.plots`        labelled figures: histories, episodes, CI bars, reliability diagrams
    - :mod:`utils.widgets`      ipywidgets that still draw a figure headless
    - :mod:`utils.figures`      the headline numbers a chapter records for ``course run``
    - :mod:`utils.chapter`      a chapter starts in one line (``start_chapter``) and ends with ``ch.finish``

Tasks and data
    - :mod:`utils.tasks`        the sinusoid family, the piecewise regression task
    - :mod:`utils.episodes`     N-way K-shot episodes and class splits
    - :mod:`utils.glyphs`       the embedded procedural few-shot image set
    - :mod:`utils.digits`       scikit-learn's handwritten digits as tensors
    - :mod:`utils.omniglot`     the real Omniglot release (shipped minimal sets, checksummed download)
    - :mod:`utils.lake`         Lake-style one-shot runs on held-out Omniglot alphabets; the shipped ProtoNet

Models and learning
    - :mod:`utils.models`       MLP, conv-4 backbone, classifiers
    - :mod:`utils.training`     supervised ``fit`` / ``evaluate``; ``cosine_schedule`` for ``meta_train``
    - :mod:`utils.distributed`  meta-training across processes: torchrun's world, gradient averaging, synced batch norm
    - :mod:`utils.learners`     every learner behind one protocol (``Learner``: ``meta_train``, ``adapt`` /
      ``evaluate_task``, ``state_dict`` / ``load_state_dict``, ``variant``), one module per family:
      ``base``, ``distributed`` (the outer loop over ranks, resumable checkpoints), ``inner_loop``
      (``Adaptation`` and the one inner loop), ``folded``, ``maml`` (MAML,
      first-order MAML, ANIL, Meta-SGD, Reptile), ``metric`` (ProtoNet, matching networks, ProtoMAML),
      ``blackbox`` (CNP, support attention), ``learned_optimizer``, ``finetune`` (the fine-tuning
      baseline), ``evaluate`` (mean ± 95 % CI over test tasks), ``ensemble`` (adapted ensembles)

Model-to-model maps
    - :mod:`utils.distill`      knowledge distillation (chapter 04)
    - :mod:`utils.compress`     pruning, quantization, lowrank, measure: one module each (chapter 05)
    - :mod:`utils.fuse`         ensembles, calibration, weight averaging, mixtures of experts (chapter 06)

Chapter kits (what one chapter measures with; they import the engine, never the machinery)
    - :mod:`utils.sinusoid_lab` chapter 02's sinusoid adaptation curves and recipes
    - :mod:`utils.distributed_lab` what meta-training on several processes costs and sends (chapter 02)
    - :mod:`utils.protonet_ranks` chapter 02's glyph ProtoNet recipe, shipped from a 2-process run (chapter 02)
    - :mod:`utils.meta_costs`   what a meta-iteration costs (memory, work) and what adaptation moves
    - :mod:`utils.families`     chapter 03's recipes, task pools, digit episodes and checkpoints
    - :mod:`utils.checkpoints`  the small trained checkpoints shipped in ``data/checkpoints/``
    - :mod:`utils.trained`      one way to a trained learner: recipes and ``trained(name, seed=...)``
    - :mod:`utils.multitask`    chapter 01's multi-head classifier
    - :mod:`utils.language`     the language a chapter prints in (``LANGUAGE``: the English or Chinese edition)
    - :mod:`utils.messages`     the catalog of printed text in the other editions (``utils/locale/<lang>/messages.po``)
    - :mod:`utils.story`        a chapter's checked claims and headline rankings (``ch.claim``, ``ch.ranking``)
    - :mod:`utils.glossary`     the bilingual glossary
    - :mod:`utils.glossary_zh`  the English term in parentheses at a Chinese term's first use (the bank's rule)
    - :mod:`utils.interview`    chapter 07's question bank, flashcards and mock interview (bank, cards,
      practice, apps)

The course's machinery (not needed to learn from the chapters)
    - :mod:`utils.course`       the command line ``python -m utils.course --help``: running,
      syncing, grading, the sandbox, benchmarks, the book
"""
__version__ = "0.2.0"
__all__ = ["ENGINE_MODULES", "KIT_MODULES"]

#: Every engine module and package, by import name (tests/test_layout.py keeps this complete).
ENGINE_MODULES = (
    "vocab", "chapters",
    "messages", "errors", "language", "runtime", "cache", "stats", "results", "tables", "plots", "widgets", "figures", "story", "chapter",
    "tasks", "episodes", "glyphs", "digits", "omniglot", "lake",
    "models", "training", "distributed", "learners",
    "distill", "compress", "fuse",
    "sinusoid_lab", "distributed_lab", "protonet_ranks", "meta_costs", "checkpoints", "trained", "multitask", "glossary", "glossary_zh", "interview", "families",
)
#: The chapter kits among them: engine code that serves one chapter (may not import the machinery either).
KIT_MODULES = ("sinusoid_lab", "distributed_lab", "protonet_ranks", "meta_costs", "checkpoints", "trained", "multitask", "glossary", "glossary_zh", "interview", "families")
