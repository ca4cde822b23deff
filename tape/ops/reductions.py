"""Reductions: the fused n-ary ``dot`` and ``vsum`` on Values, and the ``mean`` of an Array.

``dot`` and ``vsum`` record one node for a whole sum, whatever its length; their
partial rules give one partial per element (``dot``: the other side's values).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from operator import mul
from typing import Any, cast

from tape.array import Array, Data, Vector, add_matrix, add_vector
from tape.core.node import Node
from tape.core.op import define
from tape.core.recording import is_zero
from tape.validate import HoldsTracked, float_matrix, float_vector
from tape.value import Primal, Scalar, Value, apply_nary


def _all_floats(xs: Sequence[Scalar]) -> bool:
    return all(x.__class__ is float for x in xs)


def dot(xs: Sequence[Scalar], ys: Sequence[Scalar]) -> Scalar:
    """``sum(x * y for x, y in zip(xs, ys))`` as one fused node.

    Floats in, a float out; with tracked Values, one ``dot`` node whose partials
    are the other side's values.
    """
    if len(xs) != len(ys):
        raise ValueError(f"dot: lengths differ ({len(xs)} vs {len(ys)})")
    if _all_floats(xs) and _all_floats(ys):
        return sum(map(mul, xs, ys), 0.0)
    return apply_nary(DOT, xs, ys)


def vsum(xs: Sequence[Scalar]) -> Scalar:
    """The sum of ``xs`` as one fused node (floats in, a float out)."""
    if _all_floats(xs):
        return sum(xs, 0.0)
    return apply_nary(VSUM, xs)


def _ones(value: Primal, xs: Sequence[Primal]) -> Sequence[float]:
    return (1.0,) * len(xs)


def _items(exprs: Sequence[str]) -> str:
    return f"({', '.join(exprs)},)"


DOT = define(
    "dot",
    dot,
    lambda v, xs, ys: ys,
    lambda v, xs, ys: xs,
    nary=True,
    float_kernel=dot,
    emit=lambda c, v, xs, ys: (f"sum(map({c.ref(mul)}, {_items(xs)}, {_items(ys)}), 0.0)", (ys, xs)),
    builtin=True,
)
VSUM = define(
    "vsum",
    vsum,
    _ones,
    nary=True,
    float_kernel=vsum,
    emit=lambda c, v, xs: (f"sum({_items(xs)}, 0.0)", (["1.0"] * len(xs),)),
    builtin=True,
)


# --- the shift of a normaliser ------------------------------------------------------------------


def shift_kernel(largest: float) -> float:
    """The shift for ``largest``: itself, or 0 when it is infinite (so ``inf - inf`` never appears)."""
    return largest if math.isfinite(largest) else 0.0


def max_shift(xs: Sequence[Scalar]) -> Scalar:
    """The largest of ``xs`` (0 if it is infinite) as a constant for differentiation: the shift
    that keeps ``logsumexp`` and softmax exact. Its partials are 0, so gradients are those of
    the unshifted formula; it is an op, so a compiled tape recomputes it on every call."""
    if _all_floats(xs):
        return shift_kernel(max(cast("Sequence[float]", xs)))
    return apply_nary(MAX_SHIFT, xs)


def _max_shift_forward(xs: Sequence[Primal]) -> Primal:
    return max_shift(xs)


MAX_SHIFT = define(
    "max_shift",
    _max_shift_forward,
    lambda v, xs: (0.0,) * len(xs),
    nary=True,
    float_kernel=max_shift,
    emit=lambda c, v, xs: (f"{c.ref(shift_kernel)}(max({_items(xs)}))", (["0.0"] * len(xs),)),
    builtin=True,
)


# --- the mean of an Array -------------------------------------------------------------------


def _mean_forward(data: Data) -> float:
    if data and isinstance(data[0], tuple):
        rows = data
        total: float = sum(v for row in rows for v in row)
        return total / (len(rows) * len(rows[0]))
    return sum(cast(Vector, data)) / len(data)


def _mean_vjp(node: Node, g: Any, grads: list[Any]) -> None:
    (shape,) = cast("tuple[tuple[int, ...]]", node.saved)
    (at,) = node.parents
    if len(shape) == 1:
        add_vector(grads, at, [g / shape[0]] * shape[0])
    else:
        k = g / (shape[0] * shape[1])
        add_matrix(grads, at, [[k] * shape[1] for _ in range(shape[0])])


def _mean_jvp(value: float, saved: Any, tangents: tuple[Any, ...]) -> Any:
    (dX,) = tangents
    return 0.0 if is_zero(dX) else _mean_forward(dX)


def _mean_emit(c: Any, node: Node, operands: object, v: str, s: str) -> list[str]:
    x = c.var(node.parents[0])
    return [f"{v} = {c.ref(_mean_forward)}({x})", f"{s} = {node.saved!r}"]


MEAN = define("array_mean", _mean_forward, vjp=_mean_vjp, jvp=_mean_jvp, emit=_mean_emit, builtin=True)


def mean(X: Array | Sequence[Scalar] | Sequence[Sequence[Scalar]]) -> Scalar:
    """The mean of every entry: a Value for an Array, else a float (a Value if it holds Values)."""
    if not isinstance(X, Array):
        first = next(iter(X), None)
        try:
            if isinstance(first, Sequence):
                return _mean_forward(float_matrix(cast("Sequence[Sequence[float]]", X), "mean's input"))
            return _mean_forward(float_vector(cast("Sequence[float]", X), "mean's input"))
        except HoldsTracked:
            nested: Any = X
            items: list[Any] = (
                [v for row in nested for v in row] if isinstance(first, Sequence) else list(nested)
            )
            return vsum(items) / float(len(items))
    if not X.primal:
        raise ValueError("mean of an empty Array")
    if X.tape is None:
        return _mean_forward(X.primal)
    return X.tape.record(MEAN, (X.position,), _mean_forward(X.primal), (X.shape,), Value)
