"""The fused attention kernel against ``torch.nn.functional.scaled_dot_product_attention`` in float64."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tape.kernels.attention import attention, attention_vjp
from tests.tape.kernels.helpers import close, data, seeds
from tests.tape.kernels.test_attention import Shapes, attention_shapes

torch: Any = pytest.importorskip("torch")
F: Any = torch.nn.functional


def _t(values: list[float], shape: tuple[int, ...]) -> Any:
    return torch.tensor(values, dtype=torch.float64).reshape(shape).requires_grad_(True)


def _flat(t: Any) -> list[float]:
    return [float(v) for v in t.detach().reshape(-1).tolist()]


@given(attention_shapes(), seeds, st.booleans())
def test_attention_matches_torch(shapes: Shapes, seed: int, causal: bool) -> None:
    qs, ks, vs = shapes
    (
        q,
        k,
        v,
    ) = data(seed, qs), data(seed + 1, ks), data(seed + 2, vs)
    scale = 1.0 / math.sqrt(qs[-1])
    out, out_shape, _ = attention(q, qs, k, ks, v, vs, scale, causal)
    tq, tk, tv = _t(q, qs), _t(k, ks), _t(v, vs)
    want = F.scaled_dot_product_attention(tq, tk, tv, is_causal=causal)
    assert out_shape == tuple(want.shape)
    close(out, _flat(want), 1e-9)
    g = data(seed + 3, out_shape)
    want.backward(torch.tensor(g, dtype=torch.float64).reshape(out_shape))
    for got, leaf in zip(attention_vjp(g, q, qs, k, ks, v, vs, scale, causal), (tq, tk, tv), strict=True):
        close(got, _flat(leaf.grad), 1e-9)
