"""Second order through the array front-end: ``hvp`` of losses written with the MLP ops.

Inside a nested tape the MLP ops (``linear``, the activations, the losses) record
scalar ops, so ``hvp`` and ``grad`` of ``grad`` work on them; the N-d ops refuse
(see ``test_nd_reduce``). Checked against central differences of the gradient and
against the Hessian's symmetry ``u . H v == v . H u``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

import tape
from tape import arrays as A
from tape.tree import tree_leaves, tree_map

Params = tuple[list[list[float]], list[list[float]]]

X = [[0.5, -1.0], [2.0, 0.3], [-0.4, 0.8]]
LABELS = [0, 1, 1]
TARGETS = [[0.2, -0.1], [0.0, 0.4], [1.0, 0.5]]

LOSSES: dict[str, Callable[[Any], Any]] = {
    "tanh, linear, cross-entropy": lambda w: A.cross_entropy_with_logits(
        A.linear(w[1], [0.1, -0.2], A.tanh(A.linear(w[0], None, X))), LABELS
    ),
    "sigmoid, linear, mse": lambda w: A.mse(
        A.linear(w[1], None, A.sigmoid(A.linear(w[0], [0.3, 0.0, -0.1], X))), TARGETS
    ),
    "softplus, gelu, mean": lambda w: A.mean(
        A.gelu(A.linear(w[1], None, A.softplus(A.linear(w[0], None, X))))
    ),
}

weights = st.floats(-1.0, 1.0, allow_nan=False)


@st.composite
def params(draw: st.DrawFn) -> Params:
    """The two weight matrices: ``(3, 2)`` then ``(2, 3)``."""
    first = [[draw(weights) for _ in range(2)] for _ in range(3)]
    second = [[draw(weights) for _ in range(3)] for _ in range(2)]
    return first, second


def _dot(a: Any, b: Any) -> float:
    return math.fsum(x * y for x, y in zip(tree_leaves(a), tree_leaves(b), strict=True))


@given(st.sampled_from(sorted(LOSSES)), params(), params(), params())
@example(
    "tanh, linear, cross-entropy",
    ([[0.3, -0.2], [0.1, 0.4], [0.5, -0.6]], [[0.2, -0.1, 0.3], [-0.4, 0.5, 0.1]]),
    ([[1.0, 0.0], [0.5, -1.0], [0.0, 0.2]], [[0.3, 0.1, -0.2], [0.0, 1.0, 0.5]]),
    ([[0.0, 1.0], [0.0, 0.0], [1.0, 0.0]], [[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]),
)
def test_hvp_of_an_array_loss_is_the_derivative_of_its_gradient(
    name: str, w: Params, v: Params, u: Params
) -> None:
    loss = LOSSES[name]
    hv = tape.hvp(loss, w, v)
    h = 1e-5
    up = tape.grad(loss)(tree_map(lambda p, d: p + h * d, w, v))
    down = tape.grad(loss)(tree_map(lambda p, d: p - h * d, w, v))
    numeric = [(a - b) / (2 * h) for a, b in zip(tree_leaves(up), tree_leaves(down), strict=True)]
    for got, want in zip(tree_leaves(hv), numeric, strict=True):
        assert math.isclose(got, want, rel_tol=1e-5, abs_tol=1e-6), (got, want)
    assert math.isclose(_dot(u, hv), _dot(v, tape.hvp(loss, w, u)), rel_tol=1e-9, abs_tol=1e-12)
