"""Elementwise functions on N-d Arrays: values, gradients, both modes, jit, and the shapes where bugs hide."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, cast

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tape
from tape import Array, Tape, Value
from tape import arrays as A
from tape.array import asarray, flatten, nest, shape_of
from tape.ops.elementwise import gelu, softplus
from tape.testing import assert_gradients_match, assert_jvp_matches_vjp, positive_scalars, scalars
from tests.tape.test_jit import assert_same

Shape = tuple[int, ...]
SHAPES: tuple[Shape, ...] = ((), (3,), (1,), (2, 3), (3, 1), (1, 2, 3), (2, 1, 2), (1, 2, 1, 2))


# --- a weighted total of an output, the scalar the tests differentiate ---------------------------


def _total_forward(y: Any, w: Any) -> float:
    return math.fsum(a * b for a, b in zip(flatten(y), flatten(w), strict=True))


def _total_vjp(g: float, value: float, y: Any, w: Any) -> tuple[object, object]:
    return [g * b for b in flatten(w)], None


def _total_jvp(value: float, args: tuple[Any, ...], tangents: tuple[Any, ...]) -> float:
    (_, w), (dy, _) = args, tangents
    return _total_forward(dy, w)


TOTAL = tape.define("test_nd_weighted_total", _total_forward, vjp=_total_vjp, jvp=_total_jvp)


def total(y: object, w: object) -> Any:
    """``sum(y * w)``: one op on an Array, scalar ops on Values (the scalar path)."""
    if isinstance(y, Array):
        return TOTAL(y, w)
    if isinstance(y, Value):
        return y * cast(float, w)
    leaves = flatten(y)
    return tape.vsum([a * b for a, b in zip(leaves, flatten(w), strict=True)])


# --- strategies ---------------------------------------------------------------------------------


def nested(shape: Shape, elements: st.SearchStrategy[float]) -> st.SearchStrategy[Any]:
    """A float (shape ``()``) or nested lists of floats of ``shape``."""
    n = math.prod(shape)
    return st.lists(elements, min_size=n, max_size=n).map(
        lambda flat: flat[0] if not shape else _lists(flat, shape)
    )


def _lists(flat: Sequence[float], shape: Shape) -> Any:
    if len(shape) == 1:
        return list(flat)
    step = math.prod(shape[1:])
    return [_lists(flat[i * step : (i + 1) * step], shape[1:]) for i in range(shape[0])]


def weights(shape: Shape) -> Any:
    """Fixed, distinct weights of ``shape`` for the total."""
    flat = [0.5 + 0.25 * k * (-1) ** k for k in range(math.prod(shape))]
    return nest(flat, shape)


def _leaky(x: Any) -> Any:
    return A.leaky_relu(x, 0.2)


def _np_gelu(x: Any) -> Any:
    return np.vectorize(lambda v: v * 0.5 * (1.0 + math.erf(v / math.sqrt(2.0))))(x)


def _np_softplus(x: Any) -> Any:
    return np.where(x > 20.0, x, np.log1p(np.exp(np.minimum(x, 20.0))))


Case = tuple[Callable[[Any], Any], Callable[[Any], Any], st.SearchStrategy[float]]
CASES: dict[str, Case] = {
    "exp": (A.exp, np.exp, scalars()),
    "log": (A.log, np.log, positive_scalars()),
    "sqrt": (A.sqrt, np.sqrt, positive_scalars()),
    "tanh": (A.tanh, np.tanh, scalars()),
    "sigmoid": (A.sigmoid, lambda x: 1.0 / (1.0 + np.exp(-x)), scalars(-8.0, 8.0)),
    "relu": (A.relu, lambda x: np.maximum(x, 0.0), scalars()),
    "leaky_relu": (_leaky, lambda x: np.where(x > 0.0, x, 0.2 * x), scalars()),
    "gelu": (A.gelu, _np_gelu, scalars()),
    "softplus": (A.softplus, _np_softplus, scalars(-4.0, 24.0, kinks=(20.0,), margin=1e-2)),
    "abs": (A.abs, np.abs, scalars()),
}
NAMES = sorted(CASES)


def _case(name: str) -> st.SearchStrategy[tuple[Shape, Any]]:
    elements = CASES[name][2]
    return st.sampled_from(SHAPES).flatmap(lambda shape: st.tuples(st.just(shape), nested(shape, elements)))


# --- values -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_values_match_numpy_on_every_shape(name: str) -> None:
    fun, reference, _ = CASES[name]

    @given(_case(name))
    def check(drawn: tuple[Shape, Any]) -> None:
        shape, x = drawn
        want = np.asarray(reference(np.asarray(x, dtype=float)), dtype=float)
        plain = fun(x)  # floats in: plain nested tuples (a float for 0-d) out
        assert shape_of(plain) == shape
        assert np.allclose(np.asarray(plain, dtype=float), want, rtol=1e-13, atol=1e-300)
        if shape:
            assert isinstance(plain, tuple)
        untracked = fun(asarray(x))
        assert isinstance(untracked, Array) and untracked.tape is None
        assert untracked.shape == shape and untracked.data == plain
        with Tape() as t:
            X = t.watch_array(x) if shape else asarray(x)
            before = len(t)
            Y = fun(X)
        assert isinstance(Y, Array) and Y.shape == shape and Y.data == plain
        if shape:
            assert [node.op.name for node in t.nodes[before:]] == [f"array_{name}"]

    check()


def test_reference_values() -> None:
    # x * Phi(x) from tabulated values of the normal CDF; softplus(1) = log(1 + e)
    assert A.gelu([1.0, -1.0, 0.0]) == pytest.approx(
        (0.8413447460685429, -0.15865525393145707, 0.0), rel=1e-15
    )
    assert gelu(3.0) == pytest.approx(3.0 * 0.9986501019683699, rel=1e-15)
    assert A.softplus([1.0, 0.0]) == pytest.approx((1.3132616875182228, math.log(2.0)), rel=1e-15)
    assert A.softplus([20.0, 20.5, -800.0]) == (math.log1p(math.exp(20.0)), 20.5, 0.0)
    assert tape.grad(softplus)(30.0) == 1.0 and tape.grad(softplus)(0.0) == 0.5


def test_the_matrix_path_equals_the_general_path() -> None:
    x = [[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]]
    for name in NAMES:
        fun = CASES[name][0]
        if name in ("log", "sqrt"):
            continue
        matrix = fun(x)
        assert fun([x])[0] == matrix and fun(x[0]) == matrix[0], name
        assert fun(x[0][0]) == matrix[0][0], name


# --- gradients ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_gradients_match_central_differences(name: str) -> None:
    fun = CASES[name][0]

    @given(_case(name))
    def check(drawn: tuple[Shape, Any]) -> None:
        shape, x = drawn
        w = weights(shape)
        assert_gradients_match(lambda v: total(fun(v), w), x, arrays=True, atol=1e-5, rtol=1e-4)

    check()


@pytest.mark.parametrize("name", NAMES)
def test_array_path_equals_scalar_path_and_jvp_matches_vjp(name: str) -> None:
    fun = CASES[name][0]

    @given(_case(name), st.floats(-1.0, 1.0))
    def check(drawn: tuple[Shape, Any], scale: float) -> None:
        shape, x = drawn
        w = weights(shape)

        def loss(v: object) -> Any:
            return total(fun(v), w)

        value_a, grad_a = tape.value_and_grad(loss, arrays=True)(x)
        value_s, grad_s = tape.value_and_grad(loss)(x)
        assert math.isclose(value_a, value_s, rel_tol=1e-12, abs_tol=1e-12)
        assert np.allclose(np.asarray(grad_a, dtype=float), np.asarray(grad_s, dtype=float), rtol=1e-12)
        flat = [scale + 0.1 * k for k in range(math.prod(shape))]
        tangent = _lists(flat, shape) if shape else flat[0]
        assert_jvp_matches_vjp(loss, (x,), (tangent,), 1.0, arrays=True)

    check()


@pytest.mark.parametrize("name", NAMES)
def test_jit_is_bit_identical(name: str) -> None:
    fun = CASES[name][0]
    shape = (2, 1, 3) if name != "exp" else (2, 3)
    elements = (
        [0.5, -1.5, 2.0, 21.0, 0.75, -0.25] if name not in ("log", "sqrt") else [0.5, 1.5, 2.0, 3.0, 0.7, 4.0]
    )
    w = weights(shape)
    both = tape.value_and_grad(lambda v: total(fun(v), w), arrays=True)
    compiled = tape.jit(both)
    for shift in (0.0, 0.125):  # trace, then replay
        x = nest([e + shift for e in elements], shape)
        assert_same(compiled(x), both(x))


def test_gelu_and_softplus_have_second_derivatives() -> None:
    for f in (gelu, softplus):
        second = tape.grad(tape.grad(f))
        for x in (-1.5, 0.3, 2.0):
            eps = 1e-5
            first = tape.grad(f)
            numerical = (first(x + eps) - first(x - eps)) / (2 * eps)
            assert math.isclose(second(x), numerical, rel_tol=1e-6, abs_tol=1e-8)
    # gelu'' = phi(x) * (2 - x * x)
    assert math.isclose(tape.grad(tape.grad(gelu))(0.0), 2.0 / math.sqrt(2.0 * math.pi), rel_tol=1e-15)


def test_leaky_relu_slope_is_a_parameter_of_the_array_op() -> None:
    x = [[-2.0, 3.0], [4.0, -1.0]]
    assert A.leaky_relu(x) == ((-0.02, 3.0), (4.0, -0.01))
    assert A.leaky_relu(x, 0.5) == ((-1.0, 3.0), (4.0, -0.5))
    g = tape.grad(lambda v: total(A.leaky_relu(v, 0.5), ((1.0, 1.0), (1.0, 1.0))), arrays=True)(x)
    assert g == [[0.5, 1.0], [1.0, 0.5]]
    with pytest.raises(TypeError, match="leaky_relu: slope must be a float"):
        A.leaky_relu(x, "0.1")  # type: ignore[call-overload]


def test_scalar_functions_dispatch_arrays_and_zero_d() -> None:
    X = asarray([[0.0, 1.0]])
    Y = tape.exp(X)
    assert isinstance(Y, Array) and Y.data == ((1.0, math.e),)
    assert isinstance(tape.relu(asarray([-1.0, 2.0])), Array)
    zero_d = A.tanh(asarray(0.5))
    assert isinstance(zero_d, Array) and zero_d.shape == () and float(zero_d) == math.tanh(0.5)
    with Tape() as t:
        v = t.watch(0.5)
        out = A.gelu(v)
    assert isinstance(out, Value) and t.gradient(out, v) == tape.grad(gelu)(0.5)


def test_nested_values_take_the_scalar_ops() -> None:
    with Tape() as t:
        a, b = t.watch(-1.0), t.watch(2.0)
        out = A.softplus([[a], [b]])
    assert isinstance(out[0][0], Value) and isinstance(out[1][0], Value)
    assert t.gradient(out[1][0], b) == tape.sigmoid(2.0)


def test_bad_input_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="exp: x is ragged"):
        A.exp([[1.0], [2.0, 3.0]])
    with pytest.raises(TypeError, match="gelu: x"):
        A.gelu(["a"])
    with pytest.raises(TypeError, match="relu"):
        A.relu("abc")


# --- broadcasting arithmetic ---------------------------------------------------------------------

PAIRS: tuple[tuple[Shape, Shape], ...] = (
    ((2, 3), (2, 3)),
    ((2, 3), (3,)),
    ((3,), (2, 3)),
    ((2, 3), (2, 1)),
    ((1, 3), (2, 1)),
    ((2, 1, 2), (3, 1)),
    ((1, 2, 1, 2), (2, 1, 2)),
    ((), (2, 3)),
    ((2, 2), ()),
    ((1,), (3,)),
    ((), ()),
)

Binary = tuple[
    Callable[[Any, Any], Any], Callable[[Any, Any], Any], st.SearchStrategy[float], st.SearchStrategy[float]
]
BINARY: dict[str, Binary] = {
    "add": (A.add, np.add, scalars(), scalars()),
    "subtract": (A.subtract, np.subtract, scalars(), scalars()),
    "multiply": (A.multiply, np.multiply, scalars(), scalars()),
    "divide": (A.divide, np.divide, scalars(), scalars(kinks=(0.0,), margin=0.3)),
    "power": (A.power, np.power, positive_scalars(0.2, 3.0), scalars(-2.0, 2.0)),
}
BINARY_NAMES = sorted(BINARY)


def _operands(name: str) -> st.SearchStrategy[tuple[Shape, Shape, Any, Any]]:
    _, _, left, right = BINARY[name]
    return st.sampled_from(PAIRS).flatmap(
        lambda pair: st.tuples(
            st.just(pair[0]), st.just(pair[1]), nested(pair[0], left), nested(pair[1], right)
        )
    )


def _out_shape(a: Shape, b: Shape) -> Shape:
    return tuple(np.broadcast_shapes(a, b))


@pytest.mark.parametrize("name", BINARY_NAMES)
def test_binary_values_match_numpy(name: str) -> None:
    fun, reference, _, _ = BINARY[name]

    @given(_operands(name))
    def check(drawn: tuple[Shape, Shape, Any, Any]) -> None:
        _, _, a, b = drawn
        want = reference(np.asarray(a, dtype=float), np.asarray(b, dtype=float))
        plain = fun(a, b)
        assert shape_of(plain) == want.shape
        assert np.allclose(np.asarray(plain, dtype=float), want, rtol=1e-13, atol=0.0)
        if want.shape:
            untracked = fun(asarray(a), b)
            assert isinstance(untracked, Array) and untracked.tape is None and untracked.data == plain

    check()


@pytest.mark.parametrize("name", BINARY_NAMES)
def test_binary_gradients_match_central_differences(name: str) -> None:
    fun = BINARY[name][0]

    @given(_operands(name))
    def check(drawn: tuple[Shape, Shape, Any, Any]) -> None:
        sa, sb, a, b = drawn
        w = weights(_out_shape(sa, sb))
        assert_gradients_match(lambda x, y: total(fun(x, y), w), a, b, argnums=(0, 1), arrays=True)

    check()


@pytest.mark.parametrize("name", BINARY_NAMES)
def test_binary_jvp_matches_vjp(name: str) -> None:
    fun = BINARY[name][0]

    @given(_operands(name), st.floats(-1.0, 1.0))
    def check(drawn: tuple[Shape, Shape, Any, Any], scale: float) -> None:
        sa, sb, a, b = drawn
        w = weights(_out_shape(sa, sb))

        def loss(x: object, y: object) -> Any:
            return total(fun(x, y), w)

        ta = [scale - 0.2 * k for k in range(math.prod(sa))]
        tb = [0.3 * k - scale for k in range(math.prod(sb))]
        tangents = (_lists(ta, sa) if sa else ta[0], _lists(tb, sb) if sb else tb[0])
        _, forward = tape.jvp(loss, (a, b), tangents, arrays=True)
        ga, gb = tape.grad(loss, argnums=(0, 1), arrays=True)(a, b)
        backward = float(np.vdot(np.asarray(ga, dtype=float), np.asarray(tangents[0], dtype=float)))
        backward += float(np.vdot(np.asarray(gb, dtype=float), np.asarray(tangents[1], dtype=float)))
        assert math.isclose(forward, backward, rel_tol=1e-9, abs_tol=1e-12)

    check()


@pytest.mark.parametrize("name", BINARY_NAMES)
@pytest.mark.parametrize("pair", [((2, 3), (3,)), ((2, 1, 2), (3, 1)), ((), (2, 2))], ids=str)
def test_binary_jit_is_bit_identical(name: str, pair: tuple[Shape, Shape]) -> None:
    fun = BINARY[name][0]
    sa, sb = pair
    w = weights(_out_shape(sa, sb))
    both = tape.value_and_grad(lambda x, y: total(fun(x, y), w), argnums=(0, 1), arrays=True)
    compiled = tape.jit(both)
    for shift in (0.0, 0.25):  # trace, then replay
        fa = [0.5 + 0.3 * k + shift for k in range(math.prod(sa))]
        fb = [-1.5 + 0.7 * k - shift for k in range(math.prod(sb))]
        a = nest(fa, sa)
        b = nest(fb, sb)
        assert_same(compiled(a, b), both(a, b))


def test_operators_on_arrays_values_floats_and_sequences() -> None:
    with Tape() as t:
        X: Any = t.watch_array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
        v = t.watch(2.0)
        results = {
            "X + 1": X + 1,
            "1.5 + X": 1.5 + X,
            "v + X": v + X,
            "X - v": X - v,
            "v - X": v - X,
            "v * X": v * X,
            "v / X": v / X,
            "X / v": X / v,
            "v ** X": v**X,
            "X ** 2": X**2,
            "2.0 ** X": 2.0**X,
            "X * [[10.0], [20.0]]": X * [[10.0], [20.0]],
            "[1.0, 2.0, 3.0] - X": [1.0, 2.0, 3.0] - X,
            "(1.0, 2.0, 3.0) * X": (1.0, 2.0, 3.0) * X,
            "-X": -X,
            "abs(-X)": abs(-X),
            "+X": +X,
        }
        loss = A.mean(results["v * X"])
    x = np.asarray([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    want: dict[str, Any] = {
        "X + 1": x + 1,
        "1.5 + X": 1.5 + x,
        "v + X": 2.0 + x,
        "X - v": x - 2.0,
        "v - X": 2.0 - x,
        "v * X": 2.0 * x,
        "v / X": 2.0 / x,
        "X / v": x / 2.0,
        "v ** X": 2.0**x,
        "X ** 2": x**2,
        "2.0 ** X": 2.0**x,
        "X * [[10.0], [20.0]]": x * [[10.0], [20.0]],
        "[1.0, 2.0, 3.0] - X": [1.0, 2.0, 3.0] - x,
        "(1.0, 2.0, 3.0) * X": [1.0, 2.0, 3.0] * x,
        "-X": -x,
        "abs(-X)": x,
        "+X": x,
    }
    for key, got in results.items():
        assert isinstance(got, Array) and got.tape is t, key
        assert np.allclose(np.asarray(got.data), want[key], rtol=1e-15, atol=0.0), key
    g = t.gradient(loss, v)
    assert g == pytest.approx(3.5, rel=1e-15)  # a Value operand's cotangent is the sum over the result


def test_scalars_and_zero_d() -> None:
    zero_d: Any = asarray(2.0)
    assert zero_d + 1.0 == 3.0 and A.multiply(2.0, 3.0) == 6.0
    with Tape() as t:
        a = t.watch_array([[1.0], [2.0]])
        s = t.watch(3.0)
        out: Any = A.multiply(s, a)
        loss = A.mean(out)
    assert isinstance(out, Array) and out.shape == (2, 1)
    assert t.gradient(loss, s) == 1.5


def test_shapes_that_do_not_broadcast_name_the_op_and_both_shapes() -> None:
    X: Any = asarray([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    with pytest.raises(ValueError, match=r"add: shapes \(2, 3\) and \(2,\) do not broadcast"):
        A.add(X, [1.0, 2.0])
    with pytest.raises(ValueError, match=r"power: shapes \(4,\) and \(2, 3\) do not broadcast"):
        A.power([1.0, 2.0, 3.0, 4.0], X)
    with pytest.raises(ValueError, match=r"less: shapes \(2, 3\) and \(3, 1\)"):
        _ = X < [[1.0], [2.0], [3.0]]
    with pytest.raises(TypeError, match="unsupported operand"):
        _ = X + "a"
    with pytest.raises(TypeError, match="multiply: argument 1 must be an Array"):
        A.multiply(X, None)  # type: ignore[call-overload]  # what the types refuse, at run time too
    with pytest.raises(ValueError, match="ragged"):
        _ = X * [[1.0], [2.0, 3.0]]


def test_value_fast_paths_still_record_scalar_ops() -> None:
    with Tape() as t:
        a, b = t.watch(1.0), t.watch(2.0)
        before = len(t)
        out = (a + b) * a - b * 3.0
    assert isinstance(out, Value)
    assert [node.op.name for node in t.nodes[before:]] == ["add", "mul", "mul", "sub"]


# --- comparisons and where -------------------------------------------------------------------------

COMPARISONS: dict[str, tuple[Callable[[Any, Any], Any], Callable[[Any, Any], Any]]] = {
    "<": (A.less, np.less),
    "<=": (A.less_equal, np.less_equal),
    ">": (A.greater, np.greater),
    ">=": (A.greater_equal, np.greater_equal),
}


@pytest.mark.parametrize("symbol", sorted(COMPARISONS))
def test_comparisons_match_numpy_and_pass_no_gradient(symbol: str) -> None:
    fun, reference = COMPARISONS[symbol]
    a = [[0.5, -1.0, 2.0], [1.0, 1.0, -3.0]]
    b = [[1.0], [1.0]]
    want = reference(np.asarray(a), np.asarray(b)).astype(float)
    assert np.array_equal(np.asarray(fun(a, b)), want)
    operator_result: Any = eval(f"X {symbol} b", {"X": asarray(a), "b": b})
    assert isinstance(operator_result, Array) and np.array_equal(np.asarray(operator_result.data), want)
    with Tape() as t:
        X = t.watch_array(a)
        mask = fun(X, b)
        loss = A.mean(A.multiply(mask, X))
    assert t.gradient(loss, X) == tuple(tuple(m / 6.0 for m in row) for row in want.tolist())


def test_where_matches_numpy_and_routes_gradients() -> None:
    x = [[1.0, -2.0, 3.0], [-4.0, 5.0, -6.0]]
    y = [10.0, 20.0, 30.0]
    mask = [[True, False, True], [False, True, False]]
    want = np.where(np.asarray(mask), np.asarray(x), np.asarray(y))
    assert np.array_equal(np.asarray(A.where(mask, x, y)), want)
    assert A.where(True, 1.0, 2.0) == 1.0 and A.where([0.0, 2.0], 1.0, [5.0, 6.0]) == (5.0, 1.0)
    w = weights((2, 3))
    gx, gy = tape.grad(lambda a, b: total(A.where(mask, a, b), w), argnums=(0, 1), arrays=True)(x, y)
    flat_w = flatten(w)
    assert gx == [[flat_w[0], 0.0, flat_w[2]], [0.0, flat_w[4], 0.0]]
    assert gy == [flat_w[3], flat_w[1], flat_w[5]]  # y is picked at (1, 0), (0, 1) and (1, 2)
    assert_gradients_match(lambda a, b: total(A.where(mask, a, b), w), x, y, argnums=(0, 1), arrays=True)
    _, forward = tape.jvp(
        lambda a: total(A.where(mask, a, 0.0), w), (x,), ([[1.0] * 3, [1.0] * 3],), arrays=True
    )
    assert forward == pytest.approx(flat_w[0] + flat_w[2] + flat_w[4], rel=1e-15)
    with pytest.raises(ValueError, match="where: shapes"):
        A.where([True, False], x, y)


def test_a_traced_comparison_is_recomputed_by_jit() -> None:
    def loss(a: Any) -> Any:
        return total(A.where(a > 0.0, a * 2.0, -a), weights((2, 2)))

    both = tape.value_and_grad(loss, arrays=True)
    compiled = tape.jit(both)
    for x in ([[1.0, -2.0], [3.0, -4.0]], [[-1.0, 2.0], [-3.0, 4.0]], [[0.5, 0.5], [-0.5, 0.5]]):
        assert_same(compiled(x), both(x))
