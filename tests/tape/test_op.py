"""``tape.define``: custom ops as a public API, redefinition, and every path following the registry."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from hypothesis import given

import tape
from tape import REGISTRY, Op, Tape
from tape import arrays as A
from tape.testing import assert_gradients_match, scalars


def _softplus_forward(x: tape.Scalar) -> tape.Scalar:
    return tape.log(1.0 + tape.exp(x))


SOFTPLUS = tape.define("test_softplus", _softplus_forward, lambda v, x: tape.sigmoid(x))


@given(scalars(-5.0, 5.0))
def test_a_custom_scalar_op_records_differentiates_and_nests(x: float) -> None:
    assert SOFTPLUS(x) == pytest.approx(math.log1p(math.exp(x)), rel=1e-12)  # floats in, a float out
    assert_gradients_match(lambda v: SOFTPLUS(v) * v, x)
    second = tape.grad(tape.grad(lambda v: SOFTPLUS(v)))(x)  # the partial rule is itself recorded
    s = 1.0 / (1.0 + math.exp(-x))
    assert second == pytest.approx(s * (1.0 - s), rel=1e-9, abs=1e-12)


def test_a_custom_op_records_one_node() -> None:
    with Tape() as t:
        x = t.watch(0.3)
        y = SOFTPLUS(x)
    assert isinstance(y, tape.Value)
    assert [node.op.name for node in t.nodes] == ["leaf", "test_softplus"]
    assert t.gradient(y, x) == pytest.approx(1.0 / (1.0 + math.exp(-0.3)))


def test_defining_a_name_twice_needs_replace() -> None:
    with pytest.raises(ValueError, match="already defined; pass replace=True"):
        tape.define("test_softplus", _softplus_forward, lambda v, x: 0.0)
    with pytest.raises(ValueError, match="needs partial rules, or both a vjp and a jvp rule"):
        tape.define("test_nothing", _softplus_forward)


def test_replace_updates_the_op_in_place_and_bumps_its_version() -> None:
    op = tape.define("test_twice", lambda x: 2.0 * x, lambda v, x: 2.0)
    assert tape.grad(lambda v: op(v))(1.0) == 2.0
    again = tape.define("test_twice", lambda x: 3.0 * x, lambda v, x: 3.0, replace=True)
    assert again is op and op.version == 1
    assert op(2.0) == 6.0 and tape.grad(lambda v: op(v))(1.0) == 3.0


def _array_square_sum_vjp(g: float, value: float, x: tuple[tuple[float, ...], ...]) -> tuple[object]:
    return ([[2.0 * g * v for v in row] for row in x],)


def _array_square_sum_jvp(value: float, args: tuple[object, ...], tangents: tuple[object, ...]) -> float:
    (x,), (dx,) = args, tangents
    return sum(2.0 * v * d for row, drow in zip(x, dx, strict=True) for v, d in zip(row, drow, strict=True))  # type: ignore[call-overload]


SQUARE_SUM = tape.define(
    "test_square_sum",
    lambda x: sum(v * v for row in x for v in row),
    vjp=_array_square_sum_vjp,
    jvp=_array_square_sum_jvp,
)


def test_a_custom_array_op_in_both_modes() -> None:
    W = [[1.0, -2.0], [0.5, 3.0]]
    assert SQUARE_SUM(W) == 1.0 + 4.0 + 0.25 + 9.0
    grads = tape.grad(lambda p: SQUARE_SUM(A.relu(p)), arrays=True)(W)
    assert grads == [[2.0, 0.0], [1.0, 6.0]]
    _, slope = tape.jvp(lambda p: SQUARE_SUM(p), (W,), ([[1.0, 0.0], [0.0, 1.0]],), arrays=True)
    assert slope == 2.0 * 1.0 + 2.0 * 3.0


@contextmanager
def _replaced(name: str, arity: int) -> Iterator[Op]:
    """Redefine a library op with every partial 7.0 for the duration of a test, then put it back."""
    op = REGISTRY[name]
    saved = {field: getattr(op, field) for field in Op.__slots__}
    sevens = [lambda *_: 7.0] * arity
    try:
        yield tape.define(name, op.forward, *sevens, replace=True)
    finally:
        for field, value in saved.items():
            setattr(op, field, value)


PATHS: dict[str, list[Callable[[tape.Value, tape.Value], object]]] = {
    "add": [lambda x, y: x + y, lambda x, y: x + 2.0, lambda x, y: 2.0 + x],
    "sub": [lambda x, y: x - y, lambda x, y: x - 2.0, lambda x, y: 2.0 - x],
    "mul": [lambda x, y: x * y, lambda x, y: x * 2.0, lambda x, y: 2.0 * x],
    "neg": [lambda x, y: -x],
    "relu": [lambda x, y: x.relu(), lambda x, y: tape.relu(x)],
}


@pytest.mark.parametrize("name", sorted(PATHS))
def test_every_path_follows_a_replaced_rule(name: str) -> None:
    """A rule copied anywhere (a fast path, the sweep) would keep the old derivative here."""
    op = REGISTRY[name]
    arity = len(op.partials)
    with _replaced(name, arity):
        for path in PATHS[name]:
            with Tape() as t:
                x, y = t.watch(1.5), t.watch(0.5)
                z = path(x, y)
            assert isinstance(z, tape.Value)
            gx, gy = t.gradient(z, (x, y))
            assert 7.0 in (gx, gy), f"{name}: a path kept its own rule ({gx}, {gy})"
    with Tape() as t:  # and the library's rule is back
        x = t.watch(1.5)
        z = PATHS[name][0](x, x)
    assert isinstance(z, tape.Value)
    assert t.gradient(z, x) != 7.0
