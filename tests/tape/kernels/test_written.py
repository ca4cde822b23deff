"""The written-out linear kernels give the generic loops' floats bit for bit, and stay bounded."""

from __future__ import annotations

import random
import struct
import traceback
from collections.abc import Sequence
from typing import Any, cast

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

import tape
from tape import arrays
from tape.kernels import written
from tape.ops.linear import (
    _input_grad,
    _masked_input_grad,
    forward_loops,
    input_grad_loops,
    linear_kernel,
    masked_input_grad_loops,
    weight_and_bias_grads,
    weight_and_bias_grads_loops,
)

Matrix = tuple[tuple[float, ...], ...]

# zeros of both signs, infinities and nans, beside ordinary numbers: every case where
# a different order of the same operations, or a missing 0.0 start, changes the bits
special = st.sampled_from([0.0, -0.0, 1.0, -2.5, float("inf"), float("-inf"), float("nan"), 1e308, -1e-310])
floats = st.one_of(special, st.floats(-1e3, 1e3))


def bits(rows: Sequence[Sequence[float]]) -> list[list[bytes]]:
    """Each float's bits, a nan's aside: which nan two nans add to depends on the C code that adds them."""
    return [[b"nan" if v != v else struct.pack("<d", v) for v in row] for row in rows]


@st.composite
def layers(draw: st.DrawFn) -> tuple[Matrix, tuple[float, ...] | None, Matrix, Matrix]:
    """A weight ``(rows, columns)``, maybe a bias, a batch ``X`` and a same-shaped ``G @ W`` mask."""
    rows, columns, batch = draw(st.integers(1, 5)), draw(st.integers(1, 6)), draw(st.integers(1, 4))

    def matrix(n: int, m: int) -> Matrix:
        return tuple(tuple(draw(floats) for _ in range(m)) for _ in range(n))

    bias = tuple(draw(floats) for _ in range(rows)) if draw(st.booleans()) else None
    return matrix(rows, columns), bias, matrix(batch, columns), matrix(batch, columns)


@given(layers())
@example((((-0.0,),), None, ((0.0,),), ((1.0,),)))  # -0.0 * 0.0 is -0.0; a dot product from 0.0 gives 0.0
@example((((-0.0, -0.0),), None, ((1.0, 1.0), (1.0, 1.0)), ((1.0, 1.0), (1.0, 1.0))))  # narrow: no 0.0 start
def test_written_forward_is_the_loops_bit_for_bit(
    layer: tuple[Matrix, tuple[float, ...] | None, Matrix, Matrix],
) -> None:
    W, b, X, _ = layer
    kernel = written.linear(len(W), len(W[0]), b is not None, False)
    assert (kernel is not None) == written.SUM_ADDS_IN_ORDER  # small: written out where sum adds in order
    assert bits(linear_kernel(W, b, X)) == bits(forward_loops(W, b, X))


@given(layers())
@example((((-0.0, 1.0),), None, ((1.0, 1.0),), ((0.0, 1.0),)))  # one output unit: a scaled row, no sum
@example((((1.0,), (float("inf"),)), None, ((1.0,),), ((float("nan"),),)))  # a nan mask entry is off
def test_written_input_grads_are_the_loops_bit_for_bit(
    layer: tuple[Matrix, tuple[float, ...] | None, Matrix, Matrix],
) -> None:
    W, _, X, H = layer
    G = tuple(row[: len(W)] + (1.0,) * (len(W) - len(row)) for row in X)  # one entry per output unit
    assert (written.input_grad(len(W), len(W[0])) is not None) == written.SUM_ADDS_IN_ORDER
    assert bits(_input_grad(W, G)) == bits(input_grad_loops(W, G))
    assert bits(_masked_input_grad(W, G, H)) == bits(masked_input_grad_loops(W, G, H))
    assert_weight_grads_are_the_loops(G, X)


def assert_weight_grads_are_the_loops(G: Matrix, X: Matrix) -> None:
    """``G.T @ X`` and ``G``'s column sums, written out (with the bias and without), against the loops."""
    for bias in (True, False):
        kernel = written.weight_grad(len(G[0]), len(X[0]), bias)
        assert (kernel is not None) == written.SUM_ADDS_IN_ORDER
        gw, gb = weight_and_bias_grads(G, X, bias)
        want_w, want_b = weight_and_bias_grads_loops(G, X, bias)
        assert bits(gw) == bits(want_w)
        assert (gb is None) == (want_b is None) == (not bias)
        if gb is not None and want_b is not None:
            assert bits([gb]) == bits([want_b])


@pytest.mark.parametrize(
    ("rows", "columns", "batch"), [(16, 2, 100), (16, 16, 100), (1, 16, 100), (32, 64, 32), (10, 32, 1)]
)
def test_layers_of_the_benchmarks_are_the_loops_bit_for_bit(rows: int, columns: int, batch: int) -> None:
    rng = random.Random(rows * 1000 + columns)

    def matrix(n: int, m: int) -> Matrix:
        return tuple(tuple(rng.choice((0.0, -0.0, rng.gauss(0, 1))) for _ in range(m)) for _ in range(n))

    W, X, G, H = matrix(rows, columns), matrix(batch, columns), matrix(batch, rows), matrix(batch, columns)
    b = tuple(rng.gauss(0, 1) for _ in range(rows))
    for bias in (b, None):
        assert bits(linear_kernel(W, bias, X)) == bits(forward_loops(W, bias, X))
    assert bits(_input_grad(W, G)) == bits(input_grad_loops(W, G))
    assert bits(_masked_input_grad(W, G, H)) == bits(masked_input_grad_loops(W, G, H))
    assert_weight_grads_are_the_loops(G, X)


def test_big_weights_run_on_the_loops() -> None:
    terms, weights = written.MAX_TERMS, written.MAX_WEIGHTS
    assert (written.linear(terms, weights // terms, True, False) is not None) == written.SUM_ADDS_IN_ORDER
    assert (written.linear(1, terms, False, False) is not None) == written.SUM_ADDS_IN_ORDER
    for rows, columns in ((terms + 1, 1), (1, terms + 1), (64, weights // 64 + 1)):
        assert written.linear(rows, columns, True, False) is None
        assert written.input_grad(rows, columns) is None
        assert written.masked_input_grad(rows, columns) is None
        assert written.weight_grad(rows, columns, True) is None
    W = tuple(tuple(float(j - k) for k in range(65)) for j in range(64))  # 4160 weights: the loops
    X = ((1.0,) * 65, (-1.0,) * 65)
    assert linear_kernel(W, None, X) == forward_loops(W, None, X)


# 1e16 + 1.0 rounds to 1e16, so in order the sum is 0.0; a compensated sum (Python 3.12's) gives 1.0
CANCELLING = (1e16, 1.0, -1e16)


def test_the_kernels_give_sums_floats_where_compensated_rounding_differs() -> None:
    ones = ((1.0,) * 3,) * 2
    assert linear_kernel((CANCELLING,), None, ones[:1]) == ((sum(CANCELLING),),)
    assert linear_kernel((CANCELLING, CANCELLING), (0.0, 0.0), ones[:1]) == ((sum(CANCELLING),) * 2,)
    column = tuple((v,) for v in CANCELLING)  # a weight of one column: G @ W sums down it
    assert _input_grad(column, ones[:1]) == [[sum(CANCELLING)]]
    assert _masked_input_grad(column, ones[:1], ((1.0,),)) == [[sum(CANCELLING)]]
    gw, gb = weight_and_bias_grads(column, ((1.0,),) * 3, True)  # a batch of three: sums over it
    assert gw == [[sum(CANCELLING)]] and gb == [sum(CANCELLING)]
    in_order = sum(CANCELLING) == 0.0
    assert in_order == written.SUM_ADDS_IN_ORDER  # written out only where sum adds in order


def test_the_written_source_reads_as_the_arithmetic() -> None:
    source = written.linear_source(1, 2, bias=True, narrow=True)
    assert "x0 * w0_0 + x1 * w0_1 + b0," in source  # narrow: the column-at-a-time order, no 0.0
    source = written.input_grad_source(2, 1, masked=True)
    assert "0.0 + g0 * w0_0 + g1 * w1_0 if h0 > 0.0 else 0.0," in source
    source = written.weight_grad_source(1, 2, bias=True)
    assert "a0_0 = a0_1 = 0.0" in source and "a0_1 += g0 * x1" in source and "c0 += g0" in source


def _second_order(c: float) -> float:
    """d/dc of entries of a layer's gradients that scale with c: the backward pass runs on Values."""
    W, b, X = [[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]], [0.1, -0.2], [[1.0, 2.0, -3.0], [0.5, -0.5, 0.1]]

    def outer(c: Any) -> Any:
        def loss(W: Any, b: Any, X: Any) -> Any:
            return arrays.mean(arrays.relu_linear(W, b, X)) * c

        gW, gb, gX = tape.grad(loss, (0, 1, 2), arrays=True)(W, b, X)
        return gW[0][0] * gW[1][2] + gb[1] + gX[1][1]

    return cast(float, tape.grad(outer)(c))


@given(st.floats(-4.0, 4.0))
@example(-1.0)  # the weight gradient's sums recorded example by example round the outer adjoints otherwise
def test_a_weight_gradient_of_values_records_the_loops_ops(c: float) -> None:
    written_out = _second_order(c)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(written, "weight_grad", lambda rows, columns, bias: None)
        assert bits([[written_out]]) == bits([[_second_order(c)]])


def test_kernels_past_the_cap_run_on_the_loops(monkeypatch: pytest.MonkeyPatch) -> None:
    """Once MAX_KERNELS are kept, a new shape gets None (the loops), never a compile per call."""
    kept = written.linear(3, 3, True, False)
    monkeypatch.setattr(written, "MAX_KERNELS", len(written._KEPT))
    assert written.linear(3, 3, True, False) is kept  # a kept kernel stays
    assert written.linear(7, 5, False, False) is None and written.weight_grad(7, 5, True) is None
    W = tuple(tuple(float(j * k) - 2.0 for k in range(5)) for j in range(7))
    X = ((1.0, -0.0, 2.0, 0.5, -1.0),) * 3
    assert bits(linear_kernel(W, None, X)) == bits(forward_loops(W, None, X))


@pytest.mark.skipif(not written.SUM_ADDS_IN_ORDER, reason="nothing is written out where sum compensates")
def test_a_written_kernels_traceback_shows_its_source() -> None:
    kernel = written.linear(2, 3, True, False)
    assert kernel is not None
    with pytest.raises(ValueError) as raised:
        kernel(((1.0, 2.0, 3.0),), (1.0, 2.0), ((1.0, 2.0, 3.0),))  # one weight row of two
    text = "".join(traceback.format_exception(raised.value))
    assert '"<tape.kernels.written linear 2x3>", line 2, in linear_2x3\n    (\n' in text  # the unpacking
