"""Shape ops on Arrays: ``reshape`` and ``transpose`` (and ``.T``), each one node with its vjp and jvp.

Both run the kernels of :mod:`tape.kernels.shapes` on flat row-major data: a reshape
keeps the data and changes the shape, so its vjp reshapes the adjoint back; a
transpose's vjp transposes the adjoint by the inverse permutation.

Reverse mode of these ops is first-order (their vjp rules run on floats); forward
mode works through their jvp rules. Inside a nested tape, an op given an enclosing
tape's Values raises the binder's TypeError.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, cast

from tape.array import Array, Data, Shape, apply_array_op, array_op, flatten, install, nest, shape_of
from tape.kernels import shapes as kernels
from tape.validate import HoldsTracked, float_array
from tape.value import Scalar, Value


def _reshape_forward(x: Any, *, shape: Shape) -> Any:
    return nest(flatten(x), shape)


def _reshape_vjp(g: Any, value: object, x: Any, *, shape: Shape) -> tuple[object]:
    if x.__class__ is not tuple:  # a Value's float
        return (g if g.__class__ is float else flatten(g)[0],)
    return ([g] if g.__class__ is float else flatten(g),)


def _reshape_jvp(value: object, args: tuple[Any], tangents: tuple[Any], *, shape: Shape) -> Any:
    (dx,) = tangents
    return nest([0.0] * kernels.size(shape), shape) if dx is None else _reshape_forward(dx, shape=shape)


RESHAPE = array_op("reshape", _reshape_forward, _reshape_vjp, _reshape_jvp)


def operand_shape(x: object, op: str) -> Shape:
    """The shape of an operand: an Array's, a nested sequence's (checked rectangular), ``()`` for a number."""
    if isinstance(x, Array):
        return x.shape
    if isinstance(x, (int, float, Value)):
        return ()
    if isinstance(x, (str, bytes)) or not isinstance(x, Sequence):
        raise TypeError(f"{op}: x must be an Array or a nested sequence of floats, got {type(x).__name__}")
    try:
        return shape_of(float_array(x, f"{op}: x"))
    except HoldsTracked:
        raise TypeError(
            f"{op}: x is a sequence holding Values; array ops take Arrays or nested sequences of floats"
        ) from None


def reshape(
    x: Array | Scalar | Sequence[Any], shape: int | Sequence[int]
) -> Any:  # an Array, a Value or data
    """``numpy.reshape``: the same entries, row-major, in a new ``shape`` (one ``-1`` is inferred).

    A shape of ``()`` gives a Value (a float when nothing is tracked).

    >>> reshape([[1.0, 2.0], [3.0, 4.0]], -1)
    (1.0, 2.0, 3.0, 4.0)
    """
    wanted = (shape,) if isinstance(shape, int) else tuple(shape)
    if not all(isinstance(n, int) and not isinstance(n, bool) for n in wanted):
        raise TypeError(f"reshape: shape must be an int or a tuple of ints, got {shape!r}")
    new_shape = kernels.reshape(operand_shape(x, "reshape"), wanted)
    return apply_array_op(RESHAPE, x, shape=new_shape)


def _transpose_forward(x: Any, *, axes: Shape) -> Data:
    shape = shape_of(x)
    flat, new_shape = kernels.transpose(flatten(x), shape, axes)
    return cast(Data, nest(flat, new_shape))


def _transpose_vjp(g: Any, value: object, x: Any, *, axes: Shape) -> tuple[list[float]]:
    flat, _ = kernels.transpose(flatten(g), shape_of(value), kernels.inverse_permutation(axes))
    return (flat,)


def _transpose_jvp(value: Data, args: tuple[Any], tangents: tuple[Any], *, axes: Shape) -> Data:
    (dx,) = tangents
    return (
        cast(Data, nest([0.0] * len(flatten(value)), shape_of(value)))
        if dx is None
        else _transpose_forward(dx, axes=axes)
    )


TRANSPOSE = array_op("transpose", _transpose_forward, _transpose_vjp, _transpose_jvp)


def transpose(x: Array | Sequence[Any], axes: Sequence[int] | None = None) -> Any:  # an Array or data
    """``numpy.transpose``: axis ``i`` of the result is axis ``axes[i]`` of ``x`` (``None`` reverses them).

    >>> transpose([[1.0, 2.0, 3.0]])
    ((1.0,), (2.0,), (3.0,))
    """
    shape = operand_shape(x, "transpose")
    if not shape:
        raise ValueError("transpose: x is a scalar (shape ()); transpose needs an array")
    if axes is not None and (isinstance(axes, (str, bytes)) or not isinstance(axes, Sequence)):
        raise TypeError(f"transpose: axes must be None or a sequence of ints, got {axes!r}")
    perm = kernels.normalize_permutation(axes, shape)
    return apply_array_op(TRANSPOSE, x, axes=perm)


def _transposed(self: Array) -> Any:
    """The Array with its axes reversed (``numpy``'s ``.T``), recorded as a node."""
    return transpose(self)


install("T", cast("Callable[..., object]", property(_transposed)))
