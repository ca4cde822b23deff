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
from tape.array import apply_array_op, array_op
from tape.core.op import define
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


def test_a_scalar_op_needs_one_partial_rule_per_argument_of_its_forward_rule() -> None:
    """Checked where the op is defined, not as an IndexError when a later argument is differentiated."""
    with pytest.raises(
        ValueError, match=r"op 'test_product': its forward rule takes 2 arguments but 1 partial"
    ):
        tape.define("test_product", lambda x, y: x * y, lambda v, x, y: y)
    with pytest.raises(
        ValueError, match=r"op 'test_product': its forward rule takes 1 argument but 2 partial"
    ):
        tape.define("test_product", lambda x: x, lambda v, x: 1.0, lambda v, x: 0.0)
    with pytest.raises(TypeError, match=r"op 'test_product': its forward rule must be callable, not int"):
        tape.define("test_product", 5, lambda v, x: 1.0)  # type: ignore[arg-type]  # a misuse to refuse
    with pytest.raises(TypeError, match=r"op 'test_product': partial rule 1 must be callable, not float"):
        tape.define("test_product", lambda x, y: x * y, lambda v, x, y: y, 1.0)  # type: ignore[arg-type]
    assert "test_product" not in tape.REGISTRY
    scaled = tape.define(
        "test_scaled", lambda x, s=2.0: s * x, lambda v, x, s=2.0: s, lambda v, x, s=2.0: x, replace=True
    )
    assert (
        tape.grad(lambda x: scaled(x, 3.0))(1.0) == 3.0
    )  # a default counts as an argument that may be given
    anything = tape.define("test_any_arity", lambda *xs: xs[0], lambda v, *xs: 1.0, replace=True)
    assert tape.grad(lambda x: anything(x))(1.0) == 1.0  # *args: the rules' count cannot be checked


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


def _scaled_forward(x: tuple[float, ...]) -> tuple[tuple[float, ...], list[float]]:
    factors = [2.0 + v for v in x]  # what the rules need again: kept as the residual
    return tuple(v * f for v, f in zip(x, factors, strict=True)), factors


SEEN: list[object] = []


def _scaled_vjp(
    g: list[float], value: object, x: tuple[float, ...], *, residual: list[float]
) -> tuple[list[float]]:
    SEEN.append(residual)
    return ([gi * (f + v) for gi, f, v in zip(g, residual, x, strict=True)],)  # d(x (2 + x)) = 2 + 2x


def _scaled_jvp(
    value: object, args: tuple[tuple[float, ...]], tangents: tuple[list[float]], *, residual: list[float]
) -> tuple[float, ...]:
    (x,), (t,) = args, tangents
    return tuple(ti * (f + v) for ti, f, v in zip(t, residual, x, strict=True))


SCALED = array_op(
    "test_residual_scaled", _scaled_forward, _scaled_vjp, _scaled_jvp, builtin=False, residual=True
)


def test_an_array_op_keeps_its_forwards_residual_for_its_rules_eager_and_compiled() -> None:
    def loss(x: object) -> tape.Scalar:
        return A.sum(apply_array_op(SCALED, x))

    assert apply_array_op(SCALED, (1.0, 2.0)) == (3.0, 8.0)  # untracked: the value alone
    SEEN.clear()
    assert tape.grad(loss, arrays=True)([1.0, 2.0]) == [4.0, 6.0]
    assert SEEN == [[3.0, 4.0]]  # the residual of this call's forward
    assert tape.jvp(loss, ([1.0, 2.0],), ([1.0, 0.0],), arrays=True) == (11.0, 4.0)
    compiled = tape.jit(tape.grad(loss, arrays=True))
    assert compiled([1.0, 2.0]) == [4.0, 6.0]
    SEEN.clear()
    assert compiled([0.5, -1.0]) == [3.0, 0.0]  # the replay's own residual, not the trace's
    assert SEEN == [[2.5, 1.0]]
    with pytest.raises(ValueError, match="only array ops save a residual"):
        define("test_residual_scalar", _softplus_forward, lambda v, x: 1.0, residual=True)
