"""Array nodes: one tape node for a whole layer, activation, convolution or loss over a batch.

A scalar engine records one node per neuron (or per multiply-add); Python spends
its time on node bookkeeping rather than arithmetic. An :class:`Array` is an N-d
array of floats recorded as *one* node, and its ops (broadcasting arithmetic,
``matmul``, reductions over axes, ``softmax``, ``conv2d``, attention, indexing,
``linear``, the mean cross-entropy of a batch of logits, ...) have backward rules written as tight
loops over flat rows (``sum(map(mul, ...))`` runs in C). A batch of 32 examples
through a two-layer MLP is then about six nodes instead of thousands.

This module is the public namespace of the array ops; each is defined, with its
rules, in its op family under :mod:`tape.ops`.

Arrays live on the same tape as scalar :class:`tape.Value`: indexing an Array gives
Values, ``grad(..., arrays=True)`` watches each rectangular nested sequence of floats
(of any depth) in the arguments as one Array leaf, and gradients come back in the
arguments' structure. Forward mode runs through each op's jvp rule. Reverse mode over
array ops is first-order: inside nested tapes an enclosing tape's Arrays are seen as
sequences of its Values; the MLP ops (``linear``, the activations, the losses) then
record scalar ops, and the N-d ops raise a TypeError saying so.

Every function here also takes plain (nested) sequences of floats and then returns
plain tuples without recording anything, so inference runs at float speed.

>>> from tape import Tape
>>> with Tape() as t:
...     W = t.watch_array([[1.0, 2.0], [3.0, 4.0]])
...     X = t.watch_array([[1.0, 1.0]])
...     loss = mean(relu(linear(W, None, X)))
>>> loss.data, t.gradient(loss, W)
(5.0, ((0.5, 0.5), (0.5, 0.5)))
"""

from __future__ import annotations

from collections.abc import Sequence

from tape.array import Array, Data, Matrix, Rows, Vector, asarray
from tape.ops.attention import scaled_dot_product_attention
from tape.ops.broadcasting import (
    add,
    divide,
    greater,
    greater_equal,
    less,
    less_equal,
    multiply,
    power,
    subtract,
    where,
)
from tape.ops.convolution import avg_pool2d, conv1d, conv2d, max_pool2d
from tape.ops.elementwise import LEAKY_SLOPE, SOFTPLUS_THRESHOLD, Elementwise
from tape.ops.elementwise import array_abs as abs
from tape.ops.elementwise import array_exp as exp
from tape.ops.elementwise import array_gelu as gelu
from tape.ops.elementwise import array_leaky_relu as leaky_relu
from tape.ops.elementwise import array_log as log
from tape.ops.elementwise import array_relu as relu
from tape.ops.elementwise import array_sigmoid as sigmoid
from tape.ops.elementwise import array_softplus as softplus
from tape.ops.elementwise import array_sqrt as sqrt
from tape.ops.elementwise import array_tanh as tanh
from tape.ops.indexing import concatenate, pad, scale, stack, take
from tape.ops.linear import linear, matmul, relu_linear
from tape.ops.losses import cross_entropy_with_logits, mse
from tape.ops.normalization import layer_norm, log_softmax, logsumexp, softmax
from tape.ops.reductions import Axis, mean
from tape.ops.reductions import array_max as max
from tape.ops.reductions import array_min as min
from tape.ops.reductions import array_sum as sum
from tape.ops.shape import reshape, transpose
from tape.value import Scalar

MatrixLike = Array | Sequence[Sequence[Scalar]]
"""What a matrix argument may be: an Array, or rows of floats (or of Values)."""
VectorLike = Array | Sequence[Scalar]
"""What a vector argument may be: an Array, or a sequence of floats (or of Values)."""

__all__ = [
    "LEAKY_SLOPE",
    "SOFTPLUS_THRESHOLD",
    "Array",
    "Axis",
    "Data",
    "Elementwise",
    "Matrix",
    "MatrixLike",
    "Rows",
    "Vector",
    "VectorLike",
    "abs",
    "add",
    "asarray",
    "avg_pool2d",
    "concatenate",
    "conv1d",
    "conv2d",
    "cross_entropy_with_logits",
    "divide",
    "exp",
    "gelu",
    "greater",
    "greater_equal",
    "layer_norm",
    "leaky_relu",
    "less",
    "less_equal",
    "linear",
    "log",
    "log_softmax",
    "logsumexp",
    "matmul",
    "max",
    "max_pool2d",
    "mean",
    "min",
    "mse",
    "multiply",
    "pad",
    "power",
    "relu",
    "relu_linear",
    "reshape",
    "scale",
    "scaled_dot_product_attention",
    "sigmoid",
    "softmax",
    "softplus",
    "sqrt",
    "stack",
    "subtract",
    "sum",
    "take",
    "tanh",
    "transpose",
    "where",
]
