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

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeAlias, cast

from functional_nn import random
from functional_nn.dataloader import Batch
from functional_nn.functional import argmax
from functional_nn.loss import cross_entropy_with_logits_batch, mse_loss_batch
from functional_nn.mlp import MLP, BatchOutput, Params
from tape import Array, Scalar, jit, value_and_grad

__all__ = ["TASKS", "GradientFn", "LossFn", "Metrics", "SupervisedLoss", "supervised_loss"]

Metrics: TypeAlias = "dict[str, float]"
"""Named per-batch metrics, each a mean over the batch's examples (plain floats)."""

TASKS = ("classification", "regression")


class LossFn(Protocol):
    """``loss_fn(params, batch, key) -> (mean loss, metrics)``: metrics are plain floats."""

    def __call__(self, params: Params, batch: Batch, key: random.Key | None, /) -> tuple[Scalar, Metrics]: ...


GradientFn: TypeAlias = "Callable[[Params, Batch, random.Key | None], tuple[tuple[float, Metrics], Params]]"
"""``(params, batch, key) -> ((mean loss, metrics), gradient)``: one step's differentiation."""


@dataclass(frozen=True)
class SupervisedLoss:
    """The mean loss of ``model`` over a batch for ``task``, as a picklable value.

    Classification: cross-entropy on the logits, reporting accuracy too; regression:
    mean squared error. The batch goes through :meth:`MLP.apply_batch`, a handful of
    tape nodes per batch; dropout applies when a key is given.

    With ``compile`` (the default), :meth:`gradient_fn` compiles the differentiation
    with :func:`tape.jit`: the loss of :meth:`objective` is traced once per batch size
    and replayed as generated Python for every later batch, bit for bit the numbers
    the tape gives. What a trace cannot follow stays outside it: the dropout masks are
    drawn from the key before the call and enter as data, and the accuracy is counted
    from the returned logits after it.
    """

    model: MLP
    task: str
    compile: bool = True

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"task must be 'classification' or 'regression', not {self.task!r}")
        if not isinstance(self.compile, bool):
            raise TypeError(f"compile must be a bool, not {self.compile!r}")

    def objective(
        self, params: Params, inputs: object, targets: object, masks: object
    ) -> tuple[Scalar, BatchOutput]:
        """``(mean loss, outputs)`` of a batch given as data: what is differentiated (and traced)."""
        outputs = self.model.apply_batch(
            params,
            cast("Sequence[Sequence[float]]", inputs),
            masks=cast("Sequence[Sequence[Sequence[float]]] | None", masks),
        )
        if self.task == "classification":
            return cross_entropy_with_logits_batch(outputs, cast("Sequence[int]", targets)), outputs
        return mse_loss_batch(outputs, cast("Sequence[float]", targets)), outputs

    def _data(self, batch: Batch, key: random.Key | None) -> tuple[object, object, object]:
        masks = self.model.dropout_masks(key, batch.size, train=key is not None)
        targets = batch.labels() if self.task == "classification" else batch.values()
        return batch.inputs, targets, masks

    def metrics(self, outputs: object, batch: Batch) -> Metrics:
        """The batch's metrics from its outputs (rows of floats): ``accuracy`` for classification."""
        if self.task != "classification":
            return {}
        rows = cast("Sequence[Sequence[Scalar]]", outputs.data if isinstance(outputs, Array) else outputs)
        labels = batch.labels()
        correct = sum(argmax(row) == label for row, label in zip(rows, labels, strict=True))
        return {"accuracy": correct / batch.size}

    def __call__(self, params: Params, batch: Batch, key: random.Key | None, /) -> tuple[Scalar, Metrics]:
        """``(mean loss, metrics)`` of ``batch``; ``metrics`` has ``accuracy`` for classification."""
        loss, outputs = self.objective(params, *self._data(batch, key))
        return loss, self.metrics(outputs, batch)

    def gradient_fn(self) -> GradientFn:
        """``(params, batch, key) -> ((loss, metrics), grads)``, compiled when ``compile`` is set."""
        if not self.compile:
            return cast(GradientFn, value_and_grad(self, has_aux=True, arrays=True))
        compiled = jit(value_and_grad(self.objective, has_aux=True, arrays=True), arrays=True)

        def gradient(
            params: Params, batch: Batch, key: random.Key | None
        ) -> tuple[tuple[float, Metrics], Params]:
            (loss, outputs), grads = compiled(params, *self._data(batch, key))
            return (float(loss), self.metrics(outputs, batch)), grads

        return gradient


def supervised_loss(model: MLP, task: str, *, compile: bool = True) -> SupervisedLoss:
    """The mean loss over a batch for ``task``: ``"classification"`` or ``"regression"``.

    A :class:`SupervisedLoss`: cross-entropy on the logits with accuracy, or mean
    squared error, through the model's layer-level path; ``compile`` (default on)
    compiles its gradient with :func:`tape.jit`.
    """
    return SupervisedLoss(model, task, compile)
