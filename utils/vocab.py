"""The course's vocabulary: everything is a mapping (chapter 01, "Everything is a mapping").

The types name what each part of the engine maps from and to, and the engine's signatures use
them, so a learner reading ``def distill(teacher: Model, ...) -> Model`` knows where the function
sits in the course's ladder:

======================  =========================================  ==================================
name                    mapping                                    in the engine
======================  =========================================  ==================================
:data:`Model`           inputs ``(B, ...)`` -> outputs ``(B, C)``  any ``nn.Module`` or function
:data:`Dataset`         ``(inputs, labels)``                       a support set, a training set
:data:`Learner`         a dataset -> a model                       ``fit``, one adaptation
:data:`TaskSource`      a count ``T`` -> a batch of ``T`` tasks    :func:`utils.learners.base.episode_source`,
                                                                   :func:`utils.learners.base.sinusoid_source`
:data:`MetaLearner`     a task source -> a learner                 MAML, ProtoNet, ... (chapters 02-03)
:data:`ModelMap`        a model -> a model                         distillation, compression
                                                                   (chapters 04-05)
:data:`ModelsMap`       several models -> one model                fusion (chapter 06)
:data:`Network`         a :data:`Model` that carries parameters    what the model-to-model maps read
                        (an ``nn.Module``)                         and return
======================  =========================================  ==================================

The model-to-model maps of chapters 04-06 take settings besides the model; fixing them gives
the map itself, e.g. ``functools.partial(utils.compress.quantize_model_int8, per_channel=True)``
is a :data:`ModelMap` and ``utils.fuse.average_models`` is a :data:`ModelsMap`. Their
signatures say :data:`Network` where a model must have weights to read or change.

A batch of tasks (what a :data:`TaskSource` returns) is any object with the four stacked tensors
``support_x (T, K, ...)``, ``support_y (T, K, ...)``, ``query_x (T, Q, ...)``, ``query_y (T, Q, ...)``
(:class:`utils.tasks.TaskBatch`, :class:`utils.episodes.EpisodeBatch`); :func:`split_batch`
is the one place that unpacks it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, NamedTuple, Sequence

import torch

Tensor = torch.Tensor
#: inputs -> outputs (class scores, or regression predictions)
Model = Callable[[Tensor], Tensor]
#: ``(inputs, labels)``, e.g. a support set
Dataset = tuple[Tensor, Tensor]
#: a dataset -> a model (ordinary learning; one adaptation of a meta-learner)
Learner = Callable[[Dataset], Model]
#: ``source(T)`` -> a batch of ``T`` tasks with support and query tensors
TaskSource = Callable[[int], Any]
#: a family of tasks -> a learner (meta-learning)
MetaLearner = Callable[[TaskSource], Learner]
#: a model -> a model (distillation, compression)
ModelMap = Callable[[Model], Model]
#: several models -> one model (fusion)
ModelsMap = Callable[[Sequence[Model]], Model]
#: a Model with parameters (an ``nn.Module``): what distillation, compression and fusion read and return
Network = torch.nn.Module

__all__ = ["Tensor", "Model", "Dataset", "Learner", "TaskSource", "MetaLearner", "ModelMap",
           "ModelsMap", "Network", "SupportQuery", "TaskTensors", "split_batch"]


class SupportQuery(NamedTuple):
    """The four tensors of a batch of tasks: ``T`` tasks, ``K`` support and ``Q`` query examples."""
    support_x: Tensor
    support_y: Tensor
    query_x: Tensor
    query_y: Tensor


@dataclass
class TaskTensors:
    """Base of the course's task containers (:class:`utils.tasks.TaskBatch`,
    :class:`utils.episodes.Episode`): the four support/query tensors first, then whatever a
    subclass adds (its own fields follow, in order)."""
    support_x: Tensor
    support_y: Tensor
    query_x: Tensor
    query_y: Tensor

    def to(self, device):
        """The same container with every tensor moved to ``device``."""
        return type(self)(*(getattr(self, f).to(device) for f in self.__dataclass_fields__))


def split_batch(batch, device=None) -> SupportQuery:
    """``(support_x, support_y, query_x, query_y)`` of a batch of tasks, moved to ``device`` (if given).

    ``batch`` is what a :data:`TaskSource` returns. Raises a clear error for anything else.
    """
    try:
        parts = [getattr(batch, k) for k in SupportQuery._fields]
    except AttributeError:
        from .errors import course_error
        raise course_error("batch", "a batch of tasks with support_x, support_y, query_x, query_y",
                           type(batch).__name__, "pass what a task source returns "
                           "(utils.learners.base.episode_source(sampler)(T) or utils.learners.base.sinusoid_source(...)(T))") from None
    if device is not None:
        parts = [p.to(device) for p in parts]
    return SupportQuery(*parts)
