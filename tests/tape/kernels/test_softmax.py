"""softmax, log_softmax, logsumexp and layer_norm against NumPy; vjps against differences and NumPy."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from tape.kernels.softmax import (
    layer_norm,
    layer_norm_vjp,
    log_softmax,
    log_softmax_vjp,
    logsumexp,
    logsumexp_vjp,
    softmax,
    softmax_vjp,
)
from tests.tape.kernels.helpers import arr, close, data, numeric_vjp, seeds, shapes

Shape = tuple[int, ...]


@st.composite
def shape_and_axis(draw: st.DrawFn) -> tuple[Shape, int]:
    shape = draw(shapes(1))
    return shape, draw(st.integers(-len(shape), len(shape) - 1))


def _np_lse(x: np.ndarray, axis: int, keepdims: bool = False) -> np.ndarray:
    m = x.max(axis=axis, keepdims=True)
    out: np.ndarray = np.log(np.exp(x - m).sum(axis=axis, keepdims=True)) + m
    return out if keepdims else out.squeeze(axis)


@given(shape_and_axis(), seeds, st.floats(1.0, 1000.0))
@example(((2, 3), 0), 0, 1000.0)
@example(((1,), -1), 0, 1.0)
def test_forwards_are_numpys(sa: tuple[Shape, int], seed: int, scale: float) -> None:
    shape, axis = sa
    x = [v * scale for v in data(seed, shape)]
    a = arr(x, shape)
    lse = _np_lse(a, axis, keepdims=True)
    close(softmax(x, shape, axis), np.exp(a - lse))
    close(log_softmax(x, shape, axis), a - lse)
    for keepdims in (False, True):
        out, out_shape = logsumexp(x, shape, axis, keepdims=keepdims)
        want = _np_lse(a, axis, keepdims)
        assert out_shape == want.shape
        close(out, want)


def test_extreme_logits_are_exact() -> None:
    assert softmax([1000.0, -1000.0, 1000.0], (3,)) == [0.5, 0.0, 0.5]
    assert log_softmax([-1000.0, -1000.0], (2,)) == [-math.log(2.0)] * 2
    assert logsumexp([-1000.0, -1000.0], (2,))[0] == [-1000.0 + math.log(2.0)]
    assert logsumexp([-math.inf, -math.inf], (2,))[0] == [-math.inf]
    assert logsumexp([], (2, 0), axis=1) == ([-math.inf, -math.inf], (2,))


@given(shape_and_axis(), seeds)
@example(((2, 3, 2), 1), 0)
def test_vjps_match_differences(sa: tuple[Shape, int], seed: int) -> None:
    shape, axis = sa
    x, g = data(seed, shape), data(seed + 1, shape)
    y = softmax(x, shape, axis)
    got = softmax_vjp(g, y, shape, axis)
    close(got, numeric_vjp(lambda v: softmax(v, shape, axis), x, g), 1e-6)
    ya, ga = arr(y, shape), arr(g, shape)
    close(got, ya * (ga - (ga * ya).sum(axis=axis, keepdims=True)))
    got = log_softmax_vjp(g, log_softmax(x, shape, axis), shape, axis)
    close(got, numeric_vjp(lambda v: log_softmax(v, shape, axis), x, g), 1e-6)

    def lse(v: list[float], keepdims: bool) -> list[float]:
        return logsumexp(v, shape, axis, keepdims=keepdims)[0]

    for keepdims in (False, True):
        _, out_shape = logsumexp(x, shape, axis, keepdims=keepdims)
        h = data(seed + 2, out_shape)
        got = logsumexp_vjp(h, x, shape, axis, keepdims=keepdims)
        close(got, numeric_vjp(lambda v: lse(v, keepdims), x, h), 1e-6)  # noqa: B023 (used at once)


@given(shapes(1), seeds, st.booleans(), st.booleans())
@example((2, 1), 0, True, True)  # one entry per row: xhat is 0
def test_layer_norm_is_numpys_and_its_vjp_matches_differences(
    shape: Shape, seed: int, has_w: bool, has_b: bool
) -> None:
    d = shape[-1]
    x, g = data(seed, shape), data(seed + 1, shape)
    w = data(seed + 2, (d,)) if has_w else None
    b = data(seed + 3, (d,)) if has_b else None
    a = arr(x, shape)
    xhat = (a - a.mean(-1, keepdims=True)) / np.sqrt(a.var(-1, keepdims=True) + 1e-5)
    want = xhat * (np.array(w) if w else 1.0) + (np.array(b) if b else 0.0)
    close(layer_norm(x, shape, w, b), want)
    gx, gw, gb = layer_norm_vjp(g, x, shape, w, b)
    close(gx, numeric_vjp(lambda v: layer_norm(v, shape, w, b), x, g), 1e-6)
    if w is None:
        assert gw is None
    else:
        assert gw is not None
        close(gw, (arr(g, shape) * xhat).reshape(-1, d).sum(0))
    if b is None:
        assert gb is None
    else:
        assert gb is not None
        close(gb, arr(g, shape).reshape(-1, d).sum(0))


def test_errors() -> None:
    with pytest.raises(ValueError, match=r"softmax: axis 2 is out of range for shape \(2, 3\)"):
        softmax([0.0] * 6, (2, 3), 2)
    with pytest.raises(
        ValueError, match=r"layer_norm: weight has 2 entries but the last axis of shape \(2, 3\) has 3"
    ):
        layer_norm([0.0] * 6, (2, 3), [1.0, 1.0])
    with pytest.raises(ValueError, match=r"layer_norm: x is 0-d"):
        layer_norm([0.0], ())
    with pytest.raises(ValueError, match=r"logsumexp: grad has 3 entries but its shape \(2,\) needs 2"):
        logsumexp_vjp([0.0] * 3, [0.0] * 6, (2, 3))
