"""Softmax, log-softmax and logsumexp over one axis (max-shifted), layer norm over the last, with vjps.

Shifting by each group's maximum keeps ``exp`` in range: logits of ``+-1000`` give the
exact results. The axis is moved last (a transpose when it is not already), each group is
one contiguous row, and the result is moved back.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from operator import mul

from tape.floats import exp, log, sqrt
from tape.kernels.broadcast import broadcast_to
from tape.kernels.reduce import reduced_shape
from tape.kernels.shapes import (
    Data,
    Shape,
    check_data,
    inverse_permutation,
    normalize_axis,
    size,
    transpose,
)

Row = list[float]


def _by_rows(
    op: str, shape: Shape, axis: int, f: Callable[..., Row], *arrays: Data, reduces: bool = False
) -> list[float]:
    """Apply ``f`` to the matching rows (groups along ``axis``) of each of ``arrays``.

    Its rows of results go back in place, or (``reduces``, one result per row) in the
    order of the axes left.
    """
    for a in arrays:
        check_data(a, shape, op=op)
    ax = normalize_axis(axis, shape, op=op)
    n = shape[ax]
    last = ax == len(shape) - 1
    perm = (*(i for i in range(len(shape)) if i != ax), ax)
    moved = [a if last else transpose(a, shape, perm)[0] for a in arrays]
    if n == 0:
        return []
    out: list[float] = []
    for j in range(0, len(moved[0]), n):
        out.extend(f(*(m[j : j + n] for m in moved)))
    if last or reduces:
        return out
    moved_shape = tuple(shape[i] for i in perm)
    return transpose(out, moved_shape, inverse_permutation(perm))[0]


def softmax_row(row: Row) -> Row:
    """The softmax of one row of floats, shifted by its maximum."""
    m = max(row)
    e = list(map(math.exp, [v - m for v in row]))  # shifted entries are <= 0 (or nan): no overflow
    s = sum(e)
    return [v / s for v in e]


def _lse(row: Row) -> float:
    m = max(row)
    if m in (float("inf"), float("-inf")):
        return m
    return m + log(sum(exp(v - m) for v in row))


def softmax(data: Data, shape: Shape, axis: int = -1) -> list[float]:
    """``exp(x) / sum(exp(x))`` along ``axis`` (as ``torch.softmax``).

    >>> softmax([1000.0, 1000.0], (2,))
    [0.5, 0.5]
    """
    return _by_rows("softmax", shape, axis, softmax_row, data)


def softmax_vjp(grad: Data, y: Data, shape: Shape, axis: int = -1) -> list[float]:
    """The gradient of ``softmax`` from its output ``y``: ``y * (grad - sum(grad * y))`` along ``axis``."""

    def row(g: Row, yr: Row) -> Row:
        d = sum(map(mul, g, yr))
        return [yi * (gi - d) for gi, yi in zip(g, yr, strict=True)]

    return _by_rows("softmax", shape, axis, row, grad, y)


def log_softmax(data: Data, shape: Shape, axis: int = -1) -> list[float]:
    """``x - logsumexp(x)`` along ``axis`` (as ``torch.log_softmax``).

    >>> log_softmax([1000.0, -1000.0], (2,))
    [0.0, -2000.0]
    """

    def row(r: Row) -> Row:
        m = max(r)
        if m in (float("inf"), float("-inf")):
            return [v - m for v in r]
        shifted = [v - m for v in r]
        z = log(sum(exp(v) for v in shifted))
        return [v - z for v in shifted]

    return _by_rows("log_softmax", shape, axis, row, data)


def log_softmax_vjp(grad: Data, y: Data, shape: Shape, axis: int = -1) -> list[float]:
    """The gradient of ``log_softmax`` from its output ``y``: ``grad - exp(y) * sum(grad)`` along ``axis``."""

    def row(g: Row, yr: Row) -> Row:
        s = sum(g)
        return [gi - exp(yi) * s for gi, yi in zip(g, yr, strict=True)]

    return _by_rows("log_softmax", shape, axis, row, grad, y)


def logsumexp(
    data: Data, shape: Shape, axis: int = -1, *, keepdims: bool = False
) -> tuple[list[float], Shape]:
    """``log(sum(exp(x)))`` along ``axis``, max-shifted; the result and its shape.

    >>> logsumexp([1000.0, 1000.0], (2,))
    ([1000.6931471805599], ())
    """
    out_shape, _ = reduced_shape(shape, axis, keepdims=keepdims, op="logsumexp")
    if shape[normalize_axis(axis, shape, op="logsumexp")] == 0:
        check_data(data, shape, op="logsumexp")
        return [float("-inf")] * size(out_shape), out_shape
    return _by_rows("logsumexp", shape, axis, lambda r: [_lse(r)], data, reduces=True), out_shape


def logsumexp_vjp(
    grad: Data, x: Data, shape: Shape, axis: int = -1, *, keepdims: bool = False
) -> list[float]:
    """The gradient of ``logsumexp``: ``grad * softmax(x)`` along ``axis``."""
    out_shape, kept = reduced_shape(shape, axis, keepdims=keepdims, op="logsumexp")
    check_data(grad, out_shape, op="logsumexp", name="grad")
    spread = broadcast_to(grad, kept, shape, op="logsumexp")
    return _by_rows("logsumexp", shape, axis, lambda g, r: list(map(mul, g, softmax_row(r))), spread, x)


def _norm_plan(x: Data, shape: Shape, weight: Data | None, bias: Data | None) -> int:
    if not shape:
        raise ValueError("layer_norm: x is 0-d (shape ()); it normalises over the last axis")
    check_data(x, shape, op="layer_norm")
    d = shape[-1]
    for name, p in (("weight", weight), ("bias", bias)):
        if p is not None and len(p) != d:
            raise ValueError(
                f"layer_norm: {name} has {len(p)} entries but the last axis of shape {shape} has {d}"
            )
    return d


def _normalised(row: Row, eps: float) -> tuple[Row, float]:
    n = len(row)
    mu = sum(row) / n
    centred = [v - mu for v in row]
    r = 1.0 / sqrt(sum(map(mul, centred, centred)) / n + eps)
    return [c * r for c in centred], r


def layer_norm(
    x: Data, shape: Shape, weight: Data | None = None, bias: Data | None = None, eps: float = 1e-5
) -> list[float]:
    """``(x - mean) / sqrt(var + eps) * weight + bias`` over the last axis (biased variance, as torch).

    >>> [round(v, 6) for v in layer_norm([1.0, 3.0], (2,))]
    [-0.999995, 0.999995]
    """
    d = _norm_plan(x, shape, weight, bias)
    w = list(weight) if weight is not None else [1.0] * d
    b = list(bias) if bias is not None else [0.0] * d
    out: list[float] = []
    for j in range(0, len(x), d):
        xhat, _ = _normalised(list(x[j : j + d]), eps)
        out.extend([xh * wi + bi for xh, wi, bi in zip(xhat, w, b, strict=True)])
    return out


def layer_norm_vjp(
    grad: Data, x: Data, shape: Shape, weight: Data | None = None, bias: Data | None = None, eps: float = 1e-5
) -> tuple[list[float], list[float] | None, list[float] | None]:
    """The gradients of ``layer_norm`` for ``x``, ``weight`` and ``bias`` (``None`` for an absent one)."""
    d = _norm_plan(x, shape, weight, bias)
    check_data(grad, shape, op="layer_norm", name="grad")
    w = list(weight) if weight is not None else [1.0] * d
    gx: list[float] = []
    gw = [0.0] * d
    gb = [0.0] * d
    for j in range(0, len(x), d):
        xhat, r = _normalised(list(x[j : j + d]), eps)
        g = grad[j : j + d]
        gxhat = list(map(mul, g, w))
        mean_g = sum(gxhat) / d
        mean_gx = sum(map(mul, gxhat, xhat)) / d
        gx.extend([r * (gh - mean_g - xh * mean_gx) for gh, xh in zip(gxhat, xhat, strict=True)])
        gw = [a + gi * xh for a, gi, xh in zip(gw, g, xhat, strict=True)]
        gb = [a + gi for a, gi in zip(gb, g, strict=True)]
    return gx, gw if weight is not None else None, gb if bias is not None else None
