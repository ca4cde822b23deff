"""Convolutions and pools on Arrays: a direct loop reference, central differences, jvp against vjp,
jit bit for bit, and errors naming the op, the argument and both shapes."""

from __future__ import annotations

import doctest
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

import tape
from tape import Array, Tape
from tape import arrays as A
from tape.array import asarray
from tape.ops import convolution as convolution_ops
from tests.tape.test_nd_shape import _shifted, check_all_modes, nested

Shape = tuple[int, ...]


def conv2d_loops(x: Any, w: Any, b: Any, stride: tuple[int, int], padding: tuple[int, int]) -> np.ndarray:
    """The definition of a 2-d cross-correlation, one output entry at a time."""
    xs = np.pad(np.asarray(x), ((0, 0), (0, 0), (padding[0],) * 2, (padding[1],) * 2))
    ws = np.asarray(w)
    n, c, h, wd = xs.shape
    o, _, kh, kw = ws.shape
    oh, ow = (h - kh) // stride[0] + 1, (wd - kw) // stride[1] + 1
    out = np.zeros((n, o, oh, ow))
    for i in range(n):
        for f in range(o):
            for r in range(oh):
                for q in range(ow):
                    total = 0.0 if b is None else b[f]
                    for ch in range(c):
                        for di in range(kh):
                            for dj in range(kw):
                                total += xs[i, ch, r * stride[0] + di, q * stride[1] + dj] * ws[f, ch, di, dj]
                    out[i, f, r, q] = total
    return out


@st.composite
def convolutions(draw: st.DrawFn) -> tuple[Any, Any, Any, tuple[int, int], tuple[int, int]]:
    n, c, o = draw(st.integers(1, 2)), draw(st.integers(1, 2)), draw(st.integers(1, 2))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    padding = (draw(st.integers(0, 1)), draw(st.integers(0, 1)))
    h = draw(st.integers(max(1, kh - 2 * padding[0]), 4))
    wd = draw(st.integers(max(1, kw - 2 * padding[1]), 4))
    stride = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    x = draw(nested((n, c, h, wd)))
    w = draw(nested((o, c, kh, kw)))
    b = draw(st.none() | nested((o,)))
    return x, w, b, stride, padding


@given(convolutions())
@example((((((1.0, 2.0), (3.0, 4.0)),),), ((((1.0,),),),), None, (1, 1), (1, 1)))
def test_conv2d_matches_the_loop_reference_and_differentiates(
    case: tuple[Any, Any, Any, tuple[int, int], tuple[int, int]],
) -> None:
    x, w, b, stride, padding = case
    got = A.conv2d(asarray(x), w, b, stride, padding)
    want = conv2d_loops(x, w, b, stride, padding)
    assert isinstance(got, Array) and got.shape == want.shape
    assert np.allclose(np.asarray(got.tolist()), want, rtol=1e-12, atol=1e-12)
    if b is None:
        check_all_modes(lambda a, k: A.conv2d(a, k, None, stride, padding), x, w, again=(_shifted(x), w))
    else:
        check_all_modes(
            lambda a, k, c: A.conv2d(a, k, c, stride, padding), x, w, b, again=(_shifted(x), w, _shifted(b))
        )


@given(
    st.integers(1, 2),
    st.integers(1, 2),
    st.integers(1, 3),
    st.integers(0, 1),
    st.integers(1, 2),
    st.booleans(),
)
def test_conv1d_is_conv2d_over_one_row(c: int, o: int, k: int, padding: int, stride: int, bias: bool) -> None:
    length = max(1, k - 2 * padding) + 2
    x = tuple(
        tuple(tuple(0.3 * i - 0.1 * j + 0.05 * t for t in range(length)) for j in range(c)) for i in range(2)
    )
    w = tuple(tuple(tuple(math.sin(f + 2 * j + 3 * t) for t in range(k)) for j in range(c)) for f in range(o))
    b = tuple(0.5 - f for f in range(o)) if bias else None
    got = A.conv1d(asarray(x), w, b, stride, padding)
    want = conv2d_loops(
        [[[row] for row in sample] for sample in x],
        [[[row] for row in f] for f in w],
        b,
        (1, stride),
        (0, padding),
    )[:, :, 0, :]
    assert isinstance(got, Array) and got.shape == want.shape
    assert np.allclose(np.asarray(got.tolist()), want, rtol=1e-12, atol=1e-12)
    if b is None:
        check_all_modes(lambda a, q: A.conv1d(a, q, None, stride, padding), x, w, again=(_shifted(x), w))
    else:
        check_all_modes(lambda a, q, r: A.conv1d(a, q, r, stride, padding), x, w, b)


def test_conv2d_with_untracked_or_constant_operands() -> None:
    x = ((((1.0, 2.0, 0.5), (3.0, -4.0, 1.0)),),)
    w = ((((1.0, -1.0),),),)
    with Tape() as t:
        weight = t.watch_array(w)
        out = A.conv2d(x, weight, [0.25])
        loss = A.mse(out, [[[[0.0, 0.0], [0.0, 0.0]]]])
    gw = t.gradient(loss, weight)
    assert isinstance(out, Array) and out.shape == (1, 1, 2, 2)
    want = tape.grad(lambda k: A.mse(A.conv2d(x, k, [0.25]), [[[[0.0, 0.0], [0.0, 0.0]]]]), arrays=True)(w)
    assert np.allclose(np.asarray(gw), np.asarray(want))
    assert A.conv2d(x, w) == ((((-1.0, 1.5), (7.0, -5.0)),),)  # plain data in, plain tuples out


def test_conv_errors_name_the_op_the_argument_and_both_shapes() -> None:
    x = [[[[1.0, 2.0], [3.0, 4.0]]]]  # (1, 1, 2, 2)
    with pytest.raises(
        ValueError,
        match=r"conv2d: weight of shape \(1, 1, 3, 3\) has a kernel 3x3 is larger than the input of shape "
        r"\(1, 1, 2, 2\) padded by \(0, 0\) \(2x2\)",
    ):
        A.conv2d(x, [[[[1.0] * 3] * 3]])
    with pytest.raises(ValueError, match=r"x has 1 channels \(shape \(1, 1, 2, 2\)\) but weight expects 2"):
        A.conv2d(x, [[[[1.0]], [[1.0]]]])
    with pytest.raises(ValueError, match=r"conv2d: x must be \(N, C, H, W\), got shape \(1, 2, 2\)"):
        A.conv2d(x[0], [[[[1.0]]]])
    with pytest.raises(
        ValueError, match=r"bias of shape \(2,\) does not match weight of shape \(1, 1, 1, 1\)"
    ):
        A.conv2d(x, [[[[1.0]]]], [0.0, 1.0])
    with pytest.raises(ValueError, match="conv2d: stride must be at least 1"):
        A.conv2d(x, [[[[1.0]]]], stride=0)
    with pytest.raises(TypeError, match="conv2d: padding must be an int or a pair of ints"):
        A.conv2d(x, [[[[1.0]]]], padding=(1, 1, 1))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"conv1d: weight of shape \(1, 1, 4\) has a kernel 1x4 is larger"):
        A.conv1d([[[1.0, 2.0]]], [[[1.0] * 4]], padding=0)
    with pytest.raises(ValueError, match=r"conv1d: x must be \(N, C, L\), got shape \(1, 1, 2, 2\)"):
        A.conv1d(x, [[[1.0]]])


# --- pools ----------------------------------------------------------------------------------------


def pool_loops(x: Any, kernel: tuple[int, int], stride: tuple[int, int], reduce: Any) -> np.ndarray:
    xs = np.asarray(x)
    n, c, h, w = xs.shape
    oh, ow = (h - kernel[0]) // stride[0] + 1, (w - kernel[1]) // stride[1] + 1
    out = np.zeros((n, c, oh, ow))
    for i in range(n):
        for ch in range(c):
            for r in range(oh):
                for q in range(ow):
                    window = xs[
                        i,
                        ch,
                        r * stride[0] : r * stride[0] + kernel[0],
                        q * stride[1] : q * stride[1] + kernel[1],
                    ]
                    out[i, ch, r, q] = reduce(window)
    return out


@st.composite
def pools(draw: st.DrawFn) -> tuple[Any, tuple[int, int], tuple[int, int] | None]:
    kernel = (draw(st.integers(1, 2)), draw(st.integers(1, 3)))
    stride = draw(st.none() | st.tuples(st.integers(1, 2), st.integers(1, 2)))
    shape = (
        draw(st.integers(1, 2)),
        draw(st.integers(1, 2)),
        draw(st.integers(kernel[0], 4)),
        draw(st.integers(kernel[1], 4)),
    )
    # distinct entries: central differences need each window's maximum to be unique
    count = math.prod(shape)
    values = draw(st.permutations(range(count)))
    x = np.reshape([0.37 * v - 1.0 for v in values], shape).tolist()
    return x, kernel, stride


@given(pools())
def test_max_pool2d_matches_the_loop_reference_and_differentiates(
    case: tuple[Any, tuple[int, int], tuple[int, int] | None],
) -> None:
    x, kernel, stride = case
    got = A.max_pool2d(asarray(x), kernel, stride)
    want = pool_loops(x, kernel, stride or kernel, np.max)
    assert isinstance(got, Array) and got.tolist() == want.tolist()
    check_all_modes(lambda a: A.max_pool2d(a, kernel, stride), x, again=(_shifted(x),))


@given(pools())
def test_avg_pool2d_matches_the_loop_reference_and_differentiates(
    case: tuple[Any, tuple[int, int], tuple[int, int] | None],
) -> None:
    x, kernel, stride = case
    got = A.avg_pool2d(asarray(x), kernel, stride)
    want = pool_loops(x, kernel, stride or kernel, np.mean)
    assert isinstance(got, Array) and np.allclose(np.asarray(got.tolist()), want, rtol=1e-12)
    check_all_modes(lambda a: A.avg_pool2d(a, kernel, stride), x, again=(_shifted(x),))


def test_max_pool2d_sends_the_gradient_to_the_first_maximum() -> None:
    grads = tape.grad(lambda a: A.mse(A.max_pool2d(a, 2), [[[[0.0]]]]), arrays=True)(
        [[[[3.0, 3.0], [1.0, 3.0]]]]
    )
    assert grads == [[[[6.0, 0.0], [0.0, 0.0]]]]


def test_pool_errors() -> None:
    x = [[[[1.0, 2.0], [3.0, 4.0]]]]
    with pytest.raises(
        ValueError, match=r"max_pool2d: kernel_size 3x3 is larger than the input of shape \(1, 1, 2, 2\)"
    ):
        A.max_pool2d(x, 3)
    with pytest.raises(ValueError, match=r"avg_pool2d: x must be \(N, C, H, W\), got shape \(1, 2, 2\)"):
        A.avg_pool2d(x[0], 1)
    with pytest.raises(ValueError, match="avg_pool2d: kernel_size must be at least 1"):
        A.avg_pool2d(x, 0)


def test_doctests() -> None:
    failures, tried = doctest.testmod(convolution_ops)
    assert failures == 0 and tried > 0


def test_conv_and_pool_with_a_constant_batch_in_every_mode() -> None:
    """The batch as data (no tangent, no gradient): only the weight and the bias are perturbed."""
    x = tuple(
        tuple(
            tuple(tuple(math.sin(i + 2 * c + 3 * r + 5 * q) for q in range(4)) for r in range(4))
            for c in range(2)
        )
        for i in range(2)
    )
    w = tuple(
        tuple(
            tuple(tuple(0.1 * (f + c) - 0.2 * r + 0.3 * q for q in range(2)) for r in range(2))
            for c in range(2)
        )
        for f in range(3)
    )
    b = (0.5, -0.25, 0.0)
    check_all_modes(lambda k, c: A.max_pool2d(A.conv2d(x, k, c, 1, 1), 2), w, b, again=(_shifted(w), b))
    check_all_modes(lambda k: A.avg_pool2d(A.conv2d(x, k, None, 2), 1), w)
