"""tape.testing: the public hypothesis strategies and assert_gradients_match.

Used here the way a user would: drawn inside ``@given``, checked for the
properties their docstrings promise.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import cast

import pytest
from hypothesis import Phase, assume, given, settings
from hypothesis import strategies as st
from pyrsistent import PMap, PVector

import tape
from tape import GradientCheckError, GradientReport, stop_gradient
from tape.testing import (
    Shape,
    arrays,
    assert_gradients_match,
    parameter_trees,
    positive_scalars,
    scalars,
    vectors,
)
from tape.tree import named_leaves, tree_leaves
from tape.value import Scalar

shapes = st.lists(st.integers(0, 3), max_size=3).map(tuple)
names = st.text(alphabet="abcwxyz_", min_size=1, max_size=4)


def shape_of(array: object) -> Shape:
    """The shape of nested PVectors of floats (``()`` for a float), checking it is regular."""
    if isinstance(array, float):
        return ()
    assert isinstance(array, PVector), f"expected a float or a PVector, got {type(array).__name__}"
    inner = {shape_of(item) for item in array}
    if not inner:
        return (0,)  # an empty dimension hides the ones below it
    assert len(inner) == 1, f"ragged array: {inner}"
    return (len(array), *inner.pop())


def matches_shape(array: object, shape: Shape) -> bool:
    found = shape_of(array)
    if 0 in shape:  # an empty dimension hides the ones below it
        return found == shape[: shape.index(0) + 1]
    return found == shape


# --- scalars and positive_scalars -------------------------------------------------------------


@given(scalars())
def test_default_scalars_are_finite_in_range_and_away_from_zero(x: float) -> None:
    assert isinstance(x, float)
    assert math.isfinite(x)
    assert -3.0 <= x <= 3.0
    assert abs(x) > 1e-3


@given(st.data())
def test_scalars_respect_any_range_kinks_and_margin(data: st.DataObject) -> None:
    low = data.draw(st.floats(-10.0, 5.0), label="low")
    high = low + data.draw(st.floats(1.0, 10.0), label="width")
    kinks = data.draw(st.lists(st.floats(low, high), max_size=3), label="kinks")
    margin = data.draw(st.floats(1e-4, 0.1), label="margin")
    x = data.draw(scalars(low, high, kinks=kinks, margin=margin), label="x")
    assert low <= x <= high
    assert math.isfinite(x)
    assert all(abs(x - k) > margin for k in kinks)


@given(scalars(-1.0, 1.0, kinks=(-0.5, 0.0, 0.5), margin=0.2))
def test_scalars_keep_out_of_every_kink_neighbourhood(x: float) -> None:
    assert abs(x) > 0.2 and abs(x - 0.5) > 0.2 and abs(x + 0.5) > 0.2
    assert abs(x) > 0.7 or 0.2 < abs(x) < 0.3


@given(scalars(kinks=()))
def test_scalars_without_kinks_may_be_anywhere_in_range(x: float) -> None:
    assert -3.0 <= x <= 3.0


@given(positive_scalars())
def test_default_positive_scalars_lie_inside_the_log_domain(x: float) -> None:
    assert 0.1 <= x <= 5.0
    assert math.isfinite(tape.log(x))
    assert math.isfinite(tape.sqrt(x))


@given(st.data())
def test_positive_scalars_respect_their_range(data: st.DataObject) -> None:
    low = data.draw(st.floats(1e-3, 10.0))
    high = low + data.draw(st.floats(0.0, 10.0))
    x = data.draw(positive_scalars(low, high))
    assert 0.0 < low <= x <= high


# --- vectors, arrays and parameter_trees --------------------------------------------------------


@given(st.data(), st.integers(0, 6))
def test_vectors_have_the_requested_length_and_default_elements(data: st.DataObject, n: int) -> None:
    vector = data.draw(vectors(n))
    assert isinstance(vector, PVector)
    assert len(vector) == n
    assert all(isinstance(x, float) and -3.0 <= x <= 3.0 and abs(x) > 1e-3 for x in vector)


@given(vectors(4, positive_scalars(2.0, 3.0)))
def test_vectors_draw_from_the_given_elements(vector: PVector[float]) -> None:
    assert len(vector) == 4
    assert all(2.0 <= x <= 3.0 for x in vector)


@given(st.data(), shapes)
def test_arrays_have_the_requested_shape(data: st.DataObject, shape: Shape) -> None:
    array = data.draw(arrays(shape))
    assert matches_shape(array, shape)
    leaves = tree_leaves(array)
    assert len(leaves) == math.prod(shape)
    assert all(-3.0 <= x <= 3.0 and abs(x) > 1e-3 for x in leaves)


@given(arrays((2, 3)), arrays(()), arrays((0, 4)))
def test_arrays_of_shape_by_hand(matrix: object, scalar: object, empty: object) -> None:
    assert isinstance(matrix, PVector)
    assert [len(row) for row in cast("PVector[PVector[float]]", matrix)] == [3, 3]
    assert isinstance(scalar, float)
    assert isinstance(empty, PVector)
    assert len(empty) == 0


@given(arrays((2, 2), st.just(1.5)))
def test_arrays_draw_from_the_given_elements(array: object) -> None:
    assert tree_leaves(array) == [1.5] * 4


@given(st.data(), st.dictionaries(names, shapes, max_size=4))
def test_parameter_trees_match_the_requested_shapes(data: st.DataObject, requested: dict[str, Shape]) -> None:
    params = data.draw(parameter_trees(requested))
    assert isinstance(params, PMap)
    assert set(params) == set(requested)
    for name, shape in requested.items():
        assert matches_shape(params[name], shape), (name, shape_of(params[name]), shape)
    assert len(tree_leaves(params)) == sum(math.prod(shape) for shape in requested.values())


@given(parameter_trees({"w": (2, 3), "b": (2,), "scale": ()}, positive_scalars(0.5, 1.0)))
def test_parameter_trees_as_documented(params: PMap[str, object]) -> None:
    assert shape_of(params["w"]) == (2, 3)
    assert shape_of(params["b"]) == (2,)
    assert isinstance(params["scale"], float)
    assert [path for path, _ in named_leaves(params)] == [
        "b.0",
        "b.1",
        "scale",
        *(f"w.{r}.{c}" for r in range(2) for c in range(3)),
    ]
    assert all(0.5 <= x <= 1.0 for x in tree_leaves(params))


# --- assert_gradients_match, as a user writes it ----------------------------------------------------


def my_model(params: PMap[str, object], x: Scalar) -> Scalar:
    """A user's function with kinks at 0 (relu, abs): drawn points must avoid them."""
    w = cast("Sequence[Scalar]", params["w"])
    b = cast(Scalar, params["b"])
    magnitude = cast("Scalar", abs(w[1] * x))  # abs of a float-or-Value union is typed object
    hidden = tape.relu(w[0] * x + b) + magnitude + tape.tanh(w[2] * x)
    return hidden * hidden


@given(parameter_trees({"w": (3,), "b": ()}), scalars())
def test_assert_gradients_match_on_a_users_model(params: PMap[str, object], x: float) -> None:
    # relu's and abs's arguments must stay clear of 0 for central differences to hold.
    w, b = cast("Sequence[float]", params["w"]), cast(float, params["b"])
    assume(abs(w[0] * x + b) > 1e-3 and abs(w[1] * x) > 1e-3)
    report = assert_gradients_match(my_model, params, x)
    assert isinstance(report, GradientReport)
    assert [path for path, _ in report.analytic] == ["b", "w.0", "w.1", "w.2"]
    assert report.max_abs_error <= 1e-5 + 1e-4 * max(abs(n) for _, n in report.numerical)


@given(scalars(), scalars())
def test_strategies_keep_relu_and_abs_checks_off_their_kinks(x: float, y: float) -> None:
    report = assert_gradients_match(lambda a, b: tape.relu(a) * abs(b), x, y, argnums=(0, 1))
    assert [path for path, _ in report.analytic] == ["arg0", "arg1"]
    # The analytic slope of relu(a) * |b| in a is |b| or 0 on either side of the kink.
    assert dict(report.analytic)["arg0"] == (abs(y) if x > 0 else 0.0)


@given(positive_scalars(), vectors(3))
def test_assert_gradients_match_with_domain_restricted_inputs(x: float, v: PVector[float]) -> None:
    def f(s: Scalar, u: Sequence[Scalar]) -> Scalar:
        return tape.log(s) * tape.dot(u, u) + tape.sqrt(s)

    report = assert_gradients_match(f, x, v, argnums=(0, 1))
    assert [path for path, _ in report.analytic] == ["arg0", "arg1.0", "arg1.1", "arg1.2"]


def test_assert_gradients_match_fails_a_wrong_model_inside_given() -> None:
    def wrong_model(params: PMap[str, object], x: Scalar) -> Scalar:
        w = cast("Sequence[Scalar]", params["w"])
        return w[0] * stop_gradient(w[0]) * x + cast(Scalar, params["b"])  # d/dw0 is 2 w0 x, tape: w0 x

    @settings(max_examples=10, database=None, phases=[Phase.generate])
    @given(parameter_trees({"w": (1,), "b": ()}), scalars(0.5, 2.0))
    def test_user_model(params: PMap[str, object], x: float) -> None:
        assert_gradients_match(wrong_model, params, x)

    with pytest.raises(GradientCheckError, match=r"^gradient mismatch at w\.0: "):
        test_user_model()


def test_assert_gradients_match_forwards_its_tolerances() -> None:
    def off(x: Scalar) -> Scalar:
        return 5e-6 * stop_gradient(x)  # numerical slope 5e-6, analytic 0

    # Its default atol (1e-5) is looser than check_gradients' (1e-6).
    assert assert_gradients_match(off, 1.0).max_abs_error == pytest.approx(5e-6, rel=1e-3)
    with pytest.raises(GradientCheckError, match=r"at the argument: analytic 0\.0 "):
        assert_gradients_match(off, 1.0, atol=1e-6)
    assert assert_gradients_match(
        lambda v: v * stop_gradient(v), 1.0, atol=2.0
    ).max_abs_error == pytest.approx(1.0)
    # Analytic 1, numerical 2: rtol 0.6 allows 1.2, rtol 0.4 only 0.8.
    assert assert_gradients_match(lambda v: v * stop_gradient(v), 1.0, atol=0.0, rtol=0.6).worst_path == ""
    with pytest.raises(GradientCheckError):
        assert_gradients_match(lambda v: v * stop_gradient(v), 1.0, atol=0.0, rtol=0.4)
    with pytest.raises(ValueError, match="eps must be positive"):
        assert_gradients_match(off, 1.0, eps=0.0)
    with pytest.raises(GradientCheckError, match=r"^gradient mismatch at arg1: "):
        assert_gradients_match(lambda a, b: a + b * stop_gradient(b), 1.0, 2.0, argnums=(0, 1))


def test_custom_elements_raise_no_hypothesis_warning() -> None:
    # Regression: ``elements or scalars()`` made hypothesis warn that bool(strategy) is always True.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        vectors(2, st.just(1.0))
        arrays((2,), st.just(1.0))
        parameter_trees({"w": (2,)}, st.just(1.0))
