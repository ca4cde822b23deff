"""What training minimises: the model and loss-function protocols, and the supervised loss.

A model is an init/apply pair (:data:`Model`, the layer protocol): ``init(key)`` gives
its params, a pyrsistent map, and ``apply(params, x, *, key=None, train=False)`` maps
a batch whose first axis is the examples to a batch of outputs. The layers of
:mod:`functional_nn.layers`, their ``serial`` compositions and a user's own frozen
dataclasses are models; an :class:`~functional_nn.mlp.MLP` (whose ``apply`` takes one
example) is adapted by :class:`~functional_nn.layers.MLPLayer`, through ``apply_batch``.

A loss function maps ``(params, batch, key)`` to ``(mean loss, metrics)``.
:class:`SupervisedLoss` is the one :func:`functional_nn.train.fit` uses by default; it
is plain data (a frozen model spec and a task name), so it pickles by value and can be
sent to worker processes, which rebuild the computation from it (see
:mod:`functional_nn.sharding`).

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

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeAlias, cast

from functional_nn import random
from functional_nn.dataloader import Batch
from functional_nn.functional import argmax
from functional_nn.layers import ArrayLike, Dropout, Layer, LayerParams, as_layer
from functional_nn.loss import cross_entropy_with_logits_batch, mse_loss_batch
from functional_nn.mlp import MLP
from tape import Array, Scalar, jit, value_and_grad

__all__ = [
    "TASKS",
    "GradientFn",
    "LossFn",
    "Metrics",
    "Model",
    "Params",
    "SupervisedLoss",
    "as_model",
    "draws_randomness",
    "supervised_loss",
]

Params: TypeAlias = LayerParams
"""A model's params: a pyrsistent map from names to arrays of floats or to nested such maps."""

Metrics: TypeAlias = "dict[str, float]"
"""Named per-batch metrics, each a mean over the batch's examples (plain floats)."""

TASKS = ("classification", "regression")


Model: TypeAlias = Layer
"""What training takes: a batched init/apply pair, the protocol of :mod:`functional_nn.layers`.

``init(key)`` gives fresh params (a pyrsistent map; the same key, the same params);
``apply(params, x, *, key=None, train=False)`` maps a batch ``x`` (first axis: the
examples; a classifier of flat rows takes rows of floats) to the batch's outputs (for
:class:`SupervisedLoss`, one row of logits or of regression outputs per example). In
training ``train`` is true and ``key`` a fresh key per step. Layers, their ``serial``
compositions and a user's own frozen dataclasses are models; an MLP is adapted by
:class:`~functional_nn.layers.MLPLayer` (:func:`as_model`). Keep models plain data
(frozen dataclasses of numbers, strings and other models, no closures): they then
pickle by value to worker processes and compare equal when equal.
"""


def as_model(model: Model | MLP) -> Model:
    """``model`` as a batched model: an MLP through :class:`~functional_nn.layers.MLPLayer`.

    Raises TypeError for anything without ``init`` and ``apply``.
    """
    if not isinstance(model, (MLP, Layer)):
        raise TypeError(
            f"a model needs init(key) and apply(params, x, *, key=None, train=False); "
            f"{type(model).__name__} has not both"
        )
    return as_layer(model)


def draws_randomness(model: object) -> bool:
    """Whether ``model`` uses its key in training (its dropout, say).

    An MLP or a :class:`~functional_nn.layers.Dropout` does when its rate is positive.
    Otherwise a model's own ``stochastic`` attribute decides when it has a bool one (a
    model of your own that draws from its key says ``stochastic = True``); a dataclass
    without one draws when any of its fields (layers in it, tuples of them) does;
    anything else does not.
    """
    if isinstance(model, MLP):
        return model.dropout > 0.0
    if isinstance(model, Dropout):
        return model.p > 0.0
    declared = getattr(model, "stochastic", None)
    if isinstance(declared, bool):
        return declared
    if isinstance(model, (tuple, list)):
        return any(draws_randomness(part) for part in model)
    if dataclasses.is_dataclass(model) and not isinstance(model, type):
        return any(draws_randomness(getattr(model, f.name)) for f in dataclasses.fields(model))
    return False


class LossFn(Protocol):
    """``loss_fn(params, batch, key) -> (mean loss, metrics)``: metrics are plain floats."""

    def __call__(self, params: Params, batch: Batch, key: random.Key | None, /) -> tuple[Scalar, Metrics]: ...


GradientFn: TypeAlias = "Callable[[Params, Batch, random.Key | None], tuple[tuple[float, Metrics], Params]]"
"""``(params, batch, key) -> ((mean loss, metrics), gradient)``: one step's differentiation."""


@dataclass(frozen=True)
class SupervisedLoss:
    """The mean loss of ``model`` over a batch for ``task``, as a picklable value.

    Classification: cross-entropy on the logits, reporting accuracy too; regression:
    mean squared error. ``model`` is a batched :class:`Model` or an MLP (applied
    through :meth:`MLP.apply_batch`, a handful of tape nodes per batch); a key given
    to the loss means training (``train=True``, dropout applies).

    With ``compile`` (the default), :meth:`gradient_fn` compiles the differentiation
    with :func:`tape.jit`: the loss of :meth:`objective` is traced once per batch size
    and replayed as generated Python for every later batch, bit for bit the numbers
    the tape gives. What a trace cannot follow stays outside it: an MLP's dropout
    masks are drawn from the key before the call and enter as data, and the accuracy
    is counted from the returned logits after it. A model other than an MLP that
    draws from its key in training (:func:`draws_randomness`) cannot be traced (its
    random draws would be frozen), so its gradient is interpreted: the same numbers.
    """

    model: Model | MLP
    task: str
    compile: bool = True

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"task must be 'classification' or 'regression', not {self.task!r}")
        if not isinstance(self.compile, bool):
            raise TypeError(f"compile must be a bool, not {self.compile!r}")
        as_model(self.model)  # a TypeError for what is not a model

    def objective(
        self, params: Params, inputs: object, targets: object, noise: object, *, train: bool = True
    ) -> tuple[Scalar, object]:
        """``(mean loss, outputs)`` of a batch given as data: what is differentiated (and traced).

        ``noise`` is an MLP's dropout masks (:meth:`MLP.dropout_masks`), or the key
        another model's ``apply`` is given; ``train`` is passed to that ``apply``.
        """
        model = self.model
        if isinstance(model, MLP):
            outputs: object = model.apply_batch(
                params,
                cast("Sequence[Sequence[float]]", inputs),
                masks=cast("Sequence[Sequence[Sequence[float]]] | None", noise),
            )
        else:
            key = cast("random.Key | None", noise)
            outputs = model.apply(params, cast("ArrayLike", inputs), key=key, train=train)
        if self.task == "classification":
            loss = cross_entropy_with_logits_batch(
                cast("Sequence[Sequence[Scalar]] | Array", outputs), cast("Sequence[int]", targets)
            )
        else:
            loss = mse_loss_batch(
                cast("Sequence[Sequence[Scalar]] | Array", outputs), cast("Sequence[float]", targets)
            )
        return loss, outputs

    def _data(self, batch: Batch, key: random.Key | None) -> tuple[object, object, object]:
        """The objective's arguments after ``params`` for ``batch``, trained with ``key`` if given."""
        targets = batch.labels() if self.task == "classification" else batch.values()
        if isinstance(self.model, MLP):
            noise: object = self.model.dropout_masks(key, batch.size, train=key is not None)
        else:
            noise = key if draws_randomness(self.model) else None
        return batch.inputs, targets, noise

    def _mode(self, key: random.Key | None) -> dict[str, bool]:
        """The objective's ``train`` keyword for a compiled call (an MLP's masks say it all)."""
        return {} if isinstance(self.model, MLP) else {"train": key is not None}

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
        loss, outputs = self.objective(params, *self._data(batch, key), train=key is not None)
        return loss, self.metrics(outputs, batch)

    def gradient_fn(self) -> GradientFn:
        """``(params, batch, key) -> ((loss, metrics), grads)``, compiled when ``compile`` is set
        (and the model's randomness, if any, can be drawn outside the trace)."""
        traceable = isinstance(self.model, MLP) or not draws_randomness(self.model)
        if not self.compile or not traceable:
            return cast(GradientFn, value_and_grad(self, has_aux=True, arrays=True))
        compiled = jit(value_and_grad(self.objective, has_aux=True, arrays=True), arrays=True)

        def gradient(
            params: Params, batch: Batch, key: random.Key | None
        ) -> tuple[tuple[float, Metrics], Params]:
            (loss, outputs), grads = compiled(params, *self._data(batch, key), **self._mode(key))
            return (float(loss), self.metrics(outputs, batch)), grads

        return gradient


def supervised_loss(model: Model | MLP, task: str, *, compile: bool = True) -> SupervisedLoss:
    """The mean loss over a batch for ``task``: ``"classification"`` or ``"regression"``.

    A :class:`SupervisedLoss` of any batched :class:`Model` (or an MLP): cross-entropy
    on the logits with accuracy, or mean squared error; ``compile`` (default on)
    compiles its gradient with :func:`tape.jit`.
    """
    return SupervisedLoss(model, task, compile)
