"""``tape.jit`` on N-d arrays: inputs of any depth, rule-defined ops, int inputs and parameters.

The ops here are small demo ops defined with :func:`tape.define` over the N-d
kernels, as a user's own op would be (compiled through calls of their rules);
every compiled result is compared with the interpreted tape bit for bit.
"""

from __future__ import annotations

import math
from itertools import chain
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pyrsistent import pvector

import tape
from tape import arrays as A
from tape import jit
from tape.array import Data, asarray, flatten, nest, shape_of
from tape.kernels.indexing import take, take_vjp
from tape.kernels.reduce import sum_axes, sum_axes_vjp
from tape.testing import array_shapes, float_arrays
from tests.tape.test_jit import assert_same

# --- demo ops ------------------------------------------------------------------------------------


def _exp(x: Data) -> Data:
    return nest([math.exp(v) for v in flatten(x)], shape_of(x))  # type: ignore[no-any-return]


def _exp_vjp(g: Any, value: Data, x: Data) -> tuple[object]:
    return ([a * b for a, b in zip(flatten(g), flatten(value), strict=True)],)


def _exp_jvp(value: Data, args: tuple[Data], tangents: tuple[Any]) -> object:
    (t,) = tangents
    if t is None:
        return None
    return nest([a * b for a, b in zip(flatten(t), flatten(value), strict=True)], shape_of(value))


def _total(x: Data) -> float:
    return math.fsum(flatten(x))


def _total_vjp(g: float, value: float, x: Data) -> tuple[object]:
    return ([g] * len(flatten(x)),)


def _total_jvp(value: float, args: tuple[Data], tangents: tuple[Any]) -> object:
    (t,) = tangents
    return 0.0 if t is None else math.fsum(flatten(t))


def _sum_axis(x: Data, *, axis: int | tuple[int, ...]) -> Data:
    out, shape = sum_axes(flatten(x), shape_of(x), axis)
    return nest(out, shape)  # type: ignore[no-any-return]


def _sum_axis_vjp(g: Any, value: Data, x: Data, *, axis: int | tuple[int, ...]) -> tuple[object]:
    return (sum_axes_vjp(flatten(g), shape_of(x), axis),)


def _sum_axis_jvp(value: Data, args: tuple[Data], tangents: tuple[Any], *, axis: int) -> object:
    (t,) = tangents
    return None if t is None else _sum_axis(t, axis=axis)


def _take(table: Data, *, indices: Any, axis: int = 0) -> Data:
    flat = flatten(indices)
    out, shape = take(flatten(table), shape_of(table), flat, axis, shape_of(indices))
    return nest(out, shape)  # type: ignore[no-any-return]


def _take_vjp(g: Any, value: Data, table: Data, *, indices: Any, axis: int = 0) -> tuple[object]:
    return (take_vjp(flatten(g), shape_of(table), flatten(indices), axis),)


def _take_jvp(value: Data, args: tuple[Data], tangents: tuple[Any], *, indices: Any, axis: int = 0) -> object:
    (t,) = tangents
    return None if t is None else _take(t, indices=indices, axis=axis)


def _mul(x: Data, y: Data) -> Data:
    return nest([a * b for a, b in zip(flatten(x), flatten(y), strict=True)], shape_of(x))  # type: ignore[no-any-return]


def _mul_vjp(g: Any, value: Data, x: Data, y: Data) -> tuple[object, object]:
    flat = flatten(g)
    return (
        [a * b for a, b in zip(flat, flatten(y), strict=True)],
        [a * b for a, b in zip(flat, flatten(x), strict=True)],
    )


def _mul_jvp(value: Data, args: tuple[Data, Data], tangents: tuple[Any, Any]) -> object:
    x, y = args
    tx, ty = tangents
    parts = [_mul(tx, y)] if tx is not None else []
    parts += [_mul(x, ty)] if ty is not None else []
    if not parts:
        return None
    flat = [math.fsum(items) for items in zip(*map(flatten, parts), strict=True)]
    return nest(flat, shape_of(value))


EXP = tape.define("demo_nd_exp", _exp, vjp=_exp_vjp, jvp=_exp_jvp)
TOTAL = tape.define("demo_nd_total", _total, vjp=_total_vjp, jvp=_total_jvp)
SUM_AXIS = tape.define("demo_nd_sum_axis", _sum_axis, vjp=_sum_axis_vjp, jvp=_sum_axis_jvp)
TAKE = tape.define("demo_nd_take", _take, vjp=_take_vjp, jvp=_take_jvp)
MUL = tape.define("demo_nd_mul", _mul, vjp=_mul_vjp, jvp=_mul_jvp)


def mul(x: object, y: object) -> Any:
    return MUL(x, y)


def exp(x: object) -> Any:
    return EXP(x)


def total(x: object) -> Any:
    return TOTAL(x)


def sum_axis(x: object, axis: int | tuple[int, ...]) -> Any:
    return SUM_AXIS(x, axis=axis)


def lookup(table: object, indices: Any, axis: int = 0) -> Any:
    return TAKE(table, indices=indices, axis=axis)


def _scaled(data: Any, k: float) -> Any:
    """``data`` (nested sequences) with every float times ``k``, in the same containers."""
    if isinstance(data, float):
        return data * k
    items = [_scaled(x, k) for x in data]
    return (
        items if isinstance(data, list) else (pvector(items) if not isinstance(data, tuple) else tuple(items))
    )


CUBE = [[[0.1, -0.2, 0.3], [0.4, 0.5, -0.6]], [[0.7, 0.8, 0.9], [-1.0, 1.1, 1.2]]]
TABLE = [[0.5, -0.25], [1.0, 2.0], [-1.5, 0.75], [0.125, 3.0]]


# --- inputs of any depth ----------------------------------------------------------------------------


def _exp_loss(x: Any) -> Any:
    return total(exp(x))


@pytest.mark.parametrize("container", [list, tuple, pvector])
def test_a_3d_argument_is_one_input_array(container: Any) -> None:
    def convert(x: Any) -> Any:
        return container(convert(item) for item in x) if isinstance(x, list) else x

    interpreted = tape.value_and_grad(_exp_loss, arrays=True)
    jitted = jit(interpreted)
    for x in (convert(CUBE), convert(_scaled(CUBE, -0.5))):
        assert_same(jitted(x), interpreted(x))  # gradients in the argument's own containers
    assert jitted.traces == 1 and jitted.compiled(convert(CUBE)).nodes == 3  # leaf, exp, total
    plain = jit(_exp_loss, arrays=True)
    assert plain(convert(CUBE)) == _exp_loss(CUBE)


@given(float_arrays(array_shapes(1, 4, max_side=3), lists=True))
def test_any_shape_replays_bit_for_bit(x: Any) -> None:
    interpreted = tape.value_and_grad(lambda a: total(exp(sum_axis(a, -1))), arrays=True)
    jitted = jit(interpreted)
    for arg in (x, _scaled(x, 0.5)):
        assert_same(jitted(arg), interpreted(arg))
    assert jitted.traces == 1


def test_shapes_agreeing_on_their_first_axes_are_different_structures() -> None:
    jitted = jit(tape.grad(_exp_loss, arrays=True))
    small = [[[0.1, 0.2], [0.3, 0.4]]]
    wide = [[[0.1, 0.2, 0.3], [0.3, 0.4, 0.5]]]
    assert_same(jitted(small), tape.grad(_exp_loss, arrays=True)(small))
    assert_same(jitted(wide), tape.grad(_exp_loss, arrays=True)(wide))
    assert jitted.traces == 2


def test_a_4d_argument_used_twice() -> None:
    x = [[CUBE[0], CUBE[1]]]  # shape (1, 2, 2, 3)

    def loss(a: Any) -> Any:
        return total(exp(a)) * total(exp(sum_axis(a, (0, 2))))

    interpreted = tape.value_and_grad(loss, arrays=True)
    jitted = jit(interpreted)
    for arg in (x, _scaled(x, 2.0)):
        assert_same(jitted(arg), interpreted(arg))
    assert jitted.traces == 1


def test_untracked_arrays_are_inputs() -> None:
    def loss(w: Any, data: Any) -> Any:  # ops on data alone are traced too
        return total(exp(sum_axis(w, 0))) + total(exp(data)) * total(w)

    interpreted = tape.value_and_grad(loss, arrays=True)
    jitted = jit(interpreted)
    for k in (1.0, -0.75):
        w, data = asarray(_scaled(CUBE, k)), asarray(_scaled(CUBE, 2.0 * k))
        got, want = jitted(w, data), interpreted(w, data)
        assert got[0] == want[0] and isinstance(got[1], tape.Array)
        assert got[1].data == want[1].data
    assert jitted.traces == 1
    scalar = jit(tape.grad(lambda a: total(exp(a)) * 2.0, arrays=True))
    assert (
        scalar(asarray(CUBE)).data
        == tape.grad(lambda a: total(exp(a)) * 2.0, arrays=True)(asarray(CUBE)).data
    )


def test_data_arguments_of_any_depth_are_read_from_the_inputs() -> None:
    def loss(w: Any, data: Any) -> Any:
        return total(mul(exp(w), data))  # the whole of data, in an op

    def partly(w: Any, data: Any) -> Any:
        return total(mul(sum_axis(w, 0), [data[0][1], data[1][0]]))  # some of data's rows

    for fun in (loss, partly):
        interpreted = tape.value_and_grad(fun, arrays=True)
        jitted = jit(interpreted)
        for k in (1.0, 0.5, -2.0):
            args = (_scaled(CUBE, 0.5), _scaled(CUBE, k))
            assert_same(jitted(*args), interpreted(*args))
        assert jitted.traces == 1


# --- rule-defined ops compile through calls of their rules ---------------------------------------------


def test_a_rule_defined_op_compiles_to_calls_of_its_rules() -> None:
    jitted = jit(tape.value_and_grad(lambda x: total(sum_axis(exp(x), axis=1)), arrays=True))
    source = jitted.source(CUBE)
    assert "demo_nd_exp(" in source and "demo_nd_sum_axis(" in source
    assert "'axis': 1" in source  # a parameter from the code is a constant of the code
    assert "demo_nd_total_vjp(Node(" in source


def test_axis_parameters_are_part_of_the_trace() -> None:
    def loss(x: Any, axis: int) -> Any:
        return total(exp(sum_axis(x, axis)))

    jitted = jit(tape.value_and_grad(loss, arrays=True), static_argnums=1)
    for axis in (0, 1, -1, 0):
        assert_same(jitted(CUBE, axis), tape.value_and_grad(loss, arrays=True)(CUBE, axis))
    assert jitted.traces == 3
    keyword = jit(tape.value_and_grad(loss, arrays=True))  # keyword arguments are static
    for axis in (2, 1, 2):
        assert_same(keyword(CUBE, axis=axis), tape.value_and_grad(loss, arrays=True)(CUBE, axis=axis))
    assert keyword.traces == 2

    def by_shape(x: Any) -> Any:  # a parameter computed from the shape: the shape is in the key
        return total(exp(sum_axis(x, len(x) - 1)))

    shaped = jit(tape.value_and_grad(by_shape, arrays=True))
    for x in (CUBE, CUBE[0], CUBE[0][:1]):
        assert_same(shaped(x), tape.value_and_grad(by_shape, arrays=True)(x))
    assert shaped.traces == 3


# --- int inputs: tokens and labels --------------------------------------------------------------------


def _embed_loss(table: Any, tokens: Any) -> Any:
    return total(exp(lookup(table, tuple(tokens))))


@pytest.mark.parametrize("kind", [list, tuple])
def test_new_tokens_each_step_replay_one_compiled_function(kind: Any) -> None:
    interpreted = tape.value_and_grad(_embed_loss, arrays=True)
    jitted = jit(interpreted)
    for tokens in (kind([0, 2, 2]), kind([3, 1, 0]), kind([1, 1, 1])):
        assert_same(jitted(TABLE, tokens), interpreted(TABLE, tokens))
    assert jitted.traces == 1 and jitted.cache_size == 1
    with pytest.raises(ValueError, match="take"):
        jitted(TABLE, kind([0, 9, 1]))  # the op's own check runs at every call


def test_a_token_matrix_is_one_int_input() -> None:
    def nested(table: Any, tokens: Any) -> Any:  # indices of shape (batch, time)
        return total(exp(lookup(table, tuple(map(tuple, tokens)))))

    def flat(table: Any, tokens: Any) -> Any:  # the same ids flattened, and the targets shifted by one
        ids = tuple(chain.from_iterable(tokens))
        return total(exp(lookup(table, ids))) + total(lookup(table, ids[1:]))

    def rows(table: Any, tokens: Any) -> Any:  # one row at a time
        return sum((total(exp(lookup(table, tuple(row)))) for row in tokens), start=0.0)

    for fun in (nested, flat, rows):
        interpreted = tape.value_and_grad(fun, arrays=True)
        jitted = jit(interpreted)
        for tokens in ([[0, 1, 2], [3, 3, 0]], [[2, 2, 1], [0, 1, 3]], ((1, 0, 0), (2, 3, 1))):
            assert_same(jitted(TABLE, tokens), interpreted(TABLE, tokens))
        assert jitted.traces == 1 and jitted.cache_size == 1, fun.__name__


def test_an_int_parameter_equal_to_an_int_input_is_not_read_from_it() -> None:
    def loss(x: Any, labels: Any) -> Any:
        picked = lookup(x, tuple(labels))
        return total(exp(sum_axis(x, axis=(0, 1)))) + total(picked)  # the axes equal the first labels

    interpreted = tape.value_and_grad(loss, arrays=True)
    jitted = jit(interpreted)
    for labels in ([0, 1], [1, 0], [1, 1]):
        assert_same(jitted(CUBE, labels), interpreted(CUBE, labels))
    assert jitted.traces == 1
    assert "'axis': (0, 1)" in jitted.source(CUBE, [0, 1])


def test_ints_frozen_into_the_code_key_the_cache() -> None:
    def listed(table: Any, tokens: Any) -> Any:  # a list parameter is a constant of the code
        return total(exp(lookup(table, [tokens[0]] * 2)))

    def scaled(table: Any, tokens: Any) -> Any:  # an int in scalar arithmetic
        return total(exp(table)) * tokens[1]

    for fun in (listed, scaled):
        interpreted = tape.value_and_grad(fun, arrays=True)
        jitted = jit(interpreted)
        for tokens in ([0, 2], [3, 1], [0, 2]):
            assert_same(jitted(TABLE, tokens), interpreted(TABLE, tokens))
        assert jitted.traces == 2, fun.__name__


def test_a_single_int_of_an_input_is_read_from_it() -> None:
    def loss(table: Any, tokens: Any) -> Any:
        return total(exp(lookup(table, (tokens[1], 0, tokens[0]))))

    interpreted = tape.value_and_grad(loss, arrays=True)
    jitted = jit(interpreted)
    for tokens in ([0, 2], [3, 1]):
        assert_same(jitted(TABLE, tokens), interpreted(TABLE, tokens))
    assert jitted.traces == 1


@given(
    st.lists(st.integers(0, 3), min_size=1, max_size=5), st.lists(st.integers(0, 3), min_size=1, max_size=5)
)
def test_tokens_of_drawn_values(first: list[int], second: list[int]) -> None:
    interpreted = tape.value_and_grad(_embed_loss, arrays=True)
    jitted = jit(interpreted)
    for tokens in (first, second[: len(first)] + first[len(second) :]):
        assert_same(jitted(TABLE, tokens), interpreted(TABLE, tokens))
    assert jitted.traces == 1


def test_an_int_of_an_input_returned_as_aux_is_read_from_it() -> None:
    def loss(table: Any, tokens: Any) -> Any:
        return total(exp(lookup(table, tuple(tokens)))), {"first": tokens[0], "count": len(tokens)}

    interpreted = tape.value_and_grad(loss, has_aux=True, arrays=True)
    jitted = jit(interpreted)
    for tokens in ([2, 0], [1, 3]):
        got = jitted(TABLE, tokens)
        assert_same(got, interpreted(TABLE, tokens))
        assert type(got[0][1]["first"]) is int
    assert jitted.traces == 1


# --- the library's N-d ops -------------------------------------------------------------------------


def _attention_like(x: Any, w: Any, labels: Any) -> Any:
    """Softmax of ``x @ w`` over a batch, through ``w`` again and a layer norm; a cross-entropy on labels."""
    scores = A.matmul(x, w)  # (batch, time, features) @ (features, features)
    mixed = A.layer_norm(A.matmul(A.softmax(scores, axis=-1), w))
    logits: Any = A.sum(mixed, axis=1)  # (batch, features): one row of logits per example
    spread = A.sum(A.logsumexp(A.sum(scores, axis=(0, 1)), axis=0))
    return A.cross_entropy_with_logits(logits, labels) + A.mean(A.max(mixed, axis=0)) * spread


@given(
    float_arrays((2, 3, 2), lists=True),
    float_arrays((2, 2)),
    st.lists(st.integers(0, 1), min_size=2, max_size=2),
    st.lists(st.integers(0, 1), min_size=2, max_size=2),
)
def test_library_ops_on_3d_inputs_replay_bit_for_bit(
    x: Any, w: Any, first: list[int], second: list[int]
) -> None:
    interpreted = tape.value_and_grad(_attention_like, argnums=(0, 1), arrays=True)
    jitted = jit(interpreted)
    for args in ((x, w, first), (_scaled(x, -0.5), _scaled(w, 2.0), second)):
        assert_same(jitted(*args), interpreted(*args))
    assert jitted.traces == 1  # new floats and new labels replay the same code


@given(float_arrays(array_shapes(1, 4, max_side=3)), st.integers(-1, 0), st.booleans())
def test_library_reductions_of_any_shape_replay_bit_for_bit(x: Any, axis: int, keepdims: bool) -> None:
    def loss(a: Any) -> Any:
        reduced = A.sum(A.softmax(a, axis=axis), axis=axis, keepdims=keepdims)
        return A.sum(A.log_softmax(a)) + A.mean(A.min(a, axis=0)) * A.sum(reduced)

    interpreted = tape.value_and_grad(loss, arrays=True)
    jitted = jit(interpreted)
    for arg in (x, _scaled(x, 3.0)):
        assert_same(jitted(arg), interpreted(arg))
    assert jitted.traces == 1
    assert f"'axis': {axis}" in jitted.source(x)  # the code's own parameters are constants


def test_library_axes_equal_to_the_labels_stay_constants() -> None:
    def loss(x: Any, labels: Any) -> Any:
        rows: Any = A.sum(A.softmax(x, axis=-1), axis=1)  # (batch, classes)
        return A.cross_entropy_with_logits(rows, labels) + A.sum(A.sum(x, axis=(0, 1)))

    interpreted = tape.value_and_grad(loss, arrays=True)
    jitted = jit(interpreted)
    for labels in ([0, 1], [1, 0], [1, 1]):  # the first labels equal the axes (0, 1)
        assert_same(jitted(CUBE, labels), interpreted(CUBE, labels))
    assert jitted.traces == 1 and "'axis': (0, 1)" in jitted.source(CUBE, [0, 1])


def test_a_token_matrix_as_targets_replays_one_function() -> None:
    def loss(x: Any, tokens: Any) -> Any:  # a row of logits per (batch, time) position, against its token
        logits = A.log_softmax(x, axis=-1)  # (batch * time, 2)
        return A.cross_entropy_with_logits(logits, tuple(chain.from_iterable(tokens)))

    interpreted = tape.value_and_grad(loss, arrays=True)
    jitted = jit(interpreted)
    x = [[0.1, -0.2], [0.3, 0.4], [0.5, -0.6], [0.7, 0.8], [0.9, -1.0], [1.1, 1.2]]
    for tokens in ([[0, 1, 1], [1, 0, 0]], [[1, 1, 1], [0, 0, 1]]):
        assert_same(jitted(x, tokens), interpreted(x, tokens))
    assert jitted.traces == 1 and jitted.cache_size == 1
    assert "class_targets(x1" in jitted.source(x, [[0, 1, 1], [1, 0, 0]])  # the flat ids of the matrix
