"""Every loss and normaliser against PyTorch on float64 tensors (skipped when torch is absent)."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import tape
from functional_nn.functional import log_softmax, logsumexp, softmax
from functional_nn.loss import (
    bce_loss,
    bce_loss_batch,
    bce_with_logits,
    bce_with_logits_batch,
    cross_entropy,
    cross_entropy_batch,
    cross_entropy_with_logits,
    cross_entropy_with_logits_batch,
    hinge_loss_batch,
    mse_loss,
    mse_loss_batch,
    multi_margin_loss,
    multi_margin_loss_batch,
)

torch: Any = pytest.importorskip("torch")
F: Any = torch.nn.functional


def t64(xs: object) -> Any:
    return torch.tensor(xs, dtype=torch.float64)


def close(expected: float) -> object:
    return pytest.approx(expected, rel=1e-12, abs=1e-12)


reals = st.floats(-50.0, 50.0)
wide = st.floats(-1e4, 1e4)
unit = st.floats(0.0, 1.0)


@st.composite
def classified_batches(
    draw: st.DrawFn, elements: st.SearchStrategy[float] = wide
) -> tuple[list[list[float]], list[int]]:
    classes = draw(st.integers(1, 6))
    rows = draw(st.lists(st.lists(elements, min_size=classes, max_size=classes), min_size=1, max_size=4))
    targets = draw(st.lists(st.integers(0, classes - 1), min_size=len(rows), max_size=len(rows)))
    return rows, targets


@given(st.lists(wide, min_size=1, max_size=8))
def test_normalisers(xs: list[float]) -> None:
    x = t64(xs)
    assert logsumexp(xs) == close(torch.logsumexp(x, 0).item())
    assert list(log_softmax(xs)) == [close(v) for v in torch.log_softmax(x, 0).tolist()]
    assert list(softmax(xs)) == [close(v) for v in torch.softmax(x, 0).tolist()]


@given(st.lists(st.lists(reals, min_size=3, max_size=3), min_size=1, max_size=4), st.data())
def test_mse(rows: list[list[float]], data: st.DataObject) -> None:
    targets = data.draw(
        st.lists(st.lists(reals, min_size=3, max_size=3), min_size=len(rows), max_size=len(rows))
    )
    assert mse_loss(rows[0], targets[0]) == close(F.mse_loss(t64(rows[0]), t64(targets[0])).item())
    assert mse_loss(rows[0][0], targets[0][0]) == close(
        F.mse_loss(t64(rows[0][0]), t64(targets[0][0])).item()
    )
    assert mse_loss_batch(rows, targets) == close(F.mse_loss(t64(rows), t64(targets)).item())


@given(st.lists(st.tuples(unit, unit), min_size=1, max_size=6))
def test_bce(pairs: list[tuple[float, float]]) -> None:
    ps, ts = [p for p, _ in pairs], [t for _, t in pairs]
    per_example = F.binary_cross_entropy(t64(ps), t64(ts), reduction="none").tolist()
    assert [bce_loss(p, t) for p, t in pairs] == [close(v) for v in per_example]
    assert bce_loss_batch(ps, ts) == close(F.binary_cross_entropy(t64(ps), t64(ts)).item())


def test_bce_at_the_clamp() -> None:
    ps, ts = [0.0, 0.0, 1.0, 1.0, 0.0, 1e-50, 1e-20], [1.0, 0.0, 0.0, 1.0, 0.5, 1.0, 0.0]
    expected = F.binary_cross_entropy(t64(ps), t64(ts), reduction="none").tolist()
    assert [bce_loss(p, t) for p, t in zip(ps, ts, strict=True)] == [close(v) for v in expected]


@given(st.lists(st.tuples(wide, unit), min_size=1, max_size=6))
def test_bce_with_logits(pairs: list[tuple[float, float]]) -> None:
    xs, ts = [x for x, _ in pairs], [t for _, t in pairs]
    per_example = F.binary_cross_entropy_with_logits(t64(xs), t64(ts), reduction="none").tolist()
    # For x < 0 torch computes (1 - t) x - x + log1p(e^x): the cancellation costs it a few
    # ulps of |x| (ours, -t x + log1p(e^x), is correctly rounded there), hence the |x| term.
    expected = [
        pytest.approx(v, rel=1e-12, abs=1e-12 + 1e-15 * abs(x)) for v, x in zip(per_example, xs, strict=True)
    ]
    assert [bce_with_logits(x, t) for x, t in pairs] == expected
    mean = F.binary_cross_entropy_with_logits(t64(xs), t64(ts)).item()
    assert bce_with_logits_batch(xs, ts) == pytest.approx(
        mean, rel=1e-12, abs=1e-12 + 1e-15 * max(map(abs, xs))
    )


@given(classified_batches(unit))
def test_cross_entropy_of_probabilities(batch: tuple[list[list[float]], list[int]]) -> None:
    rows, targets = batch
    clamped_log = torch.log(t64(rows)).clamp(min=-100.0)
    per_example = F.nll_loss(clamped_log, torch.tensor(targets), reduction="none").tolist()
    assert [cross_entropy(r, k) for r, k in zip(rows, targets, strict=True)] == [
        close(v) for v in per_example
    ]
    assert cross_entropy_batch(rows, targets) == close(F.nll_loss(clamped_log, torch.tensor(targets)).item())


@given(classified_batches())
def test_cross_entropy_with_logits(batch: tuple[list[list[float]], list[int]]) -> None:
    rows, targets = batch
    x, k = t64(rows), torch.tensor(targets)
    per_example = F.cross_entropy(x, k, reduction="none").tolist()
    assert [cross_entropy_with_logits(r, t) for r, t in zip(rows, targets, strict=True)] == [
        close(v) for v in per_example
    ]
    assert cross_entropy_with_logits_batch(rows, targets) == close(F.cross_entropy(x, k).item())


@given(classified_batches(reals), st.floats(0.0, 3.0))
def test_multi_margin(batch: tuple[list[list[float]], list[int]], margin: float) -> None:
    rows, targets = batch
    x, k = t64(rows), torch.tensor(targets)
    per_example = F.multi_margin_loss(x, k, p=1, margin=margin, reduction="none").tolist()
    assert [multi_margin_loss(r, t, margin=margin) for r, t in zip(rows, targets, strict=True)] == [
        close(v) for v in per_example
    ]
    assert multi_margin_loss_batch(rows, targets) == close(F.multi_margin_loss(x, k).item())


@given(st.lists(st.tuples(reals, st.sampled_from([-1, 1])), min_size=1, max_size=6))
def test_hinge(pairs: list[tuple[float, int]]) -> None:
    scores, targets = [s for s, _ in pairs], [t for _, t in pairs]
    expected = torch.clamp(1.0 - t64(targets) * t64(scores), min=0.0).mean().item()
    assert hinge_loss_batch(scores, targets) == close(expected)


def _torch_grad(fun: Any, xs: list[float], *rest: Any) -> list[float]:
    x = t64(xs).requires_grad_(True)
    fun(x, *rest).backward()
    return [float(v) for v in x.grad.tolist()]


@given(classified_batches(st.floats(-20.0, 20.0)), st.data())
def test_gradients_match_torch(batch: tuple[list[list[float]], list[int]], data: st.DataObject) -> None:
    rows, targets = batch
    flat = [x for row in rows for x in row]
    n, c = len(rows), len(rows[0])
    k = torch.tensor(targets)

    def unflatten(xs: list[float]) -> list[list[float]]:
        return [xs[i * c : (i + 1) * c] for i in range(n)]

    ours = tape.grad(lambda xs: cross_entropy_with_logits_batch(unflatten(xs), targets))(flat)
    theirs = _torch_grad(lambda x: F.cross_entropy(x.view(n, c), k), flat)
    assert ours == [pytest.approx(v, rel=1e-10, abs=1e-14) for v in theirs]

    ts = data.draw(st.lists(unit, min_size=len(flat), max_size=len(flat)))
    ours = tape.grad(lambda xs: bce_with_logits_batch(xs, ts))(flat)
    theirs = _torch_grad(lambda x: F.binary_cross_entropy_with_logits(x, t64(ts)), flat)
    assert ours == [pytest.approx(v, rel=1e-10, abs=1e-14) for v in theirs]

    ps = data.draw(st.lists(st.floats(0.01, 0.99), min_size=len(flat), max_size=len(flat)))
    ours = tape.grad(lambda xs: bce_loss_batch(xs, ts))(ps)
    theirs = _torch_grad(lambda x: F.binary_cross_entropy(x, t64(ts)), ps)
    assert ours == [pytest.approx(v, rel=1e-10, abs=1e-14) for v in theirs]


def test_softmax_gradient_matches_torch() -> None:
    xs = [0.3, -1.2, 2.5, 0.0]
    for i in range(len(xs)):
        ours = tape.grad(lambda v, i=i: softmax(v)[i] * 2.0 + log_softmax(v)[i])(xs)
        theirs = _torch_grad(lambda x, i=i: torch.softmax(x, 0)[i] * 2.0 + torch.log_softmax(x, 0)[i], xs)
        assert ours == [pytest.approx(v, rel=1e-12, abs=1e-15) for v in theirs]
    assert math.isfinite(cross_entropy_with_logits([1e4, -1e4], 1))
