"""``linear``: ``X @ W.T + b`` for a batch ``X`` as one node (a layer of an MLP).

The backward rule is written as tight row loops (``sum(map(mul, ...))`` runs in
C); inputs at most four wide (e.g. 2-D points) are multiplied a column at a time
over the whole batch instead of a short dot product per example and unit.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import repeat
from operator import add, mul
from typing import Any, cast

from tape.array import Array, Matrix, Rows, Vector, add_matrix, add_vector, as_data, record_array, tape_of
from tape.core.node import Node
from tape.core.op import define
from tape.core.recording import is_zero
from tape.ops.reductions import dot
from tape.validate import HoldsTracked
from tape.value import Scalar

_NARROW = 4
"""Inputs this narrow are multiplied a column at a time over the batch."""


def _narrow_forward(W: Matrix, b: Vector | None, X: Matrix) -> Matrix:
    columns = list(zip(*X, strict=True))
    outputs = []
    for j, w in enumerate(W):
        total = list(map(mul, columns[0], repeat(w[0])))
        for column, weight in zip(columns[1:], w[1:], strict=True):
            total = list(map(add, total, map(mul, column, repeat(weight))))
        if b is not None:
            total = list(map(add, total, repeat(b[j])))
        outputs.append(total)
    return tuple(zip(*outputs, strict=True))


def linear_kernel(W: Matrix, b: Vector | None, X: Matrix) -> Matrix:
    """``X @ W.T + b`` on floats: one row per example, one column per row of ``W``."""
    if len(W[0]) <= _NARROW and len(X) > 1:
        return _narrow_forward(W, b, X)
    if b is None:
        return tuple(tuple([sum(map(mul, w, x)) for w in W]) for x in X)
    return tuple(tuple([sum(map(mul, w, x)) + bias for w, bias in zip(W, b, strict=True)]) for x in X)


def _linear_vjp(node: Node, g: Any, grads: list[Any]) -> None:
    W, X, slots = cast("tuple[Matrix, Matrix, tuple[int | None, int | None, int | None]]", node.saved)
    w_at, b_at, x_at = slots
    if x_at is not None:
        if len(W) == 1:  # one output unit: each example's input gradient is a scaled weight row
            (w,) = W
            add_matrix(grads, x_at, [[gn * wi for wi in w] for (gn,) in g])
        else:
            columns = list(zip(*W, strict=True))
            add_matrix(grads, x_at, [[sum(map(mul, row, col)) for col in columns] for row in g])
    if w_at is not None or b_at is not None:
        g_columns = list(zip(*g, strict=True))
        if w_at is not None:
            x_columns = list(zip(*X, strict=True))
            add_matrix(grads, w_at, [[sum(map(mul, gj, xi)) for xi in x_columns] for gj in g_columns])
        if b_at is not None:
            add_vector(grads, b_at, [sum(gj) for gj in g_columns])


def _linear_jvp(value: Matrix, saved: Any, tangents: tuple[Any, ...]) -> Any:
    W, X, slots = saved
    given = iter(tangents)
    dW: Any
    db: Any
    dX: Any
    dW, db, dX = (next(given) if at is not None else 0.0 for at in slots)
    out = []
    for n, x in enumerate(X):
        row = [sum(map(mul, dw, x)) for dw in dW] if not is_zero(dW) else [0.0] * len(W)
        if not is_zero(dX):
            row = [r + sum(map(mul, w, dX[n])) for r, w in zip(row, W, strict=True)]
        if not is_zero(db):
            row = [r + d for r, d in zip(row, db, strict=True)]
        out.append(tuple(row))
    return tuple(out)


def _linear_emit(c: Any, node: Node, operands: Any, v: str, s: str) -> list[str]:
    _, _, slots = cast("tuple[Matrix, Matrix, tuple[int | None, ...]]", node.saved)
    w, b, x = (c.arg(at, data) for at, data in zip(slots, operands, strict=True))
    return [f"{v} = {c.ref(linear_kernel)}({w}, {b}, {x})", f"{s} = ({w}, {x}, {c.local(slots)})"]


LINEAR = define("linear", linear_kernel, vjp=_linear_vjp, jvp=_linear_jvp, emit=_linear_emit, builtin=True)


def linear(
    W: Array | Sequence[Sequence[Scalar]],
    b: Array | Sequence[Scalar] | None,
    X: Array | Sequence[Sequence[Scalar]],
) -> Array | Rows:
    """``X @ W.T + b`` for a batch ``X`` (rows are examples), weights one row per output.

    With a tracked Array among the inputs the result is an Array node; with plain
    floats it is a tuple of row tuples (rows of Values when the inputs hold Values).
    """
    recording = tape_of(W, b, X)
    try:
        w_data = as_data(W, "linear's W")
        x_data = as_data(X, "linear's X")
        b_data = None if b is None else as_data(b, "linear's b")
    except HoldsTracked:
        return _scalar_linear(W, b, X)
    if not (w_data and isinstance(w_data[0], tuple) and x_data and isinstance(x_data[0], tuple)) or (
        b_data is not None and b_data and isinstance(b_data[0], tuple)
    ):
        raise ValueError("linear takes a matrix W, a vector b (or None) and a matrix X")
    w_m, x_m = w_data, x_data
    if len(w_m[0]) != len(x_m[0]):
        raise ValueError(f"linear: W has {len(w_m[0])} columns but X rows have {len(x_m[0])} values")
    if b_data is not None and len(b_data) != len(w_m):
        raise ValueError(f"linear: W has {len(w_m)} rows but b has {len(b_data)} values")
    value = linear_kernel(w_m, cast("Vector | None", b_data), x_m)
    if recording is None:
        return value
    slots = tuple(v.position if isinstance(v, Array) else None for v in (W, b, X))
    parents = tuple(at for at in slots if at is not None)
    if recording.traces:  # b is saved nowhere else
        operands = tuple(None if isinstance(v, Array) else d for v, d in ((W, w_m), (b, b_data), (X, x_m)))
        return recording.record_traced(LINEAR, parents, value, (w_m, x_m, slots), operands, Array)
    return record_array(recording, LINEAR, parents, value, (w_m, x_m, slots))


def _scalar_linear(W: Any, b: Any, X: Any) -> Rows:
    """``linear`` on operands holding scalar Values: one ``dot`` node per output."""
    if b is None:
        return tuple(tuple(dot(w, x) for w in W) for x in X)
    return tuple(tuple(dot(w, x) + bias for w, bias in zip(W, b, strict=True)) for x in X)
