"""Reductions over axes (sum, mean, max, min) with ``keepdims``, and their vjps.

``max_axes``/``min_axes`` also return, for each output entry, the flat position in the
input of the FIRST extremal entry it came from (as ``torch.max(dim)`` picks): that is
where the gradient goes. A ``nan`` in a reduced group makes that output ``nan``.
"""

from __future__ import annotations

from tape.kernels.broadcast import broadcast_to, sum_to_shape
from tape.kernels.shapes import Axis, Data, Shape, check_data, index_grid, normalize_axes, size, strides


def reduced_shape(shape: Shape, axis: Axis, *, keepdims: bool, op: str) -> tuple[Shape, Shape]:
    """The shape a reduction over ``axis`` gives, and the same with the reduced axes kept as 1s.

    >>> reduced_shape((2, 3, 4), -1, keepdims=False, op="sum")
    ((2, 3), (2, 3, 1))
    """
    axes = normalize_axes(axis, shape, op=op)
    kept = tuple(1 if i in axes else n for i, n in enumerate(shape))
    dropped = tuple(n for i, n in enumerate(shape) if i not in axes)
    return (kept if keepdims else dropped), kept


def sum_axes(
    data: Data, shape: Shape, axis: Axis = None, *, keepdims: bool = False
) -> tuple[list[float], Shape]:
    """The sum over ``axis`` (``numpy.sum``); the result and its shape.

    >>> sum_axes([1.0, 2.0, 3.0, 4.0, 5.0, 6.0], (2, 3), axis=0)
    ([5.0, 7.0, 9.0], (3,))
    """
    check_data(data, shape, op="sum")
    out_shape, kept = reduced_shape(shape, axis, keepdims=keepdims, op="sum")
    return sum_to_shape(data, shape, kept, op="sum"), out_shape


def sum_axes_vjp(grad: Data, shape: Shape, axis: Axis = None, *, keepdims: bool = False) -> list[float]:
    """The gradient of ``sum_axes`` for an input of ``shape``: ``grad`` copied along the summed axes."""
    out_shape, kept = reduced_shape(shape, axis, keepdims=keepdims, op="sum")
    check_data(grad, out_shape, op="sum", name="grad")
    return broadcast_to(grad, kept, shape, op="sum")


def mean_axes(
    data: Data, shape: Shape, axis: Axis = None, *, keepdims: bool = False
) -> tuple[list[float], Shape]:
    """The mean over ``axis`` (``numpy.mean``; ``nan`` over an empty group).

    >>> mean_axes([1.0, 2.0, 3.0, 4.0], (2, 2), axis=1)
    ([1.5, 3.5], (2,))
    """
    totals, out_shape = sum_axes(data, shape, axis, keepdims=keepdims)
    count = size(shape) // size(out_shape) if size(out_shape) else 0
    if count == 0:
        return [float("nan")] * len(totals), out_shape
    return [t / count for t in totals], out_shape


def mean_axes_vjp(grad: Data, shape: Shape, axis: Axis = None, *, keepdims: bool = False) -> list[float]:
    """The gradient of ``mean_axes``: ``grad / count`` copied along the averaged axes."""
    spread = sum_axes_vjp(grad, shape, axis, keepdims=keepdims)
    count = size(shape) // max(len(grad), 1)
    return [g / count for g in spread] if count else spread


def _extremum(
    data: Data, shape: Shape, axis: Axis, keepdims: bool, *, largest: bool, op: str
) -> tuple[list[float], Shape, list[int]]:
    check_data(data, shape, op=op)
    out_shape, kept = reduced_shape(shape, axis, keepdims=keepdims, op=op)
    if size(shape) == 0:
        if size(out_shape) == 0:
            return [], out_shape, []
        raise ValueError(f"{op}: cannot reduce shape {shape} over axis {axis}: the reduced group is empty")
    axes = [i for i, k in enumerate(kept) if k == 1 and shape[i] != 1]
    order = [i for i in range(len(shape)) if i not in axes] + axes
    steps = strides(shape)
    positions = index_grid(tuple(shape[i] for i in order), tuple(steps[i] for i in order))
    r = size(shape) // size(out_shape)
    values = [data[i] for i in positions]
    pick = max if largest else min
    out: list[float] = []
    where: list[int] = []
    for j in range(0, len(values), r):
        group = values[j : j + r]
        best = pick(group)
        total = sum(group)
        if total != total:  # a nan (or inf - inf): find a nan, which wins as in NumPy
            nans = [k for k, v in enumerate(group) if v != v]
            if nans:
                out.append(group[nans[0]])
                where.append(positions[j + nans[0]])
                continue
        out.append(best)
        where.append(positions[j + group.index(best)])
    return out, out_shape, where


def max_axes(
    data: Data, shape: Shape, axis: Axis = None, *, keepdims: bool = False
) -> tuple[list[float], Shape, list[int]]:
    """The maximum over ``axis``, its shape, and the input position of each first maximum.

    >>> max_axes([1.0, 3.0, 3.0, 0.0], (2, 2), axis=1)
    ([3.0, 3.0], (2,), [1, 2])
    """
    return _extremum(data, shape, axis, keepdims, largest=True, op="max")


def min_axes(
    data: Data, shape: Shape, axis: Axis = None, *, keepdims: bool = False
) -> tuple[list[float], Shape, list[int]]:
    """The minimum over ``axis``, its shape, and the input position of each first minimum.

    >>> min_axes([1.0, 3.0, 0.0, 0.0], (2, 2), axis=0)
    ([0.0, 0.0], (2,), [2, 3])
    """
    return _extremum(data, shape, axis, keepdims, largest=False, op="min")


def scatter_vjp(grad: Data, positions: list[int], input_size: int) -> list[float]:
    """The gradient of a max/min/max-pool: each ``grad[j]`` added at input ``positions[j]``.

    >>> scatter_vjp([5.0, 7.0], [1, 1], 3)
    [0.0, 12.0, 0.0]
    """
    if len(grad) != len(positions):
        raise ValueError(f"scatter_vjp: {len(grad)} gradient entries but {len(positions)} positions")
    out = [0.0] * input_size
    for p, g in zip(positions, grad, strict=True):
        out[p] += g
    return out
