"""tape.numerical_grad, tape.check_gradients, GradientReport and GradientCheckError.

Wrong gradients are built honestly: ``stop_gradient`` hides part of a function from
the tape, so its analytic gradient is wrong while its float value (which numerical
differences see) is unchanged. Exact boundary cases use dyadic numbers, for which
every float operation involved is exact.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import cast

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pyrsistent import PMap, pmap, pvector

import tape
from tape import (
    GradientCheckError,
    GradientReport,
    check_gradients,
    grad,
    numerical_grad,
    stop_gradient,
)
from tape import arrays as A
from tape.tree import named_leaves, tree_leaves, tree_structure
from tape.value import Scalar
from tests.tape.test_tree import assert_identical

xs = st.floats(-2.0, 2.0, allow_nan=False)
EPS = 2.0**-10  # dyadic step: x +- EPS is exact for dyadic x


def shifted(a: float, b: float) -> Callable[[Scalar], Scalar]:
    """``f(x) = a*x + b*x`` in value, but the tape only sees the ``a*x`` part.

    True derivative ``a + b``; the tape's derivative ``a``.
    """
    return lambda x: a * x + b * stop_gradient(x)


# --- numerical_grad --------------------------------------------------------------------------


@given(xs)
def test_numerical_grad_matches_closed_forms(x: float) -> None:
    t = math.tanh(x)
    cases: list[tuple[Callable[[Scalar], Scalar], float]] = [
        (lambda v: v * v * v, 3.0 * x * x),
        (tape.exp, math.exp(x)),
        (tape.tanh, 1.0 - t * t),
        (lambda v: 1.0 / (1.0 + v * v), -2.0 * x / (1.0 + x * x) ** 2),
    ]
    for f, expected in cases:
        assert numerical_grad(f, x) == pytest.approx(expected, rel=1e-6, abs=1e-8)


@given(st.floats(0.2, 4.0))
def test_numerical_grad_of_log_and_sqrt(x: float) -> None:
    assert numerical_grad(tape.log, x) == pytest.approx(1.0 / x, rel=1e-6)
    assert numerical_grad(tape.sqrt, x) == pytest.approx(0.5 / math.sqrt(x), rel=1e-6)


def test_numerical_grad_is_a_central_difference_with_the_given_eps() -> None:
    # For x^3 the central difference is 3x^2 + eps^2 exactly; a forward one would be
    # 3x^2 + 3x eps + eps^2. At x = 1, eps = 0.5: 3.25 (forward: 4.75).
    assert numerical_grad(lambda v: v * v * v, 1.0, eps=0.5) == 3.25
    assert numerical_grad(lambda v: v * v * v, 1.0, eps=0.25) == 3.0625
    # Linear functions of dyadic numbers are differentiated exactly.
    assert numerical_grad(lambda v: 0.75 * v - 2.0, 1.0, eps=EPS) == 0.75


def test_numerical_grad_over_trees_keeps_structure_and_container_types() -> None:
    def f(p: PMap[str, object]) -> Scalar:
        w = cast("Sequence[Scalar]", p["w"])
        return w[0] * w[1] + cast(Scalar, p["b"]) ** 2

    params = pmap({"w": pvector([2.0, 3.0]), "b": 5.0})
    slopes = numerical_grad(f, params)
    assert tree_structure(slopes) == tree_structure(params)
    assert isinstance(slopes, PMap)
    assert tree_leaves(slopes) == pytest.approx(tree_leaves(pmap({"w": pvector([3.0, 2.0]), "b": 10.0})))
    for tree in ([1.0, (2.0,)], {"a": 1.0, "z": [2.0]}):
        structure_only = numerical_grad(lambda t: 0.0, tree)
        assert_identical(structure_only, _zeros_like(tree))


def _zeros_like(tree: object) -> object:
    if isinstance(tree, dict):
        return {k: _zeros_like(v) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return type(tree)(_zeros_like(v) for v in tree)
    return 0.0


def test_numerical_grad_argnums() -> None:
    def f(a: Scalar, b: Scalar, c: Scalar) -> Scalar:
        return a * b * b + 3.0 * c

    a, b, c = 1.5, -2.0, 0.5
    assert numerical_grad(f, a, b, c, argnums=1) == pytest.approx(2 * a * b)
    assert numerical_grad(f, a, b, c, argnums=-1) == pytest.approx(3.0)
    both = numerical_grad(f, a, b, c, argnums=(2, 0))
    assert isinstance(both, tuple)
    assert both == pytest.approx((3.0, b * b))
    with pytest.raises(ValueError, match="out of range"):
        numerical_grad(f, a, b, c, argnums=3)
    with pytest.raises(ValueError, match="twice"):
        numerical_grad(f, a, b, c, argnums=(0, -3))


def test_numerical_grad_does_not_modify_its_argument() -> None:
    tree = {"a": [1.0, 2.0]}
    numerical_grad(lambda t: t["a"][0] * t["a"][1], tree)
    assert tree == {"a": [1.0, 2.0]}


@pytest.mark.parametrize("eps", [0.0, -1e-6, -1.0, math.nan])
def test_non_positive_eps_is_an_error(eps: float) -> None:
    with pytest.raises(ValueError, match="eps must be positive"):
        numerical_grad(lambda v: v, 1.0, eps=eps)
    with pytest.raises(ValueError, match="eps must be positive"):
        check_gradients(lambda v: v, 1.0, eps=eps)


def test_numerical_grad_rejects_non_float_leaves_and_non_scalar_results() -> None:
    with pytest.raises(TypeError, match="needs float leaves, found int at leaf 1"):
        numerical_grad(lambda t: 0.0, [1.0, 2])
    with pytest.raises(TypeError, match="must return a scalar, not list"):
        numerical_grad(cast("Callable[[Scalar], Scalar]", lambda v: [v]), 1.0)


# --- check_gradients: passing ---------------------------------------------------------------


def loss(params: PMap[str, object], x: Scalar) -> Scalar:
    w = cast("Sequence[Scalar]", params["w"])
    b = cast(Scalar, params["b"])
    return tape.tanh(w[0] * x + w[1] * x * x + b) ** 2


@given(xs, xs, xs, xs)
def test_check_gradients_passes_on_correct_functions(w0: float, w1: float, b: float, x: float) -> None:
    params = pmap({"w": pvector([w0, w1]), "b": b})
    report = check_gradients(loss, params, x)
    assert isinstance(report, GradientReport)
    analytic, numerical = dict(report.analytic), dict(report.numerical)
    # The report carries both gradients, named by leaf path.
    assert report.analytic == tuple(named_leaves(grad(loss)(params, x)))
    assert report.numerical == tuple(named_leaves(numerical_grad(loss, params, x)))
    assert list(analytic) == ["b", "w.0", "w.1"]
    # Its error fields are the maxima over the leaves, and within tolerance.
    errors = {p: abs(analytic[p] - numerical[p]) for p in analytic}
    assert report.max_abs_error == max(errors.values())
    rel = [
        errors[p] / abs(numerical[p]) if numerical[p] != 0.0 else (math.inf if errors[p] else 0.0)
        for p in errors
    ]
    assert report.max_rel_error == max(rel)
    allowed = {p: 1e-6 + 1e-4 * abs(numerical[p]) for p in errors}  # the defaults atol, rtol
    assert all(errors[p] <= allowed[p] for p in errors)
    # The worst leaf is the one closest to (or furthest over) its tolerance.
    assert report.worst_path == max(errors, key=lambda p: errors[p] - allowed[p])


def test_check_gradients_of_a_bare_scalar_uses_an_empty_path() -> None:
    report = check_gradients(lambda v: v * v, 1.5)
    assert report.worst_path == ""
    assert [p for p, _ in report.analytic] == [""]
    assert report.analytic[0][1] == 3.0
    assert report.numerical[0][1] == pytest.approx(3.0)


def test_check_gradients_with_tuple_argnums_prefixes_paths_with_the_argument() -> None:
    report = check_gradients(loss, pmap({"w": pvector([0.5, -0.25]), "b": 0.1}), 0.75, argnums=(1, 0))
    assert [p for p, _ in report.analytic] == ["arg1", "arg0.b", "arg0.w.0", "arg0.w.1"]
    assert [p for p, _ in report.numerical] == [p for p, _ in report.analytic]
    one = check_gradients(loss, pmap({"w": pvector([0.5, -0.25]), "b": 0.1}), 0.75, argnums=(0,))
    assert [p for p, _ in one.analytic] == ["arg0.b", "arg0.w.0", "arg0.w.1"]


def test_zero_gradients_on_both_sides_give_zero_errors() -> None:
    report = check_gradients(lambda v: 4.0, {"a": 1.0})
    assert (report.max_abs_error, report.max_rel_error) == (0.0, 0.0)
    assert report.analytic == report.numerical == (("a", 0.0),)


def test_max_rel_error_is_infinite_when_the_numerical_gradient_is_zero() -> None:
    # x - stop_gradient(x) is identically 0 (numerical slope exactly 0); the tape says 1.
    report = check_gradients(lambda v: v - stop_gradient(v), 1.0, atol=2.0)
    assert report.max_abs_error == 1.0
    assert report.max_rel_error == math.inf
    with pytest.raises(GradientCheckError, match="max rel error inf"):
        check_gradients(lambda v: v - stop_gradient(v), 1.0)


# --- check_gradients: failing ---------------------------------------------------------------


def test_gradient_check_error_is_an_assertion_error() -> None:
    assert issubclass(GradientCheckError, AssertionError)


@given(st.floats(0.5, 2.0))
def test_a_wrong_gradient_raises_naming_the_argument(x: float) -> None:
    # f(x) = stop_gradient(x) * x: true derivative 2x, the tape says x.
    assert grad(lambda v: stop_gradient(v) * v)(x) == x
    with pytest.raises(GradientCheckError, match=r"^gradient mismatch at the argument: analytic ") as caught:
        check_gradients(lambda v: stop_gradient(v) * v, x)
    message = str(caught.value)
    assert f"analytic {x!r}" in message
    numerical = numerical_grad(lambda v: stop_gradient(v) * v, x)
    assert f"vs numerical {numerical!r}" in message


def wrong_in_places(t: PMap[str, object]) -> Scalar:
    """Correct for ``a``; ``b.1`` is off by ``b1`` and ``c`` by ``c / 2``."""
    b = cast("Sequence[Scalar]", t["b"])
    c = cast(Scalar, t["c"])
    a = cast(Scalar, t["a"])
    return a * a + b[0] + stop_gradient(b[1]) * b[1] + 0.5 * c * c + 0.5 * stop_gradient(c) * c


def test_the_worst_leaf_is_named() -> None:
    # Errors: a 0, b.0 0, b.1 |b1| = 3, c |c| / 2 = 1: the worst is b.1.
    tree = pmap({"a": 1.0, "b": pvector([2.0, 3.0]), "c": 2.0})
    with pytest.raises(GradientCheckError, match=r"^gradient mismatch at b\.1: analytic 3\.0 "):
        check_gradients(wrong_in_places, tree)
    # Make c the worst: its error is 4, b.1's still 3.
    tree = pmap({"a": 1.0, "b": pvector([2.0, 3.0]), "c": 8.0})
    with pytest.raises(GradientCheckError, match=r"^gradient mismatch at c: ") as caught:
        check_gradients(wrong_in_places, tree)
    assert "max abs error 4," in str(caught.value)
    assert "max rel error 0.5" in str(caught.value)


def test_the_worst_leaf_is_prefixed_by_its_argument_with_tuple_argnums() -> None:
    tree = pmap({"a": 1.0, "b": pvector([2.0, 3.0]), "c": 2.0})

    def two(s: Scalar, t: PMap[str, object]) -> Scalar:
        return s * s + wrong_in_places(t)

    with pytest.raises(GradientCheckError, match=r"^gradient mismatch at arg1\.b\.1: "):
        check_gradients(two, 1.0, tree, argnums=(0, 1))
    with pytest.raises(GradientCheckError, match=r"^gradient mismatch at b\.1: "):
        check_gradients(two, 1.0, tree, argnums=1)
    with pytest.raises(GradientCheckError, match=r"^gradient mismatch at arg0: "):
        check_gradients(lambda s, t: stop_gradient(s) * s + cast(Scalar, t), 1.5, 2.0, argnums=(0, 1))


def test_the_worst_leaf_is_the_largest_violation_not_the_largest_error() -> None:
    # Leaf a: true slope 1000 + 2, tape 1000 (error 2, well within rtol * 1002).
    # Leaf b: true slope 0.5, tape 0 (error 0.5, beyond atol + rtol * 0.5).
    def f(t: tuple[Scalar, Scalar]) -> Scalar:
        a, b = t
        return 1000.0 * a + 2.0 * stop_gradient(a) + 0.5 * stop_gradient(b)

    with pytest.raises(GradientCheckError, match=r"^gradient mismatch at 1: analytic 0\.0 ") as caught:
        check_gradients(f, (1.0, 1.0), eps=EPS, atol=0.0, rtol=0.01)
    assert "max abs error 2," in str(caught.value)


# --- the pass rule |a - n| <= atol + rtol * |n| at its boundary -------------------------------


def test_pass_rule_boundary_with_atol_and_rtol() -> None:
    # Value 0.5 x, tape slope 0.25: numerical 0.5, analytic 0.25, error 0.25 (all exact).
    f = shifted(0.25, 0.25)
    assert numerical_grad(f, 1.0, eps=EPS) == 0.5
    assert grad(f)(1.0) == 0.25
    # 0.125 + 0.25 * 0.5 == 0.25: exactly on the boundary passes.
    report = check_gradients(f, 1.0, eps=EPS, atol=0.125, rtol=0.25)
    assert (report.max_abs_error, report.max_rel_error) == (0.25, 0.5)
    # Any less tolerance fails.
    with pytest.raises(GradientCheckError, match=r"at the argument: analytic 0\.25 vs numerical 0\.5 "):
        check_gradients(f, 1.0, eps=EPS, atol=0.125 - 2.0**-40, rtol=0.25)
    with pytest.raises(GradientCheckError):
        check_gradients(f, 1.0, eps=EPS, atol=0.125, rtol=0.25 - 2.0**-40)


def test_pass_rule_boundary_with_atol_alone() -> None:
    f = shifted(0.25, 0.25)
    assert check_gradients(f, 1.0, eps=EPS, atol=0.25, rtol=0.0).max_abs_error == 0.25
    with pytest.raises(GradientCheckError):
        check_gradients(f, 1.0, eps=EPS, atol=math.nextafter(0.25, 0.0), rtol=0.0)


def test_pass_rule_scales_rtol_by_the_numerical_gradient() -> None:
    # numerical 0.5, analytic 0.25: rtol 0.5 allows 0.5 * |0.5| = 0.25, exactly the error.
    assert check_gradients(shifted(0.25, 0.25), 1.0, eps=EPS, atol=0.0, rtol=0.5).worst_path == ""
    with pytest.raises(GradientCheckError):
        check_gradients(shifted(0.25, 0.25), 1.0, eps=EPS, atol=0.0, rtol=math.nextafter(0.5, 0.0))
    # numerical 0.25, analytic 0.5: the same rtol allows only 0.125 < 0.25; scaling by
    # |analytic| instead would have let this pass.
    f = shifted(0.5, -0.25)
    assert (numerical_grad(f, 1.0, eps=EPS), grad(f)(1.0)) == (0.25, 0.5)
    with pytest.raises(GradientCheckError, match=r"analytic 0\.5 vs numerical 0\.25 "):
        check_gradients(f, 1.0, eps=EPS, atol=0.0, rtol=0.5)
    assert check_gradients(f, 1.0, eps=EPS, atol=0.0, rtol=1.0).max_rel_error == 1.0


def test_check_gradients_rejects_a_non_scalar_result() -> None:
    with pytest.raises(TypeError, match="must return a scalar"):
        check_gradients(cast("Callable[[Scalar], Scalar]", lambda v: (v, v)), 1.0)


def test_a_nan_numerical_gradient_is_reported_as_a_nan_error() -> None:
    # log at 1e-7 with eps 1e-6 evaluates log of a negative number: numerical slope nan.
    with pytest.raises(GradientCheckError) as caught:
        check_gradients(tape.log, 1e-7)
    message = str(caught.value)
    assert "numerical nan" in message
    assert "max abs error nan" in message


def test_with_arrays_the_numerical_side_gets_the_arrays_grad_gets() -> None:
    """Under ``arrays=True`` the function gets Arrays, so operators, ``@`` and N-d indexing work
    on its array arguments: the central differences call it with the same kind of argument."""
    w, x = [[0.5, -1.0], [0.25, 2.0]], [[1.0, 2.0, 3.0]]
    report = check_gradients(
        lambda w, x: A.sum(A.tanh(x.T * w[0, :] @ w + w[:, 1]) ** 2.0), w, x, argnums=(0, 1), arrays=True
    )
    assert report.max_abs_error < 1e-6 and len(report.analytic) == 7
    with pytest.raises(
        GradientCheckError, match=r"gradient mismatch at 1\.1: analytic 2\.0 vs numerical 4\.0"
    ):
        check_gradients(lambda w: A.sum(w * stop_gradient(w)), w, arrays=True)
    plain = check_gradients(lambda w: A.sum(A.tanh(A.asarray(w))), w, arrays=True)  # lists work too
    assert plain.max_abs_error < 1e-6
