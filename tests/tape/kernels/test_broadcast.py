"""Broadcasting binary ops and ``sum_to_shape`` against NumPy, bit for bit."""

from __future__ import annotations

from operator import add, mul, sub

import numpy as np
import pytest
from hypothesis import example, given

from tape.kernels.broadcast import binary, broadcast_to, sum_to_shape
from tape.kernels.shapes import broadcast_shapes
from tests.tape.kernels.helpers import arr, broadcastable_pairs, close, data, numeric_vjp, seeds

Pair = tuple[tuple[int, ...], tuple[int, ...]]


@given(broadcastable_pairs(), seeds)
@example(((2, 3), (3,)), 0)  # bias add
@example(((2, 3), ()), 1)  # scalar
@example(((1,), (2, 1, 3)), 2)
@example(((3, 1), (1, 3)), 3)
def test_binary_is_numpys_bit_for_bit(pair: Pair, seed: int) -> None:
    a_shape, b_shape = pair
    a, b = data(seed, a_shape), data(seed + 1, b_shape)
    for f, npf in ((add, np.add), (sub, np.subtract), (mul, np.multiply)):
        out, shape = binary(f, a, a_shape, b, b_shape, op="add")
        want = npf(arr(a, a_shape), arr(b, b_shape))
        assert shape == want.shape
        assert out == want.ravel().tolist()
        swapped, _ = binary(f, b, b_shape, a, a_shape)
        assert swapped == npf(arr(b, b_shape), arr(a, a_shape)).ravel().tolist()


@given(broadcastable_pairs(), seeds)
def test_broadcast_to_is_numpys(pair: Pair, seed: int) -> None:
    shape, other = pair
    out_shape = broadcast_shapes(shape, other, op="t")
    x = data(seed, shape)
    assert broadcast_to(x, shape, out_shape) == np.broadcast_to(arr(x, shape), out_shape).ravel().tolist()


@given(broadcastable_pairs(), seeds)
@example(((2, 3), (3,)), 0)
@example(((2, 3), (2, 1)), 0)
@example(((3, 2, 2), (1, 2, 1)), 0)
def test_sum_to_shape_is_the_vjp_of_broadcast_to(pair: Pair, seed: int) -> None:
    shape, other = pair
    grad_shape = broadcast_shapes(shape, other, op="t")
    g = data(seed, grad_shape)
    got = sum_to_shape(g, grad_shape, shape)
    lead = len(grad_shape) - len(shape)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, n in enumerate(shape) if n == 1 and grad_shape[lead + i] != 1
    )
    want = arr(g, grad_shape).sum(axis=axes).reshape(shape)
    close(got, want)
    x = data(seed + 1, shape)
    close(got, numeric_vjp(lambda v: broadcast_to(v, shape, grad_shape), x, g), 1e-6)


def test_broadcast_errors_name_op_and_shapes() -> None:
    with pytest.raises(ValueError, match=r"^add: shapes \(2, 3\) and \(4,\) do not broadcast$"):
        binary(add, [0.0] * 6, (2, 3), [0.0] * 4, (4,), op="add")
    with pytest.raises(ValueError, match=r"add: b has 3 entries but its shape \(4,\) needs 4"):
        binary(add, [0.0] * 6, (2, 3), [0.0] * 3, (4,), op="add")
    with pytest.raises(ValueError, match=r"broadcast_to: shape \(2, 3\) does not broadcast to \(3,\)"):
        broadcast_to([0.0] * 6, (2, 3), (3,))
    with pytest.raises(ValueError, match=r"sum_to_shape: shape \(4,\) does not broadcast to the gradient's"):
        sum_to_shape([0.0] * 3, (3,), (4,))


def test_empty_and_zero_size_operands() -> None:
    assert binary(add, [], (0, 3), [1.0, 2.0, 3.0], (3,)) == ([], (0, 3))
    assert sum_to_shape([], (0, 3), (3,)) == [0.0, 0.0, 0.0]
    assert sum_to_shape([], (0,), ()) == [0.0]
