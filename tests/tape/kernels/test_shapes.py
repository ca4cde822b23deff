"""Shapes: broadcasting, axes, strides, reshape and transpose against NumPy, and the errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from tape.kernels.shapes import (
    broadcast_shapes,
    check_data,
    index_grid,
    inverse_permutation,
    normalize_axes,
    reshape,
    strides,
    transpose,
)
from tests.tape.kernels.helpers import arr, broadcastable_pairs, data, seeds, shapes


@given(broadcastable_pairs())
@example(((), (2, 3)))
@example(((1,), (3, 1)))
def test_broadcast_shapes_is_numpys(pair: tuple[tuple[int, ...], tuple[int, ...]]) -> None:
    a, b = pair
    assert broadcast_shapes(a, b, op="add") == np.broadcast_shapes(a, b)


@pytest.mark.parametrize(("a", "b"), [((2, 3), (4,)), ((2, 1), (3, 4, 3)), ((0,), (2,))])
def test_broadcast_shapes_names_op_and_shapes(a: tuple[int, ...], b: tuple[int, ...]) -> None:
    with pytest.raises(
        ValueError,
        match=rf"^mul: shapes {a} and {b} do not broadcast$".replace("(", r"\(").replace(")", r"\)"),
    ):
        broadcast_shapes(a, b, op="mul")


@given(shapes())
def test_strides_are_numpys(shape: tuple[int, ...]) -> None:
    assert strides(shape) == tuple(s // 8 for s in np.zeros(shape).strides)


@given(shapes(1), st.data())
def test_normalize_axes_accepts_negative_axes(shape: tuple[int, ...], drawn: st.DataObject) -> None:
    axes = drawn.draw(st.lists(st.integers(-len(shape), len(shape) - 1), unique_by=lambda a: a % len(shape)))
    assert normalize_axes(tuple(axes), shape, op="sum") == tuple(sorted(a % len(shape) for a in axes))


def test_axis_errors_name_op_axis_and_shape() -> None:
    with pytest.raises(ValueError, match=r"sum: axis 2 is out of range for shape \(2, 3\)"):
        normalize_axes(2, (2, 3), op="sum")
    with pytest.raises(ValueError, match=r"sum: axis -3 is out of range"):
        normalize_axes((0, -3), (2, 3), op="sum")
    with pytest.raises(ValueError, match=r"max: axis \(1, -1\) repeats an axis of shape \(2, 3\)"):
        normalize_axes((1, -1), (2, 3), op="max")
    with pytest.raises(TypeError, match=r"sum: axis must be an int, got 1.5"):
        normalize_axes((1.5,), (2, 3), op="sum")  # type: ignore[arg-type]
    assert normalize_axes(None, (2, 3), op="sum") == (0, 1)


def test_reshape_fills_minus_one_and_checks_sizes() -> None:
    assert reshape((2, 3, 4), (-1, 4)) == (6, 4)
    assert reshape((), (1, 1)) == (1, 1)
    with pytest.raises(ValueError, match=r"reshape: cannot reshape shape \(2, 3\) \(6 entries\) into \(4,\)"):
        reshape((2, 3), (4,))
    with pytest.raises(ValueError, match=r"more than one -1"):
        reshape((2, 3), (-1, -1))
    with pytest.raises(ValueError, match=r"cannot reshape shape \(2, 3\) into \(4, -1\)"):
        reshape((2, 3), (4, -1))


def test_check_data_names_the_argument() -> None:
    with pytest.raises(ValueError, match=r"add: b has 5 entries but its shape \(2, 3\) needs 6"):
        check_data([0.0] * 5, (2, 3), op="add", name="b")
    with pytest.raises(TypeError, match=r"must be a tuple of ints"):
        check_data([0.0], [1], op="add")  # type: ignore[arg-type]


@given(shapes(), seeds, st.data())
def test_transpose_is_numpys_bit_for_bit(shape: tuple[int, ...], seed: int, drawn: st.DataObject) -> None:
    x = data(seed, shape)
    perm = drawn.draw(st.permutations(range(len(shape))))
    out, out_shape = transpose(x, shape, perm)
    want = np.transpose(arr(x, shape), perm)
    assert out_shape == want.shape
    assert out == want.ravel().tolist()
    back, back_shape = transpose(out, out_shape, inverse_permutation(perm))
    assert (back, back_shape) == (x, shape)


def test_transpose_defaults_to_reversed_axes_and_checks_axes() -> None:
    assert transpose([1.0, 2.0], (1, 2))[1] == (2, 1)
    with pytest.raises(ValueError, match=r"transpose: axes \(0, 0\) are not a permutation"):
        transpose([1.0, 2.0], (1, 2), (0, 0))


def test_index_grid_of_an_empty_axis_is_empty() -> None:
    assert index_grid((2, 0, 3), (0, 3, 1)) == []
