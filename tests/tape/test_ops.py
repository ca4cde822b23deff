"""Every primitive op in the registry: rules present, gradients match central differences."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

import tape
from tape import REGISTRY, Scalar, Tape, Value
from tape.ops.elementwise import NORMAL_CDF
from tape.testing import assert_gradients_match, positive_scalars, scalars
from tests.tape.test_arrays import ARRAY_CASES
from tests.tape.test_nd_registry import CASES as ND_CASES

Case = tuple[Callable[..., object], tuple[st.SearchStrategy[float], ...]]


def _shifted_logsumexp(x: tape.Scalar, y: tape.Scalar) -> tape.Scalar:
    shift = tape.max_shift([x, y])
    return shift + tape.log(tape.exp(x - shift) + tape.exp(y - shift))


# One entry per registered op: a function exercising it and strategies for its inputs
# (kept away from kinks and domain edges, where central differences are meaningless).
GRADIENT_CASES: dict[str, Case] = {
    "add": (lambda x, y: x + y, (scalars(), scalars())),
    "sub": (lambda x, y: x - y, (scalars(), scalars())),
    "mul": (lambda x, y: x * y, (scalars(), scalars())),
    "div": (lambda x, y: x / y, (scalars(), scalars(kinks=(0.0,), margin=0.3))),
    "pow": (lambda x, y: x**y, (positive_scalars(0.2, 3.0), scalars(-2.0, 2.0))),
    "neg": (lambda x: -x, (scalars(),)),
    "exp": (lambda x: tape.exp(x), (scalars(),)),
    "log": (lambda x: tape.log(x), (positive_scalars(),)),
    "sqrt": (lambda x: tape.sqrt(x), (positive_scalars(),)),
    "tanh": (lambda x: tape.tanh(x), (scalars(),)),
    "sigmoid": (lambda x: tape.sigmoid(x), (scalars(-8.0, 8.0),)),
    "max_shift": (  # logsumexp with the op as its shift: the gradient is the softmax
        lambda x, y: (
            tape.max_shift([x, y])
            + tape.log(tape.exp(x - tape.max_shift([x, y])) + tape.exp(y - tape.max_shift([x, y])))
        ),
        (scalars(), scalars()),
    ),
    "relu": (lambda x: tape.relu(x), (scalars(kinks=(0.0,), margin=1e-3),)),
    "leaky_relu": (lambda x, s: tape.leaky_relu(x, s), (scalars(), scalars(0.0, 0.5, kinks=()))),
    "abs": (lambda x: abs(x), (scalars(),)),
    "dot": (lambda a, b, c, d: tape.dot([a, b], [c, d]), (scalars(),) * 4),
    "vsum": (lambda a, b, c: tape.vsum([a, b, c]), (scalars(),) * 3),
    "leaf": (lambda x: x, (scalars(),)),
    "gelu": (lambda x: tape.gelu(x), (scalars(),)),
    "softplus": (lambda x: tape.softplus(x), (scalars(-25.0, 25.0, kinks=(20.0,), margin=0.1),)),
    "normal_cdf": (lambda x: NORMAL_CDF(x), (scalars(),)),
    "tangent_term": (  # forward mode's term for a tangent that is a Value: a product, 0 for a zero tangent
        lambda x, y: REGISTRY["tangent_term"](x, y),
        (scalars(), scalars(kinks=(0.0,), margin=0.1)),
    ),
}


def test_every_registered_op_has_rules_and_a_gradient_test() -> None:
    library = {name for name, op in REGISTRY.items() if op.builtin}
    assert library == set(GRADIENT_CASES) | set(ARRAY_CASES) | set(ND_CASES)
    for name in library:
        op = REGISTRY[name]
        assert op.name == name
        assert callable(op.forward) and callable(op.float_kernel), (
            f"{name} needs a forward rule and a float kernel"
        )
        if name in ARRAY_CASES or name in ND_CASES:
            assert op.kind == "array" and not op.partials, name
            assert callable(op.vjp) and callable(op.jvp), f"{name} needs a vjp and a jvp rule"
        else:
            assert op.kind == "scalar" and op.vjp is None and op.jvp is None, name
            assert op.partials, f"{name} has no partial rules"
            assert all(callable(rule) for rule in op.partials)


@pytest.mark.parametrize("name", sorted(GRADIENT_CASES))
def test_op_gradient_matches_central_differences(name: str) -> None:
    fun, strategies = GRADIENT_CASES[name]
    argnums = tuple(range(len(strategies)))

    @given(st.tuples(*strategies))
    def check(args: tuple[float, ...]) -> None:
        assert_gradients_match(fun, *args, argnums=argnums, atol=1e-5, rtol=1e-4)

    check()


@pytest.mark.parametrize("name", sorted(set(GRADIENT_CASES) - {"leaf", "dot", "vsum"}))
def test_op_records_one_node_with_its_name(name: str) -> None:
    if name == "max_shift":  # its gradient case is the logsumexp it shifts; see the next test
        with Tape() as t:
            x, y = t.watch(1.5), t.watch(0.5)
            shift = tape.max_shift([x, y])
        assert isinstance(shift, Value) and shift.data == 1.5
        assert t.nodes[-1].op.name == "max_shift" and t.nodes[-1].parents == (x.position, y.position)
        assert t.nodes[-1].partials == (0.0, 0.0)  # a constant for differentiation
        assert tape.max_shift([2.0, float("inf")]) == 0.0
        return
    fun, strategies = GRADIENT_CASES[name]
    args = [1.5, 0.5, 0.25, 2.0][: len(strategies)]
    with Tape() as t:
        watched = [t.watch(a) for a in args]
        before = len(t)
        out = fun(*watched)
    assert isinstance(out, Value)
    assert len(t) == before + 1
    assert t.nodes[-1].op.name == name
    assert t.nodes[-1].parents == tuple(w.position for w in watched)


def test_constant_operands_are_not_parents() -> None:
    with Tape() as t:
        x = t.watch(3.0)
        y = 2.0 * x
        z = x**2.0
        w = 10.0 - x
    assert t.nodes[y.position].parents == (x.position,)
    assert t.nodes[z.position].parents == (x.position,)
    assert t.gradient(y, x) == 2.0
    assert t.gradient(z, x) == 6.0
    assert t.gradient(w, x) == -1.0


def test_constants_record_nothing() -> None:
    a = Value(2.0) * Value(3.0) + 1.0
    assert a.tape is None
    assert a.data == 7.0
    with Tape() as t:
        b = Value(2.0).exp() * 3.0
    assert len(t) == 0
    assert b.tape is None


@pytest.mark.parametrize(
    ("fun", "expected"),
    [
        (tape.exp, math.exp(0.5)),
        (tape.log, math.log(0.5)),
        (tape.sqrt, math.sqrt(0.5)),
        (tape.tanh, math.tanh(0.5)),
        (tape.sigmoid, 1.0 / (1.0 + math.exp(-0.5))),
        (tape.relu, 0.5),
        (tape.leaky_relu, 0.5),
    ],
)
def test_math_functions_float_in_float_out(fun: Callable[[float], float], expected: float) -> None:
    result = fun(0.5)
    assert type(result) is float
    assert result == expected
    assert float(fun(Value(0.5))) == expected  # type: ignore[arg-type]  # the Value overload


def test_fused_ops_on_floats_are_floats() -> None:
    assert tape.dot([1.0, 2.0], [3.0, 4.0]) == 11.0
    assert tape.vsum([1.0, 2.0, 3.5]) == 6.5
    with pytest.raises(ValueError, match="lengths differ"):
        tape.dot([1.0], [1.0, 2.0])


def test_dot_mixing_floats_and_values_records_one_node() -> None:
    with Tape() as t:
        w = [t.watch(1.0), t.watch(-2.0), t.watch(0.5)]
        out = tape.dot(w, [3.0, 4.0, 5.0])
    assert len(t) == 4
    assert out.data == 3.0 - 8.0 + 2.5  # type: ignore[union-attr]
    assert t.gradient(out, tuple(w)) == (3.0, 4.0, 5.0)


@given(st.lists(scalars(), min_size=1, max_size=8))
def test_vsum_gradient_is_all_ones(xs: list[float]) -> None:
    with Tape() as t:
        watched = [t.watch(x) for x in xs]
        total = tape.vsum(watched)
    assert t.gradient(total, watched) == [1.0] * len(xs)


def test_ieee_numerics_never_raise() -> None:
    with Tape() as t:
        x = t.watch(800.0)
        zero = t.watch(0.0)
        neg = t.watch(-8.0)
        big = x.exp()
        log0 = zero.log()
        div0 = x / zero
        nan_div = zero / zero
        frac_pow = neg ** t.watch(1.0 / 3.0)
        sqrt_neg = neg.sqrt()
    assert big.data == math.inf
    assert log0.data == -math.inf
    assert div0.data == math.inf
    assert math.isnan(nan_div.data)
    assert math.isnan(frac_pow.data)
    assert math.isnan(sqrt_neg.data)
    assert t.gradient(log0, zero) == math.inf
    assert tape.exp(1000.0) == math.inf
    assert tape.log(0.0) == -math.inf


def test_pow_of_negative_base_with_integer_exponent() -> None:
    with Tape() as t:
        x = t.watch(-2.0)
        y = t.watch(3.0)
        z = x**y
    dx, dy = t.gradient(z, (x, y))
    assert z.data == -8.0
    assert dx == 12.0
    assert math.isnan(dy)  # d/dy x**y = log(x) x**y: undefined for x < 0, as in PyTorch


def test_relu_and_abs_derivative_at_zero_is_zero() -> None:
    with Tape() as t:
        x = t.watch(0.0)
        r = x.relu()
        a = abs(x)
    assert t.gradient(r, x) == 0.0
    assert t.gradient(a, x) == 0.0


def test_sigmoid_is_stable_at_extremes() -> None:
    assert tape.sigmoid(-1000.0) == 0.0
    assert tape.sigmoid(1000.0) == 1.0
    with Tape() as t:
        x = t.watch(-800.0)
        s = x.sigmoid()
    assert s.data == 0.0
    assert t.gradient(s, x) == 0.0


def test_operators_reject_non_numbers() -> None:
    with Tape() as t:
        x = t.watch(1.0)
        with pytest.raises(TypeError, match="str"):
            x + "a"  # type: ignore[operator]  # the error is the point
        with pytest.raises(TypeError, match="bool"):
            x * True


def test_relu_keeps_nan_and_zero_to_a_power_has_a_zero_exponent_slope() -> None:
    from tape import arrays as A

    assert math.isnan(tape.relu(math.nan))
    assert math.isnan(A.relu([[math.nan]])[0][0])
    with Tape() as t:
        x = t.watch(math.nan)
        y = x.relu()
    assert math.isnan(y.data)
    assert t.gradient(y, x) == 0.0

    def power(a: Scalar, b: Scalar) -> Scalar:
        return a**b

    assert tape.grad(power, argnums=(0, 1))(0.0, 2.0) == (0.0, 0.0)


def test_a_zero_exponent_has_a_zero_base_slope_even_at_a_zero_base() -> None:
    """``x ** 0`` is constant: its slope is 0 at ``x = 0`` too (as PyTorch and JAX), not ``0 * inf``."""
    from tape import arrays as A

    def constant_power(x: Scalar) -> Scalar:
        return x**0.0

    for slope in (tape.grad(constant_power), tape.jit(tape.grad(constant_power))):
        assert [slope(x) for x in (0.0, -0.0, 2.0)] == [0.0, 0.0, 0.0]
    assert tape.jvp(constant_power, (0.0,), (1.0,)) == (1.0, 0.0)
    assert tape.grad(tape.grad(constant_power))(0.0) == 0.0
    base = tape.grad(lambda x, y: x**y)  # the exponent traced: the zero test is data under jit
    assert base(0.0, 0.0) == tape.jit(base)(0.0, 0.0) == 0.0
    assert tape.jit(base)(2.0, 3.0) == base(2.0, 3.0) == 12.0
    batched = tape.grad(lambda x: A.sum(A.power(x, [[0.0, 2.0]])), arrays=True)
    assert batched([[0.0, 0.0]]) == tape.jit(batched)([[0.0, 0.0]]) == [[0.0, 0.0]]
