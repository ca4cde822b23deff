"""Sum, mean, max and min over axes against NumPy (and torch's first-index rule), and their vjps."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from tape.kernels.reduce import (
    max_axes,
    mean_axes,
    mean_axes_vjp,
    min_axes,
    scatter_vjp,
    sum_axes,
    sum_axes_vjp,
)
from tape.kernels.shapes import Axis, size
from tests.tape.kernels.helpers import arr, close, data, numeric_vjp, seeds, shapes

Shape = tuple[int, ...]


@st.composite
def shape_and_axis(draw: st.DrawFn) -> tuple[Shape, Axis]:
    shape = draw(shapes())
    n = len(shape)
    if n == 0 or draw(st.booleans()):
        return shape, draw(st.sampled_from([None, ()]))
    if draw(st.booleans()):
        return shape, draw(st.integers(-n, n - 1))
    axes = draw(st.lists(st.integers(-n, n - 1), unique_by=lambda a: a % n, min_size=1))
    return shape, tuple(axes)


@given(shape_and_axis(), st.booleans(), seeds)
@example(((2, 3), -1), True, 0)
@example(((), None), False, 0)  # 0-d in, 0-d out
@example(((1, 3, 1), (0, 2)), False, 0)
def test_sum_and_mean_are_numpys(sa: tuple[Shape, Axis], keepdims: bool, seed: int) -> None:
    shape, axis = sa
    x = data(seed, shape)
    for ours, theirs in ((sum_axes, np.sum), (mean_axes, np.mean)):
        out, out_shape = ours(x, shape, axis, keepdims=keepdims)
        want = theirs(arr(x, shape), axis=axis, keepdims=keepdims)
        assert out_shape == np.shape(want)
        close(out, np.ravel(want))


@given(shape_and_axis(), st.booleans(), seeds)
@example(((2, 3), 0), False, 0)
def test_sum_and_mean_vjps_match_differences(sa: tuple[Shape, Axis], keepdims: bool, seed: int) -> None:
    shape, axis = sa
    x = data(seed, shape)
    _, out_shape = sum_axes(x, shape, axis, keepdims=keepdims)
    g = data(seed + 1, out_shape)
    got = sum_axes_vjp(g, shape, axis, keepdims=keepdims)
    close(got, numeric_vjp(lambda v: sum_axes(v, shape, axis, keepdims=keepdims)[0], x, g), 1e-6)
    got = mean_axes_vjp(g, shape, axis, keepdims=keepdims)
    close(got, numeric_vjp(lambda v: mean_axes(v, shape, axis, keepdims=keepdims)[0], x, g), 1e-6)


@given(shape_and_axis(), st.booleans(), seeds, st.booleans())
@example(((2, 3), 1), False, 0, True)
def test_max_and_min_are_numpys_with_first_positions(
    sa: tuple[Shape, Axis], keepdims: bool, seed: int, ties: bool
) -> None:
    shape, axis = sa
    x = data(seed, shape)
    if ties:  # few distinct values: many ties, the first must win
        x = [float(round(v)) for v in x]
    for ours, theirs in ((max_axes, np.max), (min_axes, np.min)):
        out, out_shape, where = ours(x, shape, axis, keepdims=keepdims)
        want = theirs(arr(x, shape), axis=axis, keepdims=keepdims)
        assert out_shape == np.shape(want)
        assert out == np.ravel(want).tolist()
        assert [x[p] for p in where] == out
        if isinstance(axis, int):  # the first extremum along the axis, as numpy's argmax/argmin
            pick = np.argmax if ours is max_axes else np.argmin
            first = pick(arr(x, shape), axis=axis)
            assert [(p // int(np.prod(shape[axis % len(shape) + 1 :]))) % shape[axis] for p in where] == (
                first.ravel().tolist()
            )


def test_max_first_index_matches_argmax_along_one_axis() -> None:
    x = [1.0, 5.0, 5.0, 2.0, 7.0, 7.0, 7.0, 0.0]
    _, _, where = max_axes(x, (2, 4), axis=1)
    assert [p % 4 for p in where] == np.argmax(arr(x, (2, 4)), axis=1).tolist()
    _, _, where = min_axes(x, (4, 2), axis=0)
    assert [p // 2 for p in where] == np.argmin(arr(x, (4, 2)), axis=0).tolist()


def test_nan_propagates_like_numpy() -> None:
    x = [1.0, math.nan, 2.0, 3.0]
    out, _, where = max_axes(x, (4,))
    assert math.isnan(out[0]) and where == [1]
    out, _, _ = min_axes([math.inf, -math.inf], (2,))
    assert out == [-math.inf]


@given(shape_and_axis(), seeds)
def test_max_vjp_sends_the_gradient_to_the_first_maximum(sa: tuple[Shape, Axis], seed: int) -> None:
    shape, axis = sa
    x = data(seed, shape)
    _, out_shape, where = max_axes(x, shape, axis)
    g = data(seed + 1, out_shape)
    got = scatter_vjp(g, where, size(shape))
    close(got, numeric_vjp(lambda v: max_axes(v, shape, axis)[0], x, g), 1e-6)


def test_reduction_errors() -> None:
    with pytest.raises(
        ValueError, match=r"max: cannot reduce shape \(0, 2\) over axis 0: the reduced group is empty"
    ):
        max_axes([], (0, 2), 0)
    assert max_axes([], (2, 0), 0) == ([], (0,), [])
    with pytest.raises(ValueError, match=r"sum: axis 3 is out of range for shape \(2, 3\)"):
        sum_axes([0.0] * 6, (2, 3), 3)
    with pytest.raises(ValueError, match=r"sum: grad has 2 entries but its shape \(3,\) needs 3"):
        sum_axes_vjp([0.0, 0.0], (2, 3), 0)
    assert math.isnan(mean_axes([], (0,))[0][0])
