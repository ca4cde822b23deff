"""conv2d, conv1d and the pools against PyTorch in float64: outputs and gradients to 1e-9."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

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
from tests.tape.kernels.helpers import close, data, seeds
from tests.tape.kernels.test_conv import conv_cases, pool_cases

torch: Any = pytest.importorskip("torch")
F: Any = torch.nn.functional

Shape = tuple[int, ...]


def _t(values: list[float], shape: Shape) -> Any:
    return torch.tensor(values, dtype=torch.float64).reshape(shape).requires_grad_(True)


def _flat(t: Any) -> list[float]:
    return [float(v) for v in t.detach().reshape(-1).tolist()]


@given(conv_cases(), seeds)
@example(((4, 1, 8, 8), (8, 1, 3, 3), (1, 1), (1, 1), True), 0)  # the digits case
def test_conv2d_and_its_vjp_match_torch(
    case: tuple[Shape, Shape, tuple[int, int], tuple[int, int], bool], seed: int
) -> None:
    x_shape, w_shape, stride, pad, with_bias = case
    x, w = data(seed, x_shape), data(seed + 1, w_shape)
    b = data(seed + 2, (w_shape[0],)) if with_bias else None
    tx, tw = _t(x, x_shape), _t(w, w_shape)
    tb = None if b is None else _t(b, (len(b),))
    want = F.conv2d(tx, tw, tb, stride=stride, padding=pad)
    out, shape = conv2d(x, x_shape, w, w_shape, b, stride, pad)
    assert shape == tuple(want.shape)
    close(out, _flat(want), 1e-9)
    g = data(seed + 3, shape)
    want.backward(_t(g, shape).detach())
    gx, gw, gb = conv2d_vjp(g, x, x_shape, w, w_shape, b, stride, pad)
    assert gx is not None
    close(gx, _flat(tx.grad), 1e-9)
    close(gw, _flat(tw.grad), 1e-9)
    if tb is not None:
        assert gb is not None
        close(gb, _flat(tb.grad), 1e-9)


@given(st.integers(1, 5), st.integers(1, 3), st.integers(1, 2), st.integers(0, 1), seeds)
def test_conv1d_and_its_vjp_match_torch(length: int, k: int, stride: int, pad: int, seed: int) -> None:
    if k > length + 2 * pad:
        return
    x_shape, w_shape = (2, 2, length), (3, 2, k)
    x, w, b = data(seed, x_shape), data(seed + 1, w_shape), data(seed + 2, (3,))
    tx, tw, tb = _t(x, x_shape), _t(w, w_shape), _t(b, (3,))
    want = F.conv1d(tx, tw, tb, stride=stride, padding=pad)
    out, shape = conv1d(x, x_shape, w, w_shape, b, stride, pad)
    assert shape == tuple(want.shape)
    close(out, _flat(want), 1e-9)
    g = data(seed + 3, shape)
    want.backward(_t(g, shape).detach())
    gx, gw, gb = conv1d_vjp(g, x, x_shape, w, w_shape, b, stride, pad)
    assert gx is not None
    close(gx, _flat(tx.grad), 1e-9)
    close(gw, _flat(tw.grad), 1e-9)
    assert gb is not None
    close(gb, _flat(tb.grad), 1e-9)


@given(pool_cases(), seeds)
@example(((1, 1, 3, 3), (2, 2), (1, 1)), 0)
def test_pools_and_their_vjps_match_torch(
    case: tuple[Shape, tuple[int, int], tuple[int, int] | None], seed: int
) -> None:
    shape, kernel, stride = case
    x = data(seed, shape)
    tx = _t(x, shape)
    want = F.max_pool2d(tx, kernel, stride)
    out, out_shape, where = max_pool2d(x, shape, kernel, stride)
    assert out_shape == tuple(want.shape)
    close(out, _flat(want), 1e-9)
    g = data(seed + 1, out_shape)
    want.backward(_t(g, out_shape).detach())
    close(max_pool2d_vjp(g, shape, where), _flat(tx.grad), 1e-9)
    tx = _t(x, shape)
    want = F.avg_pool2d(tx, kernel, stride)
    out, out_shape = avg_pool2d(x, shape, kernel, stride)
    assert out_shape == tuple(want.shape)
    close(out, _flat(want), 1e-9)
    want.backward(_t(g, out_shape).detach())
    close(avg_pool2d_vjp(g, shape, kernel, stride), _flat(tx.grad), 1e-9)
