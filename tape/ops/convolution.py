"""Convolutions and pools on Arrays: ``conv2d`` (NCHW input, OIHW weight, as PyTorch), ``conv1d``
(NCL/OIL), ``max_pool2d`` and ``avg_pool2d``, each one node with its vjp and jvp rules.

The forward passes and vjps are the kernels of :mod:`tape.kernels.conv` on flat data.
A convolution is bilinear, so its jvp is ``conv(dx, w) + conv(x, dw) (+ db)``; an
average pool is linear (its jvp pools the tangent); a max pool's node keeps where
each window's first maximum is: its jvp gathers the tangent there, and its vjp sends
the gradient there.

Reverse mode of these ops is first-order (their vjp rules run on floats); forward
mode works through their jvp rules. Inside a nested tape, an op given an enclosing
tape's Values raises the binder's TypeError.
"""

from __future__ import annotations

from collections.abc import Sequence
from operator import add
from typing import Any, cast, overload

from tape.array import Array, Data, Shape, apply_array_op, array_op, flatten, nest, shape_of
from tape.kernels import conv as kernels
from tape.ops.shape import check_operands, operand_shape, plain_result

Pair = int | tuple[int, int]
"""A size per spatial axis, or one for both."""


def _flat(x: Any) -> list[float]:
    return flatten(x)


# --- conv2d and conv1d ------------------------------------------------------------------------


def _conv_forward(x: Any, w: Any, b: Any, *, stride: Pair, padding: Pair) -> Data:
    x_shape, w_shape, bias = shape_of(x), shape_of(w), None if b is None else list(b)
    if len(x_shape) == 3:
        flat, shape = kernels.conv1d(
            _flat(x), x_shape, _flat(w), w_shape, bias, cast(int, stride), cast(int, padding)
        )
    else:
        flat, shape = kernels.conv2d(_flat(x), x_shape, _flat(w), w_shape, bias, stride, padding)
    return cast(Data, nest(flat, shape))


def _conv_vjp(
    g: Any,
    value: object,
    x: Any,
    w: Any,
    b: Any,
    *,
    stride: Pair,
    padding: Pair,
    tracked: tuple[bool, ...] = (True, True, True),
) -> tuple[object, ...]:
    x_shape, w_shape, bias = shape_of(x), shape_of(w), None if b is None else list(b)
    if len(x_shape) == 3:
        return kernels.conv1d_vjp(
            _flat(g),
            _flat(x),
            x_shape,
            _flat(w),
            w_shape,
            bias,
            cast(int, stride),
            cast(int, padding),
            input_grad=tracked[0],
        )
    return kernels.conv2d_vjp(
        _flat(g), _flat(x), x_shape, _flat(w), w_shape, bias, stride, padding, input_grad=tracked[0]
    )


def _conv_jvp(
    value: Data, args: tuple[Any, Any, Any], tangents: tuple[Any, Any, Any], *, stride: Pair, padding: Pair
) -> Data:
    x, w, _ = args
    dx, dw, db = tangents
    total: list[float] | None = None
    for left, right in ((dx, w), (x, dw)):
        if left is None or right is None:
            continue
        term = flatten(_conv_forward(left, right, None, stride=stride, padding=padding))
        total = term if total is None else list(map(add, total, term))
    shape = shape_of(value)
    if total is None:
        total = [0.0] * len(flatten(value))
    if db is not None:
        plane = len(total) // (shape[0] * shape[1])
        per_sample = [v for d in db for v in [d] * plane]
        total = list(map(add, total, per_sample * shape[0]))
    return cast(Data, nest(total, shape))


CONV2D = array_op("conv2d", _conv_forward, _conv_vjp, _conv_jvp, tells_tracked=True)
CONV1D = array_op("conv1d", _conv_forward, _conv_vjp, _conv_jvp, tells_tracked=True)


def _pair(value: object, name: str, op: str, *, least: int) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, int) else value
    if not (
        isinstance(pair, tuple)
        and len(pair) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) for v in pair)
    ):
        raise TypeError(f"{op}: {name} must be an int or a pair of ints, got {value!r}")
    if min(pair) < least:
        raise ValueError(f"{op}: {name} must be at least {least}, got {value!r}")
    return cast("tuple[int, int]", pair)


def _compact(pair: tuple[int, int]) -> Pair:
    """One int for equal sizes (a parameter jit never mistakes for int data)."""
    return pair[0] if pair[0] == pair[1] else pair


def _check_window(
    op: str, x_shape: Shape, window: tuple[int, int], padding: tuple[int, int], what: str
) -> None:
    padded = (x_shape[-2] + 2 * padding[0], x_shape[-1] + 2 * padding[1])
    if window[0] > padded[0] or window[1] > padded[1]:
        raise ValueError(
            f"{op}: {what} {window[0]}x{window[1]} is larger than the input of shape {x_shape} "
            f"padded by {padding} ({padded[0]}x{padded[1]})"
        )


def _check_conv(op: str, x_shape: Shape, w_shape: Shape, b: object, spatial: int) -> None:
    layout = ("(N, C, H, W)", "(O, C, KH, KW)") if spatial == 2 else ("(N, C, L)", "(O, C, K)")
    if len(x_shape) != spatial + 2:
        raise ValueError(f"{op}: x must be {layout[0]}, got shape {x_shape} (weight has shape {w_shape})")
    if len(w_shape) != spatial + 2:
        raise ValueError(f"{op}: weight must be {layout[1]}, got shape {w_shape} (x has shape {x_shape})")
    if x_shape[1] != w_shape[1]:
        raise ValueError(
            f"{op}: x has {x_shape[1]} channels (shape {x_shape}) but weight expects {w_shape[1]} "
            f"(shape {w_shape})"
        )
    if b is not None:
        b_shape = operand_shape(b)
        if b_shape != (w_shape[0],):
            raise ValueError(
                f"{op}: bias of shape {b_shape} does not match weight of shape {w_shape} "
                f"(it needs shape ({w_shape[0]},))"
            )


@overload
def conv2d(
    x: Array,
    w: Array | Sequence[Any],
    b: Array | Sequence[Any] | None = None,
    stride: Pair = 1,
    padding: Pair = 0,
) -> Array: ...
@overload
def conv2d(
    x: Sequence[Any], w: Array, b: Array | Sequence[Any] | None = None, stride: Pair = 1, padding: Pair = 0
) -> Array: ...
@overload
def conv2d(x: Sequence[Any], w: Sequence[Any], b: Array, stride: Pair = 1, padding: Pair = 0) -> Array: ...
@overload
def conv2d(
    x: Sequence[Any], w: Sequence[Any], b: Sequence[Any] | None = None, stride: Pair = 1, padding: Pair = 0
) -> Data: ...
def conv2d(
    x: Array | Sequence[Any],
    w: Array | Sequence[Any],
    b: Array | Sequence[Any] | None = None,
    stride: Pair = 1,
    padding: Pair = 0,
) -> Any:  # an Array, or nested tuples
    """``torch.nn.functional.conv2d``: ``x`` (N, C, H, W), weight ``w`` (O, C, KH, KW), bias ``b`` (O,).

    Zero ``padding`` on each side; the result is (N, O, OH, OW).

    >>> conv2d([[[[1.0, 2.0], [3.0, 4.0]]]], [[[[1.0, 1.0]]]], [0.5])
    ((((3.5,), (7.5,)),),)
    """
    (x, w, b), plain = check_operands("conv2d", x, w, b)
    x_shape, w_shape = operand_shape(x), operand_shape(w)
    _check_conv("conv2d", x_shape, w_shape, b, 2)
    st = _pair(stride, "stride", "conv2d", least=1)
    pad = _pair(padding, "padding", "conv2d", least=0)
    _check_window("conv2d", x_shape, (w_shape[2], w_shape[3]), pad, f"weight of shape {w_shape} has a kernel")
    return plain_result(apply_array_op(CONV2D, x, w, b, stride=_compact(st), padding=_compact(pad)), plain)


@overload
def conv1d(
    x: Array,
    w: Array | Sequence[Any],
    b: Array | Sequence[Any] | None = None,
    stride: int = 1,
    padding: int = 0,
) -> Array: ...
@overload
def conv1d(
    x: Sequence[Any], w: Array, b: Array | Sequence[Any] | None = None, stride: int = 1, padding: int = 0
) -> Array: ...
@overload
def conv1d(x: Sequence[Any], w: Sequence[Any], b: Array, stride: int = 1, padding: int = 0) -> Array: ...
@overload
def conv1d(
    x: Sequence[Any], w: Sequence[Any], b: Sequence[Any] | None = None, stride: int = 1, padding: int = 0
) -> Data: ...
def conv1d(
    x: Array | Sequence[Any],
    w: Array | Sequence[Any],
    b: Array | Sequence[Any] | None = None,
    stride: int = 1,
    padding: int = 0,
) -> Any:  # an Array, or nested tuples
    """``torch.nn.functional.conv1d``: ``x`` (N, C, L), weight ``w`` (O, C, K), bias ``b`` (O,); (N, O, OL).

    >>> conv1d([[[1.0, 2.0, 3.0]]], [[[1.0, -1.0]]])
    (((-1.0, -1.0),),)
    """
    (x, w, b), plain = check_operands("conv1d", x, w, b)
    x_shape, w_shape = operand_shape(x), operand_shape(w)
    _check_conv("conv1d", x_shape, w_shape, b, 1)
    for name, v, least in (("stride", stride, 1), ("padding", padding, 0)):
        if not isinstance(v, int) or isinstance(v, bool):
            raise TypeError(f"conv1d: {name} must be an int, got {v!r}")
        if v < least:
            raise ValueError(f"conv1d: {name} must be at least {least}, got {v!r}")
    _check_window(
        "conv1d",
        (*x_shape[:2], 1, x_shape[2]),
        (1, w_shape[2]),
        (0, padding),
        f"weight of shape {w_shape} has a kernel",
    )
    return plain_result(apply_array_op(CONV1D, x, w, b, stride=stride, padding=padding), plain)


# --- pools ------------------------------------------------------------------------------------


def _max_pool_forward(x: Any, *, kernel_size: Pair, stride: Pair) -> tuple[Data, list[int]]:
    flat, shape, positions = kernels.max_pool2d(_flat(x), shape_of(x), kernel_size, stride)
    return cast(Data, nest(flat, shape)), positions  # each window's first maximum: the residual


def _max_pool_vjp(
    g: Any, value: object, x: Any, *, kernel_size: Pair, stride: Pair, residual: list[int]
) -> tuple[list[float]]:
    return (kernels.max_pool2d_vjp(_flat(g), shape_of(x), residual),)


def _max_pool_jvp(
    value: Data,
    args: tuple[Any],
    tangents: tuple[Any],
    *,
    kernel_size: Pair,
    stride: Pair,
    residual: list[int],
) -> Data:
    (dx,) = tangents
    shape = shape_of(value)
    if dx is None:
        return cast(Data, nest([0.0] * len(flatten(value)), shape))
    tangent = _flat(dx)
    return cast(Data, nest([tangent[p] for p in residual], shape))


def _avg_pool_forward(x: Any, *, kernel_size: Pair, stride: Pair) -> Data:
    flat, shape = kernels.avg_pool2d(_flat(x), shape_of(x), kernel_size, stride)
    return cast(Data, nest(flat, shape))


def _avg_pool_vjp(g: Any, value: object, x: Any, *, kernel_size: Pair, stride: Pair) -> tuple[list[float]]:
    return (kernels.avg_pool2d_vjp(_flat(g), shape_of(x), kernel_size, stride),)


def _avg_pool_jvp(
    value: Data, args: tuple[Any], tangents: tuple[Any], *, kernel_size: Pair, stride: Pair
) -> Data:
    (dx,) = tangents
    if dx is None:
        return cast(Data, nest([0.0] * len(flatten(value)), shape_of(value)))
    return _avg_pool_forward(dx, kernel_size=kernel_size, stride=stride)


MAX_POOL2D = array_op("max_pool2d", _max_pool_forward, _max_pool_vjp, _max_pool_jvp, residual=True)
AVG_POOL2D = array_op("avg_pool2d", _avg_pool_forward, _avg_pool_vjp, _avg_pool_jvp)


def _pool(op: str, x: object, kernel_size: Pair, stride: Pair | None) -> tuple[Pair, Pair]:
    shape = operand_shape(x)
    if len(shape) != 4:
        raise ValueError(f"{op}: x must be (N, C, H, W), got shape {shape}")
    kernel = _pair(kernel_size, "kernel_size", op, least=1)
    st = kernel if stride is None else _pair(stride, "stride", op, least=1)
    _check_window(op, shape, kernel, (0, 0), "kernel_size")
    return _compact(kernel), _compact(st)


@overload
def max_pool2d(x: Array, kernel_size: Pair, stride: Pair | None = None) -> Array: ...
@overload
def max_pool2d(x: Sequence[Any], kernel_size: Pair, stride: Pair | None = None) -> Data: ...
def max_pool2d(
    x: Array | Sequence[Any], kernel_size: Pair, stride: Pair | None = None
) -> Any:  # Array or data
    """``torch.nn.functional.max_pool2d`` on (N, C, H, W) (no padding; ``stride`` defaults to the kernel).

    The gradient goes to each window's first maximal entry (row-major), as PyTorch's does.

    >>> max_pool2d([[[[1.0, 4.0], [4.0, 2.0]]]], 2)
    ((((4.0,),),),)
    """
    (a,), plain = check_operands("max_pool2d", x)
    kernel, st = _pool("max_pool2d", a, kernel_size, stride)
    return plain_result(apply_array_op(MAX_POOL2D, a, kernel_size=kernel, stride=st), plain)


@overload
def avg_pool2d(x: Array, kernel_size: Pair, stride: Pair | None = None) -> Array: ...
@overload
def avg_pool2d(x: Sequence[Any], kernel_size: Pair, stride: Pair | None = None) -> Data: ...
def avg_pool2d(
    x: Array | Sequence[Any], kernel_size: Pair, stride: Pair | None = None
) -> Any:  # Array or data
    """``torch.nn.functional.avg_pool2d`` on (N, C, H, W) (no padding; ``stride`` defaults to the kernel).

    >>> avg_pool2d([[[[1.0, 2.0], [3.0, 6.0]]]], 2)
    ((((3.0,),),),)
    """
    (a,), plain = check_operands("avg_pool2d", x)
    kernel, st = _pool("avg_pool2d", a, kernel_size, stride)
    return plain_result(apply_array_op(AVG_POOL2D, a, kernel_size=kernel, stride=st), plain)
