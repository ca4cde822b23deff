"""The tape itself: frozen nodes, one reverse sweep, lifecycle, nesting and misuse."""

from __future__ import annotations

import gc
import math

import pytest
from hypothesis import given
from pyrsistent import pmap, pvector

import tape
from tape import NonFiniteError, Tape, TapeError, Value
from tape.testing import scalars
from tests.tape.test_tree import assert_identical


def test_nodes_are_frozen_and_hold_op_parents_value_partials() -> None:
    with Tape() as t:
        x = t.watch(2.0)
        y = t.watch(3.0)
        z = x * y
        w = z.tanh()
        v = 2.0 * x
    node = t.nodes[z.position]
    assert node.op.name == "mul"
    assert node.parents == (x.position, y.position)
    assert node.value == 6.0
    assert node.saved is None  # a product's partials are its inputs' values, already on the tape
    assert t.gradient(z, (x, y)) == (3.0, 2.0)
    tanh_node = t.nodes[w.position]
    assert tanh_node.parents == (z.position,)
    assert tanh_node.partials == (1.0 - math.tanh(6.0) ** 2,)
    assert t.nodes[v.position].partials == (2.0,)  # a constant factor is saved as the partial
    with pytest.raises(AttributeError):
        node.value = 1.0  # type: ignore[misc]  # frozen on purpose
    with pytest.raises(AttributeError):
        z.data = 1.0  # type: ignore[misc]  # read-only on purpose


def test_node_reuse_accumulates() -> None:
    with Tape() as t:
        a = t.watch(1.5)
        b = a + a
        c = b * b
    # c = 4 a^2, dc/da = 8 a
    assert t.gradient(c, a) == 8.0 * 1.5
    assert t.gradient(c, b) == 2.0 * b.data


@given(scalars(), scalars(), scalars(), scalars())
def test_linearity(x: float, y: float, alpha: float, beta: float) -> None:
    def f(u: Value, v: Value) -> Value:
        return (u * v).tanh()

    def g(u: Value, v: Value) -> Value:
        return u * u + v.exp()

    with Tape() as t:
        u, v = t.watch(x), t.watch(y)
        fu, gu = f(u, v), g(u, v)
        combo = alpha * fu + beta * gu
    df, dg, dc = (t.gradient(out, (u, v)) for out in (fu, gu, combo))
    for k in range(2):
        assert math.isclose(dc[k], alpha * df[k] + beta * dg[k], rel_tol=1e-12, abs_tol=1e-12)


@given(scalars(-2.0, 2.0))
def test_chain_rule_composition(x: float) -> None:
    with Tape() as t:
        u = t.watch(x)
        inner = u.tanh()
        outer = inner.exp()
    expected = math.exp(math.tanh(x)) * (1.0 - math.tanh(x) ** 2)
    assert math.isclose(t.gradient(outer, u), expected, rel_tol=1e-12)
    assert math.isclose(t.gradient(outer, inner), math.exp(math.tanh(x)), rel_tol=1e-12)


def test_gradient_twice_gives_the_same_answer() -> None:
    with Tape() as t:
        x = t.watch(0.7)
        y = (x * x).sigmoid() * x.exp()
    first = t.gradient(y, x)
    assert t.gradient(y, x) == first
    assert t.gradient(y, [x, x]) == [first, first]


def test_gradient_structures_follow_sources() -> None:
    with Tape() as t:
        x, y = t.watch(1.0), t.watch(2.0)
        z = x * y
    assert t.gradient(z, x) == 2.0
    assert t.gradient(z, (x, y)) == (2.0, 1.0)
    assert t.gradient(z, {"b": [y], "a": x}) == {"a": 2.0, "b": [1.0]}


def test_each_typed_tree_of_sources_gives_that_tree_of_floats() -> None:
    """The trees ``Tape.gradient``'s overloads name come back in the same containers, with
    float leaves (an Array's gradient a tuple), as their types say."""
    with Tape() as t:
        x, y = t.watch(2.0), t.watch(3.0)
        row = t.watch_array([1.0, 2.0])
        z = x * y + tape.arrays.mean(row)
    pairs: list[tuple[object, object]] = [
        (t.gradient(z, (x,)), (3.0,)),
        (t.gradient(z, (x, y)), (3.0, 2.0)),
        (t.gradient(z, (x, y, x)), (3.0, 2.0, 3.0)),
        (t.gradient(z, [x, y]), [3.0, 2.0]),
        (t.gradient(z, pvector([x, y])), pvector([3.0, 2.0])),
        (t.gradient(z, ((x,), (y,))), ((3.0,), (2.0,))),
        (t.gradient(z, [[x], [y]]), [[3.0], [2.0]]),
        (t.gradient(z, pvector([pvector([x])])), pvector([pvector([3.0])])),
        (t.gradient(z, (row, row)), ((0.5, 0.5), (0.5, 0.5))),
        (t.gradient(z, [row]), [(0.5, 0.5)]),
        (t.gradient(z, {"x": x}), {"x": 3.0}),
        (t.gradient(z, pmap({"x": x})), pmap({"x": 3.0})),
        (t.gradient(z, {"x": [x, y]}), {"x": [3.0, 2.0]}),
        (t.gradient(z, pmap({"w": pvector([x, y])})), pmap({"w": pvector([3.0, 2.0])})),
        (t.gradient(z, pmap({"w": pvector([pvector([y])])})), pmap({"w": pvector([pvector([2.0])])})),
        (t.gradient(z, {"r": row}), {"r": (0.5, 0.5)}),
        (t.gradient(z, pmap({"r": row})), pmap({"r": (0.5, 0.5)})),
    ]
    for got, expected in pairs:
        assert_identical(got, expected)


def test_million_op_chain_has_no_recursion() -> None:
    with Tape() as t:
        x = t.watch(1.0)
        y = x
        for _ in range(1_000_000):
            y = y + 1.0
    assert t.gradient(y, x) == 1.0
    assert y.data == 1_000_001.0


def test_gradient_of_intermediate_and_unrelated_target() -> None:
    with Tape() as t:
        x = t.watch(2.0)
        y = t.watch(5.0)
        z = x * x
    assert t.gradient(z, y) == 0.0
    assert t.gradient(3.0, x) == 0.0
    assert t.gradient(Value(3.0), x) == 0.0
    assert t.gradient(y, x) == 0.0  # y was recorded before nothing depends on x


def test_recording_on_a_closed_tape_is_an_error() -> None:
    with Tape() as t:
        x = t.watch(1.0)
    with pytest.raises(TapeError, match="closed tape"):
        x * 2.0
    with pytest.raises(TapeError, match="closed"):
        t.__enter__()
    assert float(x) == 1.0  # reading is always fine


def test_values_of_unrelated_tapes_do_not_mix() -> None:
    with Tape() as first:
        x = first.watch(1.0)
    with Tape() as second:
        y = second.watch(2.0)
        with pytest.raises(TapeError, match="unrelated tapes"):
            x * y
        with pytest.raises(TapeError, match="does not enclose"):
            second.watch(x)


def test_target_or_source_not_on_the_tape() -> None:
    with Tape() as first:
        x = first.watch(1.0)
        with Tape() as inner:
            y = inner.watch(2.0)
            z = y * 3.0
    with pytest.raises(TapeError, match="not on this tape"):
        first.gradient(z, x)
    with pytest.raises(TapeError, match="not a Value on this tape"):
        inner.gradient(z, x)
    with pytest.raises(TapeError, match="not a Value on this tape"):
        inner.gradient(z, 2.0)


def test_watch_rejects_non_floats() -> None:
    with Tape() as t:
        with pytest.raises(TypeError, match="str"):
            t.watch("1.0")  # type: ignore[arg-type]  # the error is the point
        with pytest.raises(TypeError, match="only floats"):
            t.watch_tree({"w": [1.0, "x"]})
        assert t.watch(2).data == 2.0  # ints are numbers


def test_check_finite_names_the_first_op() -> None:
    with Tape(check_finite=True) as t:
        x = t.watch(0.0)
        y = x + 1.0
        with pytest.raises(NonFiniteError, match=r"'log' at tape position 2 produced -inf"):
            x.log()
    assert y.data == 1.0
    with Tape() as loose:
        z = loose.watch(-1.0)
        z.sqrt().exp()
    found = loose.find_non_finite()
    assert found is not None and found.op.name == "sqrt"


def test_nested_tapes_give_second_derivatives() -> None:
    with Tape() as outer:
        x = outer.watch(1.3)
        with Tape() as inner:
            y = inner.watch(x)
            f = y * y * y
        dfdx: object = inner.gradient(f, y)
    assert isinstance(dfdx, Value)
    assert math.isclose(dfdx.data, 3 * 1.3**2)
    assert math.isclose(outer.gradient(dfdx, x), 6 * 1.3)


def test_inner_tape_sees_outer_values_as_constants() -> None:
    with Tape() as outer:
        x = outer.watch(3.0)
        with Tape() as inner:
            y = inner.watch(2.0)
            z = x * y  # x is a constant for the inner tape, tracked by the outer
        dzdy: object = inner.gradient(z, y)
    assert isinstance(dzdy, Value) and dzdy.data == 3.0
    assert outer.gradient(dzdy, x) == 1.0


def test_repr_is_readable() -> None:
    assert repr(Value(2.5)) == "Value(2.5)"
    with Tape() as t:
        x = t.watch(2.0)
        y = x * 2.0
    assert repr(y) == "Value(4.0, op='mul', position=1)"
    assert "closed" in repr(t) and "2 nodes" in repr(t)


def test_fused_dot_records_one_node_per_neuron() -> None:
    with Tape() as t:
        ws = [t.watch(w) for w in (0.1, 0.2, 0.3)]
        n = len(t)
        out = tape.relu(tape.dot(ws, [1.0, 2.0, 3.0]) + 0.5)
    assert len(t) == n + 3  # dot, add bias, relu
    assert t.gradient(out, ws) == [1.0, 2.0, 3.0]


def test_the_garbage_collector_pauses_while_recording_and_comes_back() -> None:
    assert gc.isenabled()
    with Tape() as outer:
        assert not gc.isenabled()
        with Tape() as inner:
            inner.watch(1.0)
        assert not gc.isenabled()  # the outermost block owns the pause
        outer.watch(2.0)
    assert gc.isenabled()
    with pytest.raises(ZeroDivisionError), Tape():
        1 / 0  # noqa: B018
    assert gc.isenabled()  # restored on errors too
    gc.disable()
    try:
        with Tape():
            pass
        assert not gc.isenabled()  # a collector the caller turned off stays off
    finally:
        gc.enable()
    reentered = Tape()
    with reentered, reentered:  # the same open tape again: the inner block ends it
        reentered.watch(1.0)
    assert gc.isenabled()  # and the outer entry's pause is still undone
