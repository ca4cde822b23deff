"""Tests for functional_nn.functional: softmax family, argmax, predict, accuracy."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

import tape
from functional_nn.functional import accuracy, argmax, log_softmax, logsumexp, predict, softmax
from tape import Scalar, Tape, Value
from tape.testing import assert_gradients_match

moderate = st.floats(-30.0, 30.0, allow_nan=False, allow_infinity=False)
wide = st.floats(-1e4, 1e4, allow_nan=False, allow_infinity=False)
logit_lists = st.lists(moderate, min_size=1, max_size=8)
wide_lists = st.lists(wide, min_size=1, max_size=8)


def _weighted(
    op: Callable[[Sequence[Scalar]], tuple[Scalar, ...]], weights: list[float]
) -> Callable[..., Scalar]:
    """A scalar projection of a vector-valued op, to check its whole Jacobian at once."""
    return lambda xs: tape.dot(weights, op(xs))


def _reference_logsumexp(xs: Sequence[float]) -> float:
    m = max(xs)
    return m + math.log(math.fsum(math.exp(x - m) for x in xs))


# --- values --------------------------------------------------------------------------


@given(wide_lists)
def test_softmax_is_a_distribution(xs: list[float]) -> None:
    probs = softmax(xs)
    assert len(probs) == len(xs)
    assert all(0.0 <= p <= 1.0 for p in probs)
    assert math.fsum(probs) == pytest.approx(1.0, abs=1e-14 * len(xs) + 1e-15)


@given(logit_lists, st.floats(-100.0, 100.0))
def test_softmax_family_is_shift_invariant(xs: list[float], c: float) -> None:
    moved = [x + c for x in xs]
    assert softmax(moved) == pytest.approx(softmax(xs), abs=1e-12)
    assert log_softmax(moved) == pytest.approx(log_softmax(xs), abs=1e-12)
    assert logsumexp(moved) == pytest.approx(logsumexp(xs) + c, abs=1e-12)


@given(st.lists(st.floats(-20.0, 20.0), min_size=1, max_size=8))
def test_log_softmax_is_log_of_softmax(xs: list[float]) -> None:
    assert log_softmax(xs) == pytest.approx([math.log(p) for p in softmax(xs)], abs=1e-12)


@given(wide_lists)
def test_logsumexp_matches_reference(xs: list[float]) -> None:
    assert logsumexp(xs) == pytest.approx(_reference_logsumexp(xs), rel=1e-15, abs=1e-12)
    assert log_softmax(xs) == pytest.approx([x - _reference_logsumexp(xs) for x in xs], rel=1e-12, abs=1e-12)


def test_known_values() -> None:
    assert logsumexp([0.0, 0.0]) == math.log(2.0)
    assert logsumexp([5.0]) == 5.0
    assert softmax([0.0, math.log(3.0)]) == pytest.approx((0.25, 0.75), abs=1e-15)
    assert softmax([7.0]) == (1.0,)
    assert log_softmax([7.0]) == (0.0,)


@pytest.mark.parametrize("xs", [[1000.0, 0.0, -1000.0], [-1000.0, 0.0, 1000.0], [1e4, -1e4, 0.0]])
def test_extreme_logits_are_exact_and_finite(xs: list[float]) -> None:
    top = max(xs)
    assert logsumexp(xs) == top
    assert log_softmax(xs) == tuple(x - top for x in xs)
    assert softmax(xs) == tuple(1.0 if x == top else 0.0 for x in xs)
    gradient = tape.grad(logsumexp)(xs)
    assert gradient == [1.0 if x == top else 0.0 for x in xs]
    for k in range(len(xs)):
        for op in (log_softmax, softmax):
            g = tape.grad(lambda v, op=op, k=k: op(v)[k])(xs)
            assert all(math.isfinite(x) for x in g)


def test_non_finite_logits_follow_ieee() -> None:
    assert logsumexp([-math.inf, -math.inf]) == -math.inf
    assert logsumexp([math.inf, 0.0]) == math.inf
    assert logsumexp([-math.inf, 0.0]) == 0.0
    assert softmax([-math.inf, 0.0]) == (0.0, 1.0)
    assert all(math.isnan(p) for p in softmax([-math.inf, -math.inf]))
    assert math.isnan(logsumexp([0.0, math.nan]))


# --- floats in, floats out; Values in, a fused record -----------------------------------


@given(logit_lists)
def test_floats_in_give_floats_out(xs: list[float]) -> None:
    assert type(logsumexp(xs)) is float
    assert all(type(y) is float for y in log_softmax(xs))
    assert all(type(y) is float for y in softmax(xs))
    ints = [round(x) for x in xs]
    assert type(logsumexp(ints)) is float
    assert all(type(y) is float for y in softmax(ints))


@given(logit_lists)
def test_values_give_the_same_numbers_as_floats(xs: list[float]) -> None:
    with Tape() as t:
        vs = [t.watch(x) for x in xs]
        lse, lsm, sm = logsumexp(vs), log_softmax(vs), softmax(vs)
    assert isinstance(lse, Value)
    assert lse.data == logsumexp(xs)
    assert all(isinstance(y, Value) for y in (*lsm, *sm))
    assert [y.data for y in lsm if isinstance(y, Value)] == list(log_softmax(xs))
    assert [y.data for y in sm if isinstance(y, Value)] == list(softmax(xs))


def _recorded(op: Callable[[list[Value]], object], n: int) -> tuple[int, int, Tape]:
    """Nodes and edges that ``op`` records on ``n`` watched inputs."""
    with Tape() as t:
        xs = [t.watch(float(i % 5) - 2.0) for i in range(n)]
        start = len(t)
        op(xs)
    added = t.nodes[start:]
    return len(added), sum(len(node.parents) for node in added), t


@pytest.mark.parametrize("op", [log_softmax, softmax, logsumexp])
def test_values_in_record_a_linear_fused_graph(op: Callable[[list[Value]], object]) -> None:
    nodes_10, edges_10, t = _recorded(op, 10)
    nodes_20, edges_20, _ = _recorded(op, 20)
    nodes_40, edges_40, _ = _recorded(op, 40)
    assert nodes_10 <= 4 * 10 + 5  # with the max_shift node
    assert edges_10 <= 7 * 10 + 4  # max_shift reads every input
    # Linear: doubling the classes adds the same number of nodes each time.
    assert nodes_40 - nodes_20 == 2 * (nodes_20 - nodes_10)
    assert edges_40 - edges_20 == 2 * (edges_20 - edges_10)
    sums = [node for node in t.nodes if node.op.name == "vsum"]
    assert len(sums) == 1 and len(sums[0].parents) == 10
    binary_adds = [node for node in t.nodes if node.op.name == "add" and len(node.parents) == 2]
    assert len(binary_adds) <= 1  # no chain of adds: at most logsumexp's shift + log(total)


def test_mixed_floats_and_values() -> None:
    with Tape() as t:
        x = t.watch(1.0)
        out = log_softmax([x, 2.0, 0.5])
    assert all(isinstance(y, Value) for y in out)
    assert [float(y) for y in out] == list(log_softmax([1.0, 2.0, 0.5]))


# --- gradients ---------------------------------------------------------------------------


@given(logit_lists)
def test_logsumexp_gradient_is_softmax(xs: list[float]) -> None:
    assert tape.grad(logsumexp)(xs) == pytest.approx(list(softmax(xs)), abs=1e-15)
    assert_gradients_match(logsumexp, xs)


@given(st.data(), st.lists(st.floats(-5.0, 5.0), min_size=1, max_size=6))
def test_log_softmax_and_softmax_gradients_match_numerical(data: st.DataObject, xs: list[float]) -> None:
    weights = data.draw(st.lists(st.floats(-2.0, 2.0), min_size=len(xs), max_size=len(xs)))
    assert_gradients_match(_weighted(log_softmax, weights), xs)
    assert_gradients_match(_weighted(softmax, weights), xs)


@given(st.lists(st.floats(-5.0, 5.0), min_size=2, max_size=5))
def test_second_derivative_of_logsumexp(xs: list[float]) -> None:
    """Nested tapes: d2/dx0^2 logsumexp = p0 (1 - p0)."""
    p0 = softmax(xs)[0]
    second = tape.grad(lambda v: tape.grad(logsumexp)(v)[0])(xs)
    assert second[0] == pytest.approx(p0 * (1.0 - p0), abs=1e-12)


# --- argmax, predict, accuracy ---------------------------------------------------------


def test_argmax_and_predict() -> None:
    assert argmax([0.1, 0.7, 0.7, 0.2]) == 1
    assert argmax([-3.0]) == 0
    assert argmax([1, 5, 2]) == 1
    assert argmax([0.0, math.nan, 1.0]) == 1
    assert argmax([math.nan, 2.0]) == 0
    assert argmax([-math.inf, -math.inf]) == 0
    assert predict([-1.0, 3.0, 0.5]) == 1
    with Tape() as t:
        xs = [t.watch(v) for v in (0.2, -1.0, 4.0)]
        before = len(t)
        assert argmax(xs) == 2
        assert predict(xs) == 2
        assert len(t) == before


@given(st.lists(moderate, min_size=1, max_size=8))
def test_predict_is_the_first_maximum_and_agrees_with_softmax(xs: list[float]) -> None:
    k = predict(xs)
    assert xs[k] == max(xs)
    assert all(x < xs[k] for x in xs[:k])
    probs = softmax(xs)
    assert probs[k] == max(probs)


def test_accuracy() -> None:
    logits = [[2.0, 0.0], [0.0, 1.0], [5.0, 1.0], [1.0, 1.0]]
    assert accuracy(logits, [0, 1, 1, 0]) == 0.75
    assert accuracy(logits, [1, 0, 1, 1]) == 0.0
    assert type(accuracy(logits[:1], [0])) is float
    with Tape() as t:
        rows = [[t.watch(a), t.watch(b)] for a, b in logits]
        assert accuracy(rows, [0, 1, 0, 0]) == 1.0


def test_errors() -> None:
    for op in (logsumexp, log_softmax, softmax, argmax, predict):
        with pytest.raises(ValueError, match="empty"):
            op([])
    with pytest.raises(TypeError, match="element 1"):
        softmax([1.0, "2"])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="empty batch"):
        accuracy([], [])
    with pytest.raises(ValueError, match="2 rows of logits but 1 targets"):
        accuracy([[1.0], [2.0]], [0])
    with pytest.raises(ValueError, match=r"row 1: class target 2 is out of range for 2 classes"):
        accuracy([[1.0, 0.0], [0.0, 1.0]], [0, 2])
    with pytest.raises(ValueError, match="row 0: class target -1"):
        accuracy([[1.0, 0.0]], [-1])
    with pytest.raises(TypeError, match="must be an int"):
        accuracy([[1.0, 0.0]], [1.0])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="must be an int"):
        accuracy([[1.0, 0.0]], [True])
    with pytest.raises(ValueError, match="row 0: needs at least one logit"):
        accuracy([[]], [0])
