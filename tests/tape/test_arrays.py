"""Array nodes: every array op against central differences and against the scalar path."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, cast

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pyrsistent import PMap, pmap, pvector

import tape
from tape import Array, NonFiniteError, Tape, TapeError, Value
from tape import arrays as A
from tape.testing import assert_gradients_match, parameter_trees, scalars
from tape.tree import tree_flatten, tree_flatten_floats, tree_leaves, tree_structure

X = ((0.5, -1.0, 2.0), (1.5, 0.25, -0.75))  # a batch of two examples with three features
TARGETS = (1, 0)
Fun = Callable[[PMap[str, object]], object]


def _params() -> st.SearchStrategy[PMap[str, object]]:
    return parameter_trees({"w": (2, 3), "b": (2,)}, scalars(-2.0, 2.0, margin=1e-2))


def _layer(p: PMap[str, object]) -> object:
    return A.linear(p["w"], p["b"], X)  # type: ignore[arg-type]


def _negated(x: object) -> object:
    """``-x`` of an Array (the array op), or of rows of Values on the scalar path."""
    if isinstance(x, Array):
        return -x
    return tuple(tuple(-v for v in row) for row in cast("tuple[tuple[Value, ...], ...]", x))


# One entry per array op in the registry: a loss exercising it (a scalar of params).
ARRAY_CASES: dict[str, Fun] = {
    "linear": lambda p: A.mean(_layer(p)),  # type: ignore[call-overload]
    "array_relu": lambda p: A.mean(A.relu(_layer(p))),  # type: ignore[call-overload]
    "relu_linear": lambda p: A.mean(A.relu_linear(((0.5, -1.0), (2.0, 0.3)), p["b"], _layer(p))),  # type: ignore[arg-type]
    "array_tanh": lambda p: A.mean(A.tanh(_layer(p))),  # type: ignore[call-overload]
    "array_sigmoid": lambda p: A.mean(A.sigmoid(_layer(p))),  # type: ignore[call-overload]
    "array_leaky_relu": lambda p: A.mean(A.leaky_relu(_layer(p))),  # type: ignore[call-overload]
    "array_scale": lambda p: A.mean(A.scale(_layer(p), ((2.0, 0.0), (0.5, -1.0)))),  # type: ignore[arg-type]
    "array_cross_entropy": lambda p: A.cross_entropy_with_logits(_layer(p), TARGETS),  # type: ignore[arg-type]
    "array_mse": lambda p: A.mse(_layer(p), ((0.5, -0.5), (1.0, 0.0))),  # type: ignore[arg-type]
    "array_mean": lambda p: A.mean(p["b"]) * A.mean(p["w"]),  # type: ignore[call-overload]
    "array_row": lambda p: p["w"][1][0] * 3.0 + p["w"][0][2],  # type: ignore[index]
    "array_item": lambda p: p["b"][0] * p["b"][1],  # type: ignore[index]
    "array_stack": lambda p: A.mean(A.stack([p["b"][0] * 2.0, p["b"][1]])),  # type: ignore[index]
    "array_exp": lambda p: A.mean(A.exp(_layer(p))),  # type: ignore[call-overload]
    "array_log": lambda p: A.mean(A.log(A.sigmoid(_layer(p)))),  # type: ignore[call-overload]
    "array_sqrt": lambda p: A.mean(A.sqrt(A.sigmoid(_layer(p)))),  # type: ignore[call-overload]
    "array_gelu": lambda p: A.mean(A.gelu(_layer(p))),  # type: ignore[call-overload]
    "array_softplus": lambda p: A.mean(A.softplus(_layer(p))),  # type: ignore[call-overload]
    "array_abs": lambda p: A.mean(A.abs(_layer(p))),  # type: ignore[call-overload]
    "array_neg": lambda p: A.mean(A.tanh(_negated(_layer(p)))),  # type: ignore[call-overload]
}


@pytest.mark.parametrize("name", sorted(ARRAY_CASES))
def test_array_op_gradient_matches_central_differences(name: str) -> None:
    fun = ARRAY_CASES[name]

    @given(_params())
    def check(params: PMap[str, object]) -> None:
        assert_gradients_match(fun, params, arrays=True, atol=1e-5, rtol=1e-4)

    check()


@pytest.mark.parametrize("name", sorted(ARRAY_CASES))
def test_array_path_equals_scalar_path(name: str) -> None:
    fun = ARRAY_CASES[name]

    @given(_params())
    def check(params: PMap[str, object]) -> None:
        value_a, grads_a = tape.value_and_grad(fun, arrays=True)(params)  # type: ignore[arg-type]
        value_s, grads_s = tape.value_and_grad(fun)(params)  # type: ignore[arg-type]
        assert math.isclose(value_a, value_s, rel_tol=1e-12, abs_tol=1e-12)
        assert type(grads_a) is type(params)
        for a, s in zip(tree_leaves(grads_a), tree_leaves(grads_s), strict=True):
            assert math.isclose(a, s, rel_tol=1e-9, abs_tol=1e-12)

    check()


def test_array_ops_record_one_node_each() -> None:
    with Tape() as t:
        W = t.watch_array([[0.1, 0.2, 0.3], [0.4, -0.5, 0.6]])
        b = t.watch_array([0.0, 0.1])
        before = len(t)
        loss = A.cross_entropy_with_logits(A.relu(A.linear(W, b, X)), TARGETS)
    assert len(t) == before + 3
    assert [node.op.name for node in t.nodes[before:]] == ["linear", "array_relu", "array_cross_entropy"]
    grads: object = t.gradient(loss, [W, b])
    assert isinstance(grads, list)
    gw, gb = grads
    assert isinstance(gw, tuple) and len(gw) == 2 and len(gw[0]) == 3
    assert isinstance(gb, tuple) and len(gb) == 2


def test_floats_in_floats_out() -> None:
    W = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]
    out = A.relu(A.linear(W, [0.0, 0.5], X))
    assert out == ((0.5, 0.0), (1.5, 0.75))
    assert type(A.mean(out)) is float
    assert A.cross_entropy_with_logits(((0.0, 0.0),), (1,)) == math.log(2.0)
    assert A.mse(((1.0,), (3.0,)), ((0.0,), (1.0,))) == 2.5


def test_cross_entropy_is_max_shifted() -> None:
    logits = ((1000.0, 0.0, -1000.0),)
    assert A.cross_entropy_with_logits(logits, (0,)) == 0.0
    with Tape() as t:
        Z = t.watch_array(logits)
        loss = A.cross_entropy_with_logits(Z, (2,))
    assert float(loss) == 2000.0
    (row,) = t.gradient(loss, Z)
    assert row == (1.0, 0.0, -1.0)


def test_grad_with_arrays_keeps_container_types() -> None:
    params = pmap({"w": pvector([pvector([0.1, 0.2, 0.3]), pvector([0.4, -0.5, 0.6])]), "b": [0.0, 0.1]})
    grads = tape.grad(lambda p: A.mean(A.tanh(A.linear(p["w"], p["b"], X))), arrays=True)(params)
    assert type(grads) is type(params)
    assert type(grads["w"]) is type(params["w"]) and type(grads["w"][0]) is type(params["w"][0])
    assert type(grads["b"]) is list


def test_array_indexing_and_errors() -> None:
    with Tape() as t:
        M = t.watch_array([[1.0, 2.0], [3.0, 4.0]])
        v = t.watch_array([5.0, 6.0])
        row = M[1]
        item = v[-1]
        assert isinstance(row, Array) and row.shape == (2,)
        assert isinstance(item, Value) and item.data == 6.0
        assert M.shape == (2, 2) and len(M) == 2
        total = row[0] * item
        with pytest.raises(IndexError, match="out of range"):
            v[2]
        with pytest.raises(ValueError, match="columns"):
            A.linear(M, None, [[1.0, 2.0, 3.0]])
        with pytest.raises(ValueError, match="row 1: class target 5 is out of range"):
            A.cross_entropy_with_logits(M, (0, 5))
        with pytest.raises(TypeError, match="must be an int"):
            A.cross_entropy_with_logits(M, (0, 1.0))  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="ragged"):
            t.watch_array([[1.0], [2.0, 3.0]])
    assert t.gradient(total, M) == ((0.0, 0.0), (6.0, 0.0))
    assert t.gradient(total, v) == (0.0, 3.0)
    with Tape() as other:
        N = other.watch_array([[1.0, 2.0]])
        with pytest.raises(TapeError, match="different tapes"):
            A.linear(N, None, M)


def test_check_finite_covers_arrays() -> None:
    with Tape(check_finite=True) as t:
        M = t.watch_array([[1e308, 1e308]])
        with pytest.raises(NonFiniteError, match=r"'linear'.*non-finite value in an array"):
            A.linear([[10.0, 10.0]], None, M)


def test_nested_tapes_fall_back_to_scalars() -> None:
    # Array ops are first-order; inside nested tapes the same code runs on Values.
    def f(x: float) -> tape.Scalar:
        return A.mean(A.tanh([[x, 2.0 * x]]))

    def second(x: float) -> float:
        return (1.0 - math.tanh(x) ** 2) * (-2.0 * math.tanh(x)) * 0.5 + (
            4.0 * (1.0 - math.tanh(2.0 * x) ** 2) * (-2.0 * math.tanh(2.0 * x)) * 0.5
        )

    d2 = tape.grad(tape.grad(f))(0.3)
    assert math.isclose(d2, second(0.3), rel_tol=1e-12)


def test_gradient_with_respect_to_a_relu_output_that_feeds_linear() -> None:
    """Every entry of the relu's output gets its gradient, zeros of the relu included."""
    with Tape() as t:
        W = t.watch_array([[1.0, -1.0], [-2.0, 0.5]])
        X = t.watch_array([[1.0, 2.0]])
        H = A.relu(A.linear(W, None, X))  # [[0.0, 0.0]]: the relu is off everywhere
        loss = A.mean(A.linear([[1.0, 1.0], [1.0, 0.0]], None, H))
    assert isinstance(H, Array) and H.data == ((0.0, 0.0),)
    assert t.gradient(loss, H) == ((1.0, 0.5),)
    assert t.gradient(loss, W) == ((0.0, 0.0), (0.0, 0.0))


def test_stop_gradient_stops_an_array() -> None:
    X = [[1.0, 2.0], [3.0, -1.0]]

    def loss(params: dict[str, list[list[float]]]) -> tape.Scalar:
        return A.mean(A.linear(tape.stop_gradient(params["w"]), None, X)) + A.mean(
            A.linear(params["v"], None, X)
        )

    grads = tape.grad(loss, arrays=True)({"w": [[1.0, 1.0]], "v": [[1.0, 1.0]]})
    assert grads["w"] == [[0.0, 0.0]]
    assert grads["v"] == [[2.0, 0.5]]


@given(parameter_trees({"w": (3, 2), "b": (3,), "z": (4, 2)}, scalars(-2.0, 2.0, margin=1e-2)))
def test_relu_linear_equals_linear_of_relu_bit_for_bit(params: PMap[str, object]) -> None:
    def fused(p: PMap[str, object]) -> tape.Scalar:
        return A.mean(A.relu_linear(p["w"], p["b"], p["z"]))  # type: ignore[arg-type]

    def unfused(p: PMap[str, object]) -> tape.Scalar:
        return A.mean(A.linear(p["w"], p["b"], A.relu(p["z"])))  # type: ignore[arg-type, call-overload]

    assert tape.value_and_grad(fused, arrays=True)(params) == tape.value_and_grad(unfused, arrays=True)(
        params
    )
    w, b, z = (cast("list[list[float]]", params[k]) for k in ("w", "b", "z"))
    assert A.relu_linear(w, cast("list[float]", b), z) == A.linear(w, cast("list[float]", b), A.relu(z))


@pytest.mark.parametrize(
    ("W", "b", "message"),
    [
        ([[1.0]], None, "relu_linear: W has 1 columns but Z rows have 2 values"),
        ([[]], None, "relu_linear: W has no columns"),
        ([[1.0, 2.0]], [1.0, 2.0], "relu_linear: W has 1 rows but b has 2 values"),
        ([1.0, 2.0], None, "relu_linear takes a matrix W, a vector b .or None. and a matrix Z"),
    ],
)
def test_relu_linear_errors_name_it_and_its_z(W: Any, b: Any, message: str) -> None:
    """``relu_linear`` shares ``linear``'s checks; its errors name it (they said ``linear`` and X)."""
    with tape.Tape() as t:
        Z = t.watch_array([[1.0, -2.0]])
        with pytest.raises(ValueError, match=message):
            A.relu_linear(W, b, Z)


_rows = st.lists(st.floats(-4.0, 4.0), min_size=1, max_size=3)
_containers: st.SearchStrategy[Callable[[list[Any]], object]] = st.sampled_from([list, tuple, pvector])


@st.composite
def _float_params(draw: st.DrawFn) -> tuple[object, list[int]]:
    """A map of float arrays and scalars in assorted containers, and the keys a loss uses."""
    names = draw(st.lists(st.sampled_from("abcde"), min_size=1, max_size=4, unique=True))
    tree: dict[str, object] = {}
    for name in names:
        kind = draw(st.integers(0, 2))
        outer, inner = draw(_containers), draw(_containers)
        if kind == 0:
            tree[name] = draw(st.floats(-4.0, 4.0))
        elif kind == 1:
            tree[name] = outer(draw(_rows))
        else:
            width = draw(st.integers(1, 3))
            rows = draw(
                st.lists(
                    st.lists(st.floats(-4.0, 4.0), min_size=width, max_size=width), min_size=1, max_size=3
                )
            )
            tree[name] = outer([inner(row) for row in rows])
    used = draw(st.lists(st.integers(0, len(names) - 1), unique=True))
    return (pmap(tree) if draw(st.booleans()) else tree), used


@given(_float_params(), st.floats(0.25, 4.0))
def test_grad_with_arrays_of_float_params_has_their_containers_and_exact_values(
    drawn: tuple[object, list[int]], c: float
) -> None:
    """``sum(c * x * x)`` over some leaves: the gradient is ``2 * (c * x)`` there and 0.0 elsewhere,
    in the params' own containers, and flattens to its floats."""
    params, used = drawn
    names = sorted(cast("dict[str, object]", params))
    picked = {names[k] for k in used}

    def loss(p: object) -> object:
        total: object = 0.0
        for name in picked:
            x = cast("dict[str, object]", p)[name]
            part = x * x if isinstance(x, Value) else A.sum(A.multiply(cast(Array, x), cast(Array, x)))
            total = total + c * part  # type: ignore[operator]
        return total

    grads = tape.grad(loss, arrays=True)(params)  # type: ignore[arg-type]
    assert tree_structure(grads) == tree_structure(params)
    for name in names:
        want = [
            2.0 * (c * x) if name in picked else 0.0
            for x in tree_leaves(cast("dict[str, object]", params)[name])
        ]
        assert tree_leaves(cast("dict[str, object]", grads)[name]) == want
    assert tree_flatten_floats(grads) == tree_flatten(grads)
