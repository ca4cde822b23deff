"""Indexing and assembling Arrays: ``a[i, 1:3, None, ...]``, ``stack``, ``concatenate``, ``take``,
``pad``, and constant masks (``scale``), each one node with its vjp and jvp rules.

Indexing an Array records a node, so code written for sequences of Values works on
Arrays (``a[i]`` of a vector is a Value, of a matrix a row Array, on fast paths of
their own); ``stack`` goes the other way, from scalar Values to one vector Array.
The N-d ops run the kernels of :mod:`tape.kernels.indexing` on flat data.

Reverse mode of these ops is first-order (their vjp rules run on floats); forward
mode works through their jvp rules. Inside a nested tape, an op given an enclosing
tape's Values raises the binder's TypeError.
"""

from __future__ import annotations

from collections.abc import Sequence
from operator import add, mul
from typing import Any, cast, overload

from tape.array import (
    Array,
    Data,
    Matrix,
    Rows,
    Shape,
    Vector,
    add_data,
    apply_array_op,
    array_op,
    constant_array,
    constant_data,
    flatten,
    install,
    nest,
    record_array,
    shape_of,
    zeros_like_data,
)
from tape.core.node import Node
from tape.core.op import define
from tape.core.recording import is_zero
from tape.kernels import indexing as kernels
from tape.kernels.shapes import index_grid, normalize_axis, size, strides
from tape.ops.shape import check_operands, operand_shape, plain_result
from tape.validate import HoldsTracked, float_array
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


# --- general indexing: ints, slices, None and ... over several axes --------------------------

Component = int | slice | None
"""One entry of a normalized index: an int picks (and drops) an axis, a slice keeps it, None adds one."""


def _normalize_index(index: object, shape: Shape) -> tuple[Component, ...]:
    """``index`` as one component per consumed axis (ints made non-negative, ``...`` expanded).

    Trailing full slices are dropped (they select everything). Raises TypeError for a
    component that is not an int, a slice of ints, None or ``...``, IndexError for an
    int out of range or too many indices.
    """
    items = index if isinstance(index, tuple) else (index,)
    ellipses = sum(1 for c in items if c is Ellipsis)
    if ellipses > 1:
        raise IndexError(f"Array index {index!r}: an index can only have a single ellipsis ('...')")
    consumed = sum(1 for c in items if c is not None and c is not Ellipsis)
    if consumed > len(shape):
        raise IndexError(
            f"Array index {index!r}: too many indices for an Array of shape {shape} ({len(shape)} axes)"
        )
    out: list[Component] = []
    axis = 0
    for c in items:
        if c is Ellipsis:
            out.extend([slice(None)] * (len(shape) - consumed))
            axis += len(shape) - consumed
        elif c is None:
            out.append(None)
        elif isinstance(c, slice):
            for part in (c.start, c.stop, c.step):
                if part is not None and (not isinstance(part, int) or isinstance(part, bool)):
                    raise TypeError(f"Array index {index!r}: slice parts are ints or None, not {part!r}")
            if c.step == 0:
                raise ValueError(f"Array index {index!r}: slice step cannot be zero")
            out.append(c)
            axis += 1
        elif isinstance(c, int) and not isinstance(c, bool):
            n = shape[axis]
            if not -n <= c < n:
                raise IndexError(
                    f"Array index {index!r}: index {c} is out of range for axis {axis} of shape {shape} "
                    f"(size {n})"
                )
            out.append(c % n)
            axis += 1
        else:
            raise TypeError(f"Array indices are ints, slices, None or ..., not {type(c).__name__} ({c!r})")
    while out and isinstance(out[-1], slice) and out[-1] == slice(None):
        out.pop()
    return tuple(out)


def _select(data: Any, spec: tuple[Component, ...], k: int = 0) -> Any:
    """The entries of nested tuples ``data`` that the normalized index ``spec`` picks."""
    if k == len(spec):
        return data
    c = spec[k]
    if c is None:
        return (_select(data, spec, k + 1),)
    if c.__class__ is int:
        return _select(data[c], spec, k + 1)
    part = data[c]
    if k + 1 == len(spec):
        return part
    return tuple(_select(d, spec, k + 1) for d in part)


def _positions(shape: Shape, spec: tuple[Component, ...]) -> list[int]:
    """The flat row-major positions of the input that ``spec`` picks, in the result's order."""
    steps_of = strides(shape)
    extents: list[int] = []
    steps: list[int] = []
    offset = 0
    axis = 0
    for c in spec:
        if c is None:
            extents.append(1)
            steps.append(0)
            continue
        if isinstance(c, slice):
            start, stop, step = c.indices(shape[axis])
            extents.append(len(range(start, stop, step)))
            steps.append(step * steps_of[axis])
            offset += start * steps_of[axis]
        else:
            offset += c * steps_of[axis]
        axis += 1
    return index_grid((*extents, *shape[axis:]), (*steps, *steps_of[axis:]), offset)


def _getitem_forward(x: Data, *, index: tuple[Component, ...]) -> Any:
    return _select(x, index)


def _getitem_vjp(g: Any, value: object, x: Data, *, index: tuple[Component, ...]) -> tuple[list[float]]:
    shape = shape_of(x)
    out = [0.0] * size(shape)
    picked = [g] if g.__class__ is float else flatten(g)
    for p, v in zip(_positions(shape, index), picked, strict=True):
        out[p] = v  # basic indexing picks each entry at most once
    return (out,)


def _getitem_jvp(
    value: object, args: tuple[Data], tangents: tuple[Data | None], *, index: tuple[Component, ...]
) -> Any:
    (dx,) = tangents
    if dx is None:
        return 0.0 if value.__class__ is float else zeros_like_data(cast(Data, value))
    return _select(dx, index)


GETITEM = array_op("getitem", _getitem_forward, _getitem_vjp, _getitem_jvp)


def _getitem(self: Array, index: object) -> Any:
    """``a[i]`` (a Value of a vector, a row Array of a matrix), or ``a[i, 1:3, None, ...]`` (recorded).

    A full index of every axis gives a Value (a float when untracked); anything else an Array.
    """
    primal: object = self.primal
    if isinstance(index, int) and index.__class__ is not bool and primal.__class__ is tuple:
        n = len(self.primal)
        if not -n <= index < n:
            raise IndexError(f"index {index} is out of range for an Array of length {n}")
        i = index % n
        if self.tape is None:
            item = self.primal[i]
            return constant_array(item) if isinstance(item, tuple) else item
        rows: object = self.primal[0] if n else None
        if rows.__class__ is not tuple:
            return self.tape.record(ITEM, (self.position,), cast(Vector, self.primal)[i], (i, n), Value)
        first: object = rows[0] if rows else None
        if first is not None and first.__class__ is not tuple:
            return record_array(self.tape, ROW, (self.position,), cast(Matrix, self.primal)[i], (i, n))
    spec = _normalize_index(index, self.shape)
    if self.tape is None:
        picked = _select(self.primal, spec)
        return constant_array(picked) if isinstance(picked, tuple) else picked
    return apply_array_op(GETITEM, self, index=spec)


install("__getitem__", _getitem)


def _stack_values_vjp(node: Node, g: Any, grads: list[Any]) -> None:
    for at, gi in zip(node.parents, g, strict=True):
        grads[at] += gi


def _stack_values_jvp(value: Vector, saved: Any, tangents: tuple[Any, ...]) -> Any:
    return tuple(float(t) for t in tangents)


def _stack_emit(c: Any, node: Node, operands: object, v: str, s: str) -> list[str]:
    return [f"{v} = ({', '.join(c.var(p) for p in node.parents)},)", f"{s} = ()"]


STACK = define(
    "array_stack",
    lambda values: tuple(values),
    vjp=_stack_values_vjp,
    jvp=_stack_values_jvp,
    emit=_stack_emit,
    builtin=True,
)


def _stack_forward(*xs: Any, axis: int) -> Data:
    flat, shape = kernels.stack([(flatten(x), shape_of(x)) for x in xs], axis)
    return cast(Data, nest(flat, shape))


def _stack_vjp(g: Any, value: object, *xs: Any, axis: int) -> list[object]:
    shape = shape_of(xs[0])
    parts = kernels.stack_vjp(flatten(g), shape, len(xs), axis)
    return [part[0] if not shape else part for part in parts]


def _stack_jvp(value: object, args: tuple[Any, ...], tangents: tuple[Any, ...], *, axis: int) -> Data:
    return _stack_forward(
        *(zeros_like(a) if t is None else t for a, t in zip(args, tangents, strict=True)), axis=axis
    )


STACK_ND = array_op("stack", _stack_forward, _stack_vjp, _stack_jvp)


def stack(xs: Sequence[object], axis: int = 0) -> Array | Data:
    """``numpy.stack``: Arrays (or nested floats, or scalar Values) of one shape joined along a new ``axis``.

    Scalar Values (and floats) give a vector, as a sequence of Values would be;
    without a tracked operand the result is an untracked Array if an operand was an
    Array, else plain tuples.
    """
    items = _operands(xs, "stack")
    _check_axis(axis, "stack")
    recording = None
    for v in items:
        if not (isinstance(v, Value) and v.tape is not None) or (
            recording is not None and v.tape is not recording
        ):
            recording = None
            break
        recording = v.tape
    if recording is not None and axis in (0, -1):
        values = cast("Sequence[Value]", items)
        data = tuple(v.primal for v in values)
        return record_array(recording, STACK, tuple(v.position for v in values), data, ())
    return cast("Array | Data", apply_array_op(STACK_ND, *items, axis=axis))


def _concatenate_forward(*xs: Any, axis: int) -> Data:
    flat, shape = kernels.concatenate([(flatten(x), shape_of(x)) for x in xs], axis)
    return cast(Data, nest(flat, shape))


def _concatenate_vjp(g: Any, value: object, *xs: Any, axis: int) -> list[list[float]]:
    return kernels.concatenate_vjp(flatten(g), [shape_of(x) for x in xs], axis)


def _concatenate_jvp(value: object, args: tuple[Any, ...], tangents: tuple[Any, ...], *, axis: int) -> Data:
    return _concatenate_forward(
        *(zeros_like(a) if t is None else t for a, t in zip(args, tangents, strict=True)), axis=axis
    )


CONCATENATE = array_op("concatenate", _concatenate_forward, _concatenate_vjp, _concatenate_jvp)


def concatenate(xs: Sequence[object], axis: int = 0) -> Array | Data:
    """``numpy.concatenate``: Arrays (or nested floats) joined along an existing ``axis``.

    Their shapes must agree except along ``axis`` (a ValueError names both shapes).
    """
    items = _operands(xs, "concatenate")
    _check_axis(axis, "concatenate")
    for k, x in enumerate(items):
        if isinstance(x, (int, float, Value)):
            raise ValueError(
                f"concatenate: array {k} is a scalar (shape ()); concatenate needs axes (use stack)"
            )
    return cast("Array | Data", apply_array_op(CONCATENATE, *items, axis=axis))


def _operands(xs: object, op: str) -> Sequence[object]:
    if isinstance(xs, (str, bytes, Array)) or not isinstance(xs, Sequence):
        raise TypeError(f"{op}: xs must be a sequence of arrays, got {type(xs).__name__}")
    if not xs:
        raise ValueError(f"{op}: needs at least one array")
    return xs


def _check_axis(axis: object, op: str) -> None:
    if not isinstance(axis, int) or isinstance(axis, bool):
        raise TypeError(f"{op}: axis must be an int, got {axis!r}")


def zeros_like(x: object) -> Any:
    """Zeros shaped like an operand's data: nested tuples, or 0.0 for a float."""
    return 0.0 if not isinstance(x, tuple) else zeros_like_data(x)


# --- constant masks (dropout) -------------------------------------------------------------


def _scale_forward(data: Data, factors: Data) -> Data:
    if data and data[0].__class__ is tuple:
        return tuple(_scale_forward(d, f) for d, f in zip(data, factors, strict=True))
    return tuple(map(mul, data, factors))


def _scaled_lists(g: list[Any], factors: Data) -> list[Any]:
    if g and g[0].__class__ is list:
        return [_scaled_lists(gr, f) for gr, f in zip(g, factors, strict=True)]
    return list(map(mul, g, factors))


def _scale_vjp(node: Node, g: Any, grads: list[Any]) -> None:
    (factors,) = cast("tuple[Data]", node.saved)
    (at,) = node.parents
    add_data(grads, at, _scaled_lists(g, factors))


def _scale_jvp(value: Data, saved: Any, tangents: tuple[Any, ...]) -> Any:
    ((factors,), (dX,)) = saved, tangents
    return 0.0 if is_zero(dX) else _scale_forward(dX, factors)


def _scale_emit(c: Any, node: Node, operands: object, v: str, s: str) -> list[str]:
    x, factors = c.var(node.parents[0]), c.constant(cast("tuple[Data]", node.saved)[0])
    return [f"{v} = {c.ref(_scale_forward)}({x}, {factors})", f"{s} = ({factors},)"]


SCALE = define("array_scale", _scale_forward, vjp=_scale_vjp, jvp=_scale_jvp, emit=_scale_emit, builtin=True)


def _scale_values(x: Any, factors: Any) -> Any:
    if isinstance(x, Sequence):
        return tuple(_scale_values(a, f) for a, f in zip(x, factors, strict=True))
    return x * factors


def scale(X: Array | Sequence[Any], factors: Array | Sequence[Any]) -> Array | Rows | Data:
    """``X * factors`` elementwise with constant ``factors`` of ``X``'s shape (e.g. a dropout mask)."""
    f = constant_data(factors, "scale", "factors")
    if not isinstance(f, tuple):
        raise ValueError("scale: factors must be an array of floats of the input's shape, not a number")
    if not isinstance(X, Array):
        try:
            data = float_array(X, "scale: input")
        except HoldsTracked:
            return cast(Rows, _scale_values(X, f))
        _same_shape(shape_of(data), shape_of(f))
        return _scale_forward(cast(Data, data), f)
    _same_shape(X.shape, shape_of(f))
    if X.tape is None:
        return constant_array(_scale_forward(X.primal, f))
    return record_array(X.tape, SCALE, (X.position,), _scale_forward(X.primal, f), (f,))


def _same_shape(x: Shape, factors: Shape) -> None:
    if x != factors:
        raise ValueError(f"scale: factors of shape {factors} vs input of shape {x}")


# --- take (an embedding lookup) and pad ---------------------------------------------------------


def _check_indices(indices: tuple[int, ...], shape: Shape, axis: int) -> None:
    n = shape[axis]
    for i in indices:
        if not -n <= i < n:
            raise IndexError(f"take: index {i} is out of range for axis {axis} of shape {shape} (size {n})")


def _take_forward(x: Any, *, indices: tuple[int, ...], axis: int, indices_shape: Shape | None = None) -> Any:
    shape = shape_of(x)
    _check_indices(indices, shape, axis)
    flat, out_shape = kernels.take(flatten(x), shape, indices, axis, indices_shape)
    return nest(flat, out_shape)


def _take_vjp(
    g: Any, value: object, x: Any, *, indices: tuple[int, ...], axis: int, indices_shape: Shape | None = None
) -> tuple[list[float]]:
    return (kernels.take_vjp([g] if g.__class__ is float else flatten(g), shape_of(x), indices, axis),)


def _take_jvp(
    value: object,
    args: tuple[Any],
    tangents: tuple[Any],
    *,
    indices: tuple[int, ...],
    axis: int,
    indices_shape: Shape | None = None,
) -> Any:
    (dx,) = tangents
    if dx is None:
        return 0.0 if value.__class__ is float else zeros_like_data(cast(Data, value))
    return _take_forward(dx, indices=indices, axis=axis, indices_shape=indices_shape)


TAKE = array_op("take", _take_forward, _take_vjp, _take_jvp)


def _int_indices(indices: object) -> tuple[list[int], Shape]:
    """Nested int ``indices`` as a flat list and their shape; a TypeError names a non-int."""
    if isinstance(indices, int) and not isinstance(indices, bool):
        return [indices], ()
    if isinstance(indices, (str, bytes)) or not isinstance(indices, Sequence):
        raise TypeError(f"take: indices must be an int or a (nested) sequence of ints, got {indices!r}")
    items = list(indices)
    if items and isinstance(items[0], Sequence) and not isinstance(items[0], (str, bytes)):
        parts = [_int_indices(item) for item in items]
        inner = parts[0][1]
        for k, (_, s) in enumerate(parts):
            if s != inner:
                raise ValueError(f"take: indices are ragged: [{k}] has shape {s} but [0] has {inner}")
        return [i for flat, _ in parts for i in flat], (len(items), *inner)
    for i in items:
        if not isinstance(i, int) or isinstance(i, bool):
            raise TypeError(f"take: indices must be ints, got {i!r}")
    return items, (len(items),)


@overload
def take(x: Array, indices: Sequence[Any], axis: int = 0) -> Array: ...
@overload
def take(x: Array, indices: int, axis: int = 0) -> Array | Scalar: ...  # a vector's entry is a Value
@overload
def take(x: Sequence[Any], indices: Sequence[Any], axis: int = 0) -> Data: ...
@overload
def take(x: Sequence[Any], indices: int, axis: int = 0) -> Data | float: ...
def take(x: Array | Sequence[Any], indices: int | Sequence[Any], axis: int = 0) -> Any:  # Array, Value, data
    """``numpy.take``: the slices of ``x`` at ``indices`` along ``axis`` (an embedding lookup).

    ``indices`` may be nested (their shape replaces ``axis``) or one int (the axis is
    dropped); negative ones count from the end. Repeated indices accumulate gradients.
    An index out of range is an IndexError naming the op, the axis and the shape.

    >>> take([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], [2, 0, 2])
    ((5.0, 6.0), (1.0, 2.0), (5.0, 6.0))
    """
    _check_axis(axis, "take")
    flat, index_shape = _int_indices(indices)
    (a,), plain = check_operands("take", x)
    shape = operand_shape(a)
    if not shape:
        raise ValueError("take: x is a scalar (shape ()); take needs an array")
    ax = normalize_axis(axis, shape, op="take")
    _check_indices(tuple(flat), shape, ax)
    if len(index_shape) == 1:
        return plain_result(apply_array_op(TAKE, a, indices=tuple(flat), axis=ax), plain)
    return plain_result(
        apply_array_op(TAKE, a, indices=tuple(flat), axis=ax, indices_shape=index_shape), plain
    )


Widths = tuple[tuple[int, int], ...]


def _pad_forward(x: Any, *, widths: Widths, value: float) -> Data:
    shape = shape_of(x)
    flat, out_shape = kernels.pad(flatten(x), shape, widths)
    if value != 0.0:
        inside = set(_interior(shape, widths))
        flat = [v if k in inside else value for k, v in enumerate(flat)]
    return cast(Data, nest(flat, out_shape))


def _interior(shape: Shape, widths: Widths) -> list[int]:
    """The flat positions of the padded array that hold the input's entries."""
    padded = tuple(n + lo + hi for n, (lo, hi) in zip(shape, widths, strict=True))
    steps = strides(padded)
    offset = sum(lo * step for (lo, _), step in zip(widths, steps, strict=True))
    return index_grid(shape, steps, offset)


def _pad_vjp(g: Any, out: object, x: Any, *, widths: Widths, value: float) -> tuple[list[float]]:
    return (kernels.pad_vjp(flatten(g), shape_of(x), widths),)


def _pad_jvp(out: Data, args: tuple[Any], tangents: tuple[Any], *, widths: Widths, value: float) -> Data:
    (dx,) = tangents
    if dx is None:
        return zeros_like_data(out)
    return _pad_forward(dx, widths=widths, value=0.0)


PAD = array_op("pad", _pad_forward, _pad_vjp, _pad_jvp)


def _pad_widths(pad_width: object, ndim: int) -> Widths:
    """numpy's ``pad_width``: an int, one ``(before, after)`` pair, or a pair per axis."""

    def pair(p: object) -> tuple[int, int]:
        if isinstance(p, int) and not isinstance(p, bool):
            return (p, p)
        if isinstance(p, Sequence) and not isinstance(p, (str, bytes)) and len(p) in (1, 2):
            both = tuple(p)
            if all(isinstance(v, int) and not isinstance(v, bool) for v in both):
                return (both[0], both[-1])
        raise TypeError(f"pad: pad_width must be ints or (before, after) pairs of ints, got {pad_width!r}")

    if isinstance(pad_width, Sequence) and not isinstance(pad_width, (str, bytes)):
        items = list(pad_width)
        if items and all(isinstance(p, Sequence) for p in items):
            widths = tuple(pair(p) for p in items)
            if len(widths) == 1:
                widths = widths * ndim
        else:
            widths = (pair(items),) * ndim
    else:
        widths = (pair(pad_width),) * ndim
    if len(widths) != ndim:
        raise ValueError(f"pad: {len(widths)} (before, after) pairs for an array of {ndim} axes")
    for k, (lo, hi) in enumerate(widths):
        if lo < 0 or hi < 0:
            raise ValueError(f"pad: axis {k} has a negative width {(lo, hi)}")
    return widths


@overload
def pad(x: Array, pad_width: int | Sequence[Any], value: float = 0.0) -> Array: ...
@overload
def pad(x: Sequence[Any], pad_width: int | Sequence[Any], value: float = 0.0) -> Data: ...
def pad(x: Array | Sequence[Any], pad_width: int | Sequence[Any], value: float = 0.0) -> Any:  # Array or data
    """``numpy.pad`` with a constant: ``pad_width`` is an int, a ``(before, after)`` pair, or one per axis.

    >>> pad([[1.0, 2.0]], ((0, 1), (1, 0)))
    ((0.0, 1.0, 2.0), (0.0, 0.0, 0.0))
    """
    (a,), plain = check_operands("pad", x)
    shape = operand_shape(a)
    if not shape:
        raise ValueError("pad: x is a scalar (shape ()); pad needs an array")
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise TypeError(f"pad: value must be a float, got {value!r}")
    return plain_result(
        apply_array_op(PAD, a, widths=_pad_widths(pad_width, len(shape)), value=float(value)), plain
    )
