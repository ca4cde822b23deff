"""Indexing and assembling Arrays: rows and items, ``stack``, and constant masks (``scale``).

Indexing an Array records a node, so code written for sequences of Values works on
Arrays; ``stack`` goes the other way, from scalar Values to one vector Array.
"""

from __future__ import annotations

from collections.abc import Sequence
from operator import add, mul
from typing import Any, cast

from tape.array import Array, Matrix, Rows, Vector, add_matrix, constant_array, install, record_array
from tape.core.node import Node
from tape.core.op import define
from tape.core.recording import is_zero
from tape.errors import TapeError
from tape.validate import HoldsTracked, float_matrix
from tape.value import Scalar, Value


def _row_vjp(node: Node, g: Any, grads: list[Any]) -> None:
    index, rows = cast("tuple[int, int]", node.saved)
    (at,) = node.parents
    held = grads[at]
    if held.__class__ is float:
        held = grads[at] = [[0.0] * len(g) for _ in range(rows)]
    held[index] = list(map(add, held[index], g))


def _item_vjp(node: Node, g: Any, grads: list[Any]) -> None:
    index, n = cast("tuple[int, int]", node.saved)
    (at,) = node.parents
    held = grads[at]
    if held.__class__ is float:
        held = grads[at] = [0.0] * n
    held[index] += g


def _index_jvp(value: Any, saved: Any, tangents: tuple[Any, ...]) -> Any:
    (index, _), (dX,) = saved, tangents
    return 0.0 if is_zero(dX) else dX[index]


def _index_emit(c: Any, node: Node, operands: object, v: str, s: str) -> list[str]:
    index, n = cast("tuple[int, int]", node.saved)
    return [f"{v} = {c.var(node.parents[0])}[{index}]", f"{s} = ({index}, {n})"]


ROW = define(
    "array_row", lambda data, i: data[i], vjp=_row_vjp, jvp=_index_jvp, emit=_index_emit, builtin=True
)
ITEM = define(
    "array_item", lambda data, i: data[i], vjp=_item_vjp, jvp=_index_jvp, emit=_index_emit, builtin=True
)


def _getitem(self: Array, index: int) -> Any:
    """Element ``index``: a Value of a vector, a row Array of a matrix (recorded)."""
    n = len(self.primal)
    if not isinstance(index, int) or isinstance(index, bool):
        raise TypeError(f"Array indices are ints, not {type(index).__name__}")
    if not -n <= index < n:
        raise IndexError(f"index {index} is out of range for an Array of length {n}")
    index %= n
    if self.tape is None:
        item = self.primal[index]
        return constant_array(item) if isinstance(item, tuple) else item
    if self.ndim == 2:
        return record_array(self.tape, ROW, (self.position,), cast(Matrix, self.primal)[index], (index, n))
    return self.tape.record(ITEM, (self.position,), cast(Vector, self.primal)[index], (index, n), Value)


install("__getitem__", _getitem)


def _stack_vjp(node: Node, g: Any, grads: list[Any]) -> None:
    for at, gi in zip(node.parents, g, strict=True):
        grads[at] += gi


def _stack_jvp(value: Vector, saved: Any, tangents: tuple[Any, ...]) -> Any:
    return tuple(float(t) for t in tangents)


def _stack_emit(c: Any, node: Node, operands: object, v: str, s: str) -> list[str]:
    return [f"{v} = ({', '.join(c.var(p) for p in node.parents)},)", f"{s} = ()"]


STACK = define(
    "array_stack",
    lambda values: tuple(values),
    vjp=_stack_vjp,
    jvp=_stack_jvp,
    emit=_stack_emit,
    builtin=True,
)


def stack(values: Sequence[Scalar]) -> Array | Vector:
    """A vector Array from scalar Values (and floats) of one tape; floats alone give a tuple."""
    recording = None
    for v in values:
        if isinstance(v, Value) and v.tape is not None:
            if recording is not None and v.tape is not recording:
                raise TapeError("stack: Values of different tapes")
            recording = v.tape
    if recording is None:
        return tuple(float(v) for v in values)
    parents = []
    data = []
    for v in values:
        if isinstance(v, Value) and v.tape is recording:
            parents.append(v.position)
            data.append(v.data)
        else:
            raise TapeError("stack: every element must be a Value of the same tape")
    return record_array(recording, STACK, tuple(parents), tuple(data), ())


# --- constant masks (dropout) -------------------------------------------------------------


def _scale_forward(data: Matrix, factors: Matrix) -> Matrix:
    return tuple(tuple(map(mul, row, f)) for row, f in zip(data, factors, strict=True))


def _scale_vjp(node: Node, g: Any, grads: list[Any]) -> None:
    (factors,) = cast("tuple[Matrix]", node.saved)
    (at,) = node.parents
    add_matrix(grads, at, [list(map(mul, gr, f)) for gr, f in zip(g, factors, strict=True)])


def _scale_jvp(value: Matrix, saved: Any, tangents: tuple[Any, ...]) -> Any:
    ((factors,), (dX,)) = saved, tangents
    return 0.0 if is_zero(dX) else _scale_forward(dX, factors)


def _scale_emit(c: Any, node: Node, operands: object, v: str, s: str) -> list[str]:
    x, factors = c.var(node.parents[0]), c.constant(cast("tuple[Matrix]", node.saved)[0])
    return [f"{v} = {c.ref(_scale_forward)}({x}, {factors})", f"{s} = ({factors},)"]


SCALE = define("array_scale", _scale_forward, vjp=_scale_vjp, jvp=_scale_jvp, emit=_scale_emit, builtin=True)


def scale(X: Array | Sequence[Sequence[Scalar]], factors: Sequence[Sequence[float]]) -> Array | Rows:
    """``X * factors`` elementwise with constant ``factors`` (e.g. a dropout mask)."""
    f = float_matrix(factors, "scale's factors")
    if not isinstance(X, Array):
        try:
            return _scale_forward(float_matrix(cast("Sequence[Sequence[float]]", X), "scale's input"), f)
        except HoldsTracked:
            return tuple(
                tuple(x * k for x, k in zip(row, fr, strict=True)) for row, fr in zip(X, f, strict=True)
            )
    data = cast(Matrix, X.primal)
    if len(f) != len(data) or (f and len(f[0]) != len(data[0])):
        raise ValueError(f"scale: factors of shape {(len(f), len(f[0]) if f else 0)} vs input {X.shape}")
    if X.tape is None:
        return constant_array(_scale_forward(data, f))
    return record_array(X.tape, SCALE, (X.position,), _scale_forward(data, f), (f,))
