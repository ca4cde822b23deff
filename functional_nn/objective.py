"""What training minimises: the loss-function protocol and the supervised loss of an MLP.

A loss function maps ``(params, batch, key)`` to ``(mean loss, metrics)``.
:class:`SupervisedLoss` is the one :func:`functional_nn.train.fit` uses by default; it
is plain data (a frozen :class:`~functional_nn.mlp.MLP` spec and a task name), so it
pickles by value and can be sent to worker processes, which rebuild the computation
from it (see :mod:`functional_nn.sharding`).

>>> from functional_nn import MLP, random
>>> from functional_nn.dataloader import Batch
>>> from pyrsistent import pvector
>>> model = MLP(2, [3], activation="tanh")
>>> loss_fn = supervised_loss(model, "classification")
>>> loss, metrics = loss_fn(model.init(random.key(0)), Batch((pvector([0.5, 1.0]),), (2,)), None)
>>> sorted(metrics)
['accuracy']
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, TypeAlias, cast

from functional_nn import random
from functional_nn.dataloader import Batch
from functional_nn.functional import argmax
from functional_nn.loss import cross_entropy_with_logits_batch, mse_loss_batch
from functional_nn.mlp import MLP, Params
from tape import Array, Scalar

__all__ = ["TASKS", "LossFn", "Metrics", "SupervisedLoss", "supervised_loss"]

Metrics: TypeAlias = "dict[str, float]"
"""Named per-batch metrics, each a mean over the batch's examples (plain floats)."""

TASKS = ("classification", "regression")


class LossFn(Protocol):
    """``loss_fn(params, batch, key) -> (mean loss, metrics)``: metrics are plain floats."""

    def __call__(self, params: Params, batch: Batch, key: random.Key | None, /) -> tuple[Scalar, Metrics]: ...


@dataclass(frozen=True)
class SupervisedLoss:
    """The mean loss of ``model`` over a batch for ``task``, as a picklable value.

    Classification: cross-entropy on the logits, reporting accuracy too; regression:
    mean squared error. The batch goes through :meth:`MLP.apply_batch`, a handful of
    tape nodes per batch; dropout applies when a key is given.
    """

    model: MLP
    task: str

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"task must be 'classification' or 'regression', not {self.task!r}")

    def __call__(self, params: Params, batch: Batch, key: random.Key | None, /) -> tuple[Scalar, Metrics]:
        """``(mean loss, metrics)`` of ``batch``; ``metrics`` has ``accuracy`` for classification."""
        outputs = self.model.apply_batch(params, batch.inputs, key=key, train=key is not None)
        if self.task == "classification":
            labels = batch.labels()
            loss = cross_entropy_with_logits_batch(outputs, labels)
            rows = cast("Sequence[Sequence[Scalar]]", outputs.data if isinstance(outputs, Array) else outputs)
            correct = sum(argmax(row) == label for row, label in zip(rows, labels))
            return loss, {"accuracy": correct / batch.size}
        return mse_loss_batch(outputs, batch.values()), {}


def supervised_loss(model: MLP, task: str) -> LossFn:
    """The mean loss over a batch for ``task``: ``"classification"`` or ``"regression"``.

    A :class:`SupervisedLoss`: cross-entropy on the logits with accuracy, or mean
    squared error, through the model's layer-level path.
    """
    return SupervisedLoss(model, task)
