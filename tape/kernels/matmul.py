"""Matrix products with ``numpy.matmul`` semantics on flat data, and their vjp.

A 1-d ``a`` is a row (its axis removed from the result), a 1-d ``b`` a column; more
than two axes are stacks of matrices whose batch axes broadcast. The inner loops are
``sum(map(mul, row, col))`` over rows and columns sliced once.
"""

from __future__ import annotations

from operator import mul

from tape.kernels.broadcast import broadcast_to, sum_to_shape
from tape.kernels.shapes import Data, Shape, broadcast_shapes, check_data, size


def rows_dot_rows(x: Data, y: Data, n: int, m: int, k: int) -> list[float]:
    """``x @ y.T`` for ``x`` of shape ``(n, k)`` and ``y`` of ``(m, k)``: an ``(n, m)`` result.

    >>> rows_dot_rows([1.0, 2.0], [3.0, 4.0, 5.0, 6.0], 1, 2, 2)
    [11.0, 17.0]
    """
    xs = [x[i * k : (i + 1) * k] for i in range(n)]
    ys = [y[j * k : (j + 1) * k] for j in range(m)]
    return [sum(map(mul, r, c)) for r in xs for c in ys]


def _columns(x: Data, n: int, m: int) -> list[float]:
    """The ``(m, n)`` transpose of an ``(n, m)`` matrix."""
    out: list[float] = []
    for j in range(m):
        out.extend(x[j::m])
    return out


def _plan(a_shape: Shape, b_shape: Shape) -> tuple[Shape, Shape, Shape, Shape]:
    """The operands' shapes promoted to stacks of matrices, the batch shape, and the result's shape."""
    for name, shape in (("a", a_shape), ("b", b_shape)):
        if len(shape) == 0:
            raise ValueError(f"matmul: {name} is 0-d (shape ()); each operand needs at least 1 axis")
    a2 = (1, *a_shape) if len(a_shape) == 1 else a_shape
    b2 = (*b_shape, 1) if len(b_shape) == 1 else b_shape
    if a2[-1] != b2[-2]:
        raise ValueError(
            f"matmul: shapes {a_shape} and {b_shape}: a has {a2[-1]} columns but b has {b2[-2]} rows"
        )
    try:
        batch = broadcast_shapes(a2[:-2], b2[:-2], op="matmul")
    except ValueError:
        raise ValueError(
            f"matmul: the batch axes of shapes {a_shape} and {b_shape} do not broadcast"
        ) from None
    out = (*batch, *((a2[-2],) if len(a_shape) > 1 else ()), *((b2[-1],) if len(b_shape) > 1 else ()))
    return a2, b2, batch, out


def matmul(a: Data, a_shape: Shape, b: Data, b_shape: Shape) -> tuple[list[float], Shape]:
    """``numpy.matmul(a, b)``: the product and its shape.

    >>> matmul([1.0, 2.0, 3.0, 4.0], (2, 2), [1.0, 1.0], (2,))
    ([3.0, 7.0], (2,))
    """
    check_data(a, a_shape, op="matmul", name="a")
    check_data(b, b_shape, op="matmul", name="b")
    a2, b2, batch, out_shape = _plan(a_shape, b_shape)
    n, k, m = a2[-2], a2[-1], b2[-1]
    wide_a = broadcast_to(a, a2, (*batch, n, k), op="matmul")
    wide_b = broadcast_to(b, b2, (*batch, k, m), op="matmul")
    out: list[float] = []
    for i in range(size(batch)):
        bt = _columns(wide_b[i * k * m : (i + 1) * k * m], k, m)
        out.extend(rows_dot_rows(wide_a[i * n * k : (i + 1) * n * k], bt, n, m, k))
    return out, out_shape


def matmul_vjp(
    grad: Data, a: Data, a_shape: Shape, b: Data, b_shape: Shape
) -> tuple[list[float], list[float]]:
    """The gradients of ``matmul`` for ``a`` and ``b``: ``grad @ b.T`` and ``a.T @ grad``.

    Each is summed over the batch axes its operand was broadcast along.

    >>> matmul_vjp([1.0, 1.0], [1.0, 2.0, 3.0, 4.0], (2, 2), [1.0, 1.0], (2,))
    ([1.0, 1.0, 1.0, 1.0], [4.0, 6.0])
    """
    check_data(a, a_shape, op="matmul", name="a")
    check_data(b, b_shape, op="matmul", name="b")
    a2, b2, batch, out_shape = _plan(a_shape, b_shape)
    check_data(grad, out_shape, op="matmul", name="grad")
    n, k, m = a2[-2], a2[-1], b2[-1]
    wide_a = broadcast_to(a, a2, (*batch, n, k), op="matmul")
    wide_b = broadcast_to(b, b2, (*batch, k, m), op="matmul")
    ga: list[float] = []
    gb: list[float] = []
    for i in range(size(batch)):
        g = grad[i * n * m : (i + 1) * n * m]
        ga.extend(rows_dot_rows(g, wide_b[i * k * m : (i + 1) * k * m], n, k, m))
        gb.extend(
            rows_dot_rows(_columns(wide_a[i * n * k : (i + 1) * n * k], n, k), _columns(g, n, m), k, m, n)
        )
    return (
        sum_to_shape(ga, (*batch, n, k), a2, op="matmul"),
        sum_to_shape(gb, (*batch, k, m), b2, op="matmul"),
    )
