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
from typing import Any, cast, overload

from tape.array import (
    Array,
    Data,
    Shape,
    apply_array_op,
    array_op,
    constant_array,
    flatten,
    install,
    nest,
    shape_of,
    traced_floats,
)
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


def check_operands(op: str, *xs: object) -> tuple[list[Any], bool]:
    """Operands checked once: Arrays, Values and None as they are, nested floats as untracked Arrays.

    Also gives whether no operand was an Array or a Value: the op's result is then
    plain data (see :func:`plain_result`). A sequence holding Values is a TypeError.
    """
    out: list[Any] = []
    plain = True
    for k, x in enumerate(xs):
        if x is None or isinstance(x, (Array, Value)):
            plain = plain and x is None
            out.append(x)
        elif isinstance(x, (int, float)) and not isinstance(x, bool):
            out.append(float(x))
        elif isinstance(x, Sequence) and not isinstance(x, (str, bytes)):
            try:
                out.append(constant_array(cast(Data, float_array(x, f"{op}: argument {k}"))))
            except HoldsTracked:
                held = traced_floats(x, f"{op}: argument {k}")
                if held is not None:  # plain floats where no tracing is: one traced input
                    out.append(held)
                    plain = False
                    continue
                raise TypeError(
                    f"{op}: an operand is a sequence holding Values; array ops take Arrays or nested "
                    "sequences of floats (tape.arrays.stack makes an Array of Values)"
                ) from None
        else:
            raise TypeError(
                f"{op}: operands are Arrays or nested sequences of floats, got {type(x).__name__}"
            )
    return out, plain


def operand_shape(x: object) -> Shape:
    """The shape of a checked operand (``()`` for a Value or a number)."""
    return x.shape if isinstance(x, Array) else ()


def plain_result(result: Any, plain: bool) -> Any:
    """``result`` as plain data when no operand was an Array or a Value (inference at float speed)."""
    return result.primal if plain and isinstance(result, Array) else result


@overload
def reshape(  # type: ignore[overload-overlap]  # the empty shape is narrower than Sequence[int]
    x: Array | Value, shape: tuple[()]
) -> Scalar: ...  # a float when untracked
@overload
def reshape(x: Array, shape: int | Sequence[int]) -> Array: ...
@overload
def reshape(  # type: ignore[overload-overlap]  # the empty shape is narrower than Sequence[int]
    x: float | Sequence[Any], shape: tuple[()]
) -> float: ...
@overload
def reshape(x: Value, shape: int | Sequence[int]) -> Array: ...
@overload
def reshape(x: float | Sequence[Any], shape: int | Sequence[int]) -> Data: ...
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
    (a,), plain = check_operands("reshape", x)
    new_shape = kernels.reshape(operand_shape(a), wanted)
    return plain_result(apply_array_op(RESHAPE, a, shape=new_shape), plain)


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


@overload
def transpose(x: Array, axes: Sequence[int] | None = None) -> Array: ...
@overload
def transpose(x: Sequence[Any], axes: Sequence[int] | None = None) -> Data: ...
def transpose(x: Array | Sequence[Any], axes: Sequence[int] | None = None) -> Any:  # an Array or data
    """``numpy.transpose``: axis ``i`` of the result is axis ``axes[i]`` of ``x`` (``None`` reverses them).

    >>> transpose([[1.0, 2.0, 3.0]])
    ((1.0,), (2.0,), (3.0,))
    """
    (a,), plain = check_operands("transpose", x)
    shape = operand_shape(a)
    if not shape:
        raise ValueError("transpose: x is a scalar (shape ()); transpose needs an array")
    if axes is not None and (isinstance(axes, (str, bytes)) or not isinstance(axes, Sequence)):
        raise TypeError(f"transpose: axes must be None or a sequence of ints, got {axes!r}")
    perm = kernels.normalize_permutation(axes, shape)
    return plain_result(apply_array_op(TRANSPOSE, a, axes=perm), plain)


def _transposed(self: Array) -> Any:
    """The Array with its axes reversed (``numpy``'s ``.T``), recorded as a node."""
    return transpose(self)


install("T", cast("Callable[..., object]", property(_transposed)))
