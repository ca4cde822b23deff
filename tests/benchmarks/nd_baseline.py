"""Hand-written pure-Python W5, W6 and W8: explicit loops, hand-derived gradients, no autodiff.

Written as :mod:`tests.benchmarks.baseline` writes the MLP, with the fastest idioms
pure Python offers: dot products as ``sum(map(mul, a, b))``, transposes by
``zip(*rows)``, whole-batch list comprehensions, weight gradients as dot products
of columns over the batch. Adam is :func:`tests.benchmarks.baseline.adam_step`,
over the parameters laid out as its ``(weight rows, biases)`` layers.

- The convolution (stride 1, zero padding) gathers, for each kernel entry, the input
  under every output position of the batch (im2col, one list per entry, built from
  row slices) and takes each output as one dot product of a filter with a patch;
  its weight gradient is one dot product per (filter, entry) over the whole batch.
  Activations are kept one flat list per channel, over ``(example, row, column)``.
- Attention runs example by example and head by head on rows of floats; causal
  scores are computed for the visible steps only.
- The RNN runs the batch one time step at a time, and back-propagates through time.

The formulas are PyTorch's (and the library's): relu with derivative 0 at 0, max
pooling's gradient to the first maximal entry of its window, ``softmax(q k^T /
sqrt(head_dim))`` over the steps a query may see, cross-entropy with logits
averaged over the batch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import chain
from operator import mul

from tests.benchmarks.baseline import Adam, Matrix, Net, adam_init, adam_step
from tests.benchmarks.nd_workloads import (
    AttentionProblem,
    AttentionWeights,
    CnnWeights,
    Images,
    RnnProblem,
    RnnWeights,
)

__all__ = [
    "attention_gradients",
    "cnn_epoch",
    "cnn_grads",
    "cnn_net",
    "cnn_weights",
    "rnn_net",
    "rnn_step",
    "rnn_weights",
]

_exp = math.exp
_log = math.log
_tanh = math.tanh


def _cross_entropy(logits: Matrix, labels: Sequence[int]) -> tuple[float, Matrix]:
    """Mean cross-entropy of rows of logits and its gradient: (softmax - one-hot) / batch."""
    n = len(labels)
    total = 0.0
    grad: Matrix = []
    for z, k in zip(logits, labels, strict=True):
        top = max(z)
        exps = [_exp(v - top) for v in z]
        s = sum(exps)
        total += _log(s) - (z[k] - top)
        scale = 1.0 / (s * n)
        g = [e * scale for e in exps]
        g[k] -= 1.0 / n
        grad.append(g)
    return total / n, grad


def _linear(
    weight: Sequence[Sequence[float]], bias: Sequence[float], rows: Sequence[Sequence[float]]
) -> Matrix:
    return [[sum(map(mul, w, x), c) for w, c in zip(weight, bias, strict=True)] for x in rows]


def _linear_grads(
    weight: Sequence[Sequence[float]], rows: Sequence[Sequence[float]], grad: Matrix, *, inputs: bool = True
) -> tuple[Matrix, list[float], Matrix]:
    """``(d weight, d bias, d rows)`` of ``rows @ weight^T + bias`` from ``grad`` (``d rows`` optional)."""
    columns = list(zip(*grad, strict=True))
    features = list(zip(*rows, strict=True))
    gw = [[sum(map(mul, g, f)) for f in features] for g in columns]
    gb = [sum(g) for g in columns]
    if not inputs:
        return gw, gb, []
    weight_columns = list(zip(*weight, strict=True))
    gx = [[sum(map(mul, g, w)) for w in weight_columns] for g in grad]
    return gw, gb, gx


# --- W5: the digits CNN -----------------------------------------------------------------


def cnn_net(weights: CnnWeights) -> Net:
    """The CNN as Adam's layers: each filter flattened to one row ``(in, kh, kw)``, then the linear layer."""
    filters = [[v for plane in f for row in plane for v in row] for f in weights.conv_weight]
    return [
        (filters, list(weights.conv_bias)),
        ([list(row) for row in weights.linear_weight], list(weights.linear_bias)),
    ]


def cnn_weights(net: Net, channels_in: int = 1, kernel: int = 3) -> CnnWeights:
    """Adam's layers back as :class:`CnnWeights`."""
    (filters, conv_bias), (linear_weight, linear_bias) = net
    per_plane = kernel * kernel
    return CnnWeights(
        tuple(
            tuple(
                tuple(
                    tuple(f[c * per_plane + r * kernel : c * per_plane + (r + 1) * kernel])
                    for r in range(kernel)
                )
                for c in range(channels_in)
            )
            for f in filters
        ),
        tuple(conv_bias),
        tuple(tuple(row) for row in linear_weight),
        tuple(linear_bias),
    )


def _im2col(images: Images, kernel: int, padding: int) -> tuple[list[list[float]], int, int]:
    """One list per kernel entry ``(channel, ki, kj)``: the padded input under every output position.

    Positions run over ``(example, output row, output column)``; also the output height and width.
    """
    h, w = len(images[0][0]), len(images[0][0][0])
    oh, ow = h + 2 * padding - kernel + 1, w + 2 * padding - kernel + 1
    side = [0.0] * padding
    blank = [[0.0] * (w + 2 * padding)] * padding
    padded = [
        [blank + [side + list(row) + side for row in plane] + blank for plane in image] for image in images
    ]
    columns: list[list[float]] = []
    for c in range(len(images[0])):
        for ki in range(kernel):
            for kj in range(kernel):
                column: list[float] = []
                extend = column.extend
                for image in padded:
                    for row in image[c][ki : ki + oh]:
                        extend(row[kj : kj + ow])
                columns.append(column)
    return columns, oh, ow


def _pool_corners(plane: list[float], rows: int, width: int) -> list[list[float]]:
    """Each 2x2 window's four entries of a ``(rows, width)`` map, as four flat lists (top-left first)."""
    lines = [plane[r * width : (r + 1) * width] for r in range(rows)]
    top, bottom = lines[0::2], lines[1::2]
    return [list(chain.from_iterable(line[j::2] for line in half)) for half in (top, bottom) for j in (0, 1)]


def cnn_grads(net: Net, images: Images, labels: Sequence[int]) -> tuple[float, Net]:
    """The CNN's mean cross-entropy on a batch and its gradients, layer by layer as ``net``."""
    (filters, conv_bias), (linear_weight, linear_bias) = net
    columns, oh, ow = _im2col(images, 3, 1)
    patches = list(zip(*columns, strict=True))
    rows = len(images) * oh  # output rows over the whole batch, per channel
    per_example = (oh // 2) * (ow // 2)
    # forward: conv + relu, 2x2 max pool, flatten (channel-major per example), linear
    corners: list[list[list[float]]] = []
    pooled: list[list[float]] = []
    for f, c in zip(filters, conv_bias, strict=True):
        activated = [v if v > 0.0 else 0.0 for v in [sum(map(mul, f, p), c) for p in patches]]
        four = _pool_corners(activated, rows, ow)
        corners.append(four)
        pooled.append(list(map(max, *four)))
    n = len(images)
    features = [
        list(chain.from_iterable(plane[b * per_example : (b + 1) * per_example] for plane in pooled))
        for b in range(n)
    ]
    loss, grad_logits = _cross_entropy(_linear(linear_weight, linear_bias, features), labels)
    # backward
    gw, gb, grad_features = _linear_grads(linear_weight, features, grad_logits)
    # the conv's weight gradient, window corner by window corner: no need to rebuild full maps
    split_columns = [_pool_corners(column, rows, ow) for column in columns]
    grad_filters: Matrix = []
    grad_bias: list[float] = []
    for o, (four, top) in enumerate(zip(corners, pooled, strict=True)):
        start = o * per_example
        grad_pooled = list(chain.from_iterable(g[start : start + per_example] for g in grad_features))
        # each window's gradient goes to its first maximal entry, if positive (relu's derivative)
        first = [
            -1 if m <= 0.0 else 0 if x == m else 1 if y == m else 2 if z == m else 3
            for x, y, z, m in zip(four[0], four[1], four[2], top, strict=True)
        ]
        grads = [[g if i == k else 0.0 for g, i in zip(grad_pooled, first, strict=True)] for k in range(4)]
        grad_filters.append(
            [
                sum([sum(map(mul, g, part)) for g, part in zip(grads, split, strict=True)])
                for split in split_columns
            ]
        )
        grad_bias.append(sum([sum(g) for g in grads]))
    return loss, [(grad_filters, grad_bias), (gw, gb)]


def cnn_epoch(
    net: Net, batches: Sequence[tuple[Images, Sequence[int]]], lr: float
) -> tuple[list[float], Net]:
    """W5: one epoch of Adam over ``batches`` of ``(images, labels)``; ``(loss of each batch, new net)``."""
    state: Adam = adam_init(net)
    losses: list[float] = []
    for images, labels in batches:
        loss, grads = cnn_grads(net, images, labels)
        net, state = adam_step(net, grads, state, lr)
        losses.append(loss)
    return losses, net


# --- W6: causal self-attention ----------------------------------------------------------


def _softmax(row: list[float]) -> list[float]:
    top = max(row)
    exps = [_exp(v - top) for v in row]
    s = 1.0 / sum(exps)
    return [e * s for e in exps]


def attention_gradients(problem: AttentionProblem) -> tuple[float, AttentionWeights]:
    """W6: ``mean(y ** 2)`` of the causal block's output ``y`` and its gradients for the four parameters."""
    w = problem.weights
    d, heads = problem.d_model, problem.heads
    hd = d // heads
    scale = 1.0 / math.sqrt(hd)
    rows = [x for sequence in problem.inputs for x in sequence]  # (batch * time, d)
    qkv = _linear(w.in_proj_weight, w.in_proj_bias, rows)
    time = len(problem.inputs[0])
    # forward, per example and head: probabilities of the visible steps, and the heads' outputs
    saved: list[tuple[list[list[float]], Matrix, Matrix, Matrix]] = []
    outputs: Matrix = [[] for _ in rows]
    for start in range(0, len(rows), time):
        block = qkv[start : start + time]
        for h in range(heads):
            q = [r[h * hd : (h + 1) * hd] for r in block]
            k = [r[d + h * hd : d + (h + 1) * hd] for r in block]
            v = [r[2 * d + h * hd : 2 * d + (h + 1) * hd] for r in block]
            v_columns = list(zip(*v, strict=True))
            probabilities = [
                _softmax([sum(map(mul, qt, ks)) * scale for ks in k[: t + 1]]) for t, qt in enumerate(q)
            ]
            for t, p in enumerate(probabilities):
                outputs[start + t].extend([sum(map(mul, p, column)) for column in v_columns])
            saved.append((probabilities, q, k, v))
    y = _linear(w.out_proj_weight, w.out_proj_bias, outputs)
    count = len(y) * d
    loss = sum([sum(map(mul, r, r)) for r in y]) / count
    # backward
    twice = 2.0 / count
    grad_y = [[twice * v for v in r] for r in y]
    g_out_w, g_out_b, grad_outputs = _linear_grads(w.out_proj_weight, outputs, grad_y)
    grad_qkv: Matrix = [[0.0] * (3 * d) for _ in rows]
    for index, (probabilities, q, k, v) in enumerate(saved):
        start, h = (index // heads) * time, index % heads
        k_columns = list(zip(*k, strict=True))
        dq: Matrix = []
        ds_rows: Matrix = []  # d scores, zero where a query may not look
        for t, p in enumerate(probabilities):
            g = grad_outputs[start + t][h * hd : (h + 1) * hd]
            dp = [sum(map(mul, g, vs)) for vs in v[: t + 1]]
            inner = sum(map(mul, p, dp))
            ds = [pi * (gi - inner) * scale for pi, gi in zip(p, dp, strict=True)]
            dq.append([sum(map(mul, ds, column)) for column in k_columns])  # map stops at t + 1
            ds_rows.append(ds + [0.0] * (time - t - 1))
        p_columns = list(zip(*[p + [0.0] * (time - t - 1) for t, p in enumerate(probabilities)], strict=True))
        g_columns = list(
            zip(*[r[h * hd : (h + 1) * hd] for r in grad_outputs[start : start + time]], strict=True)
        )
        q_columns = list(zip(*q, strict=True))
        ds_columns = list(zip(*ds_rows, strict=True))
        for s, (pc, dc) in enumerate(zip(p_columns, ds_columns, strict=True)):
            row = grad_qkv[start + s]
            row[h * hd : (h + 1) * hd] = dq[s]
            row[d + h * hd : d + (h + 1) * hd] = [sum(map(mul, dc, qc)) for qc in q_columns]
            row[2 * d + h * hd : 2 * d + (h + 1) * hd] = [sum(map(mul, pc, gc)) for gc in g_columns]
    g_in_w, g_in_b, _ = _linear_grads(w.in_proj_weight, rows, grad_qkv, inputs=False)
    return loss, AttentionWeights(
        tuple(tuple(r) for r in g_in_w), tuple(g_in_b), tuple(tuple(r) for r in g_out_w), tuple(g_out_b)
    )


# --- W8: an Elman RNN -------------------------------------------------------------------


def rnn_net(weights: RnnWeights) -> Net:
    """The RNN as Adam's layers: ``(W_ih, b_ih)``, ``(W_hh, b_hh)``, the head."""
    return [
        ([list(r) for r in weights.weight_ih], list(weights.bias_ih)),
        ([list(r) for r in weights.weight_hh], list(weights.bias_hh)),
        ([list(r) for r in weights.head_weight], list(weights.head_bias)),
    ]


def rnn_weights(net: Net) -> RnnWeights:
    """Adam's layers back as :class:`RnnWeights`."""
    (wi, bi), (wh, bh), (wo, bo) = net

    def matrix(m: Matrix) -> tuple[tuple[float, ...], ...]:
        return tuple(tuple(r) for r in m)

    return RnnWeights(matrix(wi), matrix(wh), tuple(bi), tuple(bh), matrix(wo), tuple(bo))


def _accumulate(row: list[float], g: Sequence[float], columns: Sequence[Sequence[float]]) -> list[float]:
    """``row + [g . column for column in columns]``: one step's share of a weight gradient row."""
    return [a + sum(map(mul, g, x)) for a, x in zip(row, columns, strict=True)]


def _rnn_grads(
    net: Net, steps: Sequence[Sequence[Sequence[float]]], labels: Sequence[int]
) -> tuple[float, Net]:
    (wi, bi), (wh, bh), (wo, bo) = net
    n, hidden = len(labels), len(bi)
    bias = [a + b for a, b in zip(bi, bh, strict=True)]
    states: list[Matrix] = [[[0.0] * hidden for _ in range(n)]]
    for x in steps:
        h = states[-1]
        states.append(
            [
                [
                    _tanh(sum(map(mul, wx, xb), sum(map(mul, wr, hb), c)))
                    for wx, wr, c in zip(wi, wh, bias, strict=True)
                ]
                for xb, hb in zip(x, h, strict=True)
            ]
        )
    loss, grad_logits = _cross_entropy(_linear(wo, bo, states[-1]), labels)
    go_w, go_b, grad_h = _linear_grads(wo, states[-1], grad_logits)
    gi_w = [[0.0] * len(wi[0]) for _ in range(hidden)]
    gh_w = [[0.0] * hidden for _ in range(hidden)]
    g_bias = [0.0] * hidden
    wh_columns = list(zip(*wh, strict=True))
    for t in range(len(steps) - 1, -1, -1):
        grad_pre = [
            [g * (1.0 - v * v) for g, v in zip(gb, hb, strict=True)]
            for gb, hb in zip(grad_h, states[t + 1], strict=True)
        ]
        columns = list(zip(*grad_pre, strict=True))
        x_columns = list(zip(*steps[t], strict=True))
        h_columns = list(zip(*states[t], strict=True))
        gi_w = [_accumulate(row, g, x_columns) for row, g in zip(gi_w, columns, strict=True)]
        gh_w = [_accumulate(row, g, h_columns) for row, g in zip(gh_w, columns, strict=True)]
        g_bias = [a + sum(g) for a, g in zip(g_bias, columns, strict=True)]
        if t:
            grad_h = [[sum(map(mul, g, w)) for w in wh_columns] for g in grad_pre]
    return loss, [(gi_w, g_bias), (gh_w, list(g_bias)), (go_w, go_b)]


def rnn_step(net: Net, problem: RnnProblem) -> tuple[float, Net, Net]:
    """W8: the loss, the gradients and the weights after one Adam step, each laid out as ``net``."""
    loss, grads = _rnn_grads(net, problem.steps(), problem.labels)
    new_net, _ = adam_step(net, grads, adam_init(net), problem.lr)
    return loss, grads, new_net
