"""Every N-d array op of the library, by name: its gradients, forward mode, jit, and the scalar path.

Each op defined by its rules (:func:`tape.array.array_op`) has one case here: a scalar
loss of named parameters that goes through the op, and the same loss written on scalar
Values with Python loops (the scalar-Value path, the reference the array path must equal).
The op families' own test files go deeper (NumPy, shapes, errors); this registry makes sure
no op is left without the common checks.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from itertools import pairwise
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pyrsistent import PMap

import tape
from tape import arrays as A
from tape.array import flatten
from tape.core.op import REGISTRY
from tape.testing import assert_gradients_match, parameter_trees, scalars
from tape.tree import tree_leaves

Shape = tuple[int, ...]
Params = PMap[str, Any]


class Case:
    """A loss through one op (``array``), its scalar-Value twin (``scalar``) and the params' shapes."""

    def __init__(
        self,
        array: Callable[[Params], Any],
        scalar: Callable[[Params], Any],
        shapes: dict[str, Shape],
        *,
        low: float = -2.0,
        high: float = 2.0,
        kinks: tuple[float, ...] = (),
        distinct: bool = False,
    ) -> None:
        self.distinct = distinct  # entries kept apart: no ties, where the op is not differentiable
        self.array = array
        self.scalar = scalar
        self.shapes = shapes
        self.elements = scalars(low, high, kinks=kinks, margin=1e-2)


def _s_sum(xs: Any) -> Any:
    total: Any = 0.0
    for v in xs:
        total = total + v
    return total


def _s_lse(xs: list[Any]) -> Any:
    shift = tape.max_shift(xs)
    return shift + tape.log(_s_sum([tape.exp(v - shift) for v in xs]))


def _weights(n: int) -> list[float]:
    return [0.3 + 0.17 * k for k in range(n)]


def _contract_forward(x: Any, u: Any) -> float:
    return math.fsum(a * b for a, b in zip(flatten(x), u, strict=True))


CONTRACT = tape.define(
    "test_registry_contract",
    _contract_forward,
    vjp=lambda g, value, x, u: ([g * w for w in u], None),
    jvp=lambda value, args, tangents: _contract_forward(tangents[0], args[1]),
)


def _dot(x: Any, n: int) -> Any:
    """``sum_k w_k x_k`` over the row-major entries of an array, with fixed distinct weights."""
    return CONTRACT(x, tuple(_weights(n)))


def _flat_dot(x: Any, n: int) -> Any:
    """The same contraction on nested scalar Values (the scalar path)."""
    total: Any = 0.0
    for w, v in zip(_weights(n), _flat_values(x), strict=True):
        total = total + w * v
    return total


def _flat_values(x: Any) -> list[Any]:
    if isinstance(x, tape.Value) or x.__class__ is float:
        return [x]
    out: list[Any] = []
    for item in x:
        out += _flat_values(item)
    return out


# --- the cases ------------------------------------------------------------------------------------


def _sum_axis_scalar(p: Params) -> Any:
    x = p["x"]  # (2, 3, 2): sum over axis 1, then the weighted contraction
    reduced = [[_s_sum(x[i][j][k] for j in range(3)) for k in range(2)] for i in range(2)]
    return _flat_dot(reduced, 4)


def _max_axis_scalar(p: Params, largest: bool) -> Any:
    x = p["x"]  # (2, 3): over the last axis, keepdims
    picked = []
    for row in x:
        best = row[0]
        for v in row[1:]:
            if (v > best) if largest else (v < best):
                best = v
        picked.append([best])
    return _flat_dot(picked, 2)


def _softmax_scalar(p: Params, log: bool) -> Any:
    out = []
    for row in p["x"]:
        values = list(row)
        lse = _s_lse(values)
        out.append([(v - lse) if log else tape.exp(v - lse) for v in values])
    return _flat_dot(out, 6)


def _logsumexp_scalar(p: Params) -> Any:
    return _flat_dot([_s_lse(list(row)) for row in p["x"]], 2)


def _layer_norm_scalar(p: Params) -> Any:
    out = []
    for row in p["x"]:
        values = list(row)
        mean = _s_sum(values) / 3.0
        var = _s_sum([(v - mean) * (v - mean) for v in values]) / 3.0
        inv = 1.0 / tape.sqrt(var + 1e-5)
        out.append([(v - mean) * inv * w + b for v, w, b in zip(values, p["w"], p["b"], strict=True)])
    return _flat_dot(out, 6)


def _matmul_scalar(p: Params) -> Any:
    a, b = p["a"], p["b"]  # (2, 2, 3) @ (3, 2)
    out = [
        [[_s_sum(a[n][i][k] * b[k][j] for k in range(3)) for j in range(2)] for i in range(2)]
        for n in range(2)
    ]
    return _flat_dot(out, 8)


CASES: dict[str, Case] = {
    "array_sum": Case(lambda p: _dot(A.sum(p["x"], axis=1), 4), _sum_axis_scalar, {"x": (2, 3, 2)}),
    "array_max": Case(
        lambda p: _dot(A.max(p["x"], axis=-1, keepdims=True), 2),
        lambda p: _max_axis_scalar(p, True),
        {"x": (2, 3)},
        distinct=True,
    ),
    "array_min": Case(
        lambda p: _dot(A.min(p["x"], axis=-1, keepdims=True), 2),
        lambda p: _max_axis_scalar(p, False),
        {"x": (2, 3)},
        distinct=True,
    ),
    "array_softmax": Case(
        lambda p: _dot(A.softmax(p["x"]), 6), lambda p: _softmax_scalar(p, False), {"x": (2, 3)}
    ),
    "array_log_softmax": Case(
        lambda p: _dot(A.log_softmax(p["x"]), 6), lambda p: _softmax_scalar(p, True), {"x": (2, 3)}
    ),
    "array_logsumexp": Case(lambda p: _dot(A.logsumexp(p["x"]), 2), _logsumexp_scalar, {"x": (2, 3)}),
    "array_layer_norm": Case(
        lambda p: _dot(A.layer_norm(p["x"], p["w"], p["b"]), 6),
        _layer_norm_scalar,
        {"x": (2, 3), "w": (3,), "b": (3,)},
    ),
    "matmul": Case(
        lambda p: _dot(A.matmul(p["a"], p["b"]), 8), _matmul_scalar, {"a": (2, 2, 3), "b": (3, 2)}
    ),
}


def _rule_defined(name: str) -> bool:
    return getattr(REGISTRY[name].vjp, "__qualname__", "").startswith("custom_vjp.")


def test_every_rule_defined_library_op_has_a_case() -> None:
    library = {
        name
        for name, op in REGISTRY.items()
        if op.builtin
        and _rule_defined(name)
        and not getattr(op.forward, "__module__", "").startswith("tests.")
    }
    assert library == set(CASES)


def _apart(params: Params) -> bool:
    values = sorted(tree_leaves(params))
    return all(b - a > 0.05 for a, b in pairwise(values))


def _draw(case: Case) -> st.SearchStrategy[Params]:
    drawn = parameter_trees(case.shapes, case.elements)
    return drawn.filter(_apart) if case.distinct else drawn


@pytest.mark.parametrize("name", sorted(CASES))
def test_gradients_match_central_differences(name: str) -> None:
    case = CASES[name]

    @given(_draw(case))
    def check(params: Params) -> None:
        assert_gradients_match(case.array, params, arrays=True, atol=1e-5, rtol=1e-4)

    check()


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_array_path_equals_the_scalar_value_path(name: str) -> None:
    case = CASES[name]

    @given(_draw(case))
    def check(params: Params) -> None:
        value_a, grads_a = tape.value_and_grad(case.array, arrays=True)(params)
        value_s, grads_s = tape.value_and_grad(case.scalar)(params)
        assert math.isclose(value_a, value_s, rel_tol=1e-9, abs_tol=1e-12)
        for a, s in zip(tree_leaves(grads_a), tree_leaves(grads_s), strict=True):
            assert math.isclose(a, s, rel_tol=1e-7, abs_tol=1e-10)

    check()


@pytest.mark.parametrize("name", sorted(CASES))
def test_forward_mode_agrees_with_reverse_mode(name: str) -> None:
    case = CASES[name]
    directions = parameter_trees(case.shapes, st.floats(-1.0, 1.0, allow_nan=False))

    @given(_draw(case), directions)
    def check(params: Params, v: Params) -> None:
        value, tangent = tape.jvp(case.array, (params,), (v,), arrays=True)
        gradient = tape.grad(case.array, arrays=True)(params)
        assert value == case.array(params)
        along = math.fsum(g * d for g, d in zip(tree_leaves(gradient), tree_leaves(v), strict=True))
        assert math.isclose(float(tangent), along, rel_tol=1e-9, abs_tol=1e-9)

    check()


@pytest.mark.parametrize("name", sorted(CASES))
def test_jit_replays_bit_for_bit(name: str) -> None:
    case = CASES[name]
    interpreted = tape.value_and_grad(case.array, arrays=True)
    compiled = tape.jit(interpreted)

    @given(_draw(case), _draw(case))
    def check(first: Params, second: Params) -> None:
        for params in (first, second):
            assert compiled(params) == interpreted(params)

    check()
    assert compiled.traces == 1
