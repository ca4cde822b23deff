"""``scaled_dot_product_attention`` on Arrays: equal to the unfused composition, all modes, errors."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

import tape
from tape import Tape
from tape import arrays as A
from tape.array import asarray, flatten, nest
from tests.tape.kernels.helpers import data, seeds
from tests.tape.kernels.test_attention import Shapes, attention_shapes
from tests.tape.test_nd_shape import _shifted, check_all_modes


def _unfused(q: Any, k: Any, v: Any, causal: bool, scale: float) -> Any:
    """``softmax(q @ k^T * scale + mask) @ v`` from the separate ops."""
    ndim = len(q.shape)
    axes = (*range(ndim - 2), ndim - 1, ndim - 2)
    scores = (q @ A.transpose(k, axes)) * scale
    if causal:
        n_q, n_k = q.shape[-2], k.shape[-2]
        scores = scores + [[0.0 if s <= t else -math.inf for s in range(n_k)] for t in range(n_q)]
    return A.softmax(scores, axis=-1) @ v


@given(attention_shapes(), seeds, st.booleans())
@example(((2, 3, 2), (2, 3, 2), (2, 3, 2)), 0, True)
def test_the_fused_op_equals_the_composition_in_value_and_gradient(
    shapes: Shapes, seed: int, causal: bool
) -> None:
    qs = shapes[0]
    args = tuple(nest(data(seed + i, s), s) for i, s in enumerate(shapes))
    scale = 1.0 / math.sqrt(qs[-1])

    def fused(q: Any, k: Any, v: Any) -> Any:
        return A.sum(A.scaled_dot_product_attention(q, k, v, is_causal=causal) ** 2)

    def composed(q: Any, k: Any, v: Any) -> Any:
        return A.sum(_unfused(q, k, v, causal, scale) ** 2)

    value, grads = tape.value_and_grad(fused, (0, 1, 2), arrays=True)(*args)
    want_value, want_grads = tape.value_and_grad(composed, (0, 1, 2), arrays=True)(*args)
    assert math.isclose(value, want_value, rel_tol=1e-12, abs_tol=1e-12)
    for got, want in zip(grads, want_grads, strict=True):
        for a, b in zip(flatten(got), flatten(want), strict=True):
            assert math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


@pytest.mark.parametrize("causal", [False, True])
def test_attention_in_every_mode(causal: bool) -> None:
    shapes = ((2, 3, 2), (2, 4, 2), (2, 4, 3))
    args = tuple(nest(data(7 + i, s), s) for i, s in enumerate(shapes))
    check_all_modes(
        lambda q, k, v: A.scaled_dot_product_attention(q, k, v, is_causal=causal, scale=0.7),
        *args,
        again=tuple(_shifted(a) for a in args),
    )


def test_plain_inputs_give_plain_tuples_and_untracked_arrays_give_untracked_results() -> None:
    q = ((1.0, 0.0), (0.0, 1.0))
    out = A.scaled_dot_product_attention(q, q, q)
    assert isinstance(out, tuple) and len(out) == 2 and len(out[0]) == 2
    untracked = A.scaled_dot_product_attention(asarray(q), q, q, is_causal=True)
    assert untracked.tape is None and untracked.data[0] == (1.0, 0.0)  # step 0 sees only itself
    with Tape() as t:
        x = t.watch_array([list(r) for r in q])
        tracked = A.scaled_dot_product_attention(x, x, x)
    assert tracked.tape is not None and tracked.data == out


def test_attention_errors_name_the_op_and_the_shapes() -> None:
    with pytest.raises(
        ValueError,
        match=r"scaled_dot_product_attention: query and key rows must have the same length; "
        r"got shapes \(2, 3\) and \(2, 2\)",
    ):
        A.scaled_dot_product_attention([[0.0] * 3] * 2, [[0.0] * 2] * 2, [[0.0]] * 2)
    with pytest.raises(
        ValueError, match=r"scaled_dot_product_attention: query, key and value need at least 2 axes"
    ):
        A.scaled_dot_product_attention([1.0], [1.0], [1.0])
    with pytest.raises(
        TypeError, match=r"scaled_dot_product_attention: scale must be a finite number, got nan"
    ):
        A.scaled_dot_product_attention([[1.0]], [[1.0]], [[1.0]], scale=math.nan)
    with pytest.raises(TypeError, match=r"scaled_dot_product_attention: is_causal must be a bool, got 1"):
        A.scaled_dot_product_attention([[1.0]], [[1.0]], [[1.0]], is_causal=1)  # type: ignore[call-overload]
