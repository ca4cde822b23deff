"""Reductions: the fused n-ary ``dot`` and ``vsum`` on Values, and ``sum``, ``mean``,
``max`` and ``min`` of an N-d Array over axes.

``dot`` and ``vsum`` record one node for a whole sum, whatever its length; their
partial rules give one partial per element (``dot``: the other side's values).

The array reductions take ``axis=None|int|tuple`` and ``keepdims`` as NumPy does and
run on the kernels of :mod:`tape.kernels.reduce`. Forward mode goes through their jvp
rules; their vjp rules run on floats, so reverse mode over them is first order: inside
a nested tape (``grad`` of ``grad``, ``hvp``), an array op given the enclosing tape's
Values raises a TypeError.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from operator import mul
from typing import Any, Literal, cast, overload

from tape.array import (
    Array,
    Data,
    Shape,
    Vector,
    add_flat,
    add_matrix,
    add_vector,
    apply_array_op,
    array_op,
    constant_array,
    flatten,
    nest,
    shape_of,
    traced_floats,
)
from tape.core.node import Node, Tracked
from tape.core.op import Op, define, joined
from tape.kernels.reduce import (
    max_axes,
    mean_axes,
    mean_axes_vjp,
    min_axes,
    scatter_vjp,
    sum_axes,
    sum_axes_vjp,
)
from tape.kernels.shapes import normalize_axes, size
from tape.kernels.written import SUM_ADDS_IN_ORDER
from tape.validate import HoldsTracked, float_array
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
    return f"({joined(exprs, ', ')},)"


_WRITTEN_TERMS = 64
"""jit writes a dot product of at most this many terms out as ``0.0 + x0 * y0 + ...``."""


def _dot_code(mul_name: str, xs: Sequence[str], ys: Sequence[str]) -> str:
    """The compiled code of a dot product: written out when short (the same additions in the same
    order as ``sum`` from 0.0, without a call and a float per product), else ``sum(map(mul, ...))``.

    Written out only where ``sum`` adds in order: from Python 3.12 it compensates its rounding.
    """
    if SUM_ADDS_IN_ORDER and 0 < len(xs) <= _WRITTEN_TERMS:
        return "(" + joined(["0.0", *(f"{x} * {y}" for x, y in zip(xs, ys, strict=True))], " + ") + ")"
    return f"sum(map({mul_name}, {_items(xs)}, {_items(ys)}), 0.0)"


DOT = define(
    "dot",
    dot,
    lambda v, xs, ys: ys,
    lambda v, xs, ys: xs,
    nary=True,
    float_kernel=dot,
    emit=lambda c, v, xs, ys: (_dot_code(c.ref(mul), xs, ys), (ys, xs)),
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


# --- reductions of an N-d Array over axes: sum, mean, max, min ------------------------------
#
# A reduction to shape ``()`` (every axis, the default) gives a float, so the node is a
# scalar Value: a loss stays a scalar. Their vjp rules run on floats (first order).

Axis = int | tuple[int, ...] | None
"""An axis argument as NumPy takes it: one axis (negative counts from the end), several, or all."""
ArrayLike = Array | Sequence[Any] | Scalar
"""What a reduction takes: an Array, nested sequences of floats, or a scalar (a 0-d array)."""


def _check_keepdims(keepdims: object, op: str) -> None:
    if not isinstance(keepdims, bool):
        raise TypeError(f"{op}: keepdims must be a bool, got {keepdims!r}")


def _sum_forward(x: Data | float, *, axis: Axis = None, keepdims: bool = False) -> Any:
    out, out_shape = sum_axes(flatten(x), shape_of(x), axis, keepdims=keepdims)
    return nest(out, out_shape)


def _sum_vjp(g: Any, value: object, x: Data | float, *, axis: Axis, keepdims: bool) -> tuple[list[float]]:
    return (sum_axes_vjp(flatten(g), shape_of(x), axis, keepdims=keepdims),)


def _sum_jvp(
    value: object, args: tuple[Any, ...], tangents: tuple[Any, ...], *, axis: Axis, keepdims: bool
) -> Any:
    (t,) = tangents
    return _sum_forward(t, axis=axis, keepdims=keepdims)


SUM = array_op("array_sum", _sum_forward, _sum_vjp, _sum_jvp)


def _extremum_op(name: str, largest: bool) -> Op:
    """The op of ``max`` (``largest``) or ``min`` over axes: the gradient goes to the first extremal entry."""
    pick = max_axes if largest else min_axes

    def forward(x: Data | float, *, axis: Axis = None, keepdims: bool = False) -> Any:
        out, out_shape, _ = pick(flatten(x), shape_of(x), axis, keepdims=keepdims)
        return nest(out, out_shape)

    def positions(x: Data | float, axis: Axis, keepdims: bool) -> list[int]:
        return pick(flatten(x), shape_of(x), axis, keepdims=keepdims)[2]

    def vjp(g: Any, value: object, x: Data | float, *, axis: Axis, keepdims: bool) -> tuple[list[float]]:
        return (scatter_vjp(flatten(g), positions(x, axis, keepdims), size(shape_of(x))),)

    def jvp(
        value: object, args: tuple[Any, ...], tangents: tuple[Any, ...], *, axis: Axis, keepdims: bool
    ) -> Any:
        (x,), (t,) = args, tangents
        flat_t = flatten(t)
        return nest([flat_t[p] for p in positions(x, axis, keepdims)], shape_of(value))

    return array_op(name, forward, vjp, jvp)


MAX = _extremum_op("array_max", largest=True)
MIN = _extremum_op("array_min", largest=False)


def _mean_forward(data: Data | float, axis: Axis = None, keepdims: bool = False) -> Any:
    if axis is None and not keepdims and isinstance(data, (tuple, list)):  # data, or a tangent
        if data and isinstance(data[0], (tuple, list)):
            if data[0] and isinstance(data[0][0], (tuple, list)):
                flat = flatten(data)
                return sum(flat) / len(flat)
            rows = data
            total: float = sum(v for row in rows for v in row)
            return total / (len(rows) * len(rows[0]))
        return sum(cast(Vector, data)) / len(data)
    out, out_shape = mean_axes(flatten(data), shape_of(data), axis, keepdims=keepdims)
    return nest(out, out_shape)


def _mean_vjp(node: Node, g: Any, grads: list[Any]) -> None:
    shape, axis, keepdims = cast("tuple[Shape, Axis, bool]", node.saved)
    (at,) = node.parents
    if axis is None and not keepdims and len(shape) <= 2:
        if len(shape) == 1:
            add_vector(grads, at, [g / shape[0]] * shape[0])
            return
        if len(shape) == 2:
            k = g / (shape[0] * shape[1])
            add_matrix(grads, at, [[k] * shape[1] for _ in range(shape[0])])
            return
    add_flat(grads, at, mean_axes_vjp(flatten(g), shape, axis, keepdims=keepdims), shape)


def _mean_jvp(value: object, saved: Any, tangents: tuple[Any, ...]) -> Any:
    _, axis, keepdims = cast("tuple[Shape, Axis, bool]", saved)
    (dX,) = tangents
    return _mean_forward(dX, axis, keepdims)


def _mean_emit(c: Any, node: Node, operands: object, v: str, s: str) -> list[str]:
    x = c.var(node.parents[0])
    _, axis, keepdims = cast("tuple[Shape, Axis, bool]", node.saved)
    return [f"{v} = {c.ref(_mean_forward)}({x}, {axis!r}, {keepdims!r})", f"{s} = {node.saved!r}"]


MEAN = define("array_mean", _mean_forward, vjp=_mean_vjp, jvp=_mean_jvp, emit=_mean_emit, builtin=True)


def _scalar_mean(X: Sequence[Any]) -> Scalar:
    """The mean of a vector or matrix holding Values: one ``vsum`` node."""
    items: list[Any] = [v for row in X for v in row] if isinstance(X[0], Sequence) else list(X)
    return vsum(items) / float(len(items))


@overload
def mean(X: ArrayLike, axis: None = None, keepdims: Literal[False] = False) -> Scalar: ...
@overload
def mean(X: ArrayLike, axis: Axis, keepdims: bool = False) -> Array | Data | Scalar: ...
@overload
def mean(X: ArrayLike, *, keepdims: bool) -> Array | Data | Scalar: ...
def mean(X: ArrayLike, axis: Axis = None, keepdims: bool = False) -> Array | Data | Scalar:
    """The mean over ``axis`` (every axis by default), as ``numpy.mean``.

    A reduction to shape ``()`` is a scalar: a Value for a tracked Array, else a float.
    Otherwise an Array (untracked for an untracked one), or nested tuples for nested floats.
    An axis out of range is a ValueError naming the axis and the shape.
    """
    _check_keepdims(keepdims, "mean")
    if isinstance(X, Tracked):
        data = cast("Data | float", X.primal)
        recording = X.tape
        position = X.position
    else:
        try:
            data = cast("Data | float", float_array(X, "mean's input"))
        except HoldsTracked:
            held = traced_floats(cast("Sequence[object]", X), "mean's input")
            if held is not None:  # plain floats where no tracing is: one traced input
                return mean(held, axis, keepdims)
            if axis is not None or keepdims or not isinstance(X, Sequence) or not X:
                raise TypeError(
                    "mean: the input is a sequence holding Values; over an axis, mean takes Arrays "
                    "or nested sequences of floats (tape.arrays.stack makes an Array of Values)"
                ) from None
            return _scalar_mean(X)
        recording = None
        position = -1
    shape = shape_of(data)
    if axis is not None:
        normalize_axes(axis, shape, op="mean")
    if size(shape) == 0 and axis is None:
        raise ValueError(f"mean of an empty Array (shape {shape})")
    value = _mean_forward(data, axis, keepdims)
    if recording is None:
        return constant_array(value) if isinstance(X, Array) and value.__class__ is tuple else value
    saved = (shape, axis, keepdims)
    if value.__class__ is tuple:
        return recording.record(MEAN, (position,), value, saved, Array)
    return recording.record(MEAN, (position,), value, saved, Value)


@overload
def array_sum(X: ArrayLike, axis: None = None, keepdims: Literal[False] = False) -> Scalar: ...
@overload
def array_sum(X: ArrayLike, axis: Axis, keepdims: bool = False) -> Array | Data | Scalar: ...
@overload
def array_sum(X: ArrayLike, *, keepdims: bool) -> Array | Data | Scalar: ...
def array_sum(X: ArrayLike, axis: Axis = None, keepdims: bool = False) -> Array | Data | Scalar:
    """The sum over ``axis`` (every axis by default), as ``numpy.sum``.

    A reduction to shape ``()`` is a scalar (a Value when tracked); see :func:`mean`.
    """
    _check_keepdims(keepdims, "sum")
    return cast("Array | Data | Scalar", apply_array_op(SUM, X, axis=axis, keepdims=keepdims))


@overload
def array_max(X: ArrayLike, axis: None = None, keepdims: Literal[False] = False) -> Scalar: ...
@overload
def array_max(X: ArrayLike, axis: Axis, keepdims: bool = False) -> Array | Data | Scalar: ...
@overload
def array_max(X: ArrayLike, *, keepdims: bool) -> Array | Data | Scalar: ...
def array_max(X: ArrayLike, axis: Axis = None, keepdims: bool = False) -> Array | Data | Scalar:
    """The maximum over ``axis``, as ``numpy.max``; its gradient goes to the FIRST maximal
    entry of each group (as ``torch.max(dim)``). A ``nan`` in a group makes its result ``nan``."""
    _check_keepdims(keepdims, "max")
    return cast("Array | Data | Scalar", apply_array_op(MAX, X, axis=axis, keepdims=keepdims))


@overload
def array_min(X: ArrayLike, axis: None = None, keepdims: Literal[False] = False) -> Scalar: ...
@overload
def array_min(X: ArrayLike, axis: Axis, keepdims: bool = False) -> Array | Data | Scalar: ...
@overload
def array_min(X: ArrayLike, *, keepdims: bool) -> Array | Data | Scalar: ...
def array_min(X: ArrayLike, axis: Axis = None, keepdims: bool = False) -> Array | Data | Scalar:
    """The minimum over ``axis``, as ``numpy.min``; its gradient goes to the FIRST minimal entry."""
    _check_keepdims(keepdims, "min")
    return cast("Array | Data | Scalar", apply_array_op(MIN, X, axis=axis, keepdims=keepdims))
