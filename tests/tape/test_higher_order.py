"""Higher-order and forward-mode differentiation: nested tapes, jvp, vjp, hvp, Jacobians, Hessians."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pyrsistent import PMap, pmap, pvector

import tape
from tape import ForwardTape, GradientCheckError, Tape, TapeError, Value
from tape import arrays as A
from tape.testing import (
    assert_jvp_matches_vjp,
    assert_second_derivatives_match,
    directions,
    parameter_trees,
    scalars,
)
from tape.tree import tree_leaves
from tests.tape.test_arrays import ARRAY_CASES
from tests.tape.test_ops import GRADIENT_CASES

SCALAR_OPS = sorted(set(GRADIENT_CASES))


@pytest.mark.parametrize("name", SCALAR_OPS)
def test_second_derivatives_of_every_op_match_differences_of_the_gradient(name: str) -> None:
    fun, strategies = GRADIENT_CASES[name]
    argnums = tuple(range(len(strategies)))

    @given(st.tuples(*strategies))
    def check(args: tuple[float, ...]) -> None:
        assert_second_derivatives_match(fun, *args, argnums=argnums)

    check()


@pytest.mark.parametrize("name", SCALAR_OPS)
def test_jvp_and_vjp_agree_for_every_op(name: str) -> None:
    fun, strategies = GRADIENT_CASES[name]
    n = len(strategies)

    @given(st.tuples(*strategies), directions(n), st.floats(-2.0, 2.0, allow_nan=False))
    def check(args: tuple[float, ...], v: tuple[float, ...], u: float) -> None:
        assert_jvp_matches_vjp(fun, args, v, u, rel_tol=1e-9, abs_tol=1e-9)

    check()


@pytest.mark.parametrize("name", sorted(ARRAY_CASES))
def test_array_jvp_rules_agree_with_reverse_mode(name: str) -> None:
    fun = ARRAY_CASES[name]
    params_strategy = parameter_trees({"w": (2, 3), "b": (2,)}, scalars(-2.0, 2.0, margin=1e-2))
    direction_strategy = parameter_trees({"w": (2, 3), "b": (2,)}, st.floats(-1.0, 1.0, allow_nan=False))

    @given(params_strategy, direction_strategy, st.floats(-2.0, 2.0, allow_nan=False))
    def check(params: PMap[str, object], v: PMap[str, object], u: float) -> None:
        assert_jvp_matches_vjp(fun, (params,), (v,), u, arrays=True, rel_tol=1e-9, abs_tol=1e-9)
        # and the array forward rules give what the scalar forward path gives
        _, with_arrays = tape.jvp(fun, (params,), (v,), arrays=True)
        _, with_scalars = tape.jvp(fun, (params,), (v,))
        assert math.isclose(float(with_arrays), float(with_scalars), rel_tol=1e-9, abs_tol=1e-12)  # type: ignore[arg-type]

    check()


def smooth(x: tuple[float, ...]) -> tape.Scalar:
    a, b, c = x
    return tape.tanh(a * b + c) * tape.exp(0.3 * a) + tape.sigmoid(b - c) * a * a + tape.log(1.5 + c * c)


@given(st.tuples(scalars(), scalars(), scalars()))
def test_hessian_is_symmetric_and_matches_hvp(x: tuple[float, float, float]) -> None:
    H = tape.hessian(smooth)(x)
    for i in range(3):
        for j in range(3):
            assert math.isclose(H[i][j], H[j][i], rel_tol=1e-9, abs_tol=1e-12)
    for k in range(3):
        basis = tuple(1.0 if j == k else 0.0 for j in range(3))
        column = tape.hvp(smooth, x, basis)
        for i in range(3):
            assert math.isclose(column[i], H[i][k], rel_tol=1e-9, abs_tol=1e-12)


def test_grad_of_grad_to_any_order() -> None:
    def f(x: tape.Scalar) -> tape.Scalar:
        return tape.exp(2.0 * x)

    derivative: Callable[[tape.Scalar], tape.Scalar] = f
    for order in range(1, 6):
        derivative = tape.grad(derivative)
        assert math.isclose(float(derivative(0.3)), 2.0**order * math.exp(0.6), rel_tol=1e-12)


def test_grad_of_a_function_that_calls_grad_keeps_levels_apart() -> None:
    # d/dx [x * d/dy (x * y)] = d/dx [x * x] = 2x, not confused by the inner derivative
    outer = tape.grad(lambda x: x * tape.grad(lambda y: x * y)(2.0))
    assert outer(3.0) == 6.0


def test_newtons_method_finds_a_cube_root() -> None:
    def f(x: tape.Scalar) -> tape.Scalar:
        return x * x * x - 2.0

    x = 1.0
    for _ in range(8):
        value, slope = tape.value_and_grad(f)(x)
        x = x - value / float(slope)
    assert math.isclose(x, 2.0 ** (1.0 / 3.0), rel_tol=1e-15)


def test_newtons_method_on_a_minimum_uses_the_second_derivative() -> None:
    def loss(x: tape.Scalar) -> tape.Scalar:
        return tape.exp(x) - 3.0 * x  # minimum at log 3

    x = 0.0
    for _ in range(10):
        x = x - float(tape.grad(loss)(x)) / float(tape.grad(tape.grad(loss))(x))
    assert math.isclose(x, math.log(3.0), rel_tol=1e-14)


def test_hvp_of_a_small_mlp_loss_matches_differences_of_its_gradient() -> None:
    from functional_nn import MLP, random
    from functional_nn.loss import mse_loss

    model = MLP(2, [4, 1], activation="tanh")
    params = model.init(random.key(3))
    xs = [[0.5, -1.0], [1.5, 0.25], [-0.75, 0.5]]
    ys = [0.2, -0.4, 0.9]

    def loss(p: object) -> tape.Scalar:
        terms = [mse_loss(model.apply(p, x)[0], y) for x, y in zip(xs, ys, strict=True)]  # type: ignore[call-overload]  # p is the params tree, typed loosely here
        return tape.vsum(terms) / 3.0

    direction = tape.tree.tree_map(lambda w: 0.5 - abs(w), params)
    analytic = tree_leaves(tape.hvp(loss, params, direction))
    eps = 1e-5

    def shifted(sign: float) -> object:
        moved = tape.tree.tree_map(lambda w, d: w + sign * eps * d, params, direction)
        return tape.grad(loss)(moved)

    numerical = [
        (a - b) / (2 * eps)
        for a, b in zip(tree_leaves(shifted(1.0)), tree_leaves(shifted(-1.0)), strict=True)
    ]
    assert len(analytic) == len(numerical) == 17
    for a, n in zip(analytic, numerical, strict=True):
        assert math.isclose(a, n, rel_tol=1e-5, abs_tol=1e-8)


def test_jvp_on_trees_and_outputs() -> None:
    params = pmap({"w": pvector([1.0, 2.0]), "b": 0.5})
    tangent = pmap({"w": pvector([1.0, 0.0]), "b": 0.0})

    def f(p: PMap[str, object]) -> tuple[tape.Scalar, tape.Scalar]:
        w = p["w"]
        return (w[0] * w[1] + p["b"], tape.exp(w[0]))  # type: ignore[index]

    value, slope = tape.jvp(f, (params,), (tangent,))
    assert value == (2.5, math.e)
    assert slope == (2.0, math.e)


def test_vjp_pullback_and_jacobian() -> None:
    def f(x: tuple[float, float]) -> tuple[tape.Scalar, tape.Scalar, tape.Scalar]:
        a, b = x
        return (a * b, a + b, a * a)

    value, pullback = tape.vjp(f, (2.0, 3.0))
    assert value == (6.0, 5.0, 4.0)
    assert pullback((1.0, 0.0, 0.0)) == ((3.0, 2.0),)
    assert pullback((0.0, 1.0, 1.0)) == ((5.0, 1.0),)
    assert tape.jacobian(f)((2.0, 3.0)) == ((3.0, 2.0), (1.0, 1.0), (4.0, 0.0))
    with pytest.raises(ValueError, match="structure"):
        pullback((1.0, 0.0))  # type: ignore[arg-type]


def test_jacobian_and_hessian_pass_keyword_arguments_on_and_differentiate_argnums_1() -> None:
    def f(x: tuple[float, float], *, scale: float) -> tuple[tape.Scalar, tape.Scalar]:
        return (scale * x[0] * x[1], x[0])

    def g(c: float, x: tuple[float, float], *, scale: float) -> tape.Scalar:
        return scale * c * x[0] * x[0] * x[1]

    assert tape.jacobian(f)((2.0, 3.0), scale=2.0) == ((6.0, 4.0), (1.0, 0.0))
    assert tape.hessian(g, 1)(1.0, (1.0, 2.0), scale=3.0) == ((12.0, 6.0), (6.0, 0.0))
    assert tape.jacobian(lambda c, x: c * x, 1)(2.0, 5.0) == 2.0


def test_vjp_of_four_primals_gives_one_gradient_per_primal() -> None:
    def f(a: float, b: float, c: float, d: float) -> tape.Scalar:
        return a * b + c * d

    value, pullback = tape.vjp(f, 1.0, 2.0, 3.0, 4.0)
    assert value == 14.0
    assert pullback(2.0) == (4.0, 2.0, 8.0, 6.0)


def test_transformed_functions_are_named_after_and_wrap_their_function() -> None:
    def loss(x: float, y: float) -> tape.Scalar:
        """The loss."""
        return x * y

    made = {
        "grad": tape.grad(loss, (0, 1)),
        "value_and_grad": tape.value_and_grad(loss),
        "jacobian": tape.jacobian(loss),
        "hessian": tape.hessian(loss),
    }
    for name, transformed in made.items():
        assert transformed.__name__ == f"{name}(loss)"
        assert transformed.__doc__ == "The loss."
        assert getattr(transformed, "__wrapped__", None) is loss
    assert tape.hessian(loss)(1.0, 2.0) == 0.0


def test_hessian_of_a_tree_argument() -> None:
    def f(p: PMap[str, object]) -> tape.Scalar:
        return p["a"] * p["a"] * p["b"]  # type: ignore[operator, no-any-return]

    H = tape.hessian(f)(pmap({"a": 1.0, "b": 2.0}))
    expected = pmap({"a": pmap({"a": 4.0, "b": 2.0}), "b": pmap({"a": 2.0, "b": 0.0})})
    assert expected == H


def test_forward_tape_directly() -> None:
    with ForwardTape() as t:
        x = t.watch(0.5, 1.0)
        y = t.watch(2.0)
        z = x * y + x.exp()
    assert t.tangent(z) == 2.0 + math.exp(0.5)
    assert t.tangent(y) == 0.0
    assert repr(z).startswith("Value(") and "op='add'" in repr(z)
    assert Tape not in type(t).__mro__ and not hasattr(t, "gradient")  # its own recording, keeping no graph
    with pytest.raises(TapeError, match="closed"):
        x * 2.0


def test_jvp_input_errors() -> None:
    with pytest.raises(TypeError, match="tuples"):
        tape.jvp(lambda x: x, [1.0], [1.0])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="another structure"):
        tape.jvp(lambda x: x, ((1.0, 2.0),), ((1.0,),))
    with pytest.raises(ValueError, match="2 primals but 1 tangents"):
        tape.jvp(lambda x, y: x, (1.0, 2.0), (1.0,))


def test_second_derivative_check_catches_a_wrong_rule() -> None:
    with pytest.raises(GradientCheckError, match="second derivative mismatch at arg0, arg0"):
        assert_second_derivatives_match(lambda x: tape.stop_gradient(x) * x * x, 0.7)


def test_nested_reverse_tapes_by_hand() -> None:
    with Tape() as outer:
        x = outer.watch(0.4)
        with Tape() as inner:
            y = inner.watch(x)
            f = y.tanh()
        dfdx: object = inner.gradient(f, y)
    assert isinstance(dfdx, Value)
    assert math.isclose(outer.gradient(dfdx, x), -2.0 * math.tanh(0.4) * (1.0 - math.tanh(0.4) ** 2))


def test_a_gradient_penalty_nests_inside_an_array_gradient() -> None:
    from tape import arrays as A

    batch = [[1.0, 2.0], [0.5, -1.0]]

    def inner(p: PMap[str, object]) -> tape.Scalar:
        return A.mean(A.tanh(A.linear(p["w"], None, batch)))  # type: ignore[arg-type]

    def penalised(p: PMap[str, object]) -> tape.Scalar:
        slopes = tape.grad(inner, arrays=True)(p)
        return inner(p) + tape.vsum([s * s for s in tree_leaves(slopes)])

    params = pmap({"w": pvector([pvector([0.1, 0.2]), pvector([0.3, -0.4])])})
    with_arrays = tree_leaves(tape.grad(penalised, arrays=True)(params))
    with_values = tree_leaves(tape.grad(penalised)(params))
    for a, b in zip(with_arrays, with_values, strict=True):
        assert math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-15)
    tape.check_gradients(penalised, params)


def test_jvp_with_arrays_takes_an_untracked_array_and_names_a_tracked_one() -> None:
    """As ``grad(..., arrays=True)`` does, forward mode watches an ``asarray`` primal as one Array;
    a traced Array (a function tape.jit compiles with arrays=True) is a TypeError saying so."""
    x, t = [[0.5, -1.0], [2.0, 0.25]], [[1.0, 0.0], [0.5, 2.0]]

    def f(y: A.Array) -> object:
        return A.sum(A.tanh(y) * y)

    expected = tape.jvp(f, (x,), (t,), arrays=True)
    assert tape.jvp(f, (A.asarray(x),), (A.asarray(t),), arrays=True) == expected
    assert tape.jvp(f, (A.asarray(x),), (t,), arrays=True) == expected
    assert tape.jvp(f, (x,), (A.asarray(t),), arrays=True) == expected
    compiled = tape.jit(lambda y: tape.jvp(f, (y,), (t,), arrays=True), arrays=True)
    with pytest.raises(TypeError, match=r"jvp: argument 0 is an Array a tape records.*does not compile"):
        compiled(x)
