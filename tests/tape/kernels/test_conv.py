"""conv2d/conv1d and the 2-d pools against NumPy sliding windows; vjps against differences; errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from numpy.lib.stride_tricks import sliding_window_view

from tape.kernels.conv import (
    avg_pool2d,
    avg_pool2d_vjp,
    conv1d,
    conv1d_vjp,
    conv2d,
    conv2d_vjp,
    max_pool2d,
    max_pool2d_vjp,
)
from tests.tape.kernels.helpers import arr, close, data, numeric_vjp, seeds

Shape = tuple[int, ...]


@st.composite
def conv_cases(draw: st.DrawFn) -> tuple[Shape, Shape, tuple[int, int], tuple[int, int], bool]:
    n, c, o = draw(st.integers(1, 2)), draw(st.integers(1, 2)), draw(st.integers(1, 3))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    ph, pw = draw(st.integers(0, 1)), draw(st.integers(0, 1))
    h = draw(st.integers(max(1, kh - 2 * ph), 4))
    w = draw(st.integers(max(1, kw - 2 * pw), 4))
    stride = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    return (n, c, h, w), (o, c, kh, kw), stride, (ph, pw), draw(st.booleans())


def _np_conv2d(
    x: np.ndarray, w: np.ndarray, b: np.ndarray | None, stride: tuple[int, int], pad: tuple[int, int]
) -> np.ndarray:
    xp = np.pad(x, ((0, 0), (0, 0), (pad[0], pad[0]), (pad[1], pad[1])))
    windows = sliding_window_view(xp, w.shape[2:], axis=(2, 3))[:, :, :: stride[0], :: stride[1]]
    out = np.einsum("ncpqij,ocij->nopq", windows, w)
    result: np.ndarray = out if b is None else out + b[None, :, None, None]
    return result


@given(conv_cases(), seeds)
@example(((2, 1, 8, 8), (3, 1, 3, 3), (1, 1), (1, 1), True), 0)
@example(((1, 2, 3, 1), (1, 2, 1, 1), (2, 1), (0, 0), False), 0)
def test_conv2d_is_numpys(
    case: tuple[Shape, Shape, tuple[int, int], tuple[int, int], bool], seed: int
) -> None:
    x_shape, w_shape, stride, pad, with_bias = case
    x, w = data(seed, x_shape), data(seed + 1, w_shape)
    b = data(seed + 2, (w_shape[0],)) if with_bias else None
    out, shape = conv2d(x, x_shape, w, w_shape, b, stride, pad)
    want = _np_conv2d(arr(x, x_shape), arr(w, w_shape), None if b is None else np.array(b), stride, pad)
    assert shape == want.shape
    close(out, want)


@given(conv_cases(), seeds)
@example(((1, 2, 3, 3), (2, 2, 2, 2), (2, 1), (1, 0), True), 0)
def test_conv2d_vjp_matches_differences(
    case: tuple[Shape, Shape, tuple[int, int], tuple[int, int], bool], seed: int
) -> None:
    x_shape, w_shape, stride, pad, with_bias = case
    x, w = data(seed, x_shape), data(seed + 1, w_shape)
    b = data(seed + 2, (w_shape[0],)) if with_bias else None
    _, shape = conv2d(x, x_shape, w, w_shape, b, stride, pad)
    g = data(seed + 3, shape)
    gx, gw, gb = conv2d_vjp(g, x, x_shape, w, w_shape, b, stride, pad)
    assert gx is not None
    assert conv2d_vjp(g, x, x_shape, w, w_shape, b, stride, pad, input_grad=False) == (None, gw, gb)
    close(gx, numeric_vjp(lambda v: conv2d(v, x_shape, w, w_shape, b, stride, pad)[0], x, g), 1e-6)
    close(gw, numeric_vjp(lambda v: conv2d(x, x_shape, v, w_shape, b, stride, pad)[0], w, g), 1e-6)
    if b is None:
        assert gb is None
    else:
        assert gb is not None
        close(gb, arr(g, shape).sum(axis=(0, 2, 3)))


@given(
    st.integers(1, 2),
    st.integers(1, 2),
    st.integers(1, 5),
    st.integers(1, 3),
    st.integers(1, 2),
    st.integers(0, 1),
    seeds,
)
def test_conv1d_is_conv2d_of_height_one(
    n: int, c: int, length: int, k: int, stride: int, pad: int, seed: int
) -> None:
    if k > length + 2 * pad:
        return
    x_shape, w_shape = (n, c, length), (2, c, k)
    x, w, b = data(seed, x_shape), data(seed + 1, w_shape), [0.5, -0.25]
    out, shape = conv1d(x, x_shape, w, w_shape, b, stride, pad)
    want = _np_conv2d(arr(x, (n, c, 1, length)), arr(w, (2, c, 1, k)), np.array(b), (1, stride), (0, pad))
    assert shape == want.shape[:2] + want.shape[3:]
    close(out, want)
    g = data(seed + 2, shape)
    gx, gw, gb = conv1d_vjp(g, x, x_shape, w, w_shape, b, stride, pad)
    assert gx is not None
    assert conv1d_vjp(g, x, x_shape, w, w_shape, b, stride, pad, input_grad=False) == (None, gw, gb)
    close(gx, numeric_vjp(lambda v: conv1d(v, x_shape, w, w_shape, b, stride, pad)[0], x, g), 1e-6)
    close(gw, numeric_vjp(lambda v: conv1d(x, x_shape, v, w_shape, b, stride, pad)[0], w, g), 1e-6)


@st.composite
def pool_cases(draw: st.DrawFn) -> tuple[Shape, tuple[int, int], tuple[int, int] | None]:
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    shape = (
        draw(st.integers(1, 2)),
        draw(st.integers(1, 2)),
        draw(st.integers(kh, 5)),
        draw(st.integers(kw, 5)),
    )
    stride = None if draw(st.booleans()) else (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    return shape, (kh, kw), stride


def _np_windows(x: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int] | None) -> np.ndarray:
    s = stride or kernel
    return sliding_window_view(x, kernel, axis=(2, 3))[:, :, :: s[0], :: s[1]]


@given(pool_cases(), seeds, st.booleans())
@example(((1, 1, 4, 4), (2, 2), None), 0, True)
@example(((1, 1, 3, 3), (2, 2), (1, 1)), 0, True)  # overlapping windows
def test_pools_are_numpys_and_their_vjps_match_differences(
    case: tuple[Shape, tuple[int, int], tuple[int, int] | None], seed: int, ties: bool
) -> None:
    shape, kernel, stride = case
    x = data(seed, shape)
    if ties:
        x = [float(round(v)) for v in x]
    windows = _np_windows(arr(x, shape), kernel, stride)
    out, out_shape, where = max_pool2d(x, shape, kernel, stride)
    assert out_shape == windows.shape[:4]
    assert out == windows.max(axis=(4, 5)).ravel().tolist()
    first = windows.reshape(*windows.shape[:4], -1).argmax(axis=4).ravel().tolist()
    assert [x[p] for p in where] == out
    s = stride or kernel
    for q, (p, j) in enumerate(zip(where, first, strict=True)):
        oh, ow = (q // out_shape[3]) % out_shape[2], q % out_shape[3]
        assert (p // shape[3]) % shape[2] == oh * s[0] + j // kernel[1]
        assert p % shape[3] == ow * s[1] + j % kernel[1]
    avg, avg_shape = avg_pool2d(x, shape, kernel, stride)
    assert avg_shape == out_shape
    close(avg, windows.mean(axis=(4, 5)))
    g = data(seed + 1, out_shape)
    close(
        avg_pool2d_vjp(g, shape, kernel, stride),
        numeric_vjp(lambda v: avg_pool2d(v, shape, kernel, stride)[0], x, g),
        1e-6,
    )
    if not ties:  # differences are only defined away from ties
        close(
            max_pool2d_vjp(g, shape, where),
            numeric_vjp(lambda v: max_pool2d(v, shape, kernel, stride)[0], x, g),
            1e-6,
        )


def test_conv_and_pool_errors() -> None:
    with pytest.raises(ValueError, match=r"conv2d: kernel \(3, 3\) is larger than the padded input \(2, 4\)"):
        conv2d([0.0] * 8, (1, 1, 2, 4), [0.0] * 9, (1, 1, 3, 3))
    with pytest.raises(
        ValueError, match=r"conv2d: x has 2 channels \(shape \(1, 2, 3, 3\)\) but weight expects 1"
    ):
        conv2d([0.0] * 18, (1, 2, 3, 3), [0.0] * 9, (1, 1, 3, 3))
    with pytest.raises(
        ValueError, match=r"conv2d: bias has 2 entries but weight \(1, 1, 1, 1\) has 1 filters"
    ):
        conv2d([0.0], (1, 1, 1, 1), [0.0], (1, 1, 1, 1), [0.0, 0.0])
    with pytest.raises(ValueError, match=r"conv2d: stride must be at least 1, got 0"):
        conv2d([0.0], (1, 1, 1, 1), [0.0], (1, 1, 1, 1), stride=0)
    with pytest.raises(TypeError, match=r"conv2d: padding must be an int or a pair of ints, got \(1, 2, 3\)"):
        conv2d([0.0], (1, 1, 1, 1), [0.0], (1, 1, 1, 1), padding=(1, 2, 3))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"conv2d: x must be \(N, C, H, W\)"):
        conv2d([0.0], (1, 1, 1), [0.0], (1, 1, 1, 1))
    with pytest.raises(ValueError, match=r"conv1d: kernel \(1, 4\) is larger than the padded input \(1, 3\)"):
        conv1d([0.0] * 3, (1, 1, 3), [0.0] * 4, (1, 1, 4))
    with pytest.raises(
        ValueError, match=r"max_pool2d: kernel \(3, 3\) is larger than the padded input \(2, 2\)"
    ):
        max_pool2d([0.0] * 4, (1, 1, 2, 2), 3)
    with pytest.raises(
        ValueError, match=r"avg_pool2d: grad has 1 entries but its shape \(1, 1, 2, 2\) needs 4"
    ):
        avg_pool2d_vjp([0.0], (1, 1, 2, 2), 1)
