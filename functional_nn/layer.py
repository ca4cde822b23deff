"""A fully connected layer: ``n_out`` neurons reading the same ``n_in`` inputs.

Params are ``pmap({"weight": W, "bias": b})`` with ``W`` a persistent vector of
``n_out`` rows of ``n_in`` floats (``[out, in]``, like ``torch.nn.Linear.weight``)
and ``b`` a persistent vector of ``n_out`` floats. Output unit ``j`` is the neuron
``activation(dot(W[j], x) + b[j])``: one fused :func:`tape.dot` node per unit.

>>> from pyrsistent import pmap, pvector
>>> params = pmap({"weight": pvector([pvector([1.0, 2.0]), pvector([-1.0, 0.0])]),
...                "bias": pvector([0.5, 0.0])})
>>> apply(params, [1.0, 1.0])
(3.5, 0.0)
>>> apply(params, [1.0, 1.0, 1.0])
Traceback (most recent call last):
...
ValueError: layer: expected an input of width 2 (layer.weight is 2 x 2), got 3
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from operator import mul
from typing import TypeAlias, cast

from pyrsistent import PMap, PVector, pmap

from functional_nn.activations import LEAKY_RELU_SLOPE, ActivationName, get_activation, identity
from functional_nn.init import InitName, weight_matrix, zeros
from functional_nn.random import Key
from tape import Scalar, Value, dot, floats
from tape.tree import rows_of

__all__ = ["LayerParams", "Matrix", "Vector", "apply", "check", "init", "shape"]

Vector: TypeAlias = PVector[float]
"""A persistent vector of floats (a bias, or one row of a weight matrix)."""

Matrix: TypeAlias = PVector[PVector[float]]
"""A persistent vector of rows: ``[out, in]``."""

LayerParams: TypeAlias = PMap[str, Matrix | Vector]
"""``{"weight": Matrix, "bias": Vector}``."""


def init(key: Key, n_in: int, n_out: int, *, initializer: InitName = "he") -> LayerParams:
    """A layer with an ``n_out x n_in`` weight matrix drawn from ``key`` and zero biases."""
    return pmap({"weight": weight_matrix(key, n_in, n_out, initializer), "bias": zeros(n_out)})


def shape(params: LayerParams) -> tuple[int, int]:
    """``(n_out, n_in)`` read from the weight matrix (``n_in`` is 0 when it has no rows)."""
    weight = cast(Matrix, params["weight"])
    return len(weight), (len(weight[0]) if weight else 0)


_FLOAT_ACTIVATIONS: dict[str, Callable[[list[float]], tuple[float, ...]]] = {
    "relu": lambda v: tuple([0.0 if s <= 0.0 else s for s in v]),
    "tanh": lambda v: tuple(map(math.tanh, v)),
    "sigmoid": lambda v: tuple(map(floats.sigmoid, v)),
    "leaky_relu": lambda v: tuple([s if s > 0.0 else LEAKY_RELU_SLOPE * s for s in v]),
    "identity": tuple,
}
"""Each activation on a list of floats (the inference path), as the scalar functions compute it."""


def apply(
    params: LayerParams, x: Sequence[Scalar], *, activation: ActivationName = "relu", name: str = "layer"
) -> tuple[Scalar, ...]:
    """The layer's outputs: floats for float inputs and params, Values while a tape records.

    ``name`` (e.g. ``"layers.0"``) is used in error messages. Raises ValueError when
    ``len(x)`` is not the weight rows' width, or the params are inconsistent.
    """
    weight = cast(Matrix, params["weight"])
    bias = cast(Vector, params["bias"])
    if len(bias) != len(weight):
        raise ValueError(
            f"{name}: {name}.weight has {len(weight)} rows but {name}.bias has {len(bias)} entries"
        )
    if weight and len(x) != len(weight[0]):
        raise ValueError(
            f"{name}: expected an input of width {len(weight[0])} "
            f"({name}.weight is {len(weight)} x {len(weight[0])}), got {len(x)}"
        )
    try:
        if weight and x and weight[0] and weight[0][0].__class__ is float and x[0].__class__ is float:
            # Float params and inputs (inference): the plain kernel on tuples (read item by
            # item, a pvector costs more). Should a Value hide further in, the sum of products
            # is still recorded correctly, unfused.
            rows = rows_of(weight)
            if len(set(map(len, rows))) != 1:
                raise ValueError("ragged weight rows")  # reported precisely below
            on_floats = _FLOAT_ACTIVATIONS.get(activation)
            if on_floats is not None:
                xs = x if x.__class__ is tuple or x.__class__ is list else tuple(x)  # read once per row
                return on_floats([sum(map(mul, row, xs)) + b for row, b in zip(rows, bias, strict=True)])
        f = get_activation(activation)
        if f is identity:
            return tuple([dot(row, x) + b for row, b in zip(weight, bias, strict=True)])
        return tuple([f(dot(row, x) + b) for row, b in zip(weight, bias, strict=True)])
    except ValueError:
        for j, row in enumerate(weight):
            if len(row) != len(x):
                raise ValueError(
                    f"{name}: row {j} of {name}.weight has {len(row)} entries but row 0 has {len(x)}; "
                    "every row needs one weight per input"
                ) from None
        raise


def check(params: object, n_in: int, n_out: int, *, name: str = "layer") -> LayerParams:
    """``params`` if it is a layer of ``n_out`` units reading ``n_in`` inputs; ValueError otherwise.

    Checks the keys, the container types, every row's width and that every entry is
    a number, naming the first offending parameter.
    """
    if not isinstance(params, PMap):
        raise ValueError(f"{name} must be a pyrsistent map with 'weight' and 'bias', not {_kind(params)}")
    if set(params) != {"weight", "bias"}:
        raise ValueError(f"{name} must have exactly the keys 'bias' and 'weight', not {sorted(params)!r}")
    weight: object = params["weight"]
    bias: object = params["bias"]
    _check_vector(weight, n_out, f"{name}.weight", "rows", "one per output unit")
    for j, row in enumerate(cast("PVector[object]", weight)):
        _check_vector(row, n_in, f"{name}.weight.{j}", "entries", "one per input")
        _check_numbers(cast("PVector[object]", row), f"{name}.weight.{j}")
    _check_vector(bias, n_out, f"{name}.bias", "entries", "one per output unit")
    _check_numbers(cast("PVector[object]", bias), f"{name}.bias")
    return cast(LayerParams, params)


def _kind(x: object) -> str:
    return type(x).__name__


def _check_vector(x: object, length: int, where: str, noun: str, why: str) -> None:
    if not isinstance(x, PVector):
        raise ValueError(f"{where} must be a pyrsistent vector, not {_kind(x)}")
    if len(x) != length:
        raise ValueError(f"{where} has {len(x)} {noun} but {length} are expected ({why})")


def _check_numbers(xs: PVector[object], where: str) -> None:
    for i, x in enumerate(xs):
        if not isinstance(x, (float, Value)):
            raise ValueError(f"{where}.{i} must be a float, not {_kind(x)} {x!r}")
