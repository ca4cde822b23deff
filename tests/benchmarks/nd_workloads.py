"""The N-d workloads W5, W6 and W8: their data and initial weights, and this library's implementation.

Every implementation of a workload (this library, the hand-written baseline in
:mod:`tests.benchmarks.nd_baseline`, PyTorch in :mod:`tests.benchmarks.external`)
starts from the same problem value built here. Weights are plain nested tuples in
PyTorch's layouts (a convolution's weight is ``(out, in, kh, kw)``, a linear layer's
``(out, in)``), so each implementation loads them its own way; results come back in
the same canonical form (:meth:`CnnWeights.as_tuple` and friends) for the
cross-check.

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
from dataclasses import dataclass
from typing import NamedTuple, TypeAlias

from functional_nn import random
from functional_nn.init import he_std
from tests.benchmarks.workloads import DigitsProblem, digits_problem

__all__ = [
    "AttentionProblem",
    "AttentionWeights",
    "CnnProblem",
    "CnnWeights",
    "Images",
    "Matrix",
    "RnnProblem",
    "RnnWeights",
    "Tensor3",
    "Vector",
    "attention_problem",
    "cnn_problem",
    "rnn_problem",
]

Vector: TypeAlias = tuple[float, ...]
Matrix: TypeAlias = tuple[Vector, ...]
Tensor3: TypeAlias = tuple[Matrix, ...]
Images: TypeAlias = tuple[Tensor3, ...]
"""A batch of images ``(batch, channels, height, width)``, PyTorch's NCHW layout."""


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
