"""The N-d Array core: nested data, its flat view, untracked Arrays, and watching arrays of any depth."""

from __future__ import annotations

import math
import pickle
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import tape
from tape import arrays as A
from tape.array import (
    Array,
    apply_array_op,
    array_op,
    asarray,
    flatten,
    nest,
    nest_lists,
    shape_of,
)

Shape = tuple[int, ...]

shapes = st.lists(st.integers(1, 3), min_size=1, max_size=4).map(tuple)


def _exp_forward(x: Any) -> Any:
    return nest([math.exp(v) for v in flatten(x)], shape_of(x))


def _exp_vjp(g: Any, y: Any, x: Any) -> tuple[list[float]]:
    return ([a * b for a, b in zip(flatten(g), flatten(y), strict=True)],)


def _exp_jvp(y: Any, args: tuple[Any, ...], tangents: tuple[Any, ...]) -> Any:
    return nest([a * b for a, b in zip(flatten(tangents[0]), flatten(y), strict=True)], shape_of(y))


def _total_forward(x: Any, *, weights: tuple[int, ...] = ()) -> float:
    flat = flatten(x)
    return math.fsum(v * (weights[i % len(weights)] if weights else 1) for i, v in enumerate(flat))


def _total_vjp(g: float, y: float, x: Any, *, weights: tuple[int, ...] = ()) -> tuple[list[float]]:
    n = len(flatten(x))
    return ([g * (weights[i % len(weights)] if weights else 1) for i in range(n)],)


def _total_jvp(
    y: float, args: tuple[Any, ...], tangents: tuple[Any, ...], *, weights: tuple[int, ...] = ()
) -> float:
    return _total_forward(tangents[0], weights=weights)


EXP = array_op("test_nd_exp", _exp_forward, _exp_vjp, _exp_jvp, builtin=False)
TOTAL = array_op("test_nd_total", _total_forward, _total_vjp, _total_jvp, builtin=False)


def _data(shape: Shape, start: float = 0.1) -> Any:
    n = math.prod(shape)
    return nest([start + 0.05 * i for i in range(n)], shape)


@given(shapes)
def test_flatten_and_nest_are_inverse(shape: Shape) -> None:
    flat = [float(i) for i in range(math.prod(shape))]
    nested = nest(flat, shape)
    assert shape_of(nested) == shape
    assert flatten(nested) == flat
    assert nest_lists(flat, shape) == asarray(nested).tolist()


@pytest.mark.parametrize("shape", [(0,), (2, 0), (3, 0, 2)])
def test_empty_axes_keep_their_shape(shape: Shape) -> None:
    assert shape_of(nest([], shape)) == shape[: shape.index(0) + 1]


def test_an_array_reports_its_shape_and_converts() -> None:
    a = asarray([[[1.0, 2.0, 3.0]], [[4.0, 5.0, 6.0]]])
    assert (a.shape, a.ndim, a.size, len(a)) == ((2, 1, 3), 3, 6, 2)
    assert a.tolist() == [[[1.0, 2.0, 3.0]], [[4.0, 5.0, 6.0]]]
    assert float(asarray([[2.5]])) == 2.5
    assert asarray(2.0).shape == () and float(asarray(2.0)) == 2.0
    with pytest.raises(TypeError, match=r"exactly one element, not shape \(2, 1, 3\)"):
        float(a)
    assert "untracked" in repr(a)
    assert pickle.loads(pickle.dumps(a.data)) == a.data


def test_an_array_has_no_truth_value_and_a_0d_array_no_length() -> None:
    """``if mask:`` is an error, not always true (one element too: use float); len needs an axis."""
    for a in (asarray([0.0, 0.0]), asarray([1.0, 2.0]) > 5.0, asarray([[0.0]]), asarray(0.0)):
        with pytest.raises(
            TypeError, match=r"the truth value of an Array .* is ambiguous: use tape.arrays.where"
        ):
            bool(a)
    with pytest.raises(TypeError, match=r"len\(\) of a 0-d Array"):
        len(asarray(2.0))
    assert len(asarray([[1.0], [2.0]])) == 2 and len(asarray([])) == 0


@pytest.mark.parametrize(
    ("bad", "error", "message"),
    [
        ([[1.0], [2.0, 3.0]], ValueError, r"ragged: \[1\] has 2 entries but \[0\] has 1"),
        (
            [[[1.0, 2.0]], [[1.0]]],
            ValueError,
            r"ragged: \[1\] has shape \(1, 1\) but \[0\] has shape \(1, 2\)",
        ),
        ([[1.0], 2.0], TypeError, r"element \[1\] is float"),
        ([[1.0, "x"]], TypeError, r"must be a float"),
        ([[None]], TypeError, r"NoneType"),
    ],
)
def test_asarray_names_what_is_wrong(bad: object, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        asarray(bad)


def test_ops_on_untracked_arrays_give_untracked_arrays_and_on_sequences_plain_data() -> None:
    x = _data((2, 2, 2))
    plain = EXP(x)
    assert isinstance(plain, tuple) and shape_of(plain) == (2, 2, 2)
    lifted = EXP(asarray(x))
    assert isinstance(lifted, Array) and lifted.tape is None and lifted.data == plain
    assert TOTAL(asarray(x)) == _total_forward(x)
    relu = A.relu(asarray([[1.0, -1.0]]))
    assert isinstance(relu, Array) and relu.data == ((1.0, 0.0),)


@given(shapes)
def test_grad_watches_arrays_of_any_depth_in_their_containers(shape: Shape) -> None:
    x = nest_lists(flatten(_data(shape)), shape)
    gradient = tape.grad(lambda x: TOTAL(EXP(x)), arrays=True)(x)
    assert isinstance(gradient, list)
    assert shape_of(gradient) == shape
    expected = [math.exp(v) for v in flatten(x)]
    assert flatten(gradient) == pytest.approx(expected, rel=1e-12)


def test_forward_mode_and_jit_agree_with_the_reverse_tape() -> None:
    x = _data((2, 1, 3))
    direction = nest([1.0] * 6, (2, 1, 3))
    value, tangent = tape.jvp(lambda x: TOTAL(EXP(x)), (x,), (direction,), arrays=True)
    gradient = tape.grad(lambda x: TOTAL(EXP(x)), arrays=True)(x)
    assert value == TOTAL(EXP(x))
    assert tangent == pytest.approx(math.fsum(flatten(gradient)), rel=1e-12)
    compiled = tape.jit(tape.value_and_grad(lambda x: TOTAL(EXP(x)), arrays=True))
    matrix = _data((2, 3))
    assert compiled(matrix) == tape.value_and_grad(lambda x: TOTAL(EXP(x)), arrays=True)(matrix)


def test_keyword_parameters_reach_every_rule() -> None:
    x = [[1.0, 2.0], [3.0, 4.0]]

    def f(x: Any) -> Any:
        return TOTAL(x, weights=(1, 2))

    assert f(x) == 1.0 + 4.0 + 3.0 + 8.0
    assert tape.grad(f, arrays=True)(x) == [[1.0, 2.0], [1.0, 2.0]]
    assert tape.jvp(f, (x,), (x,), arrays=True)[1] == f(x)
    assert tape.jit(tape.grad(f, arrays=True))(x) == [[1.0, 2.0], [1.0, 2.0]]


def test_a_value_operand_is_tracked_by_an_array_op() -> None:
    scaled = array_op(
        "test_nd_scaled",
        lambda x, s: nest([v * s for v in flatten(x)], shape_of(x)),
        lambda g, y, x, s: (
            [a * s for a in flatten(g)],
            math.fsum(a * b for a, b in zip(flatten(g), flatten(x), strict=True)),
        ),
        lambda y, args, ts: None,
        builtin=False,
    )
    x = [[1.0, 2.0]]
    gx, gs = tape.grad(lambda x, s: TOTAL(scaled(x, s)), argnums=(0, 1), arrays=True)(x, 3.0)
    assert (gx, gs) == ([[3.0, 3.0]], 3.0)


def test_operands_of_two_tapes_are_refused() -> None:
    with tape.Tape() as outer:
        a = outer.watch_array([1.0, 2.0])
        with tape.Tape() as inner:
            b = inner.watch_array([1.0, 2.0])
            with pytest.raises(tape.TapeError, match="test_nd_total: its operands belong to different tapes"):
                apply_array_op(TOTAL, a, b)


def test_a_sequence_of_values_is_a_clear_type_error() -> None:
    with tape.Tape() as t:
        v = t.watch(1.0)
        with pytest.raises(TypeError, match="test_nd_exp: argument 0 is a sequence holding Values"):
            EXP([v, v])


def test_jit_replays_new_values_of_a_list_of_equal_masks() -> None:
    """A list of equal-shape matrices (dropout masks) is read from the inputs on every call."""

    def f(w: Any, masks: Any) -> Any:
        hidden = A.relu(A.linear(w, None, [[1.0, 2.0], [3.0, 4.0]]))
        return A.mean(A.scale(hidden, masks[0]))

    interpreted = tape.value_and_grad(f, arrays=True)
    compiled = tape.jit(interpreted, arrays=True)
    w = [[0.5, -0.25], [0.1, 0.2]]
    for masks in ([[[1.0, 0.0], [2.0, 2.0]]], [[[0.0, 2.0], [2.0, 0.0]]]):
        assert compiled(w, masks) == interpreted(w, masks)


def test_tape_gradient_of_an_array_source_is_nested_tuples_of_its_shape() -> None:
    with tape.Tape() as t:
        x = t.watch_array([[[1.0, 2.0]], [[3.0, 4.0]]])
        unused = t.watch_array([[[0.0]]])
        total = TOTAL(EXP(x))
    gradient, none = t.gradient(total, [x, unused])
    assert shape_of(gradient) == (2, 1, 2) and isinstance(gradient[0][0], tuple)
    assert flatten(gradient) == [math.exp(v) for v in (1.0, 2.0, 3.0, 4.0)]
    assert none == (((0.0,),),)
