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
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pyrsistent import PMap, pmap

import tape
from tape import arrays as A
from tape.array import flatten, nest
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


# --- broadcasting arithmetic, comparisons and where -----------------------------------------------

_BINARY: dict[str, Callable[[Any, Any], Any]] = {
    "array_add": lambda x, y: x + y,
    "array_sub": lambda x, y: x - y,
    "array_mul": lambda x, y: x * y,
    "array_div": lambda x, y: x / y,
    "array_pow": lambda x, y: x**y,
}
_BROADCAST_FROM: dict[str, Shape] = {
    "array_add": (3,),
    "array_sub": (2, 1),
    "array_mul": (),
    "array_div": (3,),
    "array_pow": (2, 1),
}


def _pick(y: Any, shape: Shape, i: int, j: int) -> Any:
    """Entry ``(i, j)`` of ``y`` broadcast from ``shape`` to (2, 3)."""
    if shape == (3,):
        return y[j]
    if shape == (2, 1):
        return y[i][0]
    return y


def _grid(entry: Callable[[int, int], Any]) -> list[list[Any]]:
    return [[entry(i, j) for j in range(3)] for i in range(2)]


def _binary_case(name: str) -> Case:
    combine, shape = _BINARY[name], _BROADCAST_FROM[name]

    def array(p: Params) -> Any:
        return _dot(combine(A.asarray(p["x"]), p["y"]), 6)  # an Array on the left: its operators

    def scalar(p: Params) -> Any:
        return _flat_dot(_grid(lambda i, j: combine(p["x"][i][j], _pick(p["y"], shape, i, j))), 6)

    positive = name in ("array_div", "array_pow")
    return Case(array, scalar, {"x": (2, 3), "y": shape}, low=0.5 if positive else -2.0)


_COMPARE: dict[str, tuple[Callable[[Any, Any], Any], Callable[[Any, Any], bool]]] = {
    "array_greater": (A.greater, lambda a, b: a > b),
    "array_greater_equal": (A.greater_equal, lambda a, b: a >= b),
    "array_less": (A.less, lambda a, b: a < b),
    "array_less_equal": (A.less_equal, lambda a, b: a <= b),
}


def _compare_case(name: str) -> Case:
    compare, test = _COMPARE[name]

    def array(p: Params) -> Any:
        return _dot(A.where(compare(p["x"], p["y"]), p["x"], p["y"]), 6)

    def scalar(p: Params) -> Any:
        def entry(i: int, j: int) -> Any:
            x, y = p["x"][i][j], p["y"][j]
            return x if test(x, y) else y

        return _flat_dot(_grid(entry), 6)

    return Case(array, scalar, {"x": (2, 3), "y": (3,)}, distinct=True)


_MASK = ((1.0, 0.0, 1.0), (0.0, 0.0, 1.0))


def _where_scalar(p: Params) -> Any:
    return _flat_dot(_grid(lambda i, j: p["x"][i][j] if _MASK[i][j] else p["y"][j]), 6)


# --- shape ops, indexing, assembling -------------------------------------------------------------


def _getitem_scalar(p: Params) -> Any:
    x = p["x"]  # (3, 4)[1:, ::2] -> (2, 2)
    return _flat_dot([[x[i][j] for j in (0, 2)] for i in (1, 2)], 4)


def _reshape_scalar(p: Params) -> Any:
    return _flat_dot(_flat_values(p["x"]), 6)


def _transpose_scalar(p: Params) -> Any:
    x = p["x"]  # (2, 3, 2) with axes (2, 0, 1) -> (2, 2, 3)
    return _flat_dot([[[x[i][j][k] for j in range(3)] for i in range(2)] for k in range(2)], 12)


def _concatenate_scalar(p: Params) -> Any:
    return _flat_dot([[p["x"][i][0], p["y"][i][0], p["y"][i][1]] for i in range(2)], 6)


def _stack_scalar(p: Params) -> Any:
    return _flat_dot([[p["x"][i], p["y"][i]] for i in range(3)], 6)


_TAKEN = (2, 0, 2)


def _take_scalar(p: Params) -> Any:
    return _flat_dot([list(p["x"][i]) for i in _TAKEN], 9)


def _pad_scalar(p: Params) -> Any:
    x = p["x"]  # (2, 2) padded by ((1, 0), (0, 2)) with 0.5 -> (3, 4)
    rows = [[0.5] * 4] + [[x[i][0], x[i][1], 0.5, 0.5] for i in range(2)]
    return _flat_dot(rows, 12)


def _linear_scalar(p: Params) -> Any:
    w, b = p["w"], p["b"]  # X (2, 2, 2) @ w (3, 2).T + b (3,)
    out = [
        [[_s_sum(_BATCH[n][t][k] * w[o][k] for k in range(2)) + b[o] for o in range(3)] for t in range(2)]
        for n in range(2)
    ]
    return _flat_dot(out, 12)


_BATCH = (((0.5, -1.0), (2.0, 0.25)), ((1.5, -0.75), (-0.5, 1.0)))


# --- convolutions and pools ------------------------------------------------------------------------


def _conv2d_scalar(p: Params) -> Any:
    x, w, b = p["x"], p["w"], p["b"]  # x (1, 2, 4, 4), w (3, 2, 3, 3), stride 2, padding 1 -> (1, 3, 2, 2)

    def at(c: int, i: int, j: int) -> Any:
        return x[0][c][i][j] if 0 <= i < 4 and 0 <= j < 4 else 0.0

    out = [
        [
            [
                _s_sum(
                    w[o][c][u][v] * at(c, 2 * r - 1 + u, 2 * s - 1 + v)
                    for c in range(2)
                    for u in range(3)
                    for v in range(3)
                )
                + b[o]
                for s in range(2)
            ]
            for r in range(2)
        ]
        for o in range(3)
    ]
    return _flat_dot([out], 12)


def _conv1d_scalar(p: Params) -> Any:
    x, w, b = p["x"], p["w"], p["b"]  # x (2, 2, 5), w (3, 2, 2), stride 2 -> (2, 3, 2)
    out = [
        [
            [
                _s_sum(w[o][c][u] * x[n][c][2 * t + u] for c in range(2) for u in range(2)) + b[o]
                for t in range(2)
            ]
            for o in range(3)
        ]
        for n in range(2)
    ]
    return _flat_dot(out, 12)


def _pool_scalar(p: Params, largest: bool) -> Any:
    x = p["x"]  # (1, 2, 4, 4), kernel 2 (stride 2) -> (1, 2, 2, 2)

    def window(c: int, r: int, s: int) -> Any:
        values = [x[0][c][2 * r + u][2 * s + v] for u in range(2) for v in range(2)]
        if not largest:
            return _s_sum(values) / 4.0
        best = values[0]
        for v in values[1:]:
            if v > best:
                best = v
        return best

    return _flat_dot([[[[window(c, r, s) for s in range(2)] for r in range(2)] for c in range(2)]], 8)


def _attention_scalar(p: Params) -> Any:
    q, k, v = p["q"], p["k"], p["v"]  # each (2, 3, 2); causal, scale 1 / sqrt(2)
    out = []
    for b in range(2):
        rows = []
        for t in range(3):
            scores = [
                _s_sum(q[b][t][e] * k[b][s][e] for e in range(2)) * (1.0 / math.sqrt(2.0))
                for s in range(t + 1)
            ]
            lse = _s_lse(scores)
            weights = [tape.exp(score - lse) for score in scores]
            rows.append([_s_sum(w * v[b][s][j] for s, w in enumerate(weights)) for j in range(2)])
        out.append(rows)
    return _flat_dot(out, 12)


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
    **{name: _binary_case(name) for name in _BINARY},
    **{name: _compare_case(name) for name in _COMPARE},
    "array_where": Case(
        lambda p: _dot(A.where(_MASK, p["x"], p["y"]), 6), _where_scalar, {"x": (2, 3), "y": (3,)}
    ),
    "getitem": Case(lambda p: _dot(A.asarray(p["x"])[1:, ::2], 4), _getitem_scalar, {"x": (3, 4)}),
    "reshape": Case(lambda p: _dot(A.reshape(p["x"], (3, -1)), 6), _reshape_scalar, {"x": (2, 3)}),
    "transpose": Case(
        lambda p: _dot(A.transpose(p["x"], (2, 0, 1)), 12), _transpose_scalar, {"x": (2, 3, 2)}
    ),
    "concatenate": Case(
        lambda p: _dot(A.concatenate([p["x"], p["y"]], axis=1), 6),
        _concatenate_scalar,
        {"x": (2, 1), "y": (2, 2)},
    ),
    "stack": Case(
        lambda p: _dot(A.stack([p["x"], p["y"]], axis=1), 6), _stack_scalar, {"x": (3,), "y": (3,)}
    ),
    "take": Case(lambda p: _dot(A.take(p["x"], _TAKEN, axis=0), 9), _take_scalar, {"x": (4, 3)}),
    "pad": Case(lambda p: _dot(A.pad(p["x"], ((1, 0), (0, 2)), value=0.5), 12), _pad_scalar, {"x": (2, 2)}),
    "linear_leading_axes": Case(
        lambda p: _dot(A.linear(p["w"], p["b"], _BATCH), 12), _linear_scalar, {"w": (3, 2), "b": (3,)}
    ),
    "conv2d": Case(
        lambda p: _dot(A.conv2d(p["x"], p["w"], p["b"], stride=2, padding=1), 12),
        _conv2d_scalar,
        {"x": (1, 2, 4, 4), "w": (3, 2, 3, 3), "b": (3,)},
    ),
    "conv1d": Case(
        lambda p: _dot(A.conv1d(p["x"], p["w"], p["b"], stride=2), 12),
        _conv1d_scalar,
        {"x": (2, 2, 5), "w": (3, 2, 2), "b": (3,)},
    ),
    "max_pool2d": Case(
        lambda p: _dot(A.max_pool2d(p["x"], 2), 8),
        lambda p: _pool_scalar(p, True),
        {"x": (1, 2, 4, 4)},
        distinct=True,
    ),
    "avg_pool2d": Case(
        lambda p: _dot(A.avg_pool2d(p["x"], 2), 8), lambda p: _pool_scalar(p, False), {"x": (1, 2, 4, 4)}
    ),
    "matmul": Case(
        lambda p: _dot(A.matmul(p["a"], p["b"]), 8), _matmul_scalar, {"a": (2, 2, 3), "b": (3, 2)}
    ),
    "scaled_dot_product_attention": Case(
        lambda p: _dot(A.scaled_dot_product_attention(p["q"], p["k"], p["v"], is_causal=True), 12),
        _attention_scalar,
        {"q": (2, 3, 2), "k": (2, 3, 2), "v": (2, 3, 2)},
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


def _distinct(shapes: dict[str, Shape]) -> st.SearchStrategy[Params]:
    """Params whose entries are a drawn permutation of well-separated values: no ties anywhere."""
    names = sorted(shapes)
    sizes = [math.prod(shapes[name]) for name in names]
    n = sum(sizes)

    def build(order: list[int], shift: float) -> Params:
        values = [(k - n / 2) * (3.0 / n) + shift for k in order]
        out: dict[str, Any] = {}
        start = 0
        for name, count in zip(names, sizes, strict=True):
            chunk = values[start : start + count]
            out[name] = nest(chunk, shapes[name]) if shapes[name] else chunk[0]
            start += count
        return pmap(out)

    return st.builds(build, st.permutations(range(n)), st.floats(-0.4, 0.4, allow_nan=False))


def _draw(case: Case) -> st.SearchStrategy[Params]:
    if case.distinct:
        return _distinct(case.shapes)
    return parameter_trees(case.shapes, case.elements)


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
