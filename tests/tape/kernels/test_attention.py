"""The fused attention kernel against a NumPy reference (masked softmax), with its vjp and jvp."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from tape.kernels.attention import attention, attention_jvp, attention_vjp, layout
from tests.tape.kernels.helpers import arr, close, data, numeric_vjp, seeds

Shape = tuple[int, ...]
Shapes = tuple[Shape, Shape, Shape]


@st.composite
def attention_shapes(draw: st.DrawFn) -> Shapes:
    lead = tuple(draw(st.lists(st.integers(1, 2), max_size=2)))
    n_q, n_k = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    e, ev = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    return (*lead, n_q, e), (*lead, n_k, e), (*lead, n_k, ev)


def _reference(q: np.ndarray, k: np.ndarray, v: np.ndarray, scale: float, causal: bool) -> np.ndarray:
    scores = np.einsum("...le,...se->...ls", q, k) * scale
    if causal:
        seen = np.tril(np.ones(scores.shape[-2:], dtype=bool))
        scores = np.where(seen, scores, -np.inf)
    scores = scores - scores.max(axis=-1, keepdims=True)
    weights = np.exp(scores)
    weights = weights / weights.sum(axis=-1, keepdims=True)
    result: np.ndarray = weights @ v
    return result


@given(attention_shapes(), seeds, st.booleans(), st.sampled_from([None, 0.5]))
@example(((2, 3, 2), (2, 3, 2), (2, 3, 1)), 0, True, None)
@example(((1, 4, 2), (1, 2, 2), (1, 2, 3)), 1, True, 0.5)  # more queries than keys, causal
@example(((2, 1), (3, 1), (3, 2)), 2, False, None)  # no leading axes
def test_attention_matches_the_masked_softmax_and_differentiates(
    shapes: Shapes, seed: int, causal: bool, scale: float | None
) -> None:
    qs, ks, vs = shapes
    q, k, v = data(seed, qs), data(seed + 1, ks), data(seed + 2, vs)
    s = 1.0 / math.sqrt(qs[-1]) if scale is None else scale
    out, out_shape, probabilities = attention(q, qs, k, ks, v, vs, s, causal)
    want = _reference(arr(q, qs), arr(k, ks), arr(v, vs), s, causal)
    assert out_shape == want.shape
    close(out, want)
    g = data(seed + 3, out_shape)
    dq, dk, dv = attention_vjp(g, q, qs, k, ks, v, vs, s, causal)
    # the forward's probabilities, passed back, are the ones the rules would recompute
    assert attention_vjp(g, q, qs, k, ks, v, vs, s, causal, probabilities) == (dq, dk, dv)
    close(dq, numeric_vjp(lambda x: attention(x, qs, k, ks, v, vs, s, causal)[0], q, g), 1e-6)
    close(dk, numeric_vjp(lambda x: attention(q, qs, x, ks, v, vs, s, causal)[0], k, g), 1e-6)
    close(dv, numeric_vjp(lambda x: attention(q, qs, k, ks, x, vs, s, causal)[0], v, g), 1e-6)
    # forward mode is the transpose of reverse mode: <g, J t> = <J^T g, t>
    tq, tk, tv = data(seed + 4, qs), data(seed + 5, ks), data(seed + 6, vs)
    tangent = attention_jvp(q, qs, k, ks, v, vs, s, causal, tq, tk, tv)
    assert attention_jvp(q, qs, k, ks, v, vs, s, causal, tq, tk, tv, probabilities) == tangent
    pairing = sum(map(float.__mul__, g, tangent))
    adjoint = (
        sum(map(float.__mul__, dq, tq)) + sum(map(float.__mul__, dk, tk)) + sum(map(float.__mul__, dv, tv))
    )
    assert math.isclose(pairing, adjoint, rel_tol=1e-9, abs_tol=1e-9)
    only_v = attention_jvp(q, qs, k, ks, v, vs, s, causal, None, None, tv)
    assert math.isclose(sum(map(float.__mul__, g, only_v)), sum(map(float.__mul__, dv, tv)), abs_tol=1e-9)


def test_causal_attention_is_exact_for_large_scores() -> None:
    out, _, _ = attention([1000.0, -1000.0], (2, 1), [1000.0, -1000.0], (2, 1), [1.0, 2.0], (2, 1), 1.0, True)
    assert out == [1.0, 2.0]  # query 1's scores are -1e6 and 1e6: all its weight goes to key 1


def test_no_queries_give_zero_key_and_value_gradients() -> None:
    dq, dk, dv = attention_vjp([], [], (0, 2), [1.0, 2.0], (1, 2), [3.0], (1, 1), 1.0, False)
    assert (dq, dk, dv) == ([], [0.0, 0.0], [0.0])


@pytest.mark.parametrize(
    ("shapes", "message"),
    [
        (((3,), (3, 2), (3, 2)), r"need at least 2 axes .* got shapes \(3,\), \(3, 2\) and \(3, 2\)"),
        (((2, 2, 3), (1, 2, 3), (2, 2, 3)), r"must share their leading axes"),
        (
            ((2, 3), (2, 4), (2, 1)),
            r"query and key rows must have the same length; got shapes \(2, 3\) and \(2, 4\)",
        ),
        (((2, 3), (2, 3), (4, 1)), r"key and value must have as many rows; got shapes \(2, 3\) and \(4, 1\)"),
        (((2, 3), (0, 3), (0, 1)), r"there are queries but no keys"),
    ],
)
def test_attention_shape_errors_name_the_shapes(shapes: Shapes, message: str) -> None:
    with pytest.raises(ValueError, match="attention: .*" + message):
        layout(*shapes, op="attention")
