"""Gathering and assembling arrays: take (an embedding lookup), concatenate/stack, pad, where; with vjps.

Each works on contiguous blocks: for an axis ``k`` of ``shape``, the data is
``prod(shape[:k])`` outer blocks, each ``shape[k]`` slices of ``prod(shape[k+1:])`` entries.
"""

from __future__ import annotations

from collections.abc import Sequence
from operator import add

from tape.kernels.broadcast import broadcast_to, sum_to_shape
from tape.kernels.shapes import Data, Shape, broadcast_shapes, check_data, normalize_axis, size


def _blocks(shape: Shape, axis: int) -> tuple[int, int, int]:
    """(outer count, extent along ``axis``, inner block length)."""
    return size(shape[:axis]), shape[axis], size(shape[axis + 1 :])


def _indices(indices: Sequence[int], n: int, shape: Shape, axis: int, op: str) -> list[int]:
    out = []
    for i in indices:
        if not isinstance(i, int) or isinstance(i, bool):
            raise TypeError(f"{op}: indices must be ints, got {i!r}")
        if not -n <= i < n:
            raise ValueError(f"{op}: index {i} is out of range for axis {axis} of shape {shape} (size {n})")
        out.append(i % n)
    return out


def take(
    data: Data, shape: Shape, indices: Sequence[int], axis: int = 0, indices_shape: Shape | None = None
) -> tuple[list[float], Shape]:
    """``numpy.take(data, indices, axis)``: the slices at ``indices`` along ``axis``; result and shape.

    ``indices_shape`` (default ``(len(indices),)``) replaces ``axis`` in the result's
    shape; negative indices count from the end.

    >>> take([1.0, 2.0, 3.0, 4.0, 5.0, 6.0], (3, 2), [2, 0, 2])
    ([5.0, 6.0, 1.0, 2.0, 5.0, 6.0], (3, 2))
    """
    check_data(data, shape, op="take")
    ax = normalize_axis(axis, shape, op="take")
    outer, n, inner = _blocks(shape, ax)
    idx = _indices(indices, n, shape, ax, "take")
    index_shape = (len(idx),) if indices_shape is None else indices_shape
    if size(index_shape) != len(idx):
        raise ValueError(f"take: {len(idx)} indices do not fill indices_shape {index_shape}")
    out: list[float] = []
    for o in range(outer):
        base = o * n * inner
        for i in idx:
            out.extend(data[base + i * inner : base + (i + 1) * inner])
    return out, (*shape[:ax], *index_shape, *shape[ax + 1 :])


def take_vjp(grad: Data, shape: Shape, indices: Sequence[int], axis: int = 0) -> list[float]:
    """The gradient of ``take`` for its input of ``shape``: each slice of ``grad`` added back at its index.

    Repeated indices accumulate (the gradient of an embedding lookup).

    >>> take_vjp([1.0, 1.0, 2.0, 2.0, 3.0, 3.0], (3, 2), [2, 0, 2])
    [2.0, 2.0, 0.0, 0.0, 4.0, 4.0]
    """
    ax = normalize_axis(axis, shape, op="take")
    outer, n, inner = _blocks(shape, ax)
    idx = _indices(indices, n, shape, ax, "take")
    if len(grad) != outer * len(idx) * inner:
        raise ValueError(f"take: grad has {len(grad)} entries but {outer * len(idx) * inner} were taken")
    out = [0.0] * size(shape)
    j = 0
    for o in range(outer):
        base = o * n * inner
        for i in idx:
            s = slice(base + i * inner, base + (i + 1) * inner)
            out[s] = list(map(add, out[s], grad[j : j + inner]))
            j += inner
    return out


def concatenate(arrays: Sequence[tuple[Data, Shape]], axis: int = 0) -> tuple[list[float], Shape]:
    """``numpy.concatenate`` of ``(data, shape)`` pairs along ``axis``; the result and its shape.

    >>> concatenate([([1.0, 2.0], (2, 1)), ([3.0, 4.0], (2, 1))], axis=1)
    ([1.0, 3.0, 2.0, 4.0], (2, 2))
    """
    if not arrays:
        raise ValueError("concatenate: needs at least one array")
    first = arrays[0][1]
    ax = normalize_axis(axis, first, op="concatenate")
    for k, (d, s) in enumerate(arrays):
        check_data(d, s, op="concatenate", name=f"array {k}")
        if len(s) != len(first) or s[:ax] + s[ax + 1 :] != first[:ax] + first[ax + 1 :]:
            raise ValueError(
                f"concatenate: array {k} has shape {s} but array 0 has {first}: only axis {ax} may differ"
            )
    outer, inner = size(first[:ax]), size(first[ax + 1 :])
    out: list[float] = []
    for o in range(outer):
        for d, s in arrays:
            chunk = s[ax] * inner
            out.extend(d[o * chunk : (o + 1) * chunk])
    return out, (*first[:ax], sum(s[ax] for _, s in arrays), *first[ax + 1 :])


def concatenate_vjp(grad: Data, shapes: Sequence[Shape], axis: int = 0) -> list[list[float]]:
    """The gradient of ``concatenate`` for each input of ``shapes``: ``grad`` split back along ``axis``."""
    first = shapes[0]
    ax = normalize_axis(axis, first, op="concatenate")
    outer, inner = size(first[:ax]), size(first[ax + 1 :])
    total = sum(s[ax] for s in shapes)
    check_data(grad, (*first[:ax], total, *first[ax + 1 :]), op="concatenate", name="grad")
    parts: list[list[float]] = [[] for _ in shapes]
    j = 0
    for _ in range(outer):
        for part, s in zip(parts, shapes, strict=True):
            chunk = s[ax] * inner
            part.extend(grad[j : j + chunk])
            j += chunk
    return parts


def _stacked(shape: Shape, axis: int) -> tuple[int, Shape]:
    ax = normalize_axis(axis, (*shape, 1), op="stack")
    return ax, (*shape[:ax], 1, *shape[ax:])


def stack(arrays: Sequence[tuple[Data, Shape]], axis: int = 0) -> tuple[list[float], Shape]:
    """``numpy.stack``: arrays of one shape joined along a new ``axis``.

    >>> stack([([1.0, 2.0], (2,)), ([3.0, 4.0], (2,))], axis=1)
    ([1.0, 3.0, 2.0, 4.0], (2, 2))
    """
    if not arrays:
        raise ValueError("stack: needs at least one array")
    first = arrays[0][1]
    for k, (_, s) in enumerate(arrays):
        if s != first:
            raise ValueError(f"stack: array {k} has shape {s} but array 0 has {first}; all must match")
    ax, expanded = _stacked(first, axis)
    return concatenate([(d, expanded) for d, _ in arrays], ax)


def stack_vjp(grad: Data, shape: Shape, count: int, axis: int = 0) -> list[list[float]]:
    """The gradient of ``stack`` of ``count`` arrays of ``shape``: one slice of ``grad`` each."""
    ax, expanded = _stacked(shape, axis)
    return concatenate_vjp(grad, [expanded] * count, ax)


def _check_widths(shape: Shape, widths: Sequence[tuple[int, int]]) -> None:
    if len(widths) != len(shape):
        raise ValueError(f"pad: {len(widths)} (before, after) pairs for shape {shape} of {len(shape)} axes")
    for k, (lo, hi) in enumerate(widths):
        if lo < 0 or hi < 0:
            raise ValueError(f"pad: axis {k} of shape {shape} has a negative width {(lo, hi)}")


def pad(data: Data, shape: Shape, widths: Sequence[tuple[int, int]]) -> tuple[list[float], Shape]:
    """``numpy.pad`` with zeros: ``widths[k] = (before, after)`` entries added along axis ``k``.

    >>> pad([1.0, 2.0], (1, 2), [(0, 1), (1, 0)])
    ([0.0, 1.0, 2.0, 0.0, 0.0, 0.0], (2, 3))
    """
    check_data(data, shape, op="pad")
    _check_widths(shape, widths)
    out = list(data)
    current = shape
    for k in range(len(shape) - 1, -1, -1):
        lo, hi = widths[k]
        if lo == 0 and hi == 0:
            continue
        outer, n, inner = _blocks(current, k)
        before, after = [0.0] * (lo * inner), [0.0] * (hi * inner)
        grown: list[float] = []
        for o in range(outer):
            grown.extend(before)
            grown.extend(out[o * n * inner : (o + 1) * n * inner])
            grown.extend(after)
        out = grown
        current = (*current[:k], n + lo + hi, *current[k + 1 :])
    return out, current


def pad_vjp(grad: Data, shape: Shape, widths: Sequence[tuple[int, int]]) -> list[float]:
    """The gradient of ``pad`` for its input of ``shape``: the interior of ``grad``."""
    _check_widths(shape, widths)
    current = tuple(n + lo + hi for n, (lo, hi) in zip(shape, widths, strict=True))
    check_data(grad, current, op="pad", name="grad")
    out = list(grad)
    for k in range(len(shape)):
        lo, hi = widths[k]
        if lo == 0 and hi == 0:
            continue
        outer, n, inner = _blocks(current, k)
        kept = n - lo - hi
        cropped: list[float] = []
        for o in range(outer):
            start = (o * n + lo) * inner
            cropped.extend(out[start : start + kept * inner])
        out = cropped
        current = (*current[:k], kept, *current[k + 1 :])
    return out


def where(
    mask: Sequence[bool] | Data, mask_shape: Shape, x: Data, x_shape: Shape, y: Data, y_shape: Shape
) -> tuple[list[float], Shape]:
    """``numpy.where(mask, x, y)`` with all three broadcast (a nonzero mask entry picks ``x``).

    >>> where([True, False], (2,), [1.0, 2.0], (2,), [9.0], ())
    ([1.0, 9.0], (2,))
    """
    out_shape = broadcast_shapes(broadcast_shapes(mask_shape, x_shape, op="where"), y_shape, op="where")
    m = broadcast_to([float(bool(v)) for v in mask], mask_shape, out_shape, op="where")
    xs = broadcast_to(x, x_shape, out_shape, op="where")
    ys = broadcast_to(y, y_shape, out_shape, op="where")
    return [a if c else b for c, a, b in zip(m, xs, ys, strict=True)], out_shape


def where_vjp(
    grad: Data, mask: Sequence[bool] | Data, mask_shape: Shape, x_shape: Shape, y_shape: Shape
) -> tuple[list[float], list[float]]:
    """The gradients of ``where`` for ``x`` and ``y``: ``grad`` where each was picked, summed to its shape."""
    out_shape = broadcast_shapes(broadcast_shapes(mask_shape, x_shape, op="where"), y_shape, op="where")
    check_data(grad, out_shape, op="where", name="grad")
    m = broadcast_to([float(bool(v)) for v in mask], mask_shape, out_shape, op="where")
    gx = [g if c else 0.0 for c, g in zip(m, grad, strict=True)]
    gy = [0.0 if c else g for c, g in zip(m, grad, strict=True)]
    return sum_to_shape(gx, out_shape, x_shape, op="where"), sum_to_shape(gy, out_shape, y_shape, op="where")
