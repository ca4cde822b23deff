"""``tape.jit``: compiled replays equal the interpreted tape bit for bit, and the cache behaves."""

from __future__ import annotations

import functools
import gc
import math
import re
import struct
import sys
from collections.abc import Callable, Sequence
from typing import Any, cast

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from pyrsistent import PMap, pmap, pvector

import tape
from tape import REGISTRY, TracingError, jit
from tape import arrays as A
from tape.core.op import LINE_WIDTH, joined
from tape.kernels.written import SUM_ADDS_IN_ORDER
from tape.testing import scalars
from tape.tree import tree_flatten
from tests.tape.test_arrays import ARRAY_CASES, _params
from tests.tape.test_ops import GRADIENT_CASES


def _bits(x: object) -> object:
    if isinstance(x, float):
        return "nan" if math.isnan(x) else struct.pack("<d", x)
    return x


def assert_same(got: object, want: object) -> None:
    """Equal trees with equal container types, floats equal bit for bit (any nan equals any nan)."""
    got_leaves, got_def = tree_flatten(got)
    want_leaves, want_def = tree_flatten(want)
    assert got_def == want_def, (got, want)
    assert [type(x) for x in got_leaves] == [type(x) for x in want_leaves], (got, want)
    assert [_bits(x) for x in got_leaves] == [_bits(x) for x in want_leaves], (got, want)


SCALAR_CASES = sorted(GRADIENT_CASES)
ARRAY_NAMES = sorted(ARRAY_CASES)


def _rule_defined(op: tape.Op) -> bool:
    """Whether ``op`` was defined by its forward/vjp/jvp rules (compiled through calls of them)."""
    return getattr(op.vjp, "__qualname__", "").startswith("custom_vjp.")


def test_every_library_op_has_an_emit_rule() -> None:
    library = [
        op
        for op in REGISTRY.values()
        if op.builtin and not getattr(op.forward, "__module__", "").startswith("tests.")  # not a test's op
    ]
    emitted = [op for op in library if not _rule_defined(op)]  # the N-d ops of array_op may have none
    assert {op.name for op in emitted} == set(GRADIENT_CASES) | set(ARRAY_CASES)
    assert all(callable(op.emit) for op in emitted)


# --- every op, against the interpreter, on two calls (trace, then replay) -------------------


@pytest.mark.parametrize("name", SCALAR_CASES)
def test_scalar_op_replays_bit_for_bit(name: str) -> None:
    case, strategies = GRADIENT_CASES[name]
    fun: Callable[..., Any] = case
    argnums = tuple(range(len(strategies)))
    plain = jit(fun)
    both = jit(tape.value_and_grad(fun, argnums))
    only = jit(tape.grad(fun, argnums))

    @given(st.tuples(*strategies), st.tuples(*strategies))
    def check(first: tuple[float, ...], second: tuple[float, ...]) -> None:
        for args in (first, second):
            assert_same(plain(*args), fun(*args))
            assert_same(both(*args), tape.value_and_grad(fun, argnums)(*args))
            assert_same(only(*args), tape.grad(fun, argnums)(*args))

    check()
    assert plain.traces == both.traces == only.traces == 1


@pytest.mark.parametrize("name", ARRAY_NAMES)
def test_array_op_replays_bit_for_bit(name: str) -> None:
    fun: Callable[..., Any] = ARRAY_CASES[name]
    fast = jit(tape.value_and_grad(fun, arrays=True))
    slow = jit(tape.value_and_grad(fun))
    forward = jit(fun, arrays=True)

    @given(_params(), _params())
    def check(first: PMap[str, object], second: PMap[str, object]) -> None:
        for params in (first, second):
            assert_same(fast(params), tape.value_and_grad(fun, arrays=True)(params))
            assert_same(slow(params), tape.value_and_grad(fun)(params))  # logits of Values too
            want = tape.value_and_grad(fun, arrays=True)(params)[0]
            got = forward(params)
            assert _bits(float(got)) == _bits(want)

    check()
    assert fast.traces == forward.traces == slow.traces == 1


# --- random programs over every scalar op ------------------------------------------------------

Program = list[tuple[str, tuple[int, ...]]]


@st.composite
def programs(draw: st.DrawFn, inputs: int = 3) -> Program:
    steps: Program = []
    for step in range(draw(st.integers(1, 12))):
        name = draw(st.sampled_from(SCALAR_CASES))
        arity = len(GRADIENT_CASES[name][1])
        steps.append((name, tuple(draw(st.integers(0, inputs + step - 1)) for _ in range(arity))))
    return steps


def run(program: Program, xs: Sequence[Any]) -> Any:
    values = list(xs)
    for name, picks in program:
        args = [values[k] for k in picks]
        if name == "pow":  # a negative base gives a complex number, 0 ** -1 a Python error on floats
            args[0] = abs(args[0]) + 0.25
        values.append(GRADIENT_CASES[name][0](*args))
    return tape.vsum(values[len(xs) :]) if len(values) > len(xs) else values[0]


@given(
    programs(),
    st.lists(scalars(-3.0, 3.0), min_size=3, max_size=3),
    st.lists(scalars(-3.0, 3.0), min_size=3, max_size=3),
)
@example([("abs", (0,)), ("relu", (0,)), ("abs", (0,)), ("pow", (4, 0))], [1.0, 1.0, 1.0], [-1.0, 1.0, 1.0])
@example([("abs", (0,)), ("abs", (0,)), ("relu", (0,)), ("div", (0, 5))], [1.0, 1.0, 1.0], [-1.0, 1.0, 1.0])
def test_random_programs_replay_bit_for_bit(
    program: Program, first: list[float], second: list[float]
) -> None:
    def f(x: float, y: float, z: float) -> Any:
        return run(program, (x, y, z))

    def f_aux(x: float, y: float, z: float) -> Any:
        out = run(program, (x, y, z))
        return out, {"out": out, "x": x}

    pairs = [
        (jit(f), f),
        (jit(tape.value_and_grad(f, (0, 1, 2))), tape.value_and_grad(f, (0, 1, 2))),
        (
            jit(tape.value_and_grad(f_aux, (2, 0), has_aux=True)),
            tape.value_and_grad(f_aux, (2, 0), has_aux=True),
        ),
    ]
    for args in (first, second):
        for jitted, interpreted in pairs:
            try:
                want = interpreted(*args)
            except ZeroDivisionError:  # plain floats follow Python, not the tape's IEEE rules: no reference
                continue
            except (TypeError, ValueError) as error:  # the interpreter's own error: jit raises it too
                with pytest.raises(type(error)):
                    jitted(*args)
                continue
            assert_same(jitted(*args), want)
    assert all(jitted.traces <= 2 for jitted, _ in pairs)


SMOOTH = [n for n in SCALAR_CASES if n not in ("relu", "abs", "leaky_relu", "softplus")]
"""The ops whose derivative rules do not branch on their input (softplus's does, for stability)."""


ZERO_SIGNS: list[Callable[[Any, Any], Any]] = [
    lambda x, y: x * -0.0 + x * -0.0,  # two -0.0 terms: the interpreter's adjoint starts at +0.0
    lambda x, y: (x * -0.0 + y) + (x * -0.0 + y),  # the same through adjoints that alias their consumer's
    lambda x, y: (x + y) * -0.0,  # a -0.0 adjoint passed on by an add, unchanged
    lambda x, y: tape.relu(x * -1.0) * y + x,  # an add's alias then a tested (branching) partial
    lambda x, y: x * x * 0.0 + y * -1.0,  # the same parent twice in one product
]


@pytest.mark.parametrize("fun", ZERO_SIGNS)
@given(
    st.sampled_from([0.0, -0.0, 1.5, -2.0, math.inf, -math.inf, math.nan]),
    st.sampled_from([0.0, -0.0, 3.0, math.inf, math.nan]),
)
def test_zero_adjoints_keep_the_interpreters_sign(fun: Callable[[Any, Any], Any], x: float, y: float) -> None:
    """First contributions start the adjoint (no ``0.0 +``) and adds alias it: the signs still match."""
    jitted = jit(tape.value_and_grad(fun, (0, 1)))
    assert_same(jitted(x, y), tape.value_and_grad(fun, (0, 1))(x, y))
    assert_same(jitted(y, x), tape.value_and_grad(fun, (0, 1))(y, x))


@given(st.sampled_from(SMOOTH), st.lists(scalars(0.3, 2.0, kinks=()), min_size=8, max_size=8))
def test_jvp_replays_bit_for_bit(name: str, numbers: list[float]) -> None:
    fun, strategies = GRADIENT_CASES[name]
    n = len(strategies)

    def push(*xs: Any) -> Any:
        return tape.jvp(fun, tuple(xs[:n]), tuple(xs[n:]))

    jitted = jit(push)
    for args in (numbers[: 2 * n], numbers[-2 * n :]):
        assert_same(jitted(*args), push(*args))
    assert jitted.traces == 1


@pytest.mark.parametrize("op", [tape.relu, tape.softplus])
def test_jvp_of_a_branching_derivative_is_refused(op: Callable[[Any], Any]) -> None:
    with pytest.raises(TracingError, match="tape\\.jit is tracing"):
        jit(lambda x, t: tape.jvp(op, (x,), (t,)))(1.0, 1.0)


@pytest.mark.parametrize(
    ("point", "tangent"),
    [
        ((-3.0, 2.0), (1.0, 0.0)),
        ((2.0, 2.0), (1.0, 1.0)),
        ((2.0, 3.0), (0.0, 0.0)),
        ((-2.0, 3.0), (0.0, 1.0)),
        ((0.0, 2.0), (0.0, 1.0)),  # 0 ** y: its partial in y is 0, not log(0) * 0
        ((0.0, 2.0), (1.0, 1.0)),
        ((0.0, 0.5), (1.0, -1.0)),
    ],
)
def test_jvp_skips_a_zero_tangent_as_the_interpreter_does(
    point: tuple[float, float], tangent: tuple[float, float]
) -> None:
    """A zero tangent times a nan partial (log of a negative base) is no term, not nan, when traced;
    and pow's partial in its exponent at a zero power is 0 when it is a traced Value too."""

    def directional(x: Any, y: Any, tx: Any, ty: Any) -> Any:
        return tape.jvp(lambda a, b: a**b, (x, y), (tx, ty))

    jitted = jit(directional)
    jitted(2.0, 2.0, 1.0, 1.0)
    assert_same(jitted(*point, *tangent), directional(*point, *tangent))
    assert jitted.traces == 1


# --- arrays, has_aux and int labels --------------------------------------------------------------


def _mlp_loss(params: PMap[str, Any], X: Any, labels: Any) -> Any:
    hidden = A.relu(A.linear(params["w1"], params["b1"], X))
    logits = A.linear(params["w2"], params["b2"], hidden)
    loss = A.cross_entropy_with_logits(logits, labels)
    return loss, {"logits": logits, "loss": loss}


PARAMS = pmap(
    {
        "w1": pvector([pvector([0.1, -0.2]), pvector([0.3, 0.4]), pvector([-0.5, 0.2])]),
        "b1": pvector([0.0, 0.1, -0.1]),
        "w2": pvector([pvector([0.2, -0.1, 0.3]), pvector([-0.3, 0.5, 0.1])]),
        "b2": pvector([0.05, -0.05]),
    }
)
X1 = [[1.0, 2.0], [0.5, -1.0], [-0.3, 0.8]]
X2 = [[-1.0, 0.2], [2.5, 1.0], [0.1, -0.9]]


def test_int_labels_are_traced_inputs() -> None:
    interpreted = tape.value_and_grad(_mlp_loss, has_aux=True, arrays=True)
    jitted = jit(interpreted)
    for X, labels in ((X1, [1, 0, 1]), (X2, [0, 1, 1]), (X1, (0, 0, 1))):
        assert_same(jitted(PARAMS, X, labels), interpreted(PARAMS, X, labels))
    assert jitted.traces == 1
    assert "class_targets(x" in jitted.source(PARAMS, X1, [1, 0, 1])  # read from an input
    with pytest.raises(ValueError, match="row 2"):
        jitted(PARAMS, X1, [1, 0, 7])  # checked at every call, as without jit


def test_ints_read_by_python_code_are_static() -> None:
    def loss(w: list[float], label: int) -> Any:
        return w[label] * w[label]

    jitted = jit(tape.grad(loss))
    assert jitted([1.0, 2.0, 3.0], 2) == [0.0, 0.0, 6.0]
    assert jitted([1.0, 2.0, 3.0], 0) == [2.0, 0.0, 0.0]
    assert jitted.traces == 2  # a new int value traces again


def test_data_arguments_are_read_from_the_inputs() -> None:
    def loss(params: PMap[str, Any], X: Any, T: Any) -> Any:
        return A.mse(A.linear(params["w1"], params["b1"], X), T)

    interpreted = tape.value_and_grad(loss, arrays=True)
    jitted = jit(interpreted)
    t1 = [[0.5, 0.0, 1.0]] * 3
    t2 = [[1.5, -1.0, 0.25], [0.0, 2.0, 1.0], [3.0, 1.0, -2.0]]
    for X, T in ((X1, t1), (X2, t2)):
        assert_same(jitted(PARAMS, X, T), interpreted(PARAMS, X, T))
    assert jitted.traces == 1


def test_scalar_data_arguments_are_read_from_the_inputs() -> None:
    def loss(w: float, x: float, y: float) -> Any:
        return (w * x + 1.0 - y) ** 2.0

    jitted = jit(tape.value_and_grad(loss))
    for args in ((0.5, 2.0, 1.0), (-1.5, 0.25, 3.0)):
        assert_same(jitted(*args), tape.value_and_grad(loss)(*args))
    assert jitted.traces == 1


# --- plain floats the function passes to array ops ---------------------------------------------

# ``x`` is differentiated, ``Y`` is not: without jit ``Y`` holds plain floats (a vector, or rows
# for the matrix cases), which array ops take as data and Python arithmetic as floats.
FLOAT_DATA: dict[str, Callable[[Any, Any], Any]] = {
    "sum": lambda x, Y: A.sum(Y) * x + Y[0] * x,
    "mean": lambda x, Y: A.mean(Y) * x,
    "multiply": lambda x, Y: A.sum(A.multiply(Y, x)) + A.sum(A.multiply(Y, Y)),
    "elementwise then sum": lambda x, Y: A.sum(A.leaky_relu(Y, 0.5)) * x,
    "floats computed from them": lambda x, Y: A.sum([Y[0], 2.0, Y[1] * Y[0], 3]) * x,
    "a constant first": lambda x, Y: A.sum([1.0, Y[1]]) * x,
    "tanh then max": lambda x, Y: A.max(A.tanh(Y)) + x,
    "asarray": lambda x, Y: A.sum(A.asarray(Y)) * x,
    "stack": lambda x, Y: A.sum(A.stack([Y, Y])) * x,
}
FLOAT_ROWS: dict[str, Callable[[Any, Any], Any]] = {
    "add": lambda x, Y: A.sum(A.add(Y, Y)) * x,
    "transpose": lambda x, Y: A.sum(A.multiply(A.transpose(Y), x)),
    "reshape": lambda x, Y: A.sum(A.reshape(Y, (4,))) * x,
    "rows of computed floats": lambda x, Y: A.sum([Y[0], [Y[1][0] * Y[0][1], 2.0]]) * x,
    "an Array of them in a list": lambda x, Y: A.sum(A.stack([A.add(Y[0], 1.0), Y[1]])) * x,
}
FLOAT_CALLS = [(1.5, [2.0, -1.0]), (-0.5, [math.inf, 3.0]), (2.0, [0.25, -0.0]), (0.0, [math.nan, 1e308])]


def _rows(Y: list[float]) -> list[list[float]]:
    return [Y, [Y[1], Y[0]]]


@pytest.mark.parametrize("name", sorted(FLOAT_DATA) + sorted(FLOAT_ROWS))
def test_plain_floats_of_an_argument_reach_array_ops_as_inputs(name: str) -> None:
    """Watched as Values (so ``Y[0] * x`` replays), they are one traced input where an array op takes them."""
    fun = FLOAT_DATA.get(name) or FLOAT_ROWS[name]
    shaped: Callable[[list[float]], Any] = (lambda Y: Y) if name in FLOAT_DATA else _rows
    interpreted = tape.value_and_grad(fun)
    jitted, plain = jit(interpreted), jit(fun)
    for x, Y in FLOAT_CALLS:
        assert_same(jitted(x, shaped(Y)), interpreted(x, shaped(Y)))
        assert_same(plain(x, shaped(Y)), fun(x, shaped(Y)))
    assert jitted.traces == plain.traces == 1


@pytest.mark.parametrize("name", sorted(FLOAT_DATA))
def test_plain_float_data_replays_with_new_numbers(name: str) -> None:
    fun = FLOAT_DATA[name]
    interpreted = tape.value_and_grad(fun)
    jitted = jit(interpreted)

    @given(scalars(), st.lists(st.floats(), min_size=2, max_size=2))
    @example(-0.5, [math.inf, 3.0])
    @example(2.0, [math.nan, -0.0])
    def check(x: float, Y: list[float]) -> None:
        assert_same(jitted(x, Y), interpreted(x, Y))

    check()
    assert jitted.traces == 1


@pytest.mark.parametrize(
    "fun",
    [
        lambda x, Y: A.sum([x, x]),  # Values of the differentiated argument: no plain floats
        lambda x, Y: A.sum([Y[0], x]),  # one of them among plain floats
        lambda x, Y: A.sum([Y[0] * x, 1.0]),  # a float computed from one
        lambda x, Y: A.add([Y[0], x * 2.0], Y),
        lambda x, Y: A.transpose([[x, Y[0]]]),
        lambda x, Y: A.mean([Y[0], x], axis=0),
        lambda x, Y: A.asarray([Y[1], x]),
    ],
)
def test_a_sequence_holding_values_is_the_interpreters_type_error(fun: Callable[[Any, Any], Any]) -> None:
    with pytest.raises(TypeError) as interpreted:
        tape.value_and_grad(fun)(1.5, [2.0, -1.0])
    with pytest.raises(TypeError) as jitted:
        jit(tape.value_and_grad(fun))(1.5, [2.0, -1.0])
    assert str(jitted.value) == str(interpreted.value)
    assert "holding Values" in str(jitted.value) or "holds Values" in str(jitted.value)


# ``Y`` is given as a list of floats and as an untracked Array: without jit, an array op of an
# untracked Array is an untracked Array (which no array op takes inside a list), of floats plain tuples.
IN_SEQUENCES: dict[str, Callable[[Any, Any], Any]] = {
    "items of the argument": lambda x, Y: A.sum([Y[0], Y[1] * 2.0]) * x,
    "asarray of it, twice": lambda x, Y: A.sum([A.asarray(Y), A.asarray(Y)]) * x,
    "an op of it beside it": lambda x, Y: A.sum([A.add(Y, 1.0), Y]) * x,
    "an op of its items beside them": lambda x, Y: A.sum([A.add([Y[0], Y[1]], 1.0), [Y[1], Y[0]]]) * x,
}


@pytest.mark.parametrize("as_array", [False, True])
@pytest.mark.parametrize("name", sorted(IN_SEQUENCES))
def test_data_in_sequences_is_taken_or_refused_as_without_jit(name: str, as_array: bool) -> None:
    fun = IN_SEQUENCES[name]
    interpreted = tape.value_and_grad(fun)
    jitted = jit(interpreted)
    for x, Y in FLOAT_CALLS:
        data = tape.array.asarray(Y) if as_array else Y
        try:
            want = interpreted(x, data)
        except TypeError as error:
            with pytest.raises(TypeError, match=re.escape(str(error))):
                jitted(x, data)
            continue
        assert_same(jitted(x, data), want)
    assert jitted.traces <= 1


def _same_result(got: object, want: object) -> None:
    """Equal trees where untracked Arrays are untracked Arrays of equal data on both sides."""
    got_leaves, got_def = tree_flatten(got)
    want_leaves, want_def = tree_flatten(want)
    assert got_def == want_def, (got, want)
    for g, w in zip(cast("list[object]", got_leaves), cast("list[object]", want_leaves), strict=True):
        assert type(g) is type(w), (got, want)
        if isinstance(w, tape.Array) and isinstance(g, tape.Array):
            assert g.tape is None and w.tape is None
            assert_same(g.data, w.data)
        else:
            assert_same(g, w)


@pytest.mark.parametrize("arrays", [False, True])
@pytest.mark.parametrize(
    "fun",
    [
        lambda W, X: (W, A.add(W, 1.0), A.sum(W), W[0][1]),  # untracked Arrays without jit
        lambda W, X: (A.add(X, 1.0), A.multiply(W, X)),  # plain tuples; an untracked Array
        lambda W, X: A.sum([X, X]) * A.sum(W),  # a list of the list argument
        lambda W, X: A.add([X[0], X[0]], W[0]),
    ],
)
def test_a_plain_functions_results_are_the_interpreters(fun: Callable[[Any, Any], Any], arrays: bool) -> None:
    """A plain function gets its arguments as they are: jit gives back what it gives back."""
    jitted = jit(fun, arrays=arrays)
    for W, X in (([[1.0, 2.0], [3.0, 4.0]], [[0.5, -1.0]]), ([[-1.0, 0.0], [math.inf, 2.0]], [[3.0, 0.25]])):
        untracked = tape.array.asarray(W)
        _same_result(jitted(untracked, X), fun(untracked, X))
    assert jitted.traces == 1


def test_ragged_plain_floats_are_the_interpreters_value_error() -> None:
    def fun(x: Any, Y: Any) -> Any:
        return A.sum([Y[0], [Y[1], Y[2]]]) * x

    data = [[1.0], [2.0, 3.0], [4.0, 5.0]]
    with pytest.raises(ValueError) as interpreted:
        tape.value_and_grad(fun)(1.5, data)
    with pytest.raises(ValueError) as jitted:
        jit(tape.value_and_grad(fun))(1.5, data)
    assert str(jitted.value) == str(interpreted.value)


def test_an_untracked_array_argument_is_an_input_without_arrays() -> None:
    def fun(W: Any, X: Any) -> Any:
        return A.sum(A.matmul(X, W))

    interpreted = tape.value_and_grad(fun)  # arrays=False: the Array is still watched as one
    jitted, plain = jit(interpreted), jit(fun)
    W1 = tape.array.asarray([[1.0, 2.0], [3.0, 4.0]])
    W2 = tape.array.asarray([[-1.0, 0.5], [math.inf, 0.0]])
    X1, X2 = [[1.0, 2.0], [0.5, -1.0]], [[3.0, 2.0], [0.5, -7.0]]
    value, grad = interpreted(W1, X1)
    assert value == 11.5 and grad.data == ((1.5, 1.5), (1.0, 1.0))  # d sum(X W) / dW = X^T 1
    for W, X in ((W1, X1), (W2, X2), (W1, X2)):
        want_value, want_grad = interpreted(W, X)
        got_value, got_grad = jitted(W, X)
        assert_same(got_value, want_value)
        assert isinstance(got_grad, tape.Array) and got_grad.tape is None
        assert_same(got_grad.data, want_grad.data)
        assert_same(plain(W, X), fun(W, X))
    assert jitted.traces == plain.traces == 1  # an input, not a static argument keyed by identity

    @given(
        st.lists(st.lists(st.floats(), min_size=2, max_size=2), min_size=2, max_size=2),
        st.lists(st.lists(scalars(), min_size=2, max_size=2), min_size=1, max_size=1),
    )
    def check(W: list[list[float]], X: list[list[float]]) -> None:
        untracked = tape.array.asarray(W)
        want_value, want_grad = interpreted(untracked, X)
        got_value, got_grad = jitted(untracked, X)
        assert_same(got_value, want_value)
        assert_same(got_grad.data, want_grad.data)

    check()
    assert jitted.traces == 2  # one more input shape (a single row of X)


# --- the cache ------------------------------------------------------------------------------


def test_a_second_call_does_not_trace_and_new_shapes_do() -> None:
    f = jit(tape.grad(lambda xs: tape.vsum([x * x for x in xs])))
    assert f([1.0, 2.0]) == [2.0, 4.0]
    assert f([3.0, -1.0]) == [6.0, -2.0]
    assert f.traces == 1
    assert f([1.0, 2.0, 3.0]) == [2.0, 4.0, 6.0]
    assert f.traces == 2
    assert f((1.0, 2.0)) == (2.0, 4.0)  # another container: another structure
    assert f.traces == 3


def test_the_cache_is_bounded() -> None:
    f = jit(lambda xs: tape.vsum(xs), cache_size=2)
    for n in (1, 2, 3):
        f([1.0] * n)
    assert f.cache_size == 2 and f.traces == 3
    f([1.0, 1.0, 1.0])
    assert f.traces == 3  # the most recent is kept
    f([1.0])
    assert f.traces == 4  # the oldest was dropped
    with pytest.raises(ValueError, match="cache_size"):
        jit(f, cache_size=0)


def test_jit_of_what_is_not_a_function_is_refused_where_it_is_made() -> None:
    with pytest.raises(TypeError, match=r"jit: fun must be callable, not float \(2\.0\)"):
        jit(2.0)  # type: ignore[arg-type]  # a misuse to refuse


def test_static_argnums_beyond_the_functions_arguments_are_refused_where_jit_is_made() -> None:
    with pytest.raises(ValueError, match=r"static_argnums names argument 3, but fun takes 2 positional"):
        jit(lambda x, n: x * n, static_argnums=(0, 3))
    with pytest.raises(ValueError, match=r"names argument 1, but fun takes 1 positional argument$"):
        jit(tape.grad(lambda x: x * x), static_argnums=1)  # the signature grad's function keeps
    power = jit(lambda x, n=2: x ** float(n), static_argnums=1)  # an argument with a default
    assert power(3.0) == 9.0 and power(3.0, 3) == 27.0
    assert jit(lambda *xs: xs[0] * xs[1], static_argnums=1)(2.0, 3) == 6.0  # *args: any index


def test_static_argnums_of_a_wrapper_taking_more_arguments_than_it_wraps_are_kept() -> None:
    """A functools.wraps wrapper reports the wrapped function's signature, but its own
    parameters are what it takes; only a wrapper of ``*args`` passes its wrapped one's on."""

    def square(x: tape.Scalar) -> tape.Scalar:
        return x * x

    @functools.wraps(square)
    def powered(x: tape.Scalar, n: int) -> tape.Scalar:
        return square(x) ** float(n)

    assert jit(powered, static_argnums=1)(2.0, 3) == 64.0
    with pytest.raises(ValueError, match=r"names argument 2, but fun takes 2 positional arguments$"):
        jit(powered, static_argnums=2)


def test_static_arguments_are_part_of_the_key() -> None:
    f = jit(lambda x, power: x ** float(power), static_argnums=1)
    assert f(2.0, 3) == 8.0 and f(3.0, 3) == 27.0 and f.traces == 1
    assert f(2.0, 2) == 4.0 and f.traces == 2
    with pytest.raises(TypeError, match=r"static argument 1 .* hashable"):
        f(2.0, [1])


def test_redefining_an_op_invalidates_compiled_code() -> None:
    op = tape.define("jit_test_twice", lambda x: 2.0 * x, lambda v, x: 2.0, replace=True)
    f = jit(tape.value_and_grad(lambda x: op(x) * x))
    assert f(3.0) == (18.0, 12.0)
    tape.define("jit_test_twice", lambda x: 3.0 * x, lambda v, x: 3.0, replace=True)
    assert f(3.0) == (27.0, 18.0)
    assert f.traces == 2


# --- what a trace cannot see ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "fun",
    [
        lambda x: x if x > 0.0 else -x,
        lambda x: x * 2.0 if bool(x) else x,
        lambda x: tape.exp(x) if float(x) < 1.0 else x,
        lambda x: x if x <= 0.0 or x >= 3.0 else x * x,
    ],
)
def test_python_control_flow_on_a_traced_value_is_refused(fun: Callable[[Any], Any]) -> None:
    with pytest.raises(TracingError, match="static_argnums"):
        jit(fun)(1.0)
    with pytest.raises(TracingError):
        jit(tape.grad(fun))(1.0)
    assert tape.grad(fun)(1.0) is not None  # without jit, Python branches as usual


def test_branches_inside_ops_stay_data_dependent_code() -> None:
    f = jit(tape.value_and_grad(lambda x: tape.relu(x) + abs(x) + tape.leaky_relu(x, 0.5)))
    assert f(2.0) == (6.0, 3.0) and f(-2.0) == (1.0, -0.5)
    source = f.source(2.0)
    # the forward: each value read once is computed where it is read, relu's choice included
    assert "    v5 = ((0.0 if v0 <= 0.0 else v0) + abs(v0)) + (v0 if v0 > 0.0 else 0.5 * v0)\n" in source
    # backward: a long sum goes on in the next line
    assert source.endswith(" \\\n        + (g5 if v0 > 0.0 else g5 * 0.0)\n    return [v5, 0.0 + g0]\n")
    assert f.traces == 1


def _product_plus_exp(x: tape.Scalar, y: tape.Scalar) -> tape.Scalar:
    return x * y + tape.exp(x)


def test_source_reads_as_forward_then_backward() -> None:
    source = jit(tape.value_and_grad(_product_plus_exp, (0, 1))).source(1.0, 2.0)
    lines = source.splitlines()
    assert lines[0].startswith("def ")
    # the forward; the product, read once, is computed where it is read
    assert lines[3:5] == ["    v3 = exp(v0)", "    v4 = (v0 * v1) + v3"]
    assert lines[5].startswith("    if not isfinite(sum((v0, v1, v3,))):")  # the partials that are values
    assert lines[6] == "        return fallback(inputs)"
    assert lines[7].startswith("    g4 = 1.0  # the seed")
    # each adjoint is the sum of what its uses pass back, in the interpreter's order
    assert "    g0 = g4 * v3 + g4 * v1" in lines
    assert lines[-1] == "    return [v4, 0.0 + g0, 0.0 + g1]"


@given(
    st.lists(st.from_regex(r"[a-z][a-z0-9]{0,30}( \* [a-z][0-9]{0,6})?", fullmatch=True), max_size=60),
    st.sampled_from([", ", " + "]),
)
@example(["v1"] * 40, ", ")
@example(["x" * 120, "y"], " + ")
def test_joined_breaks_long_lists_into_lines_and_changes_no_token(items: list[str], sep: str) -> None:
    text = joined(items, sep)
    assert text.replace(" \\\n        ", " ") == sep.join(items)  # the breaks are whitespace only
    lines = text.split(" \\\n")
    for line in lines:
        body = line.removeprefix("        ")
        # a line past the width holds no place to break within the width
        assert len(body) <= LINE_WIDTH + 1 or sep not in body.lstrip("+ ")[1 : LINE_WIDTH + 1]
    assert (len(lines) > 1) == (len(sep.join(items)) > LINE_WIDTH)


def test_long_sums_and_lists_in_the_source_go_on_in_readable_lines() -> None:
    """A 64-term dot product, a sum of 300 products, the check of 600 partials and 600 returned
    gradients: each goes on over lines of about 100 characters, with the interpreter's floats."""

    def f(xs: Sequence[tape.Scalar], ys: Sequence[tape.Scalar]) -> tape.Scalar:
        return tape.vsum([x * y for x, y in zip(xs, ys, strict=True)]) + tape.dot(xs[:64], ys[:64])

    xs = [0.25 * k - 30.0 for k in range(300)]
    ys = [1.0 / (k + 1) for k in range(300)]
    jitted = jit(tape.value_and_grad(f, (0, 1)))
    assert_same(jitted(xs, ys), tape.value_and_grad(f, (0, 1))(xs, ys))
    source = jitted.source(xs, ys)
    # about 100 characters, more where a value read once is computed in place of its name
    assert max(len(line) for line in source.splitlines()) <= 2 * LINE_WIDTH
    assert "    if not isfinite(sum((  # a partial is not finite" in source
    assert " + v63 * v363)\n    if not isfinite(sum((" in source  # the dot product's last line
    assert "\n    ))):\n        return fallback(inputs)\n" in source


def test_a_non_finite_partial_runs_the_code_that_tests_each_adjoint() -> None:
    """A product's term is untested while every partial that is a value is finite; with an inf
    partial behind a zero adjoint, the tested code gives the interpreter's skip, not 0 * inf."""

    def f(x: tape.Scalar, y: tape.Scalar, z: tape.Scalar) -> tape.Scalar:
        return (x * y) * z + x

    jitted = jit(tape.value_and_grad(f, (0, 1, 2)))
    interpreted = tape.value_and_grad(f, (0, 1, 2))
    assert_same(jitted(2.0, 3.0, 0.5), interpreted(2.0, 3.0, 0.5))
    fallback = jitted.compiled(2.0, 3.0, 0.5).run.__globals__["fallback"]

    def fallback_compiled() -> bool:
        return fallback._run is not None

    assert not fallback_compiled()  # not compiled until needed
    for args in ((2.0, math.inf, 0.0), (math.nan, 1.0, 0.0), (2.0, math.inf, 1.0), (1e308, 1e308, 0.0)):
        want = interpreted(*args)
        assert_same(jitted(*args), want)
    skipped = interpreted(2.0, math.inf, 0.0)[1]
    assert skipped[0] == 1.0  # the zero adjoint of x * y passed nothing: untested, 0 * inf would be nan
    assert fallback_compiled()
    assert jitted.traces == 1
    source = jitted.source(2.0, 3.0, 0.5)
    assert "if g" not in source  # no product's term is tested in the code that runs first


def test_calling_on_a_recording_tape_runs_the_function() -> None:
    inner = jit(lambda x: x * x * x)
    assert tape.grad(inner)(2.0) == 12.0
    assert tape.grad(tape.grad(inner))(2.0) == 12.0
    assert inner.traces == 0


def test_user_ops_without_emit_rules_compile_to_their_own_rules() -> None:
    softplus = tape.define(
        "jit_test_softplus",
        lambda x: tape.log(1.0 + tape.exp(x)),
        lambda v, x: tape.sigmoid(x),
        replace=True,
    )
    doubled = tape.define(
        "jit_test_double_rows",
        lambda m: tuple(tuple(2.0 * v for v in row) for row in m),
        vjp=lambda g, value, m: ([[2.0 * v for v in row] for row in g],),
        jvp=lambda value, args, tangents: tuple(tuple(2.0 * v for v in row) for row in tangents[0]),
        replace=True,
    )

    def loss(p: Any) -> Any:
        return A.mean(doubled(p["w"])) * softplus(p["b"][0])

    f = jit(tape.value_and_grad(loss, arrays=True))
    for params in (pmap({"w": ((1.0, 2.0),), "b": (0.5,)}), pmap({"w": ((-1.0, 0.5),), "b": (-2.0,)})):
        assert_same(f(params), tape.value_and_grad(loss, arrays=True)(params))
    assert f.traces == 1


def test_large_graphs_are_split_into_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    parts = 400
    monkeypatch.setattr(sys.modules["tape.jit"], "CHUNK_LINES", parts)  # the real bound is 200,000 lines

    def chain(xs: list[float]) -> Any:
        total = xs[0]
        for k in range(3 * parts):
            total = total * xs[k % 3] + xs[(k + 1) % 3]
        return total

    f = jit(tape.value_and_grad(chain))
    xs = [0.5, -0.25, 0.125]
    assert_same(f(xs), tape.value_and_grad(chain)(xs))
    compiled = f.compiled(xs)
    assert "_part1(" in compiled.source and "_part5(" in compiled.source
    assert compiled.nodes > 3 * parts
    xs2 = [0.25, 0.5, -0.125]
    assert_same(f(xs2), tape.value_and_grad(chain)(xs2))


def test_the_collector_is_paused_while_compiling_and_comes_back(monkeypatch: pytest.MonkeyPatch) -> None:
    module = sys.modules["tape.jit"]
    seen: list[bool] = []
    real_generate = module._generate

    def generate(*args: Any) -> Any:
        seen.append(gc.isenabled())
        return real_generate(*args)

    monkeypatch.setattr(module, "_generate", generate)
    assert gc.isenabled()
    assert jit(tape.value_and_grad(lambda x: x * x))(3.0) == (9.0, 6.0)
    assert seen == [False] and gc.isenabled()

    def broken(*args: Any) -> Any:
        raise RuntimeError("generation failed")

    monkeypatch.setattr(module, "_generate", broken)
    with pytest.raises(RuntimeError, match="generation failed"):
        jit(tape.value_and_grad(lambda x: x * x))(3.0)
    assert gc.isenabled()  # restored on errors too


def test_an_aliased_adjoint_copied_for_an_array_op_crosses_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    """A scalar that is both an add's operand (its adjoint an alias) and an array op's parent."""
    monkeypatch.setattr(sys.modules["tape.jit"], "CHUNK_LINES", 6)

    def f(x: Any, a: tape.Scalar, b: tape.Scalar) -> Any:
        s = a * b
        w = A.sum(A.multiply(x, s))
        for _ in range(12):
            w = tape.tanh(w) * 0.5
        return w + s

    jitted = jit(tape.value_and_grad(f, (0, 1, 2), arrays=True))
    for args in (([[1.0, 2.0], [3.0, 4.0]], 0.3, 0.7), ([[0.5, -2.0], [1.0, 0.25]], -1.5, 0.2)):
        assert_same(jitted(*args), tape.value_and_grad(f, (0, 1, 2), arrays=True)(*args))
    assert "_part2(" in jitted.source([[1.0, 2.0], [3.0, 4.0]], 0.3, 0.7)


@pytest.mark.parametrize("name", ["isfinite", "fallback", "g3", "v1", "buffer"])
def test_a_kernel_never_takes_a_name_of_the_generated_code(name: str) -> None:
    op = tape.define(name, lambda x: x * 3.0, lambda v, x: 3.0, replace=True)

    def f(x: tape.Scalar, y: tape.Scalar) -> tape.Scalar:
        tripled: tape.Scalar = op(x)
        return tripled * y + x * x

    jitted = jit(tape.value_and_grad(f, (0, 1)))
    for args in ((2.0, 5.0), (-1.0, math.inf)):
        assert_same(jitted(*args), tape.value_and_grad(f, (0, 1))(*args))


# --- values read once are computed where they are read -----------------------------------------

_STATEMENT = re.compile(r"^    v\d+ = (?!inputs\[)", re.MULTILINE)


def _forward_statements(source: str) -> list[str]:
    return [line for line in source.splitlines() if _STATEMENT.match(line)]


@given(st.integers(1, 40), st.lists(scalars(-2.0, 2.0), min_size=3, max_size=3))
@example(1, [1.0, 2.0, 3.0])
@example(9, [0.5, -0.25, 0.125])
def test_a_chain_of_values_read_once_is_a_few_statements(steps: int, xs: list[float]) -> None:
    """Each value read once (by one op of the forward, not by a partial) is computed where it is
    read, with the interpreter's floats: relu's operand, which its partial reads, and the result
    are the only variables of each step."""

    def chain(x: Any, a: Any, b: Any) -> Any:
        for _ in range(steps):
            x = tape.relu(x * 0.75 + b) - a
        return x

    jitted = jit(tape.value_and_grad(chain, (0, 1, 2)))
    for args in (xs, [-x for x in xs]):
        assert_same(jitted(*args), tape.value_and_grad(chain, (0, 1, 2))(*args))
    statements = _forward_statements(jitted.source(*xs))
    assert len(statements) == steps + 1
    assert statements[-1].endswith(") - v1")  # relu's choice, then the sub


def test_a_long_chain_compiles_within_pythons_nesting_limits() -> None:
    def chain(x: Any) -> Any:
        for _ in range(3000):  # one expression of 6,000 ops would nest past the parser's 200 levels
            x = x * 1.0001 + 0.5
        return x

    jitted = jit(tape.value_and_grad(chain))
    assert_same(jitted(1.5), tape.value_and_grad(chain)(1.5))
    statements = _forward_statements(jitted.source(1.5))
    assert len(statements) == 6000 // sys.modules["tape.jit"].FUSED_OPS


_SPECIAL = [0.0, -0.0, 1.5, -2.0, math.inf, -math.inf, math.nan, 1e308]


@given(
    st.integers(1, 70), st.lists(st.sampled_from(_SPECIAL) | scalars(-3.0, 3.0), min_size=140, max_size=140)
)
@example(2, [-0.0, 1.0, 0.0, -0.0] + [1.0] * 136)  # -0.0 * 0.0 + -0.0 * ... from 0.0 is 0.0
@example(65, [1.0] * 140)  # longer than the dot products written out: sum(map(mul, ...))
@example(3, [1e16, 1.0, -1e16] + [0.0] * 67 + [1.0] * 70)  # 1.0 where sum compensates its rounding
def test_a_dot_product_is_written_out_with_the_interpreters_floats(n: int, floats: list[float]) -> None:
    def f(xs: Any, ys: Any, c: Any) -> Any:
        return tape.dot(xs, ys) * c + tape.dot(ys, ys)

    args = (floats[:n], floats[70 : 70 + n], 0.5)
    jitted = jit(tape.value_and_grad(f, (0, 1, 2)))
    assert_same(jitted(*args), tape.value_and_grad(f, (0, 1, 2))(*args))
    source = jitted.source(*args)
    written = "sum(map(" not in source
    assert written == (n <= 64 and SUM_ADDS_IN_ORDER), source  # as the interpreter's sum adds
    if written:  # the fused dot is one group in parentheses, not two
        assert "((0.0 + " not in source and "(0.0 + v0 * v" in source


def test_a_value_read_twice_or_by_a_user_op_keeps_its_statement() -> None:
    calls: list[float] = []

    def logged(x: float) -> float:
        calls.append(x)
        return 2.0 * x

    op = tape.define("jit_test_logged", logged, lambda v, x: 2.0, replace=True)

    def f(x: Any, y: Any) -> Any:
        shared = x * y  # read twice: a variable
        mine = op(x + 1.0)  # a user's kernel may raise or have effects: it runs in its own statement
        return shared + mine * shared

    jitted = jit(tape.value_and_grad(f, (0, 1)))
    assert_same(jitted(2.0, 3.0), tape.value_and_grad(f, (0, 1))(2.0, 3.0))
    statements = _forward_statements(jitted.source(2.0, 3.0))
    assert statements[0] == "    v2 = v0 * v1"
    assert statements[2] == "    v4 = jit_test_logged(v3)"
    calls.clear()
    jitted(0.5, 4.0)
    assert calls == [1.5]


@pytest.mark.parametrize("data", [[()], [(), [1, 2]], [[[1.0]], []], [[], [[1.0]]], ([[]], [2.0])])
def test_arguments_with_empty_sequences_are_the_interpreters(data: Any) -> None:
    """Empty rows beside ints or floats: no IndexError while the structure is read (there was one)."""

    def f(w: Any, d: Any) -> Any:
        return w * 2.0, d

    def loss(w: Any, d: Any) -> Any:
        return f(w, d)[0]

    assert_same(jit(f)(1.5, data), f(1.5, data))
    for arrays in (False, True):
        jitted = jit(tape.value_and_grad(loss, arrays=arrays))
        assert_same(jitted(1.5, data), tape.value_and_grad(loss, arrays=arrays)(1.5, data))


LOGITS = [
    [[1.0, 2.0, -1.0], [0.5, -1.0, 3.0]],
    [[3.0, 2.0, -1.0], [0.5, 7.0, 3.0]],  # the rows' maxima in other columns: the shifts are recomputed
    [[800.0, 2.0, -1.0], [math.inf, -1.0, 0.0]],
    [[-math.inf, 1.0, 2.0], [1e308, 1e308, -1e308]],
]


@pytest.mark.parametrize("arrays", [False, True])
def test_cross_entropy_of_list_logits_replays_its_shift(arrays: bool) -> None:
    """Logits given as lists of floats: a plain function's floats (stand-ins, taken as one Array)
    and differentiated Values (each row's max shift an op, not a float read at the trace)."""

    def loss(logits: Any) -> Any:
        return A.cross_entropy_with_logits(logits, [0, 2])

    plain, differentiated = jit(loss), jit(tape.value_and_grad(loss, arrays=arrays))
    for logits in LOGITS:
        assert_same(plain(logits), loss(logits))
        assert_same(differentiated(logits), tape.value_and_grad(loss, arrays=arrays)(logits))
    assert plain.traces == differentiated.traces == 1
