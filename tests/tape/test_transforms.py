"""tape.grad, tape.value_and_grad and tape.stop_gradient.

Expected derivatives are closed forms worked out by hand, or central differences;
never the tape's own output.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from typing import cast

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pyrsistent import PMap, PVector, pmap, pvector

import tape
from tape import Value, check_gradients, grad, numerical_grad, stop_gradient, value_and_grad
from tape.tree import named_leaves, tree_leaves, tree_structure
from tape.value import Scalar
from tests.tape.test_tree import Pair, assert_identical, reference_leaves, reference_rebuild, trees

xs = st.floats(-2.0, 2.0, allow_nan=False)
# Trees with small leaves, so polynomials of them stay well conditioned.
small_trees = trees.map(lambda t: reference_rebuild(t, (0.5 + i / 7.0 for i in itertools.count())))


def weighted_squares(tree: object) -> Scalar:
    """sum_i (i + 1) * leaf_i ** 2 over the leaves in flattening order."""
    total: Scalar = 0.0
    for i, leaf in enumerate(cast("list[Scalar]", tree_leaves(tree))):
        total = total + (i + 1.0) * leaf * leaf
    return total


def assert_same_containers_with_float_leaves(grads: object, tree: object) -> None:
    """``grads`` has ``tree``'s structure and container types, with plain float leaves."""
    assert tree_structure(grads) == tree_structure(tree)
    assert_identical(zeros_like(grads), zeros_like(tree))
    assert all(type(g) is float for g in reference_leaves(grads))


def zeros_like(tree: object) -> object:
    """The tree with every leaf replaced by 0.0, to compare containers only."""
    return reference_rebuild(tree, itertools.repeat(0.0))


# --- trees of every container type -------------------------------------------------------


@given(small_trees)
def test_grad_over_any_tree_returns_the_same_structure_and_container_types(tree: object) -> None:
    grads = grad(weighted_squares)(tree)
    assert_same_containers_with_float_leaves(grads, tree)
    expected = [2.0 * (i + 1.0) * x for i, x in enumerate(tree_leaves(tree))]
    assert tree_leaves(grads) == pytest.approx(expected, rel=1e-12)


@given(small_trees)
def test_value_and_grad_over_any_tree_gives_fun_value_and_the_same_structure(tree: object) -> None:
    value, grads = value_and_grad(weighted_squares)(tree)
    assert type(value) is float
    assert value == weighted_squares(tree)  # same float operations, bit for bit
    assert_same_containers_with_float_leaves(grads, tree)
    assert_identical(grads, grad(weighted_squares)(tree))


def test_grad_of_each_container_type_by_hand() -> None:
    def f(t: object) -> Scalar:
        a, b, c = cast("list[Scalar]", tree_leaves(t))
        return a * b + c * c * c

    # Leaves in flattening order are (2, 3, 4): df = (3, 2, 3 * 16).
    cases: list[tuple[object, object]] = [
        ((2.0, 3.0, 4.0), (3.0, 2.0, 48.0)),
        ([2.0, 3.0, 4.0], [3.0, 2.0, 48.0]),
        (pvector([2.0, 3.0, 4.0]), pvector([3.0, 2.0, 48.0])),
        (Pair(2.0, [3.0, 4.0]), Pair(3.0, [2.0, 48.0])),
        ({"c": 4.0, "a": 2.0, "b": 3.0}, {"a": 3.0, "b": 2.0, "c": 48.0}),
        (pmap({"c": 4.0, "a": 2.0, "b": 3.0}), pmap({"a": 3.0, "b": 2.0, "c": 48.0})),
        (pmap({"w": pvector([2.0, 3.0]), "x": (4.0,)}), pmap({"w": pvector([3.0, 2.0]), "x": (48.0,)})),
    ]
    for tree, expected in cases:
        assert_identical(grad(f)(tree), expected)


def test_grad_accepts_value_leaves_and_ints_in_other_arguments() -> None:
    assert grad(lambda x, n: x * n)(Value(2.0), 3) == 3.0
    assert grad(lambda x, n: x**n)(2.0, 3) == 12.0


# --- argnums -------------------------------------------------------------------------------


def three(a: Scalar, b: Scalar, c: Scalar) -> Scalar:
    return a * b * b + tape.exp(c) * a


def test_argnums_int_selects_one_argument() -> None:
    a, b, c = 1.5, -2.0, 0.5
    assert grad(three)(a, b, c) == pytest.approx(b * b + math.exp(c))
    assert grad(three, 1)(a, b, c) == pytest.approx(2 * a * b)
    assert grad(three, 2)(a, b, c) == pytest.approx(math.exp(c) * a)


def test_negative_argnums_count_from_the_end() -> None:
    a, b, c = 1.5, -2.0, 0.5
    assert grad(three, -1)(a, b, c) == grad(three, 2)(a, b, c)
    assert grad(three, -3)(a, b, c) == grad(three, 0)(a, b, c)


def test_tuple_argnums_give_a_tuple_of_gradients_in_argnums_order() -> None:
    a, b, c = 1.5, -2.0, 0.5
    da, db, dc = b * b + math.exp(c), 2 * a * b, math.exp(c) * a
    grads = grad(three, (0, 1, 2))(a, b, c)
    assert isinstance(grads, tuple)
    assert grads == pytest.approx((da, db, dc))
    assert grad(three, (2, 0))(a, b, c) == pytest.approx((dc, da))
    assert grad(three, (1,))(a, b, c) == pytest.approx((db,))
    value, both = value_and_grad(three, (-1, 1))(a, b, c)
    assert value == pytest.approx(a * b * b + math.exp(c) * a)
    assert both == pytest.approx((dc, db))


def test_tuple_argnums_with_trees_keep_each_arguments_structure() -> None:
    def f(p: PMap[str, float], q: list[float], scale: float) -> Scalar:
        return scale * (p["w"] * q[0] + p["b"] * q[1] * q[1])

    p, q = pmap({"w": 2.0, "b": 3.0}), [5.0, 7.0]
    dp, dq = cast("tuple[object, object]", grad(f, (0, 1))(p, q, 0.5))
    assert_identical(dp, pmap({"w": 0.5 * 5.0, "b": 0.5 * 49.0}))
    assert_identical(dq, [0.5 * 2.0, 0.5 * 2 * 3.0 * 7.0])


@pytest.mark.parametrize("argnums", [3, -4, (0, 3), (-4,)])
def test_argnums_out_of_range_is_an_error(argnums: int | tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match="out of range for 3 positional arguments"):
        grad(three, argnums)(1.0, 2.0, 3.0)
    with pytest.raises(ValueError, match="out of range"):
        value_and_grad(three, argnums)(1.0, 2.0, 3.0)


@pytest.mark.parametrize("argnums", [(0, 0), (1, -2), (2, 0, -1)])
def test_duplicate_argnums_are_an_error(argnums: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match="names an argument twice"):
        grad(three, argnums)(1.0, 2.0, 3.0)


def test_empty_argnums_and_missing_arguments_are_errors() -> None:
    with pytest.raises(ValueError, match="at least one argument"):
        grad(three, ())(1.0, 2.0, 3.0)
    with pytest.raises(ValueError, match="out of range for 0 positional arguments"):
        cast("Callable[[], object]", grad(cast("Callable[..., Scalar]", lambda: 1.0)))()


def test_keyword_arguments_are_passed_through_but_not_differentiated() -> None:
    def f(x: Scalar, *, scale: float) -> Scalar:
        return scale * x * x

    assert grad(f)(3.0, scale=2.0) == 12.0
    assert value_and_grad(f)(3.0, scale=0.5) == (4.5, 3.0)


# --- has_aux -------------------------------------------------------------------------------


def test_has_aux_returns_aux_alongside_and_unwraps_tape_values() -> None:
    def f(x: Scalar) -> tuple[Scalar, tuple[Scalar, str, list[Scalar]]]:
        y = x * x
        return y * x, (y, "note", [x, 4.0])

    (value, aux), g = value_and_grad(f, has_aux=True)(2.0)
    assert value == 8.0
    assert g == 12.0
    assert aux == (4.0, "note", [2.0, 4.0])
    assert all(type(leaf) is float for leaf in (aux[0], aux[2][0]))  # plain floats, not Values
    g2, aux2 = grad(f, has_aux=True)(2.0)
    assert g2 == 12.0
    assert aux2 == aux


def test_has_aux_with_tuple_argnums() -> None:
    def f(a: Scalar, b: Scalar) -> tuple[Scalar, dict[str, Scalar]]:
        return a * b, {"sum": a + b}

    (value, aux), grads = value_and_grad(f, (0, 1), has_aux=True)(2.0, 5.0)
    assert (value, aux, grads) == (10.0, {"sum": 7.0}, (5.0, 2.0))


@pytest.mark.parametrize("out", [1.0, [1.0, {}], (1.0, 2.0, 3.0)])
def test_has_aux_requires_a_pair(out: object) -> None:
    with pytest.raises(TypeError, match=f"must return a pair \\(value, aux\\), not {type(out).__name__}"):
        grad(cast("Callable[[float], tuple[Scalar, object]]", lambda x: out), has_aux=True)(1.0)


def returning(out: object) -> Callable[[Scalar], Scalar]:
    """A function returning ``out`` whatever its argument, typed as if it returned a scalar."""
    return cast("Callable[[Scalar], Scalar]", lambda x: out)


# --- errors naming what is wrong -------------------------------------------------------------


@pytest.mark.parametrize(
    ("out", "type_name"),
    [([1.0], "list"), ((1.0,), "tuple"), ("1.0", "str"), (True, "bool"), (None, "NoneType")],
)
def test_a_non_scalar_result_is_a_type_error_naming_its_type(out: object, type_name: str) -> None:
    with pytest.raises(TypeError, match=f"must return a scalar \\(float or Value\\), not {type_name}$"):
        grad(returning(out))(1.0)
    with pytest.raises(TypeError, match=f"not {type_name}$"):
        value_and_grad(returning(out))(1.0)


def test_returning_a_list_of_tape_values_is_an_error() -> None:
    with pytest.raises(TypeError, match="not list"):
        grad(cast("Callable[[Scalar], Scalar]", lambda x: [x * x]))(1.0)


@pytest.mark.parametrize(
    ("tree", "where", "type_name"),
    [
        ({"a": [1.0, 2]}, "a.1", "int"),
        (pmap({"layers": pvector([pmap({"w": "0.5"})])}), "layers.0.w", "str"),
        ((1.0, True), "1", "bool"),
        (3, "the root", "int"),
        ([1.0, None], "1", "NoneType"),
    ],
)
@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "jit"])
def test_a_non_float_leaf_is_a_type_error_naming_its_path(
    tree: object, where: str, type_name: str, compiled: bool
) -> None:
    differentiated = grad(lambda t: 0.0)
    with pytest.raises(TypeError, match=f"^leaf at {where} is {type_name} "):
        (tape.jit(differentiated) if compiled else differentiated)(tree)


def test_only_the_selected_arguments_must_be_float_trees() -> None:
    def f(x: Scalar, label: str) -> Scalar:
        return x * len(label)

    assert grad(f)(2.0, "abc") == 3.0
    with pytest.raises(TypeError, match="leaf at the root is str"):
        grad(f, 1)(2.0, "abc")


# --- values and zeros ------------------------------------------------------------------------


@given(small_trees)
def test_a_function_not_depending_on_its_argument_has_zero_gradients(tree: object) -> None:
    for f in (lambda t: 3.0, lambda t: 3, lambda t: Value(2.5), lambda t: stop_gradient(weighted_squares(t))):
        grads = grad(f)(tree)
        assert_same_containers_with_float_leaves(grads, tree)
        assert all(g == 0.0 for g in tree_leaves(grads))


def test_gradient_is_zero_for_an_argument_the_result_ignores() -> None:
    def f(a: Scalar, b: Scalar) -> Scalar:
        return b * b

    assert grad(f, (0, 1))(1.0, 3.0) == (0.0, 6.0)


@given(xs)
def test_value_equals_the_functions_float_value(x: float) -> None:
    def f(v: Scalar) -> Scalar:
        return tape.tanh(v) * v - tape.exp(v) / (1.0 + v * v)

    value, _ = value_and_grad(f)(x)
    assert type(value) is float
    assert value == f(x)
    assert value_and_grad(lambda v: 7)(x) == (7.0, 0.0)
    assert type(value_and_grad(lambda v: 7)(x)[0]) is float


@pytest.mark.parametrize(
    "fun", [lambda x: Value(2.0), lambda x: stop_gradient(x) * 2.0], ids=["constant", "stop_gradient"]
)
def test_value_is_a_float_even_when_the_result_is_a_constant_value(fun: object) -> None:
    value, g = value_and_grad(cast("Callable[[float], Scalar]", fun))(1.0)
    assert g == 0.0
    assert type(value) is float
    assert value == 2.0


def test_grad_of_a_function_closing_over_constants() -> None:
    c, k = 3.0, Value(-0.5)
    table = pmap({"w": pvector([2.0, 4.0])})

    def f(x: Scalar) -> Scalar:
        return c * x * x + k * x + tape.dot(table["w"], [x, x * x])

    x = 1.25
    assert grad(f)(x) == pytest.approx(2 * c * x - 0.5 + 2.0 + 2 * 4.0 * x)


def test_closed_over_constants_get_no_gradient_and_are_not_changed() -> None:
    weights = [1.0, 2.0]
    assert grad(lambda x: x * weights[0] + x * weights[1])(5.0) == 3.0
    assert weights == [1.0, 2.0]
    assert all(type(w) is float for w in weights)


def test_grad_does_not_modify_its_argument() -> None:
    tree = {"a": [1.0, 2.0], "b": (3.0,)}
    before = repr(tree)
    grad(weighted_squares)(tree)
    assert repr(tree) == before


# --- higher order --------------------------------------------------------------------------------


@given(xs)
def test_second_derivatives_match_closed_forms(x: float) -> None:
    t, s = math.tanh(x), 1.0 / (1.0 + math.exp(-x))
    cases: list[tuple[object, float]] = [
        (lambda v: v * v * v, 6.0 * x),
        (lambda v: v**3.0, 6.0 * x),
        (lambda v: 2.0 * v**4 - v * v + 5.0, 24.0 * x * x - 2.0),
        (tape.exp, math.exp(x)),
        (tape.tanh, -2.0 * t * (1.0 - t * t)),
        (tape.sigmoid, s * (1.0 - s) * (1.0 - 2.0 * s)),
        (lambda v: tape.exp(2.0 * v) * v, 4.0 * math.exp(2.0 * x) * (1.0 + x)),
        (lambda v: 1.0 / (1.0 + v * v), (6.0 * x * x - 2.0) / (1.0 + x * x) ** 3),
    ]
    for f, expected in cases:
        second = grad(grad(cast("Callable[[Scalar], Scalar]", f)))
        assert second(x) == pytest.approx(expected, rel=1e-9, abs=1e-12)


@given(st.floats(0.2, 3.0))
def test_second_derivatives_on_positive_domain(x: float) -> None:
    assert grad(grad(tape.log))(x) == pytest.approx(-1.0 / (x * x), rel=1e-12)
    assert grad(grad(tape.sqrt))(x) == pytest.approx(-0.25 * x**-1.5, rel=1e-12)
    # x ** x: second derivative x ** x * ((log x + 1) ** 2 + 1 / x)
    expected = x**x * ((math.log(x) + 1.0) ** 2 + 1.0 / x)
    assert grad(grad(lambda v: v**v))(x) == pytest.approx(expected, rel=1e-9)


@given(xs)
def test_third_derivatives_match_closed_forms(x: float) -> None:
    t = math.tanh(x)
    third = grad(grad(grad(lambda v: v**4)))
    assert third(x) == pytest.approx(24.0 * x, rel=1e-12, abs=1e-12)
    assert grad(grad(grad(tape.exp)))(x) == pytest.approx(math.exp(x), rel=1e-12)
    expected = -2.0 * (1.0 - t * t) * (1.0 - 3.0 * t * t)
    assert grad(grad(grad(tape.tanh)))(x) == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_fourth_derivative_of_a_polynomial_is_constant() -> None:
    f = grad(grad(grad(grad(lambda v: 3.0 * v**5 - v**4))))
    for x in (-1.0, 0.0, 2.0):
        assert f(x) == pytest.approx(360.0 * x - 24.0, abs=1e-9)


def test_perturbation_confusion_is_avoided() -> None:
    # d/dx [x * (d/dy (x * y) at y = 2)] = d/dx [x * x] = 2x = 6 at x = 3.
    assert grad(lambda x: x * grad(lambda y: x * y)(2.0))(3.0) == 6.0
    # d/dx [d/dy (x * y) at y = x] = d/dx [x] = 1.
    assert grad(lambda x: grad(lambda y: x * y)(x))(3.0) == 1.0


def test_mixed_partials_through_nested_grads() -> None:
    # d/dy (x^2 y^2) = 2 x^2 y; at y = 2: 4 x^2; d/dx: 8x.
    assert grad(lambda x: grad(lambda y: x * x * y * y)(2.0))(3.0) == 24.0
    # value_and_grad nested: value x y^2 at y = 2 is 4x; its gradient 2xy = 4x.
    assert grad(lambda x: value_and_grad(lambda y: x * y * y)(2.0)[0])(3.0) == 4.0
    assert grad(lambda x: value_and_grad(lambda y: x * y * y)(2.0)[1])(3.0) == 4.0


def test_hessian_row_over_a_pmap() -> None:
    def f(p: PMap[str, Scalar]) -> Scalar:
        return p["a"] ** 3.0 * p["b"]

    a, b = 2.0, 5.0
    # df/da = 3 a^2 b; its gradient: (6 a b, 3 a^2).
    row = grad(lambda p: grad(f)(p)["a"])(pmap({"a": a, "b": b}))
    assert_identical(row, pmap({"a": 6.0 * a * b, "b": 3.0 * a * a}))


@given(xs)
def test_nested_grad_matches_central_differences_of_grad(x: float) -> None:
    def f(v: Scalar) -> Scalar:
        return tape.sigmoid(v) * tape.tanh(2.0 * v) + v * v * v

    first = grad(f)
    assert grad(first)(x) == pytest.approx(numerical_grad(first, x, eps=1e-5), rel=1e-5, abs=1e-6)


# --- stop_gradient ----------------------------------------------------------------------------------


@given(xs)
def test_stop_gradient_blocks_the_derivative(x: float) -> None:
    assert grad(lambda v: v * stop_gradient(v))(x) == x
    assert grad(lambda v: stop_gradient(v) * v * v)(x) == pytest.approx(2.0 * x * x)
    assert grad(lambda v: stop_gradient(v * v) + v)(x) == 1.0
    assert value_and_grad(lambda v: v * stop_gradient(v))(x) == (x * x, x)


def test_stop_gradient_on_floats_is_the_identity() -> None:
    assert stop_gradient(2.5) == 2.5
    tree = {"a": [1.0, 2.0], "b": pmap({"c": pvector([3.0])})}
    assert_identical(stop_gradient(tree), tree)


@given(small_trees)
def test_stop_gradient_works_on_trees(tree: object) -> None:
    def f(t: object) -> Scalar:
        stopped = stop_gradient(t)
        assert tree_structure(stopped) == tree_structure(t)
        stopped_leaves: list[object] = list(tree_leaves(stopped))
        assert all(isinstance(s, Value) and s.tape is None for s in stopped_leaves)
        assert [float(s) for s in tree_leaves(stopped)] == [float(v) for v in tree_leaves(t)]
        return weighted_squares(stopped) + vsum_leaves(t)

    grads = grad(f)(tree)
    assert_same_containers_with_float_leaves(grads, tree)
    assert all(g == 1.0 for g in tree_leaves(grads))


def vsum_leaves(tree: object) -> Scalar:
    return tape.vsum(cast("list[Scalar]", tree_leaves(tree)))


def test_stop_gradient_inside_nested_grads() -> None:
    # The stopped factor is a constant at every level: d2/dx2 [s * x^2] = 2 s with s = x.
    assert grad(grad(lambda x: stop_gradient(x) * x * x))(3.0) == 6.0
    # A stopped outer value is a constant to the outer derivative too.
    assert grad(lambda x: grad(lambda y: y * stop_gradient(x))(1.0) * x)(3.0) == 3.0


# --- determinism and a model-shaped function -----------------------------------------------------


@given(small_trees)
def test_same_call_twice_is_bit_identical(tree: object) -> None:
    def f(t: object) -> Scalar:
        return tape.tanh(weighted_squares(t)) + tape.exp(-weighted_squares(t))

    first, second = value_and_grad(f)(tree), value_and_grad(f)(tree)
    assert repr(first) == repr(second)
    assert [x.hex() for x in tree_leaves(first[1])] == [x.hex() for x in tree_leaves(second[1])]


Params = PMap[str, PVector[object]]


def mlp(params: Params, x: Sequence[Scalar]) -> Scalar:
    """One tanh hidden layer (rows of w1 are its neurons), a linear output, squared error to 1."""
    w1 = cast("Sequence[Sequence[Scalar]]", params["w1"])
    b1, w2 = cast("Sequence[Scalar]", params["b1"]), cast("Sequence[Scalar]", params["w2"])
    hidden = [tape.tanh(tape.dot(row, x) + b) for row, b in zip(w1, b1, strict=True)]
    out = tape.dot(w2, hidden) + cast("Sequence[Scalar]", params["b2"])[0]
    return (out - 1.0) ** 2


def initial_params(values: Sequence[float]) -> Params:
    it = iter(values)
    return pmap(
        {
            "w1": pvector([pvector([next(it) for _ in range(3)]) for _ in range(4)]),
            "b1": pvector([next(it) for _ in range(4)]),
            "w2": pvector([next(it) for _ in range(4)]),
            "b2": pvector([next(it)]),
        }
    )


@given(st.lists(st.floats(-1.0, 1.0), min_size=21, max_size=21), st.lists(xs, min_size=3, max_size=3))
def test_grad_of_a_small_mlp_over_a_pmap_of_pvectors(values: list[float], x: list[float]) -> None:
    params = initial_params(values)
    grads = grad(mlp)(params, x)
    assert_same_containers_with_float_leaves(grads, params)
    assert isinstance(grads, PMap)
    assert all(isinstance(grads[k], PVector) for k in grads)
    report = check_gradients(mlp, params, x, atol=1e-6, rtol=1e-5)
    assert [path for path, _ in report.analytic] == [path for path, _ in named_leaves(params)]
    # And with respect to the input as well: a tuple of both gradients.
    check_gradients(mlp, params, x, argnums=(0, 1), atol=1e-6, rtol=1e-5)
