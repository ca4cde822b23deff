"""Hand-written pure-Python implementations: explicit loops, hand-derived gradients, no autodiff.

This is the practical limit for pure Python that the library is measured against,
so it uses the fastest idioms the language offers: dot products as
``sum(map(mul, row, x))`` (the loop runs in C), whole-batch list comprehensions,
transposes by ``zip(*rows)``, and weight gradients as dot products of columns
over the batch. Params are plain lists: a layer is ``(weight rows, biases)``.

The formulas are the library's (and PyTorch's): MSE and cross-entropy with
logits averaged over the batch, relu with derivative 0 at 0, SGD ``p - lr * g``
and Adam with bias-corrected moments. ``tests/test_benchmarks_smoke.py`` checks
that they give the library's numbers.
"""

from __future__ import annotations

import gc
import math
from collections.abc import Sequence
from operator import mul
from typing import TypeAlias, cast

from pyrsistent import pmap, pvector

from functional_nn.mlp import Params
from tests.benchmarks.workloads import ADD, MUL, RELU, GraphProblem, Instruction, replay

__all__ = [
    "Adam",
    "Layer",
    "Matrix",
    "Net",
    "adam_init",
    "adam_step",
    "forward",
    "forward_one",
    "from_params",
    "graph_gradient",
    "graph_output",
    "graph_values",
    "lean_graph_gradient",
    "mse_step",
    "cross_entropy_epoch",
    "cross_entropy_grads",
    "sgd_step",
    "to_params",
]

Matrix: TypeAlias = list[list[float]]
Layer: TypeAlias = tuple[Matrix, list[float]]
"""``(weight, bias)``: ``weight[j]`` is output unit ``j``'s row, as in ``torch.nn.Linear``."""
Net: TypeAlias = list[Layer]
Adam: TypeAlias = tuple[int, list[Layer], list[Layer]]
"""``(step count, first moments, second moments)``, moments shaped like the net."""

_exp = math.exp
_log = math.log
_sqrt = math.sqrt


def from_params(params: Params) -> Net:
    """The library's params as plain lists."""
    return [
        (
            [list(row) for row in cast("Sequence[Sequence[float]]", layer["weight"])],
            list(cast("Sequence[float]", layer["bias"])),
        )
        for layer in params["layers"]
    ]


def to_params(net: Net) -> Params:
    """Plain lists back as the library's params (for comparing results)."""
    return pmap(
        {
            "layers": pvector(
                [pmap({"weight": pvector([pvector(row) for row in w]), "bias": pvector(b)}) for w, b in net]
            )
        }
    )


# --- forward ----------------------------------------------------------------------------


def forward(net: Net, xs: Sequence[Sequence[float]]) -> tuple[list[Matrix], list[Matrix]]:
    """Batch forward pass: ``(inputs of each layer, pre-activations of each layer)``.

    Hidden layers are relu, the last is the identity; the outputs are the last
    pre-activations.
    """
    inputs: list[Matrix] = []
    pre: list[Matrix] = []
    h = cast(Matrix, xs)
    last = len(net) - 1
    for i, (w, b) in enumerate(net):
        z = [[sum(map(mul, row, x)) + c for row, c in zip(w, b, strict=True)] for x in h]
        inputs.append(h)
        pre.append(z)
        if i < last:
            h = [[v if v > 0.0 else 0.0 for v in zx] for zx in z]
    return inputs, pre


def forward_one(net: Net, x: Sequence[float]) -> list[float]:
    """One example's outputs (W4: inference on floats)."""
    h = x
    last = len(net) - 1
    for i, (w, b) in enumerate(net):
        if i < last:
            h = [
                v if v > 0.0 else 0.0
                for v in [sum(map(mul, row, h)) + c for row, c in zip(w, b, strict=True)]
            ]
        else:
            h = [sum(map(mul, row, h)) + c for row, c in zip(w, b, strict=True)]
    return cast("list[float]", h)


# --- backward ---------------------------------------------------------------------------


def _backward(net: Net, inputs: list[Matrix], pre: list[Matrix], grad_out: Matrix) -> Net:
    """Gradients of every layer from ``d loss / d outputs`` (one row per example)."""
    grads: Net = []
    g = grad_out
    for i in range(len(net) - 1, -1, -1):
        columns = list(zip(*g, strict=True))  # d loss / d z, one column per unit, over the batch
        features = list(zip(*inputs[i], strict=True))
        grads.append(
            ([[sum(map(mul, gj, fk)) for fk in features] for gj in columns], [sum(gj) for gj in columns])
        )
        if i:
            weight_columns = list(zip(*net[i][0], strict=True))
            g = [
                [
                    sum(map(mul, gx, wk)) if zk > 0.0 else 0.0
                    for wk, zk in zip(weight_columns, zx, strict=True)
                ]
                for gx, zx in zip(g, pre[i - 1], strict=True)
            ]
    grads.reverse()
    return grads


# --- optimizers -------------------------------------------------------------------------


def sgd_step(net: Net, grads: Net, lr: float) -> Net:
    """``p - lr * g`` for every parameter."""
    return [
        (
            [[p - lr * q for p, q in zip(row, grow, strict=True)] for row, grow in zip(w, gw, strict=True)],
            [p - lr * q for p, q in zip(b, gb, strict=True)],
        )
        for (w, b), (gw, gb) in zip(net, grads, strict=True)
    ]


def adam_init(net: Net) -> Adam:
    """Zero moments at step 0."""
    zeros: list[Layer] = [([[0.0] * len(row) for row in w], [0.0] * len(b)) for w, b in net]
    return 0, zeros, [([row[:] for row in w], b[:]) for w, b in zeros]


def _adam_vector(
    p: list[float], g: list[float], m: list[float], v: list[float], b1: float, b2: float, c: tuple[float, ...]
) -> tuple[list[float], list[float], list[float]]:
    c1, c2, lr, eps = c
    a1, a2 = 1.0 - b1, 1.0 - b2
    m = [b1 * mi + a1 * gi for mi, gi in zip(m, g, strict=True)]
    v = [b2 * vi + a2 * gi * gi for vi, gi in zip(v, g, strict=True)]
    p = [pi - lr * ((mi / c1) / (_sqrt(vi / c2) + eps)) for pi, mi, vi in zip(p, m, v, strict=True)]
    return p, m, v


def adam_step(
    net: Net,
    grads: Net,
    state: Adam,
    lr: float = 1e-3,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
) -> tuple[Net, Adam]:
    """One step of ``torch.optim.Adam``: ``p -= lr * m_hat / (sqrt(v_hat) + eps)``, bias-corrected."""
    t, ms, vs = state
    t += 1
    c = (1.0 - b1**t, 1.0 - b2**t, lr, eps)
    new_net: Net = []
    new_ms: list[Layer] = []
    new_vs: list[Layer] = []
    for (w, b), (gw, gb), (mw, mb), (vw, vb) in zip(net, grads, ms, vs, strict=True):
        rows = [_adam_vector(*args, b1, b2, c) for args in zip(w, gw, mw, vw, strict=True)]
        bias = _adam_vector(b, gb, mb, vb, b1, b2, c)
        new_net.append(([r[0] for r in rows], bias[0]))
        new_ms.append(([r[1] for r in rows], bias[1]))
        new_vs.append(([r[2] for r in rows], bias[2]))
    return new_net, (t, new_ms, new_vs)


# --- the workloads ----------------------------------------------------------------------


def mse_step(net: Net, xs: Sequence[Sequence[float]], ys: Sequence[float], lr: float) -> tuple[float, Net]:
    """W1: one full-batch SGD step on the mean squared error; ``(loss before the step, new net)``."""
    inputs, pre = forward(net, xs)
    diffs = [z[0] - y for z, y in zip(pre[-1], ys, strict=True)]
    n = len(diffs)
    loss = sum([d * d for d in diffs], 0.0) / n
    scale = 2.0 / n
    grads = _backward(net, inputs, pre, [[scale * d] for d in diffs])
    return loss, sgd_step(net, grads, lr)


def cross_entropy_grads(net: Net, xs: Sequence[Sequence[float]], labels: Sequence[int]) -> tuple[float, Net]:
    """Mean cross-entropy of the logits and its gradients: softmax minus one-hot, over the batch size."""
    inputs, pre = forward(net, xs)
    n = len(labels)
    total = 0.0
    grad_out: Matrix = []
    for z, k in zip(pre[-1], labels, strict=True):
        top = max(z)
        exps = [_exp(v - top) for v in z]
        s = sum(exps)
        total += _log(s) - (z[k] - top)
        scale = 1.0 / (s * n)
        g = [e * scale for e in exps]
        g[k] -= 1.0 / n
        grad_out.append(g)
    return total / n, _backward(net, inputs, pre, grad_out)


def cross_entropy_epoch(
    net: Net, batches: Sequence[tuple[Sequence[Sequence[float]], Sequence[int]]], lr: float
) -> tuple[list[float], Net]:
    """W3: one epoch of Adam over ``batches``; ``(loss of each batch, new net)``."""
    state = adam_init(net)
    losses: list[float] = []
    for xs, labels in batches:
        loss, grads = cross_entropy_grads(net, xs, labels)
        net, state = adam_step(net, grads, state, lr)
        losses.append(loss)
    return losses, net


def graph_values(problem: GraphProblem) -> list[float]:
    """W2 on bare floats, forward only: the value of every node, leaves first (the output last)."""
    values = list(problem.leaves)
    append = values.append
    for kind, a, b in problem.program:
        if kind == ADD:
            append(values[a] + values[b])
        elif kind == MUL:
            append(values[a] * values[b])
        else:
            x = values[a]
            append(x if x > 0.0 else 0.0)
    return values


def graph_output(problem: GraphProblem) -> float:
    """W2's output evaluated on floats (no autodiff): what evaluating the graph costs at the least."""
    return graph_values(problem)[-1]


def graph_gradient(problem: GraphProblem) -> tuple[float, list[float]]:
    """W2 by hand: evaluate the program on floats, then one reverse sweep of hand-derived adjoints."""
    values = graph_values(problem)
    return values[-1], _graph_sweep(problem.program, values, len(problem.leaves))


def _graph_sweep(program: Sequence[Instruction], values: list[float], leaves: int) -> list[float]:
    """The leaves' adjoints of the last value, by one reverse sweep over W2's three ops."""
    adjoints = [0.0] * len(values)
    adjoints[-1] = 1.0
    # reversed(adjoints) reads live: adjoint i is final when reached, as ops only feed later ones;
    # the leaves, first in adjoints, have no instruction (hence strict=False).
    for (kind, a, b), g in zip(reversed(program), reversed(adjoints), strict=False):
        if g == 0.0:
            continue
        if kind == ADD:
            adjoints[a] += g
            adjoints[b] += g
        elif kind == MUL:
            adjoints[a] += g * values[b]
            adjoints[b] += g * values[a]
        elif values[a] > 0.0:
            adjoints[a] += g
    return adjoints[:leaves]


# --- W2's floor for an eager tape -------------------------------------------------------------

_LEAN_ADD, _LEAN_MUL, _LEAN_RELU, _LEAN_LEAF = ADD, MUL, RELU, -1


class LeanValue:
    """The least an eager tape's value can be: its number, its position and its node list.

    Each op makes its value without an ``__init__`` call and appends ``(op, first, second)``
    to the list, W2's own instruction format; nothing is checked (no other tape, no
    constants, no closed tape), and the three ops are written into the value and the sweep.
    """

    __slots__ = ("data", "nodes", "position")
    data: float
    nodes: list[tuple[int, int, int]]
    position: int

    def __add__(self, other: LeanValue) -> LeanValue:
        nodes = self.nodes
        out = _new_lean(LeanValue)
        out.data, out.nodes, out.position = self.data + other.data, nodes, len(nodes)
        nodes.append((_LEAN_ADD, self.position, other.position))
        return out

    def __mul__(self, other: LeanValue) -> LeanValue:
        nodes = self.nodes
        out = _new_lean(LeanValue)
        out.data, out.nodes, out.position = self.data * other.data, nodes, len(nodes)
        nodes.append((_LEAN_MUL, self.position, other.position))
        return out

    def relu(self) -> LeanValue:
        nodes = self.nodes
        x = self.data
        out = _new_lean(LeanValue)
        out.data, out.nodes, out.position = x if x > 0.0 else 0.0, nodes, len(nodes)
        nodes.append((_LEAN_RELU, self.position, 0))
        return out


_new_lean = object.__new__


def _lean_leaf(x: float, nodes: list[tuple[int, int, int]]) -> LeanValue:
    leaf = _new_lean(LeanValue)
    leaf.data, leaf.nodes, leaf.position = x, nodes, len(nodes)
    nodes.append((_LEAN_LEAF, 0, 0))
    return leaf


def lean_graph_gradient(problem: GraphProblem) -> tuple[float, list[float]]:
    """W2 on the leanest eager tape: values recorded through Python's operators, one reverse sweep.

    What any tape that records as it runs costs at the least here: one object and one
    node per op, with the collector paused, and none of a library's checks or op table.
    """
    paused = gc.isenabled()
    gc.disable()
    try:
        nodes: list[tuple[int, int, int]] = []
        leaves = [_lean_leaf(x, nodes) for x in problem.leaves]
        recorded = replay(problem.program, leaves)
        values = [v.data for v in recorded]
        return values[-1], _graph_sweep(nodes[len(leaves) :], values, len(leaves))  # its own recording
    finally:
        if paused:
            gc.enable()
