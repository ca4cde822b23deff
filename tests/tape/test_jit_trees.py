"""jit over parameter trees of floats: a tree built before (the params an optimizer step
gives) is read by its structure, with no walk; every call's result is the interpreter's,
bit for bit and container for container, whichever way its arguments were made."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from hypothesis import given
from hypothesis import strategies as st
from pyrsistent import PMap, pmap, pvector

import tape
from tape import Array, jit
from tape import arrays as A
from tape.array import asarray
from tape.tree import tree_flatten, tree_flatten_floats, tree_unflatten
from tests.tape.test_jit import assert_same

_kinds: st.SearchStrategy[Callable[[list[Any]], object]] = st.sampled_from([list, tuple, pvector])
_numbers = st.floats(-3.0, 3.0)


@st.composite
def _layers(draw: st.DrawFn) -> tuple[PMap[str, object], list[list[float]]]:
    """A layer ``{"w": matrix, "b": vector, "s": scalar}`` in drawn containers, and a batch."""
    rows, cols = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    outer, inner, vector = draw(_kinds), draw(_kinds), draw(_kinds)
    w = outer([inner(draw(st.lists(_numbers, min_size=cols, max_size=cols))) for _ in range(rows)])
    b = vector(draw(st.lists(_numbers, min_size=rows, max_size=rows)))
    batch = draw(st.lists(st.lists(_numbers, min_size=cols, max_size=cols), min_size=1, max_size=3))
    return pmap({"w": w, "b": b, "s": draw(_numbers), "unused": vector([0.5] * cols)}), batch


def _loss(p: Any, x: list[list[float]], /) -> Any:
    hidden = A.tanh(A.linear(cast(Array, p["w"]), cast(Array, p["b"]), x))
    return A.sum(A.multiply(hidden, hidden)) * p["s"]


def _variants(params: PMap[str, object]) -> list[object]:
    """The same numbers made three ways: as drawn, in vectors rebuilt by tree_unflatten (so
    remembered as floats, as an optimizer's params are), and as plain dicts and lists."""
    w, b = cast("list[list[float]]", params["w"]), cast("list[float]", params["b"])
    unused = cast("list[float]", params["unused"])
    frozen = pmap({"w": pvector([pvector(row) for row in w]), "b": pvector(b), "s": params["s"]})
    floats, treedef = tree_flatten(frozen.set("unused", pvector(unused)))
    rebuilt = tree_unflatten(treedef, list(floats))
    assert tree_flatten_floats(rebuilt, walk=False) is not None
    plain = {"w": [list(row) for row in w], "b": list(b), "s": params["s"], "unused": list(unused)}
    return [params, rebuilt, plain]


@given(_layers(), st.lists(st.integers(0, 2), min_size=1, max_size=6))
def test_jit_of_a_float_tree_gives_the_interpreters_result_however_it_was_made(
    drawn: tuple[PMap[str, object], list[list[float]]], order: list[int]
) -> None:
    params, batch = drawn
    variants = _variants(params)
    compiled = jit(tape.value_and_grad(_loss, arrays=True))
    for k in order:  # one compiled function for every variant: their structure is one key
        got = compiled(variants[k], batch)
        want = tape.value_and_grad(_loss, arrays=True)(variants[k], batch)
        assert_same(got, want)
    assert compiled.traces <= 3  # the structures: as drawn, in vectors, in dicts and lists


def _data(tree: object) -> object:
    """``tree`` with each Array replaced by its data (nested tuples), to compare bit for bit."""
    if isinstance(tree, Array):
        return tree.data
    if isinstance(tree, tuple):
        return tuple(_data(item) for item in tree)
    return tree


def _linear_loss(W: Any, b: Any, x: Any, /) -> Any:
    logits = A.linear(W, b, x)
    return A.cross_entropy_with_logits(logits, [0] * len(x)) + A.sum(A.tanh(logits))


@given(
    st.integers(1, 3),
    st.integers(1, 3),
    st.lists(st.lists(_numbers, min_size=9, max_size=9), min_size=2, max_size=4),
    st.sampled_from([(0, 1), 0, 1]),
)
def test_jit_of_linear_on_a_batch_of_plain_floats_without_arrays_replays_new_batches(
    outs: int, ins: int, batches: list[list[float]], argnums: int | tuple[int, int]
) -> None:
    """Untracked Array weights and a batch of floats of an argument not differentiated
    (``arrays=False``): the batch's floats stand for themselves in ``linear``, so each new
    batch replays the one compiled function with the interpreter's bits."""
    W = asarray([[0.25 * (i - j) for j in range(ins)] for i in range(outs)])
    b = asarray([0.5 * i for i in range(outs)])
    compiled = jit(tape.value_and_grad(_linear_loss, argnums))
    for flat in batches:
        x = [flat[k * ins : (k + 1) * ins] for k in range(2)]
        got, want = compiled(W, b, x), tape.value_and_grad(_linear_loss, argnums)(W, b, x)
        assert_same(_data(got), _data(want))
    assert compiled.traces == 1


class _Row(tuple):  # type: ignore[type-arg]  # a tuple subclass that is not a named tuple
    __slots__ = ()


def test_jit_with_arrays_keeps_the_interpreters_view_of_odd_containers() -> None:
    """A tuple subclass is no float array to jit (as without jit), and an argument not
    differentiated reaches the function in its own containers, remembered tree or not."""

    def pair(p: Any, /) -> Any:
        return A.sum(p) if isinstance(p, Array) else p[0] + p[1]

    for row in (_Row((1.0, 2.0)), _Row((-3.0, 4.0))):
        want = tape.grad(pair, arrays=True)(row)
        assert jit(tape.grad(pair, arrays=True))(row) == want
    floats, treedef = tree_flatten(pmap({"x": pvector([3.0, 4.0])}))
    batch = tree_unflatten(treedef, list(floats))  # remembered as a tree of floats

    def loss(w: list[float], data: Any, /) -> Any:
        return A.sum(A.multiply(w, data["x"])), type(data["x"]).__name__

    compiled = jit(tape.grad(loss, has_aux=True, arrays=True))
    assert compiled([1.0, 2.0], batch) == tape.grad(loss, has_aux=True, arrays=True)([1.0, 2.0], batch)
    assert compiled([1.0, 2.0], batch)[1] == "PVector"
