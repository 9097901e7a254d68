"""Every learner of the course behind one protocol (issue 25), one module per family.

* :mod:`~utils.learners.base`        :class:`Learner`, the public base class (meta-train, adapt and
  evaluate on a task, state for checkpoints, variants); ``MetaHistory``; task sources
* :mod:`~utils.learners.inner_loop`  :class:`Adaptation` and :func:`run_inner_loop`, the one inner loop;
  ``adapt``, ``vmap_meta_loss``, ``loop_meta_loss``
* :mod:`~utils.learners.folded`      a meta-batch folded into channel groups (one grouped conv)
* :mod:`~utils.learners.maml`        MAML, first-order MAML, ANIL, Meta-SGD, Reptile
* :mod:`~utils.learners.metric`      ProtoNet, matching networks, ProtoMAML
* :mod:`~utils.learners.blackbox`    a Conditional Neural Process, support attention
* :mod:`~utils.learners.learned_optimizer` a coordinatewise learned update rule
* :mod:`~utils.learners.finetune`    the pre-train + fine-tune baseline (and its head's Adam steps, ``adam_linear_head``)
* :mod:`~utils.learners.evaluate`    mean ± 95 % CI over test tasks; :mod:`~utils.learners.ensemble`
  adapted ensembles (chapter 06)

``from utils.learners import MAML, ProtoNet, meta_evaluate`` gives the public names.
"""
from .base import Learner, MetaHistory, episode_source, sinusoid_source
from .inner_loop import Adaptation, adapt, loop_meta_loss, run_inner_loop, vmap_meta_loss
from .maml import ANIL, MAML, MetaSGD, Reptile
from .finetune import FineTuneBaseline
from .evaluate import evaluate_vectorized, meta_evaluate
from .metric import (MatchingNet, ProtoMAML, ProtoNet, cosine_attention, evaluate_batched, matching_log_probs,
                     protomaml_head, protonet_logits, prototypes)
from .blackbox import AttentionLearner, CNP, CNPLearner, SupportAttention
from .learned_optimizer import LearnedOptimizer
from .ensemble import adapted_outputs, evaluate_adapted_ensemble
from ..results import MetaResult

__all__ = ["Learner", "MetaHistory", "episode_source", "sinusoid_source",
           "Adaptation", "adapt", "run_inner_loop", "loop_meta_loss", "vmap_meta_loss",
           "MAML", "ANIL", "MetaSGD", "Reptile", "FineTuneBaseline",
           "meta_evaluate", "evaluate_vectorized", "evaluate_batched",
           "ProtoNet", "prototypes", "protonet_logits", "MatchingNet", "ProtoMAML", "cosine_attention",
           "matching_log_probs", "protomaml_head",
           "CNP", "SupportAttention", "CNPLearner", "AttentionLearner", "LearnedOptimizer",
           "adapted_outputs", "evaluate_adapted_ensemble", "MetaResult"]
