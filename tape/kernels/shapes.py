"""Shapes of flat row-major arrays: sizes, strides, NumPy broadcasting, axes, reshape, transpose.

An N-d array is its data (a flat sequence of floats, last axis fastest) plus a shape
(a tuple of non-negative ints); ``()`` is a 0-d array of one float. Every error names
the op that was called, the argument and the shapes involved.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache
from math import prod
from operator import itemgetter
from typing import cast

Shape = tuple[int, ...]
"""The extents of an array's axes, outermost first."""

Data = Sequence[float]
"""An array's entries, row-major (last axis fastest)."""

Axis = int | tuple[int, ...] | None
"""An axis argument as NumPy takes it: one axis, several, or ``None`` for all."""


def size(shape: Shape) -> int:
    """The number of entries of an array of ``shape``.

    >>> size((2, 3)), size(())
    (6, 1)
    """
    return prod(shape)


def check_shape(shape: Shape, *, op: str, name: str = "shape") -> None:
    """Raise ``TypeError``/``ValueError`` unless ``shape`` is a tuple of non-negative ints."""
    if not isinstance(shape, tuple) or not all(isinstance(n, int) and not isinstance(n, bool) for n in shape):
        raise TypeError(f"{op}: {name} must be a tuple of ints, got {shape!r}")
    if any(n < 0 for n in shape):
        raise ValueError(f"{op}: {name} {shape} has a negative extent")


def check_data(data: Data, shape: Shape, *, op: str, name: str = "x") -> None:
    """Raise ``ValueError`` unless ``data`` holds exactly ``size(shape)`` entries."""
    check_shape(shape, op=op, name=f"the shape of {name}")
    if len(data) != size(shape):
        raise ValueError(f"{op}: {name} has {len(data)} entries but its shape {shape} needs {size(shape)}")


def strides(shape: Shape) -> Shape:
    """The step, in entries, between neighbours along each axis of a row-major ``shape``.

    >>> strides((2, 3, 4))
    (12, 4, 1)
    """
    out = [1] * len(shape)
    step = 1
    for i in range(len(shape) - 1, -1, -1):
        out[i] = step
        step *= shape[i]
    return tuple(out)


def index_grid(extents: Shape, steps: Shape, offset: int = 0) -> list[int]:
    """The flat positions ``offset + sum(i_k * steps[k])`` for every index of ``extents``, row-major.

    With ``steps`` a permutation of an array's strides this reads it transposed; with a
    step of 0 an axis repeats (broadcasting).

    >>> index_grid((2, 3), (1, 2))
    [0, 2, 4, 1, 3, 5]
    """
    positions = [offset]
    for n, step in zip(extents, steps, strict=True):
        positions = [p + k * step for p in positions for k in range(n)] if n != 1 else positions
        if n == 0:
            return []
    return positions


CACHED_GATHER = 1 << 16
"""Layouts of at most this many entries keep their positions and reader (see :func:`gather`)."""


@lru_cache(maxsize=128)
def _positions(extents: Shape, steps: Shape, offset: int) -> tuple[int, ...]:
    return tuple(index_grid(extents, steps, offset))


def grid_positions(extents: Shape, steps: Shape, offset: int = 0) -> Sequence[int]:
    """:func:`index_grid`, kept for a layout read again (up to :data:`CACHED_GATHER` entries)."""
    if prod(extents) > CACHED_GATHER:
        return index_grid(extents, steps, offset)
    return _positions(tuple(extents), tuple(steps), offset)


@lru_cache(maxsize=128)
def _reader(extents: Shape, steps: Shape, offset: int) -> Callable[[Data], Sequence[float]]:
    positions = _positions(extents, steps, offset)
    if len(positions) == 1:
        (only,) = positions
        return lambda data: (data[only],)
    return cast("Callable[[Data], Sequence[float]]", itemgetter(*positions))


def gather(data: Data, extents: Shape, steps: Shape, offset: int = 0) -> list[float]:
    """``data`` read at :func:`index_grid` ``(extents, steps, offset)``, row-major, as a new list.

    The positions of a layout read again (a transpose in every training step) are kept
    as one ``operator.itemgetter``, so the read runs in C.

    >>> gather([1.0, 2.0, 3.0, 4.0, 5.0, 6.0], (3, 2), (1, 3))
    [1.0, 4.0, 2.0, 5.0, 3.0, 6.0]
    """
    n = prod(extents)
    if n == 0:
        return []
    if n > CACHED_GATHER:
        return [data[i] for i in index_grid(extents, steps, offset)]
    return list(_reader(tuple(extents), tuple(steps), offset)(data))


def broadcast_shapes(a: Shape, b: Shape, *, op: str) -> Shape:
    """The shape NumPy broadcasts ``a`` and ``b`` to: align on the right, 1 stretches.

    >>> broadcast_shapes((2, 1, 3), (4, 1), op="add")
    (2, 4, 3)
    >>> broadcast_shapes((2, 3), (4,), op="add")
    Traceback (most recent call last):
    ...
    ValueError: add: shapes (2, 3) and (4,) do not broadcast
    """
    if a == b:
        return a
    n = max(len(a), len(b))
    pa = (1,) * (n - len(a)) + a
    pb = (1,) * (n - len(b)) + b
    out = []
    for x, y in zip(pa, pb, strict=True):
        if x == y or y == 1:
            out.append(x)
        elif x == 1:
            out.append(y)
        else:
            raise ValueError(f"{op}: shapes {a} and {b} do not broadcast")
    return tuple(out)


def normalize_axis(axis: int, shape: Shape, *, op: str) -> int:
    """``axis`` as a non-negative index into ``shape`` (``-1`` is the last axis).

    >>> normalize_axis(-1, (2, 3), op="softmax")
    1
    """
    if not isinstance(axis, int) or isinstance(axis, bool):
        raise TypeError(f"{op}: axis must be an int, got {axis!r}")
    if not -len(shape) <= axis < len(shape):
        raise ValueError(f"{op}: axis {axis} is out of range for shape {shape} ({len(shape)} axes)")
    return axis % len(shape)


def normalize_axes(axis: Axis, shape: Shape, *, op: str) -> Shape:
    """``axis`` (``None`` for all, an int, or a tuple) as sorted non-negative axes of ``shape``.

    >>> normalize_axes((-1, 0), (2, 3, 4), op="sum")
    (0, 2)
    """
    if axis is None:
        return tuple(range(len(shape)))
    axes = (axis,) if isinstance(axis, int) else axis
    if not isinstance(axes, tuple):
        raise TypeError(f"{op}: axis must be None, an int or a tuple of ints, got {axis!r}")
    out = tuple(normalize_axis(a, shape, op=op) for a in axes)
    if len(set(out)) != len(out):
        raise ValueError(f"{op}: axis {axis} repeats an axis of shape {shape}")
    return tuple(sorted(out))


def reshape(shape: Shape, new_shape: Shape, *, op: str = "reshape") -> Shape:
    """``new_shape`` with one ``-1`` filled in, checked to hold as many entries as ``shape``.

    The data of a row-major array is unchanged by a reshape: only its shape is new.

    >>> reshape((2, 3), (3, -1))
    (3, 2)
    """
    check_shape(tuple(n for n in new_shape if n != -1), op=op, name="new shape")
    unknown = [i for i, n in enumerate(new_shape) if n == -1]
    if len(unknown) > 1:
        raise ValueError(f"{op}: new shape {new_shape} has more than one -1")
    known = prod(n for n in new_shape if n != -1)
    if unknown:
        if known == 0 or size(shape) % known:
            raise ValueError(f"{op}: cannot reshape shape {shape} into {new_shape}")
        i = unknown[0]
        new_shape = (*new_shape[:i], size(shape) // known, *new_shape[i + 1 :])
    if size(new_shape) != size(shape):
        raise ValueError(
            f"{op}: cannot reshape shape {shape} ({size(shape)} entries) into {new_shape} "
            f"({size(new_shape)} entries)"
        )
    return new_shape


def normalize_permutation(axes: Sequence[int] | None, shape: Shape, *, op: str = "transpose") -> Shape:
    """``axes`` as a permutation of ``range(len(shape))`` (``None`` reverses them)."""
    if axes is None:
        return tuple(range(len(shape) - 1, -1, -1))
    perm = tuple(normalize_axis(a, shape, op=op) for a in axes)
    if sorted(perm) != list(range(len(shape))):
        raise ValueError(f"{op}: axes {tuple(axes)} are not a permutation of the axes of shape {shape}")
    return perm


def inverse_permutation(perm: Sequence[int]) -> Shape:
    """The permutation that undoes ``perm``: the axes a transpose's vjp transposes by.

    >>> inverse_permutation((2, 0, 1))
    (1, 2, 0)
    """
    out = [0] * len(perm)
    for i, p in enumerate(perm):
        out[p] = i
    return tuple(out)


def transpose(data: Data, shape: Shape, axes: Sequence[int] | None = None) -> tuple[list[float], Shape]:
    """Permute the axes of an array (``numpy.transpose``): axis ``i`` of the result is ``axes[i]``.

    >>> transpose([1.0, 2.0, 3.0, 4.0, 5.0, 6.0], (2, 3))
    ([1.0, 4.0, 2.0, 5.0, 3.0, 6.0], (3, 2))
    """
    check_data(data, shape, op="transpose")
    perm = normalize_permutation(axes, shape)
    new_shape = tuple(shape[p] for p in perm)
    if perm == tuple(range(len(shape))):
        return list(data), new_shape
    steps = strides(shape)
    return gather(data, new_shape, tuple(steps[p] for p in perm)), new_shape
