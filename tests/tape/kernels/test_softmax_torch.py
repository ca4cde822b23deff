"""layer_norm and the softmax family against PyTorch in float64: outputs and gradients to 1e-9."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tape.kernels.softmax import (
    layer_norm,
    layer_norm_vjp,
    log_softmax,
    log_softmax_vjp,
    softmax,
    softmax_vjp,
)
from tests.tape.kernels.helpers import close, data, seeds, shapes

torch: Any = pytest.importorskip("torch")
F: Any = torch.nn.functional

Shape = tuple[int, ...]


def _t(values: list[float], shape: Shape) -> Any:
    return torch.tensor(values, dtype=torch.float64).reshape(shape).requires_grad_(True)


def _flat(t: Any) -> list[float]:
    return [float(v) for v in t.detach().reshape(-1).tolist()]


@given(shapes(1), seeds, st.booleans())
def test_layer_norm_matches_torch(shape: Shape, seed: int, affine: bool) -> None:
    d = shape[-1]
    x, g = data(seed, shape), data(seed + 1, shape)
    w = data(seed + 2, (d,)) if affine else None
    b = data(seed + 3, (d,)) if affine else None
    tx = _t(x, shape)
    tw = None if w is None else _t(w, (d,))
    tb = None if b is None else _t(b, (d,))
    want = F.layer_norm(tx, (d,), tw, tb, 1e-5)
    close(layer_norm(x, shape, w, b), _flat(want), 1e-9)
    want.backward(_t(g, shape).detach())
    gx, gw, gb = layer_norm_vjp(g, x, shape, w, b)
    close(gx, _flat(tx.grad), 1e-9)
    if tw is not None and tb is not None:
        assert gw is not None and gb is not None
        close(gw, _flat(tw.grad), 1e-9)
        close(gb, _flat(tb.grad), 1e-9)


@given(shapes(1), seeds, st.data())
def test_softmax_and_log_softmax_match_torch(shape: Shape, seed: int, drawn: st.DataObject) -> None:
    axis = drawn.draw(st.integers(-len(shape), len(shape) - 1))
    x, g = data(seed, shape), data(seed + 1, shape)
    for ours, vjp, theirs in (
        (softmax, softmax_vjp, torch.softmax),
        (log_softmax, log_softmax_vjp, torch.log_softmax),
    ):
        tx = _t(x, shape)
        want = theirs(tx, axis)
        y = ours(x, shape, axis)
        close(y, _flat(want), 1e-9)
        want.backward(_t(g, shape).detach())
        close(vjp(g, y, shape, axis), _flat(tx.grad), 1e-9)
