"""The N-d workloads W5, W6 and W8: their data and initial weights, and this library's implementation.

Every implementation of a workload (this library, the hand-written baseline in
:mod:`tests.benchmarks.nd_baseline`, PyTorch in :mod:`tests.benchmarks.external`)
starts from the same problem value built here. Weights are plain nested tuples in
PyTorch's layouts (a convolution's weight is ``(out, in, kh, kw)``, a linear layer's
``(out, in)``), so each implementation loads them its own way; results come back as
plain tuples in the order of :class:`CnnWeights`, :class:`AttentionWeights` and
:class:`RnnWeights` for the cross-check. The library's inputs are made untracked
Arrays once, in set-up (as PyTorch's are made tensors).

- W5: the digits (standardised, the 80% split of W3) as 1x8x8 images through
  ``Conv2d(1, 8, 3, padding=1) -> ReLU -> MaxPool2d(2) -> Flatten -> Linear(128, 10)``,
  cross-entropy with logits, batch 32, Adam (lr 1e-3): one epoch.
- W6: one causal multi-head self-attention block (``d_model`` 16, 2 heads, PyTorch's
  ``nn.MultiheadAttention`` with ``batch_first=True``) over a batch of 8 sequences of
  8 steps, loss ``mean(y ** 2)`` over the output: forward and backward, the
  gradients of the block's four parameters.
- W8: an Elman RNN (``h = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh)``, 8 hidden units,
  4 input features, ``h_0 = 0``) over 32 sequences of length 6, a linear 2-class head
  on the last state, cross-entropy, one Adam step (lr 1e-2): the loss, the gradients
  and the new weights.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeAlias, cast

from pyrsistent import PMap, pmap, pvector

import optimizers
import tape
from functional_nn import random
from functional_nn.init import he_std
from functional_nn.layers import Conv2d, Flatten, Linear, MaxPool2d, MultiHeadAttention, ReLU, Serial, serial
from functional_nn.loss import cross_entropy_with_logits_batch
from tape import Scalar, arrays
from tape.array import Array, asarray
from tests.benchmarks.workloads import DigitsProblem, digits_problem

__all__ = [
    "AttentionProblem",
    "AttentionWeights",
    "CnnProblem",
    "CnnWeights",
    "Images",
    "Matrix",
    "Params",
    "RnnProblem",
    "RnnWeights",
    "Tensor3",
    "Vector",
    "RnnStep",
    "attention_params",
    "attention_problem",
    "attention_weights",
    "cnn_model",
    "cnn_params",
    "cnn_problem",
    "cnn_weights",
    "library_w5_epoch",
    "library_w6",
    "library_w8_step",
    "rnn_params",
    "rnn_problem",
    "rnn_weights",
]

Vector: TypeAlias = tuple[float, ...]
Matrix: TypeAlias = tuple[Vector, ...]
Tensor3: TypeAlias = tuple[Matrix, ...]
Images: TypeAlias = tuple[Tensor3, ...]
"""A batch of images ``(batch, channels, height, width)``, PyTorch's NCHW layout."""
Params: TypeAlias = "PMap[str, Any]"
"""The library's parameters of a workload's model: a persistent map of named arrays (or of maps)."""


def _matrix(flat: tuple[float, ...], rows: int, columns: int) -> Matrix:
    return tuple(flat[r * columns : (r + 1) * columns] for r in range(rows))


def _uniform_matrix(key: random.Key, rows: int, columns: int, bound: float) -> Matrix:
    return _matrix(random.uniform(key, rows * columns, -bound, bound), rows, columns)


# --- W5: the digits CNN -----------------------------------------------------------------


class CnnWeights(NamedTuple):
    """The digits CNN's parameters in PyTorch's layouts."""

    conv_weight: tuple[Tensor3, ...]
    """``(8, 1, 3, 3)``."""
    conv_bias: Vector
    linear_weight: Matrix
    """``(10, 128)``: the flattened ``(8, 4, 4)`` pooled maps, channel-major, as ``nn.Flatten`` gives."""
    linear_bias: Vector


@dataclass(frozen=True)
class CnnProblem:
    """W5: the W3 digits as images, the CNN's initial weights, batch 32, Adam."""

    digits: DigitsProblem
    weights: CnnWeights
    channels: int
    lr: float

    def batches(self) -> list[tuple[Images, tuple[int, ...]]]:
        """The epoch's batches as ``(images (B, 1, 8, 8), labels)``, in W3's order."""
        return [
            (tuple((_matrix(tuple(row), 8, 8),) for row in batch.inputs), batch.labels())
            for batch in self.digits.batches()
        ]


def cnn_problem(*, train_size: int | None = None, channels: int = 8, seed: int = 0) -> CnnProblem:
    """W3's digits split and batches; He-normal weights (fans 9 and 128), zero biases."""
    digits = digits_problem(train_size=train_size, test_size=1, seed=seed)
    conv_key, linear_key = random.split(random.key(seed + 5))
    conv = random.normal(conv_key, channels * 9, 0.0, he_std(9))
    features = channels * 16
    weights = CnnWeights(
        tuple((_matrix(conv[o * 9 : (o + 1) * 9], 3, 3),) for o in range(channels)),
        (0.0,) * channels,
        _matrix(random.normal(linear_key, 10 * features, 0.0, he_std(features)), 10, features),
        (0.0,) * 10,
    )
    return CnnProblem(digits, weights, channels, 1e-3)


def cnn_params(weights: CnnWeights) -> Params:
    """The weights as the library's params, keyed as ``nn.Sequential``'s ``state_dict``: ``0`` and ``4``."""
    return pmap(
        {
            "0": pmap({"weight": _pvectors(weights.conv_weight), "bias": _pvectors(weights.conv_bias)}),
            "4": pmap({"weight": _pvectors(weights.linear_weight), "bias": _pvectors(weights.linear_bias)}),
        }
    )


def cnn_weights(params: Params) -> tuple[object, ...]:
    """The library's params back in :class:`CnnWeights`' order, as plain tuples."""
    conv, linear = params["0"], params["4"]
    return tuple(_tuples(x) for x in (conv["weight"], conv["bias"], linear["weight"], linear["bias"]))


def cnn_model(channels: int = 8) -> Serial:
    """W5's model as the library's layers: ``serial(Conv2d, ReLU, MaxPool2d, Flatten, Linear)``."""
    return serial(
        Conv2d(1, channels, 3, padding=1), ReLU(), MaxPool2d(2), Flatten(), Linear(16 * channels, 10)
    )


def library_w5_epoch(problem: CnnProblem) -> Callable[[Params], tuple[list[float], Params]]:
    """One epoch of Adam with this library: ``params -> (loss of each batch, new params)``."""
    model = cnn_model(problem.channels)

    def loss(params: Params, images: Array, labels: Sequence[int]) -> Scalar:
        return cross_entropy_with_logits_batch(cast(Array, model.apply(params, images)), labels)

    loss_and_grad = tape.value_and_grad(loss, arrays=True)
    optimizer = optimizers.adam(problem.lr)
    batches = [(asarray(images), labels) for images, labels in problem.batches()]  # checked once, here
    initial_state = optimizer.init(cnn_params(problem.weights))

    def epoch(params: Params) -> tuple[list[float], Params]:
        state = initial_state
        losses: list[float] = []
        for images, labels in batches:
            value, grads = loss_and_grad(params, images, labels)
            params, state = optimizer.step(params, grads, state)
            losses.append(value)
        return losses, params

    return epoch


# --- W6: causal self-attention ----------------------------------------------------------


class AttentionWeights(NamedTuple):
    """``nn.MultiheadAttention``'s parameters: ``in_proj`` stacks the q, k and v projections."""

    in_proj_weight: Matrix
    """``(3 d, d)``."""
    in_proj_bias: Vector
    out_proj_weight: Matrix
    """``(d, d)``."""
    out_proj_bias: Vector


@dataclass(frozen=True)
class AttentionProblem:
    """W6: a batch of sequences ``(batch, time, d_model)`` and the block's weights."""

    inputs: Tensor3
    weights: AttentionWeights
    heads: int

    @property
    def d_model(self) -> int:
        """The width of each step's vector."""
        return len(self.weights.out_proj_bias)


def attention_problem(
    *, batch: int = 8, time: int = 8, d_model: int = 16, heads: int = 2, seed: int = 0
) -> AttentionProblem:
    """Standard-normal inputs; Glorot-uniform projections and small uniform biases."""
    if d_model % heads:
        raise ValueError(f"d_model {d_model} is not a multiple of heads {heads}")
    x_key, in_key, out_key, bias_key = random.split(random.key(seed + 6), 4)
    flat = random.normal(x_key, batch * time * d_model)
    inputs = tuple(
        _matrix(flat[b * time * d_model : (b + 1) * time * d_model], time, d_model) for b in range(batch)
    )
    biases = random.uniform(bias_key, 4 * d_model, -0.1, 0.1)
    weights = AttentionWeights(
        _uniform_matrix(in_key, 3 * d_model, d_model, math.sqrt(6.0 / (4 * d_model))),
        biases[: 3 * d_model],
        _uniform_matrix(out_key, d_model, d_model, math.sqrt(3.0 / d_model)),
        biases[3 * d_model :],
    )
    return AttentionProblem(inputs, weights, heads)


def attention_params(weights: AttentionWeights) -> Params:
    """The weights as the library's params, named as ``nn.MultiheadAttention``'s ``state_dict``."""
    return pmap(
        {
            "in_proj_weight": _pvectors(weights.in_proj_weight),
            "in_proj_bias": _pvectors(weights.in_proj_bias),
            "out_proj": pmap(
                {"weight": _pvectors(weights.out_proj_weight), "bias": _pvectors(weights.out_proj_bias)}
            ),
        }
    )


def attention_weights(params: Params) -> tuple[object, ...]:
    """The library's params (or gradients) back in :class:`AttentionWeights`' order, as plain tuples."""
    out = params["out_proj"]
    return tuple(
        _tuples(x) for x in (params["in_proj_weight"], params["in_proj_bias"], out["weight"], out["bias"])
    )


def library_w6(problem: AttentionProblem) -> Callable[[Params], tuple[float, Params]]:
    """W6 with this library: ``params -> (loss, gradients)`` of ``mean(y * y)``, ``y`` the block's output."""
    block = MultiHeadAttention(problem.d_model, problem.heads, causal=True)

    def loss(params: Params, x: Array) -> Scalar:
        y = block.apply(params, x)
        return arrays.mean(arrays.multiply(y, y))

    loss_and_grad = tape.value_and_grad(loss, arrays=True)
    x = asarray(problem.inputs)  # checked once, here

    def run(params: Params) -> tuple[float, Params]:
        return loss_and_grad(params, x)

    return run


# --- W8: an Elman RNN -------------------------------------------------------------------


class RnnWeights(NamedTuple):
    """``nn.RNN``'s parameters (``weight_ih_l0`` ...) and the head's."""

    weight_ih: Matrix
    """``(hidden, features)``."""
    weight_hh: Matrix
    """``(hidden, hidden)``."""
    bias_ih: Vector
    bias_hh: Vector
    head_weight: Matrix
    """``(2, hidden)``."""
    head_bias: Vector


@dataclass(frozen=True)
class RnnProblem:
    """W8: sequences ``(batch, time, features)``, their class labels, the weights, one Adam step."""

    inputs: Tensor3
    labels: tuple[int, ...]
    weights: RnnWeights
    lr: float

    def steps(self) -> list[Matrix]:
        """The inputs one time step at a time: ``steps()[t]`` is ``(batch, features)``."""
        return [tuple(sequence[t] for sequence in self.inputs) for t in range(len(self.inputs[0]))]


def rnn_problem(
    *, batch: int = 32, time: int = 6, features: int = 4, hidden: int = 8, seed: int = 0
) -> RnnProblem:
    """Standard-normal sequences labelled by the sign of their first feature's sum; PyTorch's init.

    Every weight and bias is uniform on ``[-1/sqrt(hidden), 1/sqrt(hidden))``, as ``nn.RNN``
    and (for the head, with fan-in ``hidden``) ``nn.Linear`` draw them.
    """
    x_key, ih_key, hh_key, head_key, bias_key = random.split(random.key(seed + 8), 5)
    flat = random.normal(x_key, batch * time * features)
    inputs = tuple(
        _matrix(flat[b * time * features : (b + 1) * time * features], time, features) for b in range(batch)
    )
    labels = tuple(int(sum(step[0] for step in sequence) > 0.0) for sequence in inputs)
    bound = 1.0 / math.sqrt(hidden)
    biases = random.uniform(bias_key, 2 * hidden + 2, -bound, bound)
    weights = RnnWeights(
        _uniform_matrix(ih_key, hidden, features, bound),
        _uniform_matrix(hh_key, hidden, hidden, bound),
        biases[:hidden],
        biases[hidden : 2 * hidden],
        _uniform_matrix(head_key, 2, hidden, bound),
        biases[2 * hidden :],
    )
    return RnnProblem(inputs, labels, weights, 1e-2)


def _pvectors(data: object) -> object:
    """Nested tuples as nested pyrsistent vectors (the library's parameter leaves)."""
    return pvector([_pvectors(x) for x in data]) if isinstance(data, tuple) else data


def _tuples(data: object) -> object:
    """Nested sequences of floats as nested tuples of floats."""
    if isinstance(data, float | int):
        return float(data)
    return tuple(_tuples(x) for x in cast("Iterable[object]", data))


def rnn_params(weights: RnnWeights) -> Params:
    """The weights as the library's params: ``rnn`` named as ``nn.RNN``'s ``state_dict``, and ``head``."""
    return pmap(
        {
            "rnn": pmap(
                {
                    "weight_ih_l0": _pvectors(weights.weight_ih),
                    "weight_hh_l0": _pvectors(weights.weight_hh),
                    "bias_ih_l0": _pvectors(weights.bias_ih),
                    "bias_hh_l0": _pvectors(weights.bias_hh),
                }
            ),
            "head": pmap({"weight": _pvectors(weights.head_weight), "bias": _pvectors(weights.head_bias)}),
        }
    )


def rnn_weights(params: Params) -> tuple[object, ...]:
    """The library's params (or gradients) back in :class:`RnnWeights`' order, as plain tuples."""
    rnn, head = params["rnn"], params["head"]
    names = ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")
    return (*(_tuples(rnn[n]) for n in names), _tuples(head["weight"]), _tuples(head["bias"]))


RnnStep = Callable[[Params], tuple[float, Params, Params]]
"""``params -> (loss, gradients, params after one Adam step)``."""


def _rnn_scalar_loss(params: Params, steps: Sequence[Matrix | Array], labels: Sequence[int]) -> Scalar:
    """W8 on scalar Values: one node per multiply-add row (``tape.dot``) and per tanh."""
    rnn, head = params["rnn"], params["head"]
    wi, wh = rnn["weight_ih_l0"], rnn["weight_hh_l0"]
    bias = [a + b for a, b in zip(rnn["bias_ih_l0"], rnn["bias_hh_l0"], strict=True)]
    hidden: list[list[Scalar]] = [[0.0] * len(bias) for _ in labels]
    for x in steps:
        hidden = [
            [
                tape.tanh(tape.dot(wx, xb) + tape.dot(wr, hb) + c)
                for wx, wr, c in zip(wi, wh, bias, strict=True)
            ]
            for xb, hb in zip(x, hidden, strict=True)
        ]
    wo, bo = head["weight"], head["bias"]
    logits: list[list[Scalar]] = [[tape.dot(w, h) + c for w, c in zip(wo, bo, strict=True)] for h in hidden]
    return cross_entropy_with_logits_batch(logits, labels)


def _rnn_array_loss(params: Params, steps: Sequence[Matrix | Array], labels: Sequence[int]) -> Scalar:
    """W8 on array nodes: per step two ``linear`` nodes, their sum and a ``tanh`` over the batch.

    ``arrays.add``, not ``+``: ``linear`` of plain floats gives plain tuples, which ``+`` would concatenate.
    """
    rnn, head = params["rnn"], params["head"]
    wi, wh, bi, bh = (rnn[n] for n in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"))
    hidden: arrays.MatrixLike = tuple((0.0,) * len(bi) for _ in labels)
    for x in steps:
        hidden = arrays.tanh(arrays.add(arrays.linear(wi, bi, x), arrays.linear(wh, bh, hidden)))
    return arrays.cross_entropy_with_logits(arrays.linear(head["weight"], head["bias"], hidden), labels)


def library_w8_step(problem: RnnProblem, *, arrays: bool = True) -> RnnStep:
    """W8 with this library: ``value_and_grad`` of the loss, then one Adam step from a fresh state.

    ``arrays=True``: the batch goes through array nodes (``grad(..., arrays=True)``);
    ``False``: the same model on scalar Values.
    """
    loss = _rnn_array_loss if arrays else _rnn_scalar_loss
    loss_and_grad = tape.value_and_grad(loss, arrays=arrays)
    optimizer = optimizers.adam(problem.lr)
    labels = problem.labels
    steps: Sequence[Matrix | Array] = [asarray(x) for x in problem.steps()] if arrays else problem.steps()

    def step(params: Params) -> tuple[float, Params, Params]:
        value, grads = loss_and_grad(params, steps, labels)
        new_params, _ = optimizer.step(params, grads, optimizer.init(params))
        return value, grads, new_params

    return step
