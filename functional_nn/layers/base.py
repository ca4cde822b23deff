"""The layer protocol and what every layer shares: argument checks and PyTorch-style initialisation.

A layer is a frozen, picklable spec (no closures) with two pure methods:

- ``init(key) -> PMap`` of parameters, named and shaped exactly as the corresponding
  PyTorch module's ``state_dict`` (a dotted name such as ``out_proj.weight`` is a nested
  map, ``{"out_proj": {"weight": ..., "bias": ...}}``, which is how
  :func:`functional_nn.serialization.state_dict` and the safetensors exporter name it);
- ``apply(params, x, *, key=None, train=False)`` over a batch whose first axis is the
  batch. Randomness (dropout) comes from ``key`` when ``train`` is true; a layer that
  draws from it says so with a ``stochastic`` attribute (``Dropout(p)`` for ``p > 0``).

A parameter is nested persistent vectors of floats, one level per axis (as an MLP's
weight matrix is), so ``tape.grad(..., arrays=True)`` watches each one as one Array.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Protocol, TypeAlias, cast, runtime_checkable

from pyrsistent import PMap, PVector, pmap, pvector

from functional_nn.random import Key, uniform
from tape import Array
from tape.array import Data, asarray, nest, shape_of

__all__ = [
    "ArrayLike",
    "as_operand",
    "like_input",
    "Layer",
    "LayerParams",
    "Output",
    "Parameterless",
    "check_nonnegative_int",
    "check_positive_int",
    "check_real",
    "constant_param",
    "get_param",
    "pair",
    "param",
    "uniform_param",
]

LayerParams: TypeAlias = PMap[str, Any]
"""A layer's parameters: names to nested persistent vectors of floats (or to nested maps)."""

ArrayLike: TypeAlias = "Array | Sequence[Any]"
"""A layer's input: an Array (tracked or not) or nested sequences of floats."""

Output: TypeAlias = "Array | Data"
"""A layer's output: an Array for an Array operand, else plain nested tuples of floats."""


@runtime_checkable
class Layer(Protocol):
    """An init/apply pair: ``init(key) -> params``, ``apply(params, x, *, key, train) -> y``."""

    def init(self, key: Key) -> LayerParams:
        """Fresh parameters drawn from ``key`` (the same key gives the same parameters)."""
        ...

    def apply(self, params: LayerParams, x: ArrayLike, *, key: Key | None = None, train: bool = False) -> Any:
        """The layer's output for the batch ``x`` (first axis: the batch)."""
        ...


class Parameterless:
    """A layer without parameters: ``init`` gives an empty map."""

    def init(self, key: Key) -> LayerParams:
        """No parameters: an empty map."""
        return pmap()


# --- argument checks ------------------------------------------------------------------------


def check_positive_int(value: object, what: str) -> int:
    """``value`` if it is an int ``>= 1``; a TypeError or ValueError naming ``what`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an int, not {type(value).__name__} {value!r}")
    if value < 1:
        raise ValueError(f"{what} must be >= 1, got {value}")
    return value


def check_nonnegative_int(value: object, what: str) -> int:
    """``value`` if it is an int ``>= 0``; a TypeError or ValueError naming ``what`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an int, not {type(value).__name__} {value!r}")
    if value < 0:
        raise ValueError(f"{what} must be >= 0, got {value}")
    return value


def check_real(value: object, what: str, *, positive: bool = False) -> float:
    """``value`` as a finite float (``> 0`` with ``positive``); a TypeError or ValueError otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{what} must be a real number, not {type(value).__name__} {value!r}")
    number = float(value)
    if not math.isfinite(number) or (positive and number <= 0.0):
        raise ValueError(f"{what} must be {'positive and ' if positive else ''}finite, got {value!r}")
    return number


def pair(value: object, what: str, *, least: int) -> tuple[int, int]:
    """An int or a pair of ints (each ``>= least``) as a pair, as PyTorch's 2-d layers take sizes."""
    items = (value, value) if isinstance(value, int) and not isinstance(value, bool) else value
    if not isinstance(items, tuple) or len(items) != 2:
        raise TypeError(f"{what} must be an int or a pair of ints, not {value!r}")
    check = check_positive_int if least == 1 else check_nonnegative_int
    first, second = (check(v, what) for v in items)
    return first, second


# --- operands -------------------------------------------------------------------------------


def as_operand(x: ArrayLike) -> Array:
    """``x`` as an Array (an untracked one for nested floats), so operators and slicing apply."""
    return x if isinstance(x, Array) else asarray(x)


def like_input(result: object, x: object) -> Output:
    """An op's ``result`` as a layer gives it: an Array for an Array input ``x`` or while a tape
    records, else plain nested tuples (inference on plain floats)."""
    if isinstance(result, Array):
        return result if isinstance(x, Array) or result.tape is not None else result.data
    return cast(Data, result)


# --- parameters -----------------------------------------------------------------------------


def param(flat: Sequence[float], shape: tuple[int, ...]) -> PVector[Any]:
    """Row-major ``flat`` as nested persistent vectors of ``shape`` (a parameter)."""
    if len(shape) == 1:
        return pvector(flat)
    return _frozen(nest(flat, shape))


def _frozen(data: Data) -> PVector[Any]:
    if data and isinstance(data[0], tuple):
        return pvector([_frozen(row) for row in data])
    return pvector(data)


def uniform_param(key: Key, shape: tuple[int, ...], bound: float) -> PVector[Any]:
    """A parameter of ``shape`` uniform on ``[-bound, bound)``: PyTorch's default for most layers.

    ``bound = 1 / sqrt(fan_in)`` is ``kaiming_uniform_(w, a=sqrt(5))`` for a weight and
    PyTorch's bias initialisation alike.
    """
    return param(uniform(key, math.prod(shape), -bound, bound), shape)


def constant_param(value: float, shape: tuple[int, ...]) -> PVector[Any]:
    """A parameter of ``shape`` filled with ``value`` (a norm's ones, a bias's zeros)."""
    return param([value] * math.prod(shape), shape)


def get_param(params: LayerParams, name: str, layer: str, shape: tuple[int, ...] | None = None) -> Any:
    """``params[name]``, or a ValueError naming the layer and the names ``params`` does hold.

    With ``shape`` (what the layer's spec makes), a parameter of another shape is a ValueError
    too: the params of a layer of another size would otherwise run, and give another shape.
    """
    if not isinstance(params, PMap):
        raise TypeError(f"{layer}: params must be a pyrsistent map, not {type(params).__name__}")
    try:
        value = params[name]
    except KeyError:
        raise ValueError(f"{layer}: params have no {name!r} (they hold {sorted(params)!r})") from None
    if shape is not None:
        held = _param_shape(value)
        if held != shape:
            raise ValueError(
                f"{layer}: {name!r} has shape {held}, but this layer's spec gives {shape} "
                "(params of another layer?)"
            )
    return value


def _param_shape(value: object) -> tuple[int, ...]:
    """The shape of a parameter: an Array, or nested sequences (read down their first items)
    that may end in Arrays, as array ops take them (a sequence of Array rows is a matrix)."""
    outer = shape_of(value)  # stops at an item that is not a sequence: a float, or an Array
    item = value
    for extent in outer:
        if not extent:
            return outer
        item = cast("Sequence[object]", item)[0]
    return outer + item.shape if isinstance(item, Array) else outer
