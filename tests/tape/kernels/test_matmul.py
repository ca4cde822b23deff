"""``matmul`` against ``numpy.matmul`` (1-d, 2-d, broadcast batches) and its vjp."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from tape.kernels.matmul import matmul, matmul_vjp
from tests.tape.kernels.helpers import arr, broadcastable_pairs, close, data, numeric_vjp, seeds

Shape = tuple[int, ...]


@st.composite
def matmul_shapes(draw: st.DrawFn) -> tuple[Shape, Shape]:
    n, k, m = (draw(st.integers(1, 3)) for _ in range(3))
    batch_a, batch_b = draw(broadcastable_pairs(max_dims=2))
    a: Shape = (k,) if draw(st.booleans()) else (*batch_a, n, k)
    b: Shape = (k,) if draw(st.booleans()) else (*batch_b, k, m)
    return a, b


@given(matmul_shapes(), seeds)
@example(((3,), (3,)), 0)  # 0-d result
@example(((2, 1, 2, 3), (4, 3, 2)), 0)
@example(((3,), (2, 3, 1)), 0)
def test_matmul_is_numpys(shapes: tuple[Shape, Shape], seed: int) -> None:
    a_shape, b_shape = shapes
    a, b = data(seed, a_shape), data(seed + 1, b_shape)
    out, shape = matmul(a, a_shape, b, b_shape)
    want = np.matmul(arr(a, a_shape), arr(b, b_shape))
    assert shape == want.shape
    close(out, want)


@given(matmul_shapes(), seeds)
@example(((2, 1, 2, 3), (4, 3, 2)), 0)
@example(((3,), (2, 3, 1)), 0)
def test_matmul_vjp_matches_differences_and_numpy(shapes: tuple[Shape, Shape], seed: int) -> None:
    a_shape, b_shape = shapes
    a, b = data(seed, a_shape), data(seed + 1, b_shape)
    _, out_shape = matmul(a, a_shape, b, b_shape)
    g = data(seed + 2, out_shape)
    ga, gb = matmul_vjp(g, a, a_shape, b, b_shape)
    close(ga, numeric_vjp(lambda v: matmul(v, a_shape, b, b_shape)[0], a, g), 1e-6)
    close(gb, numeric_vjp(lambda v: matmul(a, a_shape, v, b_shape)[0], b, g), 1e-6)
    if len(a_shape) == 2 and len(b_shape) == 2:
        close(ga, arr(g, out_shape) @ arr(b, b_shape).T)
        close(gb, arr(a, a_shape).T @ arr(g, out_shape))


def test_matmul_errors_name_the_shapes() -> None:
    with pytest.raises(
        ValueError, match=r"matmul: shapes \(2, 3\) and \(2, 3\): a has 3 columns but b has 2 rows"
    ):
        matmul([0.0] * 6, (2, 3), [0.0] * 6, (2, 3))
    with pytest.raises(ValueError, match=r"matmul: b is 0-d"):
        matmul([0.0] * 2, (2,), [0.0], ())
    with pytest.raises(
        ValueError, match=r"matmul: the batch axes of shapes \(2, 1, 1\) and \(3, 1, 1\) do not"
    ):
        matmul([0.0] * 2, (2, 1, 1), [0.0] * 3, (3, 1, 1))
    with pytest.raises(ValueError, match=r"matmul: grad has 1 entries but its shape \(2,\) needs 2"):
        matmul_vjp([0.0], [0.0] * 4, (2, 2), [0.0] * 2, (2,))
