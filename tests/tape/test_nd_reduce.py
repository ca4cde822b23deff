"""N-d reductions, normalisers and matmul: against NumPy, central differences, forward mode and jit."""

from __future__ import annotations

import math
import struct
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

import tape
from tape import arrays as A
from tape.array import Array, asarray, flatten, nest, shape_of
from tape.testing import assert_gradients_match
from tape.tree import tree_flatten, tree_leaves, tree_unflatten

Shape = tuple[int, ...]
Axis = int | tuple[int, ...] | None


# --- a test-only contraction <x, u>: turns any array-valued op into a scalar loss ------------------


def _contract_forward(x: Any, u: Any) -> float:
    return math.fsum(a * b for a, b in zip(flatten(x), flatten(u), strict=True))


def _contract_vjp(g: float, value: float, x: Any, u: Any) -> tuple[Any, None]:
    return [g * b for b in flatten(u)], None


def _contract_jvp(value: float, args: tuple[Any, ...], tangents: tuple[Any, ...]) -> float:
    return _contract_forward(tangents[0], args[1])


CONTRACT = tape.define("test_nd_contract", _contract_forward, vjp=_contract_vjp, jvp=_contract_jvp)


def contract(x: object, u: object) -> Any:
    """``sum(x * u)`` with a constant ``u``, a scalar (a Value when ``x`` is tracked)."""
    return CONTRACT(x, u)


# --- strategies ----------------------------------------------------------------------------------


def _shapes(max_ndim: int = 3, min_ndim: int = 0) -> st.SearchStrategy[Shape]:
    return st.lists(st.integers(1, 3), min_size=min_ndim, max_size=max_ndim).map(tuple)


def _distinct(shape: Shape) -> st.SearchStrategy[Any]:
    """Nested lists (a float for ``()``) of well-separated distinct values: no ties, no kinks."""
    n = math.prod(shape)
    return (
        st.permutations(range(n))
        .map(lambda p: nest([0.37 * (k - n / 2) + 0.05 for k in p], shape) if shape else 0.42)
        .map(_lists)
    )


def _lists(data: Any) -> Any:
    return [_lists(d) for d in data] if isinstance(data, tuple) else data


def _axes(ndim: int) -> st.SearchStrategy[Axis]:
    options: list[st.SearchStrategy[Axis]] = [st.none()]
    if ndim:
        options.append(st.integers(-ndim, ndim - 1))
    options.append(
        st.lists(st.integers(0, max(ndim - 1, 0)), unique=True, max_size=ndim)
        .flatmap(lambda axes: st.tuples(*(st.sampled_from((a, a - ndim)) for a in axes)))
        .map(tuple)
    )
    return st.one_of(*options)


@st.composite
def reduction_cases(draw: st.DrawFn) -> tuple[Any, Axis, bool]:
    shape = draw(_shapes())
    return draw(_distinct(shape)), draw(_axes(len(shape))), draw(st.booleans())


def _cotangent(shape: Shape) -> Any:
    n = math.prod(shape)
    return nest([0.5 + 0.25 * ((3 * k) % 7) - 0.75 for k in range(n)], shape) if shape else 0.75


def _bits(x: object) -> object:
    if isinstance(x, float):
        return struct.pack("<d", x)
    if isinstance(x, (list, tuple)):
        return [_bits(v) for v in x]
    return x


def _numpy(x: Any) -> Any:
    return np.asarray(x, dtype=np.float64)


def _check_op(op: Callable[[Any], Any], x: Any, rtol: float = 1e-4, atol: float = 1e-5) -> None:
    """Gradients vs central differences, jvp vs vjp, and jit vs eager (bit for bit) of ``op`` at ``x``.

    ``x`` is one array (nested lists or a float) or a map of named arrays.
    """
    out_shape = shape_of(op(x))
    u = _cotangent(out_shape)

    def loss(p: Any) -> Any:
        return contract(op(p), u)

    assert_gradients_match(loss, x, arrays=True, rtol=rtol, atol=atol)
    leaves, treedef = tree_flatten(x)
    v = tree_unflatten(treedef, [0.5 - 0.3 * ((5 * k) % 4) for k in range(len(leaves))])
    _, slope = tape.jvp(loss, (x,), (v,), arrays=True)
    g = tape.grad(loss, arrays=True)(x)
    assert math.isclose(
        float(slope),
        math.fsum(a * b for a, b in zip(tree_leaves(g), tree_leaves(v), strict=True)),
        abs_tol=1e-9,
    )
    compiled = tape.jit(tape.value_and_grad(loss, arrays=True))
    eager = tape.value_and_grad(loss, arrays=True)(x)
    for _ in range(2):  # the trace, then the replay
        assert _bits(tree_leaves(compiled(x))) == _bits(tree_leaves(eager))


# --- sum, mean, max, min ---------------------------------------------------------------------------

REDUCTIONS: dict[str, tuple[Callable[..., Any], Callable[..., Any]]] = {
    "sum": (A.sum, np.sum),
    "mean": (A.mean, np.mean),
    "max": (A.max, np.max),
    "min": (A.min, np.min),
}


@pytest.mark.parametrize("name", sorted(REDUCTIONS))
@given(reduction_cases())
@example(([[1.0, 2.0, 3.0]], -1, False))
@example(([[[1.0], [2.0]]], (0, -1), True))
@example((0.42, None, False))
@example(([0.5, -0.25], 0, False))
def test_reduction_matches_numpy(name: str, case: tuple[Any, Axis, bool]) -> None:
    ours, theirs = REDUCTIONS[name]
    x, axis, keepdims = case
    got = ours(x, axis=axis, keepdims=keepdims)
    want = theirs(_numpy(x), axis=axis, keepdims=keepdims)
    assert shape_of(got) == want.shape
    assert isinstance(got, float) == (want.shape == ())
    np.testing.assert_allclose(_numpy(got), want, rtol=1e-12, atol=1e-12)
    untracked = ours(asarray(x), axis=axis, keepdims=keepdims)  # the same numbers, no recording
    assert _bits(untracked if isinstance(untracked, float) else untracked.data) == _bits(got)


@pytest.mark.parametrize("name", sorted(REDUCTIONS))
@given(reduction_cases())
@example(([[1.0, 2.0, 3.0], [0.5, 0.25, -1.0]], 1, True))
def test_reduction_gradients(name: str, case: tuple[Any, Axis, bool]) -> None:
    ours, _ = REDUCTIONS[name]
    x, axis, keepdims = case
    _check_op(lambda p: ours(p, axis=axis, keepdims=keepdims), x)


def test_a_full_reduction_is_a_scalar_value() -> None:
    x = [[[1.0, 2.0], [3.0, 4.0]]]
    with tape.Tape() as t:
        X = t.watch_array(x)
        results = [A.sum(X), A.mean(X), A.max(X), A.min(X), A.sum(X, axis=(0, 1, 2))]
    assert [r.data if isinstance(r, tape.Value) else None for r in results] == [10.0, 2.5, 4.0, 1.0, 10.0]
    kept = A.sum(asarray(x), keepdims=True)
    assert isinstance(kept, Array) and kept.shape == (1, 1, 1) and kept.tape is None
    assert A.mean(x) == 2.5 and isinstance(A.mean(x), float)


def test_max_and_min_send_the_gradient_to_the_first_extremum() -> None:
    x = [[1.0, 3.0, 3.0], [2.0, 2.0, 0.0]]
    assert tape.grad(lambda p: A.sum(A.max(p, axis=1)), arrays=True)(x) == [[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]
    assert tape.grad(lambda p: A.max(p), arrays=True)(x) == [[0.0, 1.0, 0.0], [0.0, 0.0, 0.0]]
    assert tape.grad(lambda p: A.sum(A.min(p, axis=0)), arrays=True)(x) == [[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]]
    _, slope = tape.jvp(lambda p: A.max(p), (x,), ([[0.0, 5.0, 7.0], [0.0, 0.0, 0.0]],), arrays=True)
    assert slope == 5.0


def test_the_mean_of_an_mlp_loss_keeps_its_fast_node() -> None:
    with tape.Tape() as t:
        X = t.watch_array([[1.0, 2.0], [3.0, 5.0]])
        loss = A.mean(X)
    assert isinstance(loss, tape.Value) and t.op_name(loss.position) == "array_mean"
    assert t.gradient(loss, X) == ((0.25, 0.25), (0.25, 0.25))


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: A.sum([[1.0, 2.0]], axis=2), ValueError, r"sum: axis 2 is out of range for shape \(1, 2\)"),
        (
            lambda: A.mean([[1.0, 2.0]], axis=-3),
            ValueError,
            r"mean: axis -3 is out of range for shape \(1, 2\)",
        ),
        (lambda: A.max([1.0], axis=(0, 1)), ValueError, r"max: axis 1 is out of range for shape \(1,\)"),
        (lambda: A.min([[1.0]], axis=(0, -2)), ValueError, r"min: axis \(0, -2\) repeats an axis"),
        (
            lambda: A.sum([1.0], axis=0.5),  # type: ignore[call-overload]
            TypeError,
            "sum: axis must be",
        ),
        (
            lambda: A.sum([1.0], keepdims=1),  # type: ignore[call-overload]
            TypeError,
            "sum: keepdims must be a bool",
        ),
        (lambda: A.mean([]), ValueError, "mean of an empty Array"),
        (lambda: A.max([[]], axis=1), ValueError, r"max: cannot reduce shape \(1, 0\)"),
        (lambda: A.sum([[1.0], [2.0, 3.0]]), ValueError, "ragged|rectangular|length"),
    ],
)
def test_reduction_errors_name_the_op_axis_and_shape(
    call: Callable[[], object], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        call()


# --- matmul and @ ----------------------------------------------------------------------------------


@st.composite
def matmul_shapes(draw: st.DrawFn) -> tuple[Shape, Shape]:
    """Operand shapes numpy.matmul accepts: 1-d, 2-d, and stacks whose batch axes broadcast."""
    n, k, m = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    batch = draw(_shapes(max_ndim=2))
    a_batch = tuple(draw(st.sampled_from((1, e))) for e in batch)[draw(st.integers(0, len(batch))) :]
    b_batch = tuple(draw(st.sampled_from((1, e))) for e in batch)[draw(st.integers(0, len(batch))) :]
    a_shape = (k,) if draw(st.booleans()) else (*a_batch, n, k)
    b_shape = (k,) if draw(st.booleans()) else (*b_batch, k, m)
    return a_shape, b_shape


@given(matmul_shapes())
@example(((3,), (3,)))
@example(((2, 1, 2, 3), (4, 3, 2)))
@example(((3,), (2, 3, 1)))
def test_matmul_matches_numpy_and_its_gradients_check(shapes: tuple[Shape, Shape]) -> None:
    a_shape, b_shape = shapes
    a = _lists(_cotangent(a_shape))
    b = _lists(nest([0.3 * k - 0.4 for k in range(math.prod(b_shape))], b_shape))
    got = A.matmul(a, b)
    want = np.matmul(_numpy(a), _numpy(b))
    assert shape_of(got) == want.shape
    assert isinstance(got, float) == (want.shape == ())
    np.testing.assert_allclose(_numpy(got), want, rtol=1e-12, atol=1e-12)
    assert _bits(flatten((asarray(a) @ b).data if want.shape else asarray(a) @ b)) == _bits(flatten(got))
    _check_op(lambda p: A.matmul(p, b), a)
    _check_op(lambda p: A.matmul(a, p), b)


def test_matmul_of_two_tracked_operands_and_the_operators() -> None:
    a = [[1.0, 2.0], [3.0, -1.0]]
    b = [[0.5, 1.0], [2.0, 0.25]]
    _check_op(lambda p: A.matmul(p, p), a)
    with tape.Tape() as t:
        P: Any = t.watch_array(a)  # Array's @ is installed by tape.ops.linear
        Q = t.watch_array(b)
        left = P @ Q
        right = b @ P  # __rmatmul__ of nested floats
        loss = A.sum(left) + A.sum(right)
    assert isinstance(left, Array) and left.data == tuple(map(tuple, np.matmul(a, b).tolist()))
    assert isinstance(right, Array) and right.data == tuple(map(tuple, np.matmul(b, a).tolist()))
    gP, gQ = t.gradient(loss, (P, Q))
    ones = np.ones((2, 2))
    np.testing.assert_allclose(gP, ones @ np.asarray(b).T + np.asarray(b).T @ ones)
    np.testing.assert_allclose(gQ, np.asarray(a).T @ ones)
    with tape.Tape() as t:
        v: Any = t.watch_array([1.0, 2.0])
        dot = v @ v
    assert isinstance(dot, tape.Value) and dot.data == 5.0
    assert t.gradient(dot, v) == (2.0, 4.0)


@pytest.mark.parametrize(
    ("a", "b", "message"),
    [
        (
            [[1.0, 2.0]],
            [[1.0, 2.0]],
            r"matmul: shapes \(1, 2\) and \(1, 2\): a has 2 columns but b has 1 rows",
        ),
        ([1.0, 2.0, 3.0], [1.0, 2.0], r"matmul: shapes \(3,\) and \(2,\)"),
        (2.0, [1.0], r"matmul: a is 0-d"),
        (
            [[[1.0]], [[2.0]]],
            [[[1.0]], [[2.0]], [[3.0]]],
            r"matmul: the batch axes of shapes \(2, 1, 1\) and \(3, 1, 1\) do not broadcast",
        ),
    ],
)
def test_matmul_errors_name_both_shapes(a: Any, b: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        A.matmul(a, b)
    with pytest.raises(ValueError, match=message):
        asarray(a) @ b


# --- softmax, log_softmax, logsumexp, layer_norm --------------------------------------------------


def _np_logsumexp(x: Any, axis: int, keepdims: bool = False) -> Any:
    m = np.max(x, axis=axis, keepdims=True)
    out = m + np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True))
    return out if keepdims else np.squeeze(out, axis=axis)


NORMALISERS: dict[str, tuple[Callable[..., Any], Callable[..., Any]]] = {
    "softmax": (A.softmax, lambda x, axis: np.exp(x - _np_logsumexp(x, axis, keepdims=True))),
    "log_softmax": (A.log_softmax, lambda x, axis: x - _np_logsumexp(x, axis, keepdims=True)),
    "logsumexp": (A.logsumexp, _np_logsumexp),
}


@st.composite
def axis_cases(draw: st.DrawFn, scale: float = 1.0) -> tuple[Any, int]:
    shape = draw(_shapes(min_ndim=1))
    return draw(_distinct(shape).map(lambda d: _scaled(d, scale))), draw(
        st.integers(-len(shape), len(shape) - 1)
    )


def _scaled(data: Any, k: float) -> Any:
    return [_scaled(d, k) for d in data] if isinstance(data, list) else data * k


@pytest.mark.parametrize("name", sorted(NORMALISERS))
@given(axis_cases())
@example(([[1000.0, -1000.0, 0.0], [1.0, 2.0, 3.0]], -1))
@example(([[1000.0, -1000.0], [999.0, -1000.0]], 0))
@example(([0.5], 0))
def test_normalisers_match_numpy(name: str, case: tuple[Any, int]) -> None:
    ours, theirs = NORMALISERS[name]
    x, axis = case
    got = ours(x, axis=axis)
    want = theirs(_numpy(x), axis)
    assert shape_of(got) == want.shape
    np.testing.assert_allclose(_numpy(got), want, rtol=1e-12, atol=1e-12)
    assert all(math.isfinite(v) for v in flatten(got))


@pytest.mark.parametrize("name", sorted(NORMALISERS))
@given(axis_cases())
@example(([[2.0, -1.0, 0.5], [0.25, 1.5, -2.0]], 0))
def test_normaliser_gradients(name: str, case: tuple[Any, int]) -> None:
    ours, _ = NORMALISERS[name]
    x, axis = case
    _check_op(lambda p: ours(p, axis=axis), x)


@pytest.mark.parametrize("name", sorted(NORMALISERS))
def test_normalisers_are_exact_for_logits_of_plus_minus_1000(name: str) -> None:
    ours, theirs = NORMALISERS[name]
    x = [[1000.0, -1000.0, 999.0], [-1000.0, -1000.0, -999.0]]
    g = tape.grad(lambda p: contract(ours(p, axis=-1), _cotangent(shape_of(ours(x)))), arrays=True)(x)
    assert all(math.isfinite(v) for v in flatten(g))
    np.testing.assert_allclose(_numpy(ours(x)), theirs(_numpy(x), -1), rtol=1e-12)
    _check_op(lambda p: ours(p), x)


def test_logsumexp_keepdims_and_a_scalar_result() -> None:
    x = [[0.5, 1.5], [-1.0, 2.0]]
    kept = A.logsumexp(x, axis=0, keepdims=True)
    assert shape_of(kept) == (1, 2)
    np.testing.assert_allclose(_numpy(kept), _np_logsumexp(_numpy(x), 0, keepdims=True), rtol=1e-12)
    _check_op(lambda p: A.logsumexp(p, axis=1, keepdims=True), x)
    with tape.Tape() as t:
        v = t.watch_array([1000.0, 1000.0])
        lse = A.logsumexp(v)
    assert isinstance(lse, tape.Value) and lse.data == 1000.0 + math.log(2.0)
    assert t.gradient(lse, v) == (0.5, 0.5)


def _np_layer_norm(x: Any, w: Any, b: Any, eps: float) -> Any:
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)  # biased, as torch
    out = (x - mean) / np.sqrt(var + eps)
    return out * (1.0 if w is None else w) + (0.0 if b is None else b)


@given(_shapes(min_ndim=1).filter(lambda s: s[-1] > 1).flatmap(_distinct), st.booleans(), st.booleans())
@example([[1.0, 3.0], [2.0, 2.5]], True, True)
@example([[[1000.0, -1000.0, 0.5]]], False, True)
def test_layer_norm_matches_numpy_and_its_gradients_check(x: Any, affine_w: bool, affine_b: bool) -> None:
    d = shape_of(x)[-1]
    w = [1.0 + 0.25 * k for k in range(d)] if affine_w else None
    b = [0.5 - 0.5 * k for k in range(d)] if affine_b else None
    got = A.layer_norm(x, w, b)
    np.testing.assert_allclose(
        _numpy(got),
        _np_layer_norm(_numpy(x), None if w is None else _numpy(w), b, 1e-5),
        rtol=1e-10,
        atol=1e-12,
    )
    params = {"x": x, **({"w": w} if w is not None else {}), **({"b": b} if b is not None else {})}
    _check_op(lambda p: A.layer_norm(p["x"], p.get("w"), p.get("b"), eps=1e-3), params)
    _check_op(lambda p: A.layer_norm(x, p["w"], p["b"]), {"w": w or [1.0] * d, "b": b or [0.0] * d})


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (
            lambda: A.softmax([[1.0, 2.0]], axis=2),
            ValueError,
            r"softmax: axis 2 is out of range for shape \(1, 2\)",
        ),
        (
            lambda: A.log_softmax([1.0], axis=-2),
            ValueError,
            r"log_softmax: axis -2 is out of range for shape \(1,\)",
        ),
        (lambda: A.logsumexp(1.0), ValueError, r"logsumexp: axis -1 is out of range for shape \(\)"),
        (
            lambda: A.softmax([1.0], axis=(0,)),  # type: ignore[arg-type]
            TypeError,
            "softmax: axis must be an int",
        ),
        (
            lambda: A.logsumexp([1.0], keepdims=None),  # type: ignore[arg-type]
            TypeError,
            "logsumexp: keepdims must be a bool",
        ),
        (
            lambda: A.layer_norm([[1.0, 2.0]], [1.0]),
            ValueError,
            r"layer_norm: weight has shape \(1,\) but x of shape \(1, 2\) needs \(2,\)",
        ),
        (
            lambda: A.layer_norm([[1.0, 2.0]], None, [[1.0, 2.0]]),
            ValueError,
            r"layer_norm: bias has shape \(1, 2\)",
        ),
        (lambda: A.layer_norm(2.0), ValueError, "layer_norm: x is 0-d"),
        (lambda: A.layer_norm([[]]), ValueError, "layer_norm: the last axis"),
        (lambda: A.layer_norm([1.0, 2.0], eps=0.0), ValueError, "layer_norm: eps must be a positive"),
    ],
)
def test_normaliser_errors_name_the_op_axis_and_shape(
    call: Callable[[], object], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        call()


def test_reverse_over_reverse_of_an_array_op_says_where_it_stops() -> None:
    """The vjp rules run on floats: ``hvp`` (forward over reverse) of an array op is refused clearly."""
    with pytest.raises(TypeError, match="array_logsumexp: argument 0 is a sequence holding Values"):
        tape.hvp(lambda p: A.sum(A.logsumexp(p)), [1.0, 2.0], [1.0, 0.0])


def _grad_inside(y: Any) -> Callable[[Any], Any]:
    """A function that calls ``grad`` of a stack (an N-d op) of ``y`` and its argument."""

    def inner(z: Any) -> Any:
        s = A.stack([y, z])
        return A.sum(A.multiply(s, s))

    return tape.grad(inner)


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        # the inner tape's Value holds a Value of the outer one (it was a TypeError from the sweep:
        # "'Value' object is not iterable")
        (
            lambda: tape.grad(lambda x: _grad_inside(2.0)(x))(1.5),
            TypeError,
            "stack: argument 1 is a Value of a nested tape",
        ),
        (
            lambda: tape.grad(lambda y: _grad_inside(y)(1.5))(2.0),
            tape.TapeError,
            "stack: its operands belong to different tapes",
        ),
        # under jit the inner grad's inputs are traced, so it is a nested tape too
        (
            lambda: tape.jit(lambda x, y: _grad_inside(y)(x))(1.5, 2.0),
            tape.TapeError,
            "compile the grad itself",
        ),
        (
            lambda: tape.jit(lambda x, y: _grad_inside(y)(x), static_argnums=(1,))(1.5, 2.0),
            TypeError,
            "tape.jit",
        ),
    ],
)
def test_an_nd_op_in_a_nested_tape_says_so(
    call: Callable[[], object], error: type[Exception], message: str
) -> None:
    """Without an enclosing tape the same grad computes: ``d/dz (y^2 + z^2) = 2z``."""
    assert _grad_inside(2.0)(1.5) == 3.0
    with pytest.raises(error, match=message):
        call()


def test_an_array_jvp_in_a_nested_tape_says_so() -> None:
    """``jvp(..., arrays=True)`` of Values (a nested tape, or jit's traced arguments) names why it
    stops, where it said the tangent had another structure; on floats it computes."""

    def square_sum(z: Any) -> Any:
        return A.sum(A.multiply(z, z))

    def directional(x: Any) -> Any:
        return tape.jvp(square_sum, (x,), ([1.0, 0.5],), arrays=True)

    assert directional([1.0, 2.0]) == (5.0, 4.0)
    with pytest.raises(TypeError, match="jvp: argument 0 holds tracked Values"):
        tape.jit(directional)([1.0, 2.0])
    with tape.Tape() as t, pytest.raises(TypeError, match="array ops are first-order"):
        directional([t.watch(1.0), t.watch(2.0)])


@pytest.mark.parametrize(
    ("call", "want"),
    [
        # d/dx of d/dz z^3 = 6x, through an elementwise op on a nested tape's 0-d Value
        (lambda: tape.grad(lambda x: tape.grad(lambda z: A.sum(A.multiply(z * z, z)))(x))(0.4), 6 * 0.4),
        # broadcast against constants: d/dx of d/dz sum(z^2 + [1, 2]) = 4
        (lambda: tape.grad(lambda x: tape.grad(lambda z: A.sum(A.add(z * z, [1.0, 2.0])))(x))(0.4), 4.0),
        # the sum of an MLP loss (a 0-d Value) under hvp: H of (v0 v1 + v1) / 2 times e0
        (lambda: tape.hvp(lambda v: A.sum(A.mean([v[0] * v[1], v[1]])), [0.4, 0.7], [1.0, 0.0]), [0.0, 0.5]),
        # a grad over scalar array ops inside a jitted function: d/dz z^2 at 0.4
        (lambda: tape.jit(lambda x: tape.grad(lambda z: A.sum(A.multiply(z, z)))(x))(0.4), 0.8),
    ],
)
def test_array_ops_on_a_nested_tapes_scalars_keep_working(call: Callable[[], object], want: object) -> None:
    """Rules whose cotangents for a nested tape's 0-d Values are Values or lists of them
    run on those Values: only a cotangent the sweep cannot add is refused (above)."""
    got = call()
    assert got == pytest.approx(want)


# --- linear over leading axes ----------------------------------------------------------------------


@given(_shapes(max_ndim=2), st.integers(1, 5), st.integers(1, 3), st.booleans())
@example((2, 3), 2, 3, True)  # (batch, time, features)
@example((), 3, 2, False)  # one example (in,)
@example((1, 1), 5, 1, True)  # the narrow (<= 4 inputs) kernel's neighbour, one output
def test_linear_over_leading_axes_matches_numpy(lead: Shape, n_in: int, n_out: int, with_bias: bool) -> None:
    X = _lists(_cotangent((*lead, n_in)))
    W = _lists(nest([0.3 * k - 0.7 for k in range(n_out * n_in)], (n_out, n_in)))
    b = [0.25 * k - 0.1 for k in range(n_out)] if with_bias else None
    got = A.linear(W, b, X)
    want = _numpy(X) @ _numpy(W).T + (0.0 if b is None else _numpy(b))
    assert shape_of(got) == want.shape
    np.testing.assert_allclose(_numpy(got), want, rtol=1e-12, atol=1e-12)
    params = {"W": W, "X": X, **({"b": b} if b is not None else {})}
    _check_op(lambda p: A.linear(p["W"], p.get("b"), p["X"]), params)
    _check_op(lambda p: A.linear(p["W"], p.get("b"), X), {k: v for k, v in params.items() if k != "X"})
    _check_op(lambda p: A.linear(W, b, p), X)


def test_linear_over_leading_axes_gives_what_the_matrix_path_gives() -> None:
    W = [[1.0, -2.0, 0.5], [0.25, 1.0, -1.0]]
    b = [0.5, -0.5]
    X = [[[1.0, 2.0, 3.0], [0.5, -1.0, 2.0]], [[-1.0, 0.0, 1.0], [2.0, 2.0, -2.0]]]
    rows = [row for batch in X for row in batch]
    flat = A.linear(W, b, rows)
    nested = A.linear(W, b, X)
    assert flatten(nested) == flatten(flat)  # bit for bit: the same kernel
    with tape.Tape() as t:
        P = t.watch_array(W)
        Q = t.watch_array(X)
        out = A.linear(P, b, Q)
        loss = A.sum(out)
    assert isinstance(out, Array) and out.shape == (2, 2, 2)
    gW, gX = t.gradient(loss, (P, Q))
    with tape.Tape() as t:
        P = t.watch_array(W)
        R = t.watch_array(rows)
        loss = A.sum(A.linear(P, b, R))
    gW2, gR = t.gradient(loss, (P, R))
    assert gW == gW2 and flatten(gX) == flatten(gR)


@pytest.mark.parametrize(
    ("W", "b", "X", "message"),
    [
        ([[1.0, 2.0]], None, [[[1.0, 2.0, 3.0]]], "linear: W has 2 columns but X rows have 3 values"),
        ([[1.0, 2.0]], [1.0, 2.0], [[[1.0, 2.0]]], "linear: W has 1 rows but b has 2 values"),
        ([1.0, 2.0], None, [[[1.0, 2.0]]], "linear takes a matrix W"),
        ([[1.0, 2.0]], None, [], r"X of shape \(\.\.\., in\)"),
        # a layer of no inputs: once int 0 (an empty sum) for one row, an IndexError for two
        ([[]], None, [[]], "linear: W has no columns"),
        ([[]], [1.0], [[]], "linear: W has no columns"),
        ([[], []], None, [[], []], "linear: W has no columns"),
        ([[]], None, [[[]]], "linear: W has no columns"),
    ],
)
def test_linear_over_leading_axes_errors(W: Any, b: Any, X: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        A.linear(W, b, X)


def test_linear_over_leading_axes_on_values_takes_the_scalar_path() -> None:
    """Inputs holding Values (e.g. inside a nested tape) record one ``dot`` per output, any leading axes."""
    W = [[1.0, 2.0], [3.0, -1.0]]
    X = [[[1.0, 2.0]], [[0.5, 0.25]]]

    def total(x: Any) -> Any:
        out = A.linear(W, [0.5, 0.0], x)
        return tape.vsum(flatten(out))

    assert tape.grad(total)(X) == [[[4.0, 1.0]], [[4.0, 1.0]]]
    assert tape.grad(total)([1.0, 2.0]) == [4.0, 1.0]
    assert total(X) == math.fsum(flatten(A.linear(W, [0.5, 0.0], X)))
