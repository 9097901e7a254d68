"""The engine of "Everything is a mapping", a notebook course on meta-learning and fast adaptation.

Modules (import what you need, e.g. ``from utils.meta import MAML``):

- :mod:`utils.runtime`   device choice, seeding, FAST mode, timing
- :mod:`utils.tasks`     the sinusoid task family
- :mod:`utils.episodes`  N-way K-shot episodes and class splits
- :mod:`utils.glyphs`    the embedded procedural few-shot image set
- :mod:`utils.digits`    scikit-learn's digits as tensors
- :mod:`utils.omniglot`  the real Omniglot release (shipped minimal sets, local zips or checksummed download)
- :mod:`utils.lake`      Lake-style one-shot runs on held-out Omniglot alphabets, the shipped ProtoNet
- :mod:`utils.models`    MLP, conv-4 backbone, classifiers
- :mod:`utils.training`  supervised ``fit`` / ``evaluate``
- :mod:`utils.functional` the inner loop as a pure function, vectorized with ``torch.func``
- :mod:`utils.meta`      MAML, FOMAML, ANIL, Meta-SGD, Reptile, ProtoNet, fine-tune baseline
- :mod:`utils.stats`, :mod:`utils.plots`, :mod:`utils.widgets`, :mod:`utils.figures`
- :mod:`utils.course`    the command line: ``python -m utils.course --help``
"""
__version__ = "0.1.0"
