"""tape.testing's array strategies: shapes, nested float data and broadcastable shapes.

Checked for what their docstrings promise, and the broadcasting ones against NumPy's
own rules (numpy is in the test extra; the library never imports it).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import find, given
from hypothesis import strategies as st

from tape.array import shape_of
from tape.gradient_tape import is_float_array
from tape.kernels.shapes import broadcast_shapes
from tape.testing import (
    Shape,
    array_shapes,
    broadcastable_shapes,
    float_arrays,
    mutually_broadcastable_shapes,
)


def _containers(data: Any) -> set[type]:
    if isinstance(data, float):
        return set()
    return {type(data)}.union(*(_containers(item) for item in data))


@given(st.data(), st.integers(0, 3), st.integers(0, 2), st.integers(1, 3), st.integers(0, 2))
def test_array_shapes_respect_their_bounds(
    data: st.DataObject, min_dims: int, more_dims: int, min_side: int, more_side: int
) -> None:
    shape = data.draw(
        array_shapes(min_dims, min_dims + more_dims, min_side=min_side, max_side=min_side + more_side)
    )
    assert isinstance(shape, tuple)
    assert min_dims <= len(shape) <= min_dims + more_dims
    assert all(isinstance(n, int) and min_side <= n <= min_side + more_side for n in shape)


def test_array_shapes_reach_0d_and_their_largest() -> None:
    assert find(array_shapes(), lambda s: s == ()) == ()
    assert find(array_shapes(), lambda s: len(s) == 4 and max(s) == 4)[0] >= 1


@pytest.mark.parametrize(
    "kwargs",
    [{"min_dims": 3, "max_dims": 2}, {"min_dims": -1}, {"min_side": 0}, {"min_side": 3, "max_side": 2}],
)
def test_array_shapes_refuse_bad_bounds(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError, match="array_shapes"):
        array_shapes(**kwargs)


@given(st.data(), array_shapes(1, 4, max_side=3), st.booleans())
def test_float_arrays_have_the_shape_and_containers(data: st.DataObject, shape: Shape, lists: bool) -> None:
    x = data.draw(float_arrays(shape, lists=lists))
    assert shape_of(x) == shape and np.shape(x) == shape
    assert is_float_array(x)  # rectangular, floats only: what grad(arrays=True) watches as one Array
    assert _containers(x) == {list if lists else tuple}
    assert np.all(np.abs(np.asarray(x)) <= 3.0)  # the default elements: scalars()


@given(float_arrays(()), float_arrays(array_shapes(2, 2, max_side=2), st.just(0.5)))
def test_float_arrays_of_0d_and_of_drawn_shapes(scalar: object, drawn: Any) -> None:
    assert isinstance(scalar, float)
    assert len(shape_of(drawn)) == 2 and set(np.asarray(drawn).ravel()) == {0.5}


@pytest.mark.parametrize("shape", [(0, 2), (2, -1), [2, 3], (2.0,)])
def test_float_arrays_refuse_bad_shapes(shape: Any) -> None:
    with pytest.raises(ValueError, match="float_arrays: shape"):
        float_arrays(shape)


@given(st.data(), array_shapes(0, 4, max_side=3))
def test_broadcastable_shapes_broadcast_as_numpy_does(data: st.DataObject, shape: Shape) -> None:
    other = data.draw(broadcastable_shapes(shape))
    assert len(other) <= len(shape) + 1
    assert all(n >= 1 for n in other)
    assert broadcast_shapes(shape, other, op="test") == np.broadcast_shapes(shape, other)


@given(broadcastable_shapes((3, 1), min_dims=3, max_dims=3, max_side=2))
def test_broadcastable_shapes_respect_their_bounds(other: Shape) -> None:
    assert len(other) == 3 and other[1] in (1, 3) and 1 <= other[0] <= 2 and 1 <= other[2] <= 2


def test_broadcastable_shapes_reach_a_shape_that_stretches_both() -> None:
    found = find(broadcastable_shapes((1, 3)), lambda s: len(s) == 2 and s[0] > 1 and s[1] == 1)
    assert np.broadcast_shapes((1, 3), found) == (found[0], 3)


@pytest.mark.parametrize("shape", [(0,), [2], (2, -1)])
def test_broadcastable_shapes_refuse_bad_shapes(shape: Any) -> None:
    with pytest.raises(ValueError, match="broadcastable_shapes: shape"):
        broadcastable_shapes(shape)


@given(st.data(), st.integers(1, 4))
def test_mutually_broadcastable_shapes_broadcast_together(data: st.DataObject, n: int) -> None:
    shapes = data.draw(mutually_broadcastable_shapes(n, max_dims=3, max_side=3))
    assert len(shapes) == n and all(len(s) <= 3 for s in shapes)
    result: Shape = ()
    for s in shapes:
        result = broadcast_shapes(result, s, op="test")
    assert result == np.broadcast_shapes(*shapes)


def test_mutually_broadcastable_shapes_reach_differing_shapes() -> None:
    pair = find(mutually_broadcastable_shapes(2), lambda p: p[0] != p[1] and len(p[0]) == len(p[1]) == 2)
    assert np.broadcast_shapes(*pair) != ()


@pytest.mark.parametrize("n", [0, -1, 1.5])
def test_mutually_broadcastable_shapes_refuse_a_bad_count(n: Any) -> None:
    with pytest.raises(ValueError, match="mutually_broadcastable_shapes: n"):
        mutually_broadcastable_shapes(n)
