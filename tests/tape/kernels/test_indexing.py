"""take, concatenate/stack, pad and where against NumPy bit for bit; their vjps against differences."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from tape.kernels.indexing import (
    concatenate,
    concatenate_vjp,
    pad,
    pad_vjp,
    stack,
    stack_vjp,
    take,
    take_vjp,
    where,
    where_vjp,
)
from tests.tape.kernels.helpers import arr, broadcastable_pairs, close, data, numeric_vjp, seeds, shapes

Shape = tuple[int, ...]


@given(shapes(1), seeds, st.data())
@example((4, 3), 0, None)  # an embedding table
def test_take_is_numpys_and_repeats_accumulate(shape: Shape, seed: int, drawn: st.DataObject | None) -> None:
    index_shape: Shape
    if drawn is None:
        axis, indices, index_shape = 0, [1, 3, 1, -1], (2, 2)
    else:
        axis = drawn.draw(st.integers(-len(shape), len(shape) - 1))
        n = shape[axis]
        indices = drawn.draw(st.lists(st.integers(-n, n - 1), max_size=4))
        index_shape = (len(indices),)
    x = data(seed, shape)
    out, out_shape = take(x, shape, indices, axis, index_shape)
    want = np.take(arr(x, shape), np.array(indices, dtype=int).reshape(index_shape), axis=axis)
    assert out_shape == want.shape
    assert out == want.ravel().tolist()
    g = data(seed + 1, out_shape)
    got = take_vjp(g, shape, indices, axis)
    close(got, numeric_vjp(lambda v: take(v, shape, indices, axis, index_shape)[0], x, g), 1e-6)
    ax = axis % len(shape)
    flat_g = arr(g, (*shape[:ax], len(indices), *shape[ax + 1 :]))
    expected = np.zeros(shape)
    np.add.at(np.moveaxis(expected, ax, 0), np.array(indices, dtype=int), np.moveaxis(flat_g, ax, 0))
    close(got, expected)


@given(shapes(1), st.lists(st.integers(1, 3), min_size=1, max_size=3), seeds, st.data())
def test_concatenate_and_stack_are_numpys_and_split_back(
    shape: Shape, extents: list[int], seed: int, drawn: st.DataObject
) -> None:
    axis = drawn.draw(st.integers(-len(shape), len(shape) - 1))
    ax = axis % len(shape)
    parts_shapes = [(*shape[:ax], e, *shape[ax + 1 :]) for e in extents]
    parts = [data(seed + k, s) for k, s in enumerate(parts_shapes)]
    out, out_shape = concatenate(list(zip(parts, parts_shapes, strict=True)), axis)
    want = np.concatenate([arr(p, s) for p, s in zip(parts, parts_shapes, strict=True)], axis=axis)
    assert out_shape == want.shape
    assert out == want.ravel().tolist()
    assert concatenate_vjp(out, parts_shapes, axis) == parts
    same = [data(seed + k, shape) for k in range(len(extents))]
    new_axis = drawn.draw(st.integers(-len(shape) - 1, len(shape)))
    out, out_shape = stack([(p, shape) for p in same], new_axis)
    want = np.stack([arr(p, shape) for p in same], axis=new_axis)
    assert out_shape == want.shape
    assert out == want.ravel().tolist()
    assert stack_vjp(out, shape, len(same), new_axis) == same


@given(shapes(1), seeds, st.data())
def test_pad_is_numpys_and_its_vjp_crops(shape: Shape, seed: int, drawn: st.DataObject) -> None:
    widths = [(drawn.draw(st.integers(0, 2)), drawn.draw(st.integers(0, 2))) for _ in shape]
    x = data(seed, shape)
    out, out_shape = pad(x, shape, widths)
    want = np.pad(arr(x, shape), np.array(widths, dtype=int).reshape(len(shape), 2))
    assert out_shape == want.shape
    assert out == want.ravel().tolist()
    g = data(seed + 1, out_shape)
    got = pad_vjp(g, shape, widths)
    close(got, numeric_vjp(lambda v: pad(v, shape, widths)[0], x, g), 1e-6)


def test_pad_of_a_0d_array_is_itself() -> None:
    assert pad([2.0], (), []) == ([2.0], ())
    assert pad_vjp([3.0], (), []) == [3.0]


@given(broadcastable_pairs(), shapes(0, 2), seeds)
def test_where_is_numpys_and_its_vjp_matches_differences(
    pair: tuple[Shape, Shape], m_shape: Shape, seed: int
) -> None:
    x_shape, y_shape = pair
    x, y = data(seed, x_shape), data(seed + 1, y_shape)
    try:
        out_shape = np.broadcast_shapes(x_shape, y_shape, m_shape)
    except ValueError:
        m_shape = ()
        out_shape = np.broadcast_shapes(x_shape, y_shape)
    mask = [v > 0 for v in data(seed + 2, m_shape)]
    out, shape = where(mask, m_shape, x, x_shape, y, y_shape)
    want = np.where(np.array(mask).reshape(m_shape), arr(x, x_shape), arr(y, y_shape))
    assert shape == want.shape == out_shape
    assert out == want.ravel().tolist()
    g = data(seed + 3, shape)
    gx, gy = where_vjp(g, mask, m_shape, x_shape, y_shape)
    close(gx, numeric_vjp(lambda v: where(mask, m_shape, v, x_shape, y, y_shape)[0], x, g), 1e-6)
    close(gy, numeric_vjp(lambda v: where(mask, m_shape, x, x_shape, v, y_shape)[0], y, g), 1e-6)


def test_errors() -> None:
    with pytest.raises(
        ValueError, match=r"take: index 3 is out of range for axis 0 of shape \(3, 2\) \(size 3\)"
    ):
        take([0.0] * 6, (3, 2), [3])
    with pytest.raises(TypeError, match=r"take: indices must be ints, got 1.0"):
        take([0.0] * 6, (3, 2), [1.0])  # type: ignore[list-item]
    with pytest.raises(
        ValueError, match=r"concatenate: array 1 has shape \(2, 2\) but array 0 has \(3, 1\): only axis 1"
    ):
        concatenate([([0.0] * 3, (3, 1)), ([0.0] * 4, (2, 2))], axis=1)
    with pytest.raises(ValueError, match=r"stack: array 1 has shape \(3,\) but array 0 has \(2,\)"):
        stack([([0.0] * 2, (2,)), ([0.0] * 3, (3,))])
    with pytest.raises(ValueError, match=r"stack: axis 3 is out of range for shape \(2, 1\)"):
        stack([([0.0] * 2, (2,))], axis=3)
    with pytest.raises(ValueError, match=r"pad: axis 0 of shape \(2,\) has a negative width \(-1, 0\)"):
        pad([0.0] * 2, (2,), [(-1, 0)])
    with pytest.raises(ValueError, match=r"pad: 1 \(before, after\) pairs for shape \(2, 2\) of 2 axes"):
        pad([0.0] * 4, (2, 2), [(1, 1)])
    with pytest.raises(ValueError, match=r"where: shapes \(2,\) and \(3,\) do not broadcast"):
        where([True, False], (2,), [0.0] * 3, (3,), [0.0], ())
