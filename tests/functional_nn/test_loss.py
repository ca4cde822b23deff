"""Tests for functional_nn.loss: values against reference formulas, gradients, extremes, errors."""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Sequence

import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

import tape
from functional_nn import loss as F
from functional_nn.functional import log_softmax, softmax
from functional_nn.loss import (
    LOG_FLOOR,
    bce_loss,
    bce_loss_batch,
    bce_with_logits,
    bce_with_logits_batch,
    cross_entropy,
    cross_entropy_batch,
    cross_entropy_with_logits,
    cross_entropy_with_logits_batch,
    hinge_loss,
    hinge_loss_batch,
    mse_loss,
    mse_loss_batch,
    multi_margin_loss,
    multi_margin_loss_batch,
)
from tape import Scalar, Tape, Value
from tape.testing import assert_gradients_match


def close(expected: float) -> object:
    """Equal to ``expected`` within 1e-12, relative or absolute."""
    return pytest.approx(expected, rel=1e-12, abs=1e-12)


reals = st.floats(-50.0, 50.0, allow_nan=False, allow_infinity=False)
logits = st.floats(-30.0, 30.0, allow_nan=False, allow_infinity=False)
unit = st.floats(0.0, 1.0)
inner_unit = st.floats(0.05, 0.95)
signs = st.sampled_from([-1, 1])


@st.composite
def classified(draw: st.DrawFn, elements: st.SearchStrategy[float] = logits) -> tuple[list[float], int]:
    """A row of class scores and a target class within it."""
    row = draw(st.lists(elements, min_size=1, max_size=7))
    return row, draw(st.integers(0, len(row) - 1))


@st.composite
def classified_batches(
    draw: st.DrawFn, elements: st.SearchStrategy[float] = logits
) -> tuple[list[list[float]], list[int]]:
    classes = draw(st.integers(1, 5))
    rows = draw(st.lists(st.lists(elements, min_size=classes, max_size=classes), min_size=1, max_size=4))
    targets = draw(st.lists(st.integers(0, classes - 1), min_size=len(rows), max_size=len(rows)))
    return rows, targets


# --- reference formulas, written out independently of the library ---------------------------


def ref_mse(p: Sequence[float], t: Sequence[float]) -> float:
    return math.fsum((a - b) ** 2 for a, b in zip(p, t, strict=True)) / len(p)


def ref_log(x: float) -> float:
    return max(math.log(x), -100.0) if x > 0.0 else -100.0


def ref_bce(p: float, t: float) -> float:
    return -(t * ref_log(p) + (1.0 - t) * ref_log(1.0 - p))


def ref_softplus(z: float) -> float:
    """log(1 + e^z), written stably."""
    return max(z, 0.0) + math.log1p(math.exp(-abs(z)))


def ref_bce_with_logits(x: float, t: float) -> float:
    # -t log(sigmoid(x)) - (1 - t) log(1 - sigmoid(x)) = t softplus(-x) + (1 - t) softplus(x)
    return t * ref_softplus(-x) + (1.0 - t) * ref_softplus(x)


def ref_cross_entropy_with_logits(xs: Sequence[float], k: int) -> float:
    m = max(xs)
    return m + math.log(math.fsum(math.exp(x - m) for x in xs)) - xs[k]


def ref_multi_margin(xs: Sequence[float], k: int, margin: float = 1.0) -> float:
    return math.fsum(max(0.0, margin - xs[k] + x) for i, x in enumerate(xs) if i != k) / len(xs)


def mean(xs: Sequence[float]) -> float:
    return math.fsum(xs) / len(xs)


# --- values -------------------------------------------------------------------------------


@given(reals, reals, st.lists(st.tuples(reals, reals), min_size=1, max_size=6))
def test_mse_values(p: float, t: float, pairs: list[tuple[float, float]]) -> None:
    ps, ts = [a for a, _ in pairs], [b for _, b in pairs]
    assert mse_loss(p, t) == close((p - t) ** 2)
    assert mse_loss(ps, ts) == close(ref_mse(ps, ts))
    assert mse_loss_batch(ps, ts) == close(ref_mse(ps, ts))
    rows = [ps, ts]
    assert mse_loss_batch(rows, rows[::-1]) == close(ref_mse(ps, ts))


@given(st.lists(st.tuples(unit, unit), min_size=1, max_size=6))
def test_bce_values(pairs: list[tuple[float, float]]) -> None:
    for p, t in pairs:
        assert bce_loss(p, t) == close(ref_bce(p, t))
    ps, ts = [p for p, _ in pairs], [t for _, t in pairs]
    assert bce_loss_batch(ps, ts) == close(mean([ref_bce(p, t) for p, t in pairs]))


@given(st.lists(st.tuples(st.floats(-1e4, 1e4), unit), min_size=1, max_size=6))
def test_bce_with_logits_values(pairs: list[tuple[float, float]]) -> None:
    for x, t in pairs:
        assert bce_with_logits(x, t) == close(ref_bce_with_logits(x, t))
    xs, ts = [x for x, _ in pairs], [t for _, t in pairs]
    expected = mean([ref_bce_with_logits(x, t) for x, t in pairs])
    assert bce_with_logits_batch(xs, ts) == close(expected)


@given(st.floats(-30.0, 30.0), unit)
def test_bce_with_logits_is_bce_of_sigmoid(x: float, t: float) -> None:
    p = 1.0 / (1.0 + math.exp(-x))
    assume(1e-6 < p < 1.0 - 1e-6)  # where bce of the rounded probability is still accurate
    assert bce_with_logits(x, t) == pytest.approx(bce_loss(p, t), rel=1e-8, abs=1e-10)


@given(classified(st.floats(0.0, 1.0)), classified_batches(st.floats(0.0, 1.0)))
def test_cross_entropy_values(
    example: tuple[list[float], int], batch: tuple[list[list[float]], list[int]]
) -> None:
    probs, k = example
    assert cross_entropy(probs, k) == close(-ref_log(probs[k]))
    rows, targets = batch
    expected = mean([-ref_log(row[k]) for row, k in zip(rows, targets, strict=True)])
    assert cross_entropy_batch(rows, targets) == close(expected)


@given(classified(), classified_batches())
def test_cross_entropy_with_logits_values(
    example: tuple[list[float], int], batch: tuple[list[list[float]], list[int]]
) -> None:
    xs, k = example
    loss = cross_entropy_with_logits(xs, k)
    assert loss == close(ref_cross_entropy_with_logits(xs, k))
    assert loss == -log_softmax(xs)[k]  # through log_softmax, bit for bit
    # logits within +-30 keep softmax far above the clamp, so both routes agree.
    assert loss == pytest.approx(cross_entropy(softmax(xs), k), rel=1e-9, abs=1e-12)
    rows, targets = batch
    expected = mean([ref_cross_entropy_with_logits(row, k) for row, k in zip(rows, targets, strict=True)])
    assert cross_entropy_with_logits_batch(rows, targets) == close(expected)


@given(st.lists(st.tuples(reals, signs), min_size=1, max_size=6), st.floats(0.0, 3.0))
def test_hinge_values(pairs: list[tuple[float, int]], margin: float) -> None:
    for s, t in pairs:
        assert hinge_loss(s, t) == close(max(0.0, 1.0 - t * s))
        assert hinge_loss(s, float(t), margin=margin) == close(max(0.0, margin - t * s))
    scores, targets = [s for s, _ in pairs], [t for _, t in pairs]
    expected = mean([max(0.0, 1.0 - t * s) for s, t in pairs])
    assert hinge_loss_batch(scores, targets) == close(expected)


@given(classified(), classified_batches(), st.floats(0.0, 3.0))
def test_multi_margin_values(
    example: tuple[list[float], int], batch: tuple[list[list[float]], list[int]], margin: float
) -> None:
    xs, k = example
    assert multi_margin_loss(xs, k) == close(ref_multi_margin(xs, k))
    assert multi_margin_loss(xs, k, margin=margin) == close(ref_multi_margin(xs, k, margin))
    rows, targets = batch
    expected = mean([ref_multi_margin(row, k) for row, k in zip(rows, targets, strict=True)])
    assert multi_margin_loss_batch(rows, targets) == close(expected)


def test_known_values() -> None:
    assert mse_loss(3.0, 1.0) == 4.0
    assert mse_loss([1.0, 2.0], [1.0, 0.0]) == 2.0
    assert bce_loss(0.5, 0.0) == math.log(2.0)
    assert bce_with_logits(0.0, 0.7) == math.log(2.0)
    assert cross_entropy([0.5, 0.5], 0) == math.log(2.0)
    assert cross_entropy_with_logits([3.0, 3.0, 3.0], 2) == pytest.approx(math.log(3.0), abs=1e-15)
    assert hinge_loss(2.0, 1) == 0.0
    assert hinge_loss(2.0, -1) == 3.0
    assert multi_margin_loss([5.0], 0) == 0.0
    assert multi_margin_loss([0.0, 0.0], 1) == 0.5


# --- types: floats in, floats out; Values in, the same numbers recorded ------------------------

FLOAT_CASES: list[tuple[str, Callable[[], Scalar]]] = [
    ("mse scalar", lambda: mse_loss(2, 1)),
    ("mse vector", lambda: mse_loss([1, 2], [1, 1])),
    ("mse batch", lambda: mse_loss_batch([1, 2], [1, 1])),
    ("bce", lambda: bce_loss(0.25, 1)),
    ("bce clamped", lambda: bce_loss(0, 1)),
    ("bce batch", lambda: bce_loss_batch([0.25, 1.0], [1, 0])),
    ("bce logits", lambda: bce_with_logits(1, 0)),
    ("bce logits batch", lambda: bce_with_logits_batch([1.0, -2.0], [0.0, 1.0])),
    ("ce", lambda: cross_entropy([0.25, 0.75], 1)),
    ("ce clamped", lambda: cross_entropy([1.0, 0.0], 1)),
    ("ce batch", lambda: cross_entropy_batch([[0.25, 0.75]], [1])),
    ("ce logits", lambda: cross_entropy_with_logits([1, 2, 3], 0)),
    ("ce logits batch", lambda: cross_entropy_with_logits_batch([[1.0, 2.0]], [0])),
    ("hinge", lambda: hinge_loss(1, 1)),
    ("hinge batch", lambda: hinge_loss_batch([0.5], [-1])),
    ("multi margin", lambda: multi_margin_loss([1, 2], 0)),
    ("multi margin one class", lambda: multi_margin_loss([1.0], 0)),
    ("multi margin batch", lambda: multi_margin_loss_batch([[1.0, 2.0]], [1])),
]


@pytest.mark.parametrize("case", FLOAT_CASES, ids=[name for name, _ in FLOAT_CASES])
def test_floats_in_give_floats_out(case: tuple[str, Callable[[], Scalar]]) -> None:
    _, compute = case
    out = compute()
    assert type(out) is float
    assert math.isfinite(out)


def _on_tape(fun: Callable[..., Scalar], *args: object) -> tuple[Scalar, Tape]:
    """``fun`` on the first argument's floats watched on a fresh tape."""
    with Tape() as t:
        first = args[0]
        watched: object = [t.watch(x) for x in first] if isinstance(first, list) else t.watch(first)  # type: ignore[arg-type]
        out = fun(watched, *args[1:])
    return out, t


@given(reals, reals, unit, classified(), signs)
def test_values_give_the_same_numbers_as_floats(
    x: float, y: float, t: float, example: tuple[list[float], int], sign: int
) -> None:
    xs, k = example
    p = 1.0 / (1.0 + math.exp(-x / 10.0))
    probs = list(softmax(xs))
    cases: list[tuple[Callable[..., Scalar], tuple[object, ...]]] = [
        (mse_loss, (x, y)),
        (mse_loss, (xs, xs[::-1])),
        (bce_loss, (p, t)),
        (bce_with_logits, (x, t)),
        (cross_entropy, (probs, k)),
        (cross_entropy_with_logits, (xs, k)),
        (hinge_loss, (x, sign)),
        (multi_margin_loss, (xs, k)),
        (bce_with_logits_batch, ([x, y], [t, 1.0 - t])),
    ]
    for fun, args in cases:
        recorded, _ = _on_tape(fun, *args)
        expected = fun(*args)
        assert float(recorded) == expected, fun.__name__


@pytest.mark.parametrize("n", [10, 20, 40])
def test_cross_entropy_with_logits_records_a_linear_graph(n: int) -> None:
    _, t = _on_tape(cross_entropy_with_logits, [float(i % 3) for i in range(n)], 1)
    recorded = [node for node in t.nodes if node.op.name != "leaf"]
    assert len(recorded) <= 2 * n + 4
    assert sum(node.op.name == "vsum" for node in recorded) == 1


def test_batches_average_with_one_fused_sum() -> None:
    rows = [[0.1 * i, -0.2 * i, 0.3] for i in range(8)]
    with Tape() as t:
        watched = [[t.watch(x) for x in row] for row in rows]
        out = cross_entropy_with_logits_batch(watched, [i % 3 for i in range(8)])
    assert isinstance(out, Value)
    sums = [node for node in t.nodes if node.op.name == "vsum"]
    assert len(sums) == 8 + 1  # one per row's normaliser, one for the batch mean
    assert len(sums[-1].parents) == 8


# --- gradients ------------------------------------------------------------------------------


@given(st.floats(-3.0, 3.0), st.floats(-3.0, 3.0), st.lists(st.floats(-3.0, 3.0), min_size=2, max_size=8))
def test_mse_gradients(p: float, t: float, vector: list[float]) -> None:
    assert_gradients_match(mse_loss, p, t, argnums=(0, 1))
    half = len(vector) // 2
    assert_gradients_match(mse_loss, vector[:half], vector[half : 2 * half], argnums=(0, 1))
    assert_gradients_match(mse_loss_batch, [vector[:half], vector[half : 2 * half]], [vector[:half]] * 2)
    n = half
    expected = [2.0 * (a - b) / n for a, b in zip(vector[:half], vector[half : 2 * half], strict=True)]

    def vector_mse(p: list[float], t: list[float]) -> Scalar:
        return mse_loss(p, t)

    assert tape.grad(vector_mse)(vector[:half], vector[half : 2 * half]) == pytest.approx(expected, abs=1e-12)


@given(inner_unit, inner_unit, st.lists(st.tuples(inner_unit, inner_unit), min_size=1, max_size=4))
def test_bce_gradients(p: float, t: float, pairs: list[tuple[float, float]]) -> None:
    assert_gradients_match(bce_loss, p, t, argnums=(0, 1), eps=1e-7)
    assert tape.grad(bce_loss)(p, t) == pytest.approx((p - t) / (p * (1.0 - p)), rel=1e-12)
    ps, ts = [a for a, _ in pairs], [b for _, b in pairs]
    assert_gradients_match(bce_loss_batch, ps, ts, argnums=(0, 1), eps=1e-7)


@given(
    st.floats(-8.0, 8.0),
    inner_unit,
    st.lists(st.tuples(st.floats(-8.0, 8.0), inner_unit), min_size=1, max_size=4),
)
def test_bce_with_logits_gradients(x: float, t: float, pairs: list[tuple[float, float]]) -> None:
    assert_gradients_match(bce_with_logits, x, t, argnums=(0, 1))
    sigmoid = 1.0 / (1.0 + math.exp(-x))
    assert tape.grad(bce_with_logits)(x, t) == pytest.approx(sigmoid - t, abs=1e-15)
    xs, ts = [a for a, _ in pairs], [b for _, b in pairs]
    assert_gradients_match(bce_with_logits_batch, xs, ts, argnums=(0, 1))


@pytest.mark.parametrize("t", [0.0, 0.3, 1.0])
def test_bce_with_logits_gradient_at_zero_has_no_kink(t: float) -> None:
    assert tape.grad(bce_with_logits)(0.0, t) == pytest.approx(0.5 - t, abs=1e-16)
    assert tape.grad(bce_with_logits, argnums=1)(0.0, t) == 0.0


@given(classified(st.floats(0.05, 1.0)), classified_batches(st.floats(0.05, 1.0)))
def test_cross_entropy_gradients(
    example: tuple[list[float], int], batch: tuple[list[list[float]], list[int]]
) -> None:
    probs, k = example
    assume(probs[k] < 1.0 - 1e-6)
    assert_gradients_match(cross_entropy, probs, k, eps=1e-7)
    gradient = tape.grad(cross_entropy)(probs, k)
    assert gradient == [(-1.0 / probs[k] if i == k else 0.0) for i in range(len(probs))]
    rows, targets = batch
    assume(all(row[k] < 1.0 - 1e-6 for row, k in zip(rows, targets, strict=True)))
    assert_gradients_match(cross_entropy_batch, rows, targets, eps=1e-7)


@given(classified(st.floats(-5.0, 5.0)), classified_batches(st.floats(-5.0, 5.0)))
def test_cross_entropy_with_logits_gradients(
    example: tuple[list[float], int], batch: tuple[list[list[float]], list[int]]
) -> None:
    xs, k = example
    assert_gradients_match(cross_entropy_with_logits, xs, k)
    probs = softmax(xs)
    expected = [p - (1.0 if i == k else 0.0) for i, p in enumerate(probs)]
    assert tape.grad(cross_entropy_with_logits)(xs, k) == pytest.approx(expected, abs=1e-14)
    rows, targets = batch
    assert_gradients_match(cross_entropy_with_logits_batch, rows, targets)


def _clear_of(points: Sequence[float], margin: float = 1e-3) -> Callable[[float], bool]:
    return lambda x: all(abs(x - p) > margin for p in points)


@given(
    st.floats(-3.0, 3.0).filter(_clear_of([-1.0, 1.0])),
    signs,
    st.lists(st.tuples(st.floats(-3.0, 3.0).filter(_clear_of([-1.0, 1.0])), signs), min_size=1, max_size=4),
)
def test_hinge_gradients(s: float, t: int, pairs: list[tuple[float, int]]) -> None:
    assert_gradients_match(hinge_loss, s, t)
    assert tape.grad(hinge_loss)(s, t) == (-t if t * s < 1.0 else 0.0)
    scores, targets = [a for a, _ in pairs], [b for _, b in pairs]
    assert_gradients_match(hinge_loss_batch, scores, targets)


@given(classified(st.floats(-3.0, 3.0)))
def test_multi_margin_gradients(example: tuple[list[float], int]) -> None:
    xs, k = example
    assume(all(abs(1.0 - xs[k] + x) > 1e-3 for i, x in enumerate(xs) if i != k))
    assert_gradients_match(multi_margin_loss, xs, k)
    assert_gradients_match(multi_margin_loss_batch, [xs, xs[::-1]], [k, len(xs) - 1 - k])


# --- the stable paths at the extremes -----------------------------------------------------------


def _finite_on_checked_tape(fun: Callable[..., Scalar], first: Sequence[float], *rest: object) -> list[float]:
    """Loss and gradient on a tape that raises at the first non-finite node."""
    with Tape(check_finite=True) as t:
        xs = [t.watch(x) for x in first]
        out = fun(xs, *rest)
    gradient = t.gradient(out, xs)
    values = [float(out), *gradient]
    assert all(math.isfinite(v) for v in values), values
    return values


@pytest.mark.parametrize("k", [0, 1, 2])
def test_extreme_logits(k: int) -> None:
    xs = [1e4, -1e4, 0.0]
    loss, *gradient = _finite_on_checked_tape(lambda v, k: cross_entropy_with_logits(v, k), xs, k)
    assert loss == [0.0, 2e4, 1e4][k]
    assert gradient == [(1.0 if i == 0 else 0.0) - (1.0 if i == k else 0.0) for i in range(3)]
    _finite_on_checked_tape(lambda v, k: multi_margin_loss(v, k), xs, k)
    _finite_on_checked_tape(lambda v, k: cross_entropy_with_logits_batch([v, v[::-1]], [k, k]), xs, k)


@pytest.mark.parametrize("x", [1e4, -1e4, 800.0, -800.0])
@pytest.mark.parametrize("t", [0.0, 0.25, 1.0])
def test_bce_with_logits_at_extremes(x: float, t: float) -> None:
    loss, gradient = _finite_on_checked_tape(lambda v: bce_with_logits(v[0], t), [x])
    assert loss == ((1.0 - t) * x if x > 0 else -t * x)
    assert gradient == (1.0 - t if x > 0 else -t)


# Where a log is clamped its term is constant (gradient 0); the other term keeps its derivative.
@pytest.mark.parametrize(
    ("p", "t", "expected", "slope"),
    [
        (0.0, 1.0, 100.0, 0.0),
        (0.0, 0.0, 0.0, 1.0),
        (1.0, 0.0, 100.0, 0.0),
        (1.0, 1.0, 0.0, -1.0),
        (0.0, 0.5, 50.0, 0.5),
        (1e-50, 1.0, 100.0, 0.0),
    ],
)
def test_bce_at_probabilities_zero_and_one(p: float, t: float, expected: float, slope: float) -> None:
    assert bce_loss(p, t) == expected
    loss, gradient = _finite_on_checked_tape(lambda v: bce_loss(v[0], t), [p])
    assert loss == expected
    assert gradient == slope
    loss, *_ = _finite_on_checked_tape(lambda v: bce_loss_batch(v, [t, t]), [p, p])
    assert loss == expected


def test_cross_entropy_at_probabilities_zero_and_one() -> None:
    assert cross_entropy([1.0, 0.0], 1) == 100.0
    assert cross_entropy([1.0, 0.0], 0) == 0.0
    loss, *gradient = _finite_on_checked_tape(lambda v: cross_entropy(v, 1), [1.0, 0.0])
    assert loss == 100.0
    assert gradient == [0.0, 0.0]
    loss, *gradient = _finite_on_checked_tape(lambda v: cross_entropy(v, 0), [1.0, 0.0])
    assert loss == 0.0
    assert gradient == [-1.0, 0.0]
    loss, *_ = _finite_on_checked_tape(lambda v: cross_entropy_batch([v, v], [0, 1]), [1.0, 0.0])
    assert loss == 50.0


def test_log_floor_is_torchs() -> None:
    assert LOG_FLOOR == -100.0
    assert bce_loss(math.exp(-99.0), 1.0) == close(99.0)
    assert bce_loss(math.exp(-101.0), 1.0) == 100.0


def test_tiny_logits_keep_their_precision() -> None:
    """log(1 + e^x) for very negative x: log1p accuracy on floats and Values alike."""
    x = -40.0
    assert bce_with_logits(x, 0.0) == pytest.approx(math.exp(x), rel=1e-15)
    recorded, _ = _on_tape(bce_with_logits, x, 0.0)
    assert float(recorded) == bce_with_logits(x, 0.0)
    assert bce_loss(1e-20, 0.0) == pytest.approx(1e-20, rel=1e-15)


# --- errors ---------------------------------------------------------------------------------


def test_class_target_errors() -> None:
    with pytest.raises(ValueError, match=r"class target 3 is out of range for 3 classes"):
        cross_entropy_with_logits([1.0, 2.0, 3.0], 3)
    with pytest.raises(ValueError, match=r"class target -1 is out of range for 2 classes"):
        cross_entropy([0.5, 0.5], -1)
    with pytest.raises(ValueError, match=r"multi_margin_loss: class target 2 .* 2 classes"):
        multi_margin_loss([0.5, 0.5], 2)
    with pytest.raises(
        ValueError, match=r"cross_entropy_with_logits_batch: row 1: class target 5 .* 2 classes"
    ):
        cross_entropy_with_logits_batch([[0.0, 1.0], [1.0, 0.0]], [0, 5])
    with pytest.raises(ValueError, match=r"cross_entropy_batch: row 0: class target 2"):
        cross_entropy_batch([[0.5, 0.5]], [2])
    with pytest.raises(ValueError, match=r"multi_margin_loss_batch: row 2: class target 7"):
        multi_margin_loss_batch([[0.0], [0.0], [0.0]], [0, 0, 7])
    for bad in (1.0, True, "1", None):
        with pytest.raises(TypeError, match="must be an int"):
            cross_entropy_with_logits([1.0, 2.0], bad)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="must be an int"):
            cross_entropy([0.5, 0.5], bad)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="row 0: class target must be an int"):
            multi_margin_loss_batch([[0.5, 0.5]], [bad])  # type: ignore[list-item]


def test_empty_and_mismatched_errors() -> None:
    batches: list[Callable[[list[object], list[object]], object]] = [
        mse_loss_batch,  # type: ignore[list-item]
        bce_loss_batch,  # type: ignore[list-item]
        bce_with_logits_batch,  # type: ignore[list-item]
        cross_entropy_batch,  # type: ignore[list-item]
        cross_entropy_with_logits_batch,  # type: ignore[list-item]
        hinge_loss_batch,  # type: ignore[list-item]
        multi_margin_loss_batch,  # type: ignore[list-item]
    ]
    for batch in batches:
        with pytest.raises(ValueError, match="empty batch"):
            batch([], [])
        with pytest.raises(ValueError, match=r"3 \w.* but 2 targets"):
            batch([[0.5]] * 3, [0, 0])
    for per_example in (cross_entropy, cross_entropy_with_logits, multi_margin_loss):
        with pytest.raises(ValueError, match="empty"):
            per_example([], 0)
    with pytest.raises(ValueError, match="prediction has 3 elements but target has 2"):
        mse_loss([1.0, 2.0, 3.0], [1.0, 2.0])
    with pytest.raises(
        ValueError, match=r"mse_loss_batch: row 1: prediction has 1 elements but target has 2"
    ):
        mse_loss_batch([[1.0], [1.0]], [[1.0], [1.0, 2.0]])
    with pytest.raises(ValueError, match="empty"):
        mse_loss([], [])
    with pytest.raises(TypeError, match="prediction is a sequence but target is a scalar"):
        mse_loss([1.0], 1.0)
    with pytest.raises(TypeError, match="prediction must be a float or a Value"):
        mse_loss(None, 1.0)  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="target: element 1 must be a float or a Value"):
        mse_loss([1.0, 2.0], [1.0, "2"])  # type: ignore[list-item]


@pytest.mark.parametrize(
    ("batch", "name", "what"),
    [
        (cross_entropy_batch, "cross_entropy_batch", "rows of probabilities"),
        (cross_entropy_with_logits_batch, "cross_entropy_with_logits_batch", "rows of logits"),
        (multi_margin_loss_batch, "multi_margin_loss_batch", "rows of logits"),
    ],
)
def test_ragged_rows_of_classes_are_refused(
    batch: Callable[[list[list[float]], list[int]], object], name: str, what: str
) -> None:
    """Every row scores the same classes: a row of another width is an error, not a loss."""
    with pytest.raises(ValueError, match=rf"{name}: {what} are ragged: row 1 has 1 entries but row 0 has 2"):
        batch([[0.5, 0.5], [1.0]], [0, 0])
    with pytest.raises(ValueError, match=rf"{name}: {what} are ragged: row 2 has 3 entries but row 0 has 2"):
        batch([[0.5, 0.5], [0.25, 0.75], [0.5, 0.25, 0.25]], [0, 1, 0])


def test_range_errors() -> None:
    for t in (-0.1, 1.5, math.nan):
        with pytest.raises(ValueError, match=r"bce_loss: target must be in \[0, 1\]"):
            bce_loss(0.5, t)
        with pytest.raises(ValueError, match=r"bce_with_logits: target must be in \[0, 1\]"):
            bce_with_logits(0.5, t)
    for p in (-0.1, 1.5, math.nan):
        with pytest.raises(ValueError, match=r"probability must be in \[0, 1\]"):
            bce_loss(p, 1.0)
    with pytest.raises(ValueError, match=r"row 1: target must be in \[0, 1\], got 2.0"):
        bce_loss_batch([0.5, 0.5], [1.0, 2.0])
    with pytest.raises(ValueError, match=r"row 1: target must be in \[0, 1\]"):
        bce_with_logits_batch([0.5, 0.5], [1.0, -1.0])
    with pytest.raises(ValueError, match=r"probability of the target class 1 must be in \[0, 1\]"):
        cross_entropy([0.5, 1.5], 1)
    for t in (0, 2, 0.5, -1.5):
        with pytest.raises(ValueError, match="target must be -1 or 1"):
            hinge_loss(0.5, t)
    with pytest.raises(ValueError, match="hinge_loss_batch: row 1: target must be -1 or 1, got 0"):
        hinge_loss_batch([0.5, 0.5], [1, 0])
    with pytest.raises(TypeError, match="target must be -1 or 1"):
        hinge_loss(0.5, True)


@pytest.mark.parametrize(
    ("fun", "targets", "message"),
    [
        (F.cross_entropy_with_logits_batch, [0, 5], "cross_entropy_with_logits_batch: row 1: class target 5"),
        (F.cross_entropy_with_logits_batch, [0], "cross_entropy_with_logits_batch: 2 rows of logits but 1"),
        (
            F.cross_entropy_with_logits_batch,
            [0, 1.0],
            "cross_entropy_with_logits_batch: row 1: class target must",
        ),
        (
            F.mse_loss_batch,
            [[1.0, 2.0], [1.0]],
            "mse_loss_batch: row 1: prediction has 2 elements but target has 1",
        ),
        (F.mse_loss_batch, [[1.0, 2.0]], "mse_loss_batch: 2 predictions but 1 targets"),
    ],
)
def test_one_mistake_gets_one_message_on_both_paths(
    fun: Callable[..., Scalar], targets: object, message: str
) -> None:
    logits = [[0.5, -1.0], [2.0, 0.0]]
    with pytest.raises((TypeError, ValueError)) as scalar_path:
        tape.grad(lambda z: fun(z, targets))(logits)
    with pytest.raises((TypeError, ValueError)) as array_path:
        tape.grad(lambda z: fun(z, targets), arrays=True)(logits)
    assert str(scalar_path.value) == str(array_path.value)
    assert type(scalar_path.value) is type(array_path.value)
    assert str(scalar_path.value).startswith(message)


@given(
    classified_batches(st.one_of(logits, st.sampled_from([0.0, -0.0, 1e300, -1e300, math.inf, -math.inf])))
)
@example(([[0.1, 0.2, 0.3]], [0]))
@example(([[1e300, -1e300], [math.inf, 0.0]], [1, 0]))  # a huge spread; an infinite logit (a zero shift)
def test_scalar_cross_entropy_is_the_tapes_bit_for_bit(batch: tuple[list[list[float]], list[int]]) -> None:
    """``tape.arrays.cross_entropy_with_logits`` of rows of Values computes its loss from the same
    ``tape.normaliser`` as this module's cross-entropy: the same floats, value and gradient."""
    rows, targets = batch

    def here(flat: Sequence[Scalar]) -> Scalar:
        return cross_entropy_with_logits_batch(_rows_of(flat, rows), targets)

    def tapes(flat: Sequence[Scalar]) -> Scalar:
        return tape.arrays.cross_entropy_with_logits(_rows_of(flat, rows), targets)

    flat = [x for row in rows for x in row]
    (got, got_grad), (want, want_grad) = tape.value_and_grad(tapes)(flat), tape.value_and_grad(here)(flat)
    assert _bits(got, got_grad) == _bits(want, want_grad)


def _rows_of(flat: Sequence[Scalar], rows: list[list[float]]) -> list[Sequence[Scalar]]:
    width = len(rows[0])
    return [flat[i * width : (i + 1) * width] for i in range(len(rows))]


def _bits(value: float, grad: Sequence[Scalar]) -> list[object]:
    floats = [value, *(float(g) for g in grad)]
    return ["nan" if math.isnan(x) else struct.pack("<d", x) for x in floats]
