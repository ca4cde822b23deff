"""Shape ops and indexing on N-d Arrays: numpy, central differences, jvp against vjp, jit bit for bit."""

from __future__ import annotations

import doctest
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

import tape
from tape import Array, Tape, Value
from tape import arrays as A
from tape.array import asarray, flatten, nest, shape_of
from tape.ops import indexing as indexing_ops
from tape.ops import shape as shape_ops
from tape.testing import assert_gradients_match
from tests.tape.test_jit import assert_same

Shape = tuple[int, ...]
Fun = Callable[..., Any]

ELEMENTS = st.floats(-2.0, 2.0, allow_nan=False, allow_infinity=False)


def nested(shape: Shape) -> st.SearchStrategy[Any]:
    """Nested tuples of floats of ``shape``."""
    count = math.prod(shape)
    return st.lists(ELEMENTS, min_size=count, max_size=count).map(lambda flat: nest(flat, shape))


shapes = st.lists(st.integers(1, 3), min_size=1, max_size=4).map(tuple)


@st.composite
def arrays_of_any_shape(draw: st.DrawFn, shape_strategy: st.SearchStrategy[Shape] = shapes) -> Any:
    return draw(nested(draw(shape_strategy)))


def probe(y: object) -> Any:
    """A scalar of ``y`` whose gradient differs at every entry: a weighted square error."""
    if isinstance(y, (Value, float)):
        return y * y * 0.5 + y * 0.25
    shape = y.shape if isinstance(y, Array) else shape_of(y)
    targets = nest([0.3 * k - 0.7 for k in range(math.prod(shape))], shape)
    return A.mse(y, targets)  # type: ignore[arg-type]


def check_all_modes(
    op: Fun, *args: Any, dargs: tuple[Any, ...] | None = None, again: tuple[Any, ...] = ()
) -> None:
    """Central differences, jvp against vjp, and jit (traced, then replayed on ``again``) equal to eager."""

    def loss(*xs: Any) -> Any:
        return probe(op(*xs))

    argnums = tuple(range(len(args)))
    assert_gradients_match(loss, *args, argnums=argnums, arrays=True)
    tangents = dargs if dargs is not None else tuple(_direction(a) for a in args)
    _, slope = tape.jvp(loss, args, tangents, arrays=True)
    grads: Any = tape.grad(loss, argnums, arrays=True)(*args)
    back = math.fsum(float(np.dot(flatten(g), flatten(t))) for g, t in zip(grads, tangents, strict=True))
    assert math.isclose(float(slope), back, rel_tol=1e-9, abs_tol=1e-12), (slope, back)
    compiled = tape.jit(tape.value_and_grad(loss, argnums, arrays=True))
    for xs in (args, again or args):
        assert_same(compiled(*xs), tape.value_and_grad(loss, argnums, arrays=True)(*xs))


def _direction(x: Any) -> Any:
    shape = shape_of(x)
    return nest([math.sin(1.0 + k) for k in range(math.prod(shape))], shape)


def _shifted(x: Any) -> Any:
    return nest([v + 0.5 for v in flatten(x)], shape_of(x))


# --- indexing --------------------------------------------------------------------------------


@st.composite
def indices(draw: st.DrawFn, shape: Shape) -> tuple[Any, ...]:
    """A basic index of ``shape``: ints, slices (negative, stepped), None, maybe one ``...``.

    Components before the ``...`` index the leading axes, those after it the trailing ones.
    """

    def components(extents: Shape) -> list[Any]:
        out: list[Any] = []
        for n in extents:
            kind = draw(st.sampled_from(["int", "slice", "none"]))
            if kind == "none":
                out.append(None)
            if kind == "int":
                out.append(draw(st.integers(-n, n - 1)))
            else:
                bound = st.none() | st.integers(-n - 1, n + 1)
                out.append(slice(draw(bound), draw(bound), draw(st.sampled_from([None, 1, 2, -1, -2]))))
        return out

    head = draw(st.integers(0, len(shape)))
    out = components(shape[:head])
    if draw(st.booleans()):
        tail = draw(st.integers(0, len(shape) - head))
        out += [Ellipsis, *components(shape[len(shape) - tail :])]
    if draw(st.booleans()):
        out.append(None)
    return tuple(out)


@st.composite
def indexed(draw: st.DrawFn) -> tuple[Any, tuple[Any, ...]]:
    shape = draw(shapes)
    return draw(nested(shape)), draw(indices(shape))


@given(indexed())
@example(((((1.0, 2.0), (3.0, 4.0)),), (0, slice(None, None, -1), None)))
@example((((0.0,), (0.0,)), (Ellipsis, 0)))
@example((((1.0, 2.0, 3.0),), (Ellipsis, None)))
def test_indexing_matches_numpy(case: tuple[Any, tuple[Any, ...]]) -> None:
    x, index = case
    want = np.asarray(x)[index]
    got = asarray(x)[index]
    if want.ndim == 0:
        assert not isinstance(got, Array) and got == float(want)
    elif want.size == 0:  # nested tuples keep no axes after an empty one
        assert isinstance(got, Array) and got.size == 0 and got.shape == want.shape[: got.ndim]
    else:
        assert isinstance(got, Array) and got.shape == want.shape
        assert got.tolist() == want.tolist()


@given(indexed())
@example((((0.0,), (0.0,)), (Ellipsis, 0)))  # an int after the ellipsis indexes the last axis
def test_indexing_gradients_jvp_and_jit(case: tuple[Any, tuple[Any, ...]]) -> None:
    x, index = case
    if 0 in np.asarray(x)[index].shape:
        return  # an empty selection has nothing to differentiate
    check_all_modes(lambda a: asarray(a)[index], x, again=(_shifted(x),))


def test_indexing_records_one_node_and_keeps_the_scalar_paths() -> None:
    with Tape() as t:
        M = t.watch_array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
        v = t.watch_array([7.0, 8.0])
        before = len(t)
        block = M[:, 1:]
        element = M[1, -1]
        row = M[0]
        item = v[1]
        picked = M[::-1, ::2][0, 1] * 2.0
    assert [node.op.name for node in t.nodes[before : before + 4]] == [
        "getitem",
        "getitem",
        "array_row",
        "array_item",
    ]
    assert isinstance(block, Array) and block.data == ((2.0, 3.0), (5.0, 6.0))
    assert isinstance(element, Value) and element.data == 6.0
    assert isinstance(row, Array) and row.data == (1.0, 2.0, 3.0)
    assert isinstance(item, Value) and item.data == 8.0
    assert t.gradient(picked, M) == ((0.0, 0.0, 0.0), (0.0, 0.0, 2.0))


def test_indexing_a_3d_array_by_an_int_gives_a_matrix_array() -> None:
    with Tape() as t:
        X = t.watch_array([[[1.0, 2.0]], [[3.0, 4.0]]])
        first = X[-1]
    assert isinstance(first, Array) and first.data == ((3.0, 4.0),)
    assert t.nodes[first.position].op.name == "getitem"


def test_indexing_errors() -> None:
    M = asarray([[1.0, 2.0], [3.0, 4.0]])
    with pytest.raises(IndexError, match=r"index 2 is out of range for axis 1 of shape \(2, 2\)"):
        M[0, 2]
    with pytest.raises(IndexError, match=r"index 1 is out of range for axis 1 of shape \(2, 1\)"):
        asarray(((0.0,), (0.0,)))[..., 1]  # after the ellipsis an int indexes the last axis
    with pytest.raises(IndexError, match="out of range for an Array of length 2"):
        M[-3]
    with pytest.raises(IndexError, match="too many indices"):
        M[0, 0, 0]
    with pytest.raises(IndexError, match="single ellipsis"):
        M[..., ...]
    with pytest.raises(TypeError, match=r"Array indices are ints, slices, None or \.\.\., not float"):
        M[0.5]
    with pytest.raises(TypeError, match="not bool"):
        M[True]
    with pytest.raises(TypeError, match="slice parts are ints or None"):
        M[0:1.5]
    with pytest.raises(ValueError, match="slice step cannot be zero"):
        M[::0]
    with pytest.raises(IndexError, match=r"too many indices for an Array of shape \(\)"):
        asarray(2.0)[0]


# --- reshape and transpose ---------------------------------------------------------------------


@st.composite
def reshapes(draw: st.DrawFn) -> tuple[Any, Shape]:
    shape = draw(shapes)
    x = draw(nested(shape))
    n = math.prod(shape)
    factors = [d for d in range(1, n + 1) if n % d == 0]
    first = draw(st.sampled_from(factors))
    new: list[int] = [first, n // first]
    if draw(st.booleans()):
        new.insert(draw(st.integers(0, 2)), 1)
    if draw(st.booleans()):
        new[draw(st.integers(0, len(new) - 1))] = -1
    return x, tuple(new)


@given(reshapes())
@example((((1.0,),), (1, -1, 1)))
def test_reshape_matches_numpy_and_differentiates(case: tuple[Any, Shape]) -> None:
    x, shape = case
    got = A.reshape(asarray(x), shape)
    want = np.reshape(np.asarray(x), shape)
    assert isinstance(got, Array) and got.shape == want.shape and got.tolist() == want.tolist()
    assert A.reshape(x, shape) == got.data  # plain data in, plain tuples out
    check_all_modes(lambda a: A.reshape(a, shape), x, again=(_shifted(x),))


def test_reshape_to_a_scalar_and_of_a_value() -> None:
    with Tape() as t:
        x = t.watch_array([[2.0]])
        y = A.reshape(x, ())
        s = t.watch(3.0)
        v = A.reshape(s, (1, 1))
        y5, v4 = y * 5.0, A.mean(v) * 4.0
    assert isinstance(y, Value) and y.data == 2.0
    assert isinstance(v, Array) and v.data == ((3.0,),)
    assert t.gradient(y5, x) == ((5.0,),)
    assert t.gradient(v4, s) == 4.0


def test_reshape_errors() -> None:
    with pytest.raises(ValueError, match=r"reshape: cannot reshape shape \(2, 3\) \(6 entries\) into \(4,\)"):
        A.reshape(asarray([[1.0, 2.0, 3.0]] * 2), (4,))
    with pytest.raises(ValueError, match="more than one -1"):
        A.reshape([1.0, 2.0], (-1, -1))
    with pytest.raises(TypeError, match="shape must be an int or a tuple of ints"):
        A.reshape([1.0, 2.0], (2.0,))  # type: ignore[arg-type]


@st.composite
def permuted(draw: st.DrawFn) -> tuple[Any, tuple[int, ...] | None]:
    shape = draw(shapes)
    x = draw(nested(shape))
    if draw(st.booleans()):
        return x, None
    perm = draw(st.permutations(range(len(shape))))
    negative = draw(st.booleans())
    return x, tuple(p - len(shape) if negative else p for p in perm)


@given(permuted())
def test_transpose_matches_numpy_and_differentiates(case: tuple[Any, tuple[int, ...] | None]) -> None:
    x, axes = case
    got = A.transpose(asarray(x), axes)
    want = np.transpose(np.asarray(x), axes)
    assert isinstance(got, Array) and got.shape == want.shape and got.tolist() == want.tolist()
    check_all_modes(lambda a: A.transpose(a, axes), x, again=(_shifted(x),))


def test_dot_t_reverses_the_axes() -> None:
    with Tape() as t:
        M = t.watch_array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
        back = M.T
    assert isinstance(back, Array) and back.data == ((1.0, 4.0), (2.0, 5.0), (3.0, 6.0))
    assert t.nodes[back.position].op.name == "transpose"
    assert asarray([[1.0, 2.0]]).T.data == ((1.0,), (2.0,))


def test_transpose_errors() -> None:
    with pytest.raises(
        ValueError, match=r"axes \(0, 0\) are not a permutation of the axes of shape \(1, 2\)"
    ):
        A.transpose([[1.0, 2.0]], (0, 0))
    with pytest.raises(ValueError, match=r"axis 2 is out of range for shape \(1, 2\)"):
        A.transpose([[1.0, 2.0]], (0, 2))
    with pytest.raises(ValueError, match="transpose: x is a scalar"):
        A.transpose(2.0)  # type: ignore[call-overload]


# --- concatenate and stack ---------------------------------------------------------------------


@st.composite
def joinable(draw: st.DrawFn, *, same: bool) -> tuple[list[Any], int]:
    shape = draw(shapes)
    axis = draw(st.integers(-len(shape), len(shape) - 1))
    count = draw(st.integers(1, 3))
    xs = []
    for _ in range(count):
        s = list(shape)
        if not same:
            s[axis] = draw(st.integers(1, 3))
        xs.append(draw(nested(tuple(s))))
    return xs, axis


@given(joinable(same=False))
def test_concatenate_matches_numpy_and_differentiates(case: tuple[list[Any], int]) -> None:
    xs, axis = case
    got = A.concatenate([asarray(x) for x in xs], axis)
    want = np.concatenate([np.asarray(x) for x in xs], axis)
    assert isinstance(got, Array) and got.shape == want.shape and got.tolist() == want.tolist()
    check_all_modes(lambda *a: A.concatenate(a, axis), *xs, again=tuple(_shifted(x) for x in xs))


@given(joinable(same=True), st.booleans())
def test_stack_matches_numpy_and_differentiates(case: tuple[list[Any], int], new_last: bool) -> None:
    xs, axis = case
    axis = -1 if new_last else axis
    got = A.stack([asarray(x) for x in xs], axis)
    want = np.stack([np.asarray(x) for x in xs], axis)
    assert isinstance(got, Array) and got.shape == want.shape and got.tolist() == want.tolist()
    check_all_modes(lambda *a: A.stack(a, axis), *xs, again=tuple(_shifted(x) for x in xs))


def test_join_a_tracked_array_with_constants() -> None:
    with Tape() as t:
        x = t.watch_array([[1.0, 2.0]])
        joined = A.concatenate([x, [[3.0, 4.0]]], axis=0)
        both = A.stack([x, ((5.0, 6.0),)], axis=-1)
        error = A.mse(joined, [[0.0, 0.0], [0.0, 0.0]])
    assert isinstance(joined, Array) and joined.data == ((1.0, 2.0), (3.0, 4.0))
    assert isinstance(both, Array) and both.shape == (1, 2, 2)
    assert t.gradient(error, x) == ((0.5, 1.0),)
    assert A.concatenate([[1.0], [2.0, 3.0]]) == (1.0, 2.0, 3.0)


def test_stack_of_scalar_values_is_a_vector_as_before() -> None:
    with Tape() as t:
        a, b = t.watch(2.0), t.watch(3.0)
        v = A.stack([a * 2.0, b])
        w = A.stack([a, 1.5, b])  # floats are constants
        average = A.mean(w)
    assert isinstance(v, Array) and v.data == (4.0, 3.0)
    assert t.nodes[v.position].op.name == "array_stack"
    assert isinstance(w, Array) and w.data == (2.0, 1.5, 3.0) and t.nodes[w.position].op.name == "stack"
    assert t.gradient(average, (a, b)) == (1.0 / 3.0, 1.0 / 3.0)
    assert A.stack([1.0, 2.0]) == (1.0, 2.0)
    check_all_modes(lambda p, q: A.stack([p, q]), 0.5, -1.5)


def test_join_errors() -> None:
    with pytest.raises(ValueError, match=r"concatenate: array 1 has shape \(1, 3\) but array 0 has \(1, 2\)"):
        A.concatenate([[[1.0, 2.0]], [[1.0, 2.0, 3.0]]], axis=0)
    with pytest.raises(ValueError, match=r"stack: array 1 has shape \(3,\) but array 0 has \(2,\)"):
        A.stack([[1.0, 2.0], [1.0, 2.0, 3.0]])
    with pytest.raises(ValueError, match="stack: needs at least one array"):
        A.stack([])
    with pytest.raises(ValueError, match=r"axis 2 is out of range for shape \(2,\)"):
        A.concatenate([[1.0, 2.0]], axis=2)
    with pytest.raises(ValueError, match="concatenate: array 0 is a scalar"):
        A.concatenate([1.0, 2.0])
    with pytest.raises(TypeError, match="xs must be a sequence of arrays"):
        A.concatenate(asarray([1.0]))  # type: ignore[arg-type]


# --- take and pad ----------------------------------------------------------------------------------


@st.composite
def takes(draw: st.DrawFn) -> tuple[Any, Any, int]:
    shape = draw(shapes)
    axis = draw(st.integers(-len(shape), len(shape) - 1))
    n = shape[axis]
    index = st.integers(-n, n - 1)
    kind = draw(st.sampled_from(["int", "flat", "nested"]))
    if kind == "int":
        indices: Any = draw(index)
    elif kind == "flat":
        indices = draw(st.lists(index, min_size=1, max_size=4))
    else:
        indices = draw(st.lists(st.lists(index, min_size=2, max_size=2), min_size=1, max_size=2))
    return draw(nested(shape)), indices, axis


@given(takes())
@example((((1.0, 2.0), (3.0, 4.0)), [1, 1, -1], 0))  # repeated indices accumulate
@example(((1.0, 2.0, 3.0), 2, -1))  # a vector's element: a Value
def test_take_matches_numpy_and_differentiates(case: tuple[Any, Any, int]) -> None:
    x, indices, axis = case
    got = A.take(asarray(x), indices, axis)
    want = np.take(np.asarray(x), indices, axis)
    if want.ndim == 0:
        assert got == float(want)
    else:
        assert isinstance(got, Array) and got.shape == want.shape and got.tolist() == want.tolist()
    check_all_modes(lambda a: A.take(a, indices, axis), x, again=(_shifted(x),))


def test_take_is_an_embedding_lookup_whose_repeats_accumulate() -> None:
    table = [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]
    grads = tape.grad(lambda w: A.mse(A.take(w, [2, 0, 2]), [[0.0, 0.0]] * 3), arrays=True)(table)
    assert grads == [[2.0 / 6.0 * 1.0, 2.0 / 6.0 * 2.0], [0.0, 0.0], [2.0 / 6.0 * 10.0, 2.0 / 6.0 * 12.0]]


def test_jit_reads_take_indices_from_the_inputs() -> None:
    def loss(w: Any, ids: tuple[int, ...]) -> Any:
        return A.mse(A.take(w, ids), [[0.5, -0.5]] * len(ids))

    table = [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]
    compiled = tape.jit(tape.value_and_grad(loss, arrays=True))
    for ids in ((2, 0), (1, 1), (0, 2)):
        assert_same(compiled(table, ids), tape.value_and_grad(loss, arrays=True)(table, ids))
    assert compiled.traces == 1
    with pytest.raises(IndexError, match=r"take: index 3 is out of range for axis 0 of shape \(3, 2\)"):
        compiled(table, (0, 3))


def test_take_errors() -> None:
    table = asarray([[1.0, 2.0], [3.0, 4.0]])
    with pytest.raises(
        IndexError, match=r"take: index 2 is out of range for axis 0 of shape \(2, 2\) \(size 2\)"
    ):
        A.take(table, [0, 2])
    with pytest.raises(IndexError, match=r"take: index -3 is out of range for axis 1"):
        A.take(table, [-3], axis=1)
    with pytest.raises(TypeError, match=r"take: indices must be ints, got 1\.0"):
        A.take(table, [1.0])
    with pytest.raises(ValueError, match=r"take: axis 2 is out of range for shape \(2, 2\)"):
        A.take(table, [0], axis=2)
    with pytest.raises(ValueError, match="take: indices are ragged"):
        A.take(table, [[0, 1], [1]])


@st.composite
def pads(draw: st.DrawFn) -> tuple[Any, Any, float]:
    shape = draw(shapes)
    width = st.integers(0, 2)
    kind = draw(st.sampled_from(["int", "pair", "per axis"]))
    if kind == "int":
        pad_width: Any = draw(width)
    elif kind == "pair":
        pad_width = (draw(width), draw(width))
    else:
        pad_width = tuple((draw(width), draw(width)) for _ in shape)
    return draw(nested(shape)), pad_width, draw(st.sampled_from([0.0, -1.5]))


@given(pads())
def test_pad_matches_numpy_and_differentiates(case: tuple[Any, Any, float]) -> None:
    x, pad_width, value = case
    got = A.pad(asarray(x), pad_width, value)
    want = np.pad(np.asarray(x), pad_width, constant_values=value)
    assert isinstance(got, Array) and got.shape == want.shape and got.tolist() == want.tolist()
    check_all_modes(lambda a: A.pad(a, pad_width, value), x, again=(_shifted(x),))


def test_pad_errors() -> None:
    with pytest.raises(ValueError, match=r"pad: 3 \(before, after\) pairs for an array of 2 axes"):
        A.pad([[1.0]], ((1, 1), (1, 1), (1, 1)))
    with pytest.raises(ValueError, match=r"pad: axis 0 has a negative width \(-1, -1\)"):
        A.pad([[1.0]], -1)
    with pytest.raises(TypeError, match="pad: pad_width must be ints"):
        A.pad([[1.0]], 1.5)  # type: ignore[call-overload]


# --- scale and mse on N-d arrays -------------------------------------------------------------------


@given(arrays_of_any_shape())
def test_scale_and_mse_on_nd_arrays(x: Any) -> None:
    shape = shape_of(x)
    factors = nest([(k % 3) * 0.5 for k in range(math.prod(shape))], shape)
    got = A.scale(asarray(x), factors)
    assert isinstance(got, Array) and got.tolist() == (np.asarray(x) * np.asarray(factors)).tolist()
    check_all_modes(lambda a: A.scale(a, factors), x, again=(_shifted(x),))
    targets = _direction(x)
    assert math.isclose(
        float(A.mse(x, targets)), float(np.mean((np.asarray(x) - np.asarray(targets)) ** 2)), rel_tol=1e-12
    )


def test_scale_and_mse_shape_errors() -> None:
    with pytest.raises(ValueError, match=r"scale: factors of shape \(1, 2\) vs input of shape \(1, 1, 2\)"):
        A.scale(asarray([[[1.0, 2.0]]]), [[1.0, 0.0]])
    with pytest.raises(
        ValueError, match=r"mse: predictions of shape \(1, 1, 2\) vs targets of shape \(1, 2\)"
    ):
        A.mse(asarray([[[1.0, 2.0]]]), [[1.0, 0.0]])
    with pytest.raises(
        ValueError, match=r"logits must be rows \(2 axes\), got an Array of shape \(1, 1, 2\)"
    ):
        A.cross_entropy_with_logits(asarray([[[1.0, 2.0]]]), [0])


def test_cross_entropy_takes_an_untracked_array() -> None:
    assert A.cross_entropy_with_logits(asarray([[0.0, 0.0]]), [1]) == math.log(2.0)


def test_doctests() -> None:
    for module in (shape_ops, indexing_ops):
        failures, tried = doctest.testmod(module)
        assert failures == 0 and tried > 0, module.__name__


def test_mse_targets_and_scale_factors_holding_values_are_type_errors() -> None:
    """Targets and factors are constants: Values there are a TypeError naming them (not an
    internal exception), with or without tracked predictions."""
    with pytest.raises(TypeError, match="mse: the targets hold Values; targets are constants"):
        tape.grad(lambda x: A.mse(A.stack([x, x]), [x, 1.0]))(2.0)
    with pytest.raises(TypeError, match="scale: the factors hold Values; factors are constants"):
        tape.grad(lambda x: A.sum(A.scale(A.stack([x, x]), [[x, 1.0]][0])))(2.0)
    with pytest.raises(TypeError, match="scale: the factors hold Values"):
        tape.grad(lambda x: A.sum(A.scale([1.0, 2.0], [x, 1.0])))(2.0)


def test_mse_targets_and_scale_factors_take_an_untracked_array() -> None:
    """``asarray(data)``, what their TypeError suggests, is constant data like the nested floats;
    a tracked Array there is the TypeError."""
    targets, factors = [[1.0, 2.0], [0.5, -1.0]], [[2.0, 0.0], [1.0, 3.0]]
    x = [[0.0, 1.0], [2.0, 3.0]]
    assert A.mse(x, asarray(targets)) == A.mse(x, targets)
    assert asarray(A.scale(asarray(x), asarray(factors))).data == asarray(A.scale(asarray(x), factors)).data
    mse_grad = tape.grad(lambda p: A.mse(p, asarray(targets)), arrays=True)
    assert mse_grad(x) == tape.grad(lambda p: A.mse(p, targets), arrays=True)(x)
    scale_grad = tape.grad(lambda p: A.sum(A.scale(p, asarray(factors))), arrays=True)
    assert scale_grad(x) == factors
    assert tape.jit(mse_grad)(x) == mse_grad(x) and tape.jit(scale_grad)(x) == scale_grad(x)
    with pytest.raises(TypeError, match="mse: the targets hold Values; targets are constants"):
        tape.grad(lambda p: A.mse(p, p), arrays=True)(x)
    with pytest.raises(TypeError, match="scale: the factors hold Values; factors are constants"):
        tape.grad(lambda p: A.sum(A.scale(p, p)), arrays=True)(x)
    # an untracked Array argument is traced under jit: refused there, as its numbers would be frozen
    with_targets = tape.grad(lambda p, t: A.mse(p, t), arrays=True)
    assert with_targets(x, asarray(targets)) == mse_grad(x)
    with pytest.raises(TypeError, match=r"mse: the targets are an untracked Array argument, which tape\.jit"):
        tape.jit(with_targets)(x, asarray(targets))
    assert tape.jit(with_targets)(x, targets) == mse_grad(x)  # nested floats, read from the inputs
    with pytest.raises(TypeError, match="scale: the factors are an untracked Array argument"):
        tape.jit(lambda p, f: A.sum(A.scale(p, f)))(asarray(x), asarray(factors))
