"""Elementwise binary ops with NumPy broadcasting, and the summation a broadcast's vjp needs.

The common cases take one ``map`` over the data: equal shapes, a one-entry operand, and
an operand whose shape is a trailing part of the other's (a bias added to every row).
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import repeat

from tape.kernels.shapes import Data, Shape, broadcast_shapes, check_data, gather, index_grid, size, strides


def _suffix_of(small: Shape, big: Shape) -> bool:
    """Whether ``small`` without its leading 1s is a trailing part of ``big`` (no stretching inside)."""
    core = small
    while core and core[0] == 1:
        core = core[1:]
    return len(small) <= len(big) and (not core or big[len(big) - len(core) :] == core)


def _broadcasts_to(shape: Shape, target: Shape) -> bool:
    """Whether ``shape`` stretches to ``target`` (NumPy's rules, one way only)."""
    return len(shape) <= len(target) and all(
        n in (1, t) for n, t in zip(shape, target[len(target) - len(shape) :], strict=True)
    )


def broadcast_to(data: Data, shape: Shape, out_shape: Shape, *, op: str = "broadcast_to") -> list[float]:
    """The data of ``data`` (of ``shape``) stretched to ``out_shape`` by NumPy's rules.

    >>> broadcast_to([1.0, 2.0], (2, 1), (2, 3))
    [1.0, 1.0, 1.0, 2.0, 2.0, 2.0]
    """
    check_data(data, shape, op=op)
    if not _broadcasts_to(shape, out_shape):
        raise ValueError(f"{op}: shape {shape} does not broadcast to {out_shape}")
    if shape == out_shape:
        return list(data)
    if len(data) == 1:
        return [data[0]] * size(out_shape)
    if _suffix_of(shape, out_shape):
        return list(data) * (size(out_shape) // len(data)) if data else []
    padded = (1,) * (len(out_shape) - len(shape)) + shape
    steps = tuple(0 if n == 1 else s for n, s in zip(padded, strides(padded), strict=True))
    return gather(data, out_shape, steps)


def binary(
    f: Callable[[float, float], float],
    a: Data,
    a_shape: Shape,
    b: Data,
    b_shape: Shape,
    *,
    op: str = "binary",
) -> tuple[list[float], Shape]:
    """``f`` applied entrywise to ``a`` and ``b`` broadcast together; the result and its shape.

    >>> from operator import add
    >>> binary(add, [1.0, 2.0, 3.0, 4.0], (2, 2), [10.0, 20.0], (2,), op="add")
    ([11.0, 22.0, 13.0, 24.0], (2, 2))
    """
    check_data(a, a_shape, op=op, name="a")
    check_data(b, b_shape, op=op, name="b")
    out_shape = broadcast_shapes(a_shape, b_shape, op=op)
    if a_shape == b_shape:
        return list(map(f, a, b)), out_shape
    n = size(out_shape)
    if len(b) == 1 and len(a) == n:
        return list(map(f, a, repeat(b[0]))), out_shape
    if len(a) == 1 and len(b) == n:
        return list(map(f, repeat(a[0]), b)), out_shape
    if len(a) == n and _suffix_of(b_shape, a_shape):
        return list(map(f, a, list(b) * (n // len(b)) if b else [])), out_shape
    if len(b) == n and _suffix_of(a_shape, b_shape):
        return list(map(f, list(a) * (n // len(a)) if a else [], b)), out_shape
    wide_a = broadcast_to(a, a_shape, out_shape, op=op)
    wide_b = broadcast_to(b, b_shape, out_shape, op=op)
    return list(map(f, wide_a, wide_b)), out_shape


def sum_to_shape(grad: Data, grad_shape: Shape, shape: Shape, *, op: str = "sum_to_shape") -> list[float]:
    """Sum ``grad`` over the axes along which ``shape`` was broadcast to ``grad_shape``.

    This is the vjp of ``broadcast_to(x, shape, grad_shape)``: leading axes that
    broadcasting added are summed away, and axes where ``shape`` has a 1 are summed
    with the 1 kept.

    >>> sum_to_shape([1.0, 2.0, 3.0, 4.0, 5.0, 6.0], (2, 3), (3,))
    [5.0, 7.0, 9.0]
    >>> sum_to_shape([1.0, 2.0, 3.0, 4.0, 5.0, 6.0], (2, 3), (2, 1))
    [6.0, 15.0]
    """
    check_data(grad, grad_shape, op=op, name="grad")
    if not _broadcasts_to(shape, grad_shape):
        raise ValueError(f"{op}: shape {shape} does not broadcast to the gradient's shape {grad_shape}")
    if shape == grad_shape:
        return list(grad)
    m = size(shape)
    if m == 1:
        return [sum(grad)] if grad else [0.0]
    if not grad:
        return [0.0] * m
    if _suffix_of(shape, grad_shape):
        return [sum(grad[j::m]) for j in range(m)]
    padded = (1,) * (len(grad_shape) - len(shape)) + shape
    kept = [i for i, n in enumerate(padded) if n == grad_shape[i]]
    summed = [i for i, n in enumerate(padded) if n != grad_shape[i]]
    steps = strides(grad_shape)
    order = kept + summed
    positions = index_grid(tuple(grad_shape[i] for i in order), tuple(steps[i] for i in order))
    r = len(grad) // m
    values = [grad[i] for i in positions]
    return [sum(values[j : j + r]) for j in range(0, len(values), r)]
