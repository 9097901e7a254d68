"""Model fusion (chapter 06): several models become one. One module per kind of fusion:

* :mod:`utils.fuse.ensembles` — output ensembles: combine the members' *outputs* (average the
  probabilities or the logits, or vote); ``M`` forward passes, any models.
* :mod:`utils.fuse.calibration` — are the fused probabilities honest? Reliability diagrams,
  expected calibration error, temperature scaling.
* :mod:`utils.fuse.averaging` — weight averaging: one model whose *weights* are the average
  (model soups, linear paths and loss barriers); one forward pass, one basin only.
* :mod:`utils.fuse.moe` — mixtures of experts: a gate learns which expert answers which input.

Every public name is importable from ``utils.fuse`` too (``from utils.fuse import greedy_soup``).
Shapes: ``M`` members, ``B`` examples, ``C`` classes, ``E`` experts, ``D`` output features.
"""
from .averaging import *  # noqa: F401,F403
from .averaging import __all__ as _averaging
from .calibration import *  # noqa: F401,F403
from .calibration import __all__ as _calibration
from .ensembles import *  # noqa: F401,F403
from .ensembles import __all__ as _ensembles
from .moe import *  # noqa: F401,F403
from .moe import __all__ as _moe

__all__ = [*_ensembles, *_calibration, *_averaging, *_moe]
